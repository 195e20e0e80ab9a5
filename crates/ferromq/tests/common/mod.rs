//! Helpers shared by the tcp/ipc test binaries (not every binary uses
//! every one).
#![allow(dead_code)]

use std::time::Duration;

use ferromq::{Context, Socket, SocketType};

/// How long a test waits for anything that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A socket that gives up on sends and receives after [`WAIT`] and drops
/// what is queued at close.
pub fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_sndtimeo(Some(WAIT));
    s.set_linger(Some(Duration::ZERO));
    s
}

/// Lets a receive just started on another thread get into its wait. Every
/// check that follows must hold whether or not it has (a thread being
/// blocked cannot be observed from outside); without it a test would
/// mostly exercise a receive that starts late rather than one waiting.
pub fn let_it_wait() {
    std::thread::sleep(Duration::from_millis(50));
}

/// A tcp endpoint and an ipc one (a path unique to this process and
/// `name`), to run a test over both.
pub fn tcp_and_ipc(name: &str) -> [String; 2] {
    let path = std::env::temp_dir().join(format!("ferromq-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    [
        "tcp://127.0.0.1:*".to_string(),
        format!("ipc://{}", path.display()),
    ]
}

/// A payload for message `seq`: from a byte to 300 KB, so that some are
/// written or read in one go and some in several pieces.
pub fn varied_payload(seq: u32) -> Vec<u8> {
    let size = match seq % 97 {
        0 => 300_000,
        n if n % 7 == 0 => 20_000,
        n => n as usize,
    };
    vec![(seq % 251) as u8; size]
}

/// Raw ZMTP 3.1, to play a peer byte by byte.
pub mod raw {
    /// A ZMTP 3.1 greeting for `mechanism`, as a client.
    pub fn greeting(mechanism: &str) -> Vec<u8> {
        let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1];
        let mut name = [0u8; 20];
        name[..mechanism.len()].copy_from_slice(mechanism.as_bytes());
        g.extend(name);
        g.push(0); // as-server
        g.extend([0; 31]);
        g
    }

    /// One frame (`flags`: 0x01 more, 0x04 command; the long form is
    /// chosen by size).
    pub fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = match u8::try_from(body.len()) {
            Ok(n) => vec![flags, n],
            Err(_) => {
                let mut f = vec![flags | 0x02];
                f.extend((body.len() as u64).to_be_bytes());
                f
            }
        };
        f.extend(body);
        f
    }

    /// A READY command naming `socket_type`.
    pub fn ready(socket_type: &str) -> Vec<u8> {
        let mut body = b"\x05READY\x0bSocket-Type".to_vec();
        body.extend((socket_type.len() as u32).to_be_bytes());
        body.extend(socket_type.as_bytes());
        frame(0x04, &body)
    }
}
