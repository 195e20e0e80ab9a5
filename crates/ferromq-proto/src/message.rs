//! Multipart messages.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

pub use crate::frame::{Frame, INLINE_FRAME_BYTES};
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

/// Frames from this size up that [`copy_frame`] copies go into buffers it
/// reuses.
pub const REUSED_FROM: usize = 64 * 1024;
/// Frames above this size get a buffer of their own.
const REUSED_UP_TO: usize = 4 << 20;
/// Buffers kept per thread for reuse, and their bytes at most. A blocking
/// sender of 64 KiB copies runs up to ~70 ahead of its connection (it
/// paces itself at 4 MiB queued, and the output holds a few more): with
/// 8 buffers, each further copy took fresh memory, which the I/O thread
/// freed (5,000-40,000 page faults per 15,000 messages); with 96, ~1,300
/// in all, and the blocking 64 KiB tcp row's median went ~41 k -> ~79 k
/// msgs/s (6 alternating rounds, with the receiving connection's pool of
/// read buffers raised too). The byte cap keeps 1 MiB copies to 8
/// buffers, as before.
const REUSED_BUFFERS: usize = 96;
const REUSED_BYTES: usize = 8 << 20;

/// Frames from this size up to [`REUSED_FROM`] that [`copy_frame`] copies
/// are cut out of a chunk shared with the thread's other copies of such
/// sizes: just above the largest request glibc's per-thread cache serves
/// (1032 bytes). Below it an allocation costs little, and the chunk's
/// reference count, touched by the sender per frame and by an inproc
/// receiver on another thread per drop, cost more: 256-byte inproc
/// between two threads ~2.5 -> ~1.6 M msgs/s, 1 KiB ~1.9 -> ~1.5 M.
pub const CARVED_FROM: usize = 1033;
/// Bytes per chunk: a frame kept for long keeps at most this alive.
const CARVED_CHUNK: usize = 64 * 1024;

