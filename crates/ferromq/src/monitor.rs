//! Socket monitoring, as libzmq's `zmq_socket_monitor`: a socket reports
//! what happens to its connections (listening, accepted, connected,
//! handshakes, disconnections, retries) as two-frame messages on a PAIR
//! socket it binds to an `inproc://` endpoint of the application's choice.
//!
//! The format is libzmq's (version 1): the first frame holds the event
//! (`u16`, little endian) and its value (`u32`, little endian: a file
//! descriptor, an errno, a reconnect interval or a protocol error code),
//! the second the endpoint it concerns. So pyzmq's `recv_monitor_message`
//! and libzmq's test helpers read ferromq's events unchanged.
//!
//! ```
//! use ferromq::{monitor, Context, SocketType};
//! let ctx = Context::new();
//! let server = ctx.socket(SocketType::Rep).unwrap();
//! server.monitor("inproc://server-events", monitor::ALL).unwrap();
//! let events = ctx.socket(SocketType::Pair).unwrap();
//! events.connect("inproc://server-events").unwrap();
//! server.bind("tcp://127.0.0.1:*").unwrap();
//! let ev = monitor::Event::parse(&events.recv().unwrap()).unwrap();
//! assert_eq!(ev.event, monitor::LISTENING);
//! assert_eq!(ev.endpoint, server.last_endpoint());
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use ferromq_proto::Message;

/// A connection to a peer is up (value: its file descriptor).
pub const CONNECTED: u16 = 0x0001;
/// A tcp connect is under way (value: `EINPROGRESS`).
pub const CONNECT_DELAYED: u16 = 0x0002;
/// A connect attempt failed; the next comes after the value in milliseconds.
pub const CONNECT_RETRIED: u16 = 0x0004;
/// A bind succeeded (value: the listening file descriptor).
pub const LISTENING: u16 = 0x0008;
/// A bind failed (value: errno).
pub const BIND_FAILED: u16 = 0x0010;
/// A connection was accepted (value: its file descriptor).
pub const ACCEPTED: u16 = 0x0020;
/// Accepting failed (value: errno).
pub const ACCEPT_FAILED: u16 = 0x0040;
/// A listener closed (value: its file descriptor).
pub const CLOSED: u16 = 0x0080;
/// Closing failed (never reported by ferromq; kept for libzmq's numbering).
pub const CLOSE_FAILED: u16 = 0x0100;
/// A connection was lost (value: its file descriptor).
pub const DISCONNECTED: u16 = 0x0200;
/// The monitor stopped: the last event it sends.
pub const MONITOR_STOPPED: u16 = 0x0400;
/// A handshake failed without a protocol error (value: errno).
pub const HANDSHAKE_FAILED_NO_DETAIL: u16 = 0x0800;
/// A ZMTP handshake completed (value: 0).
pub const HANDSHAKE_SUCCEEDED: u16 = 0x1000;
/// A handshake failed on a protocol error (value: a `ZMQ_PROTOCOL_ERROR_*` code).
pub const HANDSHAKE_FAILED_PROTOCOL: u16 = 0x2000;
/// A handshake failed authentication (value: the ZAP status code).
pub const HANDSHAKE_FAILED_AUTH: u16 = 0x4000;
/// Every event.
pub const ALL: u32 = 0xFFFF;

/// `ZMQ_PROTOCOL_ERROR_ZMTP_UNSPECIFIED`.
pub const PROTOCOL_ERROR_ZMTP_UNSPECIFIED: u32 = 0x1000_0000;
/// `ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND`.
pub const PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND: u32 = 0x1000_0001;
/// `ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED`.
pub const PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED: u32 = 0x1000_0011;
/// `ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_ERROR`: the peer sent ERROR.
pub const PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_ERROR: u32 = 0x1000_0015;
/// `ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA`.
pub const PROTOCOL_ERROR_ZMTP_INVALID_METADATA: u32 = 0x1000_0018;
/// `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`.
pub const PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: u32 = 0x1100_0002;

/// One monitor event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Which event (one of the constants of this module).
    pub event: u16,
    /// Its value: a file descriptor, errno, interval or error code.
    pub value: u32,
    /// The endpoint it concerns (empty for [`MONITOR_STOPPED`]).
    pub endpoint: String,
}

impl Event {
    /// Reads an event message; `None` if it is not one.
    pub fn parse(msg: &Message) -> Option<Event> {
        let [head, endpoint] = msg.frames() else {
            return None;
        };
        let head: &[u8; 6] = head[..].try_into().ok()?;
        Some(Event {
            event: u16::from_le_bytes([head[0], head[1]]),
            value: u32::from_le_bytes([head[2], head[3], head[4], head[5]]),
            endpoint: String::from_utf8_lossy(endpoint).into_owned(),
        })
    }

    /// The event as libzmq's two-frame message.
    pub fn to_message(&self) -> Message {
        let mut head = BytesMut::with_capacity(6);
        head.put_u16_le(self.event);
        head.put_u32_le(self.value);
        let mut m = Message::from(head.freeze());
        m.push(Bytes::copy_from_slice(self.endpoint.as_bytes()));
        m
    }
}

/// The protocol error code libzmq reports for a handshake failure.
pub(crate) fn protocol_error_code(e: &ferromq_proto::ConnectionError) -> u32 {
    use ferromq_proto::ConnectionError as E;
    match e {
        E::MechanismMismatch { .. } => PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH,
        E::UnexpectedCommand(_) => PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND,
        E::Command(_) => PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED,
        E::PeerError(_) => PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_ERROR,
        _ => PROTOCOL_ERROR_ZMTP_UNSPECIFIED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_in_libzmq_layout() {
        let e = Event {
            event: LISTENING,
            value: 0x0102_0304,
            endpoint: "tcp://127.0.0.1:5555".into(),
        };
        let m = e.to_message();
        assert_eq!(&m[0][..], &[0x08, 0x00, 0x04, 0x03, 0x02, 0x01]);
        assert_eq!(&m[1][..], b"tcp://127.0.0.1:5555");
        assert_eq!(Event::parse(&m), Some(e));
        assert_eq!(Event::parse(&Message::from("x")), None);
    }
}
