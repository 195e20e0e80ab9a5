//! inproc:// — in-process pipes between sockets of one context.
//!
//! No bytes and no ZMTP: whole messages move from one socket's peer queue to
//! the other's inbox, so frames keep their allocation (zero copy). As in
//! libzmq, it is synchronous: `connect` to a bound name attaches at once, and
//! a send moves the message into the receiver's inbox before it returns
//! (a SUB's subscription reaches the PUB before the PUB's next send). A pipe
//! task only resumes transfers after backpressure and handles teardown.
//! Connecting before the bind exists queues messages on the
//! connector's peer and waits in the registry; when the bound socket goes
//! away, its connectors wait again, so their queued messages survive a rebind.
//! The capacity of a pipe is the sender's SNDHWM plus the receiver's RCVHWM,
//! as in libzmq.
//!
//! Towards a PULL, PAIR, DEALER, ROUTER or REP (without conflate) messages
//! go through the link's own lock-free queue, a [`Flow`], rather than the
//! receiver's state: the sender never takes the receiver's lock except to
//! tell it that a flow it had found empty has messages again. Other
//! receivers (REQ, PUB/XPUB, SUB/XSUB, PUSH) and conflating ones need their
//! socket's rules applied as messages arrive, and take deliveries into
//! their peer's inbox under their lock.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crate::cancel::Cancel;
use crossbeam_queue::{ArrayQueue, SegQueue};
use crossbeam_utils::CachePadded;
use ferromq_proto::connection::PeerInfo;
use ferromq_proto::routing::PeerId;
use ferromq_proto::wire::Metadata;
use ferromq_proto::{Message, SocketType};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::socket::core::{Slot, SocketCore};

/// Messages moved per direction per wake.
const BATCH: usize = 1024;

/// The names bound in one context, and connectors waiting for a name.
#[derive(Default)]
pub(crate) struct Registry {
    next_id: u64,
    bound: HashMap<String, Bound>,
    pending: HashMap<String, Vec<Pending>>,
}

struct Bound {
    id: u64,
    core: Weak<SocketCore>,
    cancel: Cancel,
}

/// A connector's side of a pipe: its peer exists from `connect` on.
struct Pending {
    core: Weak<SocketCore>,
    peer: PeerId,
    notify: Arc<Notify>,
    cancel: Cancel,
    /// Set once the socket is closed with messages queued here: keeps it
    /// (bounded by its HWM) until a binder takes them or the context ends.
    keep: Option<Arc<SocketCore>>,
}

/// The socket's last handle is gone. Its connects still waiting for a
/// binder keep it alive with what they queued, so a later bind receives
/// those messages, as libzmq's pending pipes do; linger 0 drops them.
pub(crate) fn keep_pending(core: &Arc<SocketCore>) {
    if core.state.lock().opts.linger == Some(std::time::Duration::ZERO) {
        return;
    }
    let mut reg = core.shared.inproc.lock();
    for p in reg.pending.values_mut().flatten() {
        if std::ptr::eq(p.core.as_ptr(), Arc::as_ptr(core)) && core.has_outgoing(p.peer) {
            p.keep = Some(core.clone());
        }
    }
}

impl Bound {
    fn live(&self) -> Option<Arc<SocketCore>> {
        self.core
            .upgrade()
            .filter(|c| !c.is_closed() && !self.cancel.is_cancelled())
    }
}

/// Binds `name`; connectors already waiting for it are attached at once.
pub(crate) fn bind(core: &Arc<SocketCore>, name: &str, cancel: Cancel) -> io::Result<String> {
    let shared = &core.shared;
    let waiting = {
        let mut reg = shared.inproc.lock();
        if reg.bound.get(name).is_some_and(|b| b.live().is_some()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("inproc://{name} is already bound"),
            ));
        }
        reg.next_id += 1;
        let id = reg.next_id;
        reg.bound.insert(
            name.to_string(),
            Bound {
                id,
                core: Arc::downgrade(core),
                cancel: cancel.clone(),
            },
        );
        // Take hold of each waiting connector now, under the registry lock:
        // one whose last handle is going away right now either set `keep`
        // already or waits for this lock with its core still alive (else
        // it could vanish, with what it queued, before its pipe starts).
        let waiting: Vec<(Arc<SocketCore>, Pending)> = reg
            .pending
            .remove(name)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.core.upgrade()?, p)))
            .collect();
        (id, waiting)
    };
    let (id, waiting) = waiting;
    for (conn, p) in waiting {
        start_pipe(core.clone(), cancel.clone(), name.to_string(), conn, p);
    }
    // Free the name when the socket closes or unbinds.
    let (c, n) = (core.clone(), name.to_string());
    shared.spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = c.closing.cancelled() => {}
        }
        let mut reg = c.shared.inproc.lock();
        if reg.bound.get(&n).is_some_and(|b| b.id == id) {
            reg.bound.remove(&n);
        }
    });
    Ok(format!("inproc://{name}"))
}

