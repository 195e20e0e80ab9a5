//! tcp details: binding by interface name, source addresses on connect
//! (checked by the address the peer sees), SO_BINDTODEVICE, `immediate`,
//! and one socket bound on tcp, ipc and inproc at once.

use std::net::{SocketAddr, TcpListener};

use ferromq::{Context, Error, Message, Socket, SocketType};

mod common;
use common::{sock, WAIT};

fn port_of(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

/// A PUSH connected to `endpoint` delivers one message to `pull`.
fn assert_flows(ctx: &Context, pull: &Socket, endpoint: &str) {
    let push = sock(ctx, SocketType::Push);
    push.connect(endpoint).unwrap();
    push.send("hello").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("hello"), "{endpoint}");
}

#[test]
fn bind_by_interface_name() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("tcp://lo:*").unwrap();
    let ep = pull.last_endpoint();
    assert!(ep.starts_with("tcp://127.0.0.1:"), "lo resolved to {ep}");
    assert_flows(&ctx, &pull, &ep);
}

#[test]
fn unknown_interface_is_a_clear_error() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    match pull.bind("tcp://nosuchif0:*") {
        // ENODEV, as libzmq reports it.
        Err(Error::Io(e)) => assert_eq!(e.raw_os_error(), Some(19), "{e}"),
        other => panic!("bind to an unknown interface: {other:?}"),
    }
}

/// Accepts one connection on a plain listener and returns the address the
/// connecting ferromq socket came from.
fn observed_source(ctx: &Context, connect: impl Fn(u16) -> String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dealer = sock(ctx, SocketType::Dealer);
    dealer.connect(&connect(port)).unwrap();
    let (_stream, from) = listener.accept().unwrap();
    from
}

#[test]
fn source_address_is_what_the_peer_sees() {
    let ctx = Context::new();
    // Any port, a chosen address (all of 127/8 is on the loopback device).
    let from = observed_source(&ctx, |p| format!("tcp://127.0.0.2:0;127.0.0.1:{p}"));
    assert_eq!(from.ip().to_string(), "127.0.0.2");
    let from = observed_source(&ctx, |p| format!("tcp://127.0.0.3:*;127.0.0.1:{p}"));
    assert_eq!(from.ip().to_string(), "127.0.0.3");
    // A chosen port too (one the OS just handed out and freed).
    let free = TcpListener::bind("127.0.0.4:0").unwrap();
    let src_port = free.local_addr().unwrap().port();
    drop(free);
    let from = observed_source(&ctx, |p| {
        format!("tcp://127.0.0.4:{src_port};127.0.0.1:{p}")
    });
    assert_eq!(from.to_string(), format!("127.0.0.4:{src_port}"));
    // An interface name as the source.
    let from = observed_source(&ctx, |p| format!("tcp://lo:0;127.0.0.1:{p}"));
    assert!(from.ip().is_loopback(), "{from}");
}

#[test]
fn messages_flow_over_a_source_addressed_connection() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let port = port_of(&pull.last_endpoint());
    assert_flows(&ctx, &pull, &format!("tcp://127.0.0.5:0;localhost:{port}"));
}

#[test]
fn bindtodevice_binds_and_connects_through_the_device() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.update_options(|o| o.bindtodevice = Some("lo".into()));
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.update_options(|o| o.bindtodevice = Some("lo".into()));
    push.connect(&pull.last_endpoint()).unwrap();
    push.send("via lo").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("via lo"));

    let bad = sock(&ctx, SocketType::Pull);
    bad.update_options(|o| o.bindtodevice = Some("nosuchdev0".into()));
    assert!(
        matches!(bad.bind("tcp://127.0.0.1:*"), Err(Error::Io(_))),
        "binding through a missing device must fail"
    );
}

/// A port nothing listens on (bound, then freed).
fn dead_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://{}", l.local_addr().unwrap())
}

#[test]
fn immediate_queues_only_to_connected_peers() {
    let ctx = Context::new();
    // Only a dead peer: nothing to queue to, so a send would block.
    let dealer = sock(&ctx, SocketType::Dealer);
    dealer.set_immediate(true);
    dealer.connect(&dead_endpoint()).unwrap();
    assert!(matches!(
        dealer.try_send("nowhere"),
        Err(e) if matches!(e.error, Error::WouldBlock)
    ));
    // Beside a live peer, every message goes to the live one (without
    // `immediate`, round robin would park every other one with the dead peer).
    let live = sock(&ctx, SocketType::Dealer);
    live.bind("tcp://127.0.0.1:*").unwrap();
    dealer.connect(&live.last_endpoint()).unwrap();
    for i in 0..10 {
        dealer.send(i.to_string()).unwrap();
    }
    for i in 0..10 {
        assert_eq!(live.recv().unwrap(), Message::from(i.to_string()));
    }
}

#[test]
fn one_router_on_tcp_ipc_and_inproc() {
    let ctx = Context::new();
    let router = sock(&ctx, SocketType::Router);
    router.bind("tcp://127.0.0.1:*").unwrap();
    let tcp = router.last_endpoint();
    router.bind("ipc://*").unwrap();
    let ipc = router.last_endpoint();
    router.bind("inproc://multi-transport").unwrap();
    let mut dealers = Vec::new();
    for (name, ep) in [
        ("tcp", tcp),
        ("ipc", ipc),
        ("inproc", "inproc://multi-transport".into()),
    ] {
        let d = sock(&ctx, SocketType::Dealer);
        d.set_routing_id(name).unwrap();
        d.connect(&ep).unwrap();
        d.send(format!("hello from {name}")).unwrap();
        dealers.push((name, d));
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = router.recv().unwrap();
        let id = String::from_utf8(m[0].to_vec()).unwrap();
        assert_eq!(&m[1][..], format!("hello from {id}").as_bytes());
        let reply: Message = [id.clone(), format!("reply to {id}")].into_iter().collect();
        router.send(reply).unwrap();
        seen.push(id);
    }
    seen.sort();
    assert_eq!(seen, ["inproc", "ipc", "tcp"]);
    for (name, d) in dealers {
        assert_eq!(d.recv().unwrap(), Message::from(format!("reply to {name}")));
    }
}

