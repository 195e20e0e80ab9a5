//! The zguide's weather server (`wuserver`): publishes an endless stream of
//! `"zipcode temperature humidity"` updates on a PUB socket.
//!
//! ```text
//! cargo run --example weather_server                  # binds tcp://*:5556
//! cargo run --example weather_server -- tcp://*:7000
//! ```
//!
//! Pair it with `weather_client` (and `weather_proxy` in between, if you like).

use std::sync::atomic::{AtomicBool, Ordering};

use ferromq::{Context, Socket, SocketType};

/// Publishes updates for zipcodes `0..zipcodes` until `stop` is set;
/// returns how many it sent.
pub fn publish(publisher: &Socket, zipcodes: u32, stop: &AtomicBool) -> ferromq::Result<u64> {
    // xorshift64: the weather need not be cryptographically random.
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(std::process::id());
    let mut random = move |n: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % u64::from(n)) as i64
    };
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let zipcode = random(zipcodes);
        let temperature = random(215) - 80;
        let humidity = random(50) + 10;
        publisher
            .send(format!("{zipcode:05} {temperature} {humidity}"))
            .map_err(|e| e.error)?;
        sent += 1;
    }
    Ok(sent)
}

fn main() -> ferromq::Result<()> {
    let endpoint = std::env::args().nth(1);
    let ctx = Context::new();
    let publisher = ctx.socket(SocketType::Pub)?;
    publisher.bind(endpoint.as_deref().unwrap_or("tcp://*:5556"))?;
    println!("weather server publishing on {}", publisher.last_endpoint());
    publish(&publisher, 100_000, &AtomicBool::new(false))?;
    Ok(())
}
