//! The two front types, [`Socket`] (blocking) and [`AsyncSocket`], over one core.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferromq_proto::{Message, SocketType};

use crate::context::Context;
use crate::error::{Error, Result, SendError};
use crate::options::SocketOptions;
use crate::socket::core::SocketCore;
use crate::socket::readiness::Readiness;

/// Owns the socket: dropping the last handle closes it.
struct Handle {
    core: Arc<SocketCore>,
    // Keeps the I/O threads alive while the socket lingers.
    _ctx: Context,
}

/// Whether an async send of `len` bytes takes a unit of tokio's cooperative
/// budget: every send of [`COOP_BYTES`] or more does, smaller ones one per
/// `COOP_BYTES` they add up to (counting at least 8 bytes each: an empty
/// frame still costs a header and a queue entry). Counted per thread: a
/// task runs on one thread until it yields, so the sends of one poll are
/// all counted together, whichever sockets they go to.
fn coop_due(len: usize) -> bool {
    thread_local! {
        static SMALL_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    if len >= COOP_BYTES {
        return true;
    }
    SMALL_BYTES.with(|c| {
        let sum = c.get() + len.max(8);
        let due = sum >= COOP_BYTES;
        c.set(if due { 0 } else { sum });
        due
    })
}

/// Bytes of small messages an async send moves per unit of tokio's
/// cooperative budget (128 units per task poll): a send loop that never
/// waits yields after 128 sends of 256 bytes or more, or after ~32 KiB of
/// smaller ones (at most 4,096 sends). Charging a unit per send made a task
/// sending 16-byte messages yield every 128 sends, and a connection on the
/// same runtime then wrote 2 KiB per system call; at 256 bytes a unit it
/// writes ~40 KiB, and the pinned 16-byte async rate rose from ~7.2 to
/// ~10-11 M msgs/s.
const COOP_BYTES: usize = 256;

/// Messages from this size up that an async send queues behind others on a
/// tcp or ipc connection wait, as a blocking send's do, while the
/// connection works through its queue, down to 4 MiB of large messages
/// (see `SocketCore::pace`; the task waits, not the thread). A task
/// sending 1 MiB copies over ipc ran ~25 ahead of its connection (a unix
/// socket takes ~200 KiB a write), each drained stretch went back to the
/// kernel and faulted in again: with the wait, and buffers that
/// `Message::copy_from_slice` reuses, ~2.5 k -> ~8 k msgs/s and ~180 k ->
/// ~2 k page faults per 950 messages. Pacing 64 KiB messages as well cut
/// async 64 KiB ipc from ~66-127 k to ~56-61 k msgs/s (a timer and a wake
/// per message), so smaller ones only yield, as below.
const ASYNC_PACE_MIN: usize = 256 * 1024;

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.close();
        crate::transport::inproc::keep_pending(&self.core);
    }
}

