//! Pub/sub interoperability over TCP: with real libzmq, driven through pyzmq
//! in a python3 child (`tests/peers/pubsub_peer.py`, one command per stdin
//! line, one answer per stdout line), and with a scripted raw ZMTP 3.0 peer.
//!
//! * ferromq PUB -> libzmq SUB and XSUB (XSUB does not filter, so there only
//!   ferromq's filtering keeps other topics away);
//! * libzmq PUB -> ferromq SUB, with an unsubscription;
//! * ferromq XPUB sees a libzmq SUB's subscriptions and cancellations;
//! * ferromq XSUB subscribes and cancels upstream at a libzmq XPUB;
//! * restarts: a ferromq PUB serves a libzmq SUB process that comes back,
//!   and a ferromq SUB resubscribes to a libzmq PUB process that comes back;
//! * a ZMTP 3.0 subscriber and a ZMTP 3.0 publisher, which send and expect
//!   subscriptions as `0x01 topic` / `0x00 topic` messages, not commands.
//!
//! Each libzmq scenario runs once with ferromq binding and once with libzmq
//! binding. Nothing sleeps and hopes: subscriptions are awaited by publishing
//! until a matching message arrives, or by seeing them at the XPUB; every
//! wait on either side has a timeout, and the python child is killed on drop.
//! The interpreter is `$FERROMQ_PYTHON`, or `python3`; it needs pyzmq.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferromq::{Context, Error, Message, Socket, SocketType};

/// Longest wait for any one message, on either side.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
enum Binder {
    Ferromq,
    Libzmq,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(TIMEOUT));
    s.set_sndtimeo(Some(TIMEOUT));
    s.set_linger(Some(Duration::ZERO));
    s
}

/// Receives a one-frame message (a subscription at an XPUB, say).
fn recv1(s: &Socket) -> Vec<u8> {
    let m = s.recv().unwrap_or_else(|e| panic!("{s:?}: {e}"));
    assert_eq!(m.len(), 1, "expected one frame, got {m:?}");
    m[0].to_vec()
}

/// The libzmq peer process: one socket, driven by commands. Dropping it
/// kills the child if it still runs and, during a panic, prints its stderr.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Peer {
    fn spawn(kind: &str) -> Peer {
        let python = std::env::var("FERROMQ_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/pubsub_peer.py");
        let mut child = Command::new(&python)
            .args([script, kind, &TIMEOUT.as_millis().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} (set FERROMQ_PYTHON): {e}"));
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("libzmq peer gone ({e}) before {line:?}"));
    }

    /// The next answer, or `None` if none came within `wait`.
    fn reply_within(&self, wait: Duration) -> Option<String> {
        match self.stdout.recv_timeout(wait) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("libzmq peer exited"),
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send_line(line);
        self.reply_within(TIMEOUT + Duration::from_secs(5))
            .unwrap_or_else(|| panic!("libzmq peer silent after {line:?}"))
    }

    fn ok(&mut self, line: &str) {
        assert_eq!(self.cmd(line), "ok", "libzmq peer: {line}");
    }

    /// Closes its stdin, which ends it, and asserts it exited cleanly.
    fn finish(mut self) {
        self.stdin = None;
        match self.stdout.recv_timeout(TIMEOUT) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {} // exited
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("libzmq peer did not exit"),
            Ok(line) => panic!("unexpected output from libzmq peer: {line}"),
        }
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "libzmq peer failed ({status}):\n{stderr}");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Some(stderr) = self.stderr.take().and_then(|h| h.join().ok()) {
                eprintln!("libzmq peer stderr:\n{stderr}");
            }
        }
    }
}

/// Connects `s` and the peer's socket, `binder` binding `tcp://127.0.0.1:*`.
fn wire(s: &Socket, peer: &mut Peer, binder: Binder) {
    match binder {
        Binder::Ferromq => {
            s.bind("tcp://127.0.0.1:*").unwrap();
            peer.ok(&format!("connect {}", s.last_endpoint()));
        }
        Binder::Libzmq => {
            let reply = peer.cmd("bind");
            let ep = reply
                .strip_prefix("endpoint ")
                .unwrap_or_else(|| panic!("libzmq peer bind: {reply}"));
            s.connect(ep).unwrap();
        }
    }
}

