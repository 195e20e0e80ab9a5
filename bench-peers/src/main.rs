//! `ferromq-bench-peers`: the role processes of `ferromq-bench` for the
//! pure-Rust peers, so they run in the same table, interleaved with ferromq
//! and libzmq. `ferromq-bench` starts it with the same hidden `role`
//! arguments it gives itself; the roles (and their sequence checks) are the
//! very same code, included by path.
//!
//! Backends: `zmq.rs` (the `zeromq` crate, 0.7): PUSH/PULL and REQ/REP over
//! tcp and ipc (it has no inproc and no high-water-mark options).

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

use roles::{Job, Role};
use sock::{Kind, Result, Setup, Sock, Transport};

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
        #[arg(long)]
        role: Role,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, default_value_t = 1)]
        subs: u32,
        #[arg(long)]
        hwm: Option<i32>,
        #[arg(long, default_value = "tcp")]
        transport: Transport,
        /// inproc only, which no peer here has.
        #[arg(long)]
        peer_role: Option<Role>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// zmq.rs, the `zeromq` crate.
    #[value(name = "zmq.rs")]
    ZmqRs,
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
}

impl Sock for ZmqRs {
    async fn bind(setup: Setup) -> Result<(Self, String)> {
        let mut s = Self::open(setup)?;
        let ep = match setup.transport {
            // zmq.rs takes port 0, not libzmq's `*`, for an ephemeral port.
            Transport::Tcp => "tcp://127.0.0.1:0".to_owned(),
            t => t.bind_endpoint(),
        };
        let bound = each!(&mut s.inner, x => x.bind(&ep).await?);
        Ok((s, bound.to_string()))
    }

    async fn connect(setup: Setup, endpoint: &str) -> Result<Self> {
        let mut s = Self::open(setup)?;
        each!(&mut s.inner, x => x.connect(endpoint).await?);
        Ok(s)
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        let msg = ZmqMessage::from(Bytes::copy_from_slice(data));
        match &mut self.inner {
            Inner::Push(s) => s.send(msg).await?,
            Inner::Req(s) => s.send(msg).await?,
            Inner::Rep(s) => s.send(msg).await?,
            Inner::Pull(_) => return Err("PULL cannot send".into()),
        }
        Ok(())
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

    async fn recv_briefly(&mut self) -> Result<Option<&[u8]>> {
        Err("publish/subscribe is not benchmarked for zmq.rs".into())
    }

    async fn recv_frames(&mut self) -> Result<usize> {
        Err("ROUTER is not benchmarked for zmq.rs".into())
    }

    async fn close(self) -> Result<()> {
        if matches!(self.inner, Inner::Push(_)) {
            // zmq.rs drops what is still queued when a socket closes, so a
            // sender stays until ferromq-bench closes our stdin, which it
            // does once the receiver has counted every message.
            let mut rest = Vec::new();
            tokio::io::stdin().read_to_end(&mut rest).await?;
        }
        each!(self.inner, x => {
            x.close().await;
        });
        Ok(())
    }
}

fn main() -> ExitCode {
    let Cmd::Role {
        backend,
        role,
        size,
        count,
        endpoint,
        subs,
        hwm,
        transport,
        peer_role,
    } = Cli::parse().cmd;
    let job = Job {
        role,
        size,
        count,
        endpoint,
        subs,
        hwm,
        transport,
    };
    let side = if role.binds() { "bind" } else { "conn" };
    let played = (|| -> Result<()> {
        if peer_role.is_some() {
            return Err("inproc is not benchmarked for the peers".into());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        match backend {
            Backend::ZmqRs => rt.block_on(roles::run::<ZmqRs>(&job))?,
        }
        println!("result peak_{side}_kb={}", roles::status_kb("VmHWM")?);
        Ok(())
    })();
    match played {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferromq-bench-peers: {backend:?} {role:?}: {e}");
            ExitCode::FAILURE
        }
    }
}
