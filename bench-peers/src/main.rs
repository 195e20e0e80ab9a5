//! `ferromq-bench-peers`: the role processes of `ferromq-bench` for the
//! pure-Rust peers, so they run in the same table, interleaved with ferromq
//! and libzmq. `ferromq-bench` starts it with the same hidden `role`
//! arguments it gives itself; the roles (and their sequence checks) are the
//! very same code, included by path.
//!
//! Backends, with the rows they run (PUSH/PULL and REQ/REP):
//! - `zmq.rs` (the `zeromq` crate, 0.7) over tcp and ipc (it has no inproc
//!   and no high-water-mark options), in a current-thread tokio runtime;
//! - `rzmq` (0.5, without io_uring, which needs a newer kernel setup than
//!   this bench assumes) over tcp, ipc and inproc, in a multi-thread tokio
//!   runtime (its sockets are actors that expect one);
//! - `omq.rs` (`omq-tokio` 0.33) over tcp, ipc and inproc; its context owns
//!   its I/O threads (one by default, as libzmq), the roles run in a
//!   current-thread runtime.

#[path = "../../crates/ferromq-bench/src/roles.rs"]
#[allow(dead_code)] // the parent's result parsing is not used here
mod roles;
#[path = "../../crates/ferromq-bench/src/sock.rs"]
#[allow(dead_code)] // kinds and helpers only the parent's backends use
mod sock;

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::io::AsyncReadExt;
use zeromq::{Socket, SocketRecv, SocketSend, ZmqMessage};

use roles::RoleArgs;
use sock::{Kind, PoolBuf, Result, Setup, Sock, Transport};

/// One side of one `ferromq-bench` run, for a peer library.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One side of one run (started by `ferromq-bench run`).
    Role {
        #[arg(long)]
        backend: Backend,
        #[command(flatten)]
        args: RoleArgs,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// zmq.rs, the `zeromq` crate.
    #[value(name = "zmq.rs")]
    ZmqRs,
    /// rzmq.
    Rzmq,
    /// OMQ.rs, the `omq-tokio` crate.
    #[value(name = "omq.rs")]
    Omq,
}

/// A zmq.rs socket of one of the kinds the throughput and latency rows use.
enum Inner {
    Push(zeromq::PushSocket),
    Pull(zeromq::PullSocket),
    Req(zeromq::ReqSocket),
    Rep(zeromq::RepSocket),
}

/// zmq.rs behind [`Sock`].
struct ZmqRs {
    inner: Inner,
    last: Bytes,
}

/// Runs `$body` with `$s` bound to whichever socket `$inner` holds.
macro_rules! each {
    ($inner:expr, $s:ident => $body:expr) => {
        match $inner {
            Inner::Push($s) => $body,
            Inner::Pull($s) => $body,
            Inner::Req($s) => $body,
            Inner::Rep($s) => $body,
        }
    };
}

impl ZmqRs {
    fn open(setup: Setup) -> Result<Self> {
        if setup.transport == Transport::Inproc {
            return Err("zmq.rs has no inproc transport".into());
        }
        let inner = match setup.kind {
            Kind::Push => Inner::Push(zeromq::PushSocket::new()),
            Kind::Pull => Inner::Pull(zeromq::PullSocket::new()),
            Kind::Req => Inner::Req(zeromq::ReqSocket::new()),
            Kind::Rep => Inner::Rep(zeromq::RepSocket::new()),
            k => return Err(format!("{k:?} is not benchmarked for zmq.rs").into()),
        };
        Ok(ZmqRs {
            inner,
            last: Bytes::new(),
        })
    }

    /// Sends one message on whichever socket this is.
    async fn send_msg(&mut self, msg: ZmqMessage) -> Result<()> {
        match &mut self.inner {
            Inner::Push(s) => s.send(msg).await?,
            Inner::Req(s) => s.send(msg).await?,
            Inner::Rep(s) => s.send(msg).await?,
            Inner::Pull(_) => return Err("PULL cannot send".into()),
        }
        Ok(())
    }
}

impl Sock for ZmqRs {
    async fn bind(setup: Setup) -> Result<(Self, String)> {
        let mut s = Self::open(setup)?;
        let ep = bind_endpoint(setup.transport);
        let bound = each!(&mut s.inner, x => x.bind(&ep).await?);
        Ok((s, bound.to_string()))
    }

    async fn connect(setup: Setup, endpoint: &str) -> Result<Self> {
        let mut s = Self::open(setup)?;
        each!(&mut s.inner, x => x.connect(endpoint).await?);
        Ok(s)
    }