/// ferromq PUB -> libzmq `kind` (SUB or XSUB), subscribed to "A": ferromq
/// publishes `[B-i, i]` and `[A-i, i]` until python has counted N "A"s, and
/// python must have seen no "B" (each B-i is sent before A-i).
fn pub_to_libzmq(kind: &str, binder: Binder) {
    const N: usize = 20;
    let ctx = Context::new();
    let publisher = sock(&ctx, SocketType::Pub);
    let mut peer = Peer::spawn(kind);
    wire(&publisher, &mut peer, binder);
    match kind {
        "SUB" => peer.ok("subscribe 41"),
        _ => peer.ok("send 0141"), // XSUB: the subscription is a message.
    }
    peer.send_line(&format!("count 41 {N}"));
    let deadline = Instant::now() + TIMEOUT;
    let summary = (0u64..)
        .find_map(|i| {
            assert!(Instant::now() < deadline, "libzmq {kind} never counted {N}");
            for topic in ["B", "A"] {
                let m: Message = [format!("{topic}-{i}"), i.to_string()]
                    .into_iter()
                    .collect();
                publisher.send(m).unwrap();
            }
            peer.reply_within(Duration::from_millis(1))
        })
        .unwrap();
    assert_eq!(summary, format!("counted {N} matching, 0 other"));
    peer.finish();
}

/// A libzmq SUB process subscribed to "A" comes and goes twice; the
/// ferromq PUB keeps publishing, drops the dead subscriber and serves the
/// new process as it served the first.
#[test]
fn pub_keeps_serving_after_a_libzmq_sub_process_restarts() {
    const N: usize = 20;
    let ctx = Context::new();
    let publisher = sock(&ctx, SocketType::Pub);
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let mut i = 0u64;
    for generation in 0..2 {
        let mut peer = Peer::spawn("SUB");
        peer.ok(&format!("connect {}", publisher.last_endpoint()));
        peer.ok("subscribe 41");
        peer.send_line(&format!("count 41 {N}"));
        let deadline = Instant::now() + TIMEOUT;
        let summary = loop {
            assert!(
                Instant::now() < deadline,
                "libzmq SUB #{generation} never counted {N}"
            );
            for topic in ["B", "A"] {
                let m: Message = [format!("{topic}-{i}"), i.to_string()]
                    .into_iter()
                    .collect();
                publisher.send(m).unwrap();
            }
            i += 1;
            if let Some(line) = peer.reply_within(Duration::from_millis(1)) {
                break line;
            }
        };
        assert_eq!(summary, format!("counted {N} matching, 0 other"));
        // Ending the process drops its connection without a goodbye.
        peer.finish();
    }
}

/// A ferromq SUB connected to a libzmq PUB process keeps receiving when
/// that process exits and another binds the same port: it reconnects and
/// subscribes afresh (libzmq filters on the publisher side, so without the
/// new subscription nothing would come).
#[test]
fn sub_keeps_receiving_after_the_libzmq_pub_process_restarts() {
    let ctx = Context::new();
    let sub = sock(&ctx, SocketType::Sub);
    sub.subscribe("A").unwrap();
    let mut endpoint: Option<String> = None;
    for generation in 0..2 {
        let mut peer = Peer::spawn("PUB");
        let reply = match &endpoint {
            None => peer.cmd("bind"),
            Some(ep) => peer.cmd(&format!("bind {ep}")),
        };
        let ep = reply
            .strip_prefix("endpoint ")
            .unwrap_or_else(|| panic!("libzmq PUB #{generation} bind: {reply}"))
            .to_string();
        if endpoint.is_none() {
            sub.connect(&ep).unwrap();
            endpoint = Some(ep);
        }
        // Each process publishes its own topic ("A0", "A1") beside one the
        // SUB does not want; what the previous one sent may still be queued.
        let mine = format!("A{generation}-");
        peer.send_line(&format!("publish {} 42", hex(&mine.as_bytes()[..2])));
        let mut last = None;
        let mut got = 0;
        while got < 10 {
            let m = sub.recv().unwrap_or_else(|e| panic!("ferromq SUB: {e}"));
            let topic = std::str::from_utf8(&m[0]).unwrap().to_string();
            assert!(topic.starts_with('A'), "not subscribed: {m:?}");
            if generation > 0 && topic.starts_with("A0-") {
                continue;
            }
            let round: u64 = topic.strip_prefix(&mine).unwrap().parse().unwrap();
            assert!(last < Some(round), "{topic} after round {last:?}");
            last = Some(round);
            got += 1;
        }
        let stopped = peer.cmd("stop");
        assert!(stopped.starts_with("stopped after "), "{stopped}");
        peer.finish();
    }
}

