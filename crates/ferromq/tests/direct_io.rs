//! A sender writes to an idle connection itself, and a blocking receive on
//! a socket with one tcp or ipc peer waits on and reads the connection
//! itself, racing the connection's driver. What a user must see is the same
//! as without those shortcuts: every message once and in order, timeouts,
//! disconnects, reconnects, heartbeats and shutdown all as before.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferromq::monitor::{self, Event};
use ferromq::{Context, Error, Message, Socket, SocketType};

mod common;
use common::{let_it_wait, sock, varied_payload as payload, WAIT};

fn endpoints(name: &str) -> [String; 2] {
    common::tcp_and_ipc(&format!("direct-{name}"))
}

fn seq_of(m: &Message) -> u32 {
    u32::from_be_bytes(
        m[m.len() - 2][..]
            .try_into()
            .expect("a 4-byte sequence frame"),
    )
}

/// Bursts of messages with pauses between them (so the first message of a
/// burst finds the connection idle) from one thread, echoes read by
/// another thread blocked on the same socket: all arrive once, in order,
/// intact, on both sides.
#[test]
fn order_holds_across_direct_and_queued_writes_and_reads() {
    const N: u32 = 3000;
    for ep in endpoints("order") {
        let ctx = Context::new();
        let (server, ep) = router_at(&ctx, &ep);
        let client = sock(&ctx, SocketType::Dealer);
        client.connect(&ep).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for seq in 0..N {
                    let m = server.recv().expect("a request");
                    assert_eq!(m.len(), 3, "routing id, sequence, payload");
                    assert_eq!(seq_of(&m), seq, "requests in order over {ep}");
                    assert_eq!(&m[2][..], &payload(seq)[..], "request {seq} intact");
                    server.send(m).unwrap();
                }
            });
            s.spawn(|| {
                for seq in 0..N {
                    let m = client.recv().expect("an echo");
                    assert_eq!(seq_of(&m), seq, "echoes in order over {ep}");
                    assert_eq!(&m[1][..], &payload(seq)[..], "echo {seq} intact");
                }
            });
            let mut seq = 0;
            let mut burst = 1;
            while seq < N {
                for _ in 0..burst {
                    if seq == N {
                        break;
                    }
                    let mut m = Message::new();
                    m.push(seq.to_be_bytes().to_vec());
                    m.push(payload(seq));
                    client.send(m).unwrap();
                    seq += 1;
                }
                burst = burst % 13 + 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        });
    }
}

/// A stream that outruns its connection: while the driver writes, the
/// sending thread encodes messages into the connection's output, and once
/// that holds enough, queues them (up to a small SNDHWM, then waits) for
/// the driver. Two threads send on one socket, each its own numbered
/// stream with sizes from a byte to 40 KB; the receiver, slower at first,
/// gets each stream once, in order, intact.
#[test]
fn order_holds_as_a_stream_switches_between_encoding_and_queueing() {
    const N: u32 = 100_000;
    const STREAMS: u8 = 2;
    let size = |seq: u32| match seq % 101 {
        0 => 40_000,
        n => (n as usize * 37) % 600 + 1,
    };
    for ep in endpoints("stream") {
        let ctx = Context::new();
        let pull = sock(&ctx, SocketType::Pull);
        pull.set_rcvhwm(50);
        pull.bind(&ep).unwrap();
        let ep = pull.last_endpoint();
        let push = sock(&ctx, SocketType::Push);
        push.set_sndhwm(20);
        push.connect(&ep).unwrap();
        std::thread::scope(|s| {
            for stream in 0..STREAMS {
                let push = &push;
                s.spawn(move || {
                    for seq in 0..N {
                        let mut m = Message::new();
                        m.push(vec![stream]);
                        m.push(seq.to_be_bytes().to_vec());
                        m.push(vec![(seq % 251) as u8; size(seq)]);
                        push.send(m).unwrap();
                    }
                });
            }
            // Fall behind at first, until the senders have filled every
            // buffer and wait on a full queue.
            let deadline = Instant::now() + WAIT;
            while push.readiness().writable {
                assert!(Instant::now() < deadline, "the sending queue never fills");
                std::thread::yield_now();
            }
            let mut next = [0u32; 2];
            for _ in 0..u32::from(STREAMS) * N {
                let m = pull.recv().expect("a message");
                assert_eq!(m.len(), 3, "stream, sequence, payload");
                let stream = usize::from(m[0][0]);
                let seq = seq_of(&m);
                assert_eq!(seq, next[stream], "stream {stream} in order over {ep}");
                assert_eq!(m[2].len(), size(seq), "message {seq} whole");
                assert!(
                    m[2].iter().all(|&b| b == (seq % 251) as u8),
                    "message {seq} intact"
                );
                next[stream] += 1;
            }
        });
    }
}

