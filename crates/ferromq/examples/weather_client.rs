//! The zguide's weather client (`wuclient`): subscribes to one zipcode and
//! prints the average temperature of the next 100 updates.
//!
//! ```text
//! cargo run --example weather_client                        # zipcode 10001
//! cargo run --example weather_client -- 10001 tcp://localhost:5556
//! ```

use ferromq::{Context, Socket, SocketType};

/// Receives `updates` updates for `zipcode` on `subscriber` (already
/// connected) and returns their average temperature.
pub fn average_temperature(
    subscriber: &Socket,
    zipcode: &str,
    updates: u32,
) -> ferromq::Result<f64> {
    // The trailing space keeps "10001" from matching "100010".
    subscriber.subscribe(format!("{zipcode} "))?;
    let mut total = 0i64;
    for _ in 0..updates {
        let msg = subscriber.recv()?;
        let text = String::from_utf8_lossy(&msg[0]);
        let mut fields = text.split(' ');
        assert_eq!(
            fields.next(),
            Some(zipcode),
            "filtering let {text:?} through"
        );
        let temperature: i64 = fields
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("malformed update {text:?}"));
        total += temperature;
    }
    Ok(total as f64 / f64::from(updates))
}

fn main() -> ferromq::Result<()> {
    let mut args = std::env::args().skip(1);
    let zipcode = args.next().unwrap_or_else(|| "10001".into());
    let endpoint = args.next().unwrap_or_else(|| "tcp://localhost:5556".into());
    let ctx = Context::new();
    let subscriber = ctx.socket(SocketType::Sub)?;
    subscriber.connect(&endpoint)?;
    println!("collecting updates for zipcode {zipcode} from {endpoint}");
    let average = average_temperature(&subscriber, &zipcode, 100)?;
    println!("average temperature for zipcode '{zipcode}' was {average:.1}F");
    Ok(())
}
