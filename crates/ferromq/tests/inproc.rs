//! inproc:// between sockets of one context.

use std::time::Duration;

use ferromq::{Bytes, Context, Error, Message, Socket, SocketType};

const WAIT: Duration = Duration::from_secs(10);

fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_sndtimeo(Some(WAIT));
    s
}

#[test]
fn connect_before_bind_queues_until_the_bind() {
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://later").unwrap();
    for i in 0..10u8 {
        push.send(vec![i]).unwrap();
    }
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://later").unwrap();
    for i in 0..10u8 {
        assert_eq!(&pull.recv().unwrap()[0][..], &[i]);
    }
}

#[test]
fn frames_are_not_copied() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://zc").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://zc").unwrap();
    let frame = Bytes::from(vec![7u8; 1 << 20]);
    let ptr = frame.as_ptr();
    push.send(Message::from(frame)).unwrap();
    let got = pull.recv().unwrap();
    assert_eq!(
        got[0].as_ptr(),
        ptr,
        "the received frame is the sent allocation"
    );
}

#[test]
fn req_rep_router_dealer_and_routing_ids() {
    let ctx = Context::new();
    let router = sock(&ctx, SocketType::Router);
    router.bind("inproc://rr").unwrap();
    let dealer = sock(&ctx, SocketType::Dealer);
    dealer.set_routing_id("d1").unwrap();
    dealer.connect("inproc://rr").unwrap();
    let req = sock(&ctx, SocketType::Req);
    req.connect("inproc://rr").unwrap();
    dealer.send("from dealer").unwrap();
    let m = router.recv().unwrap();
    assert_eq!(&m[0][..], b"d1");
    assert_eq!(&m[1][..], b"from dealer");
    router.send(m).unwrap();
    assert_eq!(&dealer.recv().unwrap()[0][..], b"from dealer");
    req.send("q").unwrap();
    let m = router.recv().unwrap();
    assert_eq!(m.len(), 3, "generated id, delimiter, body: {m:?}");
    assert_eq!(m[0].len(), 5);
    router.send(m).unwrap();
    assert_eq!(&req.recv().unwrap()[0][..], b"q");
}

