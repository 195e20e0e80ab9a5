//! REQ lockstep and the REP envelope (RFC 28).

use crate::message::Message;

use super::PeerId;

/// Where a REQ socket is in its send/receive alternation.
///
/// ```text
///   Idle ──send to P──► AwaitingReply(P) ──reply from P──► Idle
///     ▲                        │ send again (EFSM, or with REQ_RELAXED: new request)
///     └────────────────────────┘
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReqState {
    /// May send a request.
    #[default]
    Idle,
    /// Sent a request to this peer; only its reply is accepted.
    AwaitingReply(PeerId),
}

/// Splits a REP request into its envelope (every frame up to and including
/// the first empty delimiter) and its body.
///
/// Returns `None` for a message without a delimiter, which REP drops as libzmq does.
pub fn split_envelope(mut msg: Message) -> Option<(Message, Message)> {
    let pos = msg.iter().position(|f| f.is_empty())?;
    let envelope = msg.split_front(pos + 1);
    Some((envelope, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_split() {
        let (env, body) = split_envelope(Message::from(["id1", "id2", "", "a", "b"])).unwrap();
        assert_eq!(env, Message::from(["id1", "id2", ""]));
        assert_eq!(body, Message::from(["a", "b"]));
        let (env, body) = split_envelope(Message::from(["", ""])).unwrap();
        assert_eq!(env, Message::from([""]));
        assert_eq!(body, Message::from([""]));
        assert!(split_envelope(Message::from(["no", "delimiter"])).is_none());
    }
}
