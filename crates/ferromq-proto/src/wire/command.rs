//! ZMTP commands: `name-len(1) name data` in a frame with the COMMAND flag.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::encode_header;
use super::metadata::{Metadata, MetadataError};

/// A command, parsed from the body of a command frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// End of the NULL handshake (and of PLAIN/CURVE), with the sender's metadata.
    Ready(Metadata),
    /// The peer refuses the handshake; the reason is 0–255 bytes.
    Error(Bytes),
    /// Heartbeat request: TTL in deciseconds and up to 16 bytes of context.
    Ping {
        /// How long the sender will wait for traffic, in tenths of a second.
        ttl_ds: u16,
        /// Opaque bytes the PONG must echo.
        context: Bytes,
    },
    /// Heartbeat reply echoing the PING context.
    Pong(Bytes),
    /// ZMTP 3.1 subscription.
    Subscribe(Bytes),
    /// ZMTP 3.1 unsubscription.
    Cancel(Bytes),
    /// Any other command. Received ones are ignored after the handshake, as libzmq does.
    Other {
        /// Command name.
        name: Bytes,
        /// Everything after the name.
        data: Bytes,
    },
}

/// A command frame that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Empty body, or a name length running past the end.
    #[error("malformed command frame")]
    Malformed,
    /// READY's metadata was malformed.
    #[error("malformed metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// PING shorter than its 2-byte TTL.
    #[error("malformed PING")]
    BadPing,
    /// ERROR's reason length does not match the body.
    #[error("malformed ERROR")]
    BadError,
}

/// Longest PING context a PONG echoes (libzmq truncates to 16 bytes).
pub const MAX_PING_CONTEXT: usize = 16;

impl Command {
    /// Parses a command frame body. Data fields are slices of `body`.
    pub fn parse(body: &Bytes) -> Result<Command, CommandError> {
        let name_len = usize::from(*body.first().ok_or(CommandError::Malformed)?);
        if name_len == 0 || body.len() < 1 + name_len {
            return Err(CommandError::Malformed);
        }
        let name = &body[1..1 + name_len];
        let data = body.slice(1 + name_len..);
        Ok(match name {
            b"READY" => Command::Ready(Metadata::decode(&data)?),
            b"ERROR" => {
                let len = usize::from(*data.first().ok_or(CommandError::BadError)?);
                if data.len() != 1 + len {
                    return Err(CommandError::BadError);
                }
                Command::Error(data.slice(1..))
            }
            b"PING" => {
                if data.len() < 2 {
                    return Err(CommandError::BadPing);
                }
                Command::Ping {
                    ttl_ds: u16::from_be_bytes([data[0], data[1]]),
                    context: data.slice(2..),
                }
            }
            b"PONG" => Command::Pong(data),
            b"SUBSCRIBE" => Command::Subscribe(data),
            b"CANCEL" => Command::Cancel(data),
            _ => Command::Other {
                name: body.slice(1..1 + name_len),
                data,
            },
        })
    }

    fn name(&self) -> &[u8] {
        match self {
            Command::Ready(_) => b"READY",
            Command::Error(_) => b"ERROR",
            Command::Ping { .. } => b"PING",
            Command::Pong(_) => b"PONG",
            Command::Subscribe(_) => b"SUBSCRIBE",
            Command::Cancel(_) => b"CANCEL",
            Command::Other { name, .. } => name,
        }
    }

