//! The task that pumps one connection: bytes ⇄ `proto::Connection` ⇄ socket core.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::cancel::Cancel;
use ferromq_proto::{Connection, Event, Message, SocketType};
use tokio::io::Interest;
use tokio::sync::Notify;

use super::wire::{self, Wire, WRITE_BATCH};
use super::Stream;
use crate::monitor;
use crate::socket::core::{Slot, SocketCore};

/// Linux's errno for a connect under way, the value of CONNECT_DELAYED.
const EINPROGRESS: u32 = 115;
use crate::socket::pubsub::{as_subscription, subscription_message};

/// Batches moved and written per wake before the driver looks at input again.
const BATCHES_PER_WAKE: usize = 4;

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Peer closed, I/O error, or protocol error: reconnect if we connected.
    Lost,
    /// Endpoint cancelled or socket closed and flushed: do not reconnect.
    Done,
}

/// Runs one connection until it ends. `driver` is the notification the core
/// uses to wake this task (shared across reconnections of a connect peer).
/// `endpoint` names the connection in monitor events (the bound endpoint
/// for an accepted one, the connect endpoint otherwise).
pub(crate) async fn run<S: Stream>(
    core: Arc<SocketCore>,
    stream: S,
    slot: Slot,
    driver: Arc<Notify>,
    cancel: Cancel,
    endpoint: Arc<str>,
) -> Exit {
    let conn = Connection::new(core.connection_config(), Instant::now());
    let stream = Arc::new(stream);
    let wire = Arc::new(Wire::new(
        conn,
        stream.clone(),
        driver.clone(),
        core.shared.on_app_runtime(),
    ));
    let mut peer = None;
    let r = pump(
        &core, &*stream, &wire, slot, &driver, &cancel, &mut peer, &endpoint,
    )
    .await;
    wire.close();
    core.wake_direct_readers();
    if let Err(e) = &r {
        tracing::debug!(socket = %core.kind, error = %e, "connection closed");
        if peer.is_none() {
            let protocol = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ferromq_proto::ConnectionError>());
            match protocol {
                Some(pe) => core.event(
                    monitor::HANDSHAKE_FAILED_PROTOCOL,
                    monitor::protocol_error_code(pe),
                    &endpoint,
                ),
                None => core.event(
                    monitor::HANDSHAKE_FAILED_NO_DETAIL,
                    e.raw_os_error().unwrap_or(0) as u32,
                    &endpoint,
                ),
            }
        }
    }
    if let Some(id) = peer {
        // Accepted peers go with their connection; connect peers wait for the next one.
        core.detach(id, matches!(slot, Slot::New(_)));
    }
    // After the detach: whoever acts on the event finds the peer gone (a
    // ROUTER no longer routes to it).
    if !matches!(r, Ok(Exit::Done)) {
        core.event(monitor::DISCONNECTED, stream.fd() as u32, &endpoint);
    }
    match r {
        Ok(exit) => exit,
        Err(_) => Exit::Lost,
    }
}

