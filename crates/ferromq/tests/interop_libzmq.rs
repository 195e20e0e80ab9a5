//! Interoperability with real libzmq, driven through pyzmq.
//!
//! Every test runs one scenario: a ferromq socket talks over TCP to a libzmq
//! socket in a python3 child process (`tests/peers/zmq_peer.py`). A scenario is
//!
//! * a [`Pattern`]: a compatible pair of socket types, as *client* (sends each
//!   message first) and *server* (receives it, checks it and, except for
//!   PUSH/PULL, echoes it back);
//! * which side ferromq plays ([`Role`]) and which side binds ([`Binder`]);
//! * a [`Payload`]: multipart messages (up to 12 frames, with empty frames
//!   first, in the middle and last) or 1 MiB messages.
//!
//! Both sides check every message they receive byte for byte against the
//! same deterministic payload, so a fault in either direction is caught where
//! it happens. The binding side binds `tcp://127.0.0.1:*`; python prints its
//! bound endpoint as its first stdout line, or gets ours in its config. The
//! peer reports `ok N` and exits 0 when done; the ferromq side asserts both.
//! Nothing sleeps and hopes: request and echo keep the two sides in step, and
//! every wait on either side has a timeout.
//!
//! The python interpreter is `$FERROMQ_PYTHON`, or `python3`; it needs pyzmq.
//!
//! Test names: `<client>_<server>::ferromq_<role>_<binds|connects>_<payload>`,
//! e.g. `req_router::ferromq_server_connects_large` is a libzmq REQ that binds
//! and a ferromq ROUTER that connects, exchanging 1 MiB messages.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferromq::{Bytes, Context, Error, Frame, Message, Socket, SocketType};

/// Longest wait for any one message, on either side.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A compatible pair of socket types and the envelopes each side sees.
struct Pattern {
    client: SocketType,
    server: SocketType,
    /// Frames the client puts before every body: the empty delimiter a DEALER
    /// owes a REP, or the server's routing id for a ROUTER client. The echo
    /// comes back with the same frames in front.
    client_prefix: &'static [&'static str],
    /// What the server receives before every body and echoes back unchanged:
    /// `Some(frame)` exactly, `None` any non-empty frame (a generated id).
    server_envelope: &'static [Option<&'static str>],
    client_id: Option<&'static str>,
    server_id: Option<&'static str>,
    /// The server echoes each message (false for PUSH/PULL).
    echo: bool,
}

impl Pattern {
    const fn new(client: SocketType, server: SocketType) -> Pattern {
        Pattern {
            client,
            server,
            client_prefix: &[],
            server_envelope: &[],
            client_id: None,
            server_id: None,
            echo: true,
        }
    }
}

const PAIR_PAIR: Pattern = Pattern::new(SocketType::Pair, SocketType::Pair);
const REQ_REP: Pattern = Pattern::new(SocketType::Req, SocketType::Rep);
const REQ_ROUTER: Pattern = Pattern {
    server_envelope: &[None, Some("")],
    ..Pattern::new(SocketType::Req, SocketType::Router)
};
const DEALER_REP: Pattern = Pattern {
    client_prefix: &[""],
    ..Pattern::new(SocketType::Dealer, SocketType::Rep)
};
const DEALER_ROUTER: Pattern = Pattern {
    server_envelope: &[None],
    ..Pattern::new(SocketType::Dealer, SocketType::Router)
};
const DEALER_DEALER: Pattern = Pattern::new(SocketType::Dealer, SocketType::Dealer);
/// Both ids are set; the client addresses the server by its id, retrying
/// (`router_mandatory`) until the handshake has told it that id.
const ROUTER_ROUTER: Pattern = Pattern {
    client_prefix: &["server-id"],
    server_envelope: &[Some("client-id")],
    client_id: Some("client-id"),
    server_id: Some("server-id"),
    ..Pattern::new(SocketType::Router, SocketType::Router)
};
const PUSH_PULL: Pattern = Pattern {
    echo: false,
    ..Pattern::new(SocketType::Push, SocketType::Pull)
};

/// Which side of the pattern ferromq plays (libzmq plays the other).
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Client,
    Server,
}

/// Which side binds (the other connects).
#[derive(Clone, Copy)]
enum Binder {
    Ferromq,
    Libzmq,
}

#[derive(Clone, Copy)]
enum Payload {
    Multipart,
    Large,
}

const MIB: usize = 1 << 20;

/// The message bodies of a payload, each frame as `(seed, length)`.
fn bodies(payload: Payload) -> Vec<Vec<(u8, usize)>> {
    match payload {
        Payload::Multipart => {
            let mut bodies = vec![
                vec![(1, 5), (0, 0), (2, 5)],
                vec![(0, 0), (3, 1), (0, 0), (4, 2), (0, 0)],
                vec![(5, 12)],
            ];
            // Lengths around the 255/256 boundary of short and long frames.
            for m in 0..5u8 {
                bodies.push(
                    (0..12u8)
                        .map(|f| {
                            (
                                m * 16 + f,
                                (usize::from(f) * 37 + usize::from(m) * 91) % 300,
                            )
                        })
                        .collect(),
                );
            }
            bodies
        }
        Payload::Large => vec![
            vec![(9, MIB)],
            vec![(10, 4), (0, 0), (11, MIB), (12, 4)],
            vec![(13, MIB), (14, MIB)],
        ],
    }
}

