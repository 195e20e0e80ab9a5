//! Publish/subscribe routing: PUB/XPUB keep a trie of who subscribed to
//! what and fan each message out to the matching subscribers (dropping for
//! a full one, as libzmq does); SUB/XSUB keep their own subscriptions to
//! filter locally (SUB only) and to send again to every new connection.
//!
//! Subscriptions travel through the peer queues as one-frame messages
//! `0x01 topic` / `0x00 topic`; the connection driver turns them into
//! SUBSCRIBE/CANCEL commands for ZMTP 3.1 peers.

use bytes::{BufMut, Bytes, BytesMut};
use ferromq_proto::routing::{PeerId, SubscriptionTrie};
use ferromq_proto::{Message, SocketType};
use smallvec::SmallVec;

use super::core::{Peer, State};
use crate::transport::wire::{Encoded, Wire};
use std::sync::Arc;

/// `0x01 topic` or `0x00 topic`.
pub(crate) fn subscription_message(subscribe: bool, topic: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(topic.len() + 1);
    b.put_u8(u8::from(subscribe));
    b.put_slice(topic);
    Message::from(b.freeze())
}

/// Whether a message is a subscription (`Some(true)`) or cancellation
/// (`Some(false)`) in message form, with its topic.
pub(crate) fn as_subscription(msg: &Message) -> Option<(bool, Bytes)> {
    let first = msg.frames().first()?;
    match first.first() {
        Some(1) => Some((true, first.slice(1..).into_bytes())),
        Some(0) => Some((false, first.slice(1..).into_bytes())),
        _ => None,
    }
}

/// Splits a message into the subscriptions it carries and the data left
/// over, the way libzmq's XPUB (and XSUB on send) reads it frame by frame:
/// every frame starting with 0x01/0x00 is a (un)subscription, the others
/// are data. With `only_first`, a message whose first frame is not a
/// subscription is data as a whole.
pub(crate) fn split_subscriptions(
    msg: Message,
    only_first: bool,
) -> (SmallVec<[(bool, Bytes); 1]>, Option<Message>) {
    let mut subs = SmallVec::new();
    if msg.len() == 1 {
        return match as_subscription(&msg) {
            Some(s) => {
                subs.push(s);
                (subs, None)
            }
            None => (subs, Some(msg)),
        };
    }
    if only_first && as_subscription(&msg).is_none() {
        return (subs, Some(msg));
    }
    let mut data = Message::new();
    for frame in msg.frames() {
        match frame.first() {
            Some(&b) if b <= 1 => subs.push((b == 1, frame.slice(1..).into_bytes())),
            _ => data.push(frame.clone()),
        }
    }
    (subs, (!data.is_empty()).then_some(data))
}

impl State {
    /// PUB/XPUB: takes in what a subscriber sent. Returns whether the XPUB
    /// queue is full (the peer must stop reading) and whether it went from
    /// empty to non-empty.
    pub(crate) fn publisher_input(
        &mut self,
        kind: SocketType,
        id: PeerId,
        batch: &mut Vec<Message>,
    ) -> (bool, bool) {
        let was_empty = self.xpub_pending.is_empty();
        for msg in batch.drain(..) {
            let (subs, data) = split_subscriptions(msg, self.opts.only_first_subscribe);
            for (subscribe, topic) in subs {
                self.apply_subscription(kind, id, subscribe, topic);
            }
            // Data from below reaches an XPUB's application; a PUB drops it.
            if let Some(data) = data.filter(|_| kind == SocketType::XPub) {
                self.xpub_pending.push_back((data, None));
            }
        }
        let full = self.opts.in_full(self.xpub_pending.len(), 0);
        if let Some(p) = self.peers.get_mut(&id) {
            p.read_paused = full;
        }
        (full, was_empty && !self.xpub_pending.is_empty())
    }

    /// One subscription from subscriber `id`: applied to the trie (told to
    /// an XPUB's application when new, or always when verbose), or in
    /// manual mode only recorded and passed up for the application to apply.
    fn apply_subscription(&mut self, kind: SocketType, id: PeerId, subscribe: bool, topic: Bytes) {
        let (notify, from) = if self.opts.xpub_manual {
            if subscribe {
                self.manual_subs.subscribe(&topic, id);
            } else {
                self.manual_subs.unsubscribe(&topic, id);
            }
            (true, Some(id))
        } else if subscribe {
            // One peer's subscriptions are a set, as in libzmq's mtrie: a
            // repeated subscription changes nothing, one cancel removes it.
            let first = !self.subs.contains(&topic, id) && self.subs.subscribe(&topic, id);
            (first || self.opts.xpub_verbose, None)
        } else {
            let last = self.subs.unsubscribe(&topic, id);
            (last || self.opts.xpub_verboser, None)
        };
        if kind == SocketType::XPub && notify {
            self.xpub_pending
                .push_back((subscription_message(subscribe, &topic), from));
        }
    }

