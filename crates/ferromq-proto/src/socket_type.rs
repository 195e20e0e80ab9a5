//! Socket types and which pairs may talk to each other.

use std::fmt;
use std::str::FromStr;

/// A ZeroMQ socket type. The numeric values are libzmq's `ZMQ_*` ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SocketType {
    /// Exclusive pair.
    Pair = 0,
    /// Publisher.
    Pub = 1,
    /// Subscriber.
    Sub = 2,
    /// Request (strict send/recv alternation).
    Req = 3,
    /// Reply.
    Rep = 4,
    /// Asynchronous request (load-balance out, fair-queue in).
    Dealer = 5,
    /// Asynchronous reply, routes by peer routing id.
    Router = 6,
    /// Pipeline sink.
    Pull = 7,
    /// Pipeline source.
    Push = 8,
    /// Publisher that sees subscriptions.
    XPub = 9,
    /// Subscriber that sends subscriptions as messages.
    XSub = 10,
}

impl SocketType {
    /// Every type this crate knows, in id order.
    pub const ALL: [SocketType; 11] = [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pull,
        SocketType::Push,
        SocketType::XPub,
        SocketType::XSub,
    ];

    /// The name sent in the `Socket-Type` metadata property.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketType::Pair => "PAIR",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pull => "PULL",
            SocketType::Push => "PUSH",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
        }
    }

    /// Parses a `Socket-Type` property value (exact, upper case, as libzmq compares).
    pub fn from_wire(name: &[u8]) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == name)
    }

    /// The libzmq numeric id.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The type with libzmq numeric id `id`.
    pub fn from_id(id: i32) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| i32::from(t.id()) == id)
    }

    /// Whether a peer of type `peer` may connect to a socket of this type (RFC 37).
    pub fn is_compatible(self, peer: SocketType) -> bool {
        use SocketType::*;
        match self {
            Pair => peer == Pair,
            Pub | XPub => matches!(peer, Sub | XSub),
            Sub | XSub => matches!(peer, Pub | XPub),
            Req => matches!(peer, Rep | Router),
            Rep => matches!(peer, Req | Dealer),
            Dealer => matches!(peer, Rep | Dealer | Router),
            Router => matches!(peer, Req | Dealer | Router),
            Pull => peer == Push,
            Push => peer == Pull,
        }
    }

    /// Whether this type sends its `Identity` property in READY (libzmq does so
    /// only for REQ, DEALER and ROUTER).
    pub fn sends_identity(self) -> bool {
        matches!(
            self,
            SocketType::Req | SocketType::Dealer | SocketType::Router
        )
    }

    /// Whether `send` is allowed on this type.
    pub fn can_send(self) -> bool {
        !matches!(self, SocketType::Sub | SocketType::Pull)
    }

    /// Whether `recv` is allowed on this type.
    pub fn can_recv(self) -> bool {
        !matches!(self, SocketType::Pub | SocketType::Push)
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a socket type name is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown socket type {0:?}")]
pub struct UnknownSocketType(pub String);

impl FromStr for SocketType {
    type Err = UnknownSocketType;
    /// Case-insensitive; accepts libzmq's aliases XREQ (DEALER) and XREP (ROUTER).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.to_ascii_uppercase();
        let up = match up.as_str() {
            "XREQ" => "DEALER",
            "XREP" => "ROUTER",
            other => other,
        };
        SocketType::from_wire(up.as_bytes()).ok_or_else(|| UnknownSocketType(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_is_symmetric() {
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                assert_eq!(a.is_compatible(b), b.is_compatible(a), "{a} {b}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for t in SocketType::ALL {
            assert_eq!(SocketType::from_wire(t.as_str().as_bytes()), Some(t));
            assert_eq!(t.as_str().to_lowercase().parse::<SocketType>().unwrap(), t);
            assert_eq!(SocketType::from_id(t.id().into()), Some(t));
        }
        assert_eq!("xreq".parse::<SocketType>().unwrap(), SocketType::Dealer);
        assert!("stream2".parse::<SocketType>().is_err());
        assert_eq!(SocketType::from_wire(b"dealer"), None);
    }
}
