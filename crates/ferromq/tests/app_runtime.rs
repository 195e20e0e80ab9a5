//! A context on the application's tokio runtime (`ContextBuilder::runtime`):
//! connections run as tasks on the application's own thread.

use std::time::Duration;

use ferromq::{Context, SocketType};
use tokio::runtime::Handle;

const WAIT: Duration = Duration::from_secs(10);

/// Request and reply over tcp on a current-thread runtime: the connections'
/// tasks and the application's share its one thread.
#[tokio::test(flavor = "current_thread")]
async fn round_trips_on_a_current_thread_runtime() {
    let ctx = Context::builder().runtime(Handle::current()).build();
    let rep = ctx.async_socket(SocketType::Rep).unwrap();
    rep.bind("tcp://127.0.0.1:*").unwrap();
    let req = ctx.async_socket(SocketType::Req).unwrap();
    req.connect(&rep.last_endpoint()).unwrap();
    let exchange = async {
        for i in 0..200u32 {
            req.send(i.to_be_bytes().to_vec()).await.unwrap();
            let m = rep.recv().await.unwrap();
            rep.send(m).await.unwrap();
            assert_eq!(&req.recv().await.unwrap()[0][..], &i.to_be_bytes());
        }
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("round trips finish");
    drop((req, rep));
    tokio::time::timeout(WAIT, ctx.term_async())
        .await
        .expect("term_async returns")
        .unwrap();
}

/// `term_async` waits, without blocking the runtime's thread, until a
/// closed socket's queued messages are out: all of them then arrive.
#[tokio::test(flavor = "current_thread")]
async fn term_async_waits_for_the_flush() {
    let receiving = Context::builder().runtime(Handle::current()).build();
    let pull = receiving.async_socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(10);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let sending = Context::builder().runtime(Handle::current()).build();
    let push = sending.async_socket(SocketType::Push).unwrap();
    push.connect(&pull.last_endpoint()).unwrap();
    const N: u32 = 5000;
    for i in 0..N {
        push.send(i.to_be_bytes().to_vec()).await.unwrap();
    }
    drop(push);
    let (term, received) = tokio::join!(
        tokio::time::timeout(WAIT, sending.term_async()),
        tokio::time::timeout(WAIT, async {
            for i in 0..N {
                assert_eq!(&pull.recv().await.unwrap()[0][..], &i.to_be_bytes());
            }
        }),
    );
    term.expect("term_async returns once flushed").unwrap();
    received.expect("every message arrives");
}

/// A task that sends without ever waiting still lets its connections write
/// as it goes (here: 1 MiB messages queue behind each other, and the
/// connection, on the same thread, writes the first ones before the loop
/// ends), rather than queueing everything first.
#[tokio::test(flavor = "current_thread")]
async fn a_sending_task_lets_its_connection_write_as_it_goes() {
    // The receiver has I/O threads of its own: it reads while this thread
    // is busy (or blocked).
    let other = Context::new();
    let pull = other.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(Some(Duration::from_secs(5)));
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ctx = Context::builder().runtime(Handle::current()).build();
    let push = ctx.async_socket(SocketType::Push).unwrap();
    push.connect(&pull.last_endpoint()).unwrap();
    // Up and running: a first message makes it across.
    push.send(b"hello".to_vec()).await.unwrap();
    let pull = tokio::task::spawn_blocking(move || {
        assert_eq!(&pull.recv().unwrap()[0][..], b"hello");
        pull
    })
    .await
    .unwrap();
    // The connection writes only while the loop gives way, and only as the
    // receiver's threads drain the kernel's buffers: up to 64 sends for
    // that to happen (the loop never has to wait: no coop-budget yield
    // comes within 64 sends either).
    let big = vec![7u8; 1 << 20];
    let mut arrived = None;
    for _ in 0..64 {
        push.send(big.clone()).await.unwrap();
        if let Ok(m) = pull.try_recv() {
            arrived = Some(m);
            break;
        }
    }
    // Blocking this thread now stops the connection: only what it wrote
    // during the loop can arrive.
    let first = match arrived {
        Some(m) => m,
        None => pull
            .recv()
            .expect("the first big message went out during the loop"),
    };
    assert_eq!(first[0].len(), 1 << 20);
    drop(push);
    drop(ctx);
}

/// On the application's runtime, a message of 256 KiB or more is written
/// to the kernel by `send` itself whenever the connection has nothing else
/// to write, in a stream of them too: its buffer is released before `send` returns (so
/// the application's next buffer of that size reuses its memory), not when
/// the connection's task next runs. Each message here goes out into empty
/// socket buffers, which take it whole.
#[tokio::test(flavor = "current_thread")]
async fn a_large_message_is_written_by_send_itself() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A payload that records when it is released.
    struct Watched(Vec<u8>, Arc<AtomicBool>);
    impl AsRef<[u8]> for Watched {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    impl Drop for Watched {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
        }
    }

    let other = Context::new();
    let pull = other.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(Some(WAIT));
    pull.update_options(|o| o.rcvbuf = Some(4 << 20));
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ctx = Context::builder().runtime(Handle::current()).build();
    let push = ctx.async_socket(SocketType::Push).unwrap();
    push.update_options(|o| o.sndbuf = Some(4 << 20));
    push.connect(&pull.last_endpoint()).unwrap();
    push.send(b"hello".to_vec()).await.unwrap();
    let mut pull = tokio::task::spawn_blocking(move || {
        assert_eq!(&pull.recv().unwrap()[0][..], b"hello");
        pull
    })
    .await
    .unwrap();
    for i in 0..4u8 {
        let released = Arc::new(AtomicBool::new(false));
        let payload = Watched(vec![i; 256 << 10], released.clone());
        push.send(ferromq::Bytes::from_owner(payload))
            .await
            .unwrap();
        assert!(
            released.load(Ordering::SeqCst),
            "message {i} was still held when send returned"
        );
        pull = tokio::task::spawn_blocking(move || {
            let m = pull.recv().unwrap();
            assert_eq!((m[0].len(), m[0][0]), (256 << 10, i));
            pull
        })
        .await
        .unwrap();
    }
    drop(push);
    drop(ctx);
}

