//! One frame of a message: a few bytes held inline, or shared [`Bytes`].

use std::borrow::Borrow;
use std::ops::Deref;

use bytes::{Bytes, BytesMut};

/// Frames up to this many bytes are held inside the [`Frame`] itself, with
/// no allocation, as libzmq keeps messages of up to 33 bytes inside its
/// `zmq_msg_t`. A frame stays 32 bytes (the size of a `Bytes`): its length
/// byte and payload fit beside the part of a `Bytes` the compiler uses to
/// tell the two apart.
pub const INLINE_FRAME_BYTES: usize = 23;

/// One frame of a [`Message`](crate::Message): its bytes, read through
/// `Deref<Target = [u8]>`.
///
/// Up to [`INLINE_FRAME_BYTES`] bytes are held inline: making, moving and
/// dropping such a frame never touches the allocator, which matters when
/// one thread makes frames and another drops them (an inproc receiver, an
/// I/O thread): memory freed by a thread other than the one that allocated
/// it takes the allocator's shared, contended path. Larger frames are
/// [`Bytes`]: cloning them or slicing them out of a receive buffer never
/// copies. Comparisons, hashing and ordering look at the bytes only, not
/// at how they are held.
///
/// ```
/// use ferromq_proto::message::Frame;
/// let small = Frame::copy_from_slice(b"tiny");
/// assert!(small.is_inline());
/// assert_eq!(&small[..], b"tiny");
/// let big = Frame::from(vec![7u8; 100]);
/// assert!(!big.is_inline());
/// assert_eq!(big.len(), 100);
/// assert_eq!(big.into_bytes().len(), 100);
/// ```
#[derive(Clone)]
pub struct Frame(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        data: [u8; INLINE_FRAME_BYTES],
    },
    Shared(Bytes),
}

impl Frame {
    /// An empty frame.
    pub const fn new() -> Self {
        Frame(Repr::Inline {
            len: 0,
            data: [0; INLINE_FRAME_BYTES],
        })
    }

    /// A frame holding a copy of `data`: inline when it fits, else as
    /// [`copy_frame`](crate::message::copy_frame) copies it.
    pub fn copy_from_slice(data: &[u8]) -> Self {
        Self::inline(data).unwrap_or_else(|| Frame(Repr::Shared(crate::message::copy_frame(data))))
    }

    /// `data` held inline, if it fits.
    #[inline]
    fn inline(data: &[u8]) -> Option<Self> {
        (data.len() <= INLINE_FRAME_BYTES).then(|| {
            let mut buf = [0; INLINE_FRAME_BYTES];
            buf[..data.len()].copy_from_slice(data);
            Frame(Repr::Inline {
                len: data.len() as u8,
                data: buf,
            })
        })
    }

    /// A frame over static bytes (held inline when they fit).
    pub fn from_static(data: &'static [u8]) -> Self {
        Self::inline(data).unwrap_or_else(|| Frame(Repr::Shared(Bytes::from_static(data))))
    }

    /// The frame's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, data } => &data[..usize::from(*len)],
            Repr::Shared(b) => b,
        }
    }

    /// Whether the bytes are held inline (no allocation behind the frame).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// `b` as a shared frame, however short (a caller's buffer whose
    /// release should wait until the frame is gone; `From<Bytes>` copies
    /// short ones inline and lets the `Bytes` go at once).
    pub fn shared(b: Bytes) -> Self {
        Frame(Repr::Shared(b))
    }

    /// The bytes of an inline frame, to write into (a frame made to be
    /// filled in place, as `zmq_msg_init_size` makes one); `None` for a
    /// shared frame, whose buffer others may see.
    pub fn inline_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.0 {
            Repr::Inline { len, data } => Some(&mut data[..usize::from(*len)]),
            Repr::Shared(_) => None,
        }
    }

    /// The shared buffer behind a frame that is not inline.
    pub fn as_shared(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Shared(b) => Some(b),
            Repr::Inline { .. } => None,
        }
    }

    /// The frame as [`Bytes`]: its own buffer, or a copy of inline bytes.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Shared(b) => b,
            Repr::Inline { len, data } => Bytes::copy_from_slice(&data[..usize::from(len)]),
        }
    }

    /// As [`into_bytes`](Self::into_bytes), keeping the frame.
    pub fn to_bytes(&self) -> Bytes {
        self.clone().into_bytes()
    }

    /// The bytes in `range` as a frame of their own (no copy for a shared
    /// frame's larger slices).
    ///
    /// # Panics
    /// If `range` is out of bounds, as slicing is.
    pub fn slice(&self, range: impl std::ops::RangeBounds<usize>) -> Frame {
        let (start, end) = bounds(range, self.len());
        match &self.0 {
            Repr::Shared(b) if end - start > INLINE_FRAME_BYTES => {
                Frame(Repr::Shared(b.slice(start..end)))
            }
            _ => Self::inline(&self.as_slice()[start..end]).expect("a short slice fits inline"),
        }
    }
}

fn bounds(range: impl std::ops::RangeBounds<usize>, len: usize) -> (usize, usize) {
    use std::ops::Bound;
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e + 1,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    assert!(
        start <= end && end <= len,
        "range {start}..{end} out of bounds for a frame of {len} bytes"
    );
    (start, end)
}