/// One `[T-r, r]` message from the libzmq publisher; asserts T is `allowed`
/// and r increases per topic. Returns T.
fn recv_published(sub: &Socket, allowed: &[u8], last: &mut HashMap<u8, u64>) -> u8 {
    let m = sub.recv().unwrap_or_else(|e| panic!("ferromq SUB: {e}"));
    assert_eq!(m.len(), 2, "malformed: {m:?}");
    let (topic, round) = (&m[0][..], &m[1][..]);
    assert!(topic.ends_with(round), "malformed: {m:?}");
    assert!(allowed.contains(&topic[0]), "not subscribed: {m:?}");
    let r: u64 = std::str::from_utf8(round).unwrap().parse().unwrap();
    if let Some(prev) = last.insert(topic[0], r) {
        assert!(
            r > prev,
            "{m:?} after round {prev}: reordered or duplicated"
        );
    }
    topic[0]
}

/// libzmq PUB (topics A, B, S each round) -> ferromq SUB to A and B; then
/// the SUB drops B and takes S, and B must never come again.
fn libzmq_pub_to_sub(binder: Binder) {
    let ctx = Context::new();
    let sub = sock(&ctx, SocketType::Sub);
    sub.subscribe("A").unwrap();
    sub.subscribe("B").unwrap();
    let mut peer = Peer::spawn("PUB");
    wire(&sub, &mut peer, binder);
    peer.send_line("publish 41 42 53");
    let mut last = HashMap::new();
    let mut seen = [0usize; 256];
    while seen[usize::from(b'A')] < 5 || seen[usize::from(b'B')] < 5 {
        seen[usize::from(recv_published(&sub, b"AB", &mut last))] += 1;
    }
    sub.unsubscribe("B").unwrap();
    sub.subscribe("S").unwrap();
    // S arriving shows libzmq got the change (the cancel went first); B
    // must not arrive, whether libzmq filters it or ferromq does.
    let mut s_seen = 0;
    while s_seen < 5 {
        s_seen += usize::from(recv_published(&sub, b"AS", &mut last) == b'S');
    }
    let stopped = peer.cmd("stop");
    assert!(stopped.starts_with("stopped after "), "{stopped}");
    peer.finish();
}

/// libzmq SUB -> ferromq XPUB: subscriptions, a cancellation, and the
/// cancellation of what is left when the SUB closes.
fn xpub_sees_libzmq_sub(binder: Binder) {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    let mut peer = Peer::spawn("SUB");
    wire(&xpub, &mut peer, binder);
    peer.ok("subscribe 41");
    assert_eq!(recv1(&xpub), b"\x01A");
    peer.ok("subscribe 4242");
    assert_eq!(recv1(&xpub), b"\x01BB");
    peer.ok("unsubscribe 41");
    assert_eq!(recv1(&xpub), b"\x00A");
    xpub.send(["A-1", "x"]).unwrap();
    xpub.send(["BB-1", "y"]).unwrap();
    assert_eq!(
        peer.cmd("recv"),
        format!("msg {} {}", hex(b"BB-1"), hex(b"y"))
    );
    peer.ok("close");
    assert_eq!(recv1(&xpub), b"\x00BB", "closing SUB must cancel BB");
    assert!(matches!(xpub.try_recv(), Err(Error::WouldBlock)));
    peer.finish();
}

