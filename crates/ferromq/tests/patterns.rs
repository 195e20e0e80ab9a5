//! Messaging patterns over tcp, each scenario run through both front ends.
//!
//! A scenario is one `async fn` generic over [`Api`]; `both_apis!` turns it
//! into `<scenario>::blocking` and `<scenario>::async_api` tests. For the
//! blocking [`Socket`] the "futures" of [`Sock`] make the blocking call when
//! polled and are ready at once, concurrent parties are threads and the
//! scenario runs on a tiny executor; for [`AsyncSocket`] they are tokio tasks.
//!
//! Nothing sleeps and hopes: parties synchronise on messages, the few waits
//! for something invisible poll a condition against a deadline, and every
//! socket has send/receive timeouts so a broken test fails instead of hanging.

use std::future::Future;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::sync::Arc;
use std::task::{Poll, Wake};
use std::time::{Duration, Instant};

use ferromq::{
    AsyncSocket, Bytes, Context, Error, Frame, Message, SendError, Socket, SocketType,
    DEFAULT_LINGER,
};
use SocketType::{Dealer, Pair, Pull, Push, Rep, Req, Router};

/// Send/receive timeout of every socket, and the deadline of every wait.
const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The two APIs behind one interface.

/// What a scenario needs of a socket; implemented by both front ends.
trait Sock: Clone + Send + Sync + 'static {
    fn open(ctx: &Context, kind: SocketType) -> Self;
    /// The same socket through the blocking API, for options and endpoints
    /// (the methods that never wait are the same in both APIs).
    fn sync(&self) -> Socket;
    fn send(
        &self,
        m: impl Into<Message>,
    ) -> impl Future<Output = Result<(), SendError>> + Send + '_;
    fn recv(&self) -> impl Future<Output = ferromq::Result<Message>> + Send + '_;

    /// Binds an ephemeral port on localhost; returns the endpoint.
    fn bind_any(&self) -> String {
        let s = self.sync();
        s.bind("tcp://127.0.0.1:*").unwrap();
        s.last_endpoint()
    }

    fn link(&self, endpoint: &str) {
        self.sync().connect(endpoint).unwrap();
    }
}

impl Sock for Socket {
    fn open(ctx: &Context, kind: SocketType) -> Self {
        ctx.socket(kind).unwrap()
    }
    fn sync(&self) -> Socket {
        self.clone()
    }
    fn send(
        &self,
        m: impl Into<Message>,
    ) -> impl Future<Output = Result<(), SendError>> + Send + '_ {
        let m = m.into();
        async move { Socket::send(self, m) }
    }
    async fn recv(&self) -> ferromq::Result<Message> {
        Socket::recv(self)
    }
}

impl Sock for AsyncSocket {
    fn open(ctx: &Context, kind: SocketType) -> Self {
        ctx.async_socket(kind).unwrap()
    }
    fn sync(&self) -> Socket {
        self.clone().into_blocking()
    }
    fn send(
        &self,
        m: impl Into<Message>,
    ) -> impl Future<Output = Result<(), SendError>> + Send + '_ {
        AsyncSocket::send(self, m.into())
    }
    fn recv(&self) -> impl Future<Output = ferromq::Result<Message>> + Send + '_ {
        AsyncSocket::recv(self)
    }
}

/// How a scenario runs concurrent parties and waits.
trait Api: 'static {
    type S: Sock;
    fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Task<T>;
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
}

struct Blocking;
struct Async;

impl Api for Blocking {
    type S = Socket;
    fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Task<T> {
        Task::Thread(std::thread::spawn(move || block_on(f)))
    }
    async fn sleep(d: Duration) {
        std::thread::sleep(d);
    }
}

impl Api for Async {
    type S = AsyncSocket;
    fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Task<T> {
        Task::Tokio(tokio::spawn(f))
    }
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

enum Task<T> {
    Thread(std::thread::JoinHandle<T>),
    Tokio(tokio::task::JoinHandle<T>),
}

impl<T> Task<T> {
    /// The party's result; its panic, if it panicked.
    async fn join(self) -> T {
        match self {
            Task::Thread(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Task::Tokio(h) => h
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        }
    }
}

/// Runs a blocking-API scenario on this thread (its futures never pend).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Generates `<scenario>::blocking` and `<scenario>::async_api` for each scenario.
macro_rules! both_apis {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn blocking() {
                super::block_on(super::$name::<super::Blocking>());
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_api() {
                super::$name::<super::Async>().await;
            }
        }
    )*};
}

