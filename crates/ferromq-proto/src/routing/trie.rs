//! Subscription matching (PUB, XPUB, SUB, XSUB): which peers subscribed to a
//! prefix of a message.
//!
//! One structure serves both sides: PUB/XPUB keep one entry per subscriber
//! (libzmq's `mtrie`) and send a message to every peer [`for_each_match`]
//! names; SUB keeps its own subscriptions under a single key (libzmq's
//! `trie`) and drops what [`matches`] refuses.
//!
//! The trie is a radix tree in an arena: every edge carries a run of bytes, so
//! a 10 MB topic is one node rather than ten million, and no operation
//! recurses, so no topic length can overflow the stack. Emptied nodes are
//! pruned and freed slots are compacted away, so memory follows what is
//! subscribed now, not what ever was.
//!
//! [`for_each_match`]: SubscriptionTrie::for_each_match
//! [`matches`]: SubscriptionTrie::matches

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::Hash;
use std::mem;

use smallvec::SmallVec;

/// Index of a node in the arena.
type NodeId = usize;

/// The root (the empty prefix) is always node 0 and is never freed.
const ROOT: NodeId = 0;

/// Freed slots are compacted away once there are more of them than this and
/// than live nodes plus subscriptions (so compaction is amortised O(1)).
const COMPACT_MIN_FREE: usize = 64;

#[derive(Clone, Debug)]
struct Node<P> {
    /// Bytes on the edge from the parent into this node; empty only for the
    /// root (and for free slots).
    label: Vec<u8>,
    /// The parent node (the root points to itself).
    parent: NodeId,
    /// Children, sorted by the first byte of their label (which is unique).
    children: Vec<(u8, NodeId)>,
    /// Subscribers of the prefix ending at this node, with their counts (> 0).
    subs: BTreeMap<P, usize>,
}

impl<P> Node<P> {
    fn new(label: Vec<u8>, parent: NodeId) -> Self {
        Node {
            label,
            parent,
            children: Vec::new(),
            subs: BTreeMap::new(),
        }
    }

    fn child_pos(&self, byte: u8) -> Result<usize, usize> {
        self.children.binary_search_by_key(&byte, |&(b, _)| b)
    }

    fn child(&self, byte: u8) -> Option<NodeId> {
        self.child_pos(byte).ok().map(|i| self.children[i].1)
    }
}

/// Reference-counted prefix subscriptions of a set of peers.
///
/// Every (prefix, peer) pair has a count: subscribing twice needs two
/// unsubscribes. A message matches a peer when one of the peer's prefixes is
/// a prefix of the message; the empty prefix matches everything.
///
/// ```
/// use ferromq_proto::routing::SubscriptionTrie;
///
/// let mut t = SubscriptionTrie::new();
/// assert!(t.subscribe(b"weather", 1u64)); // first subscriber: forward it
/// assert!(!t.subscribe(b"weather", 2)); // already known upstream
/// t.subscribe(b"", 3); // everything
/// let mut to = vec![];
/// t.for_each_match(b"weather.paris", |p| to.push(p));
/// to.sort();
/// assert_eq!(to, [1, 2, 3]);
/// assert!(!t.unsubscribe(b"weather", 1));
/// assert!(t.unsubscribe(b"weather", 2)); // last one: cancel upstream
/// ```
#[derive(Clone, Debug)]
pub struct SubscriptionTrie<P> {
    /// Node arena; slot [`ROOT`] is the root.
    nodes: Vec<Node<P>>,
    /// Free slots of `nodes`.
    free: Vec<NodeId>,
    /// For each peer, the nodes where it has a subscription (for
    /// [`remove_peer`](Self::remove_peer)).
    by_peer: BTreeMap<P, BTreeSet<NodeId>>,
    /// Number of prefixes with at least one subscriber.
    prefixes: usize,
    /// Number of (prefix, peer) pairs with a count > 0.
    pairs: usize,
}

