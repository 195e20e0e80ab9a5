//! Broken and hostile peers speaking raw TCP to a ferromq PULL.
//!
//! Each bad peer may cost only its own connection: the PULL closes it, no
//! I/O thread panics, memory stays bounded, and a well-behaved PUSH on the
//! same PULL keeps getting its messages through, before and after.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use ferromq::{Context, Socket, SocketType};

mod common;
use common::raw::{frame, greeting, ready};

/// Longest wait for a message or for the server to close a connection.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A data frame header (long form) announcing 2^62 bytes.
const HUGE_HEADER: [u8; 9] = [0x02, 0x40, 0, 0, 0, 0, 0, 0, 0];
const MORE: u8 = 0x01;

static IO_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on ferromq's I/O threads, which tokio would otherwise swallow.
fn watch_io_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("ferromq-io") {
                IO_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// A PULL with one well-behaved PUSH peer, for raw clients to attack.
struct Server {
    pull: Socket,
    good: Socket,
    addr: SocketAddr,
    _ctx: Context,
}

impl Server {
    fn new(max_msg_size: Option<u64>) -> Server {
        watch_io_panics();
        let ctx = Context::new();
        let pull = ctx.socket(SocketType::Pull).unwrap();
        pull.set_rcvtimeo(Some(TIMEOUT));
        pull.set_max_msg_size(max_msg_size);
        pull.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = pull.last_endpoint();
        let good = ctx.socket(SocketType::Push).unwrap();
        good.set_sndtimeo(Some(TIMEOUT));
        good.connect(&endpoint).unwrap();
        let server = Server {
            addr: endpoint.trim_start_matches("tcp://").parse().unwrap(),
            pull,
            good,
            _ctx: ctx,
        };
        server.good_peer_works("before");
        server
    }

    /// The next message the PULL gives is exactly `frames`.
    fn expect(&self, frames: &[&[u8]]) {
        let m = self.pull.recv().expect("PULL received nothing");
        let got: Vec<&[u8]> = m.iter().map(|f| &f[..]).collect();
        assert_eq!(got, frames);
    }

    /// A message from the good peer arrives, and nothing else before it; no
    /// I/O thread has panicked.
    fn good_peer_works(&self, tag: &str) {
        self.good.send(tag.to_owned()).unwrap();
        self.expect(&[tag.as_bytes()]);
        assert_eq!(
            IO_PANICS.load(Ordering::SeqCst),
            0,
            "an I/O thread panicked"
        );
    }

    /// A raw client that has sent `bytes`.
    fn raw(&self, bytes: &[u8]) -> TcpStream {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        s.write_all(bytes).unwrap();
        s
    }

    /// A raw client that did the NULL handshake as a PUSH and got one
    /// message through, so whatever it sends next meets an open connection.
    fn raw_push(&self) -> TcpStream {
        let mut hello = greeting("NULL");
        hello.extend(ready("PUSH"));
        hello.extend(frame(0, b"raw hello"));
        let s = self.raw(&hello);
        self.expect(&[b"raw hello"]);
        s
    }
}

/// Reads until the server closes the connection (end of stream or reset),
/// failing if it is still open at the deadline. Returns what the server sent.
fn closed_by_server(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(
                    Instant::now() < deadline,
                    "the server kept the connection open"
                );
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return got, // reset
        }
    }
}

fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Sends `bytes` from a fresh raw client and checks the server hangs up.
fn turned_away(bytes: &[u8]) -> Vec<u8> {
    let server = Server::new(None);
    let mut c = server.raw(bytes);
    let got = closed_by_server(&mut c);
    server.good_peer_works("after");
    got
}

#[test]
fn http_request_is_turned_away() {
    turned_away(b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn zmtp_1_0_greeting_is_turned_away() {
    turned_away(&[0x01, 0x00]);
}

#[test]
fn curve_greeting_is_turned_away() {
    let got = turned_away(&greeting("CURVE"));
    // What the server did send first was its own NULL greeting.
    assert!(got.len() >= 64, "server sent {got:?}");
    assert_eq!(
        (got[0], &got[12..17]),
        (0xFF, &b"NULL\0"[..]),
        "server sent {got:?}"
    );
}

/// 2^62 bytes announced, a few sent, then end of stream: the server does not
/// try to allocate the frame and closes the connection.
#[test]
fn huge_frame_then_end_of_stream() {
    let server = Server::new(None);
    let mut c = server.raw_push();
    c.write_all(&HUGE_HEADER).unwrap();
    c.write_all(b"a few bytes").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    closed_by_server(&mut c);
    server.good_peer_works("after");
}

/// A frame cut short, after the first frame of a multipart message: no part
/// of that message is delivered.
#[test]
fn truncated_frame_then_end_of_stream() {
    let server = Server::new(None);
    let mut c = server.raw_push();
    c.write_all(&frame(MORE, b"first part")).unwrap();
    c.write_all(&[0x00, 100]).unwrap();
    c.write_all(b"only ten b").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    closed_by_server(&mut c);
    // `good_peer_works` also checks that nothing came before the good message.
    server.good_peer_works("after");
}

/// Peers announcing 2^62-byte frames and then trickling data cost memory for
/// what they really sent, not for what they announced.
#[test]
fn huge_frame_kept_open_costs_no_memory() {
    let server = Server::new(None);
    let before = vm_rss();
    let attackers: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut c = server.raw_push();
            c.write_all(&HUGE_HEADER).unwrap();
            c.write_all(&[0u8; 256 * 1024]).unwrap();
            c
        })
        .collect();
    server.good_peer_works("during");
    let grown = vm_rss().saturating_sub(before);
    assert!(grown < 64 << 20, "RSS grew by {} MiB", grown >> 20);
    drop(attackers);
    server.good_peer_works("after");
}

#[test]
fn frame_over_max_msg_size_closes_connection() {
    let server = Server::new(Some(1024));
    let mut c = server.raw_push();
    c.write_all(&frame(0, &[1; 1000])).unwrap();
    server.expect(&[&[1; 1000]]);
    c.write_all(&frame(0, &[2; 2000])).unwrap();
    closed_by_server(&mut c);
    // `good_peer_works` also checks that the big frame was not delivered.
    server.good_peer_works("after");
}