    /// Appends the whole command frame (header included) to `out`.
    ///
    /// ERROR reasons are cut to 255 bytes and PING/PONG contexts to 16.
    pub fn encode(&self, out: &mut BytesMut) {
        let name = self.name();
        let data_len = match self {
            Command::Ready(m) => m.encoded_len(),
            Command::Error(r) => 1 + r.len().min(255),
            Command::Ping { context, .. } => 2 + context.len().min(MAX_PING_CONTEXT),
            Command::Pong(c) => c.len().min(MAX_PING_CONTEXT),
            Command::Subscribe(t) | Command::Cancel(t) => t.len(),
            Command::Other { data, .. } => data.len(),
        };
        let body_len = 1 + name.len() + data_len;
        out.reserve(9 + body_len);
        encode_header(out, false, true, body_len);
        out.put_u8(name.len() as u8);
        out.put_slice(name);
        match self {
            Command::Ready(m) => m.encode(out),
            Command::Error(r) => {
                let r = &r[..r.len().min(255)];
                out.put_u8(r.len() as u8);
                out.put_slice(r);
            }
            Command::Ping { ttl_ds, context } => {
                out.put_u16(*ttl_ds);
                out.put_slice(&context[..context.len().min(MAX_PING_CONTEXT)]);
            }
            Command::Pong(c) => out.put_slice(&c[..c.len().min(MAX_PING_CONTEXT)]),
            Command::Subscribe(t) | Command::Cancel(t) => out.put_slice(t),
            Command::Other { data, .. } => out.put_slice(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::FrameDecoder;

    fn encoded(c: &Command) -> Vec<u8> {
        let mut out = BytesMut::new();
        c.encode(&mut out);
        out.to_vec()
    }

    fn ready(socket_type: &str, identity: Option<&str>) -> Command {
        let mut m = Metadata::new();
        m.insert("Socket-Type", socket_type.to_string());
        if let Some(id) = identity {
            m.insert("Identity", id.to_string());
        }
        Command::Ready(m)
    }

    #[test]
    fn reference_vectors() {
        // libzmq testutil.hpp: READY of a DEALER with empty identity, 43 bytes.
        let dealer = encoded(&ready("DEALER", Some("")));
        let mut want = b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER".to_vec();
        want.extend(b"\x08Identity\x00\x00\x00\x00");
        assert_eq!(dealer, want);
        assert_eq!(dealer.len(), 43);
        let sub = encoded(&ready("SUB", None));
        assert_eq!(sub.len(), 27);
        assert_eq!(&sub[..2], b"\x04\x19");
        assert_eq!(encoded(&ready("XPUB", None)).len(), 28);
        assert_eq!(
            encoded(&Command::Subscribe(Bytes::from_static(b"A"))),
            b"\x04\x0b\x09SUBSCRIBEA"
        );
        assert_eq!(
            encoded(&Command::Ping {
                ttl_ds: 0,
                context: Bytes::new()
            }),
            b"\x04\x07\x04PING\x00\x00"
        );
        assert_eq!(encoded(&Command::Pong(Bytes::new())), b"\x04\x05\x04PONG");
    }

    #[test]
    fn parse_round_trip() {
        let cmds = [
            ready("ROUTER", Some("abc")),
            Command::Error(Bytes::from_static(b"400")),
            Command::Ping {
                ttl_ds: 300,
                context: Bytes::from_static(b"ctx"),
            },
            Command::Pong(Bytes::from_static(b"ctx")),
            Command::Subscribe(Bytes::from_static(b"topic")),
            Command::Cancel(Bytes::new()),
            Command::Other {
                name: Bytes::from_static(b"JOIN"),
                data: Bytes::from_static(b"g"),
            },
        ];
        let d = FrameDecoder::default();
        for c in cmds {
            let mut wire = BytesMut::from(&encoded(&c)[..]);
            let f = d.decode(&mut wire).unwrap().unwrap();
            assert!(f.command);
            assert_eq!(Command::parse(&f.body).unwrap(), c);
        }
    }

    #[test]
    fn malformed_commands() {
        for raw in [
            &b""[..],
            b"\x00",
            b"\x05REA",
            b"\x04PING\x01",
            b"\x05ERROR",
            b"\x05ERROR\x05ab",
        ] {
            assert!(
                Command::parse(&Bytes::copy_from_slice(raw)).is_err(),
                "{raw:?}"
            );
        }
    }
}