impl Default for Frame {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Frame {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Frame {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As `Bytes` shows itself: b"..." with escapes.
        write!(f, "b\"")?;
        for &b in self.as_slice() {
            match b {
                b'\n' => write!(f, "\\n")?,
                b'\r' => write!(f, "\\r")?,
                b'\t' => write!(f, "\\t")?,
                b'\\' | b'"' => write!(f, "\\{}", b as char)?,
                0 => write!(f, "\\0")?,
                0x20..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        write!(f, "\"")
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Frame {}

impl PartialOrd for Frame {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Frame {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::hash::Hash for Frame {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

macro_rules! eq_with {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Frame {
            fn eq(&self, other: &$t) -> bool {
                self.as_slice() == AsRef::<[u8]>::as_ref(other)
            }
        }
        impl PartialEq<Frame> for $t {
            fn eq(&self, other: &Frame) -> bool {
                AsRef::<[u8]>::as_ref(self) == other.as_slice()
            }
        }
    )*};
}
eq_with!([u8], &[u8], str, &str, Vec<u8>, String, Bytes);

impl<const N: usize> PartialEq<[u8; N]> for Frame {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Frame {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl From<Bytes> for Frame {
    /// Small ones are copied inline and the `Bytes` let go at once: the
    /// memory behind it goes back on this thread, not on whichever one
    /// drops the frame.
    fn from(b: Bytes) -> Self {
        Self::inline(&b).unwrap_or(Frame(Repr::Shared(b)))
    }
}

impl From<BytesMut> for Frame {
    fn from(b: BytesMut) -> Self {
        Self::inline(&b).unwrap_or_else(|| Frame(Repr::Shared(b.freeze())))
    }
}

impl From<Vec<u8>> for Frame {
    fn from(v: Vec<u8>) -> Self {
        Self::inline(&v).unwrap_or_else(|| Frame(Repr::Shared(Bytes::from(v))))
    }
}

impl From<String> for Frame {
    fn from(s: String) -> Self {
        Self::from(s.into_bytes())
    }
}

impl From<&'static str> for Frame {
    fn from(s: &'static str) -> Self {
        Self::from_static(s.as_bytes())
    }
}

impl From<&'static [u8]> for Frame {
    fn from(s: &'static [u8]) -> Self {
        Self::from_static(s)
    }
}

impl From<Frame> for Bytes {
    fn from(f: Frame) -> Self {
        f.into_bytes()
    }
}

impl From<Frame> for Vec<u8> {
    fn from(f: Frame) -> Self {
        match f.0 {
            Repr::Shared(b) => b.into(),
            Repr::Inline { .. } => f.as_slice().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_as_small_as_bytes() {
        assert_eq!(std::mem::size_of::<Frame>(), std::mem::size_of::<Bytes>());
    }

    #[test]
    fn small_frames_are_inline_and_larger_ones_shared() {
        let at = Frame::copy_from_slice(&[1; INLINE_FRAME_BYTES]);
        assert!(at.is_inline());
        assert_eq!(&at[..], &[1; INLINE_FRAME_BYTES]);
        let above = Frame::copy_from_slice(&[2; INLINE_FRAME_BYTES + 1]);
        assert!(!above.is_inline());
        assert_eq!(&above[..], &[2; INLINE_FRAME_BYTES + 1]);
        assert!(Frame::new().is_empty());
        assert!(Frame::from(Bytes::from_static(b"abc")).is_inline());
        let shared = Bytes::from(vec![3u8; 64]);
        let f = Frame::from(shared.clone());
        assert_eq!(f.as_shared().map(|b| b.as_ptr()), Some(shared.as_ptr()));
    }

    #[test]
    fn frames_compare_by_bytes_whatever_holds_them() {
        let inline = Frame::copy_from_slice(b"same");
        let shared = Frame(Repr::Shared(Bytes::from_static(b"same")));
        assert_eq!(inline, shared);
        assert_eq!(inline, "same");
        assert_eq!(inline, b"same");
        assert_eq!(inline.cmp(&Frame::from("samf")), std::cmp::Ordering::Less);
        use std::hash::{BuildHasher, RandomState};
        let s = RandomState::new();
        assert_eq!(s.hash_one(&inline), s.hash_one(&shared));
        assert_eq!(
            format!("{inline:?}"),
            format!("{:?}", Bytes::from_static(b"same"))
        );
        let odd = [0u8, b'"', b'\\', b'\n', 200, b'z'];
        assert_eq!(
            format!("{:?}", Frame::copy_from_slice(&odd)),
            format!("{:?}", Bytes::copy_from_slice(&odd))
        );
    }

    #[test]
    fn inline_frames_can_be_filled_in_place_and_shared_ones_stay_shared() {
        let mut f = Frame::from(vec![0u8; 4]);
        f.inline_mut().expect("inline").copy_from_slice(b"abcd");
        assert_eq!(f, "abcd");
        let mut big = Frame::from(vec![0u8; 40]);
        assert!(
            big.inline_mut().is_none(),
            "a shared buffer is never written"
        );
        let kept = Frame::shared(Bytes::from_static(b"ab"));
        assert!(!kept.is_inline());
        assert_eq!(kept, "ab");
    }

    #[test]
    fn slices_share_long_runs_and_copy_short_ones() {
        let f = Frame::from(vec![5u8; 100]);
        let long = f.slice(10..90);
        assert_eq!(long.len(), 80);
        assert_eq!(
            long.as_ptr(),
            f.as_shared().expect("shared")[10..].as_ptr(),
            "no copy"
        );
        let short = f.slice(..3);
        assert!(short.is_inline());
        assert_eq!(&Frame::from("abcdef").slice(1..=2)[..], b"bc");
        assert_eq!(Frame::from("x").into_bytes(), Bytes::from_static(b"x"));
        assert_eq!(Vec::from(Frame::from("xy")), b"xy".to_vec());
    }
}