/// Connects to `name`, now or whenever it is bound. Returns the connector's peer.
pub(crate) fn connect(core: &Arc<SocketCore>, name: &str, cancel: Cancel) -> PeerId {
    let notify = Arc::new(Notify::new());
    let peer = core.add_connect_peer(notify.clone());
    let p = Pending {
        core: Arc::downgrade(core),
        peer,
        notify,
        cancel,
        keep: None,
    };
    attach_or_wait(core, name, p);
    peer
}

fn attach_or_wait(core: &Arc<SocketCore>, name: &str, p: Pending) {
    let mut reg = core.shared.inproc.lock();
    match reg
        .bound
        .get(name)
        .and_then(|b| b.live().map(|c| (c, b.cancel.clone())))
    {
        Some((binder, cancel)) => {
            drop(reg);
            start_pipe(binder, cancel, name.to_string(), core.clone(), p);
        }
        None => {
            let list = reg.pending.entry(name.to_string()).or_default();
            list.retain(|w| !w.cancel.is_cancelled() && w.core.strong_count() > 0);
            list.push(p);
        }
    }
}

fn info(of: &SocketCore) -> PeerInfo {
    PeerInfo {
        socket_type: Some(of.kind),
        identity: of.state.lock().opts.routing_id.clone(),
        metadata: Metadata::new(),
        zmtp_minor: 1,
    }
}

/// One direction of a pipe: the sending peer's messages go to `to_peer`
/// of `to`. The lock keeps concurrent movers (a sender, the pipe task) from
/// reordering messages.
pub(crate) struct InprocLink {
    /// Held while moving; `true` once the pipe is torn down.
    lock: Mutex<bool>,
    /// Set with `lock`'s flag (see [`InprocLink::sever`]), for a lone send
    /// that does not take the lock (see [`try_put`]).
    severed: AtomicBool,
    from_peer: PeerId,
    to: Weak<SocketCore>,
    to_peer: PeerId,
    /// Cancelled when the receiving side unbinds or disconnects.
    cancel: Cancel,
    /// The queue messages travel in, for receivers that take them from it
    /// themselves; `None`: delivered into the receiver's peer inbox.
    flow: Option<Flow>,
}

impl InprocLink {
    fn new(
        from_peer: PeerId,
        to: &Arc<SocketCore>,
        to_peer: PeerId,
        cancel: Cancel,
        flow: Option<Flow>,
    ) -> InprocLink {
        InprocLink {
            lock: Mutex::new(false),
            severed: AtomicBool::new(false),
            from_peer,
            to: Arc::downgrade(to),
            to_peer,
            cancel,
            flow,
        }
    }

    /// The link's queue, if the receiver reads from it.
    pub(crate) fn flow(&self) -> Option<&Flow> {
        self.flow.as_ref()
    }

    /// Tears this direction down: nothing more goes through it.
    fn sever(&self) {
        let mut dead = self.lock.lock();
        *dead = true;
        self.severed.store(true, Ordering::Release);
    }

    /// Runs `f` while no one moves messages into the link (no `push`, no
    /// `send_now`): what the sender's queue holds for it then stays put.
    pub(crate) fn gated<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.lock.lock();
        f()
    }
}