#[test]
fn many_to_many() {
    let ctx = Context::new();
    let pulls: Vec<Socket> = (0..2).map(|_| sock(&ctx, SocketType::Pull)).collect();
    pulls[0].bind("inproc://m0").unwrap();
    pulls[1].bind("inproc://m1").unwrap();
    let pushes: Vec<Socket> = (0..3).map(|_| sock(&ctx, SocketType::Push)).collect();
    for p in &pushes {
        p.connect("inproc://m0").unwrap();
        p.connect("inproc://m1").unwrap();
    }
    for (i, p) in pushes.iter().enumerate() {
        for j in 0..4u8 {
            p.send(vec![i as u8, j]).unwrap();
        }
    }
    // Each PUSH round-robins its 4 messages over both PULLs: 6 each.
    let mut got = Vec::new();
    for pull in &pulls {
        for _ in 0..6 {
            got.push(pull.recv().unwrap()[0].to_vec());
        }
        assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
    }
    got.sort();
    let mut want: Vec<Vec<u8>> = (0..3u8)
        .flat_map(|i| (0..4u8).map(move |j| vec![i, j]))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn queued_messages_survive_a_rebind() {
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://rebind").unwrap();
    let first = sock(&ctx, SocketType::Pull);
    first.bind("inproc://rebind").unwrap();
    push.send("one").unwrap();
    assert_eq!(&first.recv().unwrap()[0][..], b"one");
    first.unbind("inproc://rebind").unwrap();
    // The name is free again; the connector waits and queues meanwhile.
    push.send("two").unwrap();
    let second = sock(&ctx, SocketType::Pull);
    second.bind("inproc://rebind").unwrap();
    assert_eq!(&second.recv().unwrap()[0][..], b"two");
    assert!(matches!(first.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn binding_a_bound_name_fails_and_unknown_unbind_fails() {
    let ctx = Context::new();
    let a = sock(&ctx, SocketType::Pull);
    a.bind("inproc://taken").unwrap();
    let b = sock(&ctx, SocketType::Pull);
    assert!(
        matches!(b.bind("inproc://taken"), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AddrInUse)
    );
    assert!(matches!(
        b.unbind("inproc://taken"),
        Err(Error::EndpointNotFound(_))
    ));
    drop(a);
    // Closing the binder frees the name (its cleanup runs in the background).
    let deadline = std::time::Instant::now() + WAIT;
    while b.bind("inproc://taken").is_err() {
        assert!(std::time::Instant::now() < deadline, "name never freed");
        std::thread::yield_now();
    }
}

#[test]
fn hwm_is_sender_plus_receiver() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_rcvhwm(5);
    pull.bind("inproc://hwm").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.set_sndhwm(5);
    push.connect("inproc://hwm").unwrap();
    let mut sent = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(300);
    // Keep offering until the pipe stays full: nothing reads the PULL.
    while std::time::Instant::now() < deadline {
        match push.try_send(vec![0u8]) {
            Ok(()) => sent += 1,
            Err(e) if matches!(e.error, Error::WouldBlock) => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        (10..=12).contains(&sent),
        "pipe held {sent} messages, want about 5 + 5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_api_over_inproc() {
    let ctx = Context::new();
    let rep = ctx.async_socket(SocketType::Rep).unwrap();
    rep.bind("inproc://async").unwrap();
    let req = ctx.async_socket(SocketType::Req).unwrap();
    req.connect("inproc://async").unwrap();
    let server = tokio::spawn(async move {
        let m = rep.recv().await.unwrap();
        rep.send(m).await.unwrap();
    });
    req.send(["a", "b"]).await.unwrap();
    let m = tokio::time::timeout(WAIT, req.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m, Message::from(["a", "b"]));
    server.await.unwrap();
}

#[test]
fn connect_and_subscribe_are_synchronous_as_in_libzmq() {
    // No slow joiner on inproc: the subscription is in the publisher's trie
    // when subscribe() returns, so the very next publish is delivered.
    let ctx = Context::new();
    let publisher = sock(&ctx, SocketType::Pub);
    publisher.bind("inproc://sync-pub").unwrap();
    for round in 0..50 {
        let sub = sock(&ctx, SocketType::Sub);
        sub.connect("inproc://sync-pub").unwrap();
        sub.subscribe("t").unwrap();
        publisher.send(["t", "now"]).unwrap();
        assert_eq!(
            sub.try_recv().unwrap(),
            Message::from(["t", "now"]),
            "round {round}"
        );
    }
}

#[test]
fn disconnect_is_immediate() {
    // As libzmq: once the only connector disconnects, the binder has no
    // peer to send to.
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.bind("inproc://gone").unwrap();
    let pull = sock(&ctx, SocketType::Pull);
    pull.connect("inproc://gone").unwrap();
    push.send("hi").unwrap();
    assert_eq!(&pull.recv().unwrap()[0][..], b"hi");
    pull.disconnect("inproc://gone").unwrap();
    assert!(matches!(push.try_send("again"), Err(e) if matches!(e.error, Error::WouldBlock)));
}

#[test]
fn conflate_keeps_only_the_newest_message() {
    let ctx = Context::new();
    // Receiving side: a PULL that reads late sees only the latest state.
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_conflate(true);
    pull.bind("inproc://conflate-in").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://conflate-in").unwrap();
    for i in 0..100u8 {
        push.send(vec![i]).unwrap();
    }
    assert_eq!(&pull.recv().unwrap()[0][..], &[99]);
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));

    // Sending side: a PUSH with no peer yet keeps only its newest message,
    // and never blocks on the high-water mark.
    let push = sock(&ctx, SocketType::Push);
    push.set_conflate(true);
    push.set_sndhwm(1);
    push.connect("inproc://conflate-out").unwrap();
    for i in 0..10u8 {
        push.try_send(vec![i]).unwrap();
    }
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://conflate-out").unwrap();
    assert_eq!(&pull.recv().unwrap()[0][..], &[9]);
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn a_non_blocking_receive_loop_sees_everything_sent() {
    // libzmq's inproc pipe holds SNDHWM + RCVHWM and every message in it is
    // readable at once: draining with non-blocking receives finds them all,
    // with no background transfer to wait for.
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("inproc://drain-all").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect("inproc://drain-all").unwrap();
    let mut sent = 0;
    while push.try_send(sent.to_string()).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 2000, "SNDHWM + RCVHWM");
    let mut got = 0;
    while let Ok(m) = pull.try_recv() {
        assert_eq!(m, Message::from(got.to_string()));
        got += 1;
    }
    assert_eq!(got, sent);
}

#[test]
fn messages_of_a_closed_connector_reach_a_later_bind() {
    // As libzmq's pending pipes: a socket that connected before the bind,
    // queued messages and closed still delivers them once the bind comes.
    let ctx = Context::new();
    for i in 0..3 {
        let push = ctx.socket(SocketType::Push).unwrap();
        push.connect("inproc://late-bind").unwrap();
        push.send(format!("from closed connector {i}")).unwrap();
        push.close();
    }
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://late-bind").unwrap();
    let mut got: Vec<String> = (0..3)
        .map(|_| String::from_utf8(pull.recv().unwrap()[0].to_vec()).unwrap())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "from closed connector 0",
            "from closed connector 1",
            "from closed connector 2"
        ]
    );
    // Linger 0 drops them instead.
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_linger(Some(Duration::ZERO));
    push.connect("inproc://late-bind-2").unwrap();
    push.send("dropped").unwrap();
    push.close();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://late-bind-2").unwrap();
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn disconnect_drops_what_the_peer_sent_and_was_not_read() {
    // As libzmq: zmq_disconnect takes the pipe away with its contents.
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.bind("inproc://drop-unread").unwrap();
    let pull = sock(&ctx, SocketType::Pull);
    pull.connect("inproc://drop-unread").unwrap();
    push.send("unread").unwrap();
    pull.disconnect("inproc://drop-unread").unwrap();
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
    // A new connection works afresh.
    pull.connect("inproc://drop-unread").unwrap();
    push.send("fresh").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("fresh"));
}

/// libzmq's test_multiple_threads, many times over: connectors that send
/// and close while the name gets bound must all be heard. (A connector
/// closing between the bind taking the waiting list and its pipe starting
/// once vanished with its message.)
#[test]
fn connectors_closing_while_the_name_is_bound_are_all_heard() {
    const THREADS: usize = 30;
    for round in 0..100 {
        let ctx = Context::new();
        let name = format!("inproc://closing-{round}");
        let pushers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (ctx, name) = (ctx.clone(), name.clone());
                std::thread::spawn(move || {
                    let s = ctx.socket(SocketType::Pair).unwrap();
                    s.connect(&name).unwrap();
                    s.send("foobar").unwrap();
                })
            })
            .collect();
        let pull = sock(&ctx, SocketType::Pull);
        pull.bind(&name).unwrap();
        for i in 0..THREADS {
            match pull.recv() {
                Ok(m) => assert_eq!(m, Message::from("foobar")),
                Err(e) => panic!("round {round}: message {i} of {THREADS} lost: {e:?}"),
            }
        }
        for p in pushers {
            p.join().unwrap();
        }
    }
}

