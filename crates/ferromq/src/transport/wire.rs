//! A connection's protocol state, shared between its driver task and the
//! application's threads.
//!
//! Normally the application queues a message and the driver (on an I/O
//! thread) writes it, and the driver reads and hands what it decoded to the
//! application's thread. For a request/reply exchange, or a message now and
//! then, that costs a thread wake-up at each end of every message. Instead:
//!
//! * when the connection has been idle for a while, the sending thread
//!   encodes the message and writes it to the socket itself ("direct
//!   write"); whatever the kernel does not take stays in the connection's
//!   buffer for the driver;
//! * a blocking receive waiting on a socket with a single tcp or ipc peer
//!   waits on that connection's descriptor itself and reads what arrives
//!   ("direct read"). The driver still watches the descriptor too, so
//!   whichever thread comes first reads, and end of stream, errors and
//!   heartbeats stay the driver's business. An async receive does the
//!   same where the driver is a task of the receiver's own current-thread
//!   runtime, waiting on the reactor's readiness instead of `poll(2)`.
//!
//! Lock order: the wire before the socket's state. A thread holding the
//! state only ever *tries* the wire's lock, so the two cannot deadlock.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ferromq_proto::{Connection, Event, Message};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use crate::options::READ_AHEAD;

/// Bytes batched into the connection's write buffer before writing.
pub(crate) const WRITE_BATCH: usize = 256 * 1024;
/// Slices per vectored write.
const IOV: usize = 64;
/// A long frame's header: flags and an 8-byte size.
const LONG_HEADER: usize = 9;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes a blocking direct read takes at a time (it zeroes its window
/// first); an async one reads into the buffer's spare room, as the driver.
const DIRECT_READ: usize = 16 * 1024;
/// Reads per turn before the driver turns to writing again.
const READS_PER_WAKE: usize = 4;
/// Most bytes a sending thread encodes ahead of the driver's writes
/// ([`Wire::try_take`]); past this, messages queue (and count against
/// SNDHWM) as usual. libzmq's encoder batches 8 KiB.
const ENCODE_AHEAD: usize = WRITE_BATCH;
/// Messages a sender on the application's runtime writes itself whenever
/// the output is empty (see [`Wire::new`]): from [`ENCODE_AHEAD`] up,
/// which is one message per write anyway. Smaller ones are encoded for
/// the driver, which then writes several per `sendmsg`: async 64 KiB tcp
/// ran ~40-54 k msgs/s so against ~23-32 k written one by one under BBR
/// (whose pacing costs each `sendmsg` dearly), ~85-95 k against ~68-81 k
/// under CUBIC; 128 and 192 KiB gained too, while 256 KiB lost (~9-10 k
/// against ~10-14 k).
const DIRECT_LARGE: usize = ENCODE_AHEAD;
/// A connection counts as idle when nothing was sent on it for this long:
/// a direct write then saves two wake-ups; sooner, the driver is likely busy
/// with a stream of messages, which it batches far better than a syscall
/// per message would.
const IDLE: Duration = Duration::from_micros(20);
/// A sending thread writes the output itself ([`Take::Flush`]) once it
/// holds this many bytes and [`FLUSH_MESSAGES`] messages encoded since the
/// output was last empty, and the driver, woken for it when the first of
/// them came, has not yet begun to write: the driver's thread is slow to
/// run. With messages that small, the write costs the sender little next
/// to encoding them (one `sendmsg` per thousand or more), and waiting for
/// the driver cost more: when it did run promptly, it wrote batches of
/// ~6 KB, each with a wake-up of its own at both ends. With larger
/// messages the sender's time is better spent encoding while the driver
/// writes (a 256-byte stream lost ~20% when the sender flushed at 64 KiB).
const FLUSH_BYTES: usize = 64 * 1024;
/// See [`FLUSH_BYTES`]: an average of 64 bytes a message at most.
const FLUSH_MESSAGES: usize = FLUSH_BYTES / 64;
/// How long a driver leaves its readable descriptor to a direct reader at
/// most (see [`Wire::defer_to_direct`]).
pub(crate) const DEFER: Duration = Duration::from_millis(1);

/// What direct reads and writes need of the connection's stream; safe to
/// call from any thread, as tokio's non-blocking reads and writes are.
pub(crate) trait Io: Send + Sync {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// A non-blocking read straight from the descriptor, not through the
    /// reactor's readiness (which the I/O thread may not have updated yet
    /// when a direct reader's own poll wakes it).
    fn read_now(&self, buf: &mut BytesMut) -> io::Result<usize>;
    fn fd(&self) -> std::os::fd::BorrowedFd<'_>;
    /// For an async direct reader, as the stream's own methods of these
    /// names: readiness through the reactor (one reader at a time: the
    /// reactor keeps one waker for it), forgetting it after a short read,
    /// and a read through it into the buffer's spare room.
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>>;
    fn clear_readable(&self);
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    /// A non-blocking vectored write straight to the descriptor, not
    /// through the reactor's readiness (no SIGPIPE, as the driver's).
    fn write_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

impl<S: super::Stream> Io for S {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        super::Stream::try_write_vectored(self, bufs)
    }
    fn read_now(&self, buf: &mut BytesMut) -> io::Result<usize> {
        use std::io::Read;
        // Into initialised bytes (safe code only): zero a modest window,
        // enough for the answers direct reads are for; more is read next turn.
        let len = buf.len();
        let want = (buf.capacity() - len).clamp(1, DIRECT_READ);
        buf.resize(len + want, 0);
        let r = (&*socket2::SockRef::from(self)).read(&mut buf[len..]);
        buf.truncate(len + *r.as_ref().unwrap_or(&0));
        r
    }
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.as_fd()
    }
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        super::Stream::poll_read_ready(self, cx)
    }
    fn clear_readable(&self) {
        super::Stream::clear_readable(self);
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        super::Stream::try_read_buf(self, buf)
    }
    fn write_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        super::send_now(self, bufs)
    }
}