    async fn send_pooled(&mut self, buf: PoolBuf) -> Result<()> {
        self.send_msg(ZmqMessage::from(Bytes::from_owner(buf)))
            .await
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        self.send_msg(ZmqMessage::from(Bytes::copy_from_slice(data)))
            .await
    }

    async fn recv(&mut self) -> Result<&[u8]> {
        let msg = match &mut self.inner {
            Inner::Pull(s) => s.recv().await?,
            Inner::Req(s) => s.recv().await?,
            Inner::Rep(s) => s.recv().await?,
            Inner::Push(_) => return Err("PUSH cannot receive".into()),
        };
        if msg.len() != 1 {
            return Err(format!("expected one frame, got {}", msg.len()).into());
        }
        self.last = msg.into_vec().remove(0);
        Ok(&self.last)
    }

    async fn close(self) -> Result<()> {
        if matches!(self.inner, Inner::Push(_)) {
            // zmq.rs drops what is still queued when a socket closes.
            hold_until_released().await?;
        }
        each!(self.inner, x => {
            x.close().await;
        });
        Ok(())
    }
}

/// Where a peer binds: port 0 (not libzmq's `*`) for an ephemeral tcp port.
fn bind_endpoint(transport: Transport) -> String {
    match transport {
        Transport::Tcp => "tcp://127.0.0.1:0".to_owned(),
        t => t.bind_endpoint(),
    }
}

/// A sender whose library may drop queued messages at close stays until
/// ferromq-bench closes our stdin, which it does once the receiver has
/// counted every message (so the figures include delivery).
async fn hold_until_released() -> Result<()> {
    let mut rest = Vec::new();
    tokio::io::stdin().read_to_end(&mut rest).await?;
    Ok(())
}

