//! Transports and the per-connection driver.

pub(crate) mod driver;
pub(crate) mod inproc;
pub(crate) mod ipc;
pub(crate) mod tcp;
pub(crate) mod wire;

use std::io::{self, IoSlice};

use bytes::BytesMut;
use tokio::io::{Interest, Ready};

use crate::monitor;
use crate::socket::core::{Slot, SocketCore};

/// What the driver needs of a byte stream: readiness and non-blocking I/O.
pub(crate) trait Stream: Send + Sync + std::os::fd::AsFd + 'static {
    fn ready(
        &self,
        interest: Interest,
    ) -> impl std::future::Future<Output = io::Result<Ready>> + Send;
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    /// Readiness for reading, for the one task that reads a connection
    /// directly (tokio keeps one waker for it; the driver waits with
    /// [`ready`](Self::ready), which keeps a list).
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>>;
    /// Forgets that the stream is readable, as a read that met WouldBlock
    /// would (for a read that came back short: the kernel had no more).
    /// Readiness that arrived since it was last reported stays.
    fn clear_readable(&self);
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn shutdown_write(&self);
    /// The file descriptor, as monitor events report it.
    fn fd(&self) -> i32;
    /// What the transport knows of the peer, as metadata properties.
    fn peer_properties(&self, meta: &mut ferromq_proto::wire::metadata::Metadata);
}

/// What the accept loop needs of a listening socket.
pub(crate) trait Listener: Send + 'static {
    type Stream: Stream;
    fn accept(&self) -> impl std::future::Future<Output = io::Result<Self::Stream>> + Send;
    /// Applies the socket's stream options to an accepted connection.
    fn prepare(stream: &Self::Stream, opts: &crate::options::Options);
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
    fn prepare(stream: &Self::Stream, opts: &crate::options::Options) {
        let _ = stream.set_nodelay(true);
        opts.apply_to_stream(socket2::SockRef::from(stream), true);
    }
}

impl Listener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
    fn prepare(stream: &Self::Stream, opts: &crate::options::Options) {
        opts.apply_to_stream(socket2::SockRef::from(stream), false);
    }
}

/// What counts as a large message where sending treats them apart: a
/// write of its own costs little next to its bytes, and two or three of
/// them alive at once are megabytes that glibc may hand back to the kernel
/// and fault in again (see `Wire::new`, `inproc::send_now` and
/// `SendFuture::poll`).
pub(crate) const LARGE_MESSAGE: usize = 64 * 1024;

/// Accepts connections until `cancel` or the socket closes, each run by a
/// driver task of its own, reporting ACCEPTED/ACCEPT_FAILED and finally
/// CLOSED to the monitor. Shared by tcp and ipc.
pub(crate) async fn accept_loop<L: Listener + std::os::fd::AsRawFd>(
    core: std::sync::Arc<SocketCore>,
    listener: L,
    cancel: crate::cancel::Cancel,
    endpoint: std::sync::Arc<str>,
) {
    let listen_fd = listener.as_raw_fd() as u32;
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = core.closing.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok(stream) => {
                L::prepare(&stream, &core.state.lock().opts);
                core.event(monitor::ACCEPTED, stream.fd() as u32, &endpoint);
                let slot = Slot::New(core.reserve_peer());
                let (c, cancel, ep) = (core.clone(), cancel.clone(), endpoint.clone());
                core.shared.spawn(async move {
                    let notify = std::sync::Arc::new(tokio::sync::Notify::new());
                    driver::run(c, stream, slot, notify, cancel, ep).await;
                });
            }
            Err(e) => {
                core.event(
                    monitor::ACCEPT_FAILED,
                    e.raw_os_error().unwrap_or(0) as u32,
                    &endpoint,
                );
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    core.event(monitor::CLOSED, listen_fd, &endpoint);
}

/// A non-blocking vectored write that, unlike `writev`, raises no SIGPIPE
/// when the peer is gone (the C ABI runs in programs that do not ignore it,
/// and libzmq writes with MSG_NOSIGNAL too). Through `try_io`, so a
/// WouldBlock clears the reactor's readiness.
pub(crate) fn send_vectored<S>(stream: &S, bufs: &[IoSlice<'_>]) -> io::Result<usize>
where
    S: TryIo + std::os::fd::AsFd,
{
    stream.try_io(Interest::WRITABLE, || send_now(stream, bufs))
}

/// The write of [`send_vectored`], straight to the descriptor, whatever the
/// reactor last saw of it.
pub(crate) fn send_now(stream: &impl std::os::fd::AsFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    socket2::SockRef::from(stream).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
}

/// tokio's `try_io`, for the streams that have it.
pub(crate) trait TryIo {
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

impl TryIo for tokio::net::TcpStream {
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        tokio::net::TcpStream::try_io(self, interest, f)
    }
}

impl TryIo for tokio::net::UnixStream {
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        tokio::net::UnixStream::try_io(self, interest, f)
    }
}

impl Stream for tokio::net::TcpStream {
    async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        tokio::net::TcpStream::ready(self, interest).await
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        tokio::net::TcpStream::try_read_buf(self, buf)
    }
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        tokio::net::TcpStream::poll_read_ready(self, cx)
    }
    fn clear_readable(&self) {
        // tokio clears readiness when the closure says WouldBlock, and only
        // the readiness it had seen (an event since keeps it set).
        let _ = self.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        send_vectored(self, bufs)
    }
    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write);
    }
    fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(self)
    }
    fn peer_properties(&self, meta: &mut ferromq_proto::wire::metadata::Metadata) {
        // libzmq's "Peer-Address": the peer's IP, without the port.
        if let Ok(addr) = self.peer_addr() {
            meta.insert("Peer-Address", addr.ip().to_string());
        }
    }
}