both_apis!(
    pair,
    req_rep,
    req_router,
    dealer_rep,
    dealer_router,
    push_pull,
    dealer_dealer,
    connect_before_bind,
    peer_restart,
    hwm_push_blocks,
    router_unknown_peer,
    router_full_peer_drops,
    linger_flush,
    linger_before_peer_exists,
    multipart_atomic,
    large_message_backlog,
    frames_of_every_size_in_one_stream,
    a_sender_on_a_full_queue_keeps_going,
    round_robin,
    fair_queue,
    shared_socket,
    state_errors,
);

// ---------------------------------------------------------------------------
// Helpers.

/// A socket with timeouts (so failures fail) and quick reconnects (so tests are fast).
fn sock<S: Sock>(ctx: &Context, kind: SocketType) -> S {
    let s = S::open(ctx, kind);
    let b = s.sync();
    b.set_rcvtimeo(Some(TIMEOUT));
    b.set_sndtimeo(Some(TIMEOUT));
    b.set_reconnect_ivl(Some(Duration::from_millis(20)));
    // Short, so a failed test with messages stuck in a queue does not wait
    // the default 30 s at cleanup. Tests of lingering set the default back.
    b.set_linger(Some(Duration::from_secs(2)));
    s
}

/// A PUSH with the default linger, connected to `endpoint`.
fn lingering_push<S: Sock>(ctx: &Context, endpoint: &str) -> S {
    let push: S = sock(ctx, Push);
    push.sync().set_linger(Some(DEFAULT_LINGER));
    push.link(endpoint);
    push
}

/// A `server` bound to an ephemeral port and a `client` connected to it.
fn connected<S: Sock>(ctx: &Context, server: SocketType, client: SocketType) -> (S, S) {
    let srv: S = sock(ctx, server);
    let cli: S = sock(ctx, client);
    cli.link(&srv.bind_any());
    (srv, cli)
}

fn msg<I: IntoIterator>(frames: I) -> Message
where
    I::Item: Into<Frame>,
{
    frames.into_iter().collect()
}

fn texts(m: &Message) -> Vec<String> {
    m.iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn num(frame: &[u8]) -> usize {
    std::str::from_utf8(frame).unwrap().parse().unwrap()
}

/// Receives message `i` of `n`; a failure says which.
async fn recv_nth<S: Sock>(s: &S, i: usize, n: usize) -> Message {
    s.recv()
        .await
        .unwrap_or_else(|e| panic!("message {i} of {n}: {e}"))
}

/// Receives one message and checks its frames.
async fn expect<S: Sock>(s: &S, frames: &[&str]) {
    let m = s
        .recv()
        .await
        .unwrap_or_else(|e| panic!("waiting for {frames:?}: {e}"));
    assert_eq!(texts(&m), frames);
}

fn assert_err(e: &Error, want: fn(&Error) -> bool, what: &str) {
    assert!(want(e), "expected {what}, got {e:?}");
}

/// Ports nobody listens on (found by binding port 0; all kept until all are chosen).
fn free_endpoints(n: usize) -> Vec<(u16, String)> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter()
        .map(|l| {
            let p = l.local_addr().unwrap().port();
            (p, format!("tcp://127.0.0.1:{p}"))
        })
        .collect()
}

