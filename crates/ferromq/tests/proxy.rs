//! proxy and proxy_steerable in both APIs.

use std::time::Duration;

use ferromq::{
    proxy, proxy_steerable, proxy_steerable_async, Context, Error, Message, Socket, SocketType,
};

const WAIT: Duration = Duration::from_secs(10);

fn sock(ctx: &Context, kind: SocketType, bind: Option<&str>) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_linger(Some(Duration::ZERO));
    if let Some(ep) = bind {
        s.bind(ep).unwrap();
    }
    s
}

#[test]
fn router_dealer_broker_until_context_shutdown() {
    let ctx = Context::new();
    let frontend = sock(&ctx, SocketType::Router, Some("inproc://front"));
    let backend = sock(&ctx, SocketType::Dealer, Some("inproc://back"));
    let broker = std::thread::spawn(move || proxy(&frontend, &backend, None));
    let worker = sock(&ctx, SocketType::Rep, None);
    worker.connect("inproc://back").unwrap();
    let w = std::thread::spawn(move || {
        for _ in 0..4 {
            let m = worker.recv().unwrap();
            let mut reply = Message::from("re:");
            reply.extend(m);
            worker.send(reply).unwrap();
        }
    });
    let clients: Vec<Socket> = (0..2).map(|_| sock(&ctx, SocketType::Req, None)).collect();
    for c in &clients {
        c.connect("inproc://front").unwrap();
    }
    for round in 0..2 {
        for (i, c) in clients.iter().enumerate() {
            c.send(format!("{round}-{i}")).unwrap();
            let r = c.recv().unwrap();
            assert_eq!(
                r,
                Message::from(vec![
                    "re:".into(),
                    ferromq::Bytes::from(format!("{round}-{i}"))
                ])
            );
        }
    }
    w.join().unwrap();
    ctx.shutdown();
    assert!(matches!(broker.join().unwrap(), Err(Error::Terminated)));
}

#[test]
fn xsub_xpub_forwarder_passes_subscriptions_up_and_data_down_with_capture() {
    let ctx = Context::new();
    let frontend = sock(&ctx, SocketType::XSub, Some("inproc://pubs"));
    let backend = sock(&ctx, SocketType::XPub, Some("inproc://subs"));
    let capture = sock(&ctx, SocketType::Pull, Some("inproc://capture"));
    let capture_in = sock(&ctx, SocketType::Push, None);
    capture_in.connect("inproc://capture").unwrap();
    let control = sock(&ctx, SocketType::Pair, Some("inproc://control"));
    let steer = sock(&ctx, SocketType::Pair, None);
    steer.connect("inproc://control").unwrap();
    let fwd = std::thread::spawn(move || {
        proxy_steerable(&frontend, &backend, Some(&capture_in), &control)
    });
    let publisher = sock(&ctx, SocketType::Pub, None);
    publisher.connect("inproc://pubs").unwrap();
    let sub = sock(&ctx, SocketType::Sub, None);
    sub.subscribe("news").unwrap();
    sub.connect("inproc://subs").unwrap();
    // The subscription crosses the proxy (and is captured) before news flows.
    assert_eq!(&capture.recv().unwrap()[0][..], b"\x01news");
    sub.set_rcvtimeo(Some(Duration::from_millis(20)));
    loop {
        publisher.send(["news", "hello"]).unwrap();
        if let Ok(m) = sub.recv() {
            assert_eq!(m, Message::from(["news", "hello"]));
            break;
        }
    }
    steer.send("STATISTICS").unwrap();
    let stats = steer.recv().unwrap();
    assert_eq!(stats.len(), 8);
    let v: Vec<u64> = stats
        .iter()
        .map(|f| u64::from_ne_bytes(f[..].try_into().unwrap()))
        .collect();
    // Frontend took in at least the news (2 frames each); backend sent them out.
    assert!(v[0] >= 2 && v[6] >= 2, "{v:?}");
    steer.send("TERMINATE").unwrap();
    assert!(fwd.join().unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steerable_pause_resume_terminate_async() {
    let ctx = Context::new();
    let pull_in = ctx.async_socket(SocketType::Pull).unwrap();
    pull_in.bind("inproc://in").unwrap();
    let push_out = ctx.async_socket(SocketType::Push).unwrap();
    push_out.bind("inproc://out").unwrap();
    let control = ctx.async_socket(SocketType::Rep).unwrap();
    control.bind("inproc://ctl").unwrap();
    let streamer =
        tokio::spawn(
            async move { proxy_steerable_async(&pull_in, &push_out, None, &control).await },
        );
    let source = ctx.async_socket(SocketType::Push).unwrap();
    source.connect("inproc://in").unwrap();
    let sink = ctx.async_socket(SocketType::Pull).unwrap();
    sink.connect("inproc://out").unwrap();
    let steer = ctx.async_socket(SocketType::Req).unwrap();
    steer.connect("inproc://ctl").unwrap();

    source.send("one").await.unwrap();
    assert_eq!(
        &tokio::time::timeout(WAIT, sink.recv())
            .await
            .unwrap()
            .unwrap()[0][..],
        b"one"
    );
    steer.send("PAUSE").await.unwrap();
    steer.recv().await.unwrap();
    source.send("two").await.unwrap();
    // Paused: nothing comes through.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), sink.recv())
            .await
            .is_err()
    );
    steer.send("RESUME").await.unwrap();
    steer.recv().await.unwrap();
    assert_eq!(
        &tokio::time::timeout(WAIT, sink.recv())
            .await
            .unwrap()
            .unwrap()[0][..],
        b"two"
    );
    steer.send("TERMINATE").await.unwrap();
    steer.recv().await.unwrap();
    assert!(streamer.await.unwrap().is_ok());
}
