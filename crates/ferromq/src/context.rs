//! The context: the I/O runtime that every socket of it shares.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use event_listener::{Event, EventListener, Listener};
use ferromq_proto::SocketType;
use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};
use crate::socket::core::SocketCore;
use crate::{AsyncSocket, Socket};

/// A ZeroMQ context: owns the background I/O threads that run connections.
///
/// Sockets keep their context alive. When the last handle to a context (the
/// `Context` and every socket made from it) is dropped, the drop waits for
/// each closed socket's queued messages to be flushed, up to its linger time,
/// then stops the I/O threads, like `zmq_ctx_term`.
///
/// ```
/// let ctx = ferromq::Context::new();
/// let push = ctx.socket(ferromq::SocketType::Push).unwrap();
/// let pull = ctx.socket(ferromq::SocketType::Pull).unwrap();
/// pull.bind("tcp://127.0.0.1:*").unwrap();
/// push.connect(&pull.last_endpoint()).unwrap();
/// push.send("hello").unwrap();
/// assert_eq!(&pull.recv().unwrap()[0][..], b"hello");
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

pub(crate) struct ContextInner {
    /// The context's own I/O threads; `None` when it runs on the
    /// application's runtime ([`ContextBuilder::runtime`]).
    rt: Option<Runtime>,
    pub shared: Arc<Shared>,
}

/// The sockets a context made (see [`Shared::register`]).
struct Sockets {
    list: Vec<Weak<SocketCore>>,
    /// The length at which handles of closed sockets are next pruned.
    prune_at: usize,
}

/// What background tasks hold: the runtime handle and the live-task count.
pub(crate) struct Shared {
    pub handle: Handle,
    tasks: AtomicUsize,
    idle: Event,
    /// Connections that gave up at the linger deadline with messages unsent.
    unflushed: AtomicUsize,
    sockets: Mutex<Sockets>,
    terminated: AtomicBool,
    /// inproc names bound in this context, and connectors waiting for them.
    pub inproc: Mutex<crate::transport::inproc::Registry>,
    /// The runtime is the application's ([`ContextBuilder::runtime`]).
    app_runtime: bool,
    /// ... and a current-thread one.
    one_thread: bool,
}

struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify(usize::MAX);
        }
    }
}

impl Shared {
    /// Spawns a background task that [`Context`]'s drop waits for.
    pub fn spawn<F>(self: &Arc<Self>, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(self.clone());
        self.handle.spawn(async move {
            let _guard = guard;
            fut.await;
        });
    }

    /// Records a new socket (for [`Context::shutdown`]). Handles of closed
    /// sockets are pruned once the list has doubled since the last pruning,
    /// so that making n sockets costs O(n), not O(n²) (libzmq's
    /// test_many_sockets makes 131,072 and took ~57 s with a pruning at
    /// every socket).
    pub fn register(&self, core: &Arc<SocketCore>) {
        let mut socks = self.sockets.lock();
        if socks.list.len() >= socks.prune_at {
            socks.list.retain(|w| w.strong_count() > 0);
            socks.prune_at = (2 * socks.list.len()).max(64);
        }
        socks.list.push(Arc::downgrade(core));
    }

    /// Whether connections run on the application's runtime, beside its tasks.
    pub fn on_app_runtime(&self) -> bool {
        self.app_runtime
    }

    /// Whether connections run on the application's current-thread
    /// runtime: the thread of every task that uses this context's sockets.
    pub fn drivers_share_thread(&self) -> bool {
        self.one_thread
    }

    /// Records that a closing socket dropped queued messages at its linger deadline.
    pub fn note_unflushed(&self) {
        self.unflushed.fetch_add(1, Ordering::AcqRel);
    }

    /// A listener for the last task's end, or `None` if none is left
    /// (looked at before and after listening, so no end is missed).
    fn listen_unless_idle(&self) -> Option<EventListener> {
        if self.tasks.load(Ordering::Acquire) == 0 {
            return None;
        }
        let l = self.idle.listen();
        (self.tasks.load(Ordering::Acquire) != 0).then_some(l)
    }

    fn wait_idle(&self) {
        while let Some(l) = self.listen_unless_idle() {
            l.wait();
        }
    }

    async fn idle(&self) {
        while let Some(l) = self.listen_unless_idle() {
            l.await;
        }
    }

    fn linger_result(&self) -> Result<()> {
        match self.unflushed.load(Ordering::Acquire) {
            0 => Ok(()),
            n => Err(Error::LingerExpired(n)),
        }
    }
}

impl Context {
    /// A context with one I/O thread (libzmq's default).
    pub fn new() -> Context {
        Context::with_io_threads(1)
    }

    /// A context with `n` I/O threads (at least one).
    pub fn with_io_threads(n: usize) -> Context {
        Context::builder().io_threads(n).build()
    }

    /// A builder for contexts with non-default settings.
    pub fn builder() -> ContextBuilder {
        ContextBuilder {
            io_threads: 1,
            on_thread_start: None,
            runtime: None,
        }
    }

    /// Waits until every socket of this context is closed and has flushed
    /// its queued messages (each within its linger time), like `zmq_ctx_term`.
    /// Blocks for as long as any socket of the context stays open.
    ///
    /// Returns [`Error::LingerExpired`] if some socket gave up at its linger
    /// deadline with messages still queued.
    ///
    /// On a context that runs on the application's runtime
    /// ([`ContextBuilder::runtime`]), call this from outside that runtime's
    /// threads, or use [`term_async`](Self::term_async).
    pub fn term(self) -> Result<()> {
        let shared = self.inner.shared.clone();
        drop(self);
        shared.wait_idle();
        shared.linger_result()
    }

