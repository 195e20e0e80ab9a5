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
    /// Sends a pooled buffer as one single-frame message: the zero-copy
    /// rows. Backends whose API takes a buffer it owns without copying
    /// (a `Bytes`, or libzmq's `zmq_msg_init_data`) override this; the
    /// rest copy, as `send` does.
    async fn send_pooled(&mut self, buf: PoolBuf) -> Result<()> {
        self.send(&buf).await
    }
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

/// Payload buffers the zero-copy rows' sender reuses, process-wide.
static POOL: std::sync::Mutex<Vec<Box<[u8]>>> = std::sync::Mutex::new(Vec::new());

/// A payload buffer from a process-wide pool, back in the pool when
/// dropped: the zero-copy rows' sender stamps one per message and hands it
/// to the library, which drops it once sent, so after the first messages
/// nothing is allocated, zeroed or copied on the sending side (as an
/// application with its own buffer pool would send).
pub struct PoolBuf(Box<[u8]>);

impl PoolBuf {
    /// A buffer of `size` bytes from the pool, or a new one.
    pub fn get(size: usize) -> PoolBuf {
        let pooled = POOL.lock().ok().and_then(|mut p| p.pop());
        match pooled {
            Some(b) if b.len() == size => PoolBuf(b),
            _ => PoolBuf(vec![0; size].into_boxed_slice()),
        }
    }

    /// Fills the pool with `n` buffers of `size` bytes, written through,
    /// before the clock starts: what an application sends from is memory it
    /// has, not fresh pages the kernel faults in while copying (with 1 MiB
    /// messages and a queue of 1000 that doubled the sender's CPU time in a
    /// short run). Shows in the sender's peak RSS.
    pub fn prefill(size: usize, n: usize) {
        let fresh: Vec<Box<[u8]>> = (0..n)
            .map(|_| vec![0xa5; size].into_boxed_slice())
            .collect();
        if let Ok(mut p) = POOL.lock() {
            p.extend(fresh);
        }
    }

    /// The buffer itself, no longer returned to the pool by this handle
    /// (for APIs that take ownership through a pointer and a free function).
    pub fn into_box(mut self) -> Box<[u8]> {
        std::mem::take(&mut self.0)
    }

    /// Returns a buffer taken with [`PoolBuf::into_box`] to the pool.
    pub fn put_back(b: Box<[u8]>) {
        drop(PoolBuf(b));
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        let b = std::mem::take(&mut self.0);
        if !b.is_empty() {
            if let Ok(mut p) = POOL.lock() {
                p.push(b);
            }
        }
    }
}

impl std::ops::Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for PoolBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
