//! ferromq: a pure-Rust ZeroMQ.
//!
//! ØMQ sockets carry whole multipart messages over ZMTP 3.x, with routing set
//! by the socket type, and talk to libzmq, pyzmq, JeroMQ and NetMQ peers.
//! Connections are made, kept and re-made in the background; messages queue
//! while a peer is away.
//!
//! # Quick start
//!
//! ```
//! use ferromq::{Context, SocketType};
//!
//! let ctx = Context::new();
//! let rep = ctx.socket(SocketType::Rep)?;
//! rep.bind("tcp://127.0.0.1:*")?;
//! let req = ctx.socket(SocketType::Req)?;
//! req.connect(&rep.last_endpoint())?;
//!
//! req.send("ping")?;
//! let request = rep.recv()?;
//! rep.send(request)?;
//! assert_eq!(&req.recv()?[0][..], b"ping");
//! # Ok::<(), ferromq::Error>(())
//! ```
//!
//! The same socket in a tokio task, shared by a sender and a receiver:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ferromq::Error> {
//! use ferromq::{Context, SocketType};
//! let ctx = Context::new();
//! let a = ctx.async_socket(SocketType::Pair)?;
//! let b = ctx.async_socket(SocketType::Pair)?;
//! a.bind("tcp://127.0.0.1:*")?;
//! b.connect(&a.last_endpoint())?;
//! let a2 = a.clone();
//! let echo = tokio::spawn(async move { a2.recv().await });
//! b.send(["two", "frames"]).await?;
//! assert_eq!(echo.await.unwrap()?.len(), 2);
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! ```text
//!  application thread / task                 I/O threads (owned by the Context)
//!  Socket::send ─► core: routing, HWM ─► per-peer queue ─► driver task:
//!                                                          queue → proto::Connection → batched write
//!  Socket::recv ◄─ fair queue ◄─ per-peer inbox ◄──────── read → decode (zero-copy) → whole messages
//! ```
//!
//! When a tcp or ipc connection is idle, a sender writes to it directly, and
//! a blocking receive awaiting an answer from a lone peer reads it directly:
//! a request/reply round trip then never crosses threads.
//!
//! The protocol itself (greeting, frames, NULL handshake, heartbeats, routing
//! rules) is the sans-IO crate `ferromq-proto`; this crate adds the runtime:
//! transports, the per-connection driver, reconnection, queues and the two
//! front ends [`Socket`] (blocking) and [`AsyncSocket`] (async), which share
//! one core and one readiness mechanism.
//!
//! # Behaviour worth knowing
//!
//! * `connect` never fails because the peer is absent.
//! * High-water marks are per peer, 1000 messages by default. PUSH, DEALER,
//!   REQ and PAIR wait (or return [`Error::WouldBlock`]) when every peer is
//!   full; ROUTER drops (or, with `router_mandatory`, fails).
//! * Linger defaults to 30 s ([`DEFAULT_LINGER`]), not libzmq's "forever".
#![forbid(unsafe_code)]

mod api;
mod cancel;
mod context;
pub mod endpoint;
mod error;
pub mod monitor;
mod options;
pub mod proxy;
mod socket;
mod transport;

pub use api::{AsyncSocket, SendFuture, Socket};
pub use bytes::Bytes;
pub use context::{Context, ContextBuilder};
pub use endpoint::{Endpoint, EndpointError, TcpSource};
pub use error::{Error, Result, SendError};
pub use ferromq_proto::wire::metadata::Metadata;
pub use ferromq_proto::{Frame, Message, SocketType};
pub use options::{SocketOptions, DEFAULT_LINGER};
pub use proxy::{proxy, proxy_async, proxy_steerable, proxy_steerable_async};
pub use socket::readiness::Readiness;
