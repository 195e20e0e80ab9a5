//! Socket options and their libzmq defaults.

use std::time::Duration;

/// Most bytes of messages a tcp or ipc connection decodes ahead of the
/// application, as well as RCVHWM messages (with an RCVHWM; none
/// without): the rest waits in the kernel, and the sender meets its
/// backpressure. Counted on the peer's inbox, which a receive empties
/// into the socket's receive cache in one go, so up to twice this is
/// decoded and not yet received. A single larger message still goes in.
/// A 1 MiB stream's receiver read ~15 MiB ahead of the application
/// (1000 messages would be 1 GiB); libzmq's reader, which runs no faster
/// than its application, held ~12 MiB in all.
pub(crate) const READ_AHEAD: usize = 1 << 20;

use bytes::Bytes;

/// The options of one socket, as [`Socket::options`](crate::Socket::options)
/// reports them and [`Socket::update_options`](crate::Socket::update_options)
/// changes them. Each field has a validated setter on the socket too.
///
/// Connection settings (routing id, timeouts of the handshake, heartbeats,
/// message size limit) apply to connections made afterwards; HWMs, send and
/// receive timeouts apply at once; linger applies at close.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Per-peer outgoing queue limit in messages; 0 = unlimited.
    pub sndhwm: usize,
    /// Per-peer incoming queue limit in messages; 0 = unlimited.
    pub rcvhwm: usize,
    /// How long a send may wait; `None` = forever.
    pub sndtimeo: Option<Duration>,
    /// How long a receive may wait; `None` = forever.
    pub rcvtimeo: Option<Duration>,
    /// How long to flush at close; `None` = forever.
    pub linger: Option<Duration>,
    /// Routing id announced to peers (empty: none).
    pub routing_id: Bytes,
    /// ROUTER: fail instead of dropping unroutable messages.
    pub router_mandatory: bool,
    /// ROUTER: a newcomer with a routing id in use takes it over.
    pub router_handover: bool,
    /// Largest frame accepted from a peer; `None` = no limit.
    pub max_msg_size: Option<u64>,
    /// Wait before reconnecting; `None` = do not reconnect.
    pub reconnect_ivl: Option<Duration>,
    /// Upper bound of exponential reconnect backoff; zero = no backoff.
    pub reconnect_ivl_max: Duration,
    /// Handshake time limit; `None` = none.
    pub handshake_ivl: Option<Duration>,
    /// Heartbeat PING interval; `None` = no heartbeats.
    pub heartbeat_ivl: Option<Duration>,
    /// Close if nothing arrives this long after a PING; `None` = the interval.
    pub heartbeat_timeout: Option<Duration>,
    /// TTL asked of peers in our PINGs.
    pub heartbeat_ttl: Option<Duration>,
    /// Queue only to peers whose connection is up.
    pub immediate: bool,
    /// Allow IPv6 (dual-stack wildcard bind).
    pub ipv6: bool,
    /// XPUB: pass every subscription up, not only new ones.
    pub xpub_verbose: bool,
    /// XPUB: pass every unsubscription up, not only the last one.
    pub xpub_verboser: bool,
    /// XPUB/PUB: a full subscriber makes send fail with would-block instead of dropping.
    pub xpub_nodrop: bool,
    /// XPUB/PUB: a message sent to each new subscriber.
    pub xpub_welcome_msg: Option<Bytes>,
    /// PUB/XPUB/SUB: deliver what does *not* match the subscriptions.
    pub invert_matching: bool,
    /// XPUB: subscriptions are not applied by the socket; each one is passed
    /// up and the application applies it by calling `subscribe`/`unsubscribe`
    /// on the XPUB (for the subscriber of the message it last received).
    pub xpub_manual: bool,
    /// ROUTER/DEALER/REQ: send an empty message to each peer when its
    /// connection comes up, so a ROUTER there learns our routing id at once
    /// (libzmq's `ZMQ_PROBE_ROUTER`).
    pub probe_router: bool,
    /// REQ: prefix each request with a request id and accept only the reply
    /// that carries it back (libzmq's `ZMQ_REQ_CORRELATE`).
    pub req_correlate: bool,
    /// REQ: allow a new request before the reply to the last one came; the
    /// old reply is then discarded (libzmq's `ZMQ_REQ_RELAXED`).
    pub req_relaxed: bool,
    /// XPUB/XSUB: only the first frame of a multipart message may be a
    /// subscription; when it is not, the whole message is data.
    pub only_first_subscribe: bool,
    /// Kernel send buffer size for tcp/ipc connections (`None`: OS default).
    pub sndbuf: Option<usize>,
    /// Kernel receive buffer size for tcp/ipc connections (`None`: OS default).
    pub rcvbuf: Option<usize>,
    /// Listen backlog for tcp/ipc binds (default 100, as libzmq).
    pub backlog: u32,
    /// IP type-of-service byte for tcp connections (0: leave as is).
    pub tos: u32,
    /// TCP keepalive: `None` OS default, `Some(false)` off, `Some(true)` on.
    pub tcp_keepalive: Option<bool>,
    /// Keepalive probes before giving up (`None`: OS default).
    pub tcp_keepalive_cnt: Option<u32>,
    /// Idle time before the first keepalive probe (`None`: OS default).
    pub tcp_keepalive_idle: Option<Duration>,
    /// Time between keepalive probes (`None`: OS default).
    pub tcp_keepalive_intvl: Option<Duration>,
    /// TCP_USER_TIMEOUT: how long unacknowledged data may wait (`None`: OS default).
    pub tcp_maxrt: Option<Duration>,
    /// Give up a tcp connect attempt after this long (`None`: the OS's timeout).
    pub connect_timeout: Option<Duration>,
    /// Bind tcp sockets (listening and connecting) to this network device
    /// (`SO_BINDTODEVICE`; needs `CAP_NET_RAW`). `None`: any device.
    pub bindtodevice: Option<String>,
    /// Keep only the newest message in each queue (PUB, SUB, PUSH, PULL,
    /// DEALER): a reader gets the latest state, never a backlog.
    pub conflate: bool,
}