/// What a sender hands a connection: a message, or the body of a
/// one-frame message still in the application's buffer (which saves
/// making a message of a copy, and, written directly, the copy).
#[derive(Clone, Copy)]
pub(crate) enum Out<'a> {
    Msg(&'a Message),
    Slice(&'a [u8]),
}

impl Out<'_> {
    fn byte_len(&self) -> usize {
        match self {
            Out::Msg(m) => m.byte_len(),
            Out::Slice(b) => b.len(),
        }
    }

    /// Queues it in `conn`'s output (a copy of a slice).
    fn encode(&self, conn: &mut Connection) {
        match self {
            Out::Msg(m) => conn.send_message(m),
            Out::Slice(b) => conn.send_slice(b),
        }
    }
}

/// Bodies from this many bytes up that a direct write of an [`Out::Slice`]
/// writes from the application's buffer; smaller ones are copied into the
/// output first, which costs less than a second slice per write.
const DIRECT_SLICE: usize = 8 * 1024;

/// What [`Wire::try_encode`] did with a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Encoded {
    /// Nothing: queue it for the driver.
    No,
    /// Encoded into the connection's output for the driver to write.
    Yes,
    /// Encoded, and the output is due a [`Wire::flush_due`] (see
    /// [`Take::Flush`]).
    FlushDue,
}