/// An inproc link's queue: filled by the sending side (under the link's
/// lock), emptied by the receiving socket (under its receive-cache lock or
/// its state lock, see `SocketCore::try_recv`).
///
/// The HWMs are kept as libzmq's pipes keep them: the pipe holds the
/// sender's SNDHWM plus the receiver's RCVHWM (no limit if either is 0),
/// and the sender may have at most that many messages in it that the
/// receiver's application has not yet been credited for; the receiver
/// credits them back in batches of half that. (The sender's own queue for
/// the peer holds messages only while the link is down, or for the moment
/// a send on another thread races a full pipe.) Changing either HWM
/// changes the pipe's.
/// Whether the receiver knows the queue may have messages (its peer is in
/// the socket's fair queue) is `listed`: the sender sets it on the edge and
/// then tells the receiver, under the receiver's lock; the receiver clears
/// it when it finds the queue empty, and looks once more after.
///
/// What one side writes per message sits on a cache line of its own, apart
/// from what the other side reads per message.
pub(crate) struct Flow {
    queue: FlowQueue,
    /// The pipe's capacity (0: no limit), from `hwms`.
    hwm: AtomicUsize,
    /// The sender's SNDHWM and the receiver's RCVHWM, as last set.
    hwms: Mutex<(usize, usize)>,
    /// The receiver was closed: messages stay with the sender (for a
    /// later binding) rather than go in.
    closed: AtomicBool,
    /// Messages put in so far (the sender's count, under the link's lock).
    sent: CachePadded<AtomicUsize>,
    /// Messages the receiver has given room back for (changes once per
    /// half HWM; the sender reads it per message).
    credited: CachePadded<AtomicUsize>,
    /// Messages the receiver has taken out so far.
    received: CachePadded<AtomicUsize>,
    /// The receiver has been told the queue may have messages (changes on
    /// edges only; the sender reads it per message).
    listed: CachePadded<AtomicBool>,
}

impl Flow {
    fn new(sndhwm: usize, rcvhwm: usize) -> Flow {
        let hwm = pipe_hwm(sndhwm, rcvhwm);
        Flow {
            queue: FlowQueue::new(hwm),
            hwm: AtomicUsize::new(hwm),
            hwms: Mutex::new((sndhwm, rcvhwm)),
            closed: AtomicBool::new(false),
            sent: CachePadded::new(AtomicUsize::new(0)),
            credited: CachePadded::new(AtomicUsize::new(0)),
            received: CachePadded::new(AtomicUsize::new(0)),
            listed: CachePadded::new(AtomicBool::new(false)),
        }
    }

    /// How many more messages the sender may put in now.
    pub(crate) fn room(&self) -> usize {
        let hwm = self.hwm.load(Ordering::Relaxed);
        if hwm == 0 {
            return usize::MAX;
        }
        let in_flight = self
            .sent
            .load(Ordering::Relaxed)
            .wrapping_sub(self.credited.load(Ordering::Acquire));
        hwm.saturating_sub(in_flight)
    }

    /// The sender's SNDHWM changed (`Some`), or the receiver's RCVHWM.
    ///
    /// What the receiver took and had not yet given room back for is
    /// credited now: with a smaller pipe no receive might ever reach the
    /// next batch (999 of 1000 taken, then a pipe of 2).
    pub(crate) fn set_hwms(&self, sndhwm: Option<usize>, rcvhwm: Option<usize>) {
        let mut hwms = self.hwms.lock();
        hwms.0 = sndhwm.unwrap_or(hwms.0);
        hwms.1 = rcvhwm.unwrap_or(hwms.1);
        self.hwm.store(pipe_hwm(hwms.0, hwms.1), Ordering::Relaxed);
        self.credited
            .fetch_max(self.received.load(Ordering::Acquire), Ordering::AcqRel);
    }