pub(crate) type Options = SocketOptions;

/// Linger used by the Rust API when the application sets none: long enough
/// to flush ordinary traffic at close, short enough that a vanished peer
/// cannot hang a program forever (libzmq waits forever; the C ABI keeps that).
pub const DEFAULT_LINGER: Duration = Duration::from_secs(30);

impl Default for SocketOptions {
    fn default() -> Self {
        Options {
            sndhwm: 1000,
            rcvhwm: 1000,
            sndtimeo: None,
            rcvtimeo: None,
            linger: Some(DEFAULT_LINGER),
            routing_id: Bytes::new(),
            router_mandatory: false,
            router_handover: false,
            max_msg_size: None,
            reconnect_ivl: Some(Duration::from_millis(100)),
            reconnect_ivl_max: Duration::ZERO,
            handshake_ivl: Some(Duration::from_secs(30)),
            heartbeat_ivl: None,
            heartbeat_timeout: None,
            heartbeat_ttl: None,
            immediate: false,
            ipv6: false,
            xpub_verbose: false,
            xpub_verboser: false,
            xpub_nodrop: false,
            xpub_welcome_msg: None,
            invert_matching: false,
            xpub_manual: false,
            probe_router: false,
            req_correlate: false,
            req_relaxed: false,
            only_first_subscribe: false,
            sndbuf: None,
            rcvbuf: None,
            backlog: 100,
            tos: 0,
            tcp_keepalive: None,
            tcp_keepalive_cnt: None,
            tcp_keepalive_idle: None,
            tcp_keepalive_intvl: None,
            tcp_maxrt: None,
            connect_timeout: None,
            bindtodevice: None,
            conflate: false,
        }
    }
}

/// Unsent bytes a tcp connection leaves to the kernel (TCP_NOTSENT_LOWAT),
/// per message of SNDHWM (see `apply_to_stream`).
const NOTSENT_PER_HWM: usize = 64 * 1024;
/// Linux's default ceiling of a tcp send buffer (`tcp_wmem`'s third field):
/// a cap on unsent bytes at or above it changes nothing.
const SNDBUF_MAX: usize = 4 << 20;