#[test]
fn received_messages_carry_connection_metadata() {
    let ctx = Context::new();
    let router = sock(&ctx, SocketType::Router);
    router.bind("tcp://127.0.0.1:*").unwrap();
    let dealer = sock(&ctx, SocketType::Dealer);
    dealer.set_routing_id("meta-dealer").unwrap();
    dealer
        .connect(&format!(
            "tcp://127.0.0.7:0;{}",
            &router.last_endpoint()[6..]
        ))
        .unwrap();
    dealer.send("hi").unwrap();
    let m = router.recv().unwrap();
    let meta = m.metadata().expect("a tcp message has metadata");
    assert_eq!(&meta.get("Socket-Type").unwrap()[..], b"DEALER");
    assert_eq!(&meta.get("Identity").unwrap()[..], b"meta-dealer");
    // Where the peer connected from, as libzmq's Peer-Address.
    assert_eq!(&meta.get("peer-address").unwrap()[..], b"127.0.0.7");
    // A message made locally has none.
    assert!(Message::from("local").metadata().is_none());
}

#[test]
fn ipv6_option_makes_the_wildcard_dual_stack() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        println!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_ipv6(true);
    pull.bind("tcp://*:*").unwrap();
    let port = port_of(&pull.last_endpoint());
    // Both families reach the one wildcard listener.
    assert_flows(&ctx, &pull, &format!("tcp://127.0.0.1:{port}"));
    assert_flows(&ctx, &pull, &format!("tcp://[::1]:{port}"));
    // Without the option the wildcard is IPv4 only, as in libzmq.
    let v4 = sock(&ctx, SocketType::Pull);
    v4.bind("tcp://*:*").unwrap();
    let ep = v4.last_endpoint();
    assert!(ep.starts_with("tcp://0.0.0.0:"), "{ep}");
    assert!(std::net::TcpStream::connect(("::1", port_of(&ep))).is_err());
}

#[test]
fn req_correlate_and_relaxed_discard_stale_replies() {
    let ctx = Context::new();
    let router = sock(&ctx, SocketType::Router);
    router.bind("tcp://127.0.0.1:*").unwrap();
    let req = sock(&ctx, SocketType::Req);
    req.set_req_correlate(true);
    req.set_req_relaxed(true);
    req.connect(&router.last_endpoint()).unwrap();
    req.send("first").unwrap();
    // Relaxed: a second request without waiting for the first reply.
    req.send("second").unwrap();
    let a = router.recv().unwrap();
    let b = router.recv().unwrap();
    // [routing id][request id (4 bytes)][empty][body], ids consecutive.
    assert_eq!(
        (a.len(), &a[2][..], &a[3][..]),
        (4, &b""[..], &b"first"[..])
    );
    assert_eq!(
        (b.len(), &b[2][..], &b[3][..]),
        (4, &b""[..], &b"second"[..])
    );
    let id = |m: &Message| u32::from_ne_bytes(m[1][..].try_into().unwrap());
    assert_eq!(id(&b), id(&a).wrapping_add(1));
    // The reply to the first request is stale: dropped; the second's arrives.
    let reply = |m: &Message, body: &str| -> Message {
        [
            m[0].clone(),
            m[1].clone(),
            m[2].clone(),
            body.to_string().into(),
        ]
        .into_iter()
        .collect()
    };
    router.send(reply(&a, "reply to first")).unwrap();
    router.send(reply(&b, "reply to second")).unwrap();
    assert_eq!(req.recv().unwrap(), Message::from("reply to second"));

    // Strict (the default): a second request before the reply is refused.
    let strict = sock(&ctx, SocketType::Req);
    strict.connect(&router.last_endpoint()).unwrap();
    strict.send("one").unwrap();
    assert!(matches!(strict.send("two"), Err(e) if matches!(e.error, Error::State)));
}

#[test]
fn probe_router_greets_each_connection() {
    let ctx = Context::new();
    let router = sock(&ctx, SocketType::Router);
    router.bind("tcp://127.0.0.1:*").unwrap();
    let dealer = sock(&ctx, SocketType::Dealer);
    dealer.set_routing_id("prober").unwrap();
    dealer.set_probe_router(true);
    dealer.connect(&router.last_endpoint()).unwrap();
    // Without sending anything, the dealer is known to the router.
    assert_eq!(router.recv().unwrap(), Message::from(["prober", ""]));
    let reply: Message = ["prober", "hello"].into();
    router.send(reply).unwrap();
    assert_eq!(dealer.recv().unwrap(), Message::from("hello"));
}

#[test]
fn serves_a_listener_the_application_made() {
    // As libzmq's ZMQ_USE_FD: the application binds and listens itself.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    let ep = pull.bind_tcp_listener(listener).unwrap();
    assert_eq!(ep, format!("tcp://{addr}"));
    assert_eq!(pull.last_endpoint(), ep);
    assert_flows(&ctx, &pull, &ep);
    // Unbinding closes it: the port stops accepting.
    pull.unbind(&ep).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after unbind"
        );
        std::thread::yield_now();
    }
}
