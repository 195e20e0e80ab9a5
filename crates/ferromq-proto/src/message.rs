//! Multipart messages.

use bytes::Bytes;
use smallvec::SmallVec;

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
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Message {
    frames: SmallVec<[Bytes; INLINE_FRAMES]>,
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

    /// Removes the first `n` frames and returns them as a message.
    pub fn split_front(&mut self, n: usize) -> Message {
        let n = n.min(self.frames.len());
        let head = self.frames.drain(..n).collect();
        Message { frames: head }
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