    /// PUB/XPUB: a subscriber left; its subscriptions go with it, and an
    /// XPUB hears of every topic nobody subscribes to any more (of every
    /// topic the subscriber had, with `xpub_verboser` or in manual mode).
    pub(crate) fn publisher_lost(&mut self, kind: SocketType, id: PeerId) {
        let pending = &mut self.xpub_pending;
        let mut tell = |topic: &[u8]| {
            if kind == SocketType::XPub {
                pending.push_back((subscription_message(false, topic), None));
            }
        };
        if self.opts.xpub_manual {
            self.manual_subs
                .remove_peer_each(id, |topic, _| tell(topic));
            self.subs.remove_peer(id, |_| {});
        } else {
            let all = self.opts.xpub_verboser;
            self.subs.remove_peer_each(id, |topic, last| {
                if last || all {
                    tell(topic);
                }
            });
        }
        if self.xpub_last == Some(id) {
            self.xpub_last = None;
        }
    }

    /// XPUB in manual mode: applies a subscription for the subscriber whose
    /// message the application received last. Returns false when there is
    /// none (it left, or nothing was received yet).
    pub(crate) fn manual_subscription(&mut self, subscribe: bool, topic: &[u8]) -> bool {
        let Some(id) = self.xpub_last else {
            return false;
        };
        if !subscribe {
            self.subs.unsubscribe(topic, id);
        } else if !self.subs.contains(topic, id) {
            self.subs.subscribe(topic, id);
        }
        true
    }

    /// SUB: whether a received message passes the subscriptions (or, with
    /// invert_matching, fails them).
    pub(crate) fn sub_matches(&self, msg: &Message) -> bool {
        passes(&self.filter, self.opts.invert_matching, msg)
    }

    /// PUB/XPUB send: one copy (shared payload) per matching subscriber with
    /// room. With `xpub_nodrop`, `Err(())` (would block) if one is full.
    /// Returns the peers whose queue went from empty to non-empty, and the
    /// connections due a [`Wire::flush_due`] once the state is let go.
    #[allow(clippy::type_complexity)]
    pub(crate) fn fan_out(
        &mut self,
        msg: Message,
    ) -> Result<(Vec<PeerId>, SmallVec<[Arc<Wire>; 4]>), Message> {
        // Borrowed, not cloned (a clone would make the payload's buffer
        // shared, an allocation); no allocation for a few subscribers either.
        let topic: &[u8] = msg.frames().first().map_or(&[], |t| &t[..]);
        let mut targets: SmallVec<[PeerId; 8]> = SmallVec::new();
        if self.opts.invert_matching {
            let mut matched: SmallVec<[PeerId; 8]> = SmallVec::new();
            self.subs.for_each_match(topic, |p| matched.push(p));
            targets.extend(
                self.peers
                    .iter()
                    .filter(|(id, p)| p.connected && !matched.contains(id))
                    .map(|(id, _)| *id),
            );
        } else {
            self.subs.for_each_match(topic, |p| targets.push(p));
        }
        let opts = &self.opts;
        let room = |p: &Peer| p.has_room(opts);
        if opts.xpub_nodrop
            && targets
                .iter()
                .any(|t| self.peers.get(t).is_some_and(|p| !room(p)))
        {
            return Err(msg);
        }
        let mut woken = Vec::new();
        let mut flush = SmallVec::new();
        let mut queue_to: SmallVec<[PeerId; 8]> = SmallVec::new();
        for t in targets {
            if let Some(p) = self.peers.get_mut(&t) {
                if p.connected && p.has_room(opts) {
                    // A busy tcp/ipc subscriber: encoded here, no copy of
                    // the message queued for its driver to take apart.
                    if !opts.conflate {
                        match p.try_encode(&msg) {
                            Encoded::No => {}
                            Encoded::Yes => continue,
                            Encoded::FlushDue => {
                                flush.extend(p.wire().cloned());
                                continue;
                            }
                        }
                    }
                    if p.out.is_empty() {
                        woken.push(t);
                    }
                    if opts.conflate {
                        p.out.clear();
                    }
                    queue_to.push(t);
                }
            }
        }
        // The last queue gets the message itself, the others a clone each
        // (a clone makes the payload's buffer shared: an allocation).
        if let Some((last, rest)) = queue_to.split_last() {
            for t in rest {
                if let Some(p) = self.peers.get_mut(t) {
                    p.out.push_back(msg.clone());
                }
            }
            if let Some(p) = self.peers.get_mut(last) {
                p.out.push_back(msg);
            }
        }
        Ok((woken, flush))
    }

    /// SUB/XSUB: records a subscription change and queues it to every
    /// connected peer. A cancellation is sent only when the last
    /// subscription to the topic goes (subscriptions are counted).
    pub(crate) fn subscriber_change(&mut self, subscribe: bool, topic: &[u8]) -> Vec<PeerId> {
        let send = if subscribe {
            self.filter.subscribe(topic, ());
            true
        } else {
            self.filter.unsubscribe(topic, ())
        };
        if !send {
            return Vec::new();
        }
        let msg = subscription_message(subscribe, topic);
        let mut woken = Vec::new();
        for (id, p) in self.peers.iter_mut().filter(|(_, p)| p.connected) {
            if p.out.is_empty() {
                woken.push(*id);
            }
            // Subscriptions are control traffic: they ignore the HWM.
            p.out.push_back(msg.clone());
        }
        woken
    }