#[allow(clippy::too_many_arguments)]
async fn pump<S: Stream>(
    core: &Arc<SocketCore>,
    stream: &S,
    wire: &Arc<Wire>,
    slot: Slot,
    driver: &Arc<Notify>,
    cancel: &Cancel,
    peer: &mut Option<u64>,
    endpoint: &str,
) -> io::Result<Exit> {
    let mut batch: Vec<Message> = Vec::new();
    let mut read_paused = false;
    // Output being written, out of the connection (see below).
    let mut out = ferromq_proto::Taken::default();
    // Until when the descriptor is left to a direct reader (see
    // `Wire::defer_to_direct`).
    let mut deferred_until: Option<Instant> = None;
    loop {
        let (closing, interest, timer, backlog) = {
            let mut guard = wire.lock();
            // Output: queued messages into the connection, then as much as the
            // kernel takes, a few batches per wake.
            for _ in 0..BATCHES_PER_WAKE {
                let conn = &mut guard.conn;
                let mut more = false;
                if let Some(id) = *peer {
                    if conn.transmit_len() >= WRITE_BATCH {
                        // Not pulled this round: the queue may still hold messages.
                        more = true;
                    } else {
                        let subscriber = matches!(core.kind, SocketType::Sub | SocketType::XSub);
                        let room = WRITE_BATCH - conn.transmit_len();
                        let taken = core.pull_outgoing_unlocked(id, room, |m| {
                            // Subscriptions go out in the form the peer's ZMTP
                            // version wants (only a subscriber sends them: other
                            // sockets skip the check, once per message).
                            match subscriber.then(|| as_subscription(&m)).flatten() {
                                Some((on, topic)) if m.len() == 1 => {
                                    conn.send_subscription(on, &topic)
                                }
                                _ => conn.send_message(&m),
                            }
                            wire.sent();
                            conn.transmit_len() < WRITE_BATCH
                        });
                        match taken {
                            None => return Ok(Exit::Done),
                            Some(m) => more = m,
                        }
                    }
                }
                // Written without the lock: a sending thread meanwhile
                // encodes its messages straight into the connection, behind
                // these bytes, rather than queueing them for us to encode
                // (it may not write them itself while we do: `writing`).
                let mut blocked = false;
                let taken = conn.transmit_len();
                if taken > 0 {
                    conn.take_transmit(&mut out);
                    guard.writing = taken;
                    drop(guard);
                    let r = wire::write_some(&mut out, |bufs| stream.try_write_vectored(bufs));
                    blocked = !out.is_empty();
                    if !blocked || out.len() < taken {
                        core.wrote();
                    }
                    guard = wire.lock();
                    guard.conn.restore_transmit(&mut out);
                    guard.writing = 0;
                    r?;
                }
                if blocked || (!more && guard.conn.transmit_is_empty()) {
                    break;
                }
                // The kernel took the whole batch, and more is queued or was
                // encoded while we wrote: neither wakes us again (a sender
                // does so only when it finds the queue or the connection
                // empty), so go round once more, or ask for another turn
                // after the select.
                driver.notify_one();
            }
            let w = &mut *guard;
            let conn = &mut w.conn;
            if read_paused && peer.is_some_and(|id| core.may_read(id)) {
                read_paused = false;
            }
            if peer.is_some_and(|id| core.superseded(id)) {
                return Ok(Exit::Done);
            }
            let closing = core.is_closed();
            if closing {
                let flushed = conn.transmit_is_empty()
                    && match (*peer, slot) {
                        (Some(id), _) | (None, Slot::Existing(id)) => !core.has_outgoing(id),
                        (None, Slot::New(_)) => true,
                    };
                let expired = core.linger_deadline().is_some_and(|d| Instant::now() >= d);
                if flushed || expired {
                    if !flushed {
                        core.shared.note_unflushed();
                    }
                    stream.shutdown_write();
                    return Ok(Exit::Done);
                }
            }
            let mut interest = None;
            if !wire.deferring() {
                deferred_until = None;
            }
            if !read_paused && deferred_until.is_none() {
                interest = Some(Interest::READABLE);
            }
            if !conn.transmit_is_empty() {
                interest = Some(interest.map_or(Interest::WRITABLE, |i| i | Interest::WRITABLE));
            }
            let timer = conn.poll_timeout();
            if let Some(e) = w.take_failure() {
                return Err(e);
            }
            (closing, interest, timer, w.backlog && !read_paused)
        };
        let linger = if closing {
            core.linger_deadline()
        } else {
            None
        };
        let ingest = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(Exit::Done),
            // Whole messages wait in the read buffer and the queue has room.
            _ = std::future::ready(()), if backlog => true,
            r = stream.ready(interest.unwrap_or(Interest::READABLE)), if interest.is_some() => {
                let readable = r?.is_readable() && !read_paused;
                if readable && wire.defer_to_direct() {
                    deferred_until = Some(Instant::now() + wire::DEFER);
                    false
                } else {
                    readable
                }
            }
            _ = sleep_until(deferred_until), if deferred_until.is_some() => {
                wire.stop_deferring();
                false
            }
            _ = driver.notified() => false,
            _ = sleep_until(timer), if timer.is_some() => {
                wire.lock().conn.handle_timeout(Instant::now()).map_err(io::Error::other)?;
                false
            }
            _ = sleep_until(linger), if linger.is_some() => false,
            _ = core.closing.cancelled(), if !closing => false,
        };
        if !ingest {
            continue;
        }
        let delivered = {
            let mut guard = wire.lock();
            let budget = core.decode_budget(*peer);
            let open = wire.read_input(&mut guard, budget, &mut batch, |buf| {
                stream.try_read_buf(buf)
            })?;
            if guard.drained() {
                // The kernel had no more (a short read): the next look
                // waits for the next event rather than read to find
                // nothing (a read and a poll per answer of a round trip).
                stream.clear_readable();
            }
            let backlog = guard.backlog;
            let conn = &mut guard.conn;
            while let Some(ev) = conn.poll_event() {
                match ev {
                    Event::Handshaken(info) => match core.attach(slot, &info, driver, Some(wire), {
                        let mut meta = info.metadata.clone();
                        stream.peer_properties(&mut meta);
                        Some(ferromq_proto::wire::SharedMetadata::intern(meta))
                    }) {
                        Some(id) => {
                            *peer = Some(id);
                            core.event(monitor::HANDSHAKE_SUCCEEDED, 0, endpoint);
                        }
                        None => return Ok(Exit::Lost),
                    },
                    Event::Message(m) => batch.push(m),
                    Event::Subscribe(t) => batch.push(subscription_message(true, &t)),
                    Event::Cancel(t) => batch.push(subscription_message(false, &t)),
                }
            }
            let mut delivered = false;
            if let Some(id) = *peer {
                if !batch.is_empty() || backlog {
                    // With a backlog the queue is full (or was when we looked):
                    // this marks the reader paused until it has room again.
                    delivered = !batch.is_empty();
                    read_paused = core.deliver(id, &mut batch);
                }
            }
            // Deliver what came with the end of stream before reporting it.
            if !open {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            delivered
        };
        if delivered && core.shared.on_app_runtime() {
            // On the application's runtime the receiving task may share our
            // thread: let it take what we delivered before we read more
            // (else the inbox fills to its limit first, memory and all).
            tokio::task::yield_now().await;
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    if let Some(t) = t {
        tokio::time::sleep_until(t.into()).await;
    }
}

/// Keeps a `connect` endpoint connected: opens a stream with `open`, runs
/// the connection until it ends, waits (with exponential backoff up to
/// `reconnect_ivl_max`), and tries again, until the endpoint is cancelled
/// or the socket closes with nothing left to flush. Shared by tcp and ipc.
///
/// Monitor events: CONNECT_DELAYED before each attempt when `delayed` (tcp
/// connects are asynchronous; ipc ones are not), CONNECTED on success,
/// CONNECT_RETRIED with the wait before the next attempt.
pub(crate) async fn keep_connected<S, F, Fut>(
    core: Arc<SocketCore>,
    peer: u64,
    notify: Arc<Notify>,
    cancel: Cancel,
    endpoint: Arc<str>,
    delayed: bool,
    open: F,
) where
    S: Stream,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = io::Result<S>>,
{
    let (ivl, ivl_max) = {
        let st = core.state.lock();
        (st.opts.reconnect_ivl, st.opts.reconnect_ivl_max)
    };
    let mut backoff = ivl.unwrap_or(std::time::Duration::from_millis(100));
    loop {
        if core.is_closed() && !core.has_outgoing(peer) {
            break;
        }
        if core.is_closed() && core.linger_deadline().is_some_and(|d| Instant::now() >= d) {
            core.shared.note_unflushed();
            break;
        }
        if delayed {
            core.event(monitor::CONNECT_DELAYED, EINPROGRESS, &endpoint);
        }
        let attempt = tokio::select! {
            _ = cancel.cancelled() => break,
            r = open() => r,
        };
        if let Ok(stream) = attempt {
            backoff = ivl.unwrap_or(backoff);
            core.event(monitor::CONNECTED, stream.fd() as u32, &endpoint);
            if let Exit::Done = run(
                core.clone(),
                stream,
                Slot::Existing(peer),
                notify.clone(),
                cancel.clone(),
                endpoint.clone(),
            )
            .await
            {
                break;
            }
        }
        if ivl.is_none() {
            break;
        }
        core.event(
            monitor::CONNECT_RETRIED,
            backoff.as_millis().min(u128::from(u32::MAX)) as u32,
            &endpoint,
        );
        // Closed already (perhaps while the attempt above was under way):
        // wait no longer than the linger time, which the loop's first check
        // then finds over. (The closing token, cancelled for good by then,
        // cannot end the wait without spinning, and a socket closed with
        // linger 0 kept its context's termination waiting for a whole
        // reconnect interval.)
        let closed = core.is_closed();
        let linger = core.linger_deadline().filter(|_| closed);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
            _ = core.closing.cancelled(), if !closed => {}
            _ = sleep_until(linger), if linger.is_some() => {}
        }
        if ivl_max > backoff {
            backoff = (backoff * 2).min(ivl_max);
        }
    }
    core.remove_peer(peer);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::{Context, SocketType};

    /// A socket closed with linger 0 while its connect attempt is under way
    /// (it then fails) stops reconnecting at once, rather than after its
    /// reconnect interval: the interval here is 60 s, and the context's
    /// termination waited for it. (Tokio's clock is paused, so the test
    /// reads the time the loop waited without waiting for it.)
    #[test]
    fn a_socket_closed_during_a_connect_attempt_stops_reconnecting() {
        let ctx = Context::new();
        let push = ctx.socket(SocketType::Push).unwrap();
        push.set_linger(Some(Duration::ZERO));
        push.set_reconnect_ivl(Some(Duration::from_secs(60)));
        let core = push.core().clone();
        // A peer with something queued, so that only the linger time ends
        // the loop.
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let peer = core.add_connect_peer(notify.clone());
        core.try_send(ferromq_proto::Message::from("queued"))
            .unwrap();
        let waited = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async {
                let start = tokio::time::Instant::now();
                let closing = core.clone();
                super::keep_connected::<tokio::net::TcpStream, _, _>(
                    core.clone(),
                    peer,
                    notify,
                    crate::cancel::Cancel::new(),
                    "tcp://127.0.0.1:1".into(),
                    false,
                    move || {
                        // The application closes the socket meanwhile.
                        closing.close();
                        async { Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)) }
                    },
                )
                .await;
                start.elapsed()
            });
        assert!(
            waited < Duration::from_secs(1),
            "the closed socket went on reconnecting for {waited:?}"
        );
    }

    /// A receiver that stops reading holds a bounded queue: its connection
    /// decodes no more than it may queue (libzmq's pipe limit), leaving the
    /// rest in the kernel. Unbounded, one wake decodes up to 256 KiB of
    /// input, ~14,000 messages of 16 bytes.
    #[test]
    fn a_stalled_receiver_queues_at_most_a_few_hwm() {
        const HWM: usize = 100;
        let ctx = Context::new();
        let pull = ctx.socket(SocketType::Pull).unwrap();
        pull.set_rcvhwm(HWM);
        pull.set_linger(Some(Duration::ZERO));
        pull.bind("tcp://127.0.0.1:*").unwrap();
        let push = ctx.socket(SocketType::Push).unwrap();
        push.set_sndhwm(0);
        push.set_linger(Some(Duration::ZERO));
        push.connect(&pull.last_endpoint()).unwrap();
        for i in 0..100_000u32 {
            let mut m = [0u8; 16];
            m[..4].copy_from_slice(&i.to_be_bytes());
            push.send(m.to_vec()).unwrap();
        }
        let queued = || {
            let st = pull.core().state.lock();
            st.peers.values().map(|p| p.inbox.len()).sum::<usize>()
        };
        // Wait until the receiver has paused: its queue reached the HWM.
        let deadline = Instant::now() + Duration::from_secs(10);
        while queued() < HWM {
            assert!(Instant::now() < deadline, "the receiver's queue fills");
            std::thread::sleep(Duration::from_millis(5));
        }
        let held = queued();
        assert!(held <= 3 * HWM, "{held} messages queued for RCVHWM {HWM}");
        // Everything still arrives, in order.
        for i in 0..100_000u32 {
            let m = pull.recv().unwrap();
            assert_eq!(&m[0][..4], &i.to_be_bytes());
        }
    }
}
