//! `zmq_setsockopt` / `zmq_getsockopt` by libzmq's numeric ids and encodings.
//!
//! Options ferromq does not implement yet fail with EINVAL (never a crash
//! and never a silent no-op), so a program learns at once what is missing.

use std::ffi::c_void;
use std::time::Duration;

use bytes::Bytes;
use ferromq::SocketType;

use crate::errno::{self, fail};
use crate::guard;
use crate::socket::Sock;

const ROUTING_ID: i32 = 5;
const SUBSCRIBE: i32 = 6;
const UNSUBSCRIBE: i32 = 7;
const RCVMORE: i32 = 13;
const FD: i32 = 14;
const EVENTS: i32 = 15;
const TYPE: i32 = 16;
const LINGER: i32 = 17;
const RECONNECT_IVL: i32 = 18;
const RECONNECT_IVL_MAX: i32 = 21;
const MAXMSGSIZE: i32 = 22;
const SNDHWM: i32 = 23;
const RCVHWM: i32 = 24;
const RCVTIMEO: i32 = 27;
const SNDTIMEO: i32 = 28;
const LAST_ENDPOINT: i32 = 32;
const ROUTER_MANDATORY: i32 = 33;
const IMMEDIATE: i32 = 39;
const IPV6: i32 = 42;
const MECHANISM: i32 = 43;
const ROUTER_HANDOVER: i32 = 56;
const HANDSHAKE_IVL: i32 = 66;
const HEARTBEAT_IVL: i32 = 75;
const HEARTBEAT_TTL: i32 = 76;
const HEARTBEAT_TIMEOUT: i32 = 77;
const THREAD_SAFE: i32 = 81;
const SNDBUF: i32 = 11;
const RCVBUF: i32 = 12;
const BACKLOG: i32 = 19;
const IPV4ONLY: i32 = 31;
const TCP_KEEPALIVE: i32 = 34;
const TCP_KEEPALIVE_CNT: i32 = 35;
const TCP_KEEPALIVE_IDLE: i32 = 36;
const TCP_KEEPALIVE_INTVL: i32 = 37;
const TOS: i32 = 57;
const CONNECT_TIMEOUT: i32 = 79;
const TCP_MAXRT: i32 = 80;
const CONFLATE: i32 = 54;
const XPUB_VERBOSE: i32 = 40;
const XPUB_NODROP: i32 = 69;
const XPUB_WELCOME_MSG: i32 = 72;
const INVERT_MATCHING: i32 = 74;
const XPUB_VERBOSER: i32 = 78;
const XPUB_MANUAL: i32 = 71;
const BINDTODEVICE: i32 = 92;
const REQ_CORRELATE: i32 = 52;
const PROBE_ROUTER: i32 = 51;
const REQ_RELAXED: i32 = 53;
/// A draft option of libzmq 4.3.5 (not in the stable header).
const ONLY_FIRST_SUBSCRIBE: i32 = 108;

/// Options stored but without effect in ferromq, with libzmq's defaults and
/// the values a caller may set: multicast transports (pgm, norm) do not
/// exist here, I/O-thread affinity has no meaning, the loopback fast path is
/// Windows-only. PLAIN_SERVER accepts only its "off" value, so a program
/// asking for authentication fails loudly instead of silently running
/// without it. USE_FD is kept here and read by `zmq_bind`.
const INERT: &[(i32, i64, Accept)] = &[
    (4, 0, Accept::U64),      // AFFINITY
    (8, 100, Accept::Int),    // RATE
    (9, 10_000, Accept::Int), // RECOVERY_IVL
    (25, 1, Accept::Int),     // MULTICAST_HOPS
    (44, 0, Accept::Only(0)), // PLAIN_SERVER
    (84, 1500, Accept::Int),  // MULTICAST_MAXTPDU
    (USE_FD, -1, Accept::AtLeast(-1)),
    (93, 0, Accept::Int), // ZAP_ENFORCE_DOMAIN
    (94, 0, Accept::Int), // LOOPBACK_FASTPATH
    (96, 1, Accept::Int), // MULTICAST_LOOP
];

#[derive(Clone, Copy)]
enum Accept {
    Int,
    U64,
    Only(i64),
    AtLeast(i64),
}

/// ZMQ_USE_FD: a listening socket of the application's for the next binds.
pub const USE_FD: i32 = 89;

