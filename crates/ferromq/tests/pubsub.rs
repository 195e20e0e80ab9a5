//! PUB/SUB/XPUB/XSUB over tcp and inproc.

use std::time::{Duration, Instant};

use ferromq::{Context, Error, Message, Socket, SocketType};

const WAIT: Duration = Duration::from_secs(10);

fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_linger(Some(Duration::from_secs(2)));
    s
}

/// Publishes `probe` until the subscriber receives it: subscriptions travel
/// asynchronously, so this is how a publisher learns they arrived.
fn sync(publisher: &Socket, subscriber: &Socket, probe: &'static str) {
    subscriber.set_rcvtimeo(Some(Duration::from_millis(20)));
    let deadline = Instant::now() + WAIT;
    loop {
        publisher.send(probe).unwrap();
        if let Ok(m) = subscriber.recv() {
            if &m[0][..] == probe.as_bytes() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "subscription never arrived");
    }
    // Drain duplicates of the probe.
    while subscriber.try_recv().is_ok() {}
    subscriber.set_rcvtimeo(Some(WAIT));
}

#[test]
fn pub_filters_by_prefix_on_tcp_and_inproc() {
    for ep in ["tcp://127.0.0.1:*", "inproc://pubsub-filter"] {
        let ctx = Context::new();
        let publisher = sock(&ctx, SocketType::Pub);
        publisher.bind(ep).unwrap();
        let sub = sock(&ctx, SocketType::Sub);
        sub.subscribe("weather").unwrap();
        sub.subscribe("sync").unwrap();
        sub.connect(&publisher.last_endpoint()).unwrap();
        sync(&publisher, &sub, "sync");
        publisher.send(["sports", "x"]).unwrap();
        publisher.send(["weather.paris", "12C"]).unwrap();
        let m = sub.recv().unwrap();
        assert_eq!(m, Message::from(["weather.paris", "12C"]), "{ep}");
        sub.unsubscribe("weather").unwrap();
        sync(&publisher, &sub, "sync");
        publisher.send("weather.rome").unwrap();
        publisher.send("sync-end").unwrap();
        assert_eq!(
            &sub.recv().unwrap()[0][..],
            b"sync-end",
            "{ep}: unsubscribed topic leaked"
        );
    }
}