/// ferromq XSUB -> libzmq XPUB (verbose, so duplicates would show): the
/// XPUB sees exactly the subscription messages the XSUB sent and publishes
/// accordingly.
fn xsub_upstream_of_libzmq_xpub(binder: Binder) {
    let ctx = Context::new();
    let xsub = sock(&ctx, SocketType::XSub);
    let mut peer = Peer::spawn("XPUB");
    peer.ok("verbose");
    wire(&xsub, &mut peer, binder);
    let msg = |frames: &[&[u8]]| {
        let hexes: Vec<String> = frames.iter().map(|f| hex(f)).collect();
        format!("msg {}", hexes.join(" "))
    };
    xsub.send(b"\x01topic".to_vec()).unwrap();
    assert_eq!(peer.cmd("recv"), msg(&[b"\x01topic"]));
    peer.ok(&format!("send {} {}", hex(b"topic.1"), hex(b"body")));
    assert_eq!(xsub.recv().unwrap(), Message::from(["topic.1", "body"]));
    xsub.send(b"\x00topic".to_vec()).unwrap();
    xsub.send(b"\x01fence".to_vec()).unwrap();
    assert_eq!(peer.cmd("recv"), msg(&[b"\x00topic"]));
    assert_eq!(peer.cmd("recv"), msg(&[b"\x01fence"]));
    peer.ok(&format!("send {}", hex(b"topic.2")));
    peer.ok(&format!("send {}", hex(b"fence")));
    assert_eq!(
        xsub.recv().unwrap(),
        Message::from("fence"),
        "libzmq published a cancelled topic"
    );
    peer.finish();
}

#[test]
fn pub_to_libzmq_sub_ferromq_binds() {
    pub_to_libzmq("SUB", Binder::Ferromq)
}
#[test]
fn pub_to_libzmq_sub_libzmq_binds() {
    pub_to_libzmq("SUB", Binder::Libzmq)
}
#[test]
fn pub_to_libzmq_xsub_ferromq_binds() {
    pub_to_libzmq("XSUB", Binder::Ferromq)
}
#[test]
fn pub_to_libzmq_xsub_libzmq_binds() {
    pub_to_libzmq("XSUB", Binder::Libzmq)
}
#[test]
fn libzmq_pub_to_sub_ferromq_binds() {
    libzmq_pub_to_sub(Binder::Ferromq)
}
#[test]
fn libzmq_pub_to_sub_libzmq_binds() {
    libzmq_pub_to_sub(Binder::Libzmq)
}
#[test]
fn xpub_sees_libzmq_sub_ferromq_binds() {
    xpub_sees_libzmq_sub(Binder::Ferromq)
}
#[test]
fn xpub_sees_libzmq_sub_libzmq_binds() {
    xpub_sees_libzmq_sub(Binder::Libzmq)
}
#[test]
fn xsub_upstream_of_libzmq_xpub_ferromq_binds() {
    xsub_upstream_of_libzmq_xpub(Binder::Ferromq)
}
#[test]
fn xsub_upstream_of_libzmq_xpub_libzmq_binds() {
    xsub_upstream_of_libzmq_xpub(Binder::Libzmq)
}

// ---- A scripted ZMTP 3.0 peer ----

/// A ZMTP 3.0 NULL greeting, as libzmq 4.0/4.1 sent it.
fn greeting_30() -> Vec<u8> {
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0];
    g.extend(b"NULL");
    g.resize(32, 0); // mechanism padded to 20 bytes
    g.push(0); // as-server
    g.resize(64, 0); // filler
    g
}

/// A READY command frame announcing a three-letter socket type.
fn ready(socket_type: &[u8; 3]) -> Vec<u8> {
    [
        &b"\x04\x19\x05READY\x0bSocket-Type\x00\x00\x00\x03"[..],
        socket_type,
    ]
    .concat()
}

/// A final (no MORE) data frame.
fn data_frame(body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 256);
    [&[0x00, body.len() as u8][..], body].concat()
}

/// One frame: its flags byte and body.
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("reading a frame header");
    let len = if head[0] & 0x02 != 0 {
        let mut rest = [0u8; 7];
        s.read_exact(&mut rest).expect("reading a long size");
        u64::from_be_bytes([[head[1]].as_slice(), &rest].concat().try_into().unwrap())
    } else {
        u64::from(head[1])
    };
    assert!(len < 1 << 20, "frame of {len} bytes");
    let mut body = vec![0; len as usize];
    s.read_exact(&mut body).expect("reading a frame body");
    (head[0], body)
}

