//! `send_slice`: a one-frame message sent from the application's buffer,
//! encoded or written straight from it where the connection takes it, and
//! copied into a message where it does not. Either way the peer gets the
//! same messages as `send(Message::copy_from_slice(..))` would give it.

use std::time::Duration;

use ferromq::{Context, Error, Message, SocketType};
use tokio::runtime::Handle;

const WAIT: Duration = Duration::from_secs(20);

/// Bodies of many sizes: empty, inline, short and long headers, either side
/// of the 8 KiB where direct writes go from the slice, and larger than the
/// socket buffers set below (so that writes from the slice stop part way).
fn bodies() -> Vec<Vec<u8>> {
    [
        0usize,
        7,
        255,
        256,
        4096,
        8191,
        8192,
        65_536,
        300_000,
        3 << 20,
    ]
    .iter()
    .enumerate()
    .map(|(k, &n)| (0..n).map(|i| ((i * 7 + k) % 253) as u8).collect())
    .collect()
}

/// Every body `rounds` times, as slices and as messages by turns, each
/// tagged with its place in the stream in its first byte (if it has one).
fn stream(rounds: usize) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    for r in 0..rounds {
        for (i, mut b) in bodies().into_iter().enumerate() {
            let n = out.len();
            if let Some(first) = b.first_mut() {
                *first = n as u8;
            }
            out.push(((r + i) % 3 != 0, b));
        }
    }
    out
}

fn check(got: &Message, want: &[u8], n: usize) {
    assert_eq!(got.len(), 1, "message {n} has one frame");
    assert_eq!(got[0].len(), want.len(), "message {n}'s size");
    assert!(&got[0][..] == want, "message {n}'s bytes");
}

fn blocking_stream(transport: &str) {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(Some(WAIT));
    pull.update_options(|o| o.rcvbuf = Some(64 << 10));
    pull.bind(transport).unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.update_options(|o| o.sndbuf = Some(64 << 10));
    push.connect(&pull.last_endpoint()).unwrap();
    let msgs = stream(4);
    let expected = msgs.clone();
    let sender = std::thread::spawn(move || {
        for (slice, b) in msgs {
            if slice {
                push.send_slice(&b).unwrap();
            } else {
                push.send(Message::copy_from_slice(&b)).unwrap();
            }
        }
        push
    });
    for (n, (_, want)) in expected.iter().enumerate() {
        check(&pull.recv().unwrap(), want, n);
    }
    drop(sender.join().unwrap());
}

#[test]
fn a_blocking_stream_of_slices_and_messages_arrives_whole_and_in_order_over_tcp() {
    blocking_stream("tcp://127.0.0.1:*");
}

#[test]
fn a_blocking_stream_of_slices_and_messages_arrives_whole_and_in_order_over_ipc() {
    let path = std::env::temp_dir().join(format!("ferromq-slice-{}.sock", std::process::id()));
    blocking_stream(&format!("ipc://{}", path.display()));
}

/// On the application's runtime, where large slices are written by the
/// sending task itself: the receiver reads only after the sender is done
/// with each batch, so writes from the slice stop part way at full socket
/// buffers and leave the rest to the connection.
#[tokio::test(flavor = "current_thread")]
async fn an_async_stream_of_slices_and_messages_arrives_whole_and_in_order() {
    let other = Context::new();
    let pull = other.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(Some(WAIT));
    pull.update_options(|o| o.rcvbuf = Some(64 << 10));
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ctx = Context::builder().runtime(Handle::current()).build();
    let push = ctx.async_socket(SocketType::Push).unwrap();
    push.update_options(|o| o.sndbuf = Some(64 << 10));
    push.connect(&pull.last_endpoint()).unwrap();
    let msgs = stream(3);
    let expected = msgs.clone();
    let receiver = tokio::task::spawn_blocking(move || {
        for (n, (_, want)) in expected.iter().enumerate() {
            check(&pull.recv().unwrap(), want, n);
        }
    });
    let send = async {
        for (slice, b) in msgs {
            if slice {
                push.send_slice(&b).await.unwrap();
            } else {
                push.send(Message::copy_from_slice(&b)).await.unwrap();
            }
        }
        receiver.await.unwrap();
    };
    tokio::time::timeout(WAIT, send)
        .await
        .expect("every message arrives");
}

/// Where nothing can take the bytes (no peer yet, and a send that must not
/// wait), `send_slice` fails as `send` does and hands back a copy.
#[test]
fn a_slice_that_cannot_go_comes_back_as_a_copy() {
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndtimeo(Some(Duration::ZERO));
    let e = push.send_slice(b"nowhere to go").unwrap_err();
    assert!(matches!(e.error, Error::WouldBlock), "{:?}", e.error);
    assert_eq!(&e.message[0][..], b"nowhere to go");
}

/// Socket types that take other paths (a REQ's envelope, a ROUTER's
/// routing id) still send slices as messages.
#[test]
fn req_and_dealer_slices_reach_rep_and_router() {
    let ctx = Context::new();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    rep.set_rcvtimeo(Some(WAIT));
    rep.bind("tcp://127.0.0.1:*").unwrap();
    let req = ctx.socket(SocketType::Req).unwrap();
    req.set_rcvtimeo(Some(WAIT));
    req.connect(&rep.last_endpoint()).unwrap();
    req.send_slice(b"question").unwrap();
    assert_eq!(&rep.recv().unwrap()[0][..], b"question");
    rep.send_slice(b"answer").unwrap();
    assert_eq!(&req.recv().unwrap()[0][..], b"answer");

    let router = ctx.socket(SocketType::Router).unwrap();
    router.set_rcvtimeo(Some(WAIT));
    router.bind("tcp://127.0.0.1:*").unwrap();
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer.connect(&router.last_endpoint()).unwrap();
    dealer.send_slice(&[5u8; 20_000]).unwrap();
    let m = router.recv().unwrap();
    assert_eq!(m.len(), 2, "routing id and body");
    assert_eq!(&m[1][..], &[5u8; 20_000][..]);
}