/// A sender hands messages straight to the receiver while it has room and
/// queues them when it has not; the receiver, falling behind and catching
/// up, takes queued ones over as it gives room back. Whatever the
/// interleaving, everything arrives once and in order, over PUSH/PULL and
/// PAIR, with small and default HWMs.
#[test]
fn order_holds_as_the_receiver_falls_behind_and_catches_up() {
    for (kind_a, kind_b, hwm) in [
        (SocketType::Push, SocketType::Pull, 5),
        (SocketType::Pair, SocketType::Pair, 1000),
    ] {
        let ctx = Context::new();
        let rx = sock(&ctx, kind_b);
        rx.set_rcvhwm(hwm);
        rx.bind("inproc://catch-up").unwrap();
        let tx = sock(&ctx, kind_a);
        tx.set_sndhwm(hwm);
        tx.connect("inproc://catch-up").unwrap();
        const N: u32 = 200_000;
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..N {
                    tx.send(i.to_be_bytes().to_vec()).unwrap();
                }
            });
            for i in 0..N {
                let m = rx.recv().unwrap();
                assert_eq!(&m[0][..], &i.to_be_bytes(), "{kind_b:?} hwm {hwm}");
                if i % 10_007 == 0 {
                    // Fall behind now and then: the sender's queue fills.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
    }
}

/// A receiver with one inproc peer takes its messages without taking turns
/// (in batches of up to 8 it has already taken out of the pipe); once a
/// second peer connects, turns come back at once: the newcomer's message
/// arrives after at most that batch, not behind the first peer's backlog
/// (here 99 messages).
#[test]
fn a_second_peer_gets_its_turn_at_once() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://turns").unwrap();
    let a = sock(&ctx, SocketType::Push);
    a.connect("inproc://turns").unwrap();
    for i in 0..100u8 {
        a.send(vec![b'a', i]).unwrap();
    }
    assert_eq!(&pull.recv().unwrap()[0][..], &[b'a', 0]);
    let b = sock(&ctx, SocketType::Push);
    b.connect("inproc://turns").unwrap();
    b.send(vec![b'b']).unwrap();
    // The batch the first receive took (7 more), then turns.
    let next: Vec<Vec<u8>> = (0..9).map(|_| pull.recv().unwrap()[0].to_vec()).collect();
    assert!(
        next.contains(&vec![b'b']),
        "the second peer waited: {next:?}"
    );
    // The first peer's messages still come whole and in order.
    let mut expect = 1u8;
    for m in next.iter().filter(|m| m[0] == b'a') {
        assert_eq!(m, &vec![b'a', expect]);
        expect += 1;
    }
    while expect < 100 {
        assert_eq!(&pull.recv().unwrap()[0][..], &[b'a', expect]);
        expect += 1;
    }
}

