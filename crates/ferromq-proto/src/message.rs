//! Multipart messages.

use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::wire::metadata::{Metadata, SharedMetadata};

/// Frames kept inline before a message spills to the heap. One: most
/// messages that queues hold by the thousand (PUSH/PULL, PUB/SUB) are
/// single frames, and every queue entry, decode batch slot and per-subscriber
/// copy is a whole `Message`: with one inline frame it is 56 bytes (48
/// before metadata handles grew to 16); with three (room for
/// `[routing id][empty delimiter][body]`) it was 112, and pinned 16-byte
/// tcp throughput rose ~10% (blocking) and ~18% (async) with the smaller
/// one. Envelopes of two or more frames take one allocation.
const INLINE_FRAMES: usize = 1;

/// A ZeroMQ message: one or more frames, delivered whole or not at all.
///
/// Frames are [`Bytes`], so cloning a message or slicing a frame out of a
/// receive buffer never copies the payload.
///
/// ```
/// use ferromq_proto::Message;
/// let m = Message::from("hello");
/// assert_eq!(m.len(), 1);
/// let mut m = Message::new();
/// m.push("a");
/// m.push(vec![0u8, 1, 2]);
/// assert_eq!(m.len(), 2);
/// assert_eq!(&m[1][..], &[0, 1, 2]);
/// ```
///
/// A received message may carry the metadata of the connection it came
/// over ([`metadata`](Self::metadata)); it takes no part in comparisons.
#[derive(Clone, Default)]
pub struct Message {
    frames: SmallVec<[Bytes; INLINE_FRAMES]>,
    meta: Option<SharedMetadata>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.frames == other.frames
    }
}

impl Eq for Message {}

impl std::hash::Hash for Message {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.frames.hash(state);
    }
}

impl Message {
    /// An empty message with no frames (not sendable until a frame is pushed).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a frame.
    pub fn push(&mut self, frame: impl Into<Bytes>) {
        self.frames.push(frame.into());
    }

    /// Prepends a frame (used for envelopes and routing ids).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.frames.insert(0, frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        if self.frames.is_empty() {
            None
        } else {
            Some(self.frames.remove(0))
        }
    }

    /// Removes the first `n` frames and returns them as a message (with
    /// the same metadata).
    pub fn split_front(&mut self, n: usize) -> Message {
        let n = n.min(self.frames.len());
        let head = self.frames.drain(..n).collect();
        Message {
            frames: head,
            meta: self.meta.clone(),
        }
    }

    /// The properties of the connection this message arrived on: the
    /// peer's handshake metadata (`Socket-Type`, `Identity`, application
    /// `X-` properties) and what the transport knows (`Peer-Address` for
    /// tcp; `Peer-Uid`, `Peer-Gid`, `Peer-Pid` for ipc). `None` for a
    /// message built locally or received over inproc.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.meta.as_deref()
    }

    /// A shared handle to the metadata (see [`metadata`](Self::metadata)).
    pub fn metadata_arc(&self) -> Option<&Arc<Metadata>> {
        self.meta.as_ref().map(SharedMetadata::as_arc)
    }

    /// Attaches (or, with `None`, removes) connection metadata.
    pub fn set_metadata(&mut self, meta: Option<Arc<Metadata>>) {
        self.meta = meta.map(SharedMetadata::counted);
    }

    /// Attaches (or removes) connection metadata as the messages of a
    /// connection share it (see [`SharedMetadata`]).
    pub fn set_shared_metadata(&mut self, meta: Option<SharedMetadata>) {
        self.meta = meta;
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the message has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Total payload bytes over all frames.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }

    /// The frames, in order.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::slice::Iter<'_, Bytes> {
        self.frames.iter()
    }

    /// Consumes the message, returning its frames.
    pub fn into_frames(self) -> Vec<Bytes> {
        self.frames.into_vec()
    }

    /// Appends every frame of `other`.
    pub fn extend(&mut self, other: Message) {
        self.frames.extend(other.frames);
    }
}

impl std::ops::Index<usize> for Message {
    type Output = Bytes;
    fn index(&self, i: usize) -> &Bytes {
        &self.frames[i]
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.frames.iter()).finish()
    }
}

impl IntoIterator for Message {
    type Item = Bytes;
    type IntoIter = smallvec::IntoIter<[Bytes; INLINE_FRAMES]>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

impl<F: Into<Bytes>> FromIterator<F> for Message {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        Message {
            frames: iter.into_iter().map(Into::into).collect(),
            meta: None,
        }
    }
}

macro_rules! single_frame_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Message {
            fn from(v: $t) -> Self {
                let mut m = Message::new();
                m.push(Bytes::from(v));
                m
            }
        }
    )*};
}
single_frame_from!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

impl From<Vec<Bytes>> for Message {
    fn from(v: Vec<Bytes>) -> Self {
        Message {
            frames: SmallVec::from_vec(v),
            meta: None,
        }
    }
}

impl From<Vec<&'static str>> for Message {
    fn from(v: Vec<&'static str>) -> Self {
        v.into_iter().collect()
    }
}

impl<const N: usize> From<[&'static str; N]> for Message {
    fn from(v: [&'static str; N]) -> Self {
        v.into_iter().collect()
    }
}

#[cfg(test)]
mod size_tests {
    use super::Message;

    /// Queues hold `Message`s by value, so their size is memory per queued
    /// message (libzmq's `msg_t` is 64 bytes): 40 for the frames, 16 for
    /// the metadata (interned or counted, see `SharedMetadata`; an `Arc`
    /// alone took 8, at two atomic operations per message received).
    #[test]
    fn a_message_is_at_most_56_bytes() {
        assert!(
            std::mem::size_of::<Message>() <= 56,
            "{}",
            std::mem::size_of::<Message>()
        );
    }

    #[test]
    fn envelopes_longer_than_the_inline_room_keep_their_frames() {
        let mut m = Message::from("body");
        m.push_front("");
        m.push_front("id");
        m.push("tail");
        let frames: Vec<&[u8]> = m.iter().map(|f| &f[..]).collect();
        assert_eq!(frames, [&b"id"[..], b"", b"body", b"tail"]);
        let front = m.split_front(2);
        assert_eq!(front.len(), 2);
        assert_eq!(&front[0][..], b"id");
        assert_eq!(m.len(), 2);
        assert_eq!(&m[0][..], b"body");
        assert_eq!(&m[1][..], b"tail");
    }
}
