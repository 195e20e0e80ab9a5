//! Endpoint strings, table by table. Ports the intent (not the code) of
//! libzmq 4.3.5's `unittests/unittest_ip_resolver.cpp` (its 82 resolver
//! cases, recast as whole `tcp://host:port` endpoints) and of
//! `tests/test_connect_resolve.cpp`, `test_bind_src_address.cpp`,
//! `test_last_endpoint.cpp` and `test_unbind_wildcard.cpp` to our public
//! API: `Endpoint::parse_bind` / `parse_connect`, `Display`, and real
//! `bind` / `connect` / `unbind` calls where resolution matters.
//!
//! Resolver cases without a port (`expect_port(false)`) become endpoints
//! with one; multicast classification (`test_addr_*`) becomes "parses as a
//! plain literal". Rows where we differ from libzmq by choice say so. The
//! two `libzmq_*_what_we_*` tests hold rows where libzmq's answer looks
//! right and ours does not: they fail until the parser changes.

use std::net::TcpListener;
use std::time::Duration;

use ferromq::{Context, Endpoint, EndpointError as E, Error, Message, SocketType, TcpSource};

const WAIT: Duration = Duration::from_secs(10);

type Ctor = fn(String) -> E;

#[rustfmt::skip]
fn tcp(host: &str, port: u16, src: Option<(&str, u16)>) -> Endpoint {
    let source = src.map(|(h, port)| TcpSource { host: h.into(), port });
    Endpoint::Tcp { host: host.into(), port, source }
}

#[rustfmt::skip]
fn parse(s: &str, bind: bool) -> Result<Endpoint, E> {
    if bind { Endpoint::parse_bind(s) } else { Endpoint::parse_connect(s) }
}

/// `s` parses (bind or connect rules) to `want`, and `want` displays as a
/// string that parses back to `want`.
fn check(s: &str, bind: bool, want: Result<Endpoint, E>) {
    let side = if bind { "parse_bind" } else { "parse_connect" };
    let got = parse(s, bind);
    assert_eq!(got, want, "{side}({s:?})");
    if let Ok(ep) = got {
        let shown = ep.to_string();
        assert_eq!(parse(&shown, bind), Ok(ep), "{side}({s:?}) shows {shown:?}");
    }
}

