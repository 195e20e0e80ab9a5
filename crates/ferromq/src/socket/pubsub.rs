//! Publish/subscribe routing: PUB/XPUB keep a trie of who subscribed to
//! what and fan each message out to the matching subscribers (dropping for
//! a full one, as libzmq does); SUB/XSUB keep their own subscriptions to
//! filter locally (SUB only) and to send again to every new connection.
//!
//! Subscriptions travel through the peer queues as one-frame messages
//! `0x01 topic` / `0x00 topic`; the connection driver turns them into
//! SUBSCRIBE/CANCEL commands for ZMTP 3.1 peers.

use bytes::{BufMut, Bytes, BytesMut};
use ferromq_proto::routing::PeerId;
use ferromq_proto::{Message, SocketType};

use super::core::{Peer, State};

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
        Some(1) => Some((true, first.slice(1..))),
        Some(0) => Some((false, first.slice(1..))),
        _ => None,
    }
}

impl State {
    /// PUB/XPUB: takes in what a subscriber sent. Returns true when the XPUB
    /// queue is full and the peer must stop reading.
    pub(crate) fn publisher_input(
        &mut self,
        kind: SocketType,
        id: PeerId,
        batch: &mut Vec<Message>,
    ) -> (bool, bool) {
        let was_empty = self.xpub_pending.is_empty();
        for msg in batch.drain(..) {
            match as_subscription(&msg) {
                Some((true, topic)) => {
                    let first = self.subs.subscribe(&topic, id);
                    if kind == SocketType::XPub && (first || self.opts.xpub_verbose) {
                        self.xpub_pending.push_back(msg);
                    }
                }
                Some((false, topic)) => {
                    let last = self.subs.unsubscribe(&topic, id);
                    if kind == SocketType::XPub && (last || self.opts.xpub_verboser) {
                        self.xpub_pending.push_back(msg);
                    }
                }
                // Data from below reaches an XPUB's application; a PUB drops it.
                None if kind == SocketType::XPub => self.xpub_pending.push_back(msg),
                None => {}
            }
        }
        let full = self.opts.in_full(self.xpub_pending.len());
        if let Some(p) = self.peers.get_mut(&id) {
            p.read_paused = full;
        }
        (full, was_empty && !self.xpub_pending.is_empty())
    }

    /// PUB/XPUB: a subscriber left; its subscriptions go with it, and an
    /// XPUB hears of every topic nobody subscribes to any more.
    pub(crate) fn publisher_lost(&mut self, kind: SocketType, id: PeerId) {
        let pending = &mut self.xpub_pending;
        self.subs.remove_peer(id, |topic| {
            if kind == SocketType::XPub {
                pending.push_back(subscription_message(false, topic));
            }
        });
    }

    /// PUB/XPUB send: one copy (shared payload) per matching subscriber with
    /// room. With `xpub_nodrop`, `Err(())` (would block) if one is full.
    /// Returns the peers whose queue went from empty to non-empty.
    pub(crate) fn fan_out(&mut self, msg: Message) -> Result<Vec<PeerId>, Message> {
        let topic = msg.frames().first().cloned().unwrap_or_default();
        let mut targets: Vec<PeerId> = Vec::new();
        if self.opts.invert_matching {
            let mut matched = Vec::new();
            self.subs.for_each_match(&topic, |p| matched.push(p));
            targets.extend(
                self.peers
                    .iter()
                    .filter(|(id, p)| p.connected && !matched.contains(id))
                    .map(|(id, _)| *id),
            );
        } else {
            self.subs.for_each_match(&topic, |p| targets.push(p));
        }
        let opts = &self.opts;
        let room = |p: &Peer| opts.has_out_room(p.out.len());
        if opts.xpub_nodrop
            && targets
                .iter()
                .any(|t| self.peers.get(t).is_some_and(|p| !room(p)))
        {
            return Err(msg);
        }
        let mut woken = Vec::new();
        for t in targets {
            if let Some(p) = self.peers.get_mut(&t) {
                if p.connected && opts.has_out_room(p.out.len()) {
                    if p.out.is_empty() {
                        woken.push(t);
                    }
                    if opts.conflate {
                        p.out.clear();
                    }
                    p.out.push_back(msg.clone());
                }
            }
        }
        Ok(woken)
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
            if p.read_paused && self.opts.in_resume(p.inbox.len()) {
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
            if p.connected && self.opts.has_out_room(p.out.len()) {
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