/// A strict request/reply exchange (each side's writes direct, each side's
/// reads direct) with multipart bodies, over tcp and ipc.
#[test]
fn req_rep_round_trips_are_exact() {
    for ep in endpoints("reqrep") {
        let ctx = Context::new();
        let rep = sock(&ctx, SocketType::Rep);
        rep.bind(&ep).unwrap();
        let ep = rep.last_endpoint();
        let req = sock(&ctx, SocketType::Req);
        req.connect(&ep).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..2000 {
                    let mut m = rep.recv().unwrap();
                    m.push(b"reply".to_vec());
                    rep.send(m).unwrap();
                }
            });
            for i in 0u32..2000 {
                let mut m = Message::new();
                m.push(i.to_be_bytes().to_vec());
                m.push(payload(i));
                req.send(m).unwrap();
                let r = req.recv().unwrap();
                assert_eq!(r.len(), 3, "request frames and the reply's over {ep}");
                assert_eq!(&r[0][..], &i.to_be_bytes(), "reply {i} to request {i}");
                assert_eq!(&r[1][..], &payload(i)[..]);
                assert_eq!(&r[2][..], b"reply");
            }
        });
    }
}

/// A receive timeout holds while the receiver waits on the connection:
/// not early, and not forever.
#[test]
fn a_receive_timeout_holds() {
    for ep in endpoints("timeout") {
        let ctx = Context::new();
        let (server, ep) = router_at(&ctx, &ep);
        let client = sock(&ctx, SocketType::Dealer);
        join(&client, &server, &ep);
        client.set_rcvtimeo(Some(Duration::from_millis(200)));
        let start = Instant::now();
        assert!(matches!(client.recv(), Err(Error::WouldBlock)));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
            "waited {waited:?} over {ep}"
        );
    }
}

fn watch(ctx: &Context, s: &Socket, name: &str) -> Socket {
    let ep = format!("inproc://direct-monitor-{name}");
    s.monitor(&ep, u32::from(monitor::DISCONNECTED)).unwrap();
    let events = sock(ctx, SocketType::Pair);
    events.connect(&ep).unwrap();
    events
}

/// Connects `client` to `server` and waits until the server has heard from
/// it: the connection is up, and the client has sent since its last input
/// (so its next blocking receive waits on the connection itself).
fn join(client: &Socket, server: &Socket, ep: &str) {
    client.connect(ep).unwrap();
    client.send(b"hello".to_vec()).unwrap();
    server.recv().unwrap();
}

/// A ROUTER bound to `ep`, and the endpoint it got.
fn router_at(ctx: &Context, ep: &str) -> (Socket, String) {
    let server = sock(ctx, SocketType::Router);
    server.bind(ep).unwrap();
    let ep = server.last_endpoint();
    (server, ep)
}

/// Retries `f` every 5 ms until it succeeds, for at most [`WAIT`].
fn retry<T, E: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{what}: {e:?}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A ROUTER's message to the peer with routing id `c`.
fn to_c(body: &'static [u8]) -> Message {
    Message::from(vec![Bytes::from_static(b"c"), Bytes::from_static(body)])
}

/// `disconnect` closes the connection at once, even while another thread
/// is blocked receiving on it (and holds its descriptor).
#[test]
fn disconnect_closes_the_connection_a_receiver_waits_on() {
    for (i, ep) in endpoints("disconnect").into_iter().enumerate() {
        let ctx = Context::new();
        let server = sock(&ctx, SocketType::Router);
        let events = watch(&ctx, &server, &format!("disconnect-{i}"));
        server.bind(&ep).unwrap();
        let ep = server.last_endpoint();
        let client = sock(&ctx, SocketType::Dealer);
        client.set_routing_id(b"c".to_vec()).unwrap();
        join(&client, &server, &ep);
        std::thread::scope(|s| {
            let blocked = s.spawn(|| client.recv());
            let_it_wait();
            client.disconnect(&ep).unwrap();
            let m = events.recv().expect("the server sees the connection close");
            let e = Event::parse(&m).unwrap();
            assert_eq!(e.event, monitor::DISCONNECTED, "over {ep}");
            // A new connection brings the receiver its message.
            client.connect(&ep).unwrap();
            server.set_router_mandatory(true);
            retry("the client reconnects", || server.router_check(b"c"));
            server.send(to_c(b"after")).unwrap();
            let got = blocked.join().unwrap().expect("the blocked receive ends");
            assert_eq!(&got[0][..], b"after");
        });
    }
}

