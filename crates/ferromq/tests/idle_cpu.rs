//! Sockets whose peers stop reading must leave the CPU alone: once a pipe
//! or connection is full, nothing should run until the reader moves.
//!
//! One test per binary on purpose: it measures this process's CPU time,
//! which tests running beside it would add to.

use std::time::Duration;

use ferromq::{Context, Error, Socket, SocketType};

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces; count fields after its ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock
    // ticks of USER_HZ, which Linux fixes at 100 for /proc.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(Some(Duration::ZERO));
    s
}

/// Sends until the socket refuses; returns how many it took.
fn fill(push: &Socket, size: usize) -> usize {
    push.set_sndtimeo(Some(Duration::ZERO));
    let mut n = 0;
    loop {
        match push.send(vec![7u8; size]) {
            Ok(()) => n += 1,
            Err(e) if matches!(e.error, Error::WouldBlock) => return n,
            Err(e) => panic!("send failed: {e:?}"),
        }
    }
}

/// CPU used while nothing should happen for `window`.
fn cpu_over(window: Duration) -> Duration {
    let before = cpu_time();
    std::thread::sleep(window);
    cpu_time() - before
}

#[test]
fn full_pipes_and_connections_do_not_spin() {
    let ctx = Context::new();

    // inproc: fill the pipe, then read one message so the receiver owes the
    // sender room it has not given back yet (libzmq gives it in batches).
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_rcvhwm(10);
    pull.bind("inproc://idle").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.set_sndhwm(10);
    push.connect("inproc://idle").unwrap();
    assert_eq!(fill(&push, 16), 20, "inproc pipe holds SNDHWM + RCVHWM");
    pull.recv().unwrap();

    // tcp: a PULL that never reads; the sender's queue and kernel fill up.
    let tpull = sock(&ctx, SocketType::Pull);
    tpull.set_rcvhwm(10);
    tpull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = tpull.last_endpoint();
    let tpush = sock(&ctx, SocketType::Push);
    tpush.set_sndhwm(10);
    tpush.connect(&ep).unwrap();
    // Blocking sends until the connection is up and the queue full.
    tpush.set_sndtimeo(Some(Duration::from_secs(10)));
    tpush.send(vec![7u8; 64 * 1024]).unwrap();
    let sent = fill(&tpush, 64 * 1024);
    assert!(
        sent < 1000,
        "a non-reading peer took {sent} messages of 64 KiB"
    );

    // A spinning I/O thread would use the whole window; idle costs ~nothing.
    let window = Duration::from_millis(500);
    let used = cpu_over(window);
    assert!(
        used < window / 5,
        "used {used:?} of CPU in {window:?} with every pipe full"
    );
}