/// Reads ferromq's greeting and READY; returns the announced socket type.
fn read_handshake(s: &mut TcpStream) -> String {
    let mut g = [0u8; 64];
    s.read_exact(&mut g).expect("reading ferromq's greeting");
    assert!(g[0] == 0xFF && g[9] == 0x7F, "bad signature {g:?}");
    assert_eq!(g[10], 3, "major version");
    assert_eq!(&g[12..32], &greeting_30()[12..32], "mechanism NULL");
    let (flags, body) = read_frame(s);
    assert_eq!(flags & 0x04, 0x04, "READY must be a command");
    let mut props = body
        .strip_prefix(b"\x05READY")
        .unwrap_or_else(|| panic!("not READY: {body:?}"));
    let mut socket_type = None;
    while let Some((&n, rest)) = props.split_first() {
        let (name, rest) = rest.split_at(n.into());
        let (len, rest) = rest.split_at(4);
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        let (value, rest) = rest.split_at(len);
        if name.eq_ignore_ascii_case(b"Socket-Type") {
            socket_type = Some(String::from_utf8(value.to_vec()).unwrap());
        }
        props = rest;
    }
    socket_type.expect("READY without Socket-Type")
}

/// Greets as a ZMTP 3.0 `socket_type`; returns the type ferromq announced.
fn raw_handshake(s: &mut TcpStream, socket_type: &[u8; 3]) -> String {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(&[greeting_30(), ready(socket_type)].concat())
        .unwrap();
    read_handshake(s)
}

/// A ZMTP 3.0 SUB subscribes to "A" with a message; ferromq PUB must send it
/// "A-1" and never "B-1". It then cancels "A" and subscribes "C", again with
/// messages: once "C-1" came, no "A-1" may follow.
#[test]
fn zmtp30_subscriber_to_ferromq_pub() {
    let ctx = Context::new();
    let publisher = sock(&ctx, SocketType::Pub);
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let ep = publisher.last_endpoint();
    let mut s = TcpStream::connect(ep.strip_prefix("tcp://").unwrap()).unwrap();
    assert_eq!(raw_handshake(&mut s, b"SUB"), "PUB");
    let mut writer = s.try_clone().unwrap();
    writer.write_all(&[0x00, 0x02, 0x01, b'A']).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (publisher, stop) = (publisher.clone(), stop.clone());
        let deadline = Instant::now() + 2 * TIMEOUT;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for topic in ["A-1", "B-1", "C-1"] {
                    publisher.send(topic).unwrap();
                }
                // Pacing only: the reader decides when this ends.
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut next = |allowed: &[&str]| {
        let (flags, body) = read_frame(&mut s);
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(flags, 0x00, "flags of frame {text:?}");
        assert!(allowed.contains(&text.as_str()), "got {text:?}");
        text
    };
    while next(&["A-1"]) != "A-1" {}
    for _ in 0..20 {
        next(&["A-1"]);
    }
    writer
        .write_all(&[[0x00, 0x02, 0x00, b'A'], [0x00, 0x02, 0x01, b'C']].concat())
        .unwrap();
    while next(&["A-1", "C-1"]) != "C-1" {}
    for _ in 0..20 {
        next(&["C-1"]);
    }
    stop.store(true, Ordering::Relaxed);
    publishing.join().unwrap();
}

/// A ferromq SUB connected to a ZMTP 3.0 PUB must subscribe and cancel with
/// `0x01 topic` / `0x00 topic` data frames (3.0 has no SUBSCRIBE command).
#[test]
fn zmtp30_publisher_to_ferromq_sub() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ctx = Context::new();
    let sub = sock(&ctx, SocketType::Sub);
    sub.subscribe("A").unwrap();
    sub.connect(&format!("tcp://{}", listener.local_addr().unwrap()))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(listener.accept().map(|(s, _)| s)));
    let mut s = rx
        .recv_timeout(TIMEOUT)
        .expect("ferromq SUB never connected")
        .unwrap();
    assert_eq!(raw_handshake(&mut s, b"PUB"), "SUB");
    let want = |body: &[u8]| (0x00, body.to_vec());
    assert_eq!(
        read_frame(&mut s),
        want(b"\x01A"),
        "subscription on connect"
    );
    sub.subscribe("BB").unwrap();
    assert_eq!(read_frame(&mut s), want(b"\x01BB"), "subscription later");
    sub.unsubscribe("A").unwrap();
    assert_eq!(read_frame(&mut s), want(b"\x00A"), "cancellation");
    // A 3.0 publisher may not filter: the SUB drops the cancelled topic itself.
    s.write_all(&[data_frame(b"A-1"), data_frame(b"BB-1")].concat())
        .unwrap();
    assert_eq!(sub.recv().unwrap(), Message::from("BB-1"));
}