#[test]
fn xpub_sees_subscriptions_counted_and_cancelled_on_disconnect() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.bind("tcp://127.0.0.1:*").unwrap();
    let a = sock(&ctx, SocketType::Sub);
    a.connect(&xpub.last_endpoint()).unwrap();
    a.subscribe("A").unwrap();
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01A");
    let b = sock(&ctx, SocketType::Sub);
    b.connect(&xpub.last_endpoint()).unwrap();
    b.subscribe("A").unwrap();
    b.subscribe("B").unwrap();
    // The second "A" is not new: only "B" comes up.
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01B");
    drop(b);
    // B's disconnect cancels "B" (nobody else has it), not "A".
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x00B");
    assert!(matches!(xpub.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn xsub_forwards_subscriptions_upstream() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.bind("inproc://up").unwrap();
    let xsub = sock(&ctx, SocketType::XSub);
    xsub.connect("inproc://up").unwrap();
    xsub.send(b"\x01topic".to_vec()).unwrap();
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01topic");
    xpub.send(["topic.1", "body"]).unwrap();
    assert_eq!(xsub.recv().unwrap(), Message::from(["topic.1", "body"]));
    xpub.send("other").unwrap();
    xsub.send(b"\x00topic".to_vec()).unwrap();
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x00topic");
}

#[test]
fn slow_subscriber_does_not_block_the_publisher() {
    let ctx = Context::new();
    let publisher = sock(&ctx, SocketType::Pub);
    publisher.set_sndhwm(100);
    publisher.bind("inproc://slow").unwrap();
    let slow = sock(&ctx, SocketType::Sub);
    slow.set_rcvhwm(10);
    slow.subscribe("").unwrap();
    slow.connect("inproc://slow").unwrap();
    let fast = sock(&ctx, SocketType::Sub);
    fast.subscribe("").unwrap();
    fast.connect("inproc://slow").unwrap();
    sync(&publisher, &fast, "s");
    sync(&publisher, &slow, "s");
    // Drop the probes meant for `slow`.
    while fast.try_recv().is_ok() {}
    // 10,000 messages in rounds the fast subscriber keeps up with: it gets
    // every one, in order, while `slow` reads nothing and the publisher
    // never waits (a zero send timeout would fail a blocking send).
    publisher.set_sndtimeo(Some(Duration::ZERO));
    for round in 0..100u32 {
        for i in 0..50u32 {
            publisher
                .send((round * 50 + i).to_be_bytes().to_vec())
                .unwrap();
        }
        for i in 0..50u32 {
            let m = fast.recv().unwrap();
            assert_eq!(
                &m[0][..],
                &(round * 50 + i).to_be_bytes(),
                "fast subscriber lost or reordered"
            );
        }
    }
    // The slow one holds SNDHWM + RCVHWM, less what it read before (its
    // probes) and the pipe has not yet given back: as in libzmq, room goes
    // back in batches of RCVHWM / 2 reads. The rest was dropped for it alone.
    // Drain until quiet (the pipe refills the inbox as it empties).
    slow.set_rcvtimeo(Some(Duration::from_millis(300)));
    let mut slow_got = 0;
    while slow.recv().is_ok() {
        slow_got += 1;
    }
    assert!(
        (106..=110).contains(&slow_got),
        "slow subscriber must hold SNDHWM + RCVHWM less under RCVHWM / 2, got {slow_got}"
    );
}

#[test]
fn huge_topics_do_not_grow_memory() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.bind("tcp://127.0.0.1:*").unwrap();
    let xsub = sock(&ctx, SocketType::XSub);
    xsub.connect(&xpub.last_endpoint()).unwrap();
    // Wait for the connection: before it, subscription changes only net out locally.
    xsub.send(b"\x01up".to_vec()).unwrap();
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01up");
    let mut topic = vec![b'x'; 1 << 20];
    topic.insert(0, 1);
    for _ in 0..20 {
        xsub.send(topic.clone()).unwrap();
        topic[0] = 0;
        xsub.send(topic.clone()).unwrap();
        topic[0] = 1;
    }
    // Each pair is a new subscription then its cancellation.
    for i in 0..40 {
        let m = xpub.recv().unwrap();
        assert_eq!(m[0][0], u8::from(i % 2 == 0));
        assert_eq!(m[0].len(), (1 << 20) + 1);
    }
    assert!(matches!(xpub.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn sub_binds_pub_connects() {
    for ep in ["tcp://127.0.0.1:*", "inproc://sub-binds"] {
        let ctx = Context::new();
        let sub = sock(&ctx, SocketType::Sub);
        sub.subscribe("wea").unwrap();
        sub.bind(ep).unwrap();
        let publisher = sock(&ctx, SocketType::Pub);
        publisher.connect(&sub.last_endpoint()).unwrap();
        sync(&publisher, &sub, "wea-sync");
        publisher.send(["sports", "x"]).unwrap();
        publisher.send(["weather", "12C"]).unwrap();
        assert_eq!(
            sub.recv().unwrap(),
            Message::from(["weather", "12C"]),
            "{ep}"
        );
    }
}

#[test]
fn data_sent_to_a_pub_is_dropped_and_bounded() {
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    let ctx = Context::new();
    let publisher = sock(&ctx, SocketType::Pub);
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let sub = sock(&ctx, SocketType::Sub);
    sub.subscribe("t").unwrap();
    sub.connect(&publisher.last_endpoint()).unwrap();
    // A misbehaving peer: an XSUB that sends plain data (not subscriptions).
    let flooder = sock(&ctx, SocketType::XSub);
    flooder.connect(&publisher.last_endpoint()).unwrap();
    sync(&publisher, &sub, "t-sync");
    let before = rss_kib();
    let junk = vec![b'j'; 64 * 1024];
    for _ in 0..2000 {
        flooder.send(junk.clone()).unwrap(); // 128 MiB in all
    }
    // The publisher still serves its subscriber while the junk pours in.
    sync(&publisher, &sub, "t-after");
    // The flooder's own queue may hold up to its SNDHWM (1000 x 64 KiB =
    // 64 MiB) at any moment; a publisher that kept the junk would add the
    // whole 128 MiB on top.
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 96 * 1024, "memory grew by {grown} KiB");
    assert!(matches!(publisher.try_recv(), Err(Error::NotSupported)));
}

#[test]
fn readiness_ignores_messages_that_no_longer_match() {
    // As libzmq: a message queued before an unsubscribe no longer makes the
    // SUB readable (pyzmq's test_subscribe_method relies on it).
    let ctx = Context::new();
    let publisher = sock(&ctx, SocketType::Pub);
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let sub = sock(&ctx, SocketType::Sub);
    sub.subscribe("p").unwrap();
    sub.connect(&publisher.last_endpoint()).unwrap();
    sync(&publisher, &sub, "p-sync");
    publisher.send("p-1").unwrap();
    let deadline = Instant::now() + WAIT;
    while !sub.readiness().readable {
        assert!(Instant::now() < deadline, "p-1 never arrived");
        std::thread::yield_now();
    }
    sub.unsubscribe("p").unwrap();
    assert!(
        !sub.readiness().readable,
        "a message that no longer matches made the SUB readable"
    );
    assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
}

/// Receives until `n` messages came, returning their first frames sorted
/// (for notifications whose order the socket does not define).
fn recv_sorted(s: &Socket, n: usize) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = (0..n).map(|_| s.recv().unwrap()[0].to_vec()).collect();
    got.sort();
    got
}

#[test]
fn xpub_manual_lets_the_application_decide_subscriptions() {
    for ep in ["inproc://xpub-manual", "tcp://127.0.0.1:*"] {
        let ctx = Context::new();
        let xpub = sock(&ctx, SocketType::XPub);
        xpub.set_xpub_manual(true);
        // No subscription received yet: nobody to apply one to.
        assert!(matches!(xpub.subscribe("A"), Err(Error::State)), "{ep}");
        xpub.bind(ep).unwrap();
        // An XSUB does not filter locally: what it receives is exactly what
        // the XPUB decided to send it.
        let xsub = sock(&ctx, SocketType::XSub);
        xsub.connect(&xpub.last_endpoint()).unwrap();
        xsub.send("\x01A").unwrap();
        assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01A", "{ep}");
        // Manual mode passes duplicates up too, and applies nothing itself.
        // (Sent once the connection is up: subscriptions queued while it is
        // not are replaced by the XSUB's current set when it comes up.)
        xsub.send("\x01A").unwrap();
        assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01A", "{ep}");
        // The application subscribes that subscriber to "B" instead.
        xpub.subscribe("B").unwrap();
        xpub.send("A-not-applied").unwrap();
        xpub.send("B-applied").unwrap();
        assert_eq!(&xsub.recv().unwrap()[0][..], b"B-applied", "{ep}");
        xpub.unsubscribe("B").unwrap();
        xsub.send("\x01C").unwrap();
        assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01C", "{ep}");
        xpub.subscribe("C").unwrap();
        xpub.send("B-after-cancel").unwrap();
        xpub.send("C-applied").unwrap();
        assert_eq!(&xsub.recv().unwrap()[0][..], b"C-applied", "{ep}");
        // When the subscriber leaves, the application hears a cancel for
        // every topic it asked for, and has nobody to apply to any more.
        drop(xsub);
        assert_eq!(
            recv_sorted(&xpub, 2),
            [b"\x00A".to_vec(), b"\x00C".to_vec()],
            "{ep}"
        );
        assert!(matches!(xpub.subscribe("A"), Err(Error::State)), "{ep}");
    }
}

#[test]
fn subscribe_on_a_non_manual_xpub_is_refused() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    assert!(matches!(xpub.subscribe("A"), Err(Error::NotSupported)));
}