    /// Puts a message in; true when the receiver must be told (edge).
    /// Call with puts serialised (see [`try_put`]).
    fn put(&self, msg: Message) -> bool {
        self.queue.push(msg);
        self.sent.store(
            self.sent.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        // SeqCst, paired with `unlist`: either the receiver sees this
        // message when it looks again, or this sees it unlisted.
        !self.listed.load(Ordering::SeqCst) && !self.listed.swap(true, Ordering::SeqCst)
    }

    /// Takes the oldest message out.
    pub(crate) fn pop(&self) -> Option<Message> {
        self.queue.pop()
    }

    /// Messages put in that the receiver has yet to take (the sender's
    /// view, under the link's lock).
    fn waiting(&self) -> usize {
        self.sent
            .load(Ordering::Relaxed)
            .wrapping_sub(self.received.load(Ordering::Relaxed))
    }

    /// No message waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Counts a message the receiver took out. True when room goes back to
    /// the sender now: its held-back messages should be moved over.
    pub(crate) fn count_received(&self) -> bool {
        self.count_received_n(1)
    }

    /// As [`count_received`](Self::count_received), for `n` messages.
    pub(crate) fn count_received_n(&self, n: usize) -> bool {
        let received = self
            .received
            .fetch_add(n, Ordering::Relaxed)
            .wrapping_add(n);
        let hwm = self.hwm.load(Ordering::Relaxed);
        let uncredited = received.wrapping_sub(self.credited.load(Ordering::Relaxed));
        // With no limit, credit at once (the sender does not look, but a
        // limit set later starts from the true count) and pull nothing.
        if uncredited >= hwm.div_ceil(2).max(1) {
            // A max, not a store: two receives (the receive cache's and the
            // fair queue's) may count at once, and credit never goes back.
            self.credited.fetch_max(received, Ordering::AcqRel);
            hwm != 0
        } else {
            false
        }
    }

    /// The receiver found the queue empty and stops looking at it, unless a
    /// message came in meanwhile that no sender will tell it about: then it
    /// must go on taking (true).
    pub(crate) fn unlist(&self) -> bool {
        self.listed.store(false, Ordering::SeqCst);
        // Either the sender saw `listed` false (and tells us), or we see its
        // message and list it again ourselves.
        !self.queue.is_empty() && !self.listed.swap(true, Ordering::SeqCst)
    }

    /// The receiver is closed: nothing more goes in.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Drops what is queued (the receiver discards its peer's input).
    pub(crate) fn clear(&self) {
        while self.queue.pop().is_some() {}
    }
}

/// The largest pipe capacity (SNDHWM + RCVHWM) whose flows get a ring of
/// that many slots,
/// allocated with the link (64 bytes a slot: 256 KiB at most); above it,
/// and for no limit, a queue that grows and shrinks in blocks.
const RING_UP_TO: usize = 4096;

/// A flow's messages. A ring (crossbeam's `ArrayQueue`) when the HWM
/// bounds them: a put or take touches its own index and the slot, and
/// nothing is allocated per message. The segmented queue it replaced
/// fenced (`mfence`) and read the other side's index on every take while
/// the two were in one block, and one side allocated a block per 31
/// messages that the other side freed: its push and pop were ~14% of the
/// samples of 16-byte inproc between two threads.
///
/// The ring has room for every message the HWM lets in flight (the sender
/// puts only what [`Flow::room`] allows, and `room` counts messages not
/// yet credited, which are at least those not yet taken), so `spill` stays
/// empty; it exists so that a put can never fail or lose a message. While
/// it holds any, puts go there too, and takes empty the ring first: order
/// is kept.
// One per link, held in place: boxing the larger variant would only add
// a pointer chase to every put and take.
#[allow(clippy::large_enum_variant)]
enum FlowQueue {
    Ring {
        ring: ArrayQueue<Message>,
        spill: SegQueue<Message>,
    },
    Unbounded(SegQueue<Message>),
}

impl FlowQueue {
    fn new(hwm: usize) -> FlowQueue {
        if (1..=RING_UP_TO).contains(&hwm) {
            FlowQueue::Ring {
                ring: ArrayQueue::new(hwm),
                spill: SegQueue::new(),
            }
        } else {
            FlowQueue::Unbounded(SegQueue::new())
        }
    }

    /// Call with puts serialised (see [`try_put`]).
    fn push(&self, msg: Message) {
        match self {
            FlowQueue::Ring { ring, spill } => {
                if spill.is_empty() {
                    if let Err(msg) = ring.push(msg) {
                        spill.push(msg);
                    }
                } else {
                    spill.push(msg);
                }
            }
            FlowQueue::Unbounded(q) => q.push(msg),
        }
    }

