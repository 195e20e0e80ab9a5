//! What every backend implements, shared with the peers' bench binary
//! (bench-peers/, which includes this file and roles.rs by path): no
//! dependency on any ZeroMQ library here.

/// Errors of a benchmark role; printed on stderr by the role process.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The socket types the scenarios use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Throughput sender.
    Push,
    /// Throughput receiver.
    Pull,
    /// Latency client.
    Req,
    /// Latency server.
    Rep,
    /// Publisher (an XPUB, verbose, so it can count its subscribers).
    XPub,
    /// Subscriber to everything.
    Sub,
    /// Holder of idle connections (a ROUTER).
    Router,
}

/// How a benchmark socket is set up before it binds or connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// The socket type.
    pub kind: Kind,
    /// SNDHWM and RCVHWM (`None`: the library's default, 1000; 0: unlimited).
    pub hwm: Option<i32>,
    /// Where to bind.
    pub transport: Transport,
}

/// The transports the scenarios run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Transport {
    /// tcp on 127.0.0.1, sides in two processes.
    Tcp,
    /// ipc (Unix domain sockets), sides in two processes.
    Ipc,
    /// inproc, sides in two threads of one process sharing a context.
    Inproc,
}

impl Transport {
    /// The endpoint a binder binds: the OS picks tcp ports; ipc gets a
    /// path of its own per binder process.
    pub fn bind_endpoint(self) -> String {
        match self {
            Transport::Tcp => "tcp://127.0.0.1:*".into(),
            Transport::Ipc => {
                let path = ipc_path();
                // A file left by an earlier process with this pid is stale
                // (zmq.rs leaves its file and refuses to bind over one).
                let _ = std::fs::remove_file(&path);
                format!("ipc://{}", path.display())
            }
            Transport::Inproc => "inproc://ferromq-bench".into(),
        }
    }
}

/// The ipc socket file of a binder process: its own, by pid.
pub fn ipc_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ferromq-bench-{}.sock", std::process::id()))
}

/// One socket of a backend over tcp on loopback.
///
/// The methods are `async` so that one runner serves every backend: the
/// blocking backends' futures complete on their first poll.
pub trait Sock: Sized {
    /// Binds to an ephemeral port of 127.0.0.1; returns the socket and its endpoint.
    async fn bind(setup: Setup) -> Result<(Self, String)>;
    /// Connects to the endpoint a binder announced.
    async fn connect(setup: Setup, endpoint: &str) -> Result<Self>;
    /// Sends `data` as one single-frame message (copied, as each API does it).
    async fn send(&mut self, data: &[u8]) -> Result<()>;
    /// Receives one single-frame message, valid until the next call.
    async fn recv(&mut self) -> Result<&[u8]>;
    /// Like `recv`, but `None` when nothing came within a millisecond
    /// (publish/subscribe rows only; backends without them keep this).
    async fn recv_briefly(&mut self) -> Result<Option<&[u8]>> {
        Err("publish/subscribe is not benchmarked for this backend".into())
    }
    /// Receives one message of any number of frames; returns how many
    /// (the idle ROUTER row only; backends without it keep this).
    async fn recv_frames(&mut self) -> Result<usize> {
        Err("ROUTER is not benchmarked for this backend".into())
    }
    /// Closes the socket and waits until everything queued has been sent.
    async fn close(self) -> Result<()>;
}