/// Methods shared by both APIs: endpoints and options.
macro_rules! common_methods {
    () => {
        /// The socket's type.
        pub fn socket_type(&self) -> SocketType {
            self.h.core.kind
        }

        /// Binds to an endpoint, e.g. `tcp://*:5555` or `tcp://127.0.0.1:*`
        /// (an ephemeral port; see [`last_endpoint`](Self::last_endpoint)).
        /// Fails at once if the address is malformed or in use.
        pub fn bind(&self, endpoint: &str) -> Result<()> {
            self.h.core.bind(endpoint)
        }

        /// Serves connections on a tcp listener the application made, bound
        /// and listening (libzmq's `ZMQ_USE_FD`, e.g. for a socket handed
        /// over by systemd). Returns its endpoint (`tcp://addr:port`),
        /// which [`unbind`](Self::unbind) takes; the listener closes then.
        pub fn bind_tcp_listener(&self, listener: std::net::TcpListener) -> Result<String> {
            self.h
                .core
                .bind_listener(crate::socket::Adopted::Tcp(listener))
        }

        /// Serves connections on a Unix-domain listener the application
        /// made, bound and listening (libzmq's `ZMQ_USE_FD` for ipc).
        /// Returns its endpoint (`ipc://path` or `ipc://@name`). Its file
        /// stays when the socket closes: the application removes it, as
        /// with libzmq.
        pub fn bind_ipc_listener(
            &self,
            listener: std::os::unix::net::UnixListener,
        ) -> Result<String> {
            self.h
                .core
                .bind_listener(crate::socket::Adopted::Ipc(listener))
        }

        /// Connects to an endpoint. Returns at once: the connection is made in
        /// the background, retried forever with backoff, and messages queue
        /// (up to the high-water mark) until it is up.
        pub fn connect(&self, endpoint: &str) -> Result<()> {
            self.h.core.connect(endpoint)
        }

        /// Stops listening on an endpoint (as [`last_endpoint`](Self::last_endpoint)
        /// reported it) and closes the connections accepted through it.
        pub fn unbind(&self, endpoint: &str) -> Result<()> {
            self.h.core.unbind(endpoint)
        }

        /// Stops connecting to an endpoint and drops what was queued for it,
        /// both ways: messages from that peer not yet received go too (libzmq).
        pub fn disconnect(&self, endpoint: &str) -> Result<()> {
            self.h.core.disconnect(endpoint)
        }

        /// The last endpoint bound or connected, with wildcards resolved
        /// (`tcp://127.0.0.1:49152`).
        pub fn last_endpoint(&self) -> String {
            self.h.core.state.lock().last_endpoint.clone()
        }

        /// A snapshot of every option.
        pub fn options(&self) -> SocketOptions {
            self.h.core.state.lock().opts.clone()
        }

        /// Changes options in one step. Values are taken as given: the
        /// individual setters validate, this does not.
        pub fn update_options(&self, f: impl FnOnce(&mut SocketOptions)) {
            // Through the filter's door: the options include invert_matching.
            self.h.core.change_filter(|st| f(&mut st.opts));
            self.h.core.options_changed();
        }

        /// Per-peer limit of queued outgoing messages (default 1000; 0 = none).
        ///
        /// As in libzmq, an inproc pipe holds the sender's SNDHWM plus the
        /// receiver's RCVHWM (no limit if either is 0), and a change applies
        /// to pipes already connected.
        pub fn set_sndhwm(&self, hwm: usize) {
            self.h.core.set_options(|o| o.sndhwm = hwm);
        }

        /// Per-peer limit of queued incoming messages (default 1000; 0 = none).
        ///
        /// With a limit, a tcp or ipc connection also stops reading once
        /// about 1 MiB of messages of 64 KiB or more wait to be received
        /// (a single larger one still comes in): the rest stays in the
        /// kernel, and the sender feels the backpressure, rather than the
        /// receiver holding up to RCVHWM large messages in memory. Over
        /// inproc see [`set_sndhwm`](Self::set_sndhwm).
        pub fn set_rcvhwm(&self, hwm: usize) {
            self.h.core.set_options(|o| o.rcvhwm = hwm);
        }

        /// The send high-water mark.
        pub fn sndhwm(&self) -> usize {
            self.h.core.state.lock().opts.sndhwm
        }

        /// The receive high-water mark.
        pub fn rcvhwm(&self) -> usize {
            self.h.core.state.lock().opts.rcvhwm
        }

        /// How long a send may wait for room; `None` (default) waits forever,
        /// zero never waits. On expiry the send fails with [`Error::WouldBlock`].
        pub fn set_sndtimeo(&self, t: Option<Duration>) {
            self.h.core.state.lock().opts.sndtimeo = t;
        }

        /// How long a receive may wait; `None` (default) waits forever.
        pub fn set_rcvtimeo(&self, t: Option<Duration>) {
            self.h.core.state.lock().opts.rcvtimeo = t;
        }

        /// How long queued messages may still be sent after the socket is
        /// closed; `None` waits forever, as libzmq does. Default: 30 s
        /// ([`DEFAULT_LINGER`](crate::DEFAULT_LINGER)).
        pub fn set_linger(&self, t: Option<Duration>) {
            self.h.core.state.lock().opts.linger = t;
        }

        /// The linger time.
        pub fn linger(&self) -> Option<Duration> {
            self.h.core.state.lock().opts.linger
        }

        /// The routing id announced to peers (1–255 bytes, not starting with a
        /// zero byte; ROUTER peers address this socket by it). Applies to
        /// connections made afterwards.
        pub fn set_routing_id(&self, id: impl Into<Bytes>) -> Result<()> {
            let id = id.into();
            if id.is_empty() || id.len() > 255 || id[0] == 0 {
                return Err(Error::InvalidOption(
                    "routing id must be 1-255 bytes not starting with 0",
                ));
            }
            self.h.core.state.lock().opts.routing_id = id;
            Ok(())
        }

        /// The routing id set with [`set_routing_id`](Self::set_routing_id).
        pub fn routing_id(&self) -> Bytes {
            self.h.core.state.lock().opts.routing_id.clone()
        }

        /// ROUTER: fail sends to unknown peers with [`Error::HostUnreachable`]
        /// and to full ones with [`Error::WouldBlock`], instead of dropping them.
        pub fn set_router_mandatory(&self, on: bool) {
            self.h.core.state.lock().opts.router_mandatory = on;
        }

        /// ROUTER: a new peer announcing a routing id in use takes it over
        /// (default: the newcomer is refused).
        pub fn set_router_handover(&self, on: bool) {
            self.h.core.state.lock().opts.router_handover = on;
        }

        /// Largest frame accepted from a peer; a larger one closes that
        /// connection. `None` (default): no limit.
        pub fn set_max_msg_size(&self, max: Option<u64>) {
            self.h.core.state.lock().opts.max_msg_size = max;
        }

        /// Wait before reconnecting (default 100 ms); `None` never reconnects.
        pub fn set_reconnect_ivl(&self, ivl: Option<Duration>) {
            self.h.core.state.lock().opts.reconnect_ivl = ivl;
        }

        /// Upper bound for exponential reconnect backoff (default zero: no backoff).
        pub fn set_reconnect_ivl_max(&self, max: Duration) {
            self.h.core.state.lock().opts.reconnect_ivl_max = max;
        }

        /// Close connections whose handshake takes longer (default 30 s; `None`: never).
        pub fn set_handshake_ivl(&self, t: Option<Duration>) {
            self.h.core.state.lock().opts.handshake_ivl = t;
        }

        /// Send a ZMTP PING this often (default: never).
        pub fn set_heartbeat_ivl(&self, t: Option<Duration>) {
            self.h.core.state.lock().opts.heartbeat_ivl = t;
        }

        /// Close a connection if nothing arrives this long after a PING
        /// (default: the heartbeat interval).
        pub fn set_heartbeat_timeout(&self, t: Option<Duration>) {
            self.h.core.state.lock().opts.heartbeat_timeout = t;
        }

        /// TTL asked of peers in our PINGs.
        pub fn set_heartbeat_ttl(&self, t: Option<Duration>) {
            self.h.core.state.lock().opts.heartbeat_ttl = t;
        }

        /// Queue messages only to peers whose connection is up (default off).
        pub fn set_immediate(&self, on: bool) {
            self.h.core.state.lock().opts.immediate = on;
        }

        /// Allow IPv6: `tcp://*:p` binds dual-stack `::` (default off).
        pub fn set_ipv6(&self, on: bool) {
            self.h.core.state.lock().opts.ipv6 = on;
        }

        /// SUB/XSUB: receive messages whose first frame starts with `prefix`
        /// (empty: everything). Subscriptions are counted: subscribing twice
        /// needs two [`unsubscribe`](Self::unsubscribe) calls. They are sent
        /// to every publisher, now and after every reconnection.
        ///
        /// XPUB with [`set_xpub_manual`](Self::set_xpub_manual): subscribes
        /// the subscriber whose subscription message was received last
        /// ([`Error::State`] if there is none, or it has left).
        pub fn subscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
            self.h.core.set_subscription(true, prefix.as_ref())
        }

        /// SUB/XSUB: drop one subscription to `prefix` (XPUB in manual
        /// mode: for the subscriber received last, as in `subscribe`).
        pub fn unsubscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
            self.h.core.set_subscription(false, prefix.as_ref())
        }

        /// XPUB: pass every subscription message up, not only new topics.
        /// As in libzmq, this turns verbose unsubscriptions off.
        pub fn set_xpub_verbose(&self, on: bool) {
            let opts = &mut self.h.core.state.lock().opts;
            opts.xpub_verbose = on;
            opts.xpub_verboser = false;
        }

        /// XPUB: pass every subscription and every unsubscription up (as
        /// in libzmq, this is verbose mode for both).
        pub fn set_xpub_verboser(&self, on: bool) {
            let opts = &mut self.h.core.state.lock().opts;
            opts.xpub_verbose = on;
            opts.xpub_verboser = on;
        }

        /// ROUTER: checks that a message to `routing_id` would be taken now:
        /// [`Error::HostUnreachable`] if no connected peer has that id,
        /// [`Error::WouldBlock`] if its queue is full. (With
        /// `router_mandatory`, `send` reports the same.)
        pub fn router_check(&self, routing_id: &[u8]) -> Result<()> {
            self.h.core.router_check(routing_id)
        }

        /// Reports the socket's connection events (a mask of
        /// [`monitor`](crate::monitor) constants, e.g. [`monitor::ALL`](crate::monitor::ALL))
        /// as two-frame messages on a PAIR socket bound to `endpoint`, which
        /// must be `inproc://`; connect a PAIR there to read them. Replaces
        /// an earlier monitor. Like libzmq's `zmq_socket_monitor`.
        pub fn monitor(&self, endpoint: &str, events: u32) -> Result<()> {
            self.h.core.set_monitor(Some(endpoint), events)
        }

        /// Stops the monitor (sending `MONITOR_STOPPED` if it was asked for).
        pub fn disable_monitor(&self) -> Result<()> {
            self.h.core.set_monitor(None, 0)
        }

        /// XPUB: do not apply subscriptions; pass each one up (duplicates
        /// too) and let the application apply it with
        /// [`subscribe`](Self::subscribe)/[`unsubscribe`](Self::unsubscribe)
        /// right after receiving it. A last-value cache uses this to answer
        /// a new subscriber before letting it in.
        pub fn set_xpub_manual(&self, on: bool) {
            self.h.core.state.lock().opts.xpub_manual = on;
        }

        /// ROUTER/DEALER/REQ: greet each new connection with an empty
        /// message (`ZMQ_PROBE_ROUTER`).
        pub fn set_probe_router(&self, on: bool) {
            self.h.core.state.lock().opts.probe_router = on;
        }

        /// REQ: match replies to requests by a request id frame
        /// (`ZMQ_REQ_CORRELATE`).
        pub fn set_req_correlate(&self, on: bool) {
            self.h.core.state.lock().opts.req_correlate = on;
        }

        /// REQ: allow a new request before the last reply came, discarding
        /// that reply (`ZMQ_REQ_RELAXED`; pair it with correlation).
        pub fn set_req_relaxed(&self, on: bool) {
            self.h.core.state.lock().opts.req_relaxed = on;
        }

        /// XPUB/XSUB: only the first frame of a multipart message may be a
        /// (un)subscription; when it is not, the message is data as a whole.
        pub fn set_only_first_subscribe(&self, on: bool) {
            self.h.core.state.lock().opts.only_first_subscribe = on;
        }

        /// PUB/XPUB: when a subscriber is full, fail the send with
        /// [`Error::WouldBlock`] instead of dropping its copy.
        pub fn set_xpub_nodrop(&self, on: bool) {
            self.h.core.state.lock().opts.xpub_nodrop = on;
        }

        /// PUB/XPUB: a message sent to every new subscriber (`None`: none).
        pub fn set_xpub_welcome_msg(&self, msg: Option<Bytes>) {
            self.h.core.state.lock().opts.xpub_welcome_msg = msg;
        }

        /// Keep only the newest message in each queue (PUB, SUB, PUSH, PULL,
        /// DEALER; single-frame messages), as libzmq's `ZMQ_CONFLATE`.
        pub fn set_conflate(&self, on: bool) {
            self.h.core.set_options(|o| o.conflate = on);
        }

        /// PUB/XPUB/SUB: deliver what does *not* match the subscriptions.
        pub fn set_invert_matching(&self, on: bool) {
            self.h.core.change_filter(|st| st.opts.invert_matching = on);
        }

        /// What the socket can do now without waiting (libzmq's `ZMQ_EVENTS`).
        /// Also resets the [`readiness_fd`](Self::readiness_fd).
        pub fn readiness(&self) -> Readiness {
            self.h.core.readiness()
        }

        /// A file descriptor that becomes readable when the socket's readiness
        /// may have changed (libzmq's `ZMQ_FD`), for event loops that wait on
        /// fds. Edge-style: after it fires, call [`readiness`](Self::readiness)
        /// (which resets it) and act on what that says; a readable fd with
        /// nothing ready is legal. The fd belongs to the socket; clone it
        /// (`try_clone_to_owned`) to keep it beyond the borrow.
        pub fn readiness_fd(&self) -> Result<std::os::fd::BorrowedFd<'_>> {
            Ok(self.h.core.readiness_fd()?)
        }

        /// Sends without waiting; [`Error::WouldBlock`] if no peer has room.
        pub fn try_send(&self, msg: impl Into<Message>) -> Result<(), SendError> {
            self.h.core.try_send(msg.into())
        }

        /// Receives without waiting; [`Error::WouldBlock`] if nothing is queued.
        pub fn try_recv(&self) -> Result<Message> {
            self.h.core.try_recv()
        }
    };
}