    fn pop(&self) -> Option<Message> {
        match self {
            // (The spill is asked only when it has something: a take
            // from an empty `SegQueue` fences.)
            FlowQueue::Ring { ring, spill } => ring
                .pop()
                .or_else(|| (!spill.is_empty()).then(|| spill.pop()).flatten()),
            FlowQueue::Unbounded(q) => q.pop(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            FlowQueue::Ring { ring, spill } => ring.is_empty() && spill.is_empty(),
            FlowQueue::Unbounded(q) => q.is_empty(),
        }
    }
}

/// A pipe's capacity from its two ends' HWMs, as libzmq's: their sum, or
/// no limit (0) if either has none.
fn pipe_hwm(sndhwm: usize, rcvhwm: usize) -> usize {
    if sndhwm == 0 || rcvhwm == 0 {
        0
    } else {
        sndhwm.saturating_add(rcvhwm)
    }
}

/// Whether `to` reads an inproc peer's messages from the link's [`Flow`]
/// (see the module's notes).
fn reads_flows(to: &SocketCore) -> bool {
    matches!(
        to.kind,
        SocketType::Pull
            | SocketType::Pair
            | SocketType::Dealer
            | SocketType::Router
            | SocketType::Rep
    ) && !to.state.lock().opts.conflate
}

fn flow_for(from: &SocketCore, to: &SocketCore) -> Option<Flow> {
    reads_flows(to).then(|| {
        let sndhwm = from.state.lock().opts.sndhwm;
        let flow = Flow::new(sndhwm, to.state.lock().opts.rcvhwm);
        if to.is_closed() {
            flow.close();
        }
        flow
    })
}

/// The receiver gave room back (see [`Flow::count_received_n`]): what the
/// sender holds back for the link moves over, and a sender waiting for
/// room in the pipe goes on. Call with no state lock held.
pub(crate) fn credit(from: &SocketCore, link: &InprocLink) {
    push(from, link);
    if link.flow.is_some() {
        from.wake_writable(usize::MAX);
    }
}

/// Moves what `from` has queued on the link's peer into the receiver, as
/// far as the pipe has room; past that the receiver pulls the rest itself
/// as it gives room back (see [`credit`]). Call with no state lock held.
pub(crate) fn push(from: &SocketCore, link: &InprocLink) {
    let Some(to) = link.to.upgrade() else { return };
    let dead = link.lock.lock();
    // Once the far side unbound, disconnected or closed, messages stay queued
    // here (for the next binding) instead of reaching it.
    if *dead || link.cancel.is_cancelled() || to.is_closed() {
        return;
    }
    // One buffer per thread, kept between calls: no allocation per send.
    BATCH_BUF.with(|cell| {
        let mut batch = cell.take();
        loop {
            let room = match &link.flow {
                Some(flow) => flow.room(),
                None => to.inbox_room(link.to_peer),
            }
            .min(BATCH);
            if room == 0 {
                // Waking the pipe task here would only spin it: nothing
                // changes until the receiver takes messages, and then it pulls.
                break;
            }
            let more = from
                .pull_outgoing(link.from_peer, |m| {
                    batch.push(m);
                    batch.len() < room
                })
                .unwrap_or(false);
            if batch.is_empty() {
                break;
            }
            match &link.flow {
                // Put in with no state lock held: telling the receiver
                // takes its lock, and it may be pushing to us.
                Some(flow) => {
                    let mut edge = false;
                    for m in batch.drain(..) {
                        edge |= flow.put(m);
                    }
                    if edge {
                        to.announce(link.to_peer);
                    }
                }
                None => {
                    to.deliver(link.to_peer, &mut batch);
                }
            }
            if !more {
                break;
            }
        }
        batch.clear();
        cell.set(batch);
    });
}

/// Large messages a sender may have waiting in an inproc flow before
/// `send_now` says it is behind (an async sender then yields to let the
/// receiver, perhaps a task of its runtime, catch up). Fewer than the
/// buffers `Message::copy_from_slice` reuses per thread (8 of 1 MiB, more
/// of smaller ones), with room for
/// the one a receiver still holds: a sender of large copies that yields
/// then finds them free again. Yielding whenever one was waiting cost two
/// tasks of one runtime exchanging pooled buffers (zero copy) ~40% of
/// their rate (1 MiB ~2.07 -> ~3.34 M msgs/s with 4), and copied 64 KiB
/// ones ~20% (~1.0 -> ~1.2-1.3 M); copied 256 KiB and 1 MiB ones went ~3%
/// slower (more of them in flight, out of cache). With 8, copied 1 MiB
/// ones fell ~61 -> ~39 k msgs/s: the receiver's last message kept one
/// buffer busy, and each round one copy missed the pool.
const LARGE_AHEAD: usize = 4;

/// As [`LARGE_AHEAD`], for a sender that copies no large frames (see
/// `ferromq_proto::message::reuses_large_copies`): its buffers are its
/// own (zero copy), none waits to be reused, and yielding every time four
/// wait cost two tasks of one runtime exchanging 64 KiB or 1 MiB buffers
/// ~40% of their rate (~3.6 -> ~5.8-6.0 M msgs/s with 64; 256 did no
/// better). Still a bound: a receiving task of the same runtime gets to
/// run before the sender is 64 large messages ahead.
const LARGE_AHEAD_OWN: usize = 64;

/// Whether a large message put into `flow` went in behind others its
/// receiver has yet to take (see [`LARGE_AHEAD`]). Asked of large messages
/// only: it reads the receiver's side.
fn large_behind(flow: &Flow, msg: &Message) -> bool {
    msg.byte_len() >= super::LARGE_MESSAGE && {
        let waiting = flow.waiting();
        waiting >= LARGE_AHEAD
            && (waiting >= LARGE_AHEAD_OWN || ferromq_proto::message::reuses_large_copies())
    }
}

/// Puts `msg` into the link's flow if the link is up and the pipe has
/// room: `Ok((behind, edge))` (see [`LARGE_AHEAD`]; with `edge` the caller
/// tells the receiver, [`announce`], once it holds no lock), else handed
/// back. Call with puts serialised: under the link's lock ([`send_now`]),
/// or under the sending socket's lone-send lock while that is armed
/// (`SocketCore::send_lone`: the sender's queue for the link is then
/// empty, and no one else puts).
pub(crate) fn try_put(link: &InprocLink, msg: Message) -> Result<(bool, bool), Message> {
    let Some(flow) = &link.flow else {
        return Err(msg);
    };
    if link.severed.load(Ordering::Acquire)
        || link.cancel.is_cancelled()
        || flow.room() == 0
        || flow.closed.load(Ordering::Acquire)
    {
        return Err(msg);
    }
    let behind = large_behind(flow, &msg);
    Ok((behind, flow.put(msg)))
}

/// Tells the receiver that the link's flow it had found empty has messages.
pub(crate) fn announce(link: &InprocLink) {
    if let Some(to) = link.to.upgrade() {
        to.announce(link.to_peer);
    }
}

/// A sender's message straight into the receiver's inbox, when nothing is
/// queued ahead of it: three locks (the link, the receiver's state) instead
/// of queueing it and moving it over, five. Handed back if the receiver has
/// no room or the link is down; the caller then queues it as usual.
/// `Ok(true)`: a large message went in behind one the receiver has not yet
/// taken (see `SocketCore::try_send_behind`).
pub(crate) fn send_now(link: &InprocLink, msg: Message) -> Result<bool, Message> {
    if link.flow.is_some() {
        // No hold on the receiver unless it must be told: that count is
        // on a cache line it uses. (`severed`, which `try_put` asks, is
        // set under this lock.)
        let held = link.lock.lock();
        let (behind, edge) = try_put(link, msg)?;
        drop(held);
        if edge {
            announce(link);
        }
        return Ok(behind);
    }
    let Some(to) = link.to.upgrade() else {
        return Err(msg);
    };
    let dead = link.lock.lock();
    if *dead || link.cancel.is_cancelled() {
        return Err(msg);
    }
    BATCH_BUF.with(|cell| {
        let mut batch = cell.take();
        batch.push(msg);
        let sent = to.deliver_if_room(link.to_peer, &mut batch);
        let back = batch.pop();
        batch.clear();
        cell.set(batch);
        drop(dead);
        match back {
            Some(msg) if !sent => Err(msg),
            _ => Ok(false),
        }
    })
}

thread_local! {
    /// `push`'s buffer (empty between calls).
    static BATCH_BUF: std::cell::Cell<Vec<Message>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Takes the far side of a link away at once (the near side disconnected).
pub(crate) fn cut(link: &InprocLink) {
    link.sever();
    if let Some(to) = link.to.upgrade() {
        to.detach(link.to_peer, true);
    }
}

fn start_pipe(
    binder: Arc<SocketCore>,
    bind_cancel: Cancel,
    name: String,
    conn: Arc<SocketCore>,
    p: Pending,
) {
    // libzmq does not check socket types over inproc (a PAIR may feed a
    // PULL); neither do we.
    if p.cancel.is_cancelled() {
        return;
    }
    let bnotify = Arc::new(Notify::new());
    let slot = Slot::New(binder.reserve_peer());
    let Some(bpeer) = binder.attach(slot, &info(&conn), &bnotify, None, None) else {
        // Refused (a second PAIR peer): wait for another binding.
        let mut reg = conn.shared.inproc.lock();
        reg.pending.entry(name).or_default().push(p);
        return;
    };
    let Some(cpeer) = conn.attach(
        Slot::Existing(p.peer),
        &info(&binder),
        &p.notify,
        None,
        None,
    ) else {
        binder.detach(bpeer, true);
        return;
    };
    let up = Arc::new(InprocLink::new(
        cpeer,
        &binder,
        bpeer,
        bind_cancel.clone(),
        flow_for(&conn, &binder),
    ));
    let down = Arc::new(InprocLink::new(
        bpeer,
        &conn,
        cpeer,
        p.cancel.clone(),
        flow_for(&binder, &conn),
    ));
    // Each receiver knows where a link's messages come from before any
    // sender can use the link (a flow's messages are found through it).
    binder.set_source(bpeer, &conn, up.clone());
    conn.set_source(cpeer, &binder, down.clone());
    conn.set_link(cpeer, Some(up.clone()));
    binder.set_link(bpeer, Some(down.clone()));
    // What queued before the attach (connect-before-bind, subscriptions,
    // a welcome message) moves now, in the caller's thread.
    push(&conn, &up);
    push(&binder, &down);
    let shared = binder.shared.clone();
    shared.spawn(pipe(binder, bind_cancel, name, p, conn, bnotify, up, down));
}

/// Resumes transfers after backpressure and tears the pipe down.
#[allow(clippy::too_many_arguments)]
async fn pipe(
    binder: Arc<SocketCore>,
    bind_cancel: Cancel,
    name: String,
    p: Pending,
    conn: Arc<SocketCore>,
    bnotify: Arc<Notify>,
    up: Arc<InprocLink>,
    down: Arc<InprocLink>,
) {
    let binder_gone = || binder.is_closed() || bind_cancel.is_cancelled();
    let rebind = loop {
        if binder_gone() {
            // After unbind or close nothing more may reach the old binder,
            // but what it queued for us still comes (linger).
            up.sever();
            conn.set_link(up.from_peer, None);
            push(&binder, &down);
            break true;
        }
        push(&conn, &up);
        push(&binder, &down);
        if conn.is_closed() && !conn.has_outgoing(up.from_peer) {
            break false;
        }
        tokio::select! {
            _ = p.notify.notified() => {}
            _ = bnotify.notified() => {}
            _ = p.cancel.cancelled() => break false,
            _ = bind_cancel.cancelled() => {}
            // The binder closing ends the loop above (binder_gone).
            _ = binder.closing.cancelled() => {}
            _ = conn.closing.cancelled(), if !conn.is_closed() => {}
            // A close that lands between the checks above and this select
            // disables its branch; look again now and then rather than wait
            // for a wake that will not come.
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
    };
    up.sever();
    down.sever();
    binder.detach(down.from_peer, true);
    conn.detach(up.from_peer, false);
    if rebind && !conn.is_closed() && !p.cancel.is_cancelled() {
        attach_or_wait(&conn, &name, p);
    }
}

#[cfg(test)]
mod tests {
    use super::{large_behind, Flow, FlowQueue, LARGE_AHEAD, LARGE_AHEAD_OWN, RING_UP_TO};
    use ferromq_proto::Message;

    fn taken(flow: &Flow) -> Vec<String> {
        std::iter::from_fn(|| flow.pop())
            .map(|m| String::from_utf8_lossy(&m[0]).into_owned())
            .collect()
    }

    #[test]
    fn a_bounded_flow_is_a_ring_and_an_unbounded_or_huge_one_is_not() {
        assert!(matches!(
            Flow::new(1000, 1000).queue,
            FlowQueue::Ring { .. }
        ));
        assert!(matches!(Flow::new(0, 1000).queue, FlowQueue::Unbounded(_)));
        assert!(matches!(Flow::new(1000, 0).queue, FlowQueue::Unbounded(_)));
        assert!(matches!(
            Flow::new(RING_UP_TO, 1).queue,
            FlowQueue::Unbounded(_)
        ));
    }

    /// More puts than the ring holds (which `room` never allows) spill
    /// over and still come out once each, in order, whenever the taking
    /// interleaves.
    #[test]
    fn puts_past_the_ring_keep_every_message_in_order() {
        let flow = Flow::new(1, 1);
        for i in 0..5 {
            flow.put(Message::from(format!("m{i}")));
        }
        assert_eq!(flow.pop().map(|m| m[0].to_vec()), Some(b"m0".to_vec()));
        // The ring has room again, but m5 must follow m4 in the spill.
        flow.put(Message::from("m5"));
        assert_eq!(taken(&flow), ["m1", "m2", "m3", "m4", "m5"]);
        assert!(flow.is_empty());
        // Once the spill is empty the ring is used again.
        flow.put(Message::from("m6"));
        match &flow.queue {
            FlowQueue::Ring { ring, spill } => {
                assert_eq!((ring.len(), spill.len()), (1, 0));
            }
            FlowQueue::Unbounded(_) => unreachable!("hwm 2 makes a ring"),
        }
        assert_eq!(taken(&flow), ["m6"]);
    }

    /// The pipe holds SNDHWM + RCVHWM, as libzmq's; either changing
    /// changes it, and with either 0 it has no limit.
    #[test]
    fn room_is_both_hwms_and_follows_changes() {
        let flow = Flow::new(2, 3);
        assert_eq!(flow.room(), 5);
        for i in 0..4 {
            flow.put(Message::from(format!("m{i}")));
        }
        assert_eq!(flow.room(), 1);
        flow.set_hwms(Some(5), None);
        assert_eq!(flow.room(), 4);
        flow.set_hwms(None, Some(1));
        assert_eq!(flow.room(), 2);
        flow.set_hwms(Some(0), None);
        assert_eq!(flow.room(), usize::MAX);
    }

    /// Credit goes back in batches of half the pipe; with no limit it is
    /// kept current (nothing to pull), so a limit set later counts only
    /// what is really in the pipe.
    #[test]
    fn credit_comes_in_halves_and_is_kept_without_a_limit() {
        let flow = Flow::new(2, 2);
        for i in 0..4 {
            flow.put(Message::from(format!("m{i}")));
        }
        assert_eq!(flow.room(), 0);
        flow.pop();
        assert!(!flow.count_received(), "one of four is not half");
        flow.pop();
        assert!(flow.count_received(), "two of four is half");
        assert_eq!(flow.room(), 2);

        let open = Flow::new(0, 2);
        for i in 0..10 {
            open.put(Message::from(format!("m{i}")));
        }
        for _ in 0..9 {
            open.pop();
            assert!(!open.count_received(), "no limit: nothing held back");
        }
        open.set_hwms(Some(2), None);
        assert_eq!(open.room(), 3, "one message left in a pipe of four");
    }

    /// A large message counts as behind once a few wait for a sender of
    /// copies (whose reused buffers are then all in use), and only once
    /// many wait for a sender of its own buffers; small ones never do.
    #[test]
    fn large_messages_are_behind_sooner_for_a_sender_of_copies() {
        std::thread::spawn(|| {
            let large = Message::from(vec![0u8; crate::transport::LARGE_MESSAGE]);
            let flow = Flow::new(0, 0);
            for _ in 0..LARGE_AHEAD {
                flow.put(large.clone());
            }
            assert!(!large_behind(&flow, &large), "own buffers: not yet");
            for _ in LARGE_AHEAD..LARGE_AHEAD_OWN {
                flow.put(large.clone());
            }
            assert!(large_behind(&flow, &large), "own buffers: many wait");
            assert!(!large_behind(&flow, &Message::from("small")));

            let flow = Flow::new(0, 0);
            for _ in 0..LARGE_AHEAD {
                flow.put(large.clone());
            }
            drop(ferromq_proto::message::copy_frame(&large[0]));
            assert!(large_behind(&flow, &large), "copies: a few wait");
        })
        .join()
        .unwrap();
    }
}
