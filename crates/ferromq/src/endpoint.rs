//! Endpoint strings: `transport://address`.

use std::fmt;
use std::str::FromStr;

/// A parsed endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `tcp://host:port`. For bind, `host` may be `*` (all interfaces) or an
    /// interface name (`lo`, `eth0`), and the port `*` or `0` (the OS picks
    /// one). For connect, `tcp://source;host:port` also names the local
    /// address to connect from.
    Tcp {
        /// Host name, IPv4/IPv6 literal (without brackets), interface name, or `*`.
        host: String,
        /// Port; 0 means "any" (bind).
        port: u16,
        /// Connect only: the local address and port to connect from.
        source: Option<TcpSource>,
    },
    /// `ipc://path`, `ipc://@name` (Linux abstract), or `ipc://*` (bind: a
    /// fresh private path).
    Ipc {
        /// The path, `@name`, or `*`.
        path: String,
    },
    /// `inproc://name`: a pipe between sockets of one context.
    Inproc {
        /// The name (any non-empty string).
        name: String,
    },
}

/// The local end of a tcp connect (`tcp://192.168.1.17:0;server:5555`):
/// an IP literal, an interface name or `*`, and a port (`0` or `*`: any).
/// Names are not looked up in DNS, as in libzmq.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpSource {
    /// IPv4/IPv6 literal (without brackets), interface name, or `*`.
    pub host: String,
    /// Port; 0 means "any".
    pub port: u16,
}

/// Why an endpoint string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No `://` separator.
    #[error("endpoint {0:?} is not of the form transport://address")]
    Syntax(String),
    /// A transport we do not know (libzmq: `EPROTONOSUPPORT`).
    #[error("unsupported transport {0:?}")]
    UnknownTransport(String),
    /// The port is missing, not a number, or out of range.
    #[error("invalid port in {0:?}")]
    BadPort(String),
    /// The host part is empty or has characters no host can have.
    #[error("invalid host in {0:?}")]
    BadHost(String),
    /// An ipc path longer than a Unix socket address holds (107 bytes on Linux).
    #[error("ipc path too long (max 107 bytes) in {0:?}")]
    PathTooLong(String),
    /// A wildcard (`*`) where only a bind allows one.
    #[error("wildcard not allowed when connecting: {0:?}")]
    WildcardOnConnect(String),
    /// A source address (`src;dst`) where only a tcp connect allows one.
    #[error("a source address is only allowed when connecting over tcp: {0:?}")]
    SourceOnBind(String),
}

impl Endpoint {
    /// Parses an endpoint for `bind` (wildcard host and port allowed).
    pub fn parse_bind(s: &str) -> Result<Endpoint, EndpointError> {
        Self::parse(s, true)
    }

    /// Parses an endpoint for `connect` (a concrete host and port required).
    pub fn parse_connect(s: &str) -> Result<Endpoint, EndpointError> {
        Self::parse(s, false)
    }

    fn parse(s: &str, bind: bool) -> Result<Endpoint, EndpointError> {
        let (transport, addr) = s
            .split_once("://")
            .filter(|(t, _)| !t.is_empty())
            .ok_or_else(|| EndpointError::Syntax(s.to_string()))?;
        match transport {
            "tcp" => Self::parse_tcp(s, addr, bind),
            "ipc" => Self::parse_ipc(s, addr, bind),
            "inproc" if addr.is_empty() => Err(EndpointError::BadHost(s.to_string())),
            "inproc" => Ok(Endpoint::Inproc {
                name: addr.to_string(),
            }),
            other => Err(EndpointError::UnknownTransport(other.to_string())),
        }
    }

    fn parse_ipc(s: &str, addr: &str, bind: bool) -> Result<Endpoint, EndpointError> {
        // sun_path holds 107 bytes on Linux (plus the terminating NUL).
        if addr.len() > 107 {
            return Err(EndpointError::PathTooLong(s.to_string()));
        }
        if addr.is_empty() || addr == "@" || addr.contains('\0') {
            return Err(EndpointError::BadHost(s.to_string()));
        }
        if addr == "*" && !bind {
            return Err(EndpointError::WildcardOnConnect(s.to_string()));
        }
        Ok(Endpoint::Ipc {
            path: addr.to_string(),
        })
    }