impl<P: Copy + Eq + Hash + Ord> Default for SubscriptionTrie<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Copy + Eq + Hash + Ord> SubscriptionTrie<P> {
    /// An empty trie.
    pub fn new() -> Self {
        SubscriptionTrie {
            nodes: vec![Node::new(Vec::new(), ROOT)],
            free: Vec::new(),
            by_peer: BTreeMap::new(),
            prefixes: 0,
            pairs: 0,
        }
    }

    /// Number of distinct prefixes that have at least one subscriber.
    pub fn len(&self) -> usize {
        self.prefixes
    }

    /// True when nobody subscribed to anything.
    pub fn is_empty(&self) -> bool {
        self.prefixes == 0
    }

    /// Subscribes `peer` to `prefix` (once more, if it already was).
    ///
    /// Returns true when no peer was subscribed to `prefix` before, i.e. when
    /// the subscription is new to this socket and must go upstream.
    pub fn subscribe(&mut self, prefix: &[u8], peer: P) -> bool {
        let id = self.find_or_insert(prefix);
        let node = &mut self.nodes[id];
        let first = node.subs.is_empty();
        let count = node.subs.entry(peer).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.pairs += 1;
            self.by_peer.entry(peer).or_default().insert(id);
        }
        if first {
            self.prefixes += 1;
        }
        first
    }

    /// Takes back one subscription of `peer` to `prefix`.
    ///
    /// Returns true when that was the last subscription to `prefix` by any
    /// peer, i.e. when the cancel must go upstream. Unsubscribing what is not
    /// subscribed returns false and changes nothing.
    pub fn unsubscribe(&mut self, prefix: &[u8], peer: P) -> bool {
        let Some(id) = self.find(prefix) else {
            return false;
        };
        let node = &mut self.nodes[id];
        let Some(count) = node.subs.get_mut(&peer) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        node.subs.remove(&peer);
        let last = node.subs.is_empty();
        self.pairs -= 1;
        if let Some(set) = self.by_peer.get_mut(&peer) {
            set.remove(&id);
            if set.is_empty() {
                self.by_peer.remove(&peer);
            }
        }
        if last {
            self.prefixes -= 1;
            self.prune(id);
            self.tidy();
        }
        last
    }

    /// Whether `peer` is subscribed to exactly `prefix`.
    pub fn contains(&self, prefix: &[u8], peer: P) -> bool {
        self.find(prefix)
            .is_some_and(|id| self.nodes[id].subs.contains_key(&peer))
    }

    /// Drops every subscription of `peer` (it went away), whatever the
    /// counts, and calls `on_last` with each prefix that is left without any
    /// subscriber (in no particular order).
    pub fn remove_peer(&mut self, peer: P, mut on_last: impl FnMut(&[u8])) {
        self.remove_peer_each(peer, |prefix, last| {
            if last {
                on_last(prefix);
            }
        });
    }

    /// Like [`remove_peer`](Self::remove_peer), but calls `on_removed` with
    /// every prefix `peer` was subscribed to, and whether it was the last
    /// subscriber of that prefix (an XPUB in verbose-unsubscribe or manual
    /// mode reports them all).
    pub fn remove_peer_each(&mut self, peer: P, mut on_removed: impl FnMut(&[u8], bool)) {
        let Some(ids) = self.by_peer.remove(&peer) else {
            return;
        };
        let mut prefix = Vec::new();
        for id in ids {
            // Only nodes without subscribers are freed or merged away, and
            // every node in `ids` still has `peer` until we get to it, so the
            // ids stay valid while we prune.
            let node = &mut self.nodes[id];
            node.subs.remove(&peer);
            self.pairs -= 1;
            let last = node.subs.is_empty();
            self.prefix_of(id, &mut prefix);
            on_removed(&prefix, last);
            if last {
                self.prefixes -= 1;
                self.prune(id);
            }
        }
        self.tidy();
    }

    /// Calls `f` once for each peer subscribed to a prefix of `data` (once
    /// even if several of its prefixes match).
    ///
    /// Walks one path of the trie, so the cost follows the length of `data`
    /// and the number of matches, not the number of subscriptions.
    pub fn for_each_match(&self, data: &[u8], mut f: impl FnMut(P)) {
        let mut hits: SmallVec<[NodeId; 8]> = SmallVec::new();
        self.walk(data, |id| {
            hits.push(id);
            true
        });
        match hits[..] {
            [] => {}
            [id] => self.nodes[id].subs.keys().for_each(|&p| f(p)),
            _ => {
                let total = hits.iter().map(|&id| self.nodes[id].subs.len()).sum();
                let mut seen = HashSet::with_capacity(total);
                for &id in &hits {
                    for &p in self.nodes[id].subs.keys() {
                        if seen.insert(p) {
                            f(p);
                        }
                    }
                }
            }
        }
    }

    /// True when any peer is subscribed to a prefix of `data`.
    pub fn matches(&self, data: &[u8]) -> bool {
        let mut hit = false;
        self.walk(data, |_| {
            hit = true;
            false
        });
        hit
    }

    /// Every prefix that has at least one subscriber, in lexicographic order
    /// (what to send again after a reconnect).
    pub fn prefixes(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.prefixes);
        let mut path = Vec::new();
        // (node, length of `path` before this node's label)
        let mut stack = vec![(ROOT, 0)];
        while let Some((id, depth)) = stack.pop() {
            let node = &self.nodes[id];
            path.truncate(depth);
            path.extend_from_slice(&node.label);
            if !node.subs.is_empty() {
                out.push(path.clone());
            }
            let depth = path.len();
            stack.extend(node.children.iter().rev().map(|&(_, c)| (c, depth)));
        }
        out
    }

    /// Calls `hit` for each node with subscribers on the path of `data`, from
    /// the root down, until it returns false.
    fn walk(&self, data: &[u8], mut hit: impl FnMut(NodeId) -> bool) {
        let mut id = ROOT;
        let mut rest = data;
        loop {
            let node = &self.nodes[id];
            if !node.subs.is_empty() && !hit(id) {
                return;
            }
            let Some(child) = rest.first().and_then(|&b| node.child(b)) else {
                return;
            };
            let label = &self.nodes[child].label;
            if !rest.starts_with(label) {
                return;
            }
            rest = &rest[label.len()..];
            id = child;
        }
    }

    /// The node of exactly `prefix`, if there is one.
    fn find(&self, prefix: &[u8]) -> Option<NodeId> {
        let mut id = ROOT;
        let mut rest = prefix;
        while let Some(&b) = rest.first() {
            let child = self.nodes[id].child(b)?;
            let label = &self.nodes[child].label;
            if !rest.starts_with(label) {
                return None;
            }
            rest = &rest[label.len()..];
            id = child;
        }
        Some(id)
    }

    /// The node of exactly `prefix`, made (splitting an edge if need be) if
    /// there is none. The caller must give it a subscriber, or the node may
    /// break the "subscribers or two children" shape that pruning relies on.
    fn find_or_insert(&mut self, prefix: &[u8]) -> NodeId {
        let mut id = ROOT;
        let mut rest = prefix;
        while let Some(&b) = rest.first() {
            match self.nodes[id].child_pos(b) {
                Err(pos) => {
                    let leaf = self.alloc(Node::new(rest.to_vec(), id));
                    self.nodes[id].children.insert(pos, (b, leaf));
                    return leaf;
                }
                Ok(pos) => {
                    let child = self.nodes[id].children[pos].1;
                    let label = &self.nodes[child].label;
                    let common = common_len(label, rest);
                    if common < label.len() {
                        // `rest` leaves the edge midway: split it there.
                        let mut head = mem::take(&mut self.nodes[child].label);
                        let tail = head.split_off(common);
                        head.shrink_to_fit();
                        let tail_byte = tail[0];
                        let mid = self.alloc(Node::new(head, id));
                        let c = &mut self.nodes[child];
                        c.label = tail;
                        c.parent = mid;
                        self.nodes[mid].children.push((tail_byte, child));
                        self.nodes[id].children[pos].1 = mid;
                        id = mid;
                    } else {
                        id = child;
                    }
                    rest = &rest[common..];
                }
            }
        }
        id
    }

    /// Restores the shape after `id` lost its last subscriber: every node but
    /// the root has subscribers or at least two children.
    fn prune(&mut self, mut id: NodeId) {
        while id != ROOT && self.nodes[id].subs.is_empty() {
            let parent = self.nodes[id].parent;
            match self.nodes[id].children[..] {
                [] => {
                    // A bare leaf: unlink it; the parent may now need work.
                    let b = self.nodes[id].label[0];
                    let p = &mut self.nodes[parent];
                    if let Ok(pos) = p.child_pos(b) {
                        p.children.remove(pos);
                    }
                    if p.children.capacity() > 4 * p.children.len().max(1) {
                        p.children.shrink_to_fit();
                    }
                    self.release(id);
                    id = parent;
                }
                [(_, child)] => {
                    // A pass-through node: fold its label into its only child.
                    let mut label = mem::take(&mut self.nodes[id].label);
                    label.extend_from_slice(&self.nodes[child].label);
                    let b = label[0];
                    let c = &mut self.nodes[child];
                    c.label = label;
                    c.parent = parent;
                    let p = &mut self.nodes[parent];
                    if let Ok(pos) = p.child_pos(b) {
                        p.children[pos].1 = child;
                    }
                    self.release(id);
                    return;
                }
                _ => return,
            }
        }
    }

    /// Writes the full prefix of node `id` into `out`.
    fn prefix_of(&self, mut id: NodeId, out: &mut Vec<u8>) {
        let mut parts: SmallVec<[&[u8]; 16]> = SmallVec::new();
        while id != ROOT {
            parts.push(&self.nodes[id].label);
            id = self.nodes[id].parent;
        }
        out.clear();
        out.reserve(parts.iter().map(|p| p.len()).sum());
        for part in parts.iter().rev() {
            out.extend_from_slice(part);
        }
    }

    fn alloc(&mut self, node: Node<P>) -> NodeId {
        match self.free.pop() {
            Some(id) => {
                self.nodes[id] = node;
                id
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    fn release(&mut self, id: NodeId) {
        debug_assert_ne!(id, ROOT);
        // Drop the slot's allocations now; only the fixed-size slot stays.
        self.nodes[id] = Node::new(Vec::new(), ROOT);
        self.free.push(id);
    }

    /// Gives back the memory of freed slots once they outweigh what is live.
    fn tidy(&mut self) {
        if self.prefixes == 0 {
            // Nothing left: every non-root node had a subscriber or two
            // children, so the root is bare too. Start afresh.
            *self = Self::new();
            return;
        }
        let live = self.nodes.len() - self.free.len();
        if self.free.len() > COMPACT_MIN_FREE && self.free.len() > live + self.pairs {
            self.compact();
        }
    }

    /// Moves the live nodes together and renumbers them (in order, so the
    /// root stays at 0 and sorted sets stay sorted).
    fn compact(&mut self) {
        let mut map = vec![0; self.nodes.len()];
        let mut vacant = vec![false; self.nodes.len()];
        for &id in &self.free {
            vacant[id] = true;
        }
        let mut next = 0;
        for (id, slot) in map.iter_mut().enumerate() {
            if !vacant[id] {
                *slot = next;
                next += 1;
            }
        }
        let old = mem::take(&mut self.nodes);
        self.nodes = Vec::with_capacity(next);
        for (id, mut node) in old.into_iter().enumerate() {
            if vacant[id] {
                continue;
            }
            node.parent = map[node.parent];
            for (_, c) in &mut node.children {
                *c = map[*c];
            }
            self.nodes.push(node);
        }
        for set in self.by_peer.values_mut() {
            *set = set.iter().map(|&id| map[id]).collect();
        }
        self.free = Vec::new();
    }
}

/// Length of the common prefix of `a` and `b`.
fn common_len(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 64;
    let n = a.len().min(b.len());
    let mut i = 0;
    // Skip equal chunks with slice compares (memcmp) before going bytewise.
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl<P: Copy + Eq + Hash + Ord + std::fmt::Debug> SubscriptionTrie<P> {
        /// Checks the shape, the counters and the per-peer index.
        fn check(&self) {
            let mut reachable = 0;
            let mut prefixes = 0;
            let mut pairs = BTreeMap::<P, BTreeSet<NodeId>>::new();
            let mut stack = vec![ROOT];
            while let Some(id) = stack.pop() {
                reachable += 1;
                let node = &self.nodes[id];
                if id != ROOT {
                    assert!(!node.label.is_empty(), "empty label at {id}");
                    assert!(
                        !node.subs.is_empty() || node.children.len() >= 2,
                        "prunable node {id}"
                    );
                } else {
                    assert!(node.label.is_empty());
                }
                if !node.subs.is_empty() {
                    prefixes += 1;
                }
                for (&p, &n) in &node.subs {
                    assert!(n > 0);
                    pairs.entry(p).or_default().insert(id);
                }
                for w in node.children.windows(2) {
                    assert!(w[0].0 < w[1].0);
                }
                for &(b, c) in &node.children {
                    assert_eq!(self.nodes[c].label[0], b);
                    assert_eq!(self.nodes[c].parent, id);
                    stack.push(c);
                }
            }
            assert_eq!(reachable + self.free.len(), self.nodes.len(), "leak");
            assert_eq!(prefixes, self.prefixes);
            assert_eq!(pairs.values().map(|s| s.len()).sum::<usize>(), self.pairs);
            assert_eq!(pairs, self.by_peer);
        }
    }

    fn matched(t: &SubscriptionTrie<u64>, data: &[u8]) -> Vec<u64> {
        let mut v = vec![];
        t.for_each_match(data, |p| v.push(p));
        v.sort();
        v
    }

    #[test]
    fn first_and_last_subscriber() {
        let mut t = SubscriptionTrie::new();
        assert!(t.is_empty());
        assert!(t.subscribe(b"abc", 1u64));
        assert!(!t.subscribe(b"abc", 1));
        assert!(!t.subscribe(b"abc", 2));
        assert_eq!(t.len(), 1);
        assert!(!t.unsubscribe(b"abc", 1));
        assert!(!t.unsubscribe(b"abc", 2));
        assert_eq!(matched(&t, b"abcd"), [1]);
        assert!(t.unsubscribe(b"abc", 1));
        assert!(t.is_empty());
        assert!(!t.unsubscribe(b"abc", 1), "nothing left to take back");
        assert!(!t.unsubscribe(b"ab", 3));
        assert!(!t.unsubscribe(b"", 3));
        assert!(t.is_empty());
        t.check();
        assert_eq!(t.nodes.len(), 1);
    }

    #[test]
    fn unsubscribing_what_is_not_subscribed_changes_nothing() {
        let mut t = SubscriptionTrie::new();
        t.subscribe(b"abc", 1u64);
        t.subscribe(b"abd", 1);
        assert!(!t.unsubscribe(b"abc", 2)); // other peer
        assert!(!t.unsubscribe(b"ab", 1)); // inner split node
        assert!(!t.unsubscribe(b"a", 1)); // midway along an edge
        assert!(!t.unsubscribe(b"abcd", 1)); // past a leaf
        t.check();
        assert_eq!(t.prefixes(), [b"abc".to_vec(), b"abd".to_vec()]);
        assert_eq!(matched(&t, b"abc"), [1]);
    }

    #[test]
    fn matches_prefixes_only() {
        let mut t = SubscriptionTrie::new();
        t.subscribe(b"ab", 1u64);
        t.subscribe(b"abcd", 2);
        t.subscribe(b"b", 3);
        assert_eq!(matched(&t, b""), [0u64; 0]);
        assert_eq!(matched(&t, b"a"), [0u64; 0]);
        assert_eq!(matched(&t, b"ab"), [1]);
        assert_eq!(matched(&t, b"abc"), [1]);
        assert_eq!(matched(&t, b"abcd"), [1, 2]);
        assert_eq!(matched(&t, b"abce"), [1]);
        assert_eq!(matched(&t, b"bz"), [3]);
        assert_eq!(matched(&t, b"c"), [0u64; 0]);
        assert!(t.matches(b"abx"));
        assert!(!t.matches(b"ax"));
        t.check();
    }

    #[test]
    fn empty_prefix_matches_everything() {
        let mut t = SubscriptionTrie::new();
        assert!(!t.matches(b""));
        assert!(t.subscribe(b"", 7u64));
        for data in [&b""[..], b"x", b"\0\xff", &[1; 1000]] {
            assert!(t.matches(data));
            assert_eq!(matched(&t, data), [7]);
        }
        assert_eq!(t.prefixes(), [Vec::<u8>::new()]);
        assert!(t.unsubscribe(b"", 7));
        assert!(!t.matches(b"x"));
        t.check();
    }

    #[test]
    fn a_peer_is_matched_once() {
        let mut t = SubscriptionTrie::new();
        for prefix in [&b""[..], b"a", b"ab", b"abc"] {
            t.subscribe(prefix, 1u64);
        }
        t.subscribe(b"ab", 2);
        t.subscribe(b"abc", 2);
        t.subscribe(b"abc", 2);
        t.subscribe(b"b", 3);
        let mut v = vec![];
        t.for_each_match(b"abcdef", |p| v.push(p));
        v.sort();
        assert_eq!(v, [1, 2]);
        assert_eq!(t.len(), 5);
        t.check();
    }

    #[test]
    fn remove_peer_reports_abandoned_prefixes() {
        let mut t = SubscriptionTrie::new();
        t.subscribe(b"a", 1u64);
        t.subscribe(b"a", 1);
        t.subscribe(b"ab", 1);
        t.subscribe(b"ab", 2);
        t.subscribe(b"abc", 1);
        t.subscribe(b"x", 2);
        let mut gone = vec![];
        t.remove_peer(1, |p| gone.push(p.to_vec()));
        gone.sort();
        assert_eq!(gone, [b"a".to_vec(), b"abc".to_vec()]);
        assert_eq!(t.len(), 2);
        assert_eq!(matched(&t, b"abc"), [2]);
        assert!(!t.unsubscribe(b"a", 1), "counts went with the peer");
        t.check();
        t.remove_peer(1, |_| panic!("already gone"));
        let mut gone = vec![];
        t.remove_peer(2, |p| gone.push(p.to_vec()));
        gone.sort();
        assert_eq!(gone, [b"ab".to_vec(), b"x".to_vec()]);
        assert!(t.is_empty());
        t.check();
        assert_eq!(t.nodes.len(), 1);
    }

    #[test]
    fn splits_and_merges_keep_the_shape() {
        let mut t = SubscriptionTrie::new();
        let words: [&[u8]; 7] = [
            b"romane", b"romanus", b"romulus", b"rubens", b"ruber", b"r", b"",
        ];
        for (i, w) in words.iter().enumerate() {
            assert!(t.subscribe(w, i as u64));
            t.check();
        }
        let mut sorted: Vec<Vec<u8>> = words.iter().map(|w| w.to_vec()).collect();
        sorted.sort();
        assert_eq!(t.prefixes(), sorted);
        assert_eq!(matched(&t, b"romanesque"), [0, 5, 6]);
        for (i, w) in words.iter().enumerate().rev() {
            assert!(t.unsubscribe(w, i as u64));
            t.check();
        }
        assert!(t.is_empty());
    }

    #[test]
    fn freed_slots_are_compacted() {
        let mut t = SubscriptionTrie::new();
        t.subscribe(b"keep", 0u64);
        for i in 0..10_000u32 {
            t.subscribe(&i.to_be_bytes(), 1);
        }
        let peak = t.nodes.len();
        for i in 0..10_000u32 {
            assert!(t.unsubscribe(&i.to_be_bytes(), 1));
        }
        t.check();
        assert!(
            t.nodes.len() < peak / 10,
            "{} slots of {peak}",
            t.nodes.len()
        );
        assert_eq!(t.prefixes(), [b"keep".to_vec()]);
        assert_eq!(matched(&t, b"keeper"), [0]);
    }

    #[test]
    fn huge_topic_without_recursion() {
        const MIB: usize = 1 << 20;
        let mut topic = vec![b'x'; 10 * MIB];
        let mut t = SubscriptionTrie::new();
        assert!(t.subscribe(&topic, 1u64));
        // A second one that shares all but the last byte forces a split deep
        // down the edge, and a shorter one a split midway.
        let mut other = topic.clone();
        *other.last_mut().unwrap() = b'y';
        assert!(t.subscribe(&other, 2));
        assert!(t.subscribe(&topic[..5 * MIB], 3));
        t.check();
        topic.extend_from_slice(b"payload");
        assert_eq!(matched(&t, &topic), [1, 3]);
        assert!(t.matches(&topic));
        assert!(!t.matches(&topic[..5 * MIB - 1]));
        assert_eq!(t.prefixes().len(), 3);
        topic.truncate(10 * MIB);
        assert!(t.unsubscribe(&topic, 1));
        assert!(t.unsubscribe(&topic[..5 * MIB], 3));
        let mut gone = 0;
        t.remove_peer(2, |p| {
            assert_eq!(p, &other[..]);
            gone += 1;
        });
        assert_eq!(gone, 1);
        assert!(t.is_empty());
        assert!(!t.matches(&topic));
        t.check();
        assert_eq!(t.nodes.len(), 1);
        assert!(t.nodes[ROOT].children.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Sub(Vec<u8>, u8),
        Unsub(Vec<u8>, u8),
        Remove(u8),
        Match(Vec<u8>),
        Compact,
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 0..max)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (bytes(5), 0u8..4).prop_map(|(p, k)| Op::Sub(p, k)),
            3 => (bytes(5), 0u8..4).prop_map(|(p, k)| Op::Unsub(p, k)),
            1 => (0u8..4).prop_map(Op::Remove),
            3 => bytes(7).prop_map(Op::Match),
            1 => Just(Op::Compact),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_a_naive_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut t = SubscriptionTrie::new();
            let mut model: Vec<(Vec<u8>, u8, usize)> = vec![];
            let has = |m: &[(Vec<u8>, u8, usize)], p: &[u8]| m.iter().any(|e| e.0 == p);
            for op in ops {
                match op {
                    Op::Sub(p, k) => {
                        let first = !has(&model, &p);
                        match model.iter_mut().find(|e| e.0 == p && e.1 == k) {
                            Some(e) => e.2 += 1,
                            None => model.push((p.clone(), k, 1)),
                        }
                        prop_assert_eq!(t.subscribe(&p, k), first);
                    }
                    Op::Unsub(p, k) => {
                        let mut last = false;
                        if let Some(i) = model.iter().position(|e| e.0 == p && e.1 == k) {
                            model[i].2 -= 1;
                            if model[i].2 == 0 {
                                model.remove(i);
                                last = !has(&model, &p);
                            }
                        }
                        prop_assert_eq!(t.unsubscribe(&p, k), last);
                    }
                    Op::Remove(k) => {
                        let mut mine: Vec<Vec<u8>> =
                            model.iter().filter(|e| e.1 == k).map(|e| e.0.clone()).collect();
                        model.retain(|e| e.1 != k);
                        mine.retain(|p| !has(&model, p));
                        mine.sort();
                        let mut gone = vec![];
                        t.remove_peer(k, |p| gone.push(p.to_vec()));
                        gone.sort();
                        prop_assert_eq!(gone, mine);
                    }
                    Op::Match(d) => {
                        let mut want: Vec<u8> =
                            model.iter().filter(|e| d.starts_with(&e.0)).map(|e| e.1).collect();
                        want.sort();
                        want.dedup();
                        let mut got = vec![];
                        t.for_each_match(&d, |p| got.push(p));
                        got.sort();
                        prop_assert_eq!(&got, &want, "each peer once");
                        prop_assert_eq!(t.matches(&d), !want.is_empty());
                    }
                    // Compaction normally waits for many free slots, more
                    // than this alphabet makes; force it to test renumbering.
                    Op::Compact => t.compact(),
                }
                let mut distinct: Vec<Vec<u8>> = model.iter().map(|e| e.0.clone()).collect();
                distinct.sort();
                distinct.dedup();
                prop_assert_eq!(t.len(), distinct.len());
                prop_assert_eq!(t.is_empty(), distinct.is_empty());
                prop_assert_eq!(t.prefixes(), distinct);
                t.check();
            }
        }
    }
}
