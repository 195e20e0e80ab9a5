//! Fair queuing (PULL, DEALER, ROUTER, REP, SUB): one message from each peer
//! with input in turn, so no busy peer starves another.

use std::collections::VecDeque;

use super::PeerId;

/// The peers that have input waiting, in the order they get their turn.
///
/// A peer is in the queue at most once; the caller marks it ready on the
/// empty→non-empty edge of its input and puts it back after taking one
/// message if it still has more.
#[derive(Clone, Debug, Default)]
pub struct FairQueue {
    ready: VecDeque<PeerId>,
}

impl FairQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// `peer` has input (call once per empty→non-empty edge).
    pub fn push(&mut self, peer: PeerId) {
        self.ready.push_back(peer);
    }

    /// The peer whose turn it is; it leaves the queue.
    pub fn pop(&mut self) -> Option<PeerId> {
        self.ready.pop_front()
    }

    /// The peer whose turn it is, left in place.
    pub fn peek(&self) -> Option<PeerId> {
        self.ready.front().copied()
    }

    /// Forgets a peer (it went away with its input).
    pub fn remove(&mut self, peer: PeerId) {
        self.ready.retain(|&p| p != peer);
    }

    /// The peers in the queue, in turn order.
    pub fn iter(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.ready.iter().copied()
    }

    /// True when no peer has input.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_turns() {
        let mut fq = FairQueue::new();
        // Peer 1 has three messages, peer 2 has one: 1, 2, 1, 1.
        let mut pending = std::collections::HashMap::from([(1u64, 3), (2u64, 1)]);
        fq.push(1);
        fq.push(2);
        let mut order = vec![];
        while let Some(p) = fq.pop() {
            order.push(p);
            let left = pending.get_mut(&p).unwrap();
            *left -= 1;
            if *left > 0 {
                fq.push(p);
            }
        }
        assert_eq!(order, [1, 2, 1, 1]);
    }
}
