//! A last-value cache (the zguide's `lvcache`), written with the async API
//! and XPUB manual mode: it sits between a publisher and its subscribers,
//! remembers the latest message of every topic, and gives a new subscriber
//! that topic's latest value at once instead of making it wait for the next
//! update.
//!
//! ```text
//! cargo run --example last_value_cache -- tcp://localhost:5556 tcp://*:5557
//! ```
//!
//! In manual mode the XPUB hands every subscription to the application
//! (duplicates too, so a second subscriber to a topic is noticed) and
//! applies none itself: the cache applies it with `subscribe`, then
//! publishes the cached value, which therefore reaches the newcomer.

use std::collections::HashMap;

use ferromq::{AsyncSocket, Context, Error, Frame, Message, SocketType};

/// The cache's sockets: an XSUB connected to the publisher and subscribed
/// to everything, and a manual XPUB bound for subscribers.
pub async fn sockets(
    ctx: &Context,
    upstream: &str,
    downstream: &str,
) -> ferromq::Result<(AsyncSocket, AsyncSocket)> {
    let frontend = ctx.async_socket(SocketType::XSub)?;
    frontend.connect(upstream)?;
    frontend
        .send(Message::from(&b"\x01"[..]))
        .await
        .map_err(|e| e.error)?;
    let backend = ctx.async_socket(SocketType::XPub)?;
    backend.set_xpub_manual(true);
    backend.bind(downstream)?;
    Ok((frontend, backend))
}

/// Forwards and caches until a socket fails (e.g. the context is shut
/// down, giving [`Error::Terminated`]).
pub async fn run(frontend: &AsyncSocket, backend: &AsyncSocket) -> ferromq::Result<()> {
    let mut cache: HashMap<Frame, Message> = HashMap::new();
    loop {
        // Both receives are cancel-safe: the one that loses the race keeps
        // its message for the next turn.
        tokio::select! {
            update = frontend.recv() => {
                let update = update?;
                cache.insert(update[0].clone(), update.clone());
                backend.send(update).await.map_err(|e| e.error)?;
            }
            request = backend.recv() => {
                let request = request?;
                let Some((&kind, topic)) = request[0].split_first() else { continue };
                if kind == 1 {
                    backend.subscribe(topic)?;
                    if let Some(last) = cache.get(topic) {
                        backend.send(last.clone()).await.map_err(|e| e.error)?;
                    }
                } else {
                    // The subscriber may have left already; that is fine.
                    match backend.unsubscribe(topic) {
                        Ok(()) | Err(Error::State) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> ferromq::Result<()> {
    let mut args = std::env::args().skip(1);
    let upstream = args.next().unwrap_or_else(|| "tcp://localhost:5556".into());
    let downstream = args.next().unwrap_or_else(|| "tcp://*:5557".into());
    let ctx = Context::new();
    let (frontend, backend) = sockets(&ctx, &upstream, &downstream).await?;
    println!(
        "caching {upstream} for subscribers at {}",
        backend.last_endpoint()
    );
    run(&frontend, &backend).await
}
