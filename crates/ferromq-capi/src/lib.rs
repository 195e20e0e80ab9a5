//! ferromq as libzmq: the 70 functions of libzmq 4.3.5's stable C API over
//! ferromq's engine, built as `libzmq.so.5` with our `include/zmq.h`.
//!
//! Every entry point checks its pointers and lengths, maps ferromq's errors to
//! libzmq's errno values, and catches panics so none crosses into C (the call
//! then fails with EFAULT). Functions for capabilities ferromq lacks so far
//! fail with ENOTSUP; options it lacks fail with EINVAL.
//!
//! `scripts/stage-libzmq.sh` builds the library into a prefix
//! (`lib/libzmq.so.5`, `include/zmq.h`, `lib/pkgconfig/libzmq.pc`) that
//! pyzmq and C programs build against unchanged.

mod ctx;
mod errno;
mod msg;
mod poll;
mod socket;
mod sockopt;
mod util;

/// Runs an entry point's body, turning a panic into a failed call.
fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => errno::fail(libc::EFAULT, on_panic),
    }
}
