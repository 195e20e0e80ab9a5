//! errno values and the mapping from ferromq's errors.

use ferromq::{EndpointError, Error};

/// Base of the error codes libzmq defines itself.
pub const HAUSNUMERO: i32 = 156_384_712;
/// Operation not valid in the socket's state.
pub const EFSM: i32 = HAUSNUMERO + 51;
/// Transport not compatible with the socket type.
pub const ENOCOMPATPROTO: i32 = HAUSNUMERO + 52;
/// The context was terminated.
pub const ETERM: i32 = HAUSNUMERO + 53;
/// No I/O thread available.
pub const EMTHREAD: i32 = HAUSNUMERO + 54;

/// Sets the calling thread's errno.
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = e };
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    // SAFETY: as in set_errno.
    unsafe { *libc::__errno_location() }
}

/// Sets errno and returns `ret` (for `return fail(EINVAL, -1)`).
pub fn fail<T>(e: i32, ret: T) -> T {
    set_errno(e);
    ret
}

/// The errno libzmq gives for the same failure.
pub fn code(e: &Error) -> i32 {
    match e {
        Error::WouldBlock => libc::EAGAIN,
        Error::State => EFSM,
        Error::NotSupported => libc::ENOTSUP,
        Error::HostUnreachable => libc::EHOSTUNREACH,
        Error::Terminated | Error::LingerExpired(_) => ETERM,
        Error::Endpoint(EndpointError::UnknownTransport(_)) => libc::EPROTONOSUPPORT,
        Error::Endpoint(EndpointError::PathTooLong(_)) => libc::ENAMETOOLONG,
        Error::Endpoint(_) => libc::EINVAL,
        Error::EndpointNotFound(_) => libc::ENOENT,
        Error::InvalidMessage(_) | Error::InvalidOption(_) => libc::EINVAL,
        Error::Io(io) => io.raw_os_error().unwrap_or(libc::EINVAL),
        _ => libc::EINVAL,
    }
}

/// Static text for libzmq's own codes; the C library's for the rest.
pub fn message(e: i32) -> Option<&'static std::ffi::CStr> {
    Some(match e {
        EFSM => c"Operation cannot be accomplished in current state",
        ENOCOMPATPROTO => c"The protocol is not compatible with the socket type",
        ETERM => c"Context was terminated",
        EMTHREAD => c"No thread available",
        _ => return None,
    })
}
