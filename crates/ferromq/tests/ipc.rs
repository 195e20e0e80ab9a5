//! ipc:// (Unix domain sockets), including interop with libzmq.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferromq::{Context, Message, Socket, SocketType};

const WAIT: Duration = Duration::from_secs(10);

fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_linger(Some(Duration::from_secs(2)));
    s
}

fn echo_round_trip(ep: &str) {
    let ctx = Context::new();
    let rep = sock(&ctx, SocketType::Rep);
    rep.bind(ep).unwrap();
    let req = sock(&ctx, SocketType::Req);
    req.connect(&rep.last_endpoint()).unwrap();
    req.send(["a", "", "b"]).unwrap();
    let m = rep.recv().unwrap();
    rep.send(m).unwrap();
    assert_eq!(req.recv().unwrap(), Message::from(["a", "", "b"]), "{ep}");
}

fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::yield_now();
    }
}

#[test]
fn path_abstract_and_wildcard_endpoints() {
    let dir = std::env::temp_dir().join(format!("ferromq-ipc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    echo_round_trip(&format!("ipc://{}/a.sock", dir.display()));
    echo_round_trip(&format!("ipc://@ferromq-test-{}", std::process::id()));
    echo_round_trip("ipc://*");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stale_file_is_replaced_and_removed_at_close() {
    let path = std::env::temp_dir().join(format!("ferromq-stale-{}.sock", std::process::id()));
    // A socket file nobody listens on, as a crashed process leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind(&format!("ipc://{}", path.display())).unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.connect(&format!("ipc://{}", path.display())).unwrap();
    push.send("x").unwrap();
    assert_eq!(&pull.recv().unwrap()[0][..], b"x");
    drop(pull);
    wait_until(|| !path.exists(), "socket file not removed at close");
}

#[test]
fn wildcard_reports_a_real_path() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("ipc://*").unwrap();
    let ep = pull.last_endpoint();
    let path = ep.strip_prefix("ipc://").unwrap().to_string();
    assert!(std::path::Path::new(&path).exists(), "{ep}");
    pull.unbind(&ep).unwrap();
    wait_until(
        || !std::path::Path::new(&path).exists(),
        "unbind left the file",
    );
}

/// A libzmq REP (pyzmq) on `bind` or connecting to `connect`, echoing one request.
fn libzmq_rep(bind: Option<&str>, connect: Option<&str>) -> std::process::Child {
    let py = std::env::var("FERROMQ_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys, zmq\n\
        s = zmq.Context().socket(zmq.REP); s.RCVTIMEO = 10000; s.LINGER = 2000\n\
        mode, ep = sys.argv[1], sys.argv[2]\n\
        s.bind(ep) if mode == 'bind' else s.connect(ep)\n\
        print('ready', flush=True)\n\
        s.send_multipart(s.recv_multipart())\n";
    let (mode, ep) = match (bind, connect) {
        (Some(b), _) => ("bind", b),
        (_, Some(c)) => ("connect", c),
        _ => unreachable!(),
    };
    let mut child = Command::new(py)
        .args(["-c", script, mode, ep])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with pyzmq");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready", "pyzmq peer did not start");
    child
}

#[test]
fn interop_with_libzmq_over_ipc_both_directions() {
    let ctx = Context::new();
    let path = std::env::temp_dir().join(format!("ferromq-interop-{}.sock", std::process::id()));
    for (ours_binds, ep) in [
        (false, format!("ipc://{}", path.display())),
        (true, format!("ipc://{}", path.display())),
        (
            false,
            format!("ipc://@ferromq-interop-{}", std::process::id()),
        ),
        (
            true,
            format!("ipc://@ferromq-interop2-{}", std::process::id()),
        ),
    ] {
        let req = sock(&ctx, SocketType::Req);
        let mut child = if ours_binds {
            req.bind(&ep).unwrap();
            libzmq_rep(None, Some(&ep))
        } else {
            let c = libzmq_rep(Some(&ep), None);
            req.connect(&ep).unwrap();
            c
        };
        req.send(["over", "ipc"]).unwrap();
        let reply = req.recv().unwrap();
        assert_eq!(
            reply,
            Message::from(["over", "ipc"]),
            "{ep} ours_binds={ours_binds}"
        );
        // The peer's credentials come with what it sent: the python child
        // process, run by our user.
        let meta = reply.metadata().expect("ipc metadata");
        let prop = |name: &str| String::from_utf8(meta.get(name).unwrap().to_vec()).unwrap();
        assert_eq!(prop("Peer-Pid"), child.id().to_string(), "{ep}");
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        assert_eq!(prop("Peer-Uid"), uid.to_string(), "{ep}");
        assert_eq!(prop("Socket-Type"), "REP", "{ep}");
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn a_new_bind_on_the_path_survives_the_old_listeners_cleanup() {
    // The first binder closes; a second binds the same path at once. The
    // first one's cleanup must not remove the second one's socket file, or
    // the connected PULL could never reconnect.
    let dir = std::env::temp_dir().join(format!("ferromq-rebind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ep = format!("ipc://{}", dir.join("sock").display());
    let ctx = Context::new();
    let first = sock(&ctx, SocketType::Push);
    first.bind(&ep).unwrap();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_reconnect_ivl(Some(Duration::from_millis(10)));
    pull.connect(&ep).unwrap();
    first.send("one").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("one"));
    first.close();
    let second = sock(&ctx, SocketType::Push);
    second.bind(&ep).unwrap();
    second.send("two").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("two"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serves_a_listener_the_application_made_and_leaves_its_file() {
    let dir = std::env::temp_dir().join(format!("ferromq-adopt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let ctx = Context::new();
    let rep = sock(&ctx, SocketType::Rep);
    let ep = rep.bind_ipc_listener(listener).unwrap();
    assert_eq!(ep, format!("ipc://{}", path.display()));
    let req = sock(&ctx, SocketType::Req);
    req.connect(&ep).unwrap();
    req.send("ping").unwrap();
    let m = rep.recv().unwrap();
    rep.send(m).unwrap();
    assert_eq!(req.recv().unwrap(), Message::from("ping"));
    drop((req, rep));
    ctx.term().unwrap();
    // The file is the application's to remove, as with libzmq.
    assert!(path.exists(), "the application's socket file was removed");
    std::fs::remove_dir_all(&dir).unwrap();
}