/// Polls `f` until it yields a value, failing at the deadline.
async fn poll_until<A: Api, T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        A::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until a client of `port` (whose server just went away) connects
/// again, by accepting its TCP connection on a plain listener and closing it.
///
/// Once that happens the client has noticed its old connection is gone, so a
/// message it is given from now on waits for the next handshake instead of
/// being written into the dead connection (where TCP, in any ZeroMQ, loses it).
fn wait_for_reconnect(port: u16) {
    let deadline = Instant::now() + TIMEOUT;
    let listener = loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("rebinding port {port}: {e}"),
        }
    };
    listener.set_nonblocking(true).unwrap();
    loop {
        match listener.accept() {
            Ok(_) => return,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no reconnect to port {port}");
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Basic exchanges of every socket type.

async fn pair<A: Api>() {
    let ctx = Context::new();
    let (a, b) = connected::<A::S>(&ctx, Pair, Pair);
    b.send(["hello", "", "world"]).await.unwrap();
    expect(&a, &["hello", "", "world"]).await;
    a.send("back").await.unwrap();
    expect(&b, &["back"]).await;
}

async fn req_rep<A: Api>() {
    let ctx = Context::new();
    let (rep, req) = connected::<A::S>(&ctx, Rep, Req);
    for i in 0..5 {
        let (q, r) = (format!("q{i}"), format!("r{i}"));
        req.send(msg([q.clone(), "more".into()])).await.unwrap();
        expect(&rep, &[&q, "more"]).await;
        rep.send(r.clone()).await.unwrap();
        expect(&req, &[&r]).await;
    }
}

async fn req_router<A: Api>() {
    let ctx = Context::new();
    let router: A::S = sock(&ctx, Router);
    let req: A::S = sock(&ctx, Req);
    req.sync().set_routing_id("client-1").unwrap();
    req.link(&router.bind_any());
    for _ in 0..3 {
        req.send("hello").await.unwrap();
        expect(&router, &["client-1", "", "hello"]).await;
        router.send(["client-1", "", "world"]).await.unwrap();
        expect(&req, &["world"]).await;
    }
}

async fn dealer_rep<A: Api>() {
    let ctx = Context::new();
    let (rep, dealer) = connected::<A::S>(&ctx, Rep, Dealer);
    dealer.send(["", "hello"]).await.unwrap();
    expect(&rep, &["hello"]).await;
    rep.send("world").await.unwrap();
    expect(&dealer, &["", "world"]).await;
    // A longer envelope comes back whole.
    dealer.send(["hop", "", "again"]).await.unwrap();
    expect(&rep, &["again"]).await;
    rep.send(["two", "parts"]).await.unwrap();
    expect(&dealer, &["hop", "", "two", "parts"]).await;
}

async fn dealer_router<A: Api>() {
    let ctx = Context::new();
    let router: A::S = sock(&ctx, Router);
    let ep = router.bind_any();
    let named: A::S = sock(&ctx, Dealer);
    named.sync().set_routing_id("d1").unwrap();
    named.link(&ep);
    let anon: A::S = sock(&ctx, Dealer);
    anon.link(&ep);

    named.send(["a", "b"]).await.unwrap();
    expect(&router, &["d1", "a", "b"]).await;
    anon.send("x").await.unwrap();
    let m = router.recv().await.unwrap();
    assert_eq!(m.len(), 2, "{m:?}");
    let anon_id = m[0].clone();
    assert!(
        !anon_id.is_empty() && anon_id != "d1",
        "generated id {anon_id:?}"
    );
    assert_eq!(m[1], "x");

    router.send(["d1", "to named"]).await.unwrap();
    router
        .send(msg([anon_id, Frame::from("to anon")]))
        .await
        .unwrap();
    expect(&named, &["to named"]).await;
    expect(&anon, &["to anon"]).await;
}

async fn push_pull<A: Api>() {
    let ctx = Context::new();
    let (pull, push) = connected::<A::S>(&ctx, Pull, Push);
    for i in 0..100 {
        push.send(i.to_string()).await.unwrap();
    }
    for i in 0..100 {
        expect(&pull, &[&i.to_string()]).await;
    }
}

async fn dealer_dealer<A: Api>() {
    let ctx = Context::new();
    let (a, b) = connected::<A::S>(&ctx, Dealer, Dealer);
    b.send(["1", "2", "3"]).await.unwrap();
    expect(&a, &["1", "2", "3"]).await;
    a.send("reply").await.unwrap();
    expect(&b, &["reply"]).await;
}

// ---------------------------------------------------------------------------
// Connections coming and going.

/// Clients connect and send before anything listens; it all arrives after bind.
async fn connect_before_bind<A: Api>() {
    let ctx = Context::new();
    let eps = free_endpoints(2);
    let push: A::S = sock(&ctx, Push);
    push.link(&eps[0].1);
    let req: A::S = sock(&ctx, Req);
    req.link(&eps[1].1);
    for i in 0..10 {
        push.send(i.to_string()).await.unwrap();
    }
    req.send("early request").await.unwrap();

    let pull: A::S = sock(&ctx, Pull);
    pull.sync().bind(&eps[0].1).unwrap();
    let rep: A::S = sock(&ctx, Rep);
    rep.sync().bind(&eps[1].1).unwrap();
    for i in 0..10 {
        expect(&pull, &[&i.to_string()]).await;
    }
    expect(&rep, &["early request"]).await;
    rep.send("late reply").await.unwrap();
    expect(&req, &["late reply"]).await;
}

/// The server (sockets and context) goes away and a new one binds the same
/// ports; the same REQ and PUSH carry on through the reconnection.
async fn peer_restart<A: Api>() {
    let ctx = Context::new();
    let eps = free_endpoints(2);
    let req: A::S = sock(&ctx, Req);
    req.link(&eps[0].1);
    let push: A::S = sock(&ctx, Push);
    push.link(&eps[1].1);
    for generation in 0..3 {
        if generation > 0 {
            for (port, _) in &eps {
                wait_for_reconnect(*port);
            }
        }
        let server_ctx = Context::new();
        let rep: A::S = sock(&server_ctx, Rep);
        rep.sync().bind(&eps[0].1).unwrap();
        let pull: A::S = sock(&server_ctx, Pull);
        pull.sync().bind(&eps[1].1).unwrap();

        let tag = format!("generation {generation}");
        req.send(tag.clone()).await.unwrap();
        expect(&rep, &[&tag]).await;
        rep.send(tag.clone()).await.unwrap();
        expect(&req, &[&tag]).await;
        push.send(tag.clone()).await.unwrap();
        expect(&pull, &[&tag]).await;
        // Dropping the context waits for its sockets to close.
        drop((rep, pull, server_ctx));
    }
}

// ---------------------------------------------------------------------------
// High-water marks: PUSH waits, ROUTER drops.

async fn hwm_push_blocks<A: Api>() {
    let ctx = Context::new();
    let push: A::S = sock(&ctx, Push);
    let p = push.sync();
    let e = p.try_send("no peer at all").unwrap_err();
    assert_err(&e.error, |e| matches!(e, Error::WouldBlock), "WouldBlock");

    p.set_sndhwm(5);
    let (_, ep) = free_endpoints(1).remove(0);
    push.link(&ep);
    for i in 0..5 {
        p.try_send(i.to_string()).unwrap();
    }
    let e = p.try_send("over").unwrap_err();
    assert_err(&e.error, |e| matches!(e, Error::WouldBlock), "WouldBlock");
    assert_eq!(texts(&e.message), ["over"], "the message comes back");

    let wait = Duration::from_millis(300);
    p.set_sndtimeo(Some(wait));
    let t0 = Instant::now();
    let e = push.send("late").await.unwrap_err();
    let waited = t0.elapsed();
    assert_err(&e.error, |e| matches!(e, Error::WouldBlock), "WouldBlock");
    assert_eq!(texts(&e.message), ["late"]);
    assert!(
        waited >= wait - Duration::from_millis(5) && waited < wait + Duration::from_secs(2),
        "send gave up after {waited:?}, timeout {wait:?}"
    );

    // Once a peer shows up the queue drains and there is room again.
    let pull: A::S = sock(&ctx, Pull);
    pull.sync().bind(&ep).unwrap();
    p.set_sndtimeo(Some(TIMEOUT));
    push.send("after").await.unwrap();
    for i in 0..5 {
        expect(&pull, &[&i.to_string()]).await;
    }
    expect(&pull, &["after"]).await;
}

/// A ROUTER with a DEALER "d" whose hello it has received (so it knows the id).
async fn router_with_dealer<A: Api>(
    ctx: &Context,
    prepare: impl Fn(&Socket, &Socket),
) -> (A::S, A::S) {
    let router: A::S = sock(ctx, Router);
    let dealer: A::S = sock(ctx, Dealer);
    dealer.sync().set_routing_id("d").unwrap();
    prepare(&router.sync(), &dealer.sync());
    dealer.link(&router.bind_any());
    dealer.send("hi").await.unwrap();
    expect(&router, &["d", "hi"]).await;
    (router, dealer)
}

async fn router_unknown_peer<A: Api>() {
    let ctx = Context::new();
    let (router, dealer) = router_with_dealer::<A>(&ctx, |_, _| {}).await;
    router.send(["nobody", "lost"]).await.unwrap();
    router.send(["d", "found"]).await.unwrap();
    expect(&dealer, &["found"]).await;

    router.sync().set_router_mandatory(true);
    let e = router.send(["nobody", "x"]).await.unwrap_err();
    assert_err(
        &e.error,
        |e| matches!(e, Error::HostUnreachable),
        "HostUnreachable",
    );
    assert_eq!(texts(&e.message), ["nobody", "x"], "the message comes back");
    router.send(["d", "still"]).await.unwrap();
    expect(&dealer, &["still"]).await;
}

/// A ROUTER sending far more than a peer that does not read can take drops
/// the excess without waiting; with `router_mandatory` it says WouldBlock.
async fn router_full_peer_drops<A: Api>() {
    const N: usize = 1000;
    let ctx = Context::new();
    let (router, dealer) = router_with_dealer::<A>(&ctx, |r, d| {
        r.set_sndhwm(1);
        d.set_rcvhwm(1);
    })
    .await;
    // 64 MiB in all, far beyond the socket buffers.
    let payload = Bytes::from(vec![7u8; 64 * 1024]);
    let t0 = Instant::now();
    for i in 0..N {
        router
            .send(msg([
                Bytes::from("d"),
                Bytes::from(i.to_string()),
                payload.clone(),
            ]))
            .await
            .unwrap();
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "ROUTER waited for a full peer"
    );

    router.sync().set_router_mandatory(true);
    // The DEALER reads nothing yet, so the pipeline stays full: a mandatory
    // ROUTER must soon refuse instead of dropping (probes it accepted while
    // the I/O thread still had room are skipped below).
    let mut refused = 0;
    for _ in 0..1_000_000 {
        match router.sync().try_send(["d", "probe"]) {
            Ok(()) => continue,
            Err(e) => {
                assert_err(&e.error, |e| matches!(e, Error::WouldBlock), "WouldBlock");
                refused += 1;
                break;
            }
        }
    }
    let (mut got, mut end_sent) = (Vec::new(), false);
    loop {
        if !end_sent {
            match router.sync().try_send(["d", "end"]) {
                Ok(()) => end_sent = true,
                Err(e) => {
                    assert_err(&e.error, |e| matches!(e, Error::WouldBlock), "WouldBlock");
                    refused += 1;
                }
            }
        }
        // While "end" is refused the peer's queue is full, so more is coming.
        let m = dealer
            .recv()
            .await
            .unwrap_or_else(|e| panic!("DEALER stalled after {} messages: {e}", got.len()));
        if m[0] == "end" {
            break;
        }
        if m[0] == "probe" {
            continue;
        }
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].len(), payload.len());
        got.push(num(&m[0]));
    }
    assert!(end_sent);
    assert!(refused > 0, "router_mandatory never reported the full peer");
    assert!(!got.is_empty());
    assert!(got.len() < N, "nothing was dropped: the peer took all {N}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
}

// ---------------------------------------------------------------------------
// Linger: a closed socket still delivers what it queued.

async fn linger_flush<A: Api>() {
    let ctx = Context::new();
    let pull: A::S = sock(&ctx, Pull);
    let push: A::S = lingering_push(&ctx, &pull.bind_any());
    let filler = "x".repeat(100);
    for i in 0..1000 {
        push.send(msg([i.to_string(), filler.clone()]))
            .await
            .unwrap();
    }
    drop(push);
    for i in 0..1000 {
        expect(&pull, &[&i.to_string(), &filler]).await;
    }
}

/// The PUSH is closed before its peer even exists; it keeps connecting while
/// it lingers, and dropping its context returns once everything is sent.
async fn linger_before_peer_exists<A: Api>() {
    let (_, ep) = free_endpoints(1).remove(0);
    let sender_ctx = Context::new();
    let push: A::S = lingering_push(&sender_ctx, &ep);
    for i in 0..1000 {
        push.send(i.to_string()).await.unwrap();
    }
    drop(push);

    let ctx = Context::new();
    let pull: A::S = sock(&ctx, Pull);
    pull.sync().bind(&ep).unwrap();
    drop(sender_ctx);
    for i in 0..1000 {
        expect(&pull, &[&i.to_string()]).await;
    }
}

// ---------------------------------------------------------------------------
// Many peers.

/// Big multipart messages from several senders at once arrive whole and unmixed.
async fn multipart_atomic<A: Api>() {
    const SENDERS: usize = 4;
    const EACH: usize = 60;
    let filler = |s: usize, i: usize| vec![b'a' + s as u8; (i % 4) * 30_000];
    let ctx = Context::new();
    let pull: A::S = sock(&ctx, Pull);
    let ep = pull.bind_any();
    let senders: Vec<Task<A::S>> = (0..SENDERS)
        .map(|s| {
            let push: A::S = sock(&ctx, Push);
            push.link(&ep);
            A::spawn(async move {
                for i in 0..EACH {
                    let frames = [
                        Bytes::from(s.to_string()),
                        Bytes::from(i.to_string()),
                        Bytes::from(filler(s, i)),
                        Bytes::new(),
                        Bytes::from(format!("end {s} {i}")),
                    ];
                    push.send(msg(frames)).await.unwrap();
                }
                push
            })
        })
        .collect();
    let mut next = [0; SENDERS];
    for _ in 0..SENDERS * EACH {
        let m = pull.recv().await.unwrap();
        let sizes: Vec<usize> = m.iter().map(|f| f.len()).collect();
        assert_eq!(m.len(), 5, "frames lost or mixed, sizes {sizes:?}");
        let (s, i) = (num(&m[0]), num(&m[1]));
        assert_eq!(i, next[s], "sender {s} out of order");
        next[s] += 1;
        assert!(
            m[2] == filler(s, i) && m[3].is_empty(),
            "mixed frames, sizes {sizes:?}"
        );
        assert_eq!(m[4], format!("end {s} {i}"));
    }
    for t in senders {
        t.join().await;
    }
}

/// A backlog far larger than the socket buffers, queued before the receiver
/// reads (it takes little at a time), drains completely and in order.
async fn large_message_backlog<A: Api>() {
    const N: usize = 256;
    let ctx = Context::new();
    let pull: A::S = sock(&ctx, Pull);
    pull.sync().set_rcvhwm(4);
    let push: A::S = sock(&ctx, Push);
    push.link(&pull.bind_any());
    let payload = Bytes::from(vec![b'p'; 64 * 1024]);
    for i in 0..N {
        push.send(msg([Bytes::from(i.to_string()), payload.clone()]))
            .await
            .unwrap();
    }
    for i in 0..N {
        let m = recv_nth(&pull, i, N).await;
        assert_eq!(num(&m[0]), i);
        assert!(m[1] == payload, "message {i} corrupted");
    }
}

/// A sender that keeps its queue full while the connection drains it is
/// woken each time the queue falls to its low-water mark: every message
/// arrives, none is stuck behind a sender that waits for a wake that never
/// comes (a missed wake shows as a send timing out).
async fn a_sender_on_a_full_queue_keeps_going<A: Api>() {
    // Default HWMs: the connection takes queued messages in chunks, so the
    // sender refills the queue while a chunk is encoded.
    // Each its own context (its own I/O thread), as two processes would be.
    const N: usize = 300_000;
    let ctx = Context::new();
    let pull: A::S = sock(&ctx, Pull);
    let push: A::S = sock(&Context::new(), Push);
    push.link(&pull.bind_any());
    let sender = A::spawn(async move {
        for i in 0..N {
            push.send(i.to_string())
                .await
                .unwrap_or_else(|e| panic!("send {i} of {N}: {e}"));
        }
        push
    });
    for i in 0..N {
        let m = recv_nth(&pull, i, N).await;
        assert_eq!(num(&m[0]), i);
    }
    drop(sender.join().await);
}

/// Frames around the receive buffer's chunk (64 KiB), far above it and
/// tiny, one after another in one stream (so reads end mid-frame, at frame
/// ends and inside headers), arrive whole, in order and unaltered.
async fn frames_of_every_size_in_one_stream<A: Api>() {
    const SIZES: [usize; 12] = [
        65_527,
        1,
        65_536,
        65_545,
        0,
        3 << 20,
        2,
        1 << 20,
        (1 << 20) + 1,
        70_000,
        200_000,
        64 << 10,
    ];
    let ctx = Context::new();
    let pull: A::S = sock(&ctx, Pull);
    let push: A::S = sock(&ctx, Push);
    push.link(&pull.bind_any());
    let body = |round: usize, k: usize| -> Bytes {
        (0..SIZES[k])
            .map(|j| (j.wrapping_mul(31) ^ (round * 7 + k)) as u8)
            .collect::<Vec<u8>>()
            .into()
    };
    for round in 0..3 {
        for k in 0..SIZES.len() {
            push.send(msg([Bytes::from(format!("{round} {k}")), body(round, k)]))
                .await
                .unwrap();
        }
    }
    for round in 0..3 {
        for (k, &size) in SIZES.iter().enumerate() {
            let m = pull.recv().await.unwrap();
            assert_eq!(m[0], format!("{round} {k}"), "out of order");
            assert_eq!(m[1].len(), size, "frame {k} of round {round}: size");
            assert!(m[1] == body(round, k), "frame {k} of round {round} altered");
        }
    }
}

/// One PUSH, three PULLs: once all are connected, messages go round in turn.
async fn round_robin<A: Api>() {
    let ctx = Context::new();
    let push: A::S = sock(&ctx, Push);
    let ep = push.bind_any();
    let pulls: Vec<A::S> = (0..3)
        .map(|_| {
            let p: A::S = sock(&ctx, Pull);
            p.link(&ep);
            p
        })
        .collect();
    // Warm up, one message at a time, until each PULL has had one: the PUSH
    // only sends to connected peers, so all three are connected then.
    let mut seen = [false; 3];
    while seen.contains(&false) {
        push.send("warm-up").await.unwrap();
        let k = poll_until::<A, _>("a warm-up message", || {
            pulls.iter().position(|p| p.sync().try_recv().is_ok())
        })
        .await;
        seen[k] = true;
    }

    for i in 0..300 {
        push.send(i.to_string()).await.unwrap();
    }
    for _ in 0..3 {
        push.send("end").await.unwrap();
    }
    for (k, p) in pulls.iter().enumerate() {
        let mut got = Vec::new();
        loop {
            let m = p.recv().await.unwrap();
            if m[0] == "end" {
                break;
            }
            got.push(num(&m[0]));
        }
        assert_eq!(got.len(), 100, "PULL {k} got {got:?}");
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 3),
            "PULL {k} got {got:?}"
        );
    }
}