/// A task that sends without ever having to wait still gives its thread to
/// other tasks now and then (tokio's cooperative budget), as any tokio
/// resource does: on a current-thread runtime, the other task runs before
/// the loop ends.
#[tokio::test(flavor = "current_thread")]
async fn a_send_loop_that_never_waits_lets_other_tasks_run() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const SENDS: u32 = 10_000;
    let ctx = Context::new();
    let pull = ctx.async_socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(0);
    pull.bind("inproc://never-waits").unwrap();
    let push = ctx.async_socket(SocketType::Push).unwrap();
    push.set_sndhwm(0);
    push.connect("inproc://never-waits").unwrap();
    let sender = tokio::spawn(async move {
        // Spawned from here: it runs only when this task gives way.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        for i in 0..SENDS {
            push.send("x").await.unwrap();
            if ran.load(Ordering::SeqCst) {
                return Some(i);
            }
        }
        None
    });
    let after = sender.await.unwrap();
    assert!(
        after.is_some(),
        "the other task did not run during {SENDS} sends"
    );
    drop(pull);
}

/// `send` takes anything that converts into a message, from generic code
/// too (the bound is `Into<Message>`, nothing more).
#[tokio::test(flavor = "current_thread")]
async fn generic_code_can_send() {
    async fn send_each<T: Into<ferromq::Message>>(s: &ferromq::AsyncSocket, items: Vec<T>) {
        for item in items {
            s.send(item).await.unwrap();
        }
    }
    let ctx = Context::new();
    let pull = ctx.async_socket(SocketType::Pull).unwrap();
    pull.bind("inproc://generic").unwrap();
    let push = ctx.async_socket(SocketType::Push).unwrap();
    push.connect("inproc://generic").unwrap();
    send_each(&push, vec!["a", "b"]).await;
    send_each(&push, vec![b"c".to_vec()]).await;
    for want in ["a", "b", "c"] {
        let m = tokio::time::timeout(WAIT, pull.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m[0], want);
    }
}

/// Two tasks of one current-thread runtime passing large messages over
/// inproc: the sender lets the receiver catch up after a few (it yields
/// once a handful wait), so the receiver never sees it far ahead, and
/// every message arrives in order. Without the yield it ran 128 ahead
/// (until tokio's cooperative budget stopped it), each a fresh copy.
#[tokio::test(flavor = "current_thread")]
async fn an_inproc_sender_of_large_messages_lets_its_receiver_catch_up() {
    use std::sync::atomic::{AtomicU32, Ordering};
    const N: u32 = 300;
    const LEN: usize = 256 * 1024;
    let ctx = Context::new();
    let pull = ctx.async_socket(SocketType::Pull).unwrap();
    pull.bind("inproc://catch-up").unwrap();
    let push = ctx.async_socket(SocketType::Push).unwrap();
    push.connect("inproc://catch-up").unwrap();
    let sent = AtomicU32::new(0);
    let send = async {
        let mut data = vec![0u8; LEN];
        for i in 0..N {
            data[..4].copy_from_slice(&i.to_be_bytes());
            push.send(ferromq::Message::copy_from_slice(&data))
                .await
                .unwrap();
            sent.store(i + 1, Ordering::Relaxed);
        }
    };
    let recv = async {
        let mut most = 0;
        for i in 0..N {
            let m = pull.recv().await.unwrap();
            assert_eq!((m[0].len(), &m[0][..4]), (LEN, &i.to_be_bytes()[..]));
            most = most.max(sent.load(Ordering::Relaxed) - i);
        }
        most
    };
    let ((), most) = tokio::time::timeout(WAIT, async { tokio::join!(send, recv) })
        .await
        .expect("the exchange finishes");
    assert!(most <= 8, "the sender was {most} messages ahead");
}
