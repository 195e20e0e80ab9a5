//! A peer's outgoing queue, in chunks.
//!
//! A `VecDeque` that grows doubles its buffer and copies what it holds,
//! holding the old buffer and one twice its size for a moment, and never
//! gives the memory back: a publisher with no HWM that runs ahead of its
//! subscribers keeps, per subscriber, up to twice the queue's longest
//! length in 56-byte entries for the life of the socket. Here the first
//! [`CHUNK`] messages are one `VecDeque` (short queues, the usual case, use
//! it alone and keep its memory, as before); past that, more go into
//! whole chunks, so growing allocates a chunk and copies nothing, and the
//! chunks are freed as the queue drains.

use std::collections::VecDeque;

use ferromq_proto::Message;

/// Messages per chunk (56 bytes each: 14 KiB).
const CHUNK: usize = 256;

/// See the module's notes. The oldest messages are in `head`, alone while
/// the queue is short (one `VecDeque`, as fast as one); past [`CHUNK`]
/// more go into the chunks of `rest`, each full but the last. `head` is
/// empty only when the queue is.
#[derive(Default)]
pub(crate) struct OutQueue {
    head: VecDeque<Message>,
    rest: VecDeque<VecDeque<Message>>,
    len: usize,
}

impl OutQueue {
    /// Messages queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push_back(&mut self, msg: Message) {
        self.len += 1;
        match self.rest.back_mut() {
            None if self.head.len() < CHUNK => self.head.push_back(msg),
            Some(last) if last.len() < CHUNK => last.push_back(msg),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK);
                chunk.push_back(msg);
                self.rest.push_back(chunk);
            }
        }
    }

    /// Puts a message back at the front (messages a mover took but did not
    /// get to, a probe ahead of what waited).
    pub(crate) fn push_front(&mut self, msg: Message) {
        self.len += 1;
        self.head.push_front(msg);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Message> {
        let msg = self.head.pop_front()?;
        self.len -= 1;
        if self.head.is_empty() {
            if let Some(next) = self.rest.pop_front() {
                // (The drained buffer is freed: a long queue shrinks.)
                self.head = next;
            }
        }
        Some(msg)
    }

    /// Drops every message (keeping the first chunk's memory).
    pub(crate) fn clear(&mut self) {
        self.head.clear();
        self.rest.clear();
        self.len = 0;
    }

    /// Keeps the messages `keep` says yes to, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Message) -> bool) {
        self.head.retain(&mut keep);
        for chunk in &mut self.rest {
            chunk.retain(&mut keep);
        }
        self.rest.retain(|c| !c.is_empty());
        if self.head.is_empty() {
            if let Some(next) = self.rest.pop_front() {
                self.head = next;
            }
        }
        self.len = self.head.len() + self.rest.iter().map(VecDeque::len).sum::<usize>();
    }

    /// The messages, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Message> {
        self.head.iter().chain(self.rest.iter().flatten())
    }

    /// Buffers held: `head` and each of `rest` (for tests).
    #[cfg(test)]
    fn chunks(&self) -> usize {
        1 + self.rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{OutQueue, CHUNK};
    use ferromq_proto::Message;
    use std::collections::VecDeque;

    fn msg(i: u32) -> Message {
        Message::from(i.to_be_bytes().to_vec())
    }

    fn ids(q: &OutQueue) -> Vec<u32> {
        q.iter()
            .map(|m| u32::from_be_bytes(m[0][..].try_into().unwrap()))
            .collect()
    }

    /// Every operation against a `VecDeque` doing the same, driven by a
    /// small deterministic generator through many interleavings: the same
    /// messages in the same order, the same length, and no chunk left empty
    /// but a lone first one.
    #[test]
    fn behaves_as_a_deque() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut q = OutQueue::default();
        let mut model = VecDeque::new();
        let mut next = 0u32;
        let mut most_chunks = 0;
        for step in 0..200_000 {
            // Phases that grow the queue and phases that drain it.
            let growing = (step / 5_000) % 2 == 0;
            let r = rand(100);
            let pushes = if growing { 55 } else { 30 };
            match r {
                _ if r < pushes => {
                    q.push_back(msg(next));
                    model.push_back(next);
                    next += 1;
                }
                _ if r < pushes + 5 => {
                    q.push_front(msg(next));
                    model.push_front(next);
                    next += 1;
                }
                _ if r < 99 => {
                    let got = q
                        .pop_front()
                        .map(|m| u32::from_be_bytes(m[0][..].try_into().unwrap()));
                    assert_eq!(got, model.pop_front(), "step {step}");
                }
                _ if rand(50) == 0 => {
                    q.retain(|m| m[0][3] % 3 != 0);
                    model.retain(|i| (i & 0xff) % 3 != 0);
                }
                _ if rand(200) == 0 => {
                    q.clear();
                    model.clear();
                }
                _ => {}
            }
            assert_eq!(q.len(), model.len(), "step {step}");
            assert_eq!(q.is_empty(), model.is_empty());
            assert!(
                q.rest.iter().all(|c| !c.is_empty()) && (q.rest.is_empty() || !q.head.is_empty()),
                "an empty buffer among others at step {step}"
            );
            if step % 997 == 0 {
                assert_eq!(ids(&q), Vec::from(model.clone()), "step {step}");
            }
            most_chunks = most_chunks.max(q.chunks());
        }
        assert!(
            most_chunks >= 3,
            "the queue never grew long: {most_chunks} chunks"
        );
    }

    /// A long queue is chunks of `CHUNK`, freed as it drains down to one.
    #[test]
    fn grows_by_chunks_and_frees_them_as_it_drains() {
        let mut q = OutQueue::default();
        for i in 0..(10 * CHUNK as u32) {
            q.push_back(msg(i));
        }
        assert_eq!(q.chunks(), 10);
        for i in 0..(10 * CHUNK as u32 - 1) {
            assert_eq!(
                q.pop_front().map(|m| m[0].to_vec()),
                Some(i.to_be_bytes().to_vec())
            );
        }
        assert_eq!(q.chunks(), 1);
        assert_eq!(q.len(), 1);
        q.pop_front();
        assert!(q.is_empty());
        assert_eq!(q.chunks(), 1, "the first chunk stays for the next burst");
        assert!(q.pop_front().is_none());
    }
}