/// Valid for bind and connect alike: (input, host, port).
#[rustfmt::skip]
const BOTH_OK: &[(&str, &str, u16)] = &[
    ("tcp://1.2.128.129:123", "1.2.128.129", 123), ("tcp://255.255.255.255:1", "255.255.255.255", 1), // ipv4_simple/_port/_max
    ("tcp://127.0.0.1:0", "127.0.0.1", 0),   // nobind_addr_port0 (v4, v6): connecting to port 0 is allowed
    ("tcp://1.2.128.129:0", "1.2.128.129", 0), ("tcp://127.0.0.1:65535", "127.0.0.1", 65535), // parse_ipv4_port0
    ("tcp://11.22.33.44:55", "11.22.33.44", 55), // parse_ipv4_in_ipv6(_port): v4-mapping is a resolve-time matter
    // We accept IPv6 literals without the ipv6 option; libzmq refuses them
    // (parse_ipv4_reject_ipv6, parse_ipv4_port_ipv6_reject).
    ("tcp://[::1]:1234", "::1", 1234), // parse_ipv6_simple, _brackets; test_connect_resolve loopback_ipv6
    ("tcp://[abcd:1234::1:0:234]:1", "abcd:1234::1:0:234", 1), // parse_ipv6_simple2
    ("tcp://[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1), // _max
    ("tcp://[1234::1]:80", "1234::1", 80), ("tcp://::1:80", "::1", 80), // parse_ipv6_port
    ("tcp://abcd:1234::1:0:234:123", "abcd:1234::1:0:234", 123),  // parse_ipv6_port_nobrackets
    ("tcp://[3000:4:5::1:234%2]:1", "3000:4:5::1:234%2", 1),      // parse_ipv6_scope_int
    ("tcp://3000:4:5::1:234%2:1111", "3000:4:5::1:234%2", 1111),  // parse_ipv6_scope_int_port
    ("tcp://[3000:4:5::1:234%eth1]:1", "3000:4:5::1:234%eth1", 1), // parse_ipv6_scope_if
    ("tcp://3000:4:5::1:234%eth0:8080", "3000:4:5::1:234%eth0", 8080),   // parse_ipv6_scope_if_port
    ("tcp://[3000:4:5::1:234%eth0]:8080", "3000:4:5::1:234%eth0", 8080), // ..._if_port_brackets
    // parse_ipv6_scope_badif: an unknown zone is a resolve-time error (REAL_BINDS).
    ("tcp://[3000:4:5::1:234%bad0]:1", "3000:4:5::1:234%bad0", 1),
    // dns_*: names parse; resolving them (or never connecting) comes later.
    ("tcp://ip.zeromq.org:1234", "ip.zeromq.org", 1234),      // dns_ipv4_simple, _port, dns_ipv6_*
    ("tcp://ipv4only.zeromq.org:1", "ipv4only.zeromq.org", 1), // dns_ipv4_only, dns_ipv6_ipv4
    ("tcp://ipv6only.zeromq.org:1", "ipv6only.zeromq.org", 1), // dns_ipv6_only, dns_ipv4_ipv6
    ("tcp://invalid.zeromq.org:1", "invalid.zeromq.org", 1),   // dns_ipv4_invalid, dns_ipv6_invalid
    ("tcp://5.4.3.2:1", "5.4.3.2", 1), ("tcp://[fdf5:d058:d656::1]:1", "fdf5:d058:d656::1", 1), // dns_ipv4/6_numeric
    ("tcp://ip.zeromq.org%lo0:4444", "ip.zeromq.org%lo0", 4444), // dns_ipv6_scope(_port)
    ("tcp://localhost:1234", "localhost", 1234), // test_connect_resolve hostname_ipv4
    // addr_unicast/multicast_*: tcp takes them all as plain literals.
    ("tcp://1.2.3.4:1", "1.2.3.4", 1), ("tcp://230.1.2.3:1", "230.1.2.3", 1), ("tcp://224.0.0.0:1", "224.0.0.0", 1),
    ("tcp://239.255.255.255:1", "239.255.255.255", 1), ("tcp://223.255.255.255:1", "223.255.255.255", 1),
    ("tcp://240.0.0.0:1", "240.0.0.0", 1), ("tcp://[abcd::1]:1", "abcd::1", 1),
    ("tcp://[ffab::1234]:1", "ffab::1234", 1), ("tcp://[ff00::]:1", "ff00::", 1),
    ("tcp://[feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1),
];

/// Valid for bind only (wildcards): (input, host, port).
#[rustfmt::skip]
const BIND_OK: &[(&str, &str, u16)] = &[
    ("tcp://*:*", "*", 0), ("tcp://*:0", "*", 0), // bind_any, bind_any_port0 (v4, v6)
    ("tcp://0.0.0.0:*", "0.0.0.0", 0),   // parse_ipv4_zero
    ("tcp://*:5555", "*", 5555), ("tcp://127.0.0.1:*", "127.0.0.1", 0),
    ("tcp://[1234::1]:*", "1234::1", 0), ("tcp://[::]:*", "::", 0), // parse_ipv6_port_any, parse_ipv6_zero
    ("tcp://lo:*", "lo", 0), ("tcp://eth0:65535", "eth0", 65535),
];

/// Valid connects with a source (`src;dst`): (input, source, destination).
/// A source is never looked up in DNS (dns_deny_ipv4/v6: libzmq resolves it
/// with DNS off, we by interface only), so a `localhost` source parses but
/// never connects.
#[rustfmt::skip]
#[allow(clippy::type_complexity)]
const SOURCE_OK: &[(&str, (&str, u16), (&str, u16))] = &[
    ("tcp://127.0.0.1:0;localhost:1234", ("127.0.0.1", 0), ("localhost", 1234)), // test_bind_src_address
    ("tcp://localhost:5555;localhost:1235", ("localhost", 5555), ("localhost", 1235)), // ditto
    ("tcp://lo:5555;localhost:1235", ("lo", 5555), ("localhost", 1235)),         // ditto
    ("tcp://*:*;127.0.0.1:1", ("*", 0), ("127.0.0.1", 1)), // a source is bindable: wildcards
    ("tcp://[::1]:0;[::1]:5", ("::1", 0), ("::1", 5)),
    ("tcp://eth0:*;[fe80::1%eth0]:5", ("eth0", 0), ("fe80::1%eth0", 5)),
    ("tcp://3000::1%2:7;ip.zeromq.org:9", ("3000::1%2", 7), ("ip.zeromq.org", 9)),
];

/// Valid ipc/inproc endpoints, both parsers: (input, path or name).
#[rustfmt::skip]
const OTHER_OK: &[(&str, &str)] = &[
    ("ipc:///tmp/x.sock", "/tmp/x.sock"), ("ipc://@abstract", "@abstract"),
    ("ipc://rel/path;with:odd*chars", "rel/path;with:odd*chars"), ("inproc://a:b/c", "a:b/c"), ("inproc://*", "*"),
];

/// Refused by both parsers with the same error (which carries the input).
#[rustfmt::skip]
const BAD_BOTH: &[(&str, Ctor)] = &[
    ("", E::Syntax), ("tcp:/127.0.0.1:1", E::Syntax), ("tcp//127.0.0.1:1", E::Syntax), ("localhost:5555", E::Syntax),
    ("tcp://", E::BadPort), ("tcp://1.2.3.4", E::BadPort), // test_no_hostname_fails, parse_ipv4_port_missing
    ("tcp://[::1]", E::BadPort), ("tcp://1.2.3.4:", E::BadPort),
    ("tcp://1.2.3.4:bad", E::BadPort), ("tcp://localhost:invalid", E::BadPort), // ..._port_bad, test_invalid_service
    ("tcp://1.2.3.4:00", E::BadPort), ("tcp://1.2.3.4:65536", E::BadPort), // libzmq: atoi gives 0, EINVAL
    // libzmq reads the port with atoi() and keeps what it gets; we take
    // only a decimal number in range (our choice):
    ("tcp://1.2.3.4:567bad", E::BadPort),      // libzmq: port 567 (parse_ipv4_port_garbage)
    ("tcp://1.2.3.4:65537", E::BadPort),       // libzmq: wraps to port 1
    ("tcp://1.2.3.4:-1", E::BadPort),          // libzmq bind: wraps to 65535
    ("tcp://127.0.0.1:5555/path", E::BadPort), // libzmq bind: port 5555, path ignored
    ("tcp://[192.168.1.1:]5555", E::BadPort), ("tcp://[192.168.1.1:5555]", E::BadPort), // ..._brackets_bad(2)
    ("tcp://[192.168.1.1:*]", E::BadPort),     // parse_ipv4_wild_brackets_bad
    ("tcp://[ip.zeromq.org:22]", E::BadPort),  // dns_brackets_port_bad (not run upstream)
    ("tcp://1.2.128.129]:1", E::BadHost), ("tcp://[1.2.128.129:1", E::BadHost), // parse_ipv4_brackets_missingl/r
    ("tcp://[1.2.128].129:1", E::BadHost),     // parse_ipv4_brackets_bad
    ("tcp://::1]:1", E::BadHost), ("tcp://[::1:1", E::BadHost), // parse_ipv6_brackets_missingl/r
    ("tcp://[abcd:1234::1:]0:234", E::BadHost), // parse_ipv6_brackets_bad
    ("tcp://[ip.zeromq].org:1", E::BadHost),   // dns_brackets_bad
    ("tcp://[::1%]:1", E::BadHost), ("tcp://::1%:1", E::BadHost), // '%' and no zone: EINVAL in libzmq
    ("tcp://in val id:1234", E::BadHost), // test_hostname_with_spaces_fails
    ("://127.0.0.1:1", E::Syntax), // an empty transport: EINVAL in libzmq, not EPROTONOSUPPORT
    ("tcp://[]:1", E::BadHost), ("tcp://:5555", E::BadHost), ("tcp://h/path:80", E::BadHost),
    ("tcp://127.0.0.1:1:2", E::BadHost), // libzmq's connect lets it through; resolving fails later
    ("ipc://", E::BadHost), ("ipc://@", E::BadHost), ("inproc://", E::BadHost),
];

/// Transports we do not know: (input, transport named in the error).
#[rustfmt::skip]
const UNKNOWN_TRANSPORT: &[(&str, &str)] = &[
    ("invalid://localhost:1234", "invalid"), // test_invalid_proto_fails (EPROTONOSUPPORT)
    ("TCP://127.0.0.1:1", "TCP"),            // case-sensitive, as in libzmq
    ("udp://*:5555", "udp"), ("ws://127.0.0.1:1", "ws"), ("pgm://eth0;239.192.1.1:5555", "pgm"),
];

/// Refused by `parse_connect` (BIND_OK has the wildcard forms for bind).
#[rustfmt::skip]
const BAD_CONNECT: &[(&str, Ctor)] = &[
    // libzmq's connect refuses '*' as first character or as port at once.
    ("tcp://*:*", E::WildcardOnConnect), ("tcp://*:1234", E::WildcardOnConnect), // nobind_any(_port) (v4, v6)
    ("tcp://127.0.0.1:*", E::WildcardOnConnect),     // nobind_addr_anyport (v4, v6)
    ("tcp://192.168.0.200:*", E::WildcardOnConnect), // test_connect_resolve test_x
    ("tcp://[1234::1]:*", E::WildcardOnConnect), ("ipc://*", E::WildcardOnConnect),
    ("tcp://127.0.0.1;localhost:1", E::BadPort), // a source needs a port
    ("tcp://127.0.0.1:0;localhost:*", E::WildcardOnConnect), ("tcp://127.0.0.1:0;*:1", E::WildcardOnConnect),
    ("tcp://127.0.0.1:0;", E::BadPort), ("tcp://;127.0.0.1:1", E::BadPort),
    ("tcp://[::1%]:0;[::1]:1", E::BadHost), ("tcp://src:0;in val id:1", E::BadHost),
    // Two sources.
    ("tcp://a:1;b:2;c:3", E::BadHost),
    // zmq_connect's syntax check: a host starts with a letter, digit, '[' or ':'.
    ("tcp://-foo:1", E::BadHost), ("tcp://.foo:1", E::BadHost), ("tcp://_foo:1", E::BadHost),
    ("tcp://%eth0:1", E::BadHost),
];

/// Refused by `parse_bind` only: libzmq's bind parses a source and then
/// ignores it; we refuse it (our choice).
#[rustfmt::skip]
const BAD_BIND: &[(&str, Ctor)] = &[
    ("tcp://127.0.0.1:0;127.0.0.1:5555", E::SourceOnBind), ("tcp://*:*;*:*", E::SourceOnBind),
];

#[test]
fn valid_forms_parse_and_round_trip() {
    for &(s, host, port) in BOTH_OK {
        check(s, true, Ok(tcp(host, port, None)));
        check(s, false, Ok(tcp(host, port, None)));
        let from_str = s.parse::<Endpoint>();
        assert_eq!(from_str, Ok(tcp(host, port, None)), "FromStr({s:?})");
    }
    for &(s, host, port) in BIND_OK {
        check(s, true, Ok(tcp(host, port, None)));
    }
    for &(s, src, (host, port)) in SOURCE_OK {
        check(s, false, Ok(tcp(host, port, Some(src))));
    }
    for &(s, what) in OTHER_OK {
        let want = match s.starts_with("ipc://") {
            true => Endpoint::Ipc { path: what.into() },
            false => Endpoint::Inproc { name: what.into() },
        };
        check(s, true, Ok(want.clone()));
        check(s, false, Ok(want));
    }
    // sun_path holds 107 bytes on Linux.
    let fits = format!("ipc:///{}", "x".repeat(106));
    let path = fits["ipc://".len()..].into();
    check(&fits, false, Ok(Endpoint::Ipc { path }));
    let long = format!("ipc:///{}", "x".repeat(107));
    check(&long, true, Err(E::PathTooLong(long.clone())));
}

#[test]
fn malformed_forms_give_the_exact_error() {
    for &(s, err) in BAD_BOTH {
        check(s, true, Err(err(s.into())));
        check(s, false, Err(err(s.into())));
    }
    for &(s, transport) in UNKNOWN_TRANSPORT {
        check(s, true, Err(E::UnknownTransport(transport.into())));
        check(s, false, Err(E::UnknownTransport(transport.into())));
    }
    for &(s, err) in BAD_CONNECT {
        check(s, false, Err(err(s.into())));
    }
    for &(s, err) in BAD_BIND {
        check(s, true, Err(err(s.into())));
    }
}

#[test]
fn display_is_canonical() {
    #[rustfmt::skip]
    let table: &[(&str, bool, &str)] = &[ // (input, bind rules?, display)
        ("tcp://*:*", true, "tcp://*:0"), ("tcp://::1:5", false, "tcp://[::1]:5"),
        ("tcp://3000:4:5::1:234%eth0:8080", false, "tcp://[3000:4:5::1:234%eth0]:8080"),
        ("tcp://src:0;host:5555", false, "tcp://src:0;host:5555"),
        ("tcp://*:*;::1:5", false, "tcp://*:0;[::1]:5"),
        ("tcp://ip.zeromq.org%lo0:4444", false, "tcp://ip.zeromq.org%lo0:4444"),
        ("ipc://*", true, "ipc://*"), ("ipc://@abstract", false, "ipc://@abstract"),
        ("inproc://a:b/c", false, "inproc://a:b/c"),
    ];
    for &(s, bind, shown) in table {
        let got = parse(s, bind).map(|e| e.to_string());
        assert_eq!(got.as_deref(), Ok(shown), "{s:?}");
    }
}

/// Garbage never panics; whatever parses round-trips, and what connect
/// accepts, bind accepts too (or refuses only for its source).
#[test]
fn garbage_never_panics() {
    const CHARS: &[u8] = b":/[]*%;@.0123456789abcdefghijklmnopqrstuvwxyz";
    #[rustfmt::skip]
    const PREFIXES: &[&str] = &["", "tcp://", "tcp://", "tcp://[", "tcp://*:", "ipc://", "inproc://"];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..600 {
        let mut s = PREFIXES[next() % PREFIXES.len()].to_string();
        for _ in 0..next() % 20 {
            s.push(CHARS[next() % CHARS.len()] as char);
        }
        let got = std::panic::catch_unwind(|| (parse(&s, true), parse(&s, false)));
        let (bind, connect) = got.unwrap_or_else(|_| panic!("parser panicked on {s:?}"));
        for (r, is_bind) in [(&bind, true), (&connect, false)] {
            *(if r.is_ok() { &mut ok } else { &mut err }) += 1;
            check(&s, is_bind, r.clone()); // round-trips if Ok
        }
        let Ok(ep) = &connect else { continue };
        #[rustfmt::skip]
        let want = match ep {
            Endpoint::Tcp { source: Some(_), .. } => Err(E::SourceOnBind(s.clone())),
            _ => Ok(ep.clone()),
        };
        assert_eq!(bind, want, "{s:?}: connect accepts it, so bind should");
    }
    assert!(ok > 50 && err > 50, "{ok} ok, {err} err");
}

fn ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

enum Want {
    /// Bound; `last_endpoint` is this prefix and a non-zero port.
    Bound(&'static str),
    /// `Error::Io` with ENODEV, as libzmq reports an unknown interface.
    NoDevice,
}

/// Real binds: (endpoint, ipv6 option, needs IPv6 loopback, outcome).
#[rustfmt::skip]
const REAL_BINDS: &[(&str, bool, bool, Want)] = &[
    ("tcp://*:*", false, false, Want::Bound("tcp://0.0.0.0:")), // bind_any(_port0)_ipv4
    ("tcp://*:0", false, false, Want::Bound("tcp://0.0.0.0:")),
    ("tcp://*:*", true, true, Want::Bound("tcp://[::]:")),      // bind_any_ipv6
    ("tcp://127.0.0.1:0", false, false, Want::Bound("tcp://127.0.0.1:")),
    // libzmq binds ::ffff:127.0.0.1 here (parse_ipv4_in_ipv6); we bind IPv4.
    ("tcp://127.0.0.1:*", true, false, Want::Bound("tcp://127.0.0.1:")),
    ("tcp://lo:*", false, false, Want::Bound("tcp://127.0.0.1:")),
    ("tcp://lo:*", true, true, Want::Bound("tcp://[::1]:")), // the NIC's IPv6 address
    // We take IPv6 literals without the ipv6 option; libzmq's resolver asks
    // for AF_INET only and fails (ENODEV).
    ("tcp://[::1]:*", false, true, Want::Bound("tcp://[::1]:")),
    ("tcp://[::1%lo]:*", false, true, Want::Bound("tcp://[::1]:")),
    ("tcp://::1:0", true, true, Want::Bound("tcp://[::1]:")),
    // libzmq 4.3.5 resolves names on bind too (tcp_address.cpp: allow_dns(true)).
    ("tcp://localhost:*", false, false, Want::Bound("tcp://127.0.0.1:")),
    ("tcp://nosuchif0:*", false, false, Want::NoDevice),
    // parse_ipv6_scope_badif: libzmq says EINVAL, we say ENODEV.
    ("tcp://[::1%nosuchif0]:*", false, false, Want::NoDevice),
];

#[test]
fn real_binds_resolve() {
    let ctx = Context::new();
    let have_v6 = ipv6_loopback();
    for (s, ipv6, needs_v6, want) in REAL_BINDS {
        if *needs_v6 && !have_v6 {
            println!("skipping bind({s:?}), ipv6={ipv6}: no IPv6 loopback on this machine");
            continue;
        }
        let sock = ctx.socket(SocketType::Pull).unwrap();
        sock.set_linger(Some(Duration::ZERO));
        sock.set_ipv6(*ipv6);
        match (sock.bind(s), want) {
            (Ok(()), Want::Bound(prefix)) => {
                let last = sock.last_endpoint();
                let port = last.strip_prefix(prefix).map(str::parse::<u16>);
                assert!(
                    matches!(port, Some(Ok(p)) if p != 0),
                    "{s:?} v6={ipv6}: {last}"
                );
                let shown = Endpoint::parse_connect(&last).map(|e| e.to_string());
                assert_eq!(shown.as_ref(), Ok(&last), "{s:?}: last_endpoint");
                // test_unbind_wildcard: only the resolved endpoint unbinds.
                let gone = |r| matches!(r, Err(Error::EndpointNotFound(_)));
                assert!(gone(sock.unbind(s)), "unbind({s:?})");
                let (first, again) = (sock.unbind(&last), sock.unbind(&last));
                assert!(first.is_ok() && gone(again), "unbind({last:?}) for {s:?}");
            }
            (Err(Error::Io(e)), Want::NoDevice) => {
                assert_eq!(e.raw_os_error(), Some(19), "bind({s:?}): {e}")
            }
            (got, _) => panic!("bind({s:?}) ipv6={ipv6}: unexpected {got:?}"),
        }
    }
}

#[test]
fn socket_calls_report_endpoint_errors() {
    let ctx = Context::new();
    let sock = ctx.socket(SocketType::Push).unwrap();
    sock.set_linger(Some(Duration::ZERO));
    #[rustfmt::skip]
    let table: &[(&str, bool, E)] = &[ // (input, bind?, error)
        ("tcp://*:abc", true, E::BadPort("tcp://*:abc".into())),
        ("tcp://127.0.0.1:0;127.0.0.1:1", true, E::SourceOnBind("tcp://127.0.0.1:0;127.0.0.1:1".into())),
        ("tcp://*:1", false, E::WildcardOnConnect("tcp://*:1".into())),
        ("tcp://192.168.0.200:*", false, E::WildcardOnConnect("tcp://192.168.0.200:*".into())),
        ("invalid://localhost:1234", false, E::UnknownTransport("invalid".into())),
    ];
    for (s, bind, want) in table {
        let r = if *bind { sock.bind(s) } else { sock.connect(s) };
        match r {
            Err(Error::Endpoint(got)) => assert_eq!(&got, want, "{s:?}"),
            other => panic!("{s:?}: want {want:?}, got {other:?}"),
        }
    }
}

/// test_last_endpoint: an explicit endpoint is reported as given.
#[test]
fn explicit_port_is_reported_verbatim() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", free.local_addr().unwrap());
    drop(free);
    let ctx = Context::new();
    let sock = ctx.socket(SocketType::Pull).unwrap();
    sock.set_linger(Some(Duration::ZERO));
    sock.bind(&ep).unwrap();
    assert_eq!(sock.last_endpoint(), ep);
    sock.unbind(&ep).unwrap();
}

/// Connect resolves a host name, with and without a source (test_bind_src_address).
#[test]
fn connect_resolves_names() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(Some(WAIT));
    pull.set_linger(Some(Duration::ZERO));
    pull.bind("tcp://lo:*").unwrap();
    let port = pull.last_endpoint().rsplit(':').next().unwrap().to_string();
    for src in ["", "127.0.0.1:0;", "lo:*;", "*:*;"] {
        let ep = format!("tcp://{src}localhost:{port}");
        let push = ctx.socket(SocketType::Push).unwrap();
        push.set_sndtimeo(Some(WAIT));
        push.set_linger(Some(Duration::ZERO));
        push.connect(&ep).expect(&ep);
        push.send(ep.clone()).expect(&ep);
        assert_eq!(pull.recv().expect(&ep), Message::from(ep.clone()), "{ep:?}");
    }
}

/// Forms libzmq accepts that an earlier version of our parser refused.
/// (bind too?, input, host, port)
#[test]
fn lenient_forms_libzmq_accepts() {
    #[rustfmt::skip]
    let table: &[(bool, &str, &str, u16)] = &[
        (true, "tcp://[192.168.1.1]:5555", "192.168.1.1", 5555), // parse_ipv4_port_brackets
        (true, "tcp://[1.2.128.129]:1", "1.2.128.129", 1),       // parse_ipv4_brackets
        (false, "tcp://[ip.zeromq.org]:22", "ip.zeromq.org", 22), // dns_brackets(_port)
        (false, "tcp://[ip.zeromq.org%lo0]:4444", "ip.zeromq.org%lo0", 4444), // dns_ipv6_scope_port_brackets
        (true, "tcp://127.0.0.1:05555", "127.0.0.1", 5555), // atoi: a decimal port with a leading zero
    ];
    let mut wrong = vec![];
    for &(bind, s, host, port) in table {
        let want = Ok(tcp(host, port, None));
        if parse(s, false) != want || (bind && parse(s, true) != want) {
            wrong.push(s);
        }
    }
    assert!(wrong.is_empty(), "libzmq accepts, we refuse: {wrong:?}");
    // Only "0" itself is port 0 (libzmq: atoi gives 0 for "00", refused).
    assert!(parse("tcp://127.0.0.1:00", true).is_err());
}

/// Forms libzmq refuses that an earlier version of our parser accepted.
#[test]
fn strict_forms_libzmq_refuses() {
    // zmq_connect's syntax check (socket_base.cpp): the address must start
    // with a letter, a digit, '[' or ':', else EINVAL at once.
    let starts = "tcp://-foo:1 tcp://.foo:1 tcp://_foo:1 tcp://%eth0:1".split(' ');
    let mut wrong: Vec<&str> = starts.filter(|s| parse(s, false).is_ok()).collect();
    // parse_ipv6_scope_zero: zone id 0 is EINVAL at bind.
    if ipv6_loopback() {
        let ctx = Context::new();
        let sock = ctx.socket(SocketType::Pull).unwrap();
        sock.set_linger(Some(Duration::ZERO));
        if sock.bind("tcp://[::1%0]:*").is_ok() {
            wrong.push("tcp://[::1%0]:* (bind)");
        }
    } else {
        println!("skipping bind(\"tcp://[::1%0]:*\"): no IPv6 loopback on this machine");
    }
    assert!(wrong.is_empty(), "libzmq refuses, we accept: {wrong:?}");
}
