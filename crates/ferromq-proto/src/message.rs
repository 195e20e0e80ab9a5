//! Multipart messages.

use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::wire::metadata::Metadata;

/// Frames kept inline before a message spills to the heap: enough for
/// `[routing id][empty delimiter][body]`, the largest common envelope.
const INLINE_FRAMES: usize = 3;

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
    meta: Option<Arc<Metadata>>,
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
        self.meta.as_ref()
    }

    /// Attaches (or, with `None`, removes) connection metadata.
    pub fn set_metadata(&mut self, meta: Option<Arc<Metadata>>) {
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
