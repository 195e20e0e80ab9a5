//! The NULL mechanism (RFC 23 §NULL): both sides send READY with their
//! metadata right after the greeting, then wait for the other's READY.
//!
//! ```text
//!   greeting done ──send READY──► ExpectReady ──READY ok──► Active
//!                                     │ ERROR / other command / data
//!                                     ▼
//!                                   closed
//! ```

use bytes::Bytes;

use crate::connection::{ConnectionError, PeerInfo};
use crate::socket_type::SocketType;
use crate::wire::{Command, Metadata};

/// Builds our READY command: `Socket-Type`, `Identity` for the types that send
/// it, then the application's `X-` properties.
pub fn ready(socket_type: SocketType, identity: &Bytes, extra: &Metadata) -> Command {
    let mut m = Metadata::new();
    m.insert("Socket-Type", socket_type.as_str());
    if socket_type.sends_identity() {
        m.insert("Identity", identity.clone());
    }
    for (name, value) in extra.iter() {
        m.insert(name, value.clone());
    }
    Command::Ready(m)
}

/// Waiting for the peer's READY.
#[derive(Debug)]
pub struct ExpectReady {
    pub(crate) socket_type: SocketType,
}

impl ExpectReady {
    /// Handles the first command after the greeting.
    pub fn handle(self, cmd: Command, zmtp_minor: u8) -> Result<PeerInfo, ConnectionError> {
        match cmd {
            Command::Ready(metadata) => {
                PeerInfo::from_ready(self.socket_type, metadata, zmtp_minor)
            }
            Command::Error(reason) => Err(ConnectionError::PeerError(
                String::from_utf8_lossy(&reason).into_owned(),
            )),
            other => Err(ConnectionError::UnexpectedCommand(format!("{other:?}"))),
        }
    }
}