/// A message being sent: kept across attempts, handed back on failure.
struct Pending(Option<Message>);

impl Pending {
    /// One attempt; `Err(None)` means "would block" (the message stays here).
    fn attempt(&mut self, core: &SocketCore) -> Result<(), Option<SendError>> {
        match core.try_send(self.0.take().expect("message present until sent")) {
            Err(e) if matches!(e.error, Error::WouldBlock) => {
                self.0 = Some(e.message);
                Err(None)
            }
            Err(e) => Err(Some(e)),
            Ok(()) => Ok(()),
        }
    }

    /// The error to return, with the message handed back.
    fn fail(&mut self, e: Option<SendError>) -> SendError {
        e.unwrap_or_else(|| SendError::new(Error::WouldBlock, self.0.take().unwrap_or_default()))
    }
}

/// A ZeroMQ socket with a blocking API, for plain threads.
///
/// `Socket` is `Send + Sync` and cheap to clone (clones share the socket), so
/// one thread may send while another receives. Calls park the thread; they
/// never run an async runtime, so they also work inside one (though a
/// blocked call then blocks that worker thread: prefer [`AsyncSocket`] there).
/// The socket closes when its last clone is dropped.
#[derive(Clone)]
pub struct Socket {
    h: Arc<Handle>,
}

