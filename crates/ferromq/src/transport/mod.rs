//! Transports and the per-connection driver.

pub(crate) mod driver;
pub(crate) mod inproc;
pub(crate) mod ipc;
pub(crate) mod tcp;

use std::io::{self, IoSlice};

use bytes::BytesMut;
use tokio::io::{Interest, Ready};

/// What the driver needs of a byte stream: readiness and non-blocking I/O.
pub(crate) trait Stream: Send + Sync + 'static {
    fn ready(
        &self,
        interest: Interest,
    ) -> impl std::future::Future<Output = io::Result<Ready>> + Send;
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn shutdown_write(&self);
    /// The file descriptor, as monitor events report it.
    fn fd(&self) -> i32;
    /// What the transport knows of the peer, as metadata properties.
    fn peer_properties(&self, meta: &mut ferromq_proto::wire::metadata::Metadata);
}

impl Stream for tokio::net::TcpStream {
    async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        tokio::net::TcpStream::ready(self, interest).await
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        tokio::net::TcpStream::try_read_buf(self, buf)
    }
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::TcpStream::try_write_vectored(self, bufs)
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
