//! An async receive on a socket with one tcp or ipc peer, whose context runs
//! its connections on the application's current-thread runtime, reads the
//! connection itself when the reactor finds it readable, rather than
//! waiting for the connection's task to hand the input over. What a user
//! sees must be the same as without that shortcut: every message once and
//! in order, timeouts, cancelled receives, disconnects and shutdown as
//! before.

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferromq::monitor::{self, Event};
use ferromq::{AsyncSocket, Context, Error, Message, SocketType};
use tokio::runtime::Handle;
use tokio::time::timeout;

mod common;
use common::{varied_payload as payload, WAIT};

fn endpoints(name: &str) -> [String; 2] {
    common::tcp_and_ipc(&format!("direct-async-{name}"))
}

/// A socket of a context on this runtime (the connections' tasks share the
/// test's thread), giving up after [`WAIT`] and dropping what it queues at
/// close.
fn sock(ctx: &Context, kind: SocketType) -> AsyncSocket {
    let s = ctx.async_socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_sndtimeo(Some(WAIT));
    s.set_linger(Some(Duration::ZERO));
    s
}

fn here() -> Context {
    Context::builder().runtime(Handle::current()).build()
}

/// Connects `client` to `server` and waits until the server has heard from
/// it: the connection is up, and the client has sent since its last input,
/// so its next receive reads the connection itself.
async fn join(client: &AsyncSocket, server: &AsyncSocket, ep: &str) {
    client.connect(ep).unwrap();
    client.send(b"hello".to_vec()).await.unwrap();
    server.recv().await.unwrap();
}

/// A ROUTER's message to the peer with routing id `c`.
fn to_c(body: &'static [u8]) -> Message {
    Message::from(vec![Bytes::from_static(b"c"), Bytes::from_static(body)])
}

/// A strict request/reply exchange over tcp and ipc with both sides on the
/// test's thread: every reply is the one to its request, whole, with
/// multipart bodies of up to 300 KB.
#[tokio::test(flavor = "current_thread")]
async fn async_round_trips_are_exact() {
    for ep in endpoints("reqrep") {
        let ctx = here();
        let rep = sock(&ctx, SocketType::Rep);
        rep.bind(&ep).unwrap();
        let ep = rep.last_endpoint();
        let req = sock(&ctx, SocketType::Req);
        req.connect(&ep).unwrap();
        let server = async {
            for _ in 0..1000 {
                let mut m = rep.recv().await.unwrap();
                m.push(b"reply".to_vec());
                rep.send(m).await.unwrap();
            }
        };
        let client = async {
            for i in 0u32..1000 {
                let mut m = Message::new();
                m.push(i.to_be_bytes().to_vec());
                m.push(payload(i));
                req.send(m).await.unwrap();
                let r = req.recv().await.unwrap();
                assert_eq!(r.len(), 3, "request frames and the reply's over {ep}");
                assert_eq!(&r[0][..], &i.to_be_bytes(), "reply {i} to request {i}");
                assert_eq!(&r[1][..], &payload(i)[..], "reply {i} intact");
                assert_eq!(&r[2][..], b"reply");
            }
        };
        timeout(WAIT, async { tokio::join!(server, client) })
            .await
            .expect("the round trips finish");
    }
}

/// A receive timeout holds while the receive waits on the connection (not
/// early, not forever), and the connection still delivers afterwards.
#[tokio::test(flavor = "current_thread")]
async fn an_async_receive_timeout_holds() {
    for ep in endpoints("timeout") {
        let ctx = here();
        let server = sock(&ctx, SocketType::Router);
        server.bind(&ep).unwrap();
        let ep = server.last_endpoint();
        let client = sock(&ctx, SocketType::Dealer);
        client.set_routing_id(b"c".to_vec()).unwrap();
        join(&client, &server, &ep).await;
        client.set_rcvtimeo(Some(Duration::from_millis(200)));
        let start = Instant::now();
        assert!(matches!(client.recv().await, Err(Error::WouldBlock)));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
            "waited {waited:?} over {ep}"
        );
        client.set_rcvtimeo(Some(WAIT));
        server.send(to_c(b"later")).await.unwrap();
        assert_eq!(&client.recv().await.unwrap()[0][..], b"later", "over {ep}");
    }
}