/// One PULL, three PUSHes with a burst each: the PULL takes from all in turn.
async fn fair_queue<A: Api>() {
    const N: usize = 1000;
    // Over inproc a send lands in the PULL's queue for that peer before it
    // returns, so all three bursts wait there before the first receive (over
    // tcp, when each arrives depends on the I/O threads). Fair queueing is
    // the socket's, not the transport's.
    let ctx = Context::new();
    let pull: A::S = sock(&ctx, Pull);
    pull.sync().bind("inproc://fair-queue").unwrap();
    let senders: Vec<A::S> = (0..3).map(|_| sock(&ctx, Push)).collect();
    for (k, push) in senders.iter().enumerate() {
        push.link("inproc://fair-queue");
        for i in 0..N {
            push.send(msg([k.to_string(), i.to_string()]))
                .await
                .unwrap();
        }
    }
    let mut next = [0; 3];
    let mut order = Vec::new();
    for _ in 0..3 * N {
        let m = pull.recv().await.unwrap();
        let (k, i) = (num(&m[0]), num(&m[1]));
        assert_eq!(i, next[k], "sender {k} out of order");
        next[k] += 1;
        order.push(k);
    }
    // Runs of one sender, (sender, count), for failure messages.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &k in &order {
        match runs.last_mut() {
            Some((last, n)) if *last == k => *n += 1,
            _ => runs.push((k, 1)),
        }
    }
    // All waited from the start, so nobody ever gets two turns in a row.
    assert!(
        runs.iter().all(|&(_, n)| n == 1),
        "not in turn, runs of (sender, count): {runs:?}"
    );
}