/// Milliseconds as libzmq encodes durations: -1 (or `none`) for "none/forever".
fn ms_to_opt(v: i32, none: i32) -> Option<Duration> {
    if v == none {
        None
    } else {
        Some(Duration::from_millis(v as u64))
    }
}

fn opt_to_ms(d: Option<Duration>, none: i32) -> i32 {
    d.map_or(none, |d| d.as_millis().min(i32::MAX as u128) as i32)
}

fn read_int(val: *const c_void, len: usize) -> Option<i32> {
    if val.is_null() || len != 4 {
        return None;
    }
    // SAFETY: the caller passes `len` (= 4) readable bytes; unaligned is fine.
    Some(unsafe { std::ptr::read_unaligned(val as *const i32) })
}

fn read_i64(val: *const c_void, len: usize) -> Option<i64> {
    if val.is_null() || len != 8 {
        return None;
    }
    // SAFETY: as read_int, 8 bytes.
    Some(unsafe { std::ptr::read_unaligned(val as *const i64) })
}

#[no_mangle]
pub extern "C" fn zmq_setsockopt(
    s: *mut c_void,
    option: i32,
    val: *const c_void,
    len: usize,
) -> i32 {
    guard(-1, || {
        let Some(sock) = Sock::get(s) else { return -1 };
        let int = read_int(val, len);
        let sk = &sock.sock;
        let binary = || -> Option<Bytes> {
            if len == 0 {
                return Some(Bytes::new());
            }
            if val.is_null() {
                return None;
            }
            // SAFETY: `len` readable bytes.
            Some(Bytes::copy_from_slice(unsafe {
                std::slice::from_raw_parts(val as *const u8, len)
            }))
        };
        if let Some(&(id, _, accept)) = INERT.iter().find(|(id, _, _)| *id == option) {
            let v = match accept {
                Accept::U64 => read_i64(val, len),
                Accept::Int => int.map(i64::from),
                Accept::Only(only) => int.map(i64::from).filter(|&v| v == only),
                Accept::AtLeast(min) => int.map(i64::from).filter(|&v| v >= min),
            };
            return match v {
                Some(v) => {
                    sock.inert.lock().insert(id, v);
                    0
                }
                None => fail(libc::EINVAL, -1),
            };
        }
        let publisher = matches!(sock.kind, SocketType::Pub | SocketType::XPub);
        let ok = match (option, int) {
            (SUBSCRIBE | UNSUBSCRIBE, _)
                if sock.kind == SocketType::Sub
                    || (sock.kind == SocketType::XPub && sk.options().xpub_manual) =>
            {
                // libzmq's manual XPUB ignores a subscription with no
                // subscriber to apply it to.
                match binary() {
                    Some(topic) if option == SUBSCRIBE => {
                        sk.subscribe(topic).is_ok() || sock.kind == SocketType::XPub
                    }
                    Some(topic) => sk.unsubscribe(topic).is_ok() || sock.kind == SocketType::XPub,
                    None => false,
                }
            }
            (XPUB_WELCOME_MSG, _) if sock.kind == SocketType::XPub => match binary() {
                Some(w) => {
                    sk.set_xpub_welcome_msg((!w.is_empty()).then_some(w));
                    true
                }
                None => false,
            },
            (ROUTING_ID, _) => {
                if val.is_null() || len == 0 || len > 255 {
                    return fail(libc::EINVAL, -1);
                }
                // SAFETY: `len` readable bytes.
                let id = Bytes::copy_from_slice(unsafe {
                    std::slice::from_raw_parts(val as *const u8, len)
                });
                sk.set_routing_id(id).is_ok()
            }
            // A device name (IFNAMSIZ: 15 bytes and the NUL); empty clears it.
            (BINDTODEVICE, _) => match binary() {
                Some(name) => {
                    let name = name.strip_suffix(b"\0").unwrap_or(&name);
                    match std::str::from_utf8(name) {
                        Ok(n) if n.len() < 16 && !n.contains('\0') => {
                            let n = (!n.is_empty()).then(|| n.to_owned());
                            sk.update_options(|o| o.bindtodevice = n);
                            true
                        }
                        _ => false,
                    }
                }
                None => false,
            },
            (MAXMSGSIZE, _) => match read_i64(val, len) {
                Some(v) if v >= -1 => {
                    sk.set_max_msg_size(u64::try_from(v).ok());
                    true
                }
                _ => false,
            },
            (_, None) => false,
            (LINGER, Some(v)) if v >= -1 => {
                sk.set_linger(ms_to_opt(v, -1));
                true
            }
            (RECONNECT_IVL, Some(v)) if v >= -1 => {
                sk.set_reconnect_ivl(ms_to_opt(v, -1));
                true
            }
            (RECONNECT_IVL_MAX, Some(v)) if v >= 0 => {
                sk.set_reconnect_ivl_max(Duration::from_millis(v as u64));
                true
            }
            (SNDHWM, Some(v)) if v >= 0 => {
                sk.set_sndhwm(v as usize);
                true
            }
            (RCVHWM, Some(v)) if v >= 0 => {
                sk.set_rcvhwm(v as usize);
                true
            }
            (RCVTIMEO, Some(v)) if v >= -1 => {
                sk.set_rcvtimeo(ms_to_opt(v, -1));
                true
            }
            (SNDTIMEO, Some(v)) if v >= -1 => {
                sk.set_sndtimeo(ms_to_opt(v, -1));
                true
            }
            (ROUTER_MANDATORY, Some(v)) if sock.kind == SocketType::Router => {
                sk.set_router_mandatory(v != 0);
                true
            }
            (ROUTER_HANDOVER, Some(v)) if sock.kind == SocketType::Router => {
                sk.set_router_handover(v != 0);
                true
            }
            (IMMEDIATE, Some(v)) => {
                sk.set_immediate(v != 0);
                true
            }
            (IPV6, Some(v)) => {
                sk.set_ipv6(v != 0);
                true
            }
            (HANDSHAKE_IVL, Some(v)) if v >= 0 => {
                sk.set_handshake_ivl(ms_to_opt(v, 0));
                true
            }
            (HEARTBEAT_IVL, Some(v)) if v >= 0 => {
                sk.set_heartbeat_ivl(ms_to_opt(v, 0));
                true
            }
            // The TTL travels in deciseconds in a u16.
            (HEARTBEAT_TTL, Some(v)) if (0..=6_553_599).contains(&v) => {
                // Kept in whole deciseconds, as libzmq does.
                sk.set_heartbeat_ttl(ms_to_opt(v - v % 100, 0));
                true
            }
            (XPUB_VERBOSE, Some(v)) if sock.kind == SocketType::XPub => {
                sk.set_xpub_verbose(v != 0);
                true
            }
            (PROBE_ROUTER, Some(v))
                if matches!(
                    sock.kind,
                    SocketType::Router | SocketType::Dealer | SocketType::Req
                ) =>
            {
                sk.set_probe_router(v != 0);
                true
            }
            (REQ_CORRELATE, Some(v)) if sock.kind == SocketType::Req => {
                sk.set_req_correlate(v != 0);
                true
            }
            (REQ_RELAXED, Some(v)) if sock.kind == SocketType::Req => {
                sk.set_req_relaxed(v != 0);
                true
            }
            (XPUB_MANUAL, Some(v)) if sock.kind == SocketType::XPub => {
                sk.set_xpub_manual(v != 0);
                true
            }
            (ONLY_FIRST_SUBSCRIBE, Some(v))
                if matches!(sock.kind, SocketType::XPub | SocketType::XSub) =>
            {
                sk.set_only_first_subscribe(v != 0);
                true
            }
            (XPUB_VERBOSER, Some(v)) if sock.kind == SocketType::XPub => {
                sk.set_xpub_verboser(v != 0);
                true
            }
            (XPUB_NODROP, Some(v)) if publisher => {
                sk.set_xpub_nodrop(v != 0);
                true
            }
            (INVERT_MATCHING, Some(v)) if publisher || sock.kind == SocketType::Sub => {
                sk.set_invert_matching(v != 0);
                true
            }
            (SNDBUF | RCVBUF, Some(v)) if v >= -1 => {
                // -1 and 0 both mean the OS default.
                let n = usize::try_from(v).ok().filter(|&n| n > 0);
                sk.update_options(|o| {
                    if option == SNDBUF {
                        o.sndbuf = n
                    } else {
                        o.rcvbuf = n
                    }
                });
                true
            }
            (BACKLOG, Some(v)) if v >= 0 => {
                sk.update_options(|o| o.backlog = v as u32);
                true
            }
            (IPV4ONLY, Some(v)) if v == 0 || v == 1 => {
                sk.set_ipv6(v == 0);
                true
            }
            (TOS, Some(v)) if v >= 0 => {
                sk.update_options(|o| o.tos = v as u32);
                true
            }
            (TCP_KEEPALIVE, Some(v)) if (-1..=1).contains(&v) => {
                sk.update_options(|o| o.tcp_keepalive = (v >= 0).then_some(v == 1));
                true
            }
            (TCP_KEEPALIVE_CNT, Some(v)) if v >= -1 => {
                sk.update_options(|o| {
                    o.tcp_keepalive_cnt = u32::try_from(v).ok().filter(|&n| n > 0)
                });
                true
            }
            // Keepalive idle and interval are in seconds.
            (TCP_KEEPALIVE_IDLE | TCP_KEEPALIVE_INTVL, Some(v)) if v >= -1 => {
                let d = u64::try_from(v)
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Duration::from_secs);
                sk.update_options(|o| {
                    if option == TCP_KEEPALIVE_IDLE {
                        o.tcp_keepalive_idle = d
                    } else {
                        o.tcp_keepalive_intvl = d
                    }
                });
                true
            }
            (TCP_MAXRT, Some(v)) if v >= 0 => {
                sk.update_options(|o| o.tcp_maxrt = ms_to_opt(v, 0));
                true
            }
            (CONFLATE, Some(v))
                if matches!(
                    sock.kind,
                    SocketType::Pub
                        | SocketType::Sub
                        | SocketType::Push
                        | SocketType::Pull
                        | SocketType::Dealer
                ) =>
            {
                sk.set_conflate(v != 0);
                true
            }
            (CONNECT_TIMEOUT, Some(v)) if v >= 0 => {
                sk.update_options(|o| o.connect_timeout = ms_to_opt(v, 0));
                true
            }
            (HEARTBEAT_TIMEOUT, Some(v)) if v >= -1 => {
                sk.set_heartbeat_timeout(ms_to_opt(v, -1));
                true
            }
            _ => false,
        };
        if ok {
            0
        } else {
            fail(libc::EINVAL, -1)
        }
    })
}

