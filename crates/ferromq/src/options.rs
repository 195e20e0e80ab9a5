//! Socket options and their libzmq defaults.

use std::time::Duration;

use bytes::Bytes;

/// The options of one socket. Changes apply to connections made afterwards,
/// except timeouts, HWMs on queues created afterwards, and linger at close.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Per-peer outgoing queue limit in messages; 0 = unlimited.
    pub sndhwm: usize,
    /// Per-peer incoming queue limit in messages; 0 = unlimited.
    pub rcvhwm: usize,
    pub sndtimeo: Option<Duration>,
    pub rcvtimeo: Option<Duration>,
    /// `None` = wait forever.
    pub linger: Option<Duration>,
    pub routing_id: Bytes,
    pub router_mandatory: bool,
    pub router_handover: bool,
    pub max_msg_size: Option<u64>,
    /// `None` = do not reconnect.
    pub reconnect_ivl: Option<Duration>,
    /// Zero = no exponential backoff.
    pub reconnect_ivl_max: Duration,
    pub handshake_ivl: Option<Duration>,
    pub heartbeat_ivl: Option<Duration>,
    pub heartbeat_timeout: Option<Duration>,
    pub heartbeat_ttl: Option<Duration>,
    pub immediate: bool,
    pub ipv6: bool,
}

/// Linger used by the Rust API when the application sets none: long enough
/// to flush ordinary traffic at close, short enough that a vanished peer
/// cannot hang a program forever (libzmq waits forever; the C ABI keeps that).
pub const DEFAULT_LINGER: Duration = Duration::from_secs(30);

impl Default for Options {
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
        }
    }
}

impl Options {
    pub fn has_out_room(&self, queued: usize) -> bool {
        self.sndhwm == 0 || queued < self.sndhwm
    }

    pub fn in_full(&self, queued: usize) -> bool {
        self.rcvhwm != 0 && queued >= self.rcvhwm
    }

    /// Low-water mark at which a paused reader resumes (libzmq: `(hwm + 1) / 2`).
    pub fn in_resume(&self, queued: usize) -> bool {
        self.rcvhwm == 0 || queued < self.rcvhwm.div_ceil(2).max(1)
    }
}
