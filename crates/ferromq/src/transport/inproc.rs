//! inproc:// — in-process pipes between sockets of one context.
//!
//! No bytes and no ZMTP: a pipe task moves whole messages from one socket's
//! peer queue to the other's inbox, so frames keep their allocation (zero
//! copy). Connecting before the bind exists queues messages on the
//! connector's peer and waits in the registry; when the bound socket goes
//! away, its connectors wait again, so their queued messages survive a rebind.
//! The capacity of a pipe is the sender's SNDHWM plus the receiver's RCVHWM,
//! as in libzmq.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Weak};

use ferromq_proto::connection::PeerInfo;
use ferromq_proto::routing::PeerId;
use ferromq_proto::wire::Metadata;
use ferromq_proto::Message;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
    cancel: CancellationToken,
}

/// A connector's side of a pipe: its peer exists from `connect` on.
struct Pending {
    core: Weak<SocketCore>,
    peer: PeerId,
    notify: Arc<Notify>,
    cancel: CancellationToken,
}

impl Bound {
    fn live(&self) -> Option<Arc<SocketCore>> {
        self.core
            .upgrade()
            .filter(|c| !c.is_closed() && !self.cancel.is_cancelled())
    }
}

/// Binds `name`; connectors already waiting for it are attached at once.
pub(crate) fn bind(
    core: &Arc<SocketCore>,
    name: &str,
    cancel: CancellationToken,
) -> io::Result<String> {
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
        (id, reg.pending.remove(name).unwrap_or_default())
    };
    let (id, waiting) = waiting;
    for p in waiting {
        start_pipe(core.clone(), cancel.clone(), name.to_string(), p);
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
pub(crate) fn connect(core: &Arc<SocketCore>, name: &str, cancel: CancellationToken) -> PeerId {
    let notify = Arc::new(Notify::new());
    let peer = core.add_connect_peer(notify.clone());
    let p = Pending {
        core: Arc::downgrade(core),
        peer,
        notify,
        cancel,
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
            start_pipe(binder, cancel, name.to_string(), p);
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

fn start_pipe(binder: Arc<SocketCore>, bind_cancel: CancellationToken, name: String, p: Pending) {
    let shared = binder.shared.clone();
    shared.spawn(pipe(binder, bind_cancel, name, p));
}

/// Moves one direction's queued messages; `paused` while the receiver is
/// full. If `gone` turns true meanwhile, the batch goes back to the sender.
fn transfer(
    from: &SocketCore,
    from_peer: PeerId,
    to: &SocketCore,
    to_peer: PeerId,
    paused: &mut bool,
    gone: impl Fn() -> bool,
) -> bool {
    if *paused {
        if !to.may_read(to_peer) {
            return false;
        }
        *paused = false;
    }
    // Never more than the receiver's HWM allows: capacity is SNDHWM + RCVHWM.
    let room = to.inbox_room(to_peer).min(BATCH);
    if room == 0 {
        *paused = true;
        return false;
    }
    let mut batch: Vec<Message> = Vec::new();
    let more = from
        .pull_outgoing(from_peer, |m| {
            batch.push(m);
            batch.len() < room
        })
        .unwrap_or(false);
    if gone() {
        from.unpull(from_peer, batch);
        return false;
    }
    if !batch.is_empty() {
        *paused = to.deliver(to_peer, &mut batch);
    }
    more && !*paused
}

async fn pipe(binder: Arc<SocketCore>, bind_cancel: CancellationToken, name: String, p: Pending) {
    let Some(conn) = p.core.upgrade() else { return };
    if p.cancel.is_cancelled() || !binder.kind.is_compatible(conn.kind) {
        return;
    }
    let bnotify = Arc::new(Notify::new());
    let Some(bpeer) = binder.attach(Slot::New, &info(&conn), &bnotify) else {
        // Refused (a second PAIR peer): wait for another binding.
        attach_or_wait(&conn, &name, p);
        return;
    };
    let Some(cpeer) = conn.attach(Slot::Existing(p.peer), &info(&binder), &p.notify) else {
        binder.detach(bpeer, true);
        return;
    };
    let (mut to_binder_paused, mut to_conn_paused) = (false, false);
    let binder_gone = || binder.is_closed() || bind_cancel.is_cancelled();
    let conn_gone = || p.cancel.is_cancelled();
    let rebind = loop {
        // After unbind or close no message may reach the old binder, but
        // what it queued for us still comes (linger).
        if binder_gone() {
            while transfer(&binder, bpeer, &conn, cpeer, &mut to_conn_paused, conn_gone) {}
            break true;
        }
        let more_up = transfer(
            &conn,
            cpeer,
            &binder,
            bpeer,
            &mut to_binder_paused,
            binder_gone,
        );
        let more_down = transfer(&binder, bpeer, &conn, cpeer, &mut to_conn_paused, conn_gone);
        if conn.is_closed() && !more_up {
            break false;
        }
        if more_up || more_down {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = p.notify.notified() => {}
            _ = bnotify.notified() => {}
            _ = p.cancel.cancelled() => break false,
            _ = bind_cancel.cancelled() => {}
            _ = binder.closing.cancelled(), if !binder.is_closed() => {}
            _ = conn.closing.cancelled(), if !conn.is_closed() => {}
        }
    };
    binder.detach(bpeer, true);
    conn.detach(cpeer, false);
    if rebind && !conn.is_closed() && !p.cancel.is_cancelled() {
        attach_or_wait(&conn, &name, p);
    }
}