/// One clone of a DEALER sends while another receives, against an echoing ROUTER.
async fn shared_socket<A: Api>() {
    const N: usize = 2000;
    let ctx = Context::new();
    let (router, dealer) = connected::<A::S>(&ctx, Router, Dealer);
    // Mandatory: the echo waits for room instead of dropping at the HWM when
    // it runs ahead of the I/O thread.
    router.sync().set_router_mandatory(true);
    let echo = A::spawn(async move {
        for _ in 0..N {
            let m = router.recv().await.unwrap();
            router.send(m).await.unwrap();
        }
    });
    let tx = dealer.clone();
    let sender = A::spawn(async move {
        for i in 0..N {
            tx.send(i.to_string()).await.unwrap();
        }
    });
    let rx = dealer.clone();
    let receiver = A::spawn(async move {
        for i in 0..N {
            expect(&rx, &[&i.to_string()]).await;
        }
    });
    sender.join().await;
    receiver.join().await;
    echo.join().await;
}

// ---------------------------------------------------------------------------
// Errors.

async fn state_errors<A: Api>() {
    let ctx = Context::new();
    let (rep, req) = connected::<A::S>(&ctx, Rep, Req);
    let is_state = |e: &Error| matches!(e, Error::State);
    assert_err(
        &req.recv().await.unwrap_err(),
        is_state,
        "State (REQ recv before send)",
    );
    let e = rep.send("unasked").await.unwrap_err();
    assert_err(&e.error, is_state, "State (REP send before recv)");

    req.send("one").await.unwrap();
    let e = req.send("two").await.unwrap_err();
    assert_err(&e.error, is_state, "State (REQ send twice)");
    assert_eq!(texts(&e.message), ["two"], "the message comes back");
    expect(&rep, &["one"]).await;
    assert_err(
        &rep.recv().await.unwrap_err(),
        is_state,
        "State (REP recv twice)",
    );
    rep.send("r1").await.unwrap();
    expect(&req, &["r1"]).await;
    // Back in step after the reply.
    req.send("two").await.unwrap();
    expect(&rep, &["two"]).await;

    let unsupported = |e: &Error| matches!(e, Error::NotSupported);
    let push: A::S = sock(&ctx, Push);
    assert_err(
        &push.recv().await.unwrap_err(),
        unsupported,
        "NotSupported (PUSH recv)",
    );
    assert_err(
        &push.sync().try_recv().unwrap_err(),
        unsupported,
        "NotSupported",
    );
    let pull: A::S = sock(&ctx, Pull);
    let e = pull.send("x").await.unwrap_err();
    assert_err(&e.error, unsupported, "NotSupported (PULL send)");
}

