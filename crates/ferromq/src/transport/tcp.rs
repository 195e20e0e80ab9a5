//! tcp:// — listeners and connecters.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket as RawSocket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::driver;
use crate::socket::core::{Slot, SocketCore};

/// Binds at once (so errors and the chosen port are known to the caller),
/// then accepts in the background until `cancel` or the socket closes.
/// Returns the resolved endpoint, e.g. `tcp://0.0.0.0:49152`.
pub(crate) fn bind(
    core: &Arc<SocketCore>,
    host: &str,
    port: u16,
    cancel: CancellationToken,
) -> io::Result<String> {
    let ipv6 = core.state.lock().opts.ipv6;
    let addr = resolve_bind(host, port, ipv6)?;
    let raw = RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // Dual-stack when binding the IPv6 wildcard with the ipv6 option on.
        raw.set_only_v6(!ipv6 || !addr.ip().is_unspecified())?;
    }
    raw.set_reuse_address(true)?;
    let (backlog, tos) = {
        let st = core.state.lock();
        (st.opts.backlog, st.opts.tos)
    };
    if tos != 0 {
        let _ = raw.set_tos(tos);
    }
    raw.bind(&addr.into())?;
    raw.listen(backlog.min(i32::MAX as u32) as i32)?;
    raw.set_nonblocking(true)?;
    let std_listener: std::net::TcpListener = raw.into();
    let local = std_listener.local_addr()?;
    let listener = {
        let _enter = core.shared.handle.enter();
        TcpListener::from_std(std_listener)?
    };
    let task_core = core.clone();
    core.shared.spawn(accept_loop(task_core, listener, cancel));
    Ok(format!("tcp://{}", fmt_addr(local)))
}

fn fmt_addr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

fn resolve_bind(host: &str, port: u16, ipv6: bool) -> io::Result<SocketAddr> {
    if host == "*" {
        let ip = if ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        return Ok(SocketAddr::new(ip, port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ip.is_ipv6() && !ipv6 {
            // libzmq refuses IPv6 addresses unless ZMQ_IPV6 is set; we accept
            // explicit literals, which can only mean IPv6.
        }
        return Ok(SocketAddr::new(ip, port));
    }
    // A local name (localhost); interface names come with the transports issue.
    (host, port)
        .to_socket_addrs()?
        .find(|a| ipv6 || a.is_ipv4())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("cannot bind to {host}"),
            )
        })
}

async fn accept_loop(core: Arc<SocketCore>, listener: TcpListener, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = core.closing.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                core.state
                    .lock()
                    .opts
                    .apply_to_stream(socket2::SockRef::from(&stream), true);
                let c = core.clone();
                let cancel = cancel.clone();
                core.shared.spawn(async move {
                    driver::run(c, stream, Slot::New, Arc::new(Notify::new()), cancel).await;
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Starts connecting in the background, forever with backoff, until
/// `cancel` or until the socket closes with nothing left to flush.
pub(crate) fn connect(
    core: &Arc<SocketCore>,
    host: String,
    port: u16,
    cancel: CancellationToken,
) -> u64 {
    let notify = Arc::new(Notify::new());
    let peer = core.add_connect_peer(notify.clone());
    let (c, open_core) = (core.clone(), core.clone());
    core.shared
        .spawn(driver::keep_connected(c, peer, notify, cancel, move || {
            let (host, core) = (host.clone(), open_core.clone());
            async move {
                let timeout = core.state.lock().opts.connect_timeout;
                let stream = open(&host, port, timeout).await?;
                core.state
                    .lock()
                    .opts
                    .apply_to_stream(socket2::SockRef::from(&stream), true);
                Ok(stream)
            }
        }));
    peer
}

async fn open(host: &str, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no addresses");
    for addr in tokio::net::lookup_host((host, port)).await? {
        let connect = TcpStream::connect(addr);
        let r = match timeout {
            Some(t) => tokio::time::timeout(t, connect)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
            None => connect.await,
        };
        match r {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