/// Readiness over inproc says readable exactly while a message waits,
/// however the receives took the messages before.
#[test]
fn readable_exactly_while_a_message_waits() {
    let ctx = Context::new();
    for kind in [SocketType::Pull, SocketType::Router] {
        let rx = sock(&ctx, kind);
        let name = format!("inproc://ready-{kind:?}");
        rx.bind(&name).unwrap();
        let tx = sock(&ctx, SocketType::Dealer);
        tx.connect(&name).unwrap();
        assert!(!rx.readiness().readable, "{kind:?}: nothing sent yet");
        for burst in [1, 3, 1] {
            for i in 0..burst {
                tx.send(vec![i as u8]).unwrap();
            }
            for left in (0..burst).rev() {
                assert!(rx.readiness().readable, "{kind:?}: {} waiting", left + 1);
                rx.recv().unwrap();
            }
            assert!(!rx.readiness().readable, "{kind:?}: all {burst} taken");
        }
    }
}

/// A task sending large messages to an inproc receiver that is behind
/// gives way to it rather than queueing up to the HWM first: here both are
/// tasks of one current-thread runtime, and the receiver takes the messages
/// while the sending loop goes on. A sender of copies gives way once a few
/// wait (the buffers its copies reuse are then all in use); one that sends
/// its own buffers once 64 wait.
#[tokio::test(flavor = "current_thread")]
async fn large_inproc_sends_let_a_receiving_task_keep_up() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    for (copies, n, size) in [(true, 20, 256 << 10), (false, 400, 64 << 10)] {
        let ctx = Context::new();
        let pull = ctx.async_socket(SocketType::Pull).unwrap();
        pull.bind("inproc://large-sends").unwrap();
        let push = ctx.async_socket(SocketType::Push).unwrap();
        push.connect("inproc://large-sends").unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        let receiver = tokio::spawn(async move {
            for i in 0..n {
                let m = pull.recv().await.unwrap();
                assert_eq!((m[0].len(), m[0][0]), (size, i as u8));
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut seen_during_loop = 0;
        for i in 0..n {
            let body = vec![i as u8; size];
            let msg = if copies {
                Message::copy_from_slice(&body)
            } else {
                Message::from(body)
            };
            push.send(msg).await.unwrap();
            seen_during_loop = received.load(Ordering::SeqCst);
        }
        assert!(
            seen_during_loop >= n / 2,
            "copies {copies}: the receiving task took {seen_during_loop} of {n} messages while they were sent"
        );
        tokio::time::timeout(WAIT, receiver).await.unwrap().unwrap();
    }
}

/// A PUSH with one inproc peer sends past its queue straight into the
/// peer's pipe; a second peer, bound or still waiting for its bind, gets
/// its share at once, as libzmq's round robin gives it.
#[test]
fn a_lone_sender_shares_out_again_when_a_peer_comes() {
    let ctx = Context::new();
    let first = sock(&ctx, SocketType::Pull);
    first.bind("inproc://share-a").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://share-a").unwrap();
    for i in 0..4u8 {
        push.send(vec![i]).unwrap();
    }
    for i in 0..4u8 {
        assert_eq!(&first.recv().unwrap()[0][..], &[i]);
    }
    // Not bound yet: its peer queues (no IMMEDIATE) and takes turns.
    push.connect("inproc://share-b").unwrap();
    for i in 10..20u8 {
        push.send(vec![i]).unwrap();
    }
    let second = sock(&ctx, SocketType::Pull);
    second.bind("inproc://share-b").unwrap();
    let a: Vec<u8> = (0..5).map(|_| first.recv().unwrap()[0][0]).collect();
    let b: Vec<u8> = (0..5).map(|_| second.recv().unwrap()[0][0]).collect();
    assert_eq!(a, [10, 12, 14, 16, 18]);
    assert_eq!(b, [11, 13, 15, 17, 19]);
    // A third peer that binds a name the PUSH connects to later.
    let third = sock(&ctx, SocketType::Pull);
    third.bind("inproc://share-c").unwrap();
    push.connect("inproc://share-c").unwrap();
    for i in 0..6u8 {
        push.send(vec![i]).unwrap();
    }
    let mut counts = [0; 3];
    for (n, s) in [&first, &second, &third].into_iter().enumerate() {
        for _ in 0..2 {
            s.recv().unwrap();
            counts[n] += 1;
        }
        assert!(matches!(s.try_recv(), Err(Error::WouldBlock)));
    }
    assert_eq!(counts, [2, 2, 2]);
}

/// Several threads send on one PUSH to one PULL through a small pipe:
/// each thread's messages arrive whole, once and in its order, whether a
/// send went straight into the pipe or was queued behind a full one.
#[test]
fn threads_sharing_a_sender_keep_their_order() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_rcvhwm(3);
    pull.bind("inproc://threads").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.set_sndhwm(3);
    push.connect("inproc://threads").unwrap();
    const THREADS: u32 = 3;
    const N: u32 = 50_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let push = &push;
            s.spawn(move || {
                for i in 0..N {
                    let mut m = t.to_be_bytes().to_vec();
                    m.extend_from_slice(&i.to_be_bytes());
                    push.send(m).unwrap();
                }
            });
        }
        let mut next = [0u32; THREADS as usize];
        for _ in 0..THREADS * N {
            let m = pull.recv().unwrap();
            let t = u32::from_be_bytes(m[0][..4].try_into().unwrap()) as usize;
            let i = u32::from_be_bytes(m[0][4..].try_into().unwrap());
            assert_eq!(i, next[t], "thread {t}'s messages out of order");
            next[t] += 1;
        }
        assert_eq!(next, [N; THREADS as usize]);
    });
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

