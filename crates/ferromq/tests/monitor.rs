//! Socket monitor events in libzmq's format, as a monitoring application
//! sees them on its PAIR socket.

use std::io::Write;
use std::time::Duration;

use ferromq::monitor::{self, Event};
use ferromq::{Context, Error, Socket, SocketType};

const WAIT: Duration = Duration::from_secs(10);

fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_linger(Some(Duration::ZERO));
    s
}

/// Monitors `s` with every event; returns the PAIR that reads them.
fn watch(ctx: &Context, s: &Socket, name: &str) -> Socket {
    let ep = format!("inproc://monitor-{name}");
    s.monitor(&ep, monitor::ALL).unwrap();
    let events = sock(ctx, SocketType::Pair);
    events.connect(&ep).unwrap();
    events
}

fn next(events: &Socket) -> Event {
    let m = events.recv().expect("a monitor event in time");
    Event::parse(&m).unwrap_or_else(|| panic!("not an event: {m:?}"))
}

/// The next event other than those in `skip`.
fn next_but(events: &Socket, skip: &[u16]) -> Event {
    loop {
        let e = next(events);
        if !skip.contains(&e.event) {
            return e;
        }
    }
}

#[test]
fn connection_life_cycle_on_both_sides() {
    let ctx = Context::new();
    let server = sock(&ctx, SocketType::Router);
    let server_events = watch(&ctx, &server, "server");
    server.bind("tcp://127.0.0.1:*").unwrap();
    let ep = server.last_endpoint();
    let e = next(&server_events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::LISTENING, ep.as_str())
    );
    assert!(e.value > 2, "a listening fd: {e:?}");

    let client = sock(&ctx, SocketType::Dealer);
    let client_events = watch(&ctx, &client, "client");
    client.connect(&ep).unwrap();
    let e = next(&client_events);
    assert_eq!((e.event, e.value), (monitor::CONNECT_DELAYED, 115), "{e:?}");
    let e = next(&client_events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::CONNECTED, ep.as_str())
    );
    let e = next(&client_events);
    assert_eq!((e.event, e.value), (monitor::HANDSHAKE_SUCCEEDED, 0));

    let e = next(&server_events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::ACCEPTED, ep.as_str())
    );
    let e = next(&server_events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::HANDSHAKE_SUCCEEDED, ep.as_str())
    );

    // The client goes: the server sees the disconnection.
    client.close();
    let e = next(&server_events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::DISCONNECTED, ep.as_str())
    );
    // The listener closes on unbind.
    server.unbind(&ep).unwrap();
    let e = next(&server_events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::CLOSED, ep.as_str())
    );
    // Stopping the monitor says so, last.
    server.disable_monitor().unwrap();
    let e = next(&server_events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::MONITOR_STOPPED, "")
    );
    // The client's monitor stopped once the closed client was gone.
    let e = next_but(&client_events, &[monitor::DISCONNECTED]);
    assert_eq!(e.event, monitor::MONITOR_STOPPED, "{e:?}");
}

#[test]
fn failed_connects_are_retried_with_the_interval() {
    let ctx = Context::new();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", dead.local_addr().unwrap());
    drop(dead);
    let client = sock(&ctx, SocketType::Dealer);
    client.set_reconnect_ivl(Some(Duration::from_millis(30)));
    let events = watch(&ctx, &client, "retry");
    client.connect(&ep).unwrap();
    let e = next(&events);
    assert_eq!(
        (e.event, e.endpoint.as_str()),
        (monitor::CONNECT_DELAYED, ep.as_str())
    );
    let e = next(&events);
    assert_eq!((e.event, e.value), (monitor::CONNECT_RETRIED, 30), "{e:?}");
    // And again.
    let e = next(&events);
    assert_eq!(e.event, monitor::CONNECT_DELAYED);
}

#[test]
fn a_bad_handshake_is_reported_then_the_disconnection() {
    let ctx = Context::new();
    let server = sock(&ctx, SocketType::Rep);
    let events = watch(&ctx, &server, "bad-handshake");
    server.bind("tcp://127.0.0.1:*").unwrap();
    let addr = server.last_endpoint()[6..].to_string();
    assert_eq!(next(&events).event, monitor::LISTENING);
    let mut raw = std::net::TcpStream::connect(&addr).unwrap();
    // A ZMTP 3.0 greeting with a mechanism nobody offers.
    let mut greeting = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0];
    greeting.extend(b"NOPE");
    greeting.resize(64, 0);
    raw.write_all(&greeting).unwrap();
    assert_eq!(next(&events).event, monitor::ACCEPTED);
    let e = next(&events);
    assert_eq!(
        (e.event, e.value),
        (
            monitor::HANDSHAKE_FAILED_PROTOCOL,
            monitor::PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
        ),
        "{e:?}"
    );
    assert_eq!(next(&events).event, monitor::DISCONNECTED);
}

#[test]
fn events_can_be_filtered_and_monitors_must_be_inproc() {
    let ctx = Context::new();
    let s = sock(&ctx, SocketType::Pull);
    assert!(matches!(
        s.monitor("tcp://127.0.0.1:5999", monitor::ALL),
        Err(Error::Endpoint(_))
    ));
    s.monitor("inproc://filtered", u32::from(monitor::CLOSED))
        .unwrap();
    let events = sock(&ctx, SocketType::Pair);
    events.connect("inproc://filtered").unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap(); // LISTENING: not asked for
    let ep = s.last_endpoint();
    s.unbind(&ep).unwrap();
    let e = next(&events);
    assert_eq!((e.event, e.endpoint), (monitor::CLOSED, ep));
}