/// What [`Wire::try_take`] did with a message.
pub(crate) enum Take<'a> {
    /// Nothing: queue it for the driver.
    Queue,
    /// Encoded into the connection's output for the driver to write.
    Encoded,
    /// The connection is idle: write it with [`Wire::send_direct`].
    Write(MutexGuard<'a, WireState>),
    /// Encoded, and the output is a batch of small messages the driver has
    /// yet to start on: write it with [`Wire::flush`].
    Flush(MutexGuard<'a, WireState>),
}

/// One connection's protocol state and buffers.
pub(crate) struct Wire {
    state: Mutex<WireState>,
    /// The driver's wake-up: for what a direct write left unwritten, or an error.
    driver: Arc<Notify>,
    /// A message went out since input last came in: the application likely
    /// awaits an answer, which a direct read brings soonest, and the next
    /// message it sends is an answer's answer, which a direct write sends
    /// soonest. (A stream one way is better served by the driver, which
    /// reads ahead and batches writes.) Outside the lock: senders check it
    /// first, at the cost of a load.
    awaiting: AtomicBool,
    /// Large messages are written directly whenever the output is empty
    /// (see [`Wire::new`]).
    large_direct: bool,
    /// A thread is waiting on the descriptor to read directly (see
    /// [`Wire::defer_to_direct`]).
    direct_waiting: AtomicBool,
    /// The driver left a readable descriptor to that thread, and waits to
    /// hear from it before it reads again.
    deferred: AtomicBool,
    /// Counts direct waits begun, and the wait the driver last deferred
    /// to: it defers once per wait, so a waiter that is never polled again
    /// (an async receive left pending) holds the input up for [`DEFER`]
    /// at most.
    waits: AtomicU64,
    deferred_to: AtomicU64,
}

/// What the lock of a [`Wire`] guards.
pub(crate) struct WireState {
    pub conn: Connection,
    /// Bytes read and not yet decoded.
    rbuf: BytesMut,
    /// Decoding stopped at the receiver's queue limit with whole messages
    /// possibly left in `rbuf`: decode them when the queue has room, even
    /// if the stream brings nothing new.
    pub(crate) backlog: bool,
    /// The last [`Wire::read_input`] read until the kernel had no more.
    drained: bool,
    /// The size of the last large frame (header included), 0 after a small
    /// one: the room to read the next frame into when a stream of large
    /// frames has emptied `rbuf`, so that its first bytes are not read into
    /// a smaller buffer and copied when it grows.
    large: usize,
    /// Buffers that large frames were read into and handed out (see
    /// [`Spares`]).
    spares: Spares,
    /// The stream, until the driver stops with it.
    io: Option<Arc<dyn Io>>,
    /// An error met by a direct write, for the driver to act on.
    failed: Option<io::Error>,
    /// When a sender last looked at this connection (see [`IDLE`]).
    last_send: Option<Instant>,
    /// Bytes of output the driver took out of `conn` to write with the lock
    /// released (see [`Connection::take_transmit`]), 0 when it is not
    /// writing. While it is, `conn` may look empty, but a direct write would
    /// overtake those bytes, and they count towards [`ENCODE_AHEAD`].
    pub(crate) writing: usize,
    /// Messages encoded into the output since a sender found it empty.
    encoded: usize,
}

impl Wire {
    /// With `large_direct` (connections on the application's runtime), a
    /// sender writes a message of [`DIRECT_LARGE`] bytes or more itself whenever
    /// the connection's output is empty, busy stream or not: the driver
    /// would run on the sender's own thread (or a worker of its runtime)
    /// anyway, and one write per such message costs little next to its
    /// bytes. The buffer is then freed before `send` returns, not after
    /// the sender has allocated its next one; with two or more 1 MiB
    /// buffers alive at a time, each free grew glibc's heap top past its
    /// trim threshold, so the heap shrank and regrew, and every page of
    /// every copy was faulted in afresh (async 1 MiB tcp, measured:
    /// ~244 page faults per message, ~1.7 k msgs/s; ~3 faults, ~3.7 k).
    /// On the context's own I/O threads, the driver writing while the
    /// sender prepares its next message is worth more.
    pub(crate) fn new(
        conn: Connection,
        io: Arc<dyn Io>,
        driver: Arc<Notify>,
        large_direct: bool,
    ) -> Wire {
        Wire {
            state: Mutex::new(WireState {
                conn,
                rbuf: BytesMut::with_capacity(READ_CHUNK),
                backlog: false,
                drained: false,
                large: 0,
                spares: Spares::default(),
                io: Some(io),
                failed: None,
                last_send: None,
                writing: 0,
                encoded: 0,
            }),
            driver,
            awaiting: AtomicBool::new(false),
            large_direct,
            direct_waiting: AtomicBool::new(false),
            deferred: AtomicBool::new(false),
            waits: AtomicU64::new(0),
            deferred_to: AtomicU64::new(0),
        }
    }

    /// The driver's access.
    pub(crate) fn lock(&self) -> MutexGuard<'_, WireState> {
        self.state.lock()
    }

    /// The driver is done with the stream: no direct writes from now on, and
    /// the stream closes with the driver's hold on it.
    pub(crate) fn close(&self) {
        self.state.lock().io = None;
    }

    /// Takes `msg` on the sending thread if the wire's lock is free (the
    /// caller holds the socket's state, so it only tries it):
    ///
    /// * an idle connection (see [`IDLE`]) hands back the lock for a direct
    ///   write ([`Wire::send_direct`]);
    /// * a busy one with less than [`ENCODE_AHEAD`] bytes unwritten gets the
    ///   message encoded into its output, and the driver is woken when that
    ///   output was empty. The driver then only writes bytes: the message
    ///   never crosses threads, so its buffers are freed by the thread that
    ///   allocated them, and nothing per message bounces between cores.
    pub(crate) fn try_take(&self, msg: Out<'_>) -> Take<'_> {
        self.take(msg, true)
    }

    /// As [`try_take`](Self::try_take), but never hands back the lock for a
    /// direct write: for a caller that cannot let go of the socket's state
    /// (a publisher going through its subscribers). Whether it encoded, and
    /// whether the caller should [`flush_due`](Self::flush_due) the wire
    /// once it has let go of the state.
    pub(crate) fn try_encode(&self, msg: &Message) -> Encoded {
        match self.take(Out::Msg(msg), false) {
            Take::Encoded => Encoded::Yes,
            Take::Flush(_) => Encoded::FlushDue,
            Take::Queue | Take::Write(_) => Encoded::No,
        }
    }

    /// What [`try_encode`](Self::try_encode) found due for the output:
    /// written, without waiting, if the driver has still not begun to.
    pub(crate) fn flush_due(&self) {
        if let Some(w) = self.state.try_lock() {
            if w.writing == 0 && w.conn.transmit_len() >= FLUSH_BYTES {
                self.flush(w);
            }
        }
    }

    fn take(&self, msg: Out<'_>, may_write: bool) -> Take<'_> {
        let Some(mut w) = self.state.try_lock() else {
            return Take::Queue;
        };
        if w.io.is_none() || w.failed.is_some() || !w.conn.is_active() {
            return Take::Queue;
        }
        let empty = w.conn.transmit_is_empty();
        if may_write && empty && w.writing == 0 {
            if self.large_direct && msg.byte_len() >= DIRECT_LARGE {
                w.last_send = Some(Instant::now());
                return Take::Write(w);
            }
            if !self.awaiting.load(Ordering::Relaxed) {
                let now = Instant::now();
                let idle = w.last_send.is_none_or(|t| now.duration_since(t) >= IDLE);
                w.last_send = Some(now);
                if idle {
                    return Take::Write(w);
                }
            }
        }
        let ahead = w.conn.transmit_len() + w.writing;
        if ahead >= ENCODE_AHEAD {
            return Take::Queue;
        }
        msg.encode(&mut w.conn);
        self.sent();
        if empty {
            w.encoded = 0;
        }
        w.encoded += 1;
        if !self.large_direct
            && w.writing == 0
            && w.encoded >= FLUSH_MESSAGES
            && w.conn.transmit_len() >= FLUSH_BYTES
        {
            return Take::Flush(w);
        }
        drop(w);
        if empty {
            self.driver.notify_one();
        }
        Take::Encoded
    }

    /// Writes what the kernel takes of the output [`Take::Flush`] found
    /// waiting, without waiting; the rest (and any error) goes to the
    /// driver, which was woken for the output already.
    pub(crate) fn flush(&self, mut guard: MutexGuard<'_, WireState>) {
        let w = &mut *guard;
        // Counted afresh: if the kernel does not take it all (the receiver
        // is behind), the next try comes a batch later, not with every
        // message.
        w.encoded = 0;
        // Around the reactor: the driver, held up, may not have seen the
        // descriptor writable again since a write met a full kernel buffer,
        // and a write through the reactor would then not even be tried.
        let r = match &w.io {
            Some(io) => write_some(&mut w.conn, |bufs| io.write_now(bufs)),
            None => Ok(()),
        };
        if let Err(e) = r {
            w.failed = Some(e);
            drop(guard);
            self.driver.notify_one();
        }
    }

    /// Encodes `msg` and writes what the kernel takes without waiting; the
    /// rest (and any error) goes to the driver. A large body still in the
    /// application's buffer ([`Out::Slice`]) is written from there, and
    /// only what the kernel did not take is copied.
    pub(crate) fn send_direct(&self, mut guard: MutexGuard<'_, WireState>, msg: Out<'_>) {
        let w = &mut *guard;
        self.sent();
        let r = match (&w.io, msg) {
            (Some(io), Out::Slice(body)) if body.len() >= DIRECT_SLICE => {
                write_slice(&mut w.conn, body, |bufs| io.try_write_vectored(bufs))
            }
            (Some(io), _) => {
                msg.encode(&mut w.conn);
                write_some(&mut w.conn, |bufs| io.try_write_vectored(bufs))
            }
            (None, _) => {
                msg.encode(&mut w.conn);
                Ok(())
            }
        };
        let handoff = match r {
            Ok(()) => !w.conn.transmit_is_empty(),
            Err(e) => {
                w.failed = Some(e);
                true
            }
        };
        drop(guard);
        if handoff {
            self.driver.notify_one();
        }
    }

    /// Reads what is available (a few reads at most) with `read` and feeds
    /// it to the connection. Returns false at end of stream.
    ///
    /// Decodes at most `budget` messages (the room in the receiver's queue),
    /// and reads nothing once that many are decoded: as in libzmq, a
    /// receiver that falls behind leaves data in the kernel rather than
    /// decoding it into ever longer queues (16-byte messages decode into
    /// ~7 times their wire size). What is left is flagged in `backlog`.
    /// Decoded messages go to the end of `batch`; other events (and messages
    /// that follow one) wait in the connection, after those in `batch`.
    pub(crate) fn read_input(
        &self,
        w: &mut WireState,
        budget: usize,
        batch: &mut Vec<Message>,
        mut read: impl FnMut(&mut BytesMut) -> io::Result<usize>,
    ) -> io::Result<bool> {
        let (conn, rbuf, large, spares) = (&mut w.conn, &mut w.rbuf, &mut w.large, &mut w.spares);
        let mut left = budget;
        if w.backlog {
            left -= conn
                .handle_input_into(rbuf, Instant::now(), left, Some(&mut *batch))
                .map_err(io::Error::other)?;
        }
        w.backlog = false;
        w.drained = false;
        let mut total = 0;
        for _ in 0..READS_PER_WAKE {
            if total >= READ_AHEAD {
                // Large frames: deliver what came before reading more, so
                // the inbox's byte limit holds to a frame or so.
                break;
            }
            if left == 0 {
                w.backlog = true;
                break;
            }
            // Grow for the frame in progress, but never by more than what
            // has already arrived: a header announcing 2^62 bytes costs nothing.
            let hint = conn.read_hint(rbuf).min(rbuf.len().max(1 << 20));
            let frame = rbuf.len() + hint;
            // A large frame is on its way (hint 0: a frame is complete or its
            // header is not).
            let large_frame = hint > 0 && frame >= READ_CHUNK;
            if large_frame {
                *large = frame;
            } else if !rbuf.is_empty() {
                *large = 0;
            }
            let want = if rbuf.is_empty() && *large != 0 {
                // Once: if the next frame is large too, its header sets it
                // again; else small messages would each get a buffer of
                // that size (kept alive while any of them is queued).
                std::mem::take(large)
            } else if large_frame {
                // The rest of a large frame: room for more would mean
                // copying all of it into a larger buffer.
                hint
            } else {
                hint.max(READ_CHUNK / 4)
            };
            if rbuf.capacity() - rbuf.len() < want {
                spares.reserve(rbuf, want.max(READ_CHUNK), want >= READ_CHUNK);
            }
            if large_frame && rbuf.capacity() > frame {
                // A large frame: read it to its end and no further, so the
                // next one starts in a buffer sized for it, not as a
                // fragment to copy out when it grows.
                drop(rbuf.split_off(frame));
            }
            let room = rbuf.capacity() - rbuf.len();
            let short = match read(rbuf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    total += n;
                    self.received();
                    // (A blocking direct read offers at most DIRECT_READ of
                    // the room; for the others a full read means one more.)
                    n < room.min(DIRECT_READ)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    w.drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            left -= conn
                .handle_input_into(rbuf, Instant::now(), left, Some(&mut *batch))
                .map_err(io::Error::other)?;
            if rbuf.is_empty() && *large == 0 {
                // A large frame that came whole in one read set no `large`
                // above; the next one is likely as large.
                let last = batch.last().and_then(|m| m.frames().last());
                if let Some(f) = last.filter(|f| f.len() >= READ_CHUNK) {
                    *large = f.len() + LONG_HEADER;
                }
            }
            if short {
                // The kernel had no more: deliver now rather than after a
                // read that finds nothing (an answer's round trip waits on
                // it). The stream still counts as readable, so the next
                // look reads again and meets the WouldBlock then.
                w.backlog = left == 0;
                w.drained = left > 0;
                break;
            }
        }
        Ok(true)
    }

    /// A message went out (see `awaiting`).
    pub(crate) fn sent(&self) {
        if !self.awaiting.load(Ordering::Relaxed) {
            self.awaiting.store(true, Ordering::Relaxed);
        }
    }

    /// Input came in (see `awaiting`).
    fn received(&self) {
        if self.awaiting.load(Ordering::Relaxed) {
            self.awaiting.store(false, Ordering::Relaxed);
        }
    }

    /// The stream, for a thread about to wait on it for an answer (held,
    /// it stays open); `None` if no answer is due or the stream is done.
    pub(crate) fn io_awaiting(&self) -> Option<Arc<dyn Io>> {
        if !self.awaiting.load(Ordering::Relaxed) {
            return None;
        }
        let w = self.state.lock();
        if w.failed.is_some() {
            return None;
        }
        w.io.clone()
    }

    /// A thread begins to wait on the descriptor for a direct read.
    pub(crate) fn begin_direct_wait(&self) {
        self.waits.fetch_add(1, Ordering::SeqCst);
        self.direct_waiting.store(true, Ordering::SeqCst);
    }

    /// The direct waiter is done: it read until the kernel had no more
    /// (`drained`), or it stopped short or read nothing. In the second case
    /// a driver that left input to it reads again now. In the first it
    /// looks again once its deferral runs out ([`DEFER`]): a wake-up of the
    /// I/O thread after every direct read, only to find nothing, got in the
    /// way of the next round trip on two cores.
    pub(crate) fn end_direct_wait(&self, drained: bool) {
        self.direct_waiting.store(false, Ordering::SeqCst);
        if !drained && self.deferred.swap(false, Ordering::SeqCst) {
            self.driver.notify_one();
        }
    }

    /// The driver's deferral ran out: it watches the descriptor again.
    pub(crate) fn stop_deferring(&self) {
        self.deferred.store(false, Ordering::SeqCst);
    }

    /// The driver found the descriptor readable: true if a thread waiting
    /// to read it directly will read instead. The driver then leaves the
    /// descriptor alone until [`end_direct_wait`](Self::end_direct_wait)
    /// tells it to read, or for [`DEFER`] at most, so that end of stream
    /// and heartbeats are still seen when no one waits.
    ///
    /// Both wake when input arrives, and the I/O thread, woken first by
    /// the kernel, used to win the race for the bytes in ~80-95% of round
    /// trips, then handed them to the waiting thread with a wake-up of its
    /// own: the direct read saved nothing.
    pub(crate) fn defer_to_direct(&self) -> bool {
        if !self.direct_waiting.load(Ordering::SeqCst) {
            return false;
        }
        // Once per wait (only the driver calls this).
        let wait = self.waits.load(Ordering::SeqCst);
        if self.deferred_to.swap(wait, Ordering::Relaxed) == wait {
            return false;
        }
        self.deferred.store(true, Ordering::SeqCst);
        // Either the waiter is still there and will see `deferred` when it
        // ends, or it ended already and we read as usual.
        if self.direct_waiting.load(Ordering::SeqCst) {
            return true;
        }
        self.deferred.store(false, Ordering::SeqCst);
        false
    }

    /// Whether the driver leaves reading to a direct waiter for now.
    pub(crate) fn deferring(&self) -> bool {
        self.deferred.load(Ordering::SeqCst)
    }

    /// A direct read: reads what arrived and decodes it into `batch`.
    /// Returns the lock (to deliver the batch under) and whether the stream
    /// is still open and sound. Whatever else happens (end of stream, an
    /// error, a PONG to send) is left to the driver, which is woken for it.
    /// `via_reactor`: the reader was woken by the reactor (an async one),
    /// so it reads (and forgets readiness after a short read) as the
    /// driver does; a thread woken by its own poll reads around the
    /// reactor.
    pub(crate) fn read_direct(
        &self,
        budget: usize,
        batch: &mut Vec<Message>,
        via_reactor: bool,
    ) -> (MutexGuard<'_, WireState>, bool) {
        let mut guard = self.state.lock();
        let w = &mut *guard;
        let Some(io) = w.io.clone() else {
            return (guard, false);
        };
        let r = self.read_input(w, budget, batch, |buf| {
            if via_reactor {
                io.try_read_buf(buf)
            } else {
                io.read_now(buf)
            }
        });
        while let Some(ev) = w.conn.poll_event() {
            // After the handshake a connection of a socket that reads
            // directly (not PUB or XPUB) decodes nothing but messages.
            if let Event::Message(m) = ev {
                batch.push(m);
            }
        }
        let open = match r {
            // End of stream: the driver's to report, as an error would be.
            // Marked, so no direct reader finds the descriptor readable
            // again and reads the end once more (an async one did, in a
            // loop, with the driver deferring to it).
            Ok(false) => {
                w.failed = Some(io::ErrorKind::UnexpectedEof.into());
                false
            }
            Ok(true) => true,
            Err(e) => {
                w.failed = Some(e);
                false
            }
        };
        if via_reactor && w.drained {
            // As the driver does after a short read: the next poll waits
            // for new input rather than find the old readiness and read
            // nothing.
            io.clear_readable();
        }
        if !open || !w.conn.transmit_is_empty() {
            self.driver.notify_one();
        }
        (guard, open)
    }
}

/// Read buffers of small frames kept per thread for reuse (see
/// [`reserve_small`]), each of [`READ_CHUNK`] bytes or so: 2 MiB, what a
/// blocking receiver's application may be behind its reader (a paused
/// inbox of [`READ_AHEAD`], as much again in the receive cache). With 8,
/// a 4 KiB tcp receiver faulted in ~2,500-8,000 fresh pages per 220,000
/// messages, with 32 ~1,500-2,500, and ran at median ~1.28 against
/// ~1.13 M msgs/s (6 alternating rounds), its peak RSS ~10 MiB against
/// ~12-14.
const SMALL_SPARES: usize = 32;

std::thread_local! {
    /// Read buffers of small frames this thread's connections handed out,
    /// oldest first: a later read goes into the first one whose frames are
    /// all gone.
    static SMALL_HELD: std::cell::RefCell<std::collections::VecDeque<BytesMut>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

/// Makes room in `rbuf` for `additional` more bytes when small frames are
/// read: in place if no frame handed out refers to its buffer any more,
/// else in a buffer of this thread's that none refers to any more, else a
/// new one; the bytes of a frame under way go along. The buffer left
/// behind (its frames queued for the application) is kept, up to
/// [`SMALL_SPARES`] per thread.
///
/// Before, every read buffer of small frames was a new allocation, freed
/// by whoever dropped its last frame: with the application's thread
/// dropping them a few at a time, glibc gave the heap top back and faulted
/// it in again (an async 4 KiB receiver made ~3,200 `brk` calls per 13,800
/// reads), and a blocking receiver's thread freed memory the I/O thread
/// allocated, under the allocator's lock.
fn reserve_small(rbuf: &mut BytesMut, additional: usize) {
    if rbuf.try_reclaim(additional) {
        return;
    }
    let need = rbuf.len() + additional;
    let reused = SMALL_HELD
        .try_with(|held| {
            let mut held = held.borrow_mut();
            // Newest first: its memory is the likeliest still in cache.
            let i = held.iter_mut().rposition(|b| b.try_reclaim(need))?;
            held.remove(i)
        })
        .ok()
        .flatten();
    let mut next = reused.unwrap_or_else(|| BytesMut::with_capacity(need.max(READ_CHUNK)));
    next.extend_from_slice(rbuf);
    let mut last = std::mem::replace(rbuf, next);
    last.clear();
    let _ = SMALL_HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        if held.len() >= SMALL_SPARES {
            held.pop_front();
        }
        held.push_back(last);
    });
}

/// Most buffers of handed-out large frames a connection keeps (see
/// [`Spares`]): a blocking receiver's application may be ~32 frames of
/// 64 KiB behind its reader (a paused inbox of [`READ_AHEAD`], as much
/// again in the receive cache). With 4, the 64 KiB tcp receiver read
/// into fresh memory, which the application's thread freed, and faulted
/// in ~30,000-38,000 pages per 15,000 messages; with 32, ~800. The byte
/// cap keeps 1 MiB frames to 4 buffers, as before.
const SPARES: usize = 32;
/// Most bytes of such buffers it keeps.
const SPARE_BYTES: usize = 4 << 20;

/// The buffers a stream of large frames was read into, kept so that a later
/// frame can be read into one the application has since dropped.
///
/// Each large frame is read into a buffer of its own, which goes to the
/// application with the frame. Without these, every such frame took a
/// fresh allocation, which glibc serves from pages it has just returned to
/// the kernel (its heap shrinks when a run of such buffers is freed), so a
/// 1 MiB receiver faulted in ~45 pages per message. Holding a handle to
/// each of the last few buffers, the connection reads the next frame into
/// the first one nobody else holds any more (`BytesMut::try_reclaim`),
/// whose pages are already mapped. At most [`SPARES`] buffers of at most
/// [`SPARE_BYTES`] together are kept (so a connection that goes idle after
/// a stream of large frames holds no more), and none once a small frame
/// comes.
#[derive(Default)]
struct Spares {
    /// The buffers, each with its size.
    held: std::collections::VecDeque<(BytesMut, usize)>,
    /// The size of `rbuf`'s buffer if it was made for a large frame.
    rbuf_large: Option<usize>,
}

impl Spares {
    /// Makes room in `rbuf` for `additional` more bytes, for a large frame
    /// if `large`: in a free spare if there is one.
    fn reserve(&mut self, rbuf: &mut BytesMut, additional: usize, large: bool) {
        if !large {
            self.held.clear();
            self.rbuf_large = None;
            reserve_small(rbuf, additional);
            return;
        }
        if rbuf.len() >= READ_CHUNK {
            // Well into a frame: grow in place, by doubling (copying all of
            // it into an exactly sized buffer at every read of a 2 GiB
            // frame took ~90 s).
            rbuf.reserve(additional);
            if let Some(size) = &mut self.rbuf_large {
                *size = (*size).max(rbuf.capacity());
            }
            return;
        }
        let need = rbuf.len() + additional;
        let free = self.held.iter_mut().position(|(b, _)| b.try_reclaim(need));
        let (mut next, size) = match free {
            Some(i) => self.held.remove(i).expect("found"),
            None => (BytesMut::with_capacity(need), need),
        };
        next.extend_from_slice(rbuf);
        let mut last = std::mem::replace(rbuf, next);
        if let Some(last_size) = self.rbuf_large.replace(size) {
            // Its bytes were copied over: keep only the buffer.
            last.clear();
            self.held.push_back((last, last_size));
            let mut total: usize = self.held.iter().map(|(_, n)| n).sum();
            while self.held.len() > SPARES || total > SPARE_BYTES {
                let Some((_, n)) = self.held.pop_front() else {
                    break;
                };
                total -= n;
            }
        }
    }
}

impl WireState {
    /// An error a direct write met, once.
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// Whether the last read went on until the kernel had no more.
    pub(crate) fn drained(&self) -> bool {
        self.drained
    }
}

/// Output a vectored write drains: a connection's, or what the driver took
/// out of it ([`ferromq_proto::Taken`]).
pub(crate) trait Output {
    fn is_empty(&self) -> bool;
    fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize;
    fn advance(&mut self, n: usize);
}

impl Output for Connection {
    fn is_empty(&self) -> bool {
        self.transmit_is_empty()
    }
    fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.transmit_slices(dst)
    }
    fn advance(&mut self, n: usize) {
        self.advance_transmit(n)
    }
}

impl Output for ferromq_proto::Taken {
    fn is_empty(&self) -> bool {
        ferromq_proto::Taken::is_empty(self)
    }
    fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        ferromq_proto::Taken::slices(self, dst)
    }
    fn advance(&mut self, n: usize) {
        ferromq_proto::Taken::advance(self, n)
    }
}