/// Byte `i` is `(7 * i + seed) mod 256`, as in `zmq_peer.py`.
fn frame(seed: u8, len: usize) -> Bytes {
    (0..len)
        .scan(seed, |b, _| {
            let byte = *b;
            *b = b.wrapping_add(7);
            Some(byte)
        })
        .collect::<Vec<u8>>()
        .into()
}

fn build(body: &[(u8, usize)]) -> Message {
    body.iter().map(|&(seed, len)| frame(seed, len)).collect()
}

/// `None` if the frames are equal, else where they first differ (without
/// printing megabytes of payload).
fn mismatch(got: &[Frame], want: &[Frame]) -> Option<String> {
    let lens = |m: &[Frame]| m.iter().map(|f| f.len()).collect::<Vec<_>>();
    if got.len() != want.len() {
        return Some(format!(
            "got {} frames {:?}, want {} frames {:?}",
            got.len(),
            lens(got),
            want.len(),
            lens(want)
        ));
    }
    let (i, (g, w)) = got
        .iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g != w)?;
    if g.len() != w.len() {
        return Some(format!(
            "frame {i}: got {} bytes, want {}",
            g.len(),
            w.len()
        ));
    }
    let at = g.iter().zip(w.iter()).position(|(a, b)| a != b).unwrap();
    Some(format!(
        "frame {i} differs at byte {at}: got {}, want {}",
        g[at], w[at]
    ))
}

fn socket_name(t: SocketType) -> &'static str {
    match t {
        SocketType::Pair => "PAIR",
        SocketType::Req => "REQ",
        SocketType::Rep => "REP",
        SocketType::Dealer => "DEALER",
        SocketType::Router => "ROUTER",
        SocketType::Push => "PUSH",
        SocketType::Pull => "PULL",
        other => panic!("no interop scenario for {other:?}"),
    }
}

/// A JSON string, or null.
fn json_str(s: Option<&str>) -> String {
    s.map_or("null".into(), |s| format!("{s:?}"))
}

/// The libzmq peer process. Dropping it kills the child if it still runs and,
/// during a panic, prints what the peer wrote to stderr.
struct Peer {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Peer {
    fn spawn(config: &str) -> Peer {
        let python = std::env::var("FERROMQ_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/zmq_peer.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} (set FERROMQ_PYTHON): {e}"));
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
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
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// The next stdout line; `None` once the peer closed stdout (exited).
    fn line(&self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.stdout.recv_timeout(left) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("libzmq peer silent for too long"),
        }
    }

    /// Waits for the peer to exit and asserts it succeeded, reporting `ok n`.
    fn finish(&mut self, n: usize) {
        let deadline = Instant::now() + 2 * TIMEOUT;
        let mut last = None;
        while let Some(line) = self.line(deadline) {
            last = Some(line);
        }
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(
            status.success() && last.as_deref() == Some(&format!("ok {n}")),
            "libzmq peer failed ({status}, last stdout line {last:?}):\n{stderr}"
        );
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

/// Runs one scenario; panics on any deviation.
fn run(p: &Pattern, role: Role, binder: Binder, payload: Payload) {
    let specs = bodies(payload);
    let (ours, theirs) = match role {
        Role::Client => ((p.client, p.client_id), (p.server, p.server_id)),
        Role::Server => ((p.server, p.server_id), (p.client, p.client_id)),
    };

    let ctx = Context::new();
    let sock = ctx.socket(ours.0).unwrap();
    sock.set_rcvtimeo(Some(TIMEOUT));
    sock.set_sndtimeo(Some(TIMEOUT));
    sock.set_linger(Some(TIMEOUT));
    if let Some(id) = ours.1 {
        sock.set_routing_id(id).unwrap();
    }
    if ours.0 == SocketType::Router {
        sock.set_router_mandatory(true);
    }

    let endpoint = match binder {
        Binder::Ferromq => {
            sock.bind("tcp://127.0.0.1:*").unwrap();
            let ep = sock.last_endpoint();
            assert!(ep.starts_with("tcp://127.0.0.1:"), "bound to {ep}");
            Some(ep)
        }
        Binder::Libzmq => None,
    };
    let config = format!(
        r#"{{"role": "{}", "type": "{}", "endpoint": {}, "routing_id": {}, "echo": {},
            "client_prefix": {:?}, "server_envelope": [{}], "messages": {:?}, "timeout_ms": {}}}"#,
        if role == Role::Client {
            "server"
        } else {
            "client"
        },
        socket_name(theirs.0),
        json_str(endpoint.as_deref()),
        json_str(theirs.1),
        p.echo,
        p.client_prefix,
        p.server_envelope
            .iter()
            .map(|f| json_str(*f))
            .collect::<Vec<_>>()
            .join(", "),
        specs
            .iter()
            .map(|m| m.iter().map(|&(s, n)| [s as usize, n]).collect())
            .collect::<Vec<Vec<_>>>(),
        TIMEOUT.as_millis(),
    );
    let mut peer = Peer::spawn(&config);
    if endpoint.is_none() {
        let ep = peer
            .line(Instant::now() + TIMEOUT)
            .expect("libzmq peer exited before printing its endpoint");
        sock.connect(&ep).unwrap();
    }

