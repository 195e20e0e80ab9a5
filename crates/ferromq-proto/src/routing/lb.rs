//! Round-robin load balancing (PUSH, DEALER, REQ).

use super::PeerId;

/// Round-robin over the peers, skipping those that have no room.
#[derive(Clone, Debug, Default)]
pub struct LoadBalancer {
    peers: Vec<PeerId>,
    next: usize,
}

impl LoadBalancer {
    /// An empty balancer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a peer to the rotation, in id order.
    pub fn add(&mut self, peer: PeerId) {
        // Peers rank by id, which the runtime hands out in connect/accept
        // order: the rotation then visits them in that order, as libzmq's.
        if let Err(i) = self.peers.binary_search(&peer) {
            self.peers.insert(i, peer);
            if i < self.next {
                self.next += 1;
            }
        }
    }

    /// Removes a peer; the rotation continues with the one after it.
    pub fn remove(&mut self, peer: PeerId) {
        if let Some(i) = self.peers.iter().position(|&p| p == peer) {
            self.peers.remove(i);
            if i < self.next {
                self.next -= 1;
            }
            if self.next >= self.peers.len() {
                self.next = 0;
            }
        }
    }

    /// The peers in the rotation, in order.
    pub fn peers(&self) -> &[PeerId] {
        &self.peers
    }

    /// Number of peers in the rotation.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when there are no peers.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The next peer, in turn, for which `has_room` holds. The one after it is
    /// next in line, so every peer with room gets a turn.
    pub fn select(&mut self, mut has_room: impl FnMut(PeerId) -> bool) -> Option<PeerId> {
        let n = self.peers.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let p = self.peers[i];
            if has_room(p) {
                self.next = (i + 1) % n;
                return Some(p);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_skips_full_peers() {
        let mut lb = LoadBalancer::new();
        assert_eq!(lb.select(|_| true), None);
        for p in [1, 2, 3] {
            lb.add(p);
        }
        let picks: Vec<_> = (0..6).map(|_| lb.select(|_| true).unwrap()).collect();
        assert_eq!(picks, [1, 2, 3, 1, 2, 3]);
        assert_eq!(lb.select(|p| p != 1), Some(2));
        assert_eq!(lb.select(|p| p != 3), Some(1));
        assert_eq!(lb.select(|_| false), None);
    }

    #[test]
    fn removal_keeps_the_turn() {
        let mut lb = LoadBalancer::new();
        for p in [1, 2, 3] {
            lb.add(p);
        }
        assert_eq!(lb.select(|_| true), Some(1));
        lb.remove(1);
        assert_eq!(lb.select(|_| true), Some(2));
        lb.remove(3);
        assert_eq!(lb.select(|_| true), Some(2));
        lb.remove(2);
        assert!(lb.is_empty());
        assert_eq!(lb.select(|_| true), None);
    }
}
