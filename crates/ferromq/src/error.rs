//! Errors of the public API. Each maps to the errno libzmq would give.

use ferromq_proto::Message;

use crate::endpoint::EndpointError;

/// What went wrong with a socket operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operation cannot complete now: no peer has room, no message is
    /// waiting, or the send/receive timeout passed (libzmq: `EAGAIN`).
    #[error("operation would block")]
    WouldBlock,
    /// Not allowed in the socket's current state, e.g. a second `send` on a
    /// REQ socket before the reply (libzmq: `EFSM`).
    #[error("operation not allowed in the socket's current state")]
    State,
    /// This socket type does not support the operation, e.g. `recv` on PUSH
    /// (libzmq: `ENOTSUP`).
    #[error("operation not supported by this socket type")]
    NotSupported,
    /// ROUTER with `router_mandatory`: no peer has this routing id (libzmq: `EHOSTUNREACH`).
    #[error("no peer with that routing id")]
    HostUnreachable,
    /// The socket or its context was closed (libzmq: `ETERM`).
    #[error("socket closed")]
    Terminated,
    /// The endpoint string is malformed or names an unsupported transport.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// `unbind`/`disconnect` of an endpoint this socket does not have (libzmq: `ENOENT`).
    #[error("endpoint not bound or connected: {0}")]
    EndpointNotFound(String),
    /// The message cannot be sent as it is (e.g. it has no frames) (libzmq: `EINVAL`).
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// An option value out of range (libzmq: `EINVAL`).
    #[error("invalid option value: {0}")]
    InvalidOption(&'static str),
    /// Sockets were closed with messages still queued when their linger
    /// time ran out; the number says how many connections gave up.
    #[error("linger time expired with messages unsent on {0} connection(s)")]
    LingerExpired(usize),
    /// The operating system refused, e.g. address in use on bind.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A failed send. The message comes back so the caller can retry it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct SendError {
    /// Why the send failed.
    pub error: Error,
    /// The message that was not sent.
    pub message: Message,
}

impl SendError {
    pub(crate) fn new(error: Error, message: Message) -> Self {
        SendError { error, message }
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Error {
        e.error
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