    /// SUB: drops messages at the head of the fair queue that no longer
    /// match (the subscription changed after the publisher matched them),
    /// so readiness reports only what `recv` would return, as libzmq does.
    /// Returns the drivers of peers that may read again.
    pub(crate) fn discard_unmatched(&mut self) -> Vec<std::sync::Arc<tokio::sync::Notify>> {
        let mut resumed = Vec::new();
        while let Some(id) = self.fq.peek() {
            let Some(p) = self.peers.get_mut(&id) else {
                self.fq.pop();
                continue;
            };
            let Some(front) = p.inbox.front() else {
                p.in_fq = false;
                self.fq.pop();
                continue;
            };
            let hit = front
                .frames()
                .first()
                .is_some_and(|t| self.filter.matches(t));
            if hit != self.opts.invert_matching {
                break;
            }
            p.inbox.pop_front();
            if p.read_paused && self.opts.in_resume(p.inbox.len(), p.inbox.bytes()) {
                p.read_paused = false;
                resumed.push(p.driver.clone());
            }
            if p.inbox.is_empty() {
                p.in_fq = false;
                self.fq.pop();
                if p.gone {
                    self.peers.remove(&id);
                }
            }
        }
        resumed
    }

    /// XSUB: a data message upstream goes to every connected peer with room.
    pub(crate) fn distribute(&mut self, msg: Message) -> Vec<PeerId> {
        let mut woken = Vec::new();
        for (id, p) in self.peers.iter_mut() {
            if p.connected && p.has_room(&self.opts) {
                if p.out.is_empty() {
                    woken.push(*id);
                }
                p.out.push_back(msg.clone());
            }
        }
        woken
    }

    /// How to get the queues of `ids` moving (once the lock is released).
    pub(crate) fn kicks(&self, ids: &[PeerId]) -> Vec<super::core::Kick> {
        ids.iter()
            .filter_map(|id| self.peers.get(id))
            .map(|p| p.kick())
            .collect()
    }

    /// SUB/XSUB: a connection came up; it gets every subscription afresh
    /// (stale ones queued while it was away are replaced).
    pub(crate) fn subscriber_attached(&mut self, id: PeerId) {
        let prefixes = self.filter.prefixes();
        if let Some(p) = self.peers.get_mut(&id) {
            p.out.retain(|m| as_subscription(m).is_none());
            for prefix in prefixes.iter().rev() {
                p.out.push_front(subscription_message(true, prefix));
            }
        }
    }
}

/// Whether `msg` passes a SUB's `filter` (see [`State::sub_matches`]).
pub(crate) fn passes(filter: &SubscriptionTrie<()>, invert: bool, msg: &Message) -> bool {
    let hit = msg.frames().first().is_some_and(|t| filter.matches(t));
    hit != invert
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::{Context, Error, SocketType};

    /// A SUB takes its peer's whole queue into its receive cache on the
    /// first receive; an unsubscribe after that must still keep what no
    /// longer matches from being received, or making the SUB readable.
    #[test]
    fn an_unsubscribe_filters_messages_already_taken_in_one_go() {
        let ctx = Context::new();
        let publisher = ctx.socket(SocketType::Pub).unwrap();
        publisher.bind("tcp://127.0.0.1:*").unwrap();
        let sub = ctx.socket(SocketType::Sub).unwrap();
        sub.set_rcvtimeo(Some(Duration::from_secs(10)));
        sub.subscribe("a").unwrap();
        sub.subscribe("b").unwrap();
        sub.connect(&publisher.last_endpoint()).unwrap();
        // Until the subscriptions are in: probes until one arrives.
        sub.set_rcvtimeo(Some(Duration::from_millis(20)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while sub.recv().is_err() {
            assert!(Instant::now() < deadline, "subscriptions never arrived");
            publisher.send("a-probe").unwrap();
        }
        while sub.try_recv().is_ok() {}
        sub.set_rcvtimeo(Some(Duration::from_secs(10)));
        for m in ["a-1", "b-1", "a-2", "b-2"] {
            publisher.send(m).unwrap();
        }
        // All four queued before the first receive takes them together.
        let queued = || {
            let st = sub.core().state.lock();
            st.peers.values().map(|p| p.inbox.len()).sum::<usize>()
        };
        while queued() < 4 {
            assert!(Instant::now() < deadline, "the messages never arrived");
            std::thread::yield_now();
        }
        assert_eq!(&sub.recv().unwrap()[0][..], b"a-1");
        sub.unsubscribe("b").unwrap();
        assert_eq!(&sub.recv().unwrap()[0][..], b"a-2", "b-1 no longer matches");
        assert!(!sub.readiness().readable, "b-2 makes the SUB readable");
        assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
    }
}
