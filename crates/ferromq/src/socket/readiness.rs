//! Readiness as a file descriptor, for event loops that wait on fds
//! (libzmq's `ZMQ_FD`: pyzmq's asyncio, gevent and eventlet all use it).

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the socket can do now without waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A message can be received now.
    pub readable: bool,
    /// A message can be sent now.
    pub writable: bool,
}

/// A socket pair whose read end becomes readable when the socket's
/// readiness may have changed. At most one byte is ever pending.
pub(crate) struct ReadyFd {
    rx: UnixStream,
    tx: UnixStream,
    pending: AtomicBool,
}

impl ReadyFd {
    pub fn new() -> std::io::Result<ReadyFd> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(ReadyFd {
            rx,
            tx,
            pending: AtomicBool::new(false),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// Makes the fd readable (if it is not already).
    pub fn signal(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            // Non-blocking; the buffer cannot be full with at most one byte in it.
            let _ = (&self.tx).write(&[1]);
        }
    }

    /// Resets the fd. The caller must compute readiness *after* this.
    ///
    /// Drain first, then allow signals again: a signal racing this call
    /// either lands before the reset (and is reflected in the readiness the
    /// caller computes next) or after it (and writes a fresh byte). The
    /// other order could drain a racing signal's byte while leaving
    /// `pending` set, and the fd would never fire again.
    pub fn clear(&self) {
        let mut buf = [0u8; 16];
        while let Ok(n) = (&self.rx).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        self.pending.store(false, Ordering::Release);
    }
}
