//! tcp:// — listeners and connecters.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use socket2::{Domain, Protocol, Socket as RawSocket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;

use super::driver;
use crate::endpoint::TcpSource;
use crate::monitor;
use crate::socket::core::SocketCore;

/// Linux's "no such device", which libzmq reports for an unknown interface.
const ENODEV: i32 = 19;

/// Binds at once (so errors and the chosen port are known to the caller),
/// then accepts in the background until `cancel` or the socket closes.
/// Returns the resolved endpoint, e.g. `tcp://0.0.0.0:49152`.
pub(crate) fn bind(
    core: &Arc<SocketCore>,
    host: &str,
    port: u16,
    cancel: Cancel,
) -> io::Result<String> {
    let (ipv6, device) = {
        let st = core.state.lock();
        (st.opts.ipv6, st.opts.bindtodevice.clone())
    };
    let addr = resolve_bind(host, port, ipv6)?;
    let raw = RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(dev) = &device {
        raw.bind_device(Some(dev.as_bytes()))?;
    }
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
        let _ = raw.set_tos_v4(tos);
    }
    raw.bind(&addr.into())?;
    raw.listen(backlog.min(i32::MAX as u32) as i32)?;
    serve(core, raw.into(), cancel)
}

/// Accepts on a listening socket (ours, or the application's: libzmq's
/// `ZMQ_USE_FD`) in the background. Returns the resolved endpoint.
pub(crate) fn serve(
    core: &Arc<SocketCore>,
    std_listener: std::net::TcpListener,
    cancel: Cancel,
) -> io::Result<String> {
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let listener = {
        let _enter = core.shared.handle.enter();
        TcpListener::from_std(std_listener)?
    };
    let resolved = format!("tcp://{}", fmt_addr(local));
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener) as u32;
    core.event(monitor::LISTENING, fd, &resolved);
    let task_core = core.clone();
    core.shared.spawn(super::accept_loop(
        task_core,
        listener,
        cancel,
        resolved.as_str().into(),
    ));
    Ok(resolved)
}

fn fmt_addr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// A local address to bind: `*`, an IP literal (IPv6 with an optional
/// `%zone`, by interface name or number), an interface name (its first
/// IPv4 address, or IPv6 with the `ipv6` option, as libzmq picks), or a
/// name of this host such as `localhost`. Unknown names give ENODEV.
fn resolve_bind(host: &str, port: u16, ipv6: bool) -> io::Result<SocketAddr> {
    if host == "*" {
        let ip = if ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        return Ok(SocketAddr::new(ip, port));
    }
    // libzmq refuses IPv6 literals unless ZMQ_IPV6 is set; we accept
    // explicit literals, which can only mean IPv6.
    if let Some(addr) = ip_literal(host, port)? {
        return Ok(addr);
    }
    if let Some(ip) = interface_address(host, |ip| ip.is_ipv6() == ipv6)? {
        return Ok(SocketAddr::new(ip, port));
    }
    // A name of this host (localhost), never a remote DNS name in practice:
    // binding elsewhere would fail anyway.
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.find(|a| ipv6 || a.is_ipv4()))
        .ok_or_else(|| no_device(host))
}

/// ENODEV as such (the C ABI passes the code on, as libzmq's errno).
fn no_device(host: &str) -> io::Error {
    tracing::debug!(host, "no interface or local address of that name");
    io::Error::from_raw_os_error(ENODEV)
}

/// An IP literal, with an IPv6 `%zone` resolved to its interface index.
fn ip_literal(host: &str, port: u16) -> io::Result<Option<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Some(SocketAddr::new(ip, port)));
    }
    let Some((ip, zone)) = host.split_once('%') else {
        return Ok(None);
    };
    let Ok(ip) = ip.parse::<Ipv6Addr>() else {
        return Ok(None);
    };
    let scope = match zone.parse::<u32>() {
        Ok(n) => n,
        Err(_) => if_addrs::get_if_addrs()?
            .into_iter()
            .find(|i| i.name == zone)
            .and_then(|i| i.index)
            .ok_or_else(|| no_device(zone))?,
    };
    Ok(Some(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))))
}

/// The first address of interface `name` that `want` accepts; `None` if no
/// interface has that name.
fn interface_address(name: &str, want: impl Fn(IpAddr) -> bool) -> io::Result<Option<IpAddr>> {
    let ifaces = if_addrs::get_if_addrs()?;
    let mut named = ifaces.iter().filter(|i| i.name == name).peekable();
    if named.peek().is_none() {
        return Ok(None);
    }
    match named.map(|i| i.ip()).find(|ip| want(*ip)) {
        Some(ip) => Ok(Some(ip)),
        None => Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("interface {name:?} has no address of the family asked for"),
        )),
    }
}

/// The local address a connection to `dest` starts from: `*` (any), an IP
/// literal or an interface name; never a DNS lookup, as in libzmq.
fn resolve_source(src: &TcpSource, dest: SocketAddr) -> io::Result<SocketAddr> {
    let v6 = dest.is_ipv6();
    let addr = if src.host == "*" {
        let any = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        SocketAddr::new(any, src.port)
    } else if let Some(addr) = ip_literal(&src.host, src.port)? {
        addr
    } else {
        let ip = interface_address(&src.host, |ip| ip.is_ipv6() == v6)?
            .ok_or_else(|| no_device(&src.host))?;
        SocketAddr::new(ip, src.port)
    };
    if addr.is_ipv6() != v6 {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("source {addr} and destination {dest} differ in address family"),
        ));
    }
    Ok(addr)
}

/// Starts connecting in the background, forever with backoff, until
/// `cancel` or until the socket closes with nothing left to flush.
pub(crate) fn connect(
    core: &Arc<SocketCore>,
    host: String,
    port: u16,
    source: Option<TcpSource>,
    cancel: Cancel,
    endpoint: Arc<str>,
) -> u64 {
    let notify = Arc::new(Notify::new());
    let peer = core.add_connect_peer(notify.clone());
    let (c, open_core) = (core.clone(), core.clone());
    core.shared.spawn(driver::keep_connected(
        c,
        peer,
        notify,
        cancel,
        endpoint,
        true,
        move || {
            let (host, core, source) = (host.clone(), open_core.clone(), source.clone());
            async move {
                let (timeout, device) = {
                    let st = core.state.lock();
                    (st.opts.connect_timeout, st.opts.bindtodevice.clone())
                };
                let stream = open(&host, port, source.as_ref(), device.as_deref(), timeout).await?;
                core.state
                    .lock()
                    .opts
                    .apply_to_stream(socket2::SockRef::from(&stream), true);
                Ok(stream)
            }
        },
    ));
    peer
}

async fn open(
    host: &str,
    port: u16,
    source: Option<&TcpSource>,
    device: Option<&str>,
    timeout: Option<Duration>,
) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no addresses");
    for addr in tokio::net::lookup_host((host, port)).await? {
        let prepared = (|| {
            let sock = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(dev) = device {
                socket2::SockRef::from(&sock).bind_device(Some(dev.as_bytes()))?;
            }
            if let Some(src) = source {
                let local = resolve_source(src, addr)?;
                // A fixed source port must be reusable across reconnects.
                sock.set_reuseaddr(true)?;
                sock.bind(local)?;
            }
            io::Result::Ok(sock)
        })();
        let sock = match prepared {
            Ok(sock) => sock,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let connect = sock.connect(addr);
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