/// A ZeroMQ socket with an async API, for tokio tasks.
///
/// Like [`Socket`], it is `Send + Sync` and cheap to clone; any number of
/// tasks may share it, one sending while another receives. A call that would
/// block suspends only its task.
#[derive(Clone)]
pub struct AsyncSocket {
    h: Arc<Handle>,
}

impl Socket {
    /// The core, for the crate's own tests.
    #[cfg(test)]
    pub(crate) fn core(&self) -> &Arc<SocketCore> {
        &self.h.core
    }

    pub(crate) fn from_core(ctx: Context, core: Arc<SocketCore>) -> Socket {
        Socket {
            h: Arc::new(Handle { core, _ctx: ctx }),
        }
    }

    common_methods!();

    /// Sends a message, waiting up to the send timeout for room.
    ///
    /// On failure the message comes back inside the [`SendError`].
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), SendError> {
        let core = &self.h.core;
        // Fast path: no timeout lookup unless the send has to wait.
        let msg = match core.try_send(msg.into()) {
            Err(e) if matches!(e.error, Error::WouldBlock) => e.message,
            Ok(()) => {
                // A large message behind others: keep near the connection
                // (a load, and nothing more, for any other message).
                core.pace();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let timeout = core.state.lock().opts.sndtimeo;
        let mut pending = Pending(Some(msg));
        core.wait_blocking(
            &core.writable,
            timeout,
            || pending.attempt(core),
            Option::is_none,
        )
        .map_err(|e| pending.fail(e))
    }

    /// Sends a one-frame message with a copy of `data`, as
    /// `send(Message::copy_from_slice(data))` does, waiting up to the send
    /// timeout for room. It copies less: a PUSH, DEALER or PAIR socket with
    /// a single tcp or ipc peer, nothing queued for it, encodes `data`
    /// straight into the connection's output, or writes it to the kernel
    /// from `data` itself when the connection is idle (for 8 KiB or more,
    /// copying only what the kernel does not take); no message is made.
    /// (The C ABI's `zmq_send` sends this way.)
    ///
    /// On failure the copy comes back inside the [`SendError`].
    pub fn send_slice(&self, data: &[u8]) -> Result<(), SendError> {
        if self.h.core.try_send_slice(data).is_some() {
            return Ok(());
        }
        self.send(Message::copy_from_slice(data))
    }

    /// Receives a message, waiting up to the receive timeout.
    pub fn recv(&self) -> Result<Message> {
        let core = &self.h.core;
        match core.try_recv() {
            Err(Error::WouldBlock) => {}
            r => return r,
        }
        let timeout = core.state.lock().opts.rcvtimeo;
        core.wait_blocking(
            &core.readable,
            timeout,
            || core.try_recv(),
            |e| matches!(e, Error::WouldBlock),
        )
    }

    /// Runs a future on the context's I/O threads (for the blocking proxy).
    pub(crate) fn spawn_on_io(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.h.core.shared.spawn(fut);
    }

    /// For a front end with a wait loop of its own (the C ABI): after a
    /// blocking send that [`try_send`](Self::try_send) took, waits as
    /// [`send`](Self::send) does if the message was a large one queued
    /// behind others, while the connection works through them (5 ms at
    /// most if it writes nothing), so that the sender does not run
    /// hundreds of megabytes ahead of it. Returns at once otherwise.
    #[doc(hidden)]
    pub fn pace_large_send(&self) {
        self.h.core.pace();
    }

    /// For a front end with a wait loop of its own (the C ABI's
    /// `zmq_send`): sends a one-frame message with the bytes of `data`
    /// without waiting, as [`send_slice`](Self::send_slice) does when they
    /// can go straight onto a connection. False if they cannot (nothing is
    /// sent; [`try_send`](Self::try_send) a copy then).
    #[doc(hidden)]
    pub fn try_send_slice(&self, data: &[u8]) -> bool {
        self.h.core.try_send_slice(data).is_some()
    }

    /// The same socket with the async API.
    pub fn into_async(self) -> AsyncSocket {
        AsyncSocket { h: self.h }
    }

    /// Closes the socket now (as dropping the last clone would).
    /// Queued messages are still sent within the linger time.
    pub fn close(self) {
        self.h.core.close();
    }
}

impl AsyncSocket {
    common_methods!();

    /// Sends a message, waiting up to the send timeout for room.
    ///
    /// Cancel safety: if the future is dropped, the message was either queued
    /// whole or not at all (and is then lost with the future).
    pub fn send(&self, msg: impl Into<Message>) -> SendFuture<'_> {
        SendFuture {
            sock: self,
            state: SendState::Start(msg.into()),
        }
    }

    /// Sends a one-frame message with a copy of `data`, as
    /// `send(Message::copy_from_slice(data))` does, with less copying (see
    /// [`Socket::send_slice`]).
    ///
    /// Cancel safety: as [`send`](Self::send)'s; `data` is copied before
    /// the future first waits.
    pub async fn send_slice(&self, data: &[u8]) -> Result<(), SendError> {
        if coop_due(data.len()) {
            // As `send`: a task that sends without ever waiting still lets
            // the others of its runtime (a connection's among them) run.
            tokio::task::coop::consume_budget().await;
        }
        if self.h.core.try_send_slice(data).is_some() {
            return Ok(());
        }
        self.send(Message::copy_from_slice(data)).await
    }

    async fn send_waiting(&self, msg: Message) -> Result<(), SendError> {
        let core = &self.h.core;
        let timeout = core.state.lock().opts.sndtimeo;
        let mut pending = Pending(Some(msg));
        let r = core
            .wait_async(
                &core.writable,
                timeout,
                || pending.attempt(core),
                Option::is_none,
            )
            .await;
        r.map_err(|e| pending.fail(e))
    }

    /// Receives a message, waiting up to the receive timeout.
    ///
    /// Cancel safety: dropping the future loses no message; a message is
    /// taken off the queue only in the poll that returns it.
    pub async fn recv(&self) -> Result<Message> {
        // As in `send`: a stream of ready messages yields now and then,
        // unless our connections run on this very thread (a current-thread
        // runtime of the application): then the stream stops by itself
        // once the queue is empty, and draining it first keeps it short.
        if !self.h.core.shared.drivers_share_thread() {
            tokio::task::coop::consume_budget().await;
        }
        match self.h.core.try_recv() {
            Err(Error::WouldBlock) => {}
            r => return r,
        }
        // Boxed for the same reason as in `send`.
        Box::pin(self.recv_waiting()).await
    }

    async fn recv_waiting(&self) -> Result<Message> {
        let core = &self.h.core;
        let timeout = core.state.lock().opts.rcvtimeo;
        core.wait_async(
            &core.readable,
            timeout,
            || core.try_recv(),
            |e| matches!(e, Error::WouldBlock),
        )
        .await
    }

    /// The same socket with the blocking API.
    pub fn into_blocking(self) -> Socket {
        Socket { h: self.h }
    }

    /// Closes the socket now. Queued messages are still sent within the linger time.
    pub fn close(self) {
        self.h.core.close();
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("type", &self.h.core.kind)
            .finish()
    }
}

