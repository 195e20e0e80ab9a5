//! ipc:// — Unix domain sockets: `ipc:///path`, Linux abstract names
//! `ipc://@name`, and `ipc://*` (a fresh private path). A stale socket file
//! at a bound path is replaced (as libzmq does); the file is removed again on
//! unbind or close.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener as StdListener};
use std::path::PathBuf;
use std::sync::Arc;

use crate::cancel::Cancel;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use super::driver;
use super::Stream;
use crate::monitor;
use crate::socket::core::SocketCore;

impl Stream for UnixStream {
    async fn ready(&self, interest: tokio::io::Interest) -> io::Result<tokio::io::Ready> {
        UnixStream::ready(self, interest).await
    }
    fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        UnixStream::try_read_buf(self, buf)
    }
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        UnixStream::poll_read_ready(self, cx)
    }
    fn clear_readable(&self) {
        // As for tcp (see there).
        let _ = self.try_io(tokio::io::Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        super::send_vectored(self, bufs)
    }
    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write);
    }
    fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(self)
    }
    fn peer_properties(&self, meta: &mut ferromq_proto::wire::metadata::Metadata) {
        // The peer process's credentials (SO_PEERCRED), as of its connect.
        if let Ok(cred) = self.peer_cred() {
            meta.insert("Peer-Uid", cred.uid().to_string());
            meta.insert("Peer-Gid", cred.gid().to_string());
            if let Some(pid) = cred.pid() {
                meta.insert("Peer-Pid", pid.to_string());
            }
        }
    }
}

/// Where an ipc endpoint lives.
enum Place {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

fn place(path: &str) -> Place {
    match path.strip_prefix('@') {
        Some(name) => Place::Abstract(name.as_bytes().to_vec()),
        None => Place::Path(PathBuf::from(path)),
    }
}

fn address(p: &Place) -> io::Result<SocketAddr> {
    match p {
        Place::Path(path) => SocketAddr::from_pathname(path),
        Place::Abstract(name) => SocketAddr::from_abstract_name(name),
    }
}

/// Binds now; accepts in the background. Returns the resolved endpoint.
pub(crate) fn bind(core: &Arc<SocketCore>, path: &str, cancel: Cancel) -> io::Result<String> {
    let (place, shown, private_dir) = if path == "*" {
        // A private directory, like libzmq's mkdtemp, holding the socket.
        let base = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = (0..100u32)
            .map(|i| {
                base.join(format!(
                    "ferromq-ipc-{}-{}-{i}",
                    std::process::id(),
                    unique()
                ))
            })
            .find(|d| std::fs::create_dir(d).is_ok())
            .ok_or_else(|| io::Error::other("cannot create a private ipc directory"))?;
        let sock = dir.join("socket");
        let shown = sock.display().to_string();
        (Place::Path(sock), shown, Some(dir))
    } else {
        (place(path), path.to_string(), None)
    };
    if let Place::Path(p) = &place {
        // A leftover socket file from a dead process is replaced; a live one
        // is taken over, as libzmq does.
        if std::fs::symlink_metadata(p)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            let _ = std::fs::remove_file(p);
        }
    }
    let std_listener = StdListener::bind_addr(&address(&place)?)?;
    // The file we made: removed at the end only if it is still ours (a
    // later bind to the same path replaces it, and must keep its own).
    let made = match &place {
        Place::Path(p) => std::fs::symlink_metadata(p)
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m)),
        Place::Abstract(_) => None,
    };
    let cleanup = Cleanup {
        place,
        made,
        private_dir,
    };
    serve(
        core,
        std_listener,
        format!("ipc://{shown}"),
        Some(cleanup),
        cancel,
    )
}

/// What a bind made and removes again when it ends.
struct Cleanup {
    place: Place,
    /// The inode of the socket file we made.
    made: Option<u64>,
    private_dir: Option<PathBuf>,
}

/// Serves a listening socket the application made and bound (libzmq's
/// `ZMQ_USE_FD`). Its file, if any, stays: the application removes it, as
/// with libzmq. Returns the endpoint (`ipc://path` or `ipc://@name`).
pub(crate) fn serve_adopted(
    core: &Arc<SocketCore>,
    std_listener: StdListener,
    cancel: Cancel,
) -> io::Result<String> {
    let addr = std_listener.local_addr()?;
    let shown = match (addr.as_pathname(), addr.as_abstract_name()) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
        (None, None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an unnamed Unix socket has no endpoint",
            ))
        }
    };
    serve(core, std_listener, format!("ipc://{shown}"), None, cancel)
}

fn serve(
    core: &Arc<SocketCore>,
    std_listener: StdListener,
    resolved: String,
    cleanup: Option<Cleanup>,
    cancel: Cancel,
) -> io::Result<String> {
    std_listener.set_nonblocking(true)?;
    let listener = {
        let _enter = core.shared.handle.enter();
        UnixListener::from_std(std_listener)?
    };
    let endpoint: Arc<str> = resolved.as_str().into();
    let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&listener) as u32;
    core.event(monitor::LISTENING, listen_fd, &endpoint);
    let c = core.clone();
    core.shared.spawn(async move {
        super::accept_loop(c, listener, cancel, endpoint).await;
        let Some(Cleanup {
            place,
            made,
            private_dir,
        }) = cleanup
        else {
            return;
        };
        if let Place::Path(p) = &place {
            let still_ours = std::fs::symlink_metadata(p)
                .is_ok_and(|m| Some(std::os::unix::fs::MetadataExt::ino(&m)) == made);
            if still_ours {
                let _ = std::fs::remove_file(p);
            }
        }
        if let Some(dir) = private_dir {
            let _ = std::fs::remove_dir(dir);
        }
    });
    Ok(resolved)
}

fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(1);
    h.finish()
}

/// Connects in the background, forever with backoff, like tcp.
pub(crate) fn connect(
    core: &Arc<SocketCore>,
    path: &str,
    cancel: Cancel,
    endpoint: Arc<str>,
) -> u64 {
    let notify = Arc::new(Notify::new());
    let peer = core.add_connect_peer(notify.clone());
    let place = Arc::new(place(path));
    let (c, open_core) = (core.clone(), core.clone());
    core.shared.spawn(driver::keep_connected(
        c,
        peer,
        notify,
        cancel,
        endpoint,
        false,
        move || {
            let (place, core) = (place.clone(), open_core.clone());
            async move {
                let s = std::os::unix::net::UnixStream::connect_addr(&address(&place)?)?;
                s.set_nonblocking(true)?;
                core.state
                    .lock()
                    .opts
                    .apply_to_stream(socket2::SockRef::from(&s), false);
                let _enter = core.shared.handle.enter();
                UnixStream::from_std(s)
            }
        },
    ));
    peer
}