/// Where a getsockopt result goes, with libzmq's size rules.
struct Out {
    val: *mut c_void,
    len: *mut usize,
}

impl Out {
    fn int(&self, v: i32) -> i32 {
        self.bytes_exact(&v.to_ne_bytes())
    }

    fn i64(&self, v: i64) -> i32 {
        self.bytes_exact(&v.to_ne_bytes())
    }

    /// Fixed-size values: the buffer must hold them.
    /// libzmq zeroes the rest of a larger buffer.
    fn bytes_exact(&self, b: &[u8]) -> i32 {
        // SAFETY: `len` is non-null (checked by the caller) and readable.
        let cap = unsafe { *self.len };
        if cap < b.len() {
            return fail(libc::EINVAL, -1);
        }
        // SAFETY: `val` has `cap` writable bytes; we zero those past the value.
        unsafe { std::ptr::write_bytes((self.val as *mut u8).add(b.len()), 0, cap - b.len()) };
        self.bytes(b)
    }

    /// Variable-size values: copied whole, or EINVAL if they do not fit.
    fn bytes(&self, b: &[u8]) -> i32 {
        // SAFETY: `len` points to the size of `val`'s buffer; we write at most that.
        unsafe {
            if *self.len < b.len() {
                return fail(libc::EINVAL, -1);
            }
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.val as *mut u8, b.len());
            *self.len = b.len();
        }
        0
    }

    /// Strings go out NUL-terminated.
    fn string(&self, s: &str) -> i32 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.bytes(&b)
    }
}