#[test]
fn only_first_subscribe_makes_later_frames_data() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_verbose(true);
    xpub.bind("inproc://only-first").unwrap();
    let xsub = sock(&ctx, SocketType::XSub);
    xsub.connect("inproc://only-first").unwrap();
    // By default every frame starting with 0x01 is a subscription.
    xsub.send(["\x01X", "\x01Y"]).unwrap();
    assert_eq!(
        recv_sorted(&xpub, 2),
        [b"\x01X".to_vec(), b"\x01Y".to_vec()]
    );
    xpub.set_only_first_subscribe(true);
    xsub.set_only_first_subscribe(true);
    xsub.send(["hello", "\x01Z"]).unwrap();
    assert_eq!(xpub.recv().unwrap(), Message::from(["hello", "\x01Z"]));
    // "Z" was data, not a subscription: a "Z" message is not delivered.
    xsub.send("\x01W").unwrap();
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01W");
    xpub.send("Z1").unwrap();
    xpub.send("W1").unwrap();
    assert_eq!(&xsub.recv().unwrap()[0][..], b"W1");
}

#[test]
fn one_peers_repeated_subscription_is_cancelled_by_one_cancel() {
    // As libzmq's XPUB: a peer's subscriptions are a set, so the one cancel
    // its XSUB sends after the last unsubscription removes the topic.
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.bind("inproc://set-semantics").unwrap();
    let xsub = sock(&ctx, SocketType::XSub);
    xsub.connect("inproc://set-semantics").unwrap();
    // The XSUB counts too: it passes both subscriptions on, and the cancel
    // only when its own count reaches zero.
    xsub.send("\x01A").unwrap();
    xsub.send("\x01A").unwrap();
    xsub.send("\x00A").unwrap();
    xsub.send("\x00A").unwrap();
    xsub.send("\x01B").unwrap();
    // Not verbose: the XPUB hears the first subscription, the cancel, then B.
    assert_eq!(recv_sorted(&xpub, 1), [b"\x01A".to_vec()]);
    assert_eq!(recv_sorted(&xpub, 1), [b"\x00A".to_vec()]);
    assert_eq!(recv_sorted(&xpub, 1), [b"\x01B".to_vec()]);
    xpub.send("A-gone").unwrap();
    xpub.send("B-here").unwrap();
    assert_eq!(&xsub.recv().unwrap()[0][..], b"B-here");
}

