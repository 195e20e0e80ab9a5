//! The zguide's weather forwarder (`wuproxy`): an XSUB/XPUB proxy that
//! lets subscribers on another network (or port) hear a weather server.
//! Subscriptions flow up through it, so the server still filters.
//!
//! ```text
//! cargo run --example weather_proxy         # tcp://localhost:5556 -> tcp://*:8100
//! cargo run --example weather_proxy -- tcp://localhost:5556 tcp://*:8100
//! ```

use ferromq::{Context, Socket, SocketType};

/// The two sockets of the forwarder: an XSUB connected to the publisher and
/// an XPUB bound where subscribers connect.
pub fn sockets(
    ctx: &Context,
    upstream: &str,
    downstream: &str,
) -> ferromq::Result<(Socket, Socket)> {
    let frontend = ctx.socket(SocketType::XSub)?;
    frontend.connect(upstream)?;
    let backend = ctx.socket(SocketType::XPub)?;
    backend.bind(downstream)?;
    Ok((frontend, backend))
}

fn main() -> ferromq::Result<()> {
    let mut args = std::env::args().skip(1);
    let upstream = args.next().unwrap_or_else(|| "tcp://localhost:5556".into());
    let downstream = args.next().unwrap_or_else(|| "tcp://*:8100".into());
    let ctx = Context::new();
    let (frontend, backend) = sockets(&ctx, &upstream, &downstream)?;
    println!("forwarding {upstream} -> {}", backend.last_endpoint());
    // Runs until the context is shut down.
    ferromq::proxy(&frontend, &backend, None)
}