impl SocketOptions {
    /// Applies the stream-level options to a new connection.
    pub(crate) fn apply_to_stream(&self, s: socket2::SockRef<'_>, tcp: bool) {
        // Failures are ignored as libzmq does: a value the kernel refuses
        // leaves the default in place.
        if let Some(n) = self.sndbuf {
            let _ = s.set_send_buffer_size(n);
        }
        if let Some(n) = self.rcvbuf {
            let _ = s.set_recv_buffer_size(n);
        }
        if !tcp {
            return;
        }
        // Keep unsent data in the kernel in proportion to the send HWM:
        // 64 KiB per message of it. Loopback and fast links send at once,
        // so only a peer that stops reading makes data wait; without a cap
        // the kernel's autotuned send buffer (up to 4 MiB) holds it, and
        // with a small HWM a sender would see EAGAIN (ZMQ_ROUTER_MANDATORY,
        // DONTWAIT) only after megabytes past it (libzmq's
        // test_router_mandatory_hwm: SNDHWM 1, 64 KiB messages, ~20 taken
        // without a cap, 3-9 with 64 KiB). With a large HWM (the default
        // 1000) the queue is megabytes anyway, and the cap cost a sender
        // whose receiver is slower a wake-up per 64 KiB the kernel sent:
        // 1 MiB zero-copy tcp, 6 alternating runs each, ~4.0 k msgs/s
        // with it against ~5.0 k without.
        let cap = self.sndhwm.saturating_mul(NOTSENT_PER_HWM);
        if self.sndhwm != 0 && cap < SNDBUF_MAX {
            let _ = s.set_tcp_notsent_lowat(cap as u32);
        }
        if self.tos != 0 {
            let _ = s.set_tos_v4(self.tos);
        }
        if let Some(on) = self.tcp_keepalive {
            let _ = s.set_keepalive(on);
            if on {
                let mut ka = socket2::TcpKeepalive::new();
                if let Some(t) = self.tcp_keepalive_idle {
                    ka = ka.with_time(t);
                }
                if let Some(t) = self.tcp_keepalive_intvl {
                    ka = ka.with_interval(t);
                }
                if let Some(n) = self.tcp_keepalive_cnt {
                    ka = ka.with_retries(n);
                }
                let _ = s.set_tcp_keepalive(&ka);
            }
        }
        if let Some(t) = self.tcp_maxrt {
            let _ = s.set_tcp_user_timeout(Some(t));
        }
    }

    pub(crate) fn has_out_room(&self, queued: usize) -> bool {
        // A conflating queue always takes the newest message (it replaces).
        self.conflate || self.sndhwm == 0 || queued < self.sndhwm
    }

    /// Whether a reader stops with `queued` messages of `bytes` bytes in
    /// the inbox: at RCVHWM messages, or at [`READ_AHEAD`] bytes (pass 0
    /// bytes where the byte limit does not apply).
    pub(crate) fn in_full(&self, queued: usize, bytes: usize) -> bool {
        !self.conflate && self.rcvhwm != 0 && (queued >= self.rcvhwm || bytes >= READ_AHEAD)
    }

    /// Low-water mark at which a paused reader resumes (libzmq: `(hwm + 1) / 2`),
    /// and half of [`READ_AHEAD`].
    pub(crate) fn in_resume(&self, queued: usize, bytes: usize) -> bool {
        self.rcvhwm == 0 || (queued < self.rcvhwm.div_ceil(2).max(1) && bytes < READ_AHEAD / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::SocketOptions;

    /// The kernel's cap on a connection's unsent bytes after the socket's
    /// options are applied with `sndhwm`.
    fn notsent_cap(sndhwm: usize) -> u32 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let opts = SocketOptions {
            sndhwm,
            ..SocketOptions::default()
        };
        opts.apply_to_stream(socket2::SockRef::from(&s), true);
        s.tcp_notsent_lowat().unwrap()
    }

    #[test]
    fn unsent_bytes_in_the_kernel_are_capped_in_proportion_to_a_small_sndhwm() {
        let untouched = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .unwrap()
            .tcp_notsent_lowat()
            .unwrap();
        assert_eq!(notsent_cap(1), 64 << 10);
        assert_eq!(notsent_cap(10), 640 << 10);
        // The default HWM, and no HWM at all, leave the kernel's own limit.
        assert_eq!(notsent_cap(1000), untouched);
        assert_eq!(notsent_cap(0), untouched);
    }
}