/// inproc: the receiver in this same process is done.
static RECEIVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static RECEIVED_NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// inproc: waits until the receiver in this process has counted everything.
async fn hold_until_received() {
    loop {
        let notified = RECEIVED_NOTIFY.notified();
        if RECEIVED.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

/// The context both inproc sides share.
static RZMQ_INPROC: std::sync::OnceLock<rzmq::Context> = std::sync::OnceLock::new();

/// rzmq behind [`Sock`].
struct Rzmq {
    /// `None` for inproc (the shared context).
    ctx: Option<rzmq::Context>,
    sock: rzmq::Socket,
    kind: Kind,
    last: Option<rzmq::Msg>,
}

impl Rzmq {
    async fn open(setup: Setup) -> Result<Self> {
        let kind = match setup.kind {
            k @ (Kind::Push | Kind::Pull | Kind::Req | Kind::Rep) => k,
            k => return Err(format!("{k:?} is not benchmarked for rzmq").into()),
        };
        let ctx = match setup.transport {
            Transport::Inproc => None,
            _ => Some(rzmq::Context::new()?),
        };
        let sock = ctx.as_ref().map_or_else(
            || {
                RZMQ_INPROC
                    .get_or_init(|| rzmq::Context::new().expect("rzmq context"))
                    .socket(socket_type(kind))
            },
            |c| c.socket(socket_type(kind)),
        )?;
        if let Some(hwm) = setup.hwm {
            sock.set_option(rzmq::socket::SNDHWM, hwm).await?;
            sock.set_option(rzmq::socket::RCVHWM, hwm).await?;
        }
        Ok(Rzmq {
            ctx,
            sock,
            kind,
            last: None,
        })
    }
}

fn socket_type(kind: Kind) -> rzmq::SocketType {
    match kind {
        Kind::Push => rzmq::SocketType::Push,
        Kind::Pull => rzmq::SocketType::Pull,
        Kind::Req => rzmq::SocketType::Req,
        _ => rzmq::SocketType::Rep,
    }
}

impl Sock for Rzmq {
    async fn bind(setup: Setup) -> Result<(Self, String)> {
        let s = Self::open(setup).await?;
        let ep = bind_endpoint(setup.transport);
        s.sock.bind(&ep).await?;
        let bound = s.sock.get_option(rzmq::socket::LAST_ENDPOINT).await?;
        let bound = String::from_utf8(bound)?;
        Ok((s, if bound.is_empty() { ep } else { bound }))
    }

    async fn connect(setup: Setup, endpoint: &str) -> Result<Self> {
        let s = Self::open(setup).await?;
        s.sock.connect(endpoint).await?;
        Ok(s)
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        self.sock.send(rzmq::Msg::from_vec(data.to_vec())).await?;
        Ok(())
    }

    async fn send_pooled(&mut self, buf: PoolBuf) -> Result<()> {
        let msg = rzmq::Msg::from_bytes(Bytes::from_owner(buf));
        self.sock.send(msg).await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<&[u8]> {
        let msg = self.sock.recv().await?;
        if msg.is_more() {
            return Err("expected one frame, got more".into());
        }
        Ok(self.last.insert(msg).data().unwrap_or_default())
    }

    async fn close(self) -> Result<()> {
        match (self.kind, &self.ctx) {
            (Kind::Push, Some(_)) => hold_until_released().await?,
            (Kind::Push, None) => hold_until_received().await,
            _ => {}
        }
        self.sock.close().await?;
        if let Some(ctx) = self.ctx {
            ctx.term().await?;
        }
        Ok(())
    }
}

/// The context both inproc sides share.
static OMQ_INPROC: std::sync::OnceLock<omq_tokio::Context> = std::sync::OnceLock::new();

/// OMQ.rs behind [`Sock`].
struct Omq {
    sock: omq_tokio::Socket,
    /// Keeps a tcp/ipc context (and its I/O thread) alive.
    _ctx: Option<omq_tokio::Context>,
    last: Bytes,
}

impl Omq {
    fn open(setup: Setup) -> Result<Self> {
        use omq_tokio::SocketType as T;
        let kind = match setup.kind {
            Kind::Push => T::Push,
            Kind::Pull => T::Pull,
            Kind::Req => T::Req,
            Kind::Rep => T::Rep,
            k => return Err(format!("{k:?} is not benchmarked for omq.rs").into()),
        };
        // OMQ drops unsent messages at close by default; libzmq (and
        // ferromq) wait for them: make it wait too.
        let mut options = omq_tokio::Options {
            linger: None,
            ..Default::default()
        };
        if let Some(hwm) = setup.hwm {
            options.send_hwm = u32::try_from(hwm)?;
            options.recv_hwm = u32::try_from(hwm)?;
        }
        let ctx = (setup.transport != Transport::Inproc).then(omq_tokio::Context::new);
        let sock = ctx
            .as_ref()
            .unwrap_or_else(|| OMQ_INPROC.get_or_init(omq_tokio::Context::new))
            .socket(kind, options);
        Ok(Omq {
            sock,
            _ctx: ctx,
            last: Bytes::new(),
        })
    }
}

impl Sock for Omq {
    async fn bind(setup: Setup) -> Result<(Self, String)> {
        let s = Self::open(setup)?;
        let ep = bind_endpoint(setup.transport);
        let bound = s.sock.bind(ep.as_str()).await?;
        Ok((s, bound.to_string()))
    }

    async fn connect(setup: Setup, endpoint: &str) -> Result<Self> {
        let s = Self::open(setup)?;
        s.sock.connect(endpoint).await?;
        Ok(s)
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        self.sock
            .send(omq_tokio::Message::single(Bytes::copy_from_slice(data)))
            .await?;
        Ok(())
    }

    async fn send_pooled(&mut self, buf: PoolBuf) -> Result<()> {
        let msg = omq_tokio::Message::single(Bytes::from_owner(buf));
        self.sock.send(msg).await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<&[u8]> {
        let msg = self.sock.recv().await?;
        if msg.len() != 1 {
            return Err(format!("expected one frame, got {}", msg.len()).into());
        }
        self.last = msg.part_bytes(0).unwrap_or_default();
        Ok(&self.last)
    }

    async fn close(self) -> Result<()> {
        self.sock.close().await?;
        Ok(())
    }
}

/// Plays the role, and over inproc the connecting role beside it on the
/// same runtime (and the backend's shared context).
async fn play<S: Sock>(args: &RoleArgs) -> Result<()> {
    let Some(peer_job) = args.peer_job() else {
        return roles::run::<S>(&args.job()).await;
    };
    let mine = async {
        let r = roles::run::<S>(&args.job()).await;
        // A PUSH beside us may close now: everything was received.
        RECEIVED.store(true, std::sync::atomic::Ordering::Release);
        RECEIVED_NOTIFY.notify_waiters();
        r
    };
    let (mine, theirs) = tokio::join!(mine, roles::run::<S>(&peer_job));
    mine.and(theirs)
}

fn main() -> ExitCode {
    let Cmd::Role { backend, args } = Cli::parse().cmd;
    let played = (|| -> Result<()> {
        let current = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        };
        match backend {
            Backend::ZmqRs => current()?.block_on(play::<ZmqRs>(&args))?,
            Backend::Omq => current()?.block_on(play::<Omq>(&args))?,
            Backend::Rzmq => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(play::<Rzmq>(&args))?,
        }
        roles::report_peak_rss(args.role)
    })();
    // Some peers leave their ipc socket file behind.
    if args.transport == Transport::Ipc && args.role.binds() {
        let _ = std::fs::remove_file(sock::ipc_path());
    }
    match played {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferromq-bench-peers: {backend:?} {:?}: {e}", args.role);
            ExitCode::FAILURE
        }
    }
}
