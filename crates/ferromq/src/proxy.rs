//! `proxy`: shuttle messages between two sockets (a ROUTER/DEALER broker,
//! an XSUB/XPUB forwarder, a PULL/PUSH streamer), optionally copying each
//! to a capture socket, and optionally steered by a control socket.
//!
//! Each direction runs as its own task, so a full destination on one side
//! never stalls the other. Messages are never dropped by the proxy: it
//! waits for room, as libzmq's does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferromq_proto::{Message, SocketType};
use tokio::sync::watch;

use crate::api::{AsyncSocket, Socket};
use crate::error::{Error, Result};

/// What the control socket may ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Running,
    Paused,
    Terminated,
}

/// Message and byte counts of one side, as STATISTICS reports them.
#[derive(Default)]
struct Counts {
    msgs_in: AtomicU64,
    bytes_in: AtomicU64,
    msgs_out: AtomicU64,
    bytes_out: AtomicU64,
}

impl Counts {
    fn frames(&self) -> [u64; 4] {
        [
            &self.msgs_in,
            &self.bytes_in,
            &self.msgs_out,
            &self.bytes_out,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// Forwards messages between `frontend` and `backend` until a socket is
/// closed or its context shut down (then `Err(Terminated)`), copying each to
/// `capture` if given. Like `zmq_proxy`. `frontend` and `backend` may be the
/// same socket.
pub async fn proxy_async(
    frontend: &AsyncSocket,
    backend: &AsyncSocket,
    capture: Option<&AsyncSocket>,
) -> Result<()> {
    run(frontend.clone(), backend.clone(), capture.cloned(), None).await
}

/// [`proxy_async`] steered by `control`, which takes single-frame commands:
/// `PAUSE` and `RESUME` (stop and restart forwarding), `TERMINATE` (return
/// `Ok`), and `STATISTICS` (answered with 8 u64 frames: frontend messages
/// in, bytes in, messages out, bytes out, then the same for the backend).
/// A REP control socket gets an empty reply to the other commands.
pub async fn proxy_steerable_async(
    frontend: &AsyncSocket,
    backend: &AsyncSocket,
    capture: Option<&AsyncSocket>,
    control: &AsyncSocket,
) -> Result<()> {
    run(
        frontend.clone(),
        backend.clone(),
        capture.cloned(),
        Some(control.clone()),
    )
    .await
}

/// Blocking [`proxy_async`]: runs the proxy on the context's I/O threads and
/// waits for it (never runs an async runtime in the calling thread).
pub fn proxy(frontend: &Socket, backend: &Socket, capture: Option<&Socket>) -> Result<()> {
    blocking(frontend, backend, capture, None)
}

/// Blocking [`proxy_steerable_async`].
pub fn proxy_steerable(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: &Socket,
) -> Result<()> {
    blocking(frontend, backend, capture, Some(control))
}

fn blocking(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: Option<&Socket>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let f = frontend.clone().into_async();
    let b = backend.clone().into_async();
    let c = capture.map(|c| c.clone().into_async());
    let k = control.map(|k| k.clone().into_async());
    frontend.spawn_on_io(async move {
        let _ = tx.send(run(f, b, c, k).await);
    });
    rx.recv().unwrap_or(Err(Error::Terminated))
}

async fn run(
    frontend: AsyncSocket,
    backend: AsyncSocket,
    capture: Option<AsyncSocket>,
    control: Option<AsyncSocket>,
) -> Result<()> {
    let (mode_tx, mode_rx) = watch::channel(Mode::Running);
    let front_counts = Arc::new(Counts::default());
    let back_counts = Arc::new(Counts::default());
    // A direction runs only where it can: a PULL->PUSH streamer has one.
    let forward = |src: &AsyncSocket,
                   dst: &AsyncSocket,
                   src_counts: &Arc<Counts>,
                   dst_counts: &Arc<Counts>| {
        let (src, dst, capture) = (src.clone(), dst.clone(), capture.clone());
        let (mode, src_counts, dst_counts) =
            (mode_rx.clone(), src_counts.clone(), dst_counts.clone());
        async move {
            if !src.socket_type().can_recv() || !dst.socket_type().can_send() {
                return std::future::pending().await;
            }
            shuttle(src, dst, capture, mode, src_counts, dst_counts).await
        }
    };
    let down = tokio::spawn(forward(&frontend, &backend, &front_counts, &back_counts));
    let up = tokio::spawn(forward(&backend, &frontend, &back_counts, &front_counts));
    let (down_abort, up_abort) = (down.abort_handle(), up.abort_handle());
    let result = match control {
        None => tokio::select! {
            r = down => r.unwrap_or(Err(Error::Terminated)),
            r = up => r.unwrap_or(Err(Error::Terminated)),
        },
        Some(control) => {
            let steer = steer(control, mode_tx, front_counts, back_counts);
            tokio::select! {
                r = down => r.unwrap_or(Err(Error::Terminated)),
                r = up => r.unwrap_or(Err(Error::Terminated)),
                r = steer => r,
            }
        }
    };
    down_abort.abort();
    up_abort.abort();
    result
}

/// One direction. Cancel-safe receives mean aborting it loses no message.
async fn shuttle(
    src: AsyncSocket,
    dst: AsyncSocket,
    capture: Option<AsyncSocket>,
    mut mode: watch::Receiver<Mode>,
    src_counts: Arc<Counts>,
    dst_counts: Arc<Counts>,
) -> Result<()> {
    loop {
        // Wait out a pause before taking a message.
        while *mode.borrow_and_update() == Mode::Paused {
            if mode.changed().await.is_err() {
                return Ok(());
            }
        }
        let msg = tokio::select! {
            m = src.recv() => m?,
            _ = mode.changed() => continue,
        };
        let (frames, bytes) = (msg.len() as u64, msg.byte_len() as u64);
        src_counts.msgs_in.fetch_add(frames, Ordering::Relaxed);
        src_counts.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        if let Some(c) = &capture {
            // As libzmq: the copy is sent like any message (waiting for room).
            c.send(msg.clone()).await.map_err(|e| e.error)?;
        }
        dst.send(msg).await.map_err(|e| e.error)?;
        dst_counts.msgs_out.fetch_add(frames, Ordering::Relaxed);
        dst_counts.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }
}

async fn steer(
    control: AsyncSocket,
    mode: watch::Sender<Mode>,
    front: Arc<Counts>,
    back: Arc<Counts>,
) -> Result<()> {
    let replies = control.socket_type() == SocketType::Rep;
    loop {
        let cmd = control.recv().await?;
        let reply = match cmd.frames().first().map(|f| &f[..]) {
            Some(b"PAUSE") => {
                mode.send_replace(Mode::Paused);
                Message::from("")
            }
            Some(b"RESUME") => {
                mode.send_replace(Mode::Running);
                Message::from("")
            }
            Some(b"TERMINATE") => {
                mode.send_replace(Mode::Terminated);
                if replies {
                    control.send("").await.map_err(|e| e.error)?;
                }
                return Ok(());
            }
            Some(b"STATISTICS") => front
                .frames()
                .iter()
                .chain(back.frames().iter())
                .map(|v| v.to_ne_bytes().to_vec())
                .collect(),
            // Unknown commands are ignored, as libzmq does.
            _ => Message::from(""),
        };
        if replies || cmd.frames().first().map(|f| &f[..]) == Some(b"STATISTICS") {
            control.send(reply).await.map_err(|e| e.error)?;
        }
    }
}