std::thread_local! {
    /// This thread's chunks for mid-sized copies.
    static CARVED: std::cell::RefCell<Carved> = std::cell::RefCell::new(Carved::default());
    /// This thread's buffers for large copies, with their sizes (a
    /// handle's own capacity is what is left after its last copy).
    static REUSED: std::cell::RefCell<Vec<(BytesMut, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
std::thread_local! {
    /// Large copies that found no free buffer of [`REUSED`] (for tests).
    static REUSED_MISSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Chunks of mid-sized copies a thread keeps besides its current one
/// (4 MiB): a queue of up to SNDHWM (1000) 4 KiB messages spans ~63.
const CARVED_HELD: usize = 64;

/// A thread's chunks for mid-sized copies (see [`copy_frame`]).
#[derive(Default)]
struct Carved {
    /// The rest of the chunk copies go into now.
    cur: BytesMut,
    /// Earlier chunks, oldest first, each as the handle left after its
    /// last copy: free again once no frame cut from it is alive.
    held: std::collections::VecDeque<BytesMut>,
    /// Chunks allocated so far (for tests).
    #[cfg(test)]
    fresh: usize,
}

impl Carved {
    /// Makes room for `len` more bytes in `cur`: in place if every frame
    /// cut from it is gone, else in the newest held chunk that is free
    /// (its memory is the likeliest still in cache), else in a new one.
    /// The full chunk joins the held ones; past [`CARVED_HELD`], the
    /// oldest handle goes (its memory with its last frame).
    fn make_room(&mut self, len: usize) {
        if self.cur.capacity() >= len || self.cur.try_reclaim(CARVED_CHUNK) {
            return;
        }
        let newest_free = self
            .held
            .iter_mut()
            .rposition(|old| old.try_reclaim(CARVED_CHUNK));
        let next = match newest_free.and_then(|i| self.held.remove(i)) {
            Some(old) => old,
            None => {
                #[cfg(test)]
                {
                    self.fresh += 1;
                }
                BytesMut::with_capacity(CARVED_CHUNK)
            }
        };
        let full = std::mem::replace(&mut self.cur, next);
        if self.held.len() >= CARVED_HELD {
            self.held.pop_front();
        }
        self.held.push_back(full);
    }
}

/// Copies `data` into a new frame, as [`Bytes::copy_from_slice`] does, but
/// from memory that the thread's copies share or reuse:
///
/// * a mid-sized frame ([`CARVED_FROM`] bytes to 64 KiB) is cut out of a
///   64 KiB chunk, which is reused once every frame cut from it is gone:
///   in place, or, for a sender running ahead of its queue, as one of the
///   last 64 chunks it filled. Else a queue of such messages
///   costs one allocation per chunk, freed on the thread that is done with
///   them (an I/O thread writing them, an inproc receiver): freeing memory
///   another thread allocated takes the allocator's lock, and a queue
///   drained in bursts has glibc give the heap top back to the kernel and
///   fault it in again. Blocking 4 KiB tcp ~0.6-0.8 -> ~1.1-1.3 M msgs/s
///   with one chunk reused in place (sender CPU ~310 -> ~180 ms per
///   220,000), and with the held chunks, which a sender 1000 messages
///   ahead needs, page faults ~5,000-30,000 -> ~1,500 per 220,000 and
///   median ~1.03 -> ~1.16 M msgs/s; inproc 4 KiB between two threads
///   ~2.5 -> ~3.8-4.6 M, then median ~4.2 -> ~5.3 M;
/// * a large frame (64 KiB to 4 MiB) goes into a buffer this thread copied
///   an earlier frame into, once that frame is gone everywhere (written out
///   by its connection, or dropped by an inproc receiver): up to 96
///   buffers and 8 MiB are kept per thread. A sender of large copies otherwise has
///   a new buffer for each; freed a few at a time, they leave the top of
///   the heap free, glibc gives it back, and every page of the next copies
///   faults in again (1 MiB messages over ipc, sent from one task: ~200
///   page faults per message);
/// * other frames are plain copies.
///
/// A frame is never written once made: memory is reused only when no
/// frame (or clone or slice of one) refers to it any more.
///
/// ```
/// let frame = ferromq_proto::message::copy_frame(&[7u8; 100_000]);
/// assert_eq!(frame.len(), 100_000);
/// ```
pub fn copy_frame(data: &[u8]) -> Bytes {
    if (CARVED_FROM..REUSED_FROM).contains(&data.len()) {
        return CARVED
            .try_with(|chunk| {
                // As below: no other borrow can be under way.
                let mut carved = chunk.borrow_mut();
                carved.make_room(data.len());
                carved.cur.extend_from_slice(data);
                carved.cur.split().freeze()
            })
            .unwrap_or_else(|_| Bytes::copy_from_slice(data));
    }
    if !(REUSED_FROM..=REUSED_UP_TO).contains(&data.len()) {
        return Bytes::copy_from_slice(data);
    }
    REUSED
        .try_with(|pool| {
            // Only this function borrows it, and it calls nothing that
            // could come back here.
            let mut pool = pool.borrow_mut();
            // A buffer whose frames are all gone and that is large enough.
            for (buf, _) in pool.iter_mut() {
                if buf.try_reclaim(data.len()) {
                    buf.extend_from_slice(data);
                    return buf.split().freeze();
                }
            }
            // Else a new one: added while there is room, or in place of
            // one that is free but too small.
            let kept: usize = pool.iter().map(|(_, size)| size).sum();
            let slot = if pool.len() < REUSED_BUFFERS && kept + data.len() <= REUSED_BYTES {
                pool.push((BytesMut::new(), 0));
                pool.len() - 1
            } else {
                let free = pool.iter_mut().position(|(buf, size)| {
                    kept - *size + data.len() <= REUSED_BYTES && buf.try_reclaim(1)
                });
                match free {
                    Some(i) => i,
                    None => {
                        #[cfg(test)]
                        REUSED_MISSES.set(REUSED_MISSES.get() + 1);
                        return Bytes::copy_from_slice(data);
                    }
                }
            };
            #[cfg(test)]
            REUSED_MISSES.set(REUSED_MISSES.get() + 1);
            let (buf, size) = &mut pool[slot];
            *buf = BytesMut::with_capacity(data.len());
            *size = buf.capacity();
            buf.extend_from_slice(data);
            buf.split().freeze()
        })
        // The thread is exiting and its pool already gone.
        .unwrap_or_else(|_| Bytes::copy_from_slice(data))
}

/// Whether this thread has copied frames of [`REUSED_FROM`] bytes or more
/// into the buffers [`copy_frame`] reuses: a sender of such copies that
/// runs more than a few messages ahead of its receiver finds every buffer
/// still in use, and each further copy takes fresh memory. (A sender of
/// its own buffers, zero copy, has none.)
///
/// ```
/// use ferromq_proto::message::{copy_frame, reuses_large_copies};
/// assert!(!reuses_large_copies());
/// drop(copy_frame(&[1u8; 100_000]));
/// assert!(reuses_large_copies());
/// ```
pub fn reuses_large_copies() -> bool {
    REUSED
        .try_with(|pool| pool.try_borrow().is_ok_and(|p| !p.is_empty()))
        .unwrap_or(false)
}

/// A ZeroMQ message: one or more frames, delivered whole or not at all.
///
/// Frames are [`Frame`]s: up to [`INLINE_FRAME_BYTES`] bytes held inline,
/// larger ones [`Bytes`], so cloning a message or slicing a large frame out
/// of a receive buffer never copies the payload.
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
    frames: SmallVec<[Frame; INLINE_FRAMES]>,
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

    /// A single-frame message holding a copy of `data` (see
    /// [`Frame::copy_from_slice`]).
    ///
    /// ```
    /// let m = ferromq_proto::Message::copy_from_slice(b"abc");
    /// assert_eq!(&m[0][..], b"abc");
    /// ```
    pub fn copy_from_slice(data: &[u8]) -> Self {
        let mut m = Message::new();
        m.frames.push(Frame::copy_from_slice(data));
        m
    }

    /// Appends a frame.
    pub fn push(&mut self, frame: impl Into<Frame>) {
        self.frames.push(frame.into());
    }

    /// Prepends a frame (used for envelopes and routing ids).
    pub fn push_front(&mut self, frame: impl Into<Frame>) {
        self.frames.insert(0, frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Frame> {
        match self.frames.len() {
            0 => None,
            // (The common case: no shifting of what follows.)
            1 => self.frames.pop(),
            _ => Some(self.frames.remove(0)),
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
        self.frames.iter().map(|f| f.len()).sum()
    }

    /// The frames, in order.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::slice::Iter<'_, Frame> {
        self.frames.iter()
    }

    /// Consumes the message, returning its frames.
    pub fn into_frames(self) -> Vec<Frame> {
        self.frames.into_vec()
    }

    /// Appends every frame of `other`.
    pub fn extend(&mut self, other: Message) {
        self.frames.extend(other.frames);
    }
}

impl std::ops::Index<usize> for Message {
    type Output = Frame;
    fn index(&self, i: usize) -> &Frame {
        &self.frames[i]
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.frames.iter()).finish()
    }
}

impl IntoIterator for Message {
    type Item = Frame;
    type IntoIter = smallvec::IntoIter<[Frame; INLINE_FRAMES]>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Frame;
    type IntoIter = std::slice::Iter<'a, Frame>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

impl<F: Into<Frame>> FromIterator<F> for Message {
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
                m.push(Frame::from(v));
                m
            }
        }
    )*};
}
single_frame_from!(Frame, Bytes, Vec<u8>, String, &'static str, &'static [u8]);