fn fill(push: &Socket) -> usize {
    let mut sent = 0;
    while push.try_send(vec![0u8]).is_ok() {
        sent += 1;
        assert!(sent < 10_000, "the pipe never filled");
    }
    sent
}

/// As libzmq's test_sockopt_hwm: the pipe holds SNDHWM + RCVHWM, and an
/// HWM changed after the connection changes what the pipe holds.
#[test]
fn hwm_changes_reach_a_connected_pipe() {
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.set_sndhwm(1);
    push.bind("inproc://hwm-change").unwrap();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_rcvhwm(1);
    pull.connect("inproc://hwm-change").unwrap();
    push.set_sndhwm(5);
    assert_eq!(fill(&push), 6);
    // Room given back as the receiver reads: half the pipe at a time.
    for _ in 0..6 {
        pull.recv().unwrap();
    }
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
    pull.set_rcvhwm(3);
    assert_eq!(fill(&push), 8);
    push.set_sndhwm(0);
    // No limit now: what was sent and more go in.
    for _ in 0..100 {
        push.try_send(vec![1u8]).unwrap();
    }
    let mut got = 0;
    while pull.try_recv().is_ok() {
        got += 1;
    }
    assert_eq!(got, 108);
}

/// Lowering the HWMs of a connected pipe whose receiver took messages it
/// had not yet given room back for (999 of a batch of 1000) leaves room:
/// those are credited at the change, not at a receive that never comes.
#[test]
fn lowering_hwms_after_receives_leaves_room() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://lower").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://lower").unwrap();
    for i in 0..999u32 {
        push.send(i.to_be_bytes().to_vec()).unwrap();
    }
    for _ in 0..999 {
        pull.recv().unwrap();
    }
    pull.set_rcvhwm(1);
    push.set_sndhwm(1);
    assert_eq!(fill(&push), 2, "a pipe of 1 + 1, empty");
}

/// A send waiting on a full queue (a peer still waiting for its bind, at
/// SNDHWM) goes on when SNDHWM is raised.
#[test]
fn raising_sndhwm_wakes_a_waiting_sender() {
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.set_sndhwm(2);
    push.connect("inproc://raise").unwrap();
    assert_eq!(fill(&push), 2);
    std::thread::scope(|s| {
        // Raised from another thread, which usually starts after the send
        // below has begun to wait (if not, the send finds room at once).
        s.spawn(|| push.set_sndhwm(3));
        let began = std::time::Instant::now();
        push.send(vec![9u8]).unwrap();
        // Not woken, it would go on only at its timeout (WAIT, 10 s), when
        // it looks once more.
        assert!(began.elapsed() < WAIT / 2, "the send was not woken");
    });
    assert!(matches!(push.try_send(vec![0u8]), Err(e) if matches!(e.error, Error::WouldBlock)));
}