    fn parse_tcp(s: &str, addr: &str, bind: bool) -> Result<Endpoint, EndpointError> {
        // libzmq takes the last ';' as the end of the source address.
        let (source, addr) = match addr.rsplit_once(';') {
            Some(_) if bind => return Err(EndpointError::SourceOnBind(s.to_string())),
            // One source only: `a;b;c` is malformed, not a source on a bind.
            Some((src, _)) if src.contains(';') => {
                return Err(EndpointError::BadHost(s.to_string()))
            }
            Some((src, dst)) => {
                let Endpoint::Tcp { host, port, .. } = Self::parse_tcp(s, src, true)? else {
                    unreachable!("parse_tcp makes Tcp endpoints")
                };
                (Some(TcpSource { host, port }), dst)
            }
            None => (None, addr),
        };
        // The port follows the last ':' (IPv6 literals are bracketed).
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| EndpointError::BadPort(s.to_string()))?;
        let port = match port {
            "*" if bind => 0,
            "*" => return Err(EndpointError::WildcardOnConnect(s.to_string())),
            // Decimal; a leading zero is fine (libzmq reads it with atoi),
            // but only "0" itself means port 0 ("00" is refused, as there).
            p if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || p.bytes().any(|b| b != b'0')) =>
            {
                p.parse::<u16>()
                    .map_err(|_| EndpointError::BadPort(s.to_string()))?
            }
            _ => return Err(EndpointError::BadPort(s.to_string())),
        };
        // An IPv6 literal, optionally with a %zone: an interface name or a
        // non-zero number (libzmq refuses zone 0).
        let is_ipv6 = |h: &str| {
            let (addr, zone) = h.split_once('%').unwrap_or((h, "x"));
            !zone.is_empty() && zone != "0" && addr.parse::<std::net::Ipv6Addr>().is_ok()
        };
        // libzmq takes brackets around any host (IPv4 and names too).
        let host = if let Some(inner) = host.strip_prefix('[') {
            inner
                .strip_suffix(']')
                .filter(|h| !h.is_empty() && (!h.contains(':') || is_ipv6(h)))
                .ok_or_else(|| EndpointError::BadHost(s.to_string()))?
        } else if host.contains(':') && !is_ipv6(host) {
            return Err(EndpointError::BadHost(s.to_string()));
        } else {
            host
        };
        if host.is_empty()
            || !host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'*' | b'%')
            })
        {
            return Err(EndpointError::BadHost(s.to_string()));
        }
        if host == "*" && !bind {
            return Err(EndpointError::WildcardOnConnect(s.to_string()));
        }
        // zmq_connect's check: a host starts with a letter, a digit or ':'.
        if !bind && !host.starts_with(|c: char| c.is_ascii_alphanumeric() || c == ':') {
            return Err(EndpointError::BadHost(s.to_string()));
        }
        Ok(Endpoint::Tcp {
            host: host.to_string(),
            port,
            source,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port, source } => {
                f.write_str("tcp://")?;
                if let Some(TcpSource { host, port }) = source {
                    write_host_port(f, host, *port)?;
                    f.write_str(";")?;
                }
                write_host_port(f, host, *port)
            }
            Endpoint::Inproc { name } => write!(f, "inproc://{name}"),
            Endpoint::Ipc { path } => write!(f, "ipc://{path}"),
        }
    }
}

fn write_host_port(f: &mut fmt::Formatter<'_>, host: &str, port: u16) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]:{port}")
    } else {
        write!(f, "{host}:{port}")
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;
    /// Parses with bind rules (the more permissive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse_bind(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
            source: None,
        }
    }

    #[test]
    fn table() {
        let ok_bind = [
            ("tcp://*:5555", tcp("*", 5555)),
            ("tcp://127.0.0.1:*", tcp("127.0.0.1", 0)),
            ("tcp://127.0.0.1:0", tcp("127.0.0.1", 0)),
            ("tcp://[::1]:80", tcp("::1", 80)),
            ("tcp://::1:80", tcp("::1", 80)),
            ("tcp://[fe80::1%eth0]:80", tcp("fe80::1%eth0", 80)),
            ("tcp://localhost:65535", tcp("localhost", 65535)),
        ];
        for (s, want) in ok_bind {
            assert_eq!(Endpoint::parse_bind(s).unwrap(), want, "{s}");
        }
        assert_eq!(
            Endpoint::parse_connect("tcp://example.com:1").unwrap(),
            tcp("example.com", 1)
        );
        let bad = [
            ("tcp//x:1", true),
            ("udp://x:1", true),
            ("tcp://x", true),
            ("tcp://x:", true),
            ("tcp://x:abc", true),
            ("tcp://x:00", true),
            ("tcp://x:65536", true),
            ("tcp://:5555", true),
            ("tcp://[::1:80", true),
            ("tcp://[]:80", true),
            ("tcp://h/path:80", true),
            ("tcp://127.0.0.1:1:2", false),
            ("tcp://[fe80::1%]:2", false),
            ("tcp://*:5555", false),
            ("tcp://host:*", false),
        ];
        for (s, bind) in bad {
            let r = if bind {
                Endpoint::parse_bind(s)
            } else {
                Endpoint::parse_connect(s)
            };
            assert!(r.is_err(), "{s} should fail");
        }
        assert_eq!(
            Endpoint::parse_bind("inproc2://x"),
            Err(EndpointError::UnknownTransport("inproc2".into()))
        );
        assert_eq!(tcp("::1", 5).to_string(), "tcp://[::1]:5");
        assert_eq!(
            Endpoint::parse_connect("inproc://a:b/c").unwrap(),
            Endpoint::Inproc {
                name: "a:b/c".into()
            }
        );
        assert!(Endpoint::parse_bind("inproc://").is_err());
        assert_eq!(
            Endpoint::parse_bind("ipc:///tmp/x").unwrap(),
            Endpoint::Ipc {
                path: "/tmp/x".into()
            }
        );
        assert_eq!(
            Endpoint::parse_connect("ipc://@abs").unwrap(),
            Endpoint::Ipc {
                path: "@abs".into()
            }
        );
        assert!(Endpoint::parse_bind("ipc://*").is_ok());
        for bad in ["ipc://", "ipc://@", &format!("ipc:///{}", "x".repeat(120))] {
            assert!(Endpoint::parse_bind(bad).is_err(), "{bad}");
        }
        assert!(Endpoint::parse_connect("ipc://*").is_err());
    }
}
