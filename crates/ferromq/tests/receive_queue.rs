//! A PULL, DEALER or PAIR whose only peer is a tcp or ipc one takes that
//! peer's whole queue in one go and serves the receives that follow from
//! it. What a user sees must not change: order, no loss, HWM pauses that
//! resume, other peers joining, readiness, disconnect.

use ferromq::{Context, Message, SocketType};

mod common;
use common::sock;

fn tagged(tag: u8, i: u32) -> Message {
    let mut b = vec![tag];
    b.extend_from_slice(&i.to_be_bytes());
    Message::from(b)
}

/// A small RCVHWM pauses the connection over and over; each time the
/// receiver takes the queue, reading must resume (else this hangs).
#[test]
fn a_paused_connection_resumes_when_its_queue_is_taken() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_rcvhwm(10);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.connect(&pull.last_endpoint()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..50_000 {
                push.send(tagged(b'a', i)).unwrap();
            }
        });
        for i in 0..50_000 {
            assert_eq!(pull.recv().unwrap(), tagged(b'a', i));
        }
    });
}

/// A second peer joins while the receiver works through the first one's
/// taken queue: each peer's messages arrive once and in order.
#[test]
fn a_peer_joining_mid_batch_is_heard_in_order() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.last_endpoint();
    let a = sock(&ctx, SocketType::Push);
    a.connect(&ep).unwrap();
    for i in 0..2000 {
        a.send(tagged(b'a', i)).unwrap();
    }
    for i in 0..10 {
        assert_eq!(pull.recv().unwrap(), tagged(b'a', i));
    }
    let b = sock(&ctx, SocketType::Push);
    b.connect(&ep).unwrap();
    for i in 0..2000 {
        b.send(tagged(b'b', i)).unwrap();
    }
    let mut next = [10u32, 0];
    while next != [2000, 2000] {
        let m = pull.recv().unwrap();
        let (tag, i) = (m[0][0], u32::from_be_bytes(m[0][1..5].try_into().unwrap()));
        let k = usize::from(tag == b'b');
        assert_eq!(i, next[k], "peer {} in order", tag as char);
        next[k] += 1;
    }
}

/// Readiness counts messages already taken off the peer's queue: after a
/// receive, readable holds as long as receives succeed without waiting.
#[test]
fn readiness_counts_taken_messages() {
    let ctx = Context::new();
    let pair = sock(&ctx, SocketType::Pair);
    pair.bind("tcp://127.0.0.1:*").unwrap();
    let peer = sock(&ctx, SocketType::Pair);
    peer.connect(&pair.last_endpoint()).unwrap();
    for i in 0..100 {
        peer.send(tagged(b'p', i)).unwrap();
    }
    assert_eq!(pair.recv().unwrap(), tagged(b'p', 0));
    let mut i = 1;
    while i < 100 {
        // Whatever has arrived is receivable at once, and readiness says so.
        while pair.readiness().readable {
            assert_eq!(pair.try_recv().unwrap(), tagged(b'p', i));
            i += 1;
        }
        if i < 100 {
            assert_eq!(pair.recv().unwrap(), tagged(b'p', i));
            i += 1;
        }
    }
    assert!(!pair.readiness().readable);
}

/// Three threads wait on one PULL; a peer's burst of 30 messages comes in
/// one read, and the first thread to wake takes all of it off the
/// connection's queue. Each thread wants 10 messages: the others must be
/// woken to share what the first one holds, or they would wait for more
/// input that never comes.
#[test]
fn receivers_waiting_together_share_a_burst() {
    use common::raw::{frame, greeting, ready};
    use std::io::Write;
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let addr = pull
        .last_endpoint()
        .trim_start_matches("tcp://")
        .to_string();
    let mut peer = std::net::TcpStream::connect(addr).unwrap();
    let mut hello = greeting("NULL");
    hello.extend(ready("PUSH"));
    hello.extend(frame(0, b"hello"));
    peer.write_all(&hello).unwrap();
    assert_eq!(&pull.recv().unwrap()[0][..], b"hello");
    let burst: Vec<u8> = (0..30u32)
        .flat_map(|i| frame(0, &i.to_be_bytes()))
        .collect();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    (0..10)
                        .map(|_| pull.recv().map(|m| m[0].to_vec()))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        // If the threads are not all waiting yet, the burst is only easier
        // to share.
        common::let_it_wait();
        peer.write_all(&burst).unwrap();
        let sent = std::time::Instant::now();
        let mut got: Vec<Vec<u8>> = Vec::new();
        for t in threads {
            got.extend(t.join().unwrap().expect("each thread gets 10 messages"));
        }
        // A thread left waiting looks again when its receive times out
        // (after WAIT) and finds the messages then: too late.
        assert!(
            sent.elapsed() < common::WAIT / 2,
            "a waiting thread was not woken for the burst"
        );
        got.sort();
        let want: Vec<Vec<u8>> = (0..30u32).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(got, want, "every message once");
    });
}

/// A message of `len` bytes starting with `i`.
fn large(i: u32, len: usize) -> Message {
    let mut b = vec![0u8; len];
    b[..4].copy_from_slice(&i.to_be_bytes());
    Message::from(b)
}

/// A receiver that takes nothing reads large messages only about a
/// megabyte ahead, not RCVHWM of them (1000 of 256 KiB would be 250 MiB
/// in its memory): the rest waits in the kernel and in the sender's
/// queue, whose sends then block. Once the receiver takes them, every
/// message arrives, in order, and the stream flows again.
#[test]
fn a_receiver_reads_large_messages_only_so_far_ahead() {
    const LEN: usize = 256 << 10;
    // Far more than the kernel's buffers and the read-ahead hold on
    // loopback (a few tens of these), far fewer than RCVHWM.
    const CAP: u32 = 400;
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.set_sndhwm(1);
    push.connect(&pull.last_endpoint()).unwrap();
    // Let the connection come up before sends may time out.
    push.send(large(0, LEN)).unwrap();
    assert_eq!(pull.recv().unwrap(), large(0, LEN));
    push.set_sndtimeo(Some(std::time::Duration::from_millis(500)));
    let mut sent = 1;
    while sent < CAP {
        match push.send(large(sent, LEN)) {
            Ok(()) => sent += 1,
            Err(e) if matches!(e.error, ferromq::Error::WouldBlock) => break,
            Err(e) => panic!("send: {}", e.error),
        }
    }
    assert!(
        sent < CAP,
        "the receiver took {CAP} messages of {LEN} bytes into memory without being asked"
    );
    for i in 1..sent {
        assert_eq!(pull.recv().unwrap(), large(i, LEN));
    }
    push.set_sndtimeo(Some(common::WAIT));
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in sent..sent + 100 {
                push.send(large(i, LEN)).unwrap();
            }
        });
        for i in sent..sent + 100 {
            assert_eq!(pull.recv().unwrap(), large(i, LEN));
        }
    });
}