/// The peer goes away and comes back while a thread waits: the waiting
/// receive gets the new peer's message.
#[test]
fn a_waiting_receiver_hears_a_restarted_peer() {
    for ep in endpoints("restart") {
        let ctx = Context::new();
        let (server, ep) = router_at(&ctx, &ep);
        let client = sock(&ctx, SocketType::Dealer);
        client.set_routing_id(b"c".to_vec()).unwrap();
        client.set_reconnect_ivl(Some(Duration::from_millis(10)));
        join(&client, &server, &ep);
        std::thread::scope(|s| {
            let blocked = s.spawn(|| client.recv());
            let_it_wait();
            server.close();
            let server = sock(&ctx, SocketType::Router);
            server.set_router_mandatory(true);
            // The old listener closes on the I/O thread: wait for the address.
            retry("the address free again", || server.bind(&ep));
            retry("the client reconnects", || server.router_check(b"c"));
            server.send(to_c(b"again")).unwrap();
            let got = blocked.join().unwrap().expect("the blocked receive ends");
            assert_eq!(&got[0][..], b"again");
        });
    }
}

/// ZMTP heartbeats keep flowing while the only reader is an application
/// thread waiting on the connection: the peer's PINGs are answered, so it
/// does not time the connection out.
#[test]
fn heartbeats_are_answered_while_a_receiver_waits() {
    let ctx = Context::new();
    let server = sock(&ctx, SocketType::Router);
    server.set_heartbeat_ivl(Some(Duration::from_millis(20)));
    server.set_heartbeat_timeout(Some(Duration::from_millis(200)));
    let events = watch(&ctx, &server, "heartbeat");
    server.bind("tcp://127.0.0.1:*").unwrap();
    let ep = server.last_endpoint();
    let client = sock(&ctx, SocketType::Dealer);
    client.set_routing_id(b"c".to_vec()).unwrap();
    join(&client, &server, &ep);
    std::thread::scope(|s| {
        let blocked = s.spawn(|| client.recv());
        // Over a second, five heartbeat timeouts: no disconnect.
        events.set_rcvtimeo(Some(Duration::from_secs(1)));
        assert!(
            matches!(events.recv(), Err(Error::WouldBlock)),
            "the connection stays up"
        );
        server.send(to_c(b"still here")).unwrap();
        let got = blocked.join().unwrap().unwrap();
        assert_eq!(&got[0][..], b"still here");
    });
}

/// Shutting the context down ends a receive waiting on a connection.
#[test]
fn shutdown_ends_a_receive_waiting_on_the_connection() {
    for ep in endpoints("shutdown") {
        let ctx = Context::new();
        let (server, ep) = router_at(&ctx, &ep);
        let client = sock(&ctx, SocketType::Dealer);
        client.set_rcvtimeo(None);
        join(&client, &server, &ep);
        std::thread::scope(|s| {
            let blocked = s.spawn(|| client.recv());
            let_it_wait();
            ctx.shutdown();
            assert!(
                matches!(blocked.join().unwrap(), Err(Error::Terminated)),
                "over {ep}"
            );
        });
    }
}

/// Several threads blocked receiving on one socket (one of them may wait
/// on the connection itself): shutting the context down ends every one.
#[test]
fn shutdown_ends_every_waiting_receive() {
    for _ in 0..20 {
        let ctx = Context::new();
        let server = sock(&ctx, SocketType::Router);
        server.bind("tcp://127.0.0.1:*").unwrap();
        let client = sock(&ctx, SocketType::Dealer);
        client.set_rcvtimeo(None);
        join(&client, &server, &server.last_endpoint());
        std::thread::scope(|s| {
            let waiting: Vec<_> = (0..3).map(|_| s.spawn(|| client.recv())).collect();
            let_it_wait();
            ctx.shutdown();
            for w in waiting {
                assert!(matches!(w.join().unwrap(), Err(Error::Terminated)));
            }
        });
    }
}

/// After round trips whose replies the waiting thread read itself, the
/// connection's driver still notices when the peer goes away while no one
/// receives: the requester's monitor reports the disconnection.
#[test]
fn a_peer_leaving_after_direct_reads_is_noticed_with_no_receiver() {
    for (i, ep) in endpoints("leave").into_iter().enumerate() {
        let ctx = Context::new();
        let rep = sock(&ctx, SocketType::Rep);
        rep.bind(&ep).unwrap();
        let ep = rep.last_endpoint();
        let req = sock(&ctx, SocketType::Req);
        let events = watch(&ctx, &req, &format!("leave-{i}"));
        req.connect(&ep).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..200 {
                    let m = rep.recv().unwrap();
                    rep.send(m).unwrap();
                }
            });
            for n in 0u32..200 {
                req.send(n.to_be_bytes().to_vec()).unwrap();
                assert_eq!(&req.recv().unwrap()[0][..], &n.to_be_bytes());
            }
        });
        drop(rep);
        let m = events
            .recv()
            .expect("the requester sees its peer go while no one receives");
        assert_eq!(
            Event::parse(&m).unwrap().event,
            monitor::DISCONNECTED,
            "over {ep}"
        );
    }
}