#[no_mangle]
pub extern "C" fn zmq_getsockopt(
    s: *mut c_void,
    option: i32,
    val: *mut c_void,
    len: *mut usize,
) -> i32 {
    guard(-1, || {
        let Some(sock) = Sock::get(s) else { return -1 };
        if val.is_null() || len.is_null() {
            return fail(libc::EFAULT, -1);
        }
        let out = Out { val, len };
        let o = sock.sock.options();
        match option {
            TYPE => out.int(i32::from(sock.kind.id())),
            RCVMORE => out.int(i32::from(sock.rcvmore())),
            EVENTS => out.int(sock.events()),
            FD => match sock.sock.readiness_fd() {
                Ok(fd) => out.int(std::os::fd::AsRawFd::as_raw_fd(&fd)),
                Err(e) => fail(errno::code(&e), -1),
            },
            ROUTING_ID => out.bytes(&o.routing_id),
            LINGER => out.int(opt_to_ms(o.linger, -1)),
            RECONNECT_IVL => out.int(opt_to_ms(o.reconnect_ivl, -1)),
            RECONNECT_IVL_MAX => out.int(opt_to_ms(Some(o.reconnect_ivl_max), 0)),
            MAXMSGSIZE => out.i64(o.max_msg_size.map_or(-1, |m| m.min(i64::MAX as u64) as i64)),
            SNDHWM => out.int(o.sndhwm.min(i32::MAX as usize) as i32),
            RCVHWM => out.int(o.rcvhwm.min(i32::MAX as usize) as i32),
            RCVTIMEO => out.int(opt_to_ms(o.rcvtimeo, -1)),
            SNDTIMEO => out.int(opt_to_ms(o.sndtimeo, -1)),
            LAST_ENDPOINT => out.string(&sock.sock.last_endpoint()),
            BINDTODEVICE => out.string(o.bindtodevice.as_deref().unwrap_or("")),
            ROUTER_MANDATORY if sock.kind == SocketType::Router => {
                out.int(i32::from(o.router_mandatory))
            }
            ROUTER_HANDOVER if sock.kind == SocketType::Router => {
                out.int(i32::from(o.router_handover))
            }
            IMMEDIATE => out.int(i32::from(o.immediate)),
            IPV6 => out.int(i32::from(o.ipv6)),
            // Only the NULL mechanism exists so far.
            MECHANISM => out.int(0),
            HANDSHAKE_IVL => out.int(opt_to_ms(o.handshake_ivl, 0)),
            HEARTBEAT_IVL => out.int(opt_to_ms(o.heartbeat_ivl, 0)),
            HEARTBEAT_TTL => out.int(opt_to_ms(o.heartbeat_ttl, 0)),
            HEARTBEAT_TIMEOUT => out.int(opt_to_ms(o.heartbeat_timeout, -1)),
            THREAD_SAFE => out.int(0),
            SNDBUF => out.int(o.sndbuf.map_or(-1, |n| n.min(i32::MAX as usize) as i32)),
            RCVBUF => out.int(o.rcvbuf.map_or(-1, |n| n.min(i32::MAX as usize) as i32)),
            BACKLOG => out.int(o.backlog.min(i32::MAX as u32) as i32),
            IPV4ONLY => out.int(i32::from(!o.ipv6)),
            TOS => out.int(o.tos as i32),
            TCP_KEEPALIVE => out.int(o.tcp_keepalive.map_or(-1, i32::from)),
            TCP_KEEPALIVE_CNT => out.int(o.tcp_keepalive_cnt.map_or(-1, |n| n as i32)),
            TCP_KEEPALIVE_IDLE => out.int(o.tcp_keepalive_idle.map_or(-1, |d| d.as_secs() as i32)),
            TCP_KEEPALIVE_INTVL => {
                out.int(o.tcp_keepalive_intvl.map_or(-1, |d| d.as_secs() as i32))
            }
            TCP_MAXRT => out.int(opt_to_ms(o.tcp_maxrt, 0)),
            CONNECT_TIMEOUT => out.int(opt_to_ms(o.connect_timeout, 0)),
            CONFLATE => out.int(i32::from(o.conflate)),
            INVERT_MATCHING => out.int(i32::from(o.invert_matching)),
            XPUB_NODROP => out.int(i32::from(o.xpub_nodrop)),
            opt => match INERT.iter().find(|(id, _, _)| *id == opt) {
                Some(&(id, default, accept)) => {
                    let v = sock.inert.lock().get(&id).copied().unwrap_or(default);
                    match accept {
                        Accept::U64 => out.i64(v),
                        _ => out.int(v as i32),
                    }
                }
                None => fail(libc::EINVAL, -1),
            },
        }
    })
}