    let bodies: Vec<Message> = specs.iter().map(|b| build(b)).collect();
    match role {
        Role::Client => client(&sock, p, &bodies),
        Role::Server => server(&sock, p, &bodies),
    }
    peer.finish(bodies.len());
}

/// Sends each body (behind the pattern's prefix); checks each echo.
fn client(sock: &Socket, p: &Pattern, bodies: &[Message]) {
    let prefix: Vec<Frame> = p.client_prefix.iter().map(|f| Frame::from(*f)).collect();
    for (i, body) in bodies.iter().enumerate() {
        let mut msg = body.clone();
        for f in prefix.iter().rev() {
            msg.push_front(f.clone());
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match sock.send(msg) {
                Ok(()) => break,
                // ROUTER: the peer's id is not known until its handshake is done.
                Err(e)
                    if matches!(e.error, Error::HostUnreachable) && Instant::now() < deadline =>
                {
                    msg = e.message;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("sending message {i}: {}", e.error),
            }
        }
        if !p.echo {
            continue;
        }
        let got = sock
            .recv()
            .unwrap_or_else(|e| panic!("receiving echo of message {i}: {e}"));
        let (head, rest) = got.frames().split_at(prefix.len().min(got.len()));
        if let Some(why) = mismatch(head, &prefix).or_else(|| mismatch(rest, body.frames())) {
            panic!("echo of message {i}: {why}");
        }
    }
}

/// Receives each body (behind the pattern's envelope), checks it and echoes it.
fn server(sock: &Socket, p: &Pattern, bodies: &[Message]) {
    let n = p.server_envelope.len();
    for (i, body) in bodies.iter().enumerate() {
        let got = sock
            .recv()
            .unwrap_or_else(|e| panic!("receiving message {i}: {e}"));
        assert!(
            got.len() >= n,
            "message {i} has {} frames, too few for a {n}-frame envelope",
            got.len()
        );
        for (j, want) in p.server_envelope.iter().enumerate() {
            match want {
                Some(w) => assert_eq!(&got[j][..], w.as_bytes(), "message {i} envelope frame {j}"),
                None => assert!(!got[j].is_empty(), "message {i}: empty routing id"),
            }
        }
        if let Some(why) = mismatch(&got.frames()[n..], body.frames()) {
            panic!("message {i}: {why}");
        }
        if p.echo {
            sock.send(got)
                .unwrap_or_else(|e| panic!("echoing message {i}: {}", e.error));
        }
    }
}

/// One module per pattern, one test per role × binder × payload.
macro_rules! interop_tests {
    ($($module:ident: $pattern:ident;)*) => {$(
        mod $module {
            use super::*;
            #[test] fn ferromq_client_binds_multipart() { run(&$pattern, Role::Client, Binder::Ferromq, Payload::Multipart) }
            #[test] fn ferromq_client_binds_large() { run(&$pattern, Role::Client, Binder::Ferromq, Payload::Large) }
            #[test] fn ferromq_client_connects_multipart() { run(&$pattern, Role::Client, Binder::Libzmq, Payload::Multipart) }
            #[test] fn ferromq_client_connects_large() { run(&$pattern, Role::Client, Binder::Libzmq, Payload::Large) }
            #[test] fn ferromq_server_binds_multipart() { run(&$pattern, Role::Server, Binder::Ferromq, Payload::Multipart) }
            #[test] fn ferromq_server_binds_large() { run(&$pattern, Role::Server, Binder::Ferromq, Payload::Large) }
            #[test] fn ferromq_server_connects_multipart() { run(&$pattern, Role::Server, Binder::Libzmq, Payload::Multipart) }
            #[test] fn ferromq_server_connects_large() { run(&$pattern, Role::Server, Binder::Libzmq, Payload::Large) }
        }
    )*};
}

interop_tests! {
    pair_pair: PAIR_PAIR;
    req_rep: REQ_REP;
    req_router: REQ_ROUTER;
    dealer_rep: DEALER_REP;
    dealer_router: DEALER_ROUTER;
    dealer_dealer: DEALER_DEALER;
    router_router: ROUTER_ROUTER;
    push_pull: PUSH_PULL;
}