/// Receives dropped while they wait on the connection (as a `select!` or a
/// timeout drops them) lose nothing: what arrives meanwhile and after is
/// received by later receives, once and in order.
#[tokio::test(flavor = "current_thread")]
async fn cancelled_async_receives_lose_nothing() {
    for ep in endpoints("cancel") {
        let ctx = here();
        let server = sock(&ctx, SocketType::Router);
        server.bind(&ep).unwrap();
        let ep = server.last_endpoint();
        let client = sock(&ctx, SocketType::Dealer);
        client.set_routing_id(b"c".to_vec()).unwrap();
        join(&client, &server, &ep).await;
        let mut got = Vec::new();
        for round in 0u32..20 {
            // Waits on the connection, then is dropped.
            let r = timeout(Duration::from_millis(2), client.recv()).await;
            if let Ok(m) = r {
                got.push(m.unwrap());
            }
            server.send(to_c(b"x")).await.unwrap();
            // The client has sent since its input: the next receive reads
            // directly again.
            client.send(round.to_be_bytes().to_vec()).await.unwrap();
            let m = server.recv().await.unwrap();
            assert_eq!(&m[1][..], &round.to_be_bytes());
        }
        // Dropped with the input readable and unread: the send below puts
        // it in the client's kernel buffer (loopback delivers at once)
        // while the receive, polled first, waits on the connection.
        for _ in 0..20 {
            let mut waiting = std::pin::pin!(client.recv());
            let first = std::future::poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx))).await;
            if let Poll::Ready(m) = first {
                got.push(m.unwrap());
            }
            server.send(to_c(b"x")).await.unwrap();
        }
        while got.len() < 40 {
            got.push(client.recv().await.expect("every message arrives"));
        }
        assert!(got.iter().all(|m| &m[0][..] == b"x"), "over {ep}");
        client.set_rcvtimeo(Some(Duration::from_millis(50)));
        assert!(
            matches!(client.recv().await, Err(Error::WouldBlock)),
            "each message once over {ep}"
        );
    }
}