impl From<Vec<Frame>> for Message {
    fn from(v: Vec<Frame>) -> Self {
        Message {
            frames: SmallVec::from_vec(v),
            meta: None,
        }
    }
}

impl From<Vec<Bytes>> for Message {
    fn from(v: Vec<Bytes>) -> Self {
        v.into_iter().collect()
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

#[cfg(test)]
mod copy_tests {
    use super::{copy_frame, Bytes, REUSED_BUFFERS, REUSED_FROM};

    fn filled(byte: u8) -> Vec<u8> {
        vec![byte; REUSED_FROM + 100]
    }

    /// A buffer is reused only once every frame copied into it is gone:
    /// frames still alive keep their bytes, whatever is copied after them.
    #[test]
    fn a_large_copy_reuses_the_buffer_of_one_that_is_gone() {
        let a = copy_frame(&filled(1));
        let b = copy_frame(&filled(2));
        assert_ne!(a.as_ptr(), b.as_ptr());
        let a_at = a.as_ptr();
        drop(a);
        let c = copy_frame(&filled(3));
        assert_eq!(c.as_ptr(), a_at, "the freed buffer is reused");
        assert!(b.iter().all(|&x| x == 2), "a live frame is never written");
        assert!(c.iter().all(|&x| x == 3));
        // A clone keeps the buffer in use as the frame itself does.
        let c2 = c.clone();
        drop(c);
        let d = copy_frame(&filled(4));
        assert_ne!(d.as_ptr(), a_at);
        assert!(c2.iter().all(|&x| x == 3));
    }

    /// Mid-sized copies share a chunk, each keeping its bytes; the chunk
    /// is used again from its start once all of them are gone.
    #[test]
    fn mid_sized_copies_share_a_chunk_reused_once_all_are_gone() {
        let len = super::CARVED_FROM + 7;
        let per_chunk = super::CARVED_CHUNK / len;
        let frames: Vec<_> = (0..per_chunk)
            .map(|i| copy_frame(&vec![i as u8; len]))
            .collect();
        let start = frames[0].as_ptr();
        for (i, f) in frames.iter().enumerate() {
            assert!(f.len() == len && f.iter().all(|&x| x == i as u8));
        }
        // All but one alive: the next chunk is a new one.
        let kept = frames[per_chunk / 2].clone();
        drop(frames);
        let next = copy_frame(&vec![0xaa; len]);
        assert_ne!(next.as_ptr(), start);
        assert!(kept.iter().all(|&x| x == (per_chunk / 2) as u8));
        // Once every frame of a chunk is gone, it is used again: copies
        // dropped at once fill it, and the one that no longer fits starts
        // it over.
        let start = next.as_ptr();
        drop(next);
        let again = (0..per_chunk).any(|i| copy_frame(&vec![i as u8; len]).as_ptr() == start);
        assert!(again, "the chunk was not reused");
    }

    fn fresh_chunks() -> usize {
        super::CARVED.with(|c| c.borrow().fresh)
    }

    /// A sender running a queue of mid-sized copies ahead of the thread
    /// that drops them (a connection's, writing them out) goes round the
    /// chunks it filled rather than allocate one per 64 KiB, and every
    /// frame alive keeps its bytes.
    #[test]
    fn a_queue_of_mid_sized_copies_goes_round_its_chunks() {
        let len = 4096;
        let per_chunk = super::CARVED_CHUNK / len;
        let depth = 40 * per_chunk;
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Bytes)>(depth);
        // The queue fills before the writer starts.
        for n in 0..depth {
            tx.send((n, copy_frame(&vec![n as u8; len]))).unwrap();
        }
        let before = fresh_chunks();
        let writer = std::thread::spawn(move || {
            for (n, f) in rx {
                assert!(
                    f.len() == len && f.iter().all(|&x| x == n as u8),
                    "frame {n}"
                );
            }
        });
        for n in depth..depth * 20 {
            tx.send((n, copy_frame(&vec![n as u8; len]))).unwrap();
        }
        let fresh = fresh_chunks() - before;
        drop(tx);
        writer.join().unwrap();
        // Alive at most: the queue's 40 chunks' worth, one frame in the
        // writer's hands and one being sent, so a chunk or two more than
        // when the queue first filled (a chunk each 16 copies without).
        assert!(
            fresh <= 2,
            "{fresh} chunks allocated after the queue filled"
        );
        super::CARVED.with(|c| assert!(c.borrow().held.len() <= super::CARVED_HELD));
    }

    /// A frame kept for long pins its own chunk only: the chunks filled
    /// after it are reused all the same, and it keeps its bytes.
    #[test]
    fn a_long_kept_frame_pins_only_its_own_chunk() {
        let len = 2048;
        let per_chunk = super::CARVED_CHUNK / len;
        let kept = copy_frame(&vec![0x5a; len]);
        let mut recent = std::collections::VecDeque::new();
        let mut before = 0;
        for n in 0..per_chunk * 200 {
            if n == per_chunk * 20 {
                before = fresh_chunks();
            }
            recent.push_back((n, copy_frame(&vec![n as u8; len])));
            if recent.len() > 3 * per_chunk {
                let (n, f) = recent.pop_front().unwrap();
                assert!(f.iter().all(|&x| x == n as u8), "frame {n}");
            }
        }
        assert_eq!(
            fresh_chunks() - before,
            0,
            "chunks allocated in the steady state"
        );
        assert!(kept.iter().all(|&x| x == 0x5a));
    }

    /// A sender of 64 KiB copies that runs a few dozen ahead of its
    /// connection (a blocking sender paces itself at 4 MiB queued) goes
    /// round the buffers of the copies gone, with no fresh memory once
    /// the stream is under way, and every frame alive keeps its bytes.
    #[test]
    fn large_copies_dozens_ahead_go_round_their_buffers() {
        let ahead = 70;
        let mut out = std::collections::VecDeque::new();
        let mut before = 0;
        for n in 0..ahead * 5 {
            // (Once `ahead` + 1 are alive at a copy: the pop follows it.)
            if n == ahead + 1 {
                before = super::REUSED_MISSES.get();
            }
            out.push_back((n, copy_frame(&vec![n as u8; REUSED_FROM])));
            if out.len() > ahead {
                let (n, f) = out.pop_front().unwrap();
                assert!(f.iter().all(|&x| x == n as u8), "frame {n}");
            }
        }
        assert_eq!(super::REUSED_MISSES.get() - before, 0);
    }

    /// Frames dropped on another thread free their buffer for the copying
    /// thread all the same.
    #[test]
    fn a_frame_dropped_elsewhere_frees_its_buffer() {
        let a = copy_frame(&filled(5));
        let at = a.as_ptr();
        std::thread::spawn(move || drop(a)).join().unwrap();
        assert_eq!(copy_frame(&filled(6)).as_ptr(), at);
    }

    /// Past the pool's room, copies get buffers of their own, still right;
    /// small and empty frames are plain copies.
    #[test]
    fn copies_past_the_pool_and_small_ones_are_plain() {
        let live: Vec<_> = (0..REUSED_BUFFERS as u8 + 4)
            .map(|i| copy_frame(&filled(i)))
            .collect();
        for (i, f) in live.iter().enumerate() {
            assert!(f.iter().all(|&x| x == i as u8));
        }
        assert_eq!(&copy_frame(b"abc")[..], b"abc");
        assert!(copy_frame(b"").is_empty());
        let big = vec![9u8; (4 << 20) + 1];
        assert_eq!(copy_frame(&big), big);
    }

    /// A larger copy than a free buffer holds takes a new buffer (in the
    /// free one's place once the pool is full), not a short one; the
    /// pool keeps at most its bytes.
    #[test]
    fn a_larger_copy_gets_room_for_all_of_it() {
        let small = copy_frame(&filled(1));
        drop(small);
        let data = vec![8u8; 3 * REUSED_FROM];
        let big = copy_frame(&data);
        assert_eq!(big, data);
        drop(big);
        // Fill the pool's bytes with live 4 MiB frames: the second fits
        // only in place of free ones, a third in none.
        let huge: Vec<_> = (0..3).map(|i| copy_frame(&vec![i; 4 << 20])).collect();
        for (i, f) in huge.iter().enumerate() {
            assert!(f.len() == 4 << 20 && f.iter().all(|&x| x == i as u8));
        }
        super::REUSED.with(|p| {
            let kept: usize = p.borrow().iter().map(|(_, size)| size).sum();
            assert!(kept <= super::REUSED_BYTES, "{kept}");
        });
    }
}
