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

/// Blocks every signal in the calling thread. Our own threads (I/O, free
/// callbacks) call it at start, as libzmq's do, so a signal always lands in
/// an application thread, where a blocking call returns EINTR.
pub(crate) fn block_signals() {
    // SAFETY: plain libc calls on a local, initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Runs an entry point's body, turning a panic into a failed call.
fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => errno::fail(libc::EFAULT, on_panic),
    }
}