/// A publisher's stream to busy tcp and ipc subscribers: each message is
/// encoded straight into a subscriber's connection or queued for it,
/// whichever is free; two subscribers with no HWM each get the whole
/// stream (sizes from a byte to 20 KB), once and in order.
#[test]
fn a_stream_reaches_every_subscriber_whole_and_in_order() {
    const N: u32 = 50_000;
    let size = |seq: u32| match seq % 89 {
        0 => 20_000,
        n => (n as usize * 13) % 300 + 4,
    };
    let dir = std::env::temp_dir().join(format!("ferromq-pubsub-stream-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    for ep in [
        "tcp://127.0.0.1:*".to_string(),
        format!("ipc://{}", dir.display()),
    ] {
        let ctx = Context::new();
        let publisher = sock(&ctx, SocketType::Pub);
        publisher.set_sndhwm(0);
        publisher.bind(&ep).unwrap();
        let ep = publisher.last_endpoint();
        let subs: Vec<Socket> = (0..2)
            .map(|i| {
                let s = sock(&ctx, SocketType::Sub);
                s.set_rcvhwm(0);
                s.subscribe("").unwrap();
                s.connect(&ep).unwrap();
                sync(&publisher, &s, if i == 0 { "sync-0" } else { "sync-1" });
                s
            })
            .collect();
        std::thread::scope(|s| {
            for sub in &subs {
                let ep = &ep;
                s.spawn(move || {
                    for seq in 0..N {
                        let mut m = sub.recv().expect("every message arrives");
                        // Late copies of the probes come first.
                        while m[0].starts_with(b"sync-") {
                            m = sub.recv().expect("every message arrives");
                        }
                        let got = u32::from_be_bytes(m[0][..4].try_into().unwrap());
                        assert_eq!(got, seq, "in order over {ep}");
                        assert_eq!(m[0].len(), size(seq), "message {seq} whole");
                    }
                });
            }
            for seq in 0..N {
                let mut body = vec![(seq % 251) as u8; size(seq)];
                body[..4].copy_from_slice(&seq.to_be_bytes());
                publisher.send(body).unwrap();
            }
        });
    }
}