/// Writes a one-frame message whose body is `body` as far as `write` takes
/// it without waiting (the connection's output being empty), straight from
/// `body`; what it does not take is queued in `conn`, framed.
fn write_slice(
    conn: &mut Connection,
    body: &[u8],
    mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
) -> io::Result<()> {
    debug_assert!(conn.transmit_is_empty());
    let (header, hlen) = ferromq_proto::wire::frame::header(false, false, body.len());
    let header = &header[..hlen];
    let mut done = 0;
    let total = hlen + body.len();
    let result = loop {
        if done == total {
            break Ok(());
        }
        let r = if done < hlen {
            write(&[IoSlice::new(&header[done..]), IoSlice::new(body)])
        } else {
            write(&[IoSlice::new(&body[done - hlen..])])
        };
        match r {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(k) => done += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // The rest, for the driver (after an error too: the driver reports it,
    // and the bytes go nowhere).
    if done < hlen {
        conn.send_framed(&header[done..]);
        conn.send_framed(body);
    } else if done < total {
        conn.send_framed(&body[done - hlen..]);
    }
    result
}

/// Writes as much of `out` as `write` takes without waiting; what is
/// written leaves it.
pub(crate) fn write_some(
    out: &mut impl Output,
    mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
) -> io::Result<()> {
    while !out.is_empty() {
        let written = {
            let mut slices = [IoSlice::new(&[]); IOV];
            let n = out.slices(&mut slices);
            match write(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        out.advance(written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::{Spares, READ_CHUNK, SPARES};

    /// Reads a "frame" of `len` bytes into `rbuf` as the driver does (room
    /// made by `spares`), hands it out and returns it with the address of
    /// the buffer it was read into.
    fn frame(spares: &mut Spares, rbuf: &mut BytesMut, len: usize) -> (bytes::Bytes, usize) {
        if rbuf.capacity() - rbuf.len() < len {
            spares.reserve(rbuf, len, len >= READ_CHUNK);
        }
        rbuf.resize(len, 7);
        let at = rbuf.as_ptr() as usize;
        (rbuf.split_to(len).freeze(), at)
    }

    #[test]
    fn a_large_frame_is_read_into_a_buffer_the_application_has_dropped() {
        const LEN: usize = 1 << 20;
        let mut spares = Spares::default();
        let mut rbuf = BytesMut::new();
        let (first, a) = frame(&mut spares, &mut rbuf, LEN);
        // Still held by the application: the next frame needs another buffer.
        let (second, b) = frame(&mut spares, &mut rbuf, LEN);
        assert_ne!(a, b);
        drop(first);
        // The first buffer is free again: the third frame goes into it.
        let (third, c) = frame(&mut spares, &mut rbuf, LEN);
        assert_eq!(c, a);
        assert_eq!((third.len(), second.len()), (LEN, LEN));
        assert!(third.iter().all(|&x| x == 7));
    }

    /// A blocking receiver's application a few dozen 64 KiB frames behind
    /// its reader (a paused inbox of 1 MiB, as much again in the receive
    /// cache) has the next frame read into the oldest buffer once that
    /// frame is gone, not into new memory.
    #[test]
    fn frames_dozens_behind_free_their_buffer_for_the_next() {
        const LEN: usize = 64 << 10;
        let mut spares = Spares::default();
        let mut rbuf = BytesMut::new();
        let mut out: std::collections::VecDeque<_> = (0..30)
            .map(|_| frame(&mut spares, &mut rbuf, LEN))
            .collect();
        let (oldest, at) = out.pop_front().unwrap();
        drop(oldest);
        // What the allocator would hand out next, were the buffer freed.
        let other = vec![0u8; LEN];
        // The next frame goes into the freed buffer.
        let next = frame(&mut spares, &mut rbuf, LEN);
        assert_eq!(next.1, at);
        drop(other);
    }

    /// A buffer outgrown while a frame was read into it is kept without
    /// that frame's bytes: a later frame read into it finds it empty.
    #[test]
    fn a_reused_buffer_holds_nothing_of_its_last_frame() {
        const K: usize = 1 << 10;
        let mut spares = Spares::default();
        let mut rbuf = BytesMut::new();
        spares.reserve(&mut rbuf, 300 * K, true);
        // The start of a frame that turns out larger than the room left.
        rbuf.resize(10 * K, 1);
        spares.reserve(&mut rbuf, 350 * K, true);
        assert!(rbuf.iter().all(|&b| b == 1) && rbuf.len() == 10 * K);
        rbuf.resize(360 * K, 1);
        drop(rbuf.split_to(360 * K).freeze());
        // The next frame goes into the first buffer, free again.
        spares.reserve(&mut rbuf, 150 * K, true);
        assert!(rbuf.is_empty(), "{} stale bytes", rbuf.len());
        assert!(rbuf.capacity() >= 150 * K);
    }

    /// A frame far larger than one read grows its buffer by doubling, as
    /// `read_input` asks for room (the rest of the frame, at most what has
    /// arrived), not by a copy into a new buffer at every read.
    #[test]
    fn a_huge_frame_grows_its_buffer_a_few_times_only() {
        const FRAME: usize = 64 << 20;
        const READ: usize = 1 << 20;
        let mut spares = Spares::default();
        let mut rbuf = BytesMut::new();
        let mut buffers = std::collections::HashSet::new();
        while rbuf.len() < FRAME {
            let want = (FRAME - rbuf.len()).min(rbuf.len().max(READ));
            if rbuf.capacity() - rbuf.len() < want {
                spares.reserve(&mut rbuf, want.max(READ_CHUNK), true);
            }
            buffers.insert(rbuf.as_ptr() as usize);
            let n = READ.min(FRAME - rbuf.len());
            rbuf.resize(rbuf.len() + n, 1);
        }
        assert!(
            buffers.len() <= 12,
            "{} buffers for one frame",
            buffers.len()
        );
    }

    #[test]
    fn spares_are_bounded_and_let_go_once_small_frames_come() {
        const LEN: usize = 64 << 10;
        let mut spares = Spares::default();
        let mut rbuf = BytesMut::new();
        // The application keeps every frame: each takes a new buffer, and
        // the connection keeps handles to no more than SPARES of them.
        let held: Vec<_> = (0..3 * SPARES)
            .map(|_| frame(&mut spares, &mut rbuf, LEN).0)
            .collect();
        assert_eq!(spares.held.len(), SPARES);
        // Frames larger than the byte cap over SPARES buffers keep fewer.
        let big: Vec<_> = (0..SPARES)
            .map(|_| frame(&mut spares, &mut rbuf, 2 << 20).0)
            .collect();
        assert!(spares.held.iter().map(|(_, n)| n).sum::<usize>() <= super::SPARE_BYTES);
        assert!(spares.held.len() < SPARES);
        drop((held, big));
        let (small, _) = frame(&mut spares, &mut rbuf, 100);
        assert!(spares.held.is_empty());
        assert_eq!(small.len(), 100);
    }

    /// Small frames' read buffers: one whose frames are all gone is read
    /// into again (here, the newest such); one with a frame still out is
    /// never written; the bytes of a frame under way go along.
    #[test]
    fn small_read_buffers_are_reused_once_their_frames_are_gone() {
        use super::reserve_small;
        // Fills the buffer with `byte` (after the 10 bytes carried over),
        // hands all but the last 10 bytes out as frames, and checks them.
        let chunk = |rbuf: &mut BytesMut, byte: u8| {
            rbuf.resize(rbuf.capacity(), byte);
            let frames = rbuf.split_to(rbuf.len() - 10).freeze();
            assert!(frames[10..].iter().all(|&x| x == byte));
            (frames, byte)
        };
        let intact = |(frames, byte): &(bytes::Bytes, u8)| frames[10..].iter().all(|x| x == byte);
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let first_at = rbuf.as_ptr();
        let a = chunk(&mut rbuf, 1);
        reserve_small(&mut rbuf, READ_CHUNK / 4);
        assert_ne!(rbuf.as_ptr(), first_at, "frame `a` is still out");
        assert_eq!(&rbuf[..], &[1u8; 10][..], "the frame under way came along");
        let second_at = rbuf.as_ptr();
        let b = chunk(&mut rbuf, 2);
        // `a` is gone: its buffer is read into again, and `b` is intact.
        drop(a);
        reserve_small(&mut rbuf, READ_CHUNK / 4);
        assert_eq!(rbuf.as_ptr(), first_at);
        assert_eq!(&rbuf[..], &[2u8; 10][..]);
        assert!(intact(&b));
        // With nothing free, a new buffer; `b`'s is used once `b` is gone.
        let c = chunk(&mut rbuf, 3);
        reserve_small(&mut rbuf, READ_CHUNK / 4);
        assert_ne!(rbuf.as_ptr(), first_at);
        assert_ne!(rbuf.as_ptr(), second_at);
        assert!(intact(&c) && intact(&b));
        drop((b, c));
        let _d = chunk(&mut rbuf, 4);
        reserve_small(&mut rbuf, READ_CHUNK / 4);
        assert!(rbuf.as_ptr() == first_at || rbuf.as_ptr() == second_at);
    }

    /// A reader whose application is a few dozen buffers behind (an inbox
    /// of ~1 MiB of 4 KiB frames, and as much again in the receive cache)
    /// still reads into the oldest buffer once its frames are gone, not
    /// into new memory.
    #[test]
    fn a_reader_dozens_of_buffers_ahead_reuses_the_oldest() {
        use super::reserve_small;
        let behind = 30;
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut out = std::collections::VecDeque::new();
        for i in 0..behind {
            rbuf.resize(rbuf.capacity(), i as u8);
            out.push_back((rbuf.as_ptr(), rbuf.split().freeze()));
            reserve_small(&mut rbuf, READ_CHUNK);
        }
        let (oldest_at, oldest) = out.pop_front().unwrap();
        drop(oldest);
        // Memory the allocator would hand out next, were the buffer freed.
        let other = vec![0u8; READ_CHUNK];
        rbuf.resize(rbuf.capacity(), 0xee);
        let _last = rbuf.split().freeze();
        reserve_small(&mut rbuf, READ_CHUNK);
        assert_eq!(rbuf.as_ptr(), oldest_at);
        for (i, (_, frames)) in out.iter().enumerate() {
            assert!(frames.iter().all(|&x| x == (i + 1) as u8));
        }
        drop(other);
    }
}