/// A receive left pending and never polled again, after it began to wait
/// on the connection, does not hold the input up: the connection's task
/// leaves the input to it for a moment only, then reads it, and another
/// receive gets it.
#[tokio::test(flavor = "current_thread")]
async fn a_receive_left_pending_holds_nothing_up() {
    for ep in endpoints("pending") {
        let ctx = here();
        let server = sock(&ctx, SocketType::Router);
        server.bind(&ep).unwrap();
        let ep = server.last_endpoint();
        let client = sock(&ctx, SocketType::Dealer);
        client.set_routing_id(b"c".to_vec()).unwrap();
        join(&client, &server, &ep).await;
        let mut left = std::pin::pin!(client.recv());
        let first = std::future::poll_fn(|cx| Poll::Ready(left.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "nothing to receive yet over {ep}");
        server.send(to_c(b"for another")).await.unwrap();
        let got = client.recv().await.expect("the other receive gets it");
        assert_eq!(&got[0][..], b"for another", "over {ep}");
    }
}

/// The peer closes while a request's receive waits on the connection for
/// the reply: the connection's task still sees the end (the requester's
/// monitor reports it), and the receive times out as it would without
/// the shortcut. (The receive once read the end of stream itself, again
/// and again, with the task deferring to it.)
#[tokio::test(flavor = "current_thread")]
async fn a_peer_closing_while_an_async_receive_waits_is_noticed() {
    for (i, ep) in endpoints("close").into_iter().enumerate() {
        let ctx = here();
        let other = Context::new();
        let (rep, req, events, ep) = watched_pair(&ctx, &other, &ep, &format!("close-{i}"));
        req.send(b"ping".to_vec()).await.unwrap();
        rep.recv().await.unwrap();
        req.set_rcvtimeo(Some(Duration::from_secs(2)));
        let waiting = req.recv();
        let close = async {
            tokio::task::yield_now().await;
            drop(rep);
            events.recv().await
        };
        let (r, event) = timeout(WAIT, async { tokio::join!(waiting, close) })
            .await
            .expect("the receive ends");
        let event = event.expect("the requester sees its peer go while it waits");
        assert_eq!(
            Event::parse(&event).unwrap().event,
            monitor::DISCONNECTED,
            "over {ep}"
        );
        assert!(matches!(r, Err(Error::WouldBlock)), "over {ep}: {r:?}");
    }
}

/// A REP bound at `ep` on `other` (a context with I/O threads of its
/// own) and a REQ of `ctx` connected to it, watched for DISCONNECTED;
/// with the endpoint bound.
fn watched_pair(
    ctx: &Context,
    other: &Context,
    ep: &str,
    name: &str,
) -> (AsyncSocket, AsyncSocket, AsyncSocket, String) {
    let rep = sock(other, SocketType::Rep);
    rep.bind(ep).unwrap();
    let ep = rep.last_endpoint();
    let req = sock(ctx, SocketType::Req);
    let events = watch(ctx, &req, name);
    req.connect(&ep).unwrap();
    (rep, req, events, ep)
}

/// A monitor of `s` on DISCONNECTED, as a PAIR socket.
fn watch(ctx: &Context, s: &AsyncSocket, name: &str) -> AsyncSocket {
    let ep = format!("inproc://direct-async-monitor-{name}");
    s.monitor(&ep, u32::from(monitor::DISCONNECTED)).unwrap();
    let events = sock(ctx, SocketType::Pair);
    events.connect(&ep).unwrap();
    events
}

/// After round trips whose replies the requesting task read itself, the
/// connection's task still notices when the peer goes away while no one
/// receives.
#[tokio::test(flavor = "current_thread")]
async fn a_peer_leaving_after_async_direct_reads_is_noticed() {
    for (i, ep) in endpoints("leave").into_iter().enumerate() {
        let ctx = here();
        let other = Context::new();
        let (rep, req, events, ep) = watched_pair(&ctx, &other, &ep, &format!("leave-{i}"));
        let server = async {
            for _ in 0..200 {
                let m = rep.recv().await.unwrap();
                rep.send(m).await.unwrap();
            }
        };
        let client = async {
            for n in 0u32..200 {
                req.send(n.to_be_bytes().to_vec()).await.unwrap();
                assert_eq!(&req.recv().await.unwrap()[0][..], &n.to_be_bytes());
            }
        };
        timeout(WAIT, async { tokio::join!(server, client) })
            .await
            .expect("the round trips finish");
        drop(rep);
        let m = events
            .recv()
            .await
            .expect("the requester sees its peer go while no one receives");
        assert_eq!(
            Event::parse(&m).unwrap().event,
            monitor::DISCONNECTED,
            "over {ep}"
        );
    }
}

/// `disconnect` closes the connection at once, though a receive waits on
/// it (and holds its descriptor); a new connection brings that receive
/// its message.
#[tokio::test(flavor = "current_thread")]
async fn disconnect_closes_the_connection_an_async_receive_waits_on() {
    for (i, ep) in endpoints("disconnect").into_iter().enumerate() {
        let ctx = here();
        let server = sock(&ctx, SocketType::Router);
        let events = watch(&ctx, &server, &format!("disconnect-{i}"));
        server.bind(&ep).unwrap();
        let ep = server.last_endpoint();
        let client = sock(&ctx, SocketType::Dealer);
        client.set_routing_id(b"c".to_vec()).unwrap();
        join(&client, &server, &ep).await;
        let waiting = client.recv();
        let rest = async {
            // Let the receive start waiting on the connection.
            tokio::task::yield_now().await;
            client.disconnect(&ep).unwrap();
            let m = events
                .recv()
                .await
                .expect("the server sees the connection close");
            assert_eq!(Event::parse(&m).unwrap().event, monitor::DISCONNECTED);
            client.connect(&ep).unwrap();
            server.set_router_mandatory(true);
            let deadline = Instant::now() + WAIT;
            while server.router_check(b"c").is_err() {
                assert!(Instant::now() < deadline, "the client reconnects");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            server.send(to_c(b"after")).await.unwrap();
        };
        let (got, ()) = timeout(WAIT, async { tokio::join!(waiting, rest) })
            .await
            .expect("the waiting receive ends");
        assert_eq!(&got.unwrap()[0][..], b"after", "over {ep}");
    }
}

/// Shutting the context down ends a receive waiting on the connection.
#[tokio::test(flavor = "current_thread")]
async fn shutdown_ends_an_async_receive_waiting_on_the_connection() {
    for ep in endpoints("shutdown") {
        let ctx = here();
        let server = sock(&ctx, SocketType::Router);
        server.bind(&ep).unwrap();
        let ep = server.last_endpoint();
        let client = sock(&ctx, SocketType::Dealer);
        client.set_rcvtimeo(None);
        join(&client, &server, &ep).await;
        let waiting = client.recv();
        let stop = async {
            tokio::task::yield_now().await;
            ctx.shutdown();
        };
        let (r, ()) = timeout(WAIT, async { tokio::join!(waiting, stop) })
            .await
            .expect("the waiting receive ends");
        assert!(matches!(r, Err(Error::Terminated)), "over {ep}: {r:?}");
    }
}
