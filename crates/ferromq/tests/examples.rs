//! The zguide-style examples in `examples/`, run in-process: their code is
//! included here as modules, so what is tested is exactly what users read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferromq::{Context, Message, SocketType};

#[path = "../examples/weather_server.rs"]
#[allow(dead_code)]
mod weather_server;

#[path = "../examples/weather_client.rs"]
#[allow(dead_code)]
mod weather_client;

#[path = "../examples/weather_proxy.rs"]
#[allow(dead_code)]
mod weather_proxy;

#[path = "../examples/last_value_cache.rs"]
#[allow(dead_code)]
mod last_value_cache;

const WAIT: Duration = Duration::from_secs(10);

/// Weather server -> forwarder proxy -> client, all over tcp: the client's
/// subscription travels up through the proxy and only its zipcode comes
/// back (the client asserts that of every update).
#[test]
fn weather_updates_reach_a_client_through_the_forwarder() {
    let ctx = Context::new();
    let publisher = ctx.socket(SocketType::Pub).unwrap();
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let (frontend, backend) =
        weather_proxy::sockets(&ctx, &publisher.last_endpoint(), "tcp://127.0.0.1:*").unwrap();
    let downstream = backend.last_endpoint();
    let proxy = std::thread::spawn(move || ferromq::proxy(&frontend, &backend, None));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let server = s.spawn(|| weather_server::publish(&publisher, 10, &stop));
        let client = ctx.socket(SocketType::Sub).unwrap();
        client.set_rcvtimeo(Some(WAIT));
        client.connect(&downstream).unwrap();
        let average = weather_client::average_temperature(&client, "00003", 50).unwrap();
        stop.store(true, Ordering::Relaxed);
        assert!((-80.0..135.0).contains(&average), "average {average}");
        let sent = server.join().unwrap().unwrap();
        assert!(sent >= 50, "only {sent} updates published");
    });
    ctx.shutdown();
    assert!(matches!(
        proxy.join().unwrap(),
        Err(ferromq::Error::Terminated)
    ));
}

/// The last-value cache answers a new subscriber with the newest message of
/// its topic at once, without waiting for the publisher's next update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_value_cache_gives_newcomers_the_latest_value() {
    let ctx = Context::new();
    let publisher = ctx.async_socket(SocketType::Pub).unwrap();
    publisher.bind("inproc://lvc-upstream").unwrap();
    let (frontend, backend) =
        last_value_cache::sockets(&ctx, "inproc://lvc-upstream", "tcp://127.0.0.1:*")
            .await
            .unwrap();
    let downstream = backend.last_endpoint();
    let cache = tokio::spawn(async move { last_value_cache::run(&frontend, &backend).await });

    let subscriber = |topic: &'static str| {
        let s = ctx.async_socket(SocketType::Sub).unwrap();
        s.set_rcvtimeo(Some(WAIT));
        s.connect(&downstream).unwrap();
        s.subscribe(topic).unwrap();
        s
    };
    // A first subscriber to everything; publishing a probe until it arrives
    // shows the cache is forwarding.
    let watcher = subscriber("");
    watcher.set_rcvtimeo(Some(Duration::from_millis(20)));
    let deadline = Instant::now() + WAIT;
    while watcher.recv().await.is_err() {
        assert!(Instant::now() < deadline, "the cache never forwarded");
        publisher.send(Message::from(["sync", ""])).await.unwrap();
    }
    watcher.set_rcvtimeo(Some(WAIT));
    for update in [["A", "a1"], ["A", "a2"], ["B", "b1"]] {
        publisher.send(Message::from(update)).await.unwrap();
    }
    // Once the watcher has them, the cache has cached them.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let m = watcher.recv().await.unwrap();
        if &m[0][..] != b"sync" {
            seen.push(m);
        }
    }
    assert_eq!(seen[2], Message::from(["B", "b1"]));

    // Newcomers get the latest value of their topic, and only that.
    let a = subscriber("A");
    assert_eq!(a.recv().await.unwrap(), Message::from(["A", "a2"]));
    let b = subscriber("B");
    assert_eq!(b.recv().await.unwrap(), Message::from(["B", "b1"]));
    // Later updates flow as usual.
    publisher.send(Message::from(["A", "a3"])).await.unwrap();
    assert_eq!(a.recv().await.unwrap(), Message::from(["A", "a3"]));

    ctx.shutdown();
    assert!(matches!(
        cache.await.unwrap(),
        Err(ferromq::Error::Terminated)
    ));
}