// ---------------------------------------------------------------------------
// Cancel safety of the async API.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_recv_loses_nothing() {
    let ctx = Context::new();
    let (pull, push) = connected::<AsyncSocket>(&ctx, Pull, Push);
    for i in 0..20 {
        let r = tokio::time::timeout(Duration::from_millis(5), pull.recv()).await;
        assert!(r.is_err(), "nothing was sent yet: {r:?}");
        push.send(i.to_string()).await.unwrap();
        expect(&pull, &[&i.to_string()]).await;
    }

    // A receiver that registered for a wake-up and is dropped must not take
    // the wake-up of a message with it: the other receiver still gets it.
    let mut first = Box::pin(pull.recv());
    tokio::select! {
        biased;
        r = &mut first => panic!("nothing was sent yet: {r:?}"),
        () = std::future::ready(()) => {}
    }
    let other = {
        let pull = pull.clone();
        tokio::spawn(async move { pull.recv().await })
    };
    push.send("handed on").await.unwrap();
    drop(first);
    let m = other.await.unwrap().unwrap();
    assert_eq!(texts(&m), ["handed on"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_with_timer_loses_nothing() {
    const N: usize = 5000;
    let ctx = Context::new();
    let (pull, push) = connected::<AsyncSocket>(&ctx, Pull, Push);
    let sender = tokio::spawn(async move {
        for i in 0..N {
            push.send(i.to_string()).await.unwrap();
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        push
    });
    let deadline = Instant::now() + TIMEOUT;
    let mut next = 0;
    while next < N {
        tokio::select! {
            m = pull.recv() => {
                assert_eq!(texts(&m.unwrap()), [next.to_string()]);
                next += 1;
            }
            () = tokio::time::sleep(Duration::from_micros(100)) => {}
        }
        assert!(Instant::now() < deadline, "stuck after {next} messages");
    }
    let _push = sender.await.unwrap();
    let r = pull.try_recv();
    assert!(matches!(r, Err(Error::WouldBlock)), "extra message: {r:?}");
}

/// A send cancelled while waiting for room queues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_send_queues_nothing() {
    let ctx = Context::new();
    let (_, ep) = free_endpoints(1).remove(0);
    let push: AsyncSocket = sock(&ctx, Push);
    push.set_sndhwm(1);
    push.link(&ep);
    push.send("first").await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(50), push.send("cancelled")).await;
    assert!(r.is_err(), "the queue was full: {r:?}");

    let pull: AsyncSocket = sock(&ctx, Pull);
    pull.bind(&ep).unwrap();
    push.send("third").await.unwrap();
    expect(&pull, &["first"]).await;
    expect(&pull, &["third"]).await;
}