    /// [`term`](Self::term) for async code: waits without blocking the
    /// thread, so the connections it waits for may run on the same runtime.
    pub async fn term_async(self) -> Result<()> {
        let shared = self.inner.shared.clone();
        drop(self);
        shared.idle().await;
        shared.linger_result()
    }

    /// Shuts the context down without waiting (`zmq_ctx_shutdown`): every
    /// blocked call on its sockets returns [`Error::Terminated`], and so does
    /// every later call except closing; no new sockets can be made. Queued
    /// messages still go out within each socket's linger.
    pub fn shutdown(&self) {
        let shared = &self.inner.shared;
        shared.terminated.store(true, Ordering::Release);
        let socks: Vec<_> = shared
            .sockets
            .lock()
            .list
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for s in socks {
            s.terminate();
        }
    }

    /// A new socket with the blocking API.
    ///
    /// Fails with [`Error::Terminated`] after [`shutdown`](Self::shutdown).
    pub fn socket(&self, kind: SocketType) -> Result<Socket> {
        if self.inner.shared.terminated.load(Ordering::Acquire) {
            return Err(Error::Terminated);
        }
        Ok(Socket::from_core(
            self.clone(),
            SocketCore::new(kind, self.inner.shared.clone()),
        ))
    }

    /// A new socket with the async API.
    pub fn async_socket(&self, kind: SocketType) -> Result<AsyncSocket> {
        Ok(self.socket(kind)?.into_async())
    }
}

/// Settings for a new [`Context`].
pub struct ContextBuilder {
    io_threads: usize,
    on_thread_start: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    runtime: Option<Handle>,
}

impl ContextBuilder {
    /// Number of I/O threads (default 1, libzmq's default).
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n.max(1);
        self
    }

    /// Runs `f` at the start of every I/O thread. The C ABI uses it to block
    /// signals there, as libzmq does, so they reach the application's threads.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_thread_start = Some(std::sync::Arc::new(f));
        self
    }

    /// Runs the context's connections on `handle`'s tokio runtime (which
    /// must have I/O and time enabled) instead of I/O threads of its own.
    ///
    /// For async sockets on a current-thread runtime this saves a thread
    /// hop per message: a connection's task and the task awaiting its
    /// messages run on one thread, as everything does there. Blocking
    /// calls on such a context must come from other threads (a blocked
    /// runtime thread would hold up the connections it waits for), and
    /// dropping it does not wait for unsent messages: use
    /// [`Context::term_async`] for that. `io_threads` and
    /// `on_thread_start` do not apply: the threads are the runtime's.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Starts the context's I/O threads (or takes the given runtime).
    pub fn build(self) -> Context {
        if let Some(handle) = self.runtime {
            return Context::on(None, handle);
        }
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(self.io_threads)
            .thread_name("ferromq-io")
            .enable_io()
            .enable_time();
        if let Some(f) = self.on_thread_start {
            b.on_thread_start(move || f());
        }
        let rt = b.build().expect("failed to start the I/O runtime");
        let handle = rt.handle().clone();
        Context::on(Some(rt), handle)
    }
}

impl Context {
    fn on(rt: Option<Runtime>, handle: Handle) -> Context {
        let shared = Arc::new(Shared {
            tasks: AtomicUsize::new(0),
            idle: Event::new(),
            unflushed: AtomicUsize::new(0),
            sockets: Mutex::new(Sockets {
                list: Vec::new(),
                prune_at: 64,
            }),
            terminated: AtomicBool::new(false),
            inproc: Mutex::new(Default::default()),
            app_runtime: rt.is_none(),
            one_thread: rt.is_none()
                && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread,
            handle,
        });
        Context {
            inner: Arc::new(ContextInner { rt, shared }),
        }
    }
}

impl std::fmt::Debug for ContextBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextBuilder")
            .field("io_threads", &self.io_threads)
            .field("runtime", &self.runtime.is_some())
            .finish()
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("tasks", &self.inner.shared.tasks.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for ContextInner {
    fn drop(&mut self) {
        // Every socket is closed by now (each holds the context); wait for
        // their drivers to flush within linger, then stop the I/O threads
        // without blocking, so this works inside an async runtime too. On
        // the application's runtime the drivers finish there, unwaited.
        if let Some(rt) = self.rt.take() {
            self.shared.wait_idle();
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles of closed sockets are pruned in batches (see
    /// `Shared::register`): the list stays within about twice the live
    /// sockets, and `shutdown` still reaches every live one.
    #[test]
    fn closed_sockets_are_pruned_and_live_ones_still_shut_down() {
        let ctx = Context::new();
        let mut live = Vec::new();
        for i in 0..5_000 {
            let s = ctx.socket(SocketType::Pair).unwrap();
            if i % 10 == 0 {
                live.push(s);
            }
        }
        let listed = ctx.inner.shared.sockets.lock().list.len();
        assert!(
            listed <= 2 * live.len() + 64,
            "{listed} handles kept for {} live sockets",
            live.len()
        );
        ctx.shutdown();
        for s in &live {
            s.set_rcvtimeo(Some(std::time::Duration::from_secs(5)));
            assert!(matches!(s.recv(), Err(Error::Terminated)));
        }
    }
}
