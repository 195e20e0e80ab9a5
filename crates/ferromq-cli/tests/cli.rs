//! The `ferromq` command as a user runs it: real processes on loopback.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferromq"))
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child if the test fails before waiting for it.
struct Proc(Option<Child>);

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        Proc(Some(
            bin()
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    }

    fn finish(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(args: &[&str]) -> Output {
    Proc::spawn(args).finish()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn req_rep_echo_round_trip_prints_both_sides() {
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let rep = Proc::spawn(&[
        "rep",
        "--bind",
        &ep,
        "--echo",
        "--count",
        "2",
        "--timeout",
        "10000",
    ]);
    // REQ connects before or after the bind: either way the requests queue.
    let req = run(&[
        "req",
        "--connect",
        &ep,
        "--send",
        "hello|world",
        "--send",
        "bin\u{1}",
        "--timeout",
        "10000",
    ]);
    assert!(req.status.success(), "{}", stderr(&req));
    assert_eq!(stdout(&req), "hello|world\n0x62696e01\n");
    let rep = rep.finish();
    assert!(rep.status.success(), "{}", stderr(&rep));
    assert_eq!(stdout(&rep), "hello|world\n0x62696e01\n");
}

#[test]
fn push_reads_stdin_lines_and_exits_after_delivery() {
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let pull = Proc::spawn(&["pull", "--bind", &ep, "--count", "3", "--timeout", "10000"]);
    let mut push = Proc::spawn(&[
        "push",
        "--connect",
        &ep,
        "--delimiter",
        ",",
        "--timeout",
        "10000",
    ]);
    push.0
        .as_mut()
        .unwrap()
        .stdin
        .take()
        .unwrap()
        .write_all(b"a\nb,c\nd\n")
        .unwrap();
    let push = push.finish();
    assert!(push.status.success(), "{}", stderr(&push));
    let pull = pull.finish();
    assert!(pull.status.success(), "{}", stderr(&pull));
    assert_eq!(stdout(&pull), "a\nb|c\nd\n");
}

#[test]
fn router_echo_keeps_routing_id_and_hex_io() {
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let router = Proc::spawn(&[
        "router",
        "--bind",
        &ep,
        "--echo",
        "--count",
        "1",
        "--hex",
        "--timeout",
        "10000",
    ]);
    let dealer = run(&[
        "dealer",
        "--connect",
        &ep,
        "--identity",
        "4142",
        "--hex",
        "--send",
        "|0xff00",
        "--count",
        "1",
        "--timeout",
        "10000",
    ]);
    assert!(dealer.status.success(), "{}", stderr(&dealer));
    assert_eq!(stdout(&dealer), "0x|0xff00\n");
    let router = router.finish();
    assert_eq!(stdout(&router), "0x4142|0x|0xff00\n");
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let cases: [&[&str]; 5] = [
        &["bogus"],
        &["push", "--connect", "tcp://127.0.0.1:1:2"],
        &["pull", "--bind", "tcp://127.0.0.1:99999"],
        &["push"],
        &[
            "push",
            "--connect",
            "tcp://127.0.0.1:5",
            "--hex",
            "--send",
            "0xzz",
        ],
    ];
    for args in cases {
        let o = run(args);
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ferromq: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn timeout_fails_promptly() {
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let start = Instant::now();
    let o = run(&["pull", "--connect", &ep, "--count", "1", "--timeout", "300"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn undeliverable_messages_fail_at_the_deadline() {
    // Nobody listens: the PUSH cannot deliver, so it must not report success.
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let o = run(&[
        "push",
        "--connect",
        &ep,
        "--send",
        "lost",
        "--timeout",
        "500",
    ]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn pub_sub_filters_and_xpub_prints_subscriptions() {
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let xpub = Proc::spawn(&["xpub", "--bind", &ep, "--count", "1", "--timeout", "10000"]);
    let sub = Proc::spawn(&[
        "sub",
        "--connect",
        &ep,
        "--subscribe",
        "AB",
        "--count",
        "1",
        "--timeout",
        "10000",
    ]);
    let xpub = xpub.finish();
    assert!(xpub.status.success(), "{}", stderr(&xpub));
    assert_eq!(stdout(&xpub), "0x014142\n");
    drop(sub);

    // A SUB that binds, a PUB that connects and publishes until it is heard.
    let ep = format!("tcp://127.0.0.1:{}", free_port());
    let sub = Proc::spawn(&[
        "sub",
        "--bind",
        &ep,
        "--subscribe",
        "weather",
        "--count",
        "1",
        "--timeout",
        "10000",
    ]);
    let mut publisher = Proc::spawn(&["pub", "--connect", &ep, "--timeout", "10000"]);
    let mut stdin = publisher.0.as_mut().unwrap().stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // Subscriptions take a moment to arrive; a publisher drops until then.
        for _ in 0..200 {
            if stdin.write_all(b"sports|x\nweather|12C\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let sub = sub.finish();
    drop(publisher);
    let _ = feeder.join();
    assert!(sub.status.success(), "{}", stderr(&sub));
    assert_eq!(stdout(&sub), "weather|12C\n");
}

#[test]
fn proxy_forwards_between_pub_and_sub() {
    let (front, back) = (free_port(), free_port());
    let proxy = Proc::spawn(&[
        "proxy",
        "--frontend",
        &format!("xsub@tcp://127.0.0.1:{front}"),
        "--backend",
        &format!("xpub@tcp://127.0.0.1:{back}"),
        "--timeout",
        "20000",
    ]);
    let sub = Proc::spawn(&[
        "sub",
        "--connect",
        &format!("tcp://127.0.0.1:{back}"),
        "--subscribe",
        "news",
        "--count",
        "1",
        "--timeout",
        "10000",
    ]);
    let mut publisher = Proc::spawn(&[
        "pub",
        "--connect",
        &format!("tcp://127.0.0.1:{front}"),
        "--timeout",
        "10000",
    ]);
    let mut stdin = publisher.0.as_mut().unwrap().stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // The subscription crosses the proxy asynchronously; publish until heard.
        for _ in 0..400 {
            if stdin.write_all(b"sports|x\nnews|hello\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let sub = sub.finish();
    drop(publisher);
    drop(proxy);
    let _ = feeder.join();
    assert!(sub.status.success(), "{}", stderr(&sub));
    assert_eq!(stdout(&sub), "news|hello\n");

    let bad = run(&[
        "proxy",
        "--frontend",
        "xsub:tcp://x:1",
        "--backend",
        "xpub@tcp://127.0.0.1:1",
    ]);
    assert!(!bad.status.success());
    assert_eq!(stderr(&bad).lines().count(), 1, "{}", stderr(&bad));
}

#[test]
fn perf_reports_throughput_and_latency_on_every_transport() {
    for transport in ["tcp", "ipc", "inproc"] {
        let o = run(&[
            "perf",
            "--transport",
            transport,
            "--secs",
            "0.2",
            "--size",
            "16",
        ]);
        let out = stdout(&o);
        assert!(o.status.success(), "{transport}: {}\n{out}", stderr(&o));
        assert!(
            out.starts_with(&format!("ferromq perf: {transport} 16-byte messages")),
            "{out}"
        );
        let line = |name: &str| {
            out.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} line:\n{out}"))
                .to_string()
        };
        // Real figures: a positive rate and positive percentiles.
        let thr = line("throughput:");
        let rate: f64 = thr
            .split_whitespace()
            .nth(1)
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert!(rate > 0.0 && thr.contains("all checked in order"), "{thr}");
        let lat = line("latency:");
        let p50: f64 = lat.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(p50 > 0.0, "{lat}");
    }
    let o = run(&["perf", "--transport", "udp"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["perf", "--secs", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
