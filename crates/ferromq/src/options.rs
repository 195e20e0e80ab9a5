//! Socket options and their libzmq defaults.

use std::time::Duration;

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
        }
    }
}

impl SocketOptions {
    pub(crate) fn has_out_room(&self, queued: usize) -> bool {
        self.sndhwm == 0 || queued < self.sndhwm
    }

    pub(crate) fn in_full(&self, queued: usize) -> bool {
        self.rcvhwm != 0 && queued >= self.rcvhwm
    }

    /// Low-water mark at which a paused reader resumes (libzmq: `(hwm + 1) / 2`).
    pub(crate) fn in_resume(&self, queued: usize) -> bool {
        self.rcvhwm == 0 || queued < self.rcvhwm.div_ceil(2).max(1)
    }
}
