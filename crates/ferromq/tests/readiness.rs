//! Readiness (`ZMQ_EVENTS`), the readiness fd (`ZMQ_FD`) and context shutdown (`ETERM`).

use std::time::Duration;

use ferromq::{Context, Error, Readiness, Socket, SocketType};
use tokio::net::UnixStream;

const WAIT: Duration = Duration::from_secs(10);

fn pair(ctx: &Context, a: SocketType, b: SocketType) -> (Socket, Socket) {
    let x = ctx.socket(a).unwrap();
    x.bind("tcp://127.0.0.1:*").unwrap();
    let y = ctx.socket(b).unwrap();
    y.connect(&x.last_endpoint()).unwrap();
    x.set_rcvtimeo(Some(WAIT));
    y.set_rcvtimeo(Some(WAIT));
    (x, y)
}

/// The socket's readiness fd as something tokio can wait on (a clone: the
/// socket keeps its own).
fn watch(s: &Socket) -> UnixStream {
    let owned = s.readiness_fd().unwrap().try_clone_to_owned().unwrap();
    let std = std::os::unix::net::UnixStream::from(owned);
    std.set_nonblocking(true).unwrap();
    UnixStream::from_std(std).unwrap()
}

/// Waits until the fd is readable, then returns the socket's readiness
/// (which drains the fd).
async fn wait_fd(s: &Socket, fd: &UnixStream) -> Readiness {
    tokio::time::timeout(WAIT, fd.readable())
        .await
        .expect("fd never fired")
        .unwrap();
    s.readiness()
}

#[tokio::test]
async fn fd_fires_when_a_message_arrives_and_events_track_the_queue() {
    let ctx = Context::new();
    let (pull, push) = pair(&ctx, SocketType::Pull, SocketType::Push);
    let fd = watch(&pull);
    // A fresh fd starts signalled; consuming it shows nothing to read yet.
    assert_eq!(
        wait_fd(&pull, &fd).await,
        Readiness {
            readable: false,
            writable: false
        }
    );
    push.send("x").unwrap();
    // The fd may fire before the message is in (edge-style); keep waiting until it is.
    let mut r = wait_fd(&pull, &fd).await;
    while !r.readable {
        r = wait_fd(&pull, &fd).await;
    }
    assert_eq!(&pull.try_recv().unwrap()[0][..], b"x");
    assert!(!pull.readiness().readable);
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn req_rep_events_follow_the_lockstep() {
    let ctx = Context::new();
    let (rep, req) = pair(&ctx, SocketType::Rep, SocketType::Req);
    // REQ can send once its peer exists (messages queue before the handshake).
    assert_eq!(
        req.readiness(),
        Readiness {
            readable: false,
            writable: true
        }
    );
    assert_eq!(
        rep.readiness(),
        Readiness {
            readable: false,
            writable: false
        }
    );
    req.send("q").unwrap();
    assert!(!req.readiness().writable, "REQ must wait for the reply");
    let q = rep.recv().unwrap();
    assert_eq!(
        rep.readiness(),
        Readiness {
            readable: false,
            writable: true
        }
    );
    rep.send(q).unwrap();
    assert!(!rep.readiness().writable);
    assert_eq!(&req.recv().unwrap()[0][..], b"q");
    assert_eq!(
        req.readiness(),
        Readiness {
            readable: false,
            writable: true
        }
    );
}

#[tokio::test]
async fn rep_reply_signals_the_fd_when_a_request_is_already_queued() {
    // The "send makes readable" edge: two requests queued, the first answered;
    // the fd must fire so a waiter learns the second is now readable.
    let ctx = Context::new();
    let (rep, dealer) = pair(&ctx, SocketType::Rep, SocketType::Dealer);
    // Both requests leave in one write, so both are queued once the first is.
    dealer.send(["", "first"]).unwrap();
    dealer.send(["", "second"]).unwrap();
    let first = rep.recv().unwrap();
    let fd = watch(&rep);
    // Reading readiness resets the fd: REP owes a reply, so nothing is readable.
    assert_eq!(
        rep.readiness(),
        Readiness {
            readable: false,
            writable: true
        }
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), fd.readable())
            .await
            .is_err(),
        "fd must be quiet until something changes"
    );
    rep.send(first).unwrap();
    assert_eq!(
        wait_fd(&rep, &fd).await,
        Readiness {
            readable: true,
            writable: false
        }
    );
    assert_eq!(&rep.recv().unwrap()[0][..], b"second");
}

#[test]
fn shutdown_wakes_blocked_calls_with_terminated() {
    let ctx = Context::new();
    let (pull, _push) = pair(&ctx, SocketType::Pull, SocketType::Push);
    pull.set_rcvtimeo(None);
    let blocked = std::thread::spawn(move || pull.recv());
    // Nothing will arrive; only shutdown can end the call.
    ctx.shutdown();
    assert!(matches!(blocked.join().unwrap(), Err(Error::Terminated)));
    assert!(matches!(
        ctx.socket(SocketType::Pair),
        Err(Error::Terminated)
    ));
}

#[test]
fn publishers_are_always_writable_subscribers_never() {
    let ctx = Context::new();
    let (publisher, sub) = pair(&ctx, SocketType::Pub, SocketType::Sub);
    assert_eq!(
        publisher.readiness(),
        Readiness {
            readable: false,
            writable: true
        }
    );
    assert_eq!(
        sub.readiness(),
        Readiness {
            readable: false,
            writable: false
        }
    );
    let (xpub, xsub) = pair(&ctx, SocketType::XPub, SocketType::XSub);
    assert!(xpub.readiness().writable);
    assert!(xsub.readiness().writable);
    // XPUB becomes readable with a subscription.
    xsub.send(b"\x01t".to_vec()).unwrap();
    assert_eq!(&xpub.recv().unwrap()[0][..], b"\x01t");
}

#[tokio::test]
async fn fd_never_loses_an_edge_under_concurrent_signals() {
    // A sender streams while this task resets the fd through readiness()
    // as the I/O thread signals it: every message must be announced by the
    // fd or be visible in the readiness read right after a reset, so the
    // receiver never waits in silence with messages queued.
    const N: u32 = 20_000;
    let ctx = Context::new();
    let (pull, push) = pair(&ctx, SocketType::Pull, SocketType::Push);
    let fd = watch(&pull);
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            push.send(i.to_be_bytes().to_vec()).unwrap();
        }
        push
    });
    let mut next = 0u32;
    while next < N {
        if pull.readiness().readable {
            while let Ok(m) = pull.try_recv() {
                assert_eq!(&m[0][..], &next.to_be_bytes());
                next += 1;
            }
            continue;
        }
        // A lost edge shows up here as a timeout.
        tokio::time::timeout(Duration::from_secs(5), fd.readable())
            .await
            .unwrap_or_else(|_| panic!("fd stayed silent with {next} of {N} received"))
            .unwrap();
        // Consume what woke us, so tokio waits for the next edge.
        let _ = fd.try_read(&mut [0u8; 16]);
    }
    drop(sender.join().unwrap());
}