impl std::fmt::Debug for AsyncSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSocket")
            .field("type", &self.h.core.kind)
            .finish()
    }
}

/// The future of [`AsyncSocket::send`].
///
/// Written out rather than an `async fn`: a send that does not wait, the
/// common case, then moves the message and a tag per call instead of the
/// state of every await point it might reach.
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a> {
    sock: &'a AsyncSocket,
    state: SendState<'a>,
}

type Waiting<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SendError>> + Send + 'a>>;

enum SendState<'a> {
    /// Not yet polled: the message.
    Start(Message),
    /// Queued behind others, yielding once so the connection can write
    /// (boxed: tokio's `yield_now`, which lets the runtime look for I/O
    /// before it runs us again, has no type to name); or no room, waiting
    /// for it (boxed: with its timer, ~700 bytes).
    Waiting(Waiting<'a>),
    /// Finished.
    Done,
}

impl std::future::Future for SendFuture<'_> {
    type Output = Result<(), SendError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        let mut waiting: Waiting<'_> = match std::mem::replace(&mut this.state, SendState::Done) {
            SendState::Start(msg) => {
                // A send that never has to wait would never give the runtime
                // back: take part in tokio's cooperative budget (every so
                // many sends, other tasks run, the connections' among them
                // on a context that runs on the application's runtime).
                let bytes = msg.byte_len();
                if coop_due(bytes) {
                    let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) else {
                        this.state = SendState::Start(msg);
                        return Poll::Pending;
                    };
                    coop.made_progress();
                }
                let core = &this.sock.h.core;
                let large = bytes >= crate::transport::LARGE_MESSAGE;
                let huge = bytes >= ASYNC_PACE_MIN;
                match core.try_send_behind(msg) {
                    // Queued behind others for a connection that runs on our
                    // runtime, or large and behind another its receiver has
                    // yet to take: let the connection write, or the receiver
                    // (perhaps a task of this runtime) take it, before we
                    // queue more. Big messages would otherwise pile up to
                    // the HWM, memory and all, and be freed all at once: two
                    // inproc tasks of one current-thread runtime exchanging
                    // 1 MiB messages went ~16k -> ~49k msgs/s with the yield,
                    // as glibc no longer gave each round's 128 MiB back to
                    // the kernel. The message is queued: cancel-safe.
                    // Huge, and more than a few of them queued: wait.
                    Ok(true) if huge && core.pace_due() => Box::pin(async {
                        core.pace_async().await;
                        Ok(())
                    }),
                    Ok(true) if large || core.shared.on_app_runtime() => Box::pin(async {
                        tokio::task::yield_now().await;
                        Ok(())
                    }),
                    Ok(_) => return Poll::Ready(Ok(())),
                    Err(e) if matches!(e.error, Error::WouldBlock) => {
                        Box::pin(this.sock.send_waiting(e.message))
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            SendState::Waiting(waiting) => waiting,
            SendState::Done => panic!("SendFuture polled after completion"),
        };
        let r = waiting.as_mut().poll(cx);
        if r.is_pending() {
            this.state = SendState::Waiting(waiting);
        }
        r
    }
}
