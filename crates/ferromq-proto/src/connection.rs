//! The sans-IO ZMTP connection state machine.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::mechanism::null;
use crate::message::{Frame, Message};
use crate::socket_type::SocketType;
use crate::wire::frame::{encode_frame, encode_header};
use crate::wire::{
    Command, CommandError, FrameDecoder, FrameError, Greeting, GreetingError, MechanismName,
    Metadata,
};

/// Frames at least this large are queued by reference for a vectored write
/// instead of being copied into the batch buffer.
const ZERO_COPY_THRESHOLD: usize = 8 * 1024;

/// Settings for one connection, fixed when it starts.
#[derive(Clone, Debug)]
pub struct Config {
    /// Our socket type, announced in READY and checked against the peer's.
    pub socket_type: SocketType,
    /// Our routing id, announced as `Identity` by REQ, DEALER and ROUTER.
    pub identity: Bytes,
    /// Largest frame accepted from the peer; `None` for no limit.
    pub max_msg_size: Option<u64>,
    /// Close if the handshake has not finished in this time.
    pub handshake_timeout: Option<Duration>,
    /// Send a PING this often.
    pub heartbeat_ivl: Option<Duration>,
    /// Close if nothing arrives this long after a PING (defaults to the interval).
    pub heartbeat_timeout: Option<Duration>,
    /// TTL asked of the peer in our PINGs.
    pub heartbeat_ttl: Option<Duration>,
    /// Extra metadata properties (`X-…`) sent in READY.
    pub metadata: Metadata,
}

impl Config {
    /// Defaults for a socket type: no limits, libzmq's 30 s handshake timeout.
    pub fn new(socket_type: SocketType) -> Self {
        Config {
            socket_type,
            identity: Bytes::new(),
            max_msg_size: None,
            handshake_timeout: Some(Duration::from_secs(30)),
            heartbeat_ivl: None,
            heartbeat_timeout: None,
            heartbeat_ttl: None,
            metadata: Metadata::new(),
        }
    }
}

/// What we learnt about the peer in the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's socket type (`None` if it sent no `Socket-Type`, which libzmq tolerates).
    pub socket_type: Option<SocketType>,
    /// The peer's announced routing id (empty if none).
    pub identity: Bytes,
    /// Every property from the peer's READY.
    pub metadata: Metadata,
    /// The peer's ZMTP minor version: 0 for 3.0, 1 or more for 3.1.
    pub zmtp_minor: u8,
}

impl PeerInfo {
    pub(crate) fn from_ready(
        ours: SocketType,
        metadata: Metadata,
        zmtp_minor: u8,
    ) -> Result<PeerInfo, ConnectionError> {
        let socket_type = match metadata.get("Socket-Type") {
            None => None,
            Some(name) => match SocketType::from_wire(name) {
                Some(t) if ours.is_compatible(t) => Some(t),
                _ => {
                    return Err(ConnectionError::IncompatibleSocketType {
                        ours,
                        theirs: String::from_utf8_lossy(name).into_owned(),
                    })
                }
            },
        };
        let identity = metadata.get("Identity").cloned().unwrap_or_default();
        if identity.len() > 255 {
            return Err(ConnectionError::Protocol("Identity longer than 255 bytes"));
        }
        Ok(PeerInfo {
            socket_type,
            identity,
            metadata,
            zmtp_minor,
        })
    }
}

/// Something the connection tells its driver. Poll with [`Connection::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished; messages may flow both ways.
    Handshaken(PeerInfo),
    /// A whole multipart message arrived.
    Message(Message),
    /// A ZMTP 3.1 SUBSCRIBE command arrived.
    Subscribe(Bytes),
    /// A ZMTP 3.1 CANCEL command arrived.
    Cancel(Bytes),
}

/// Why a connection closed. Every variant except the timeouts is the peer's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// Bad or unsupported greeting.
    #[error(transparent)]
    Greeting(#[from] GreetingError),
    /// The peer uses another security mechanism.
    #[error("security mechanism mismatch: we use {ours}, peer uses {theirs}")]
    MechanismMismatch {
        /// Ours.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// A frame was refused (too large, bad flags).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A command frame was malformed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The peer's socket type cannot talk to ours.
    #[error("socket type {theirs} cannot connect to {ours}")]
    IncompatibleSocketType {
        /// Ours.
        ours: SocketType,
        /// The peer's `Socket-Type` value.
        theirs: String,
    },
    /// The peer sent an ERROR command.
    #[error("peer refused the handshake: {0}")]
    PeerError(String),
    /// A command that makes no sense now.
    #[error("unexpected command during handshake: {0}")]
    UnexpectedCommand(String),
    /// Any other protocol violation.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// The handshake took longer than the configured timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// Nothing arrived in time after a heartbeat.
    #[error("heartbeat timed out")]
    HeartbeatTimeout,
}

enum State {
    Greeting,
    Handshake(Handshake),
    Active,
    Closed,
}

/// The handshake states of each mechanism.
enum Handshake {
    Null(null::ExpectReady),
}

/// Bytes waiting to be written: a connection's output, or output taken out
/// of it to be written without holding it (see
/// [`Connection::take_transmit`]). Chunks (large frame bodies, never
/// copied, and encoded bytes sealed or put back ahead of them), then the
/// buffer small frames are encoded into.
#[derive(Debug, Default)]
pub struct Taken {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
}

impl Taken {
    /// Ends the small-frame buffer here: what it holds becomes a chunk.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// Nothing taken (or all of it written).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    /// Bytes left to write.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum::<usize>() + self.tail.len()
    }

    /// Fills `dst` with the bytes left, in order, and returns how many
    /// slices were filled: pass them to a vectored write.
    pub fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let parts = self.chunks.iter().map(|c| &c[..]);
        for part in parts.chain(std::iter::once(&self.tail[..])) {
            if n == dst.len() {
                break;
            }
            if !part.is_empty() {
                dst[n] = IoSlice::new(part);
                n += 1;
            }
        }
        n
    }

    /// Marks `n` bytes of what [`slices`](Self::slices) offered as written.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                let k = n.min(self.tail.len());
                self.tail.advance(k);
                return;
            };
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                return;
            }
        }
    }
}

/// One ZMTP 3.x connection, without I/O.
///
/// The driver owns the byte stream and a clock; the connection owns the
/// protocol. Methods fall in three groups, and a driver calls them in this
/// order each time it wakes:
///
/// * **input**, `handle_*`: [`handle_input`](Self::handle_input) with bytes
///   read from the stream, [`handle_timeout`](Self::handle_timeout) when the
///   deadline from [`poll_timeout`](Self::poll_timeout) passes, and
///   [`send_message`](Self::send_message) /
///   [`send_subscription`](Self::send_subscription) for the application's
///   traffic (only once [`is_active`](Self::is_active));
/// * **output**, `poll_*`: drain [`poll_event`](Self::poll_event) until
///   `None`, write what [`transmit_slices`](Self::transmit_slices) offers and
///   report it with [`advance_transmit`](Self::advance_transmit), then
///   re-arm the timer from [`poll_timeout`](Self::poll_timeout);
/// * **getters**: [`peer`](Self::peer), [`is_active`](Self::is_active).
///
/// Any `Err` from an input method is final: the driver should flush nothing
/// more and close the stream.
pub struct Connection {
    config: Config,
    state: State,
    decoder: FrameDecoder,
    events: VecDeque<Event>,
    partial: Message,
    out: Taken,
    peer: Option<PeerInfo>,
    zmtp_minor: u8,
    handshake_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    ping_deadline: Option<Instant>,
    ttl_deadline: Option<Instant>,
}

impl Connection {
    /// Starts a connection; our greeting is queued for transmission at once.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut out = Taken::default();
        Greeting::new(MechanismName::Null, false).encode(&mut out.tail);
        Connection {
            handshake_deadline: config.handshake_timeout.map(|t| now + t),
            decoder: FrameDecoder::new(config.max_msg_size),
            config,
            state: State::Greeting,
            events: VecDeque::new(),
            partial: Message::new(),
            out,
            peer: None,
            zmtp_minor: 1,
            next_ping: None,
            ping_deadline: None,
            ttl_deadline: None,
        }
    }

    /// Consumes whole greetings and frames from the front of `buf`, leaving a
    /// partial one for next time. Decoded payloads are slices of `buf`.
    pub fn handle_input(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        self.handle_input_bounded(buf, now, usize::MAX).map(|_| ())
    }

    /// As [`handle_input`](Self::handle_input), but stops once `max_messages`
    /// messages are decoded, leaving the rest of `buf` for a later call (so a
    /// receiver whose queue is nearly full decodes no more than it can
    /// queue). Returns how many messages were decoded.
    pub fn handle_input_bounded(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
        max_messages: usize,
    ) -> Result<usize, ConnectionError> {
        self.handle_input_into(buf, now, max_messages, None)
    }

    /// As [`handle_input_bounded`](Self::handle_input_bounded), but messages
    /// go straight to the end of `messages` (when given) instead of through
    /// [`poll_event`](Self::poll_event), saving two moves each. Order is
    /// kept: a message goes to `messages` only while no other event is
    /// pending, so every message in `messages` came before every pending
    /// event (drain `messages` first, then the events).
    pub fn handle_input_into(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
        max_messages: usize,
        messages: Option<&mut Vec<Message>>,
    ) -> Result<usize, ConnectionError> {
        let r = self.process_input(buf, now, max_messages, messages);
        if r.is_err() {
            self.state = State::Closed;
        }
        r
    }

    fn process_input(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
        max_messages: usize,
        messages: Option<&mut Vec<Message>>,
    ) -> Result<usize, ConnectionError> {
        loop {
            match &self.state {
                State::Closed => return Ok(0),
                State::Greeting => {
                    let Some(greeting) = Greeting::decode(buf)? else {
                        return Ok(0);
                    };
                    if greeting.mechanism != MechanismName::Null {
                        return Err(ConnectionError::MechanismMismatch {
                            ours: MechanismName::Null.display(),
                            theirs: greeting.mechanism.display(),
                        });
                    }
                    self.zmtp_minor = if greeting.is_zmtp31() {
                        greeting.minor.max(1)
                    } else {
                        0
                    };
                    null::ready(
                        self.config.socket_type,
                        &self.config.identity,
                        &self.config.metadata,
                    )
                    .encode(&mut self.out.tail);
                    self.state = State::Handshake(Handshake::Null(null::ExpectReady {
                        socket_type: self.config.socket_type,
                    }));
                }
                State::Handshake(_) => {
                    let Some(frame) = self.decoder.decode(buf)? else {
                        return Ok(0);
                    };
                    if !frame.command {
                        return Err(ConnectionError::Protocol("message before handshake"));
                    }
                    let cmd = Command::parse(&frame.body)?;
                    let State::Handshake(hs) = std::mem::replace(&mut self.state, State::Closed)
                    else {
                        unreachable!("matched above")
                    };
                    let peer = match hs {
                        Handshake::Null(s) => s.handle(cmd, self.zmtp_minor)?,
                    };
                    self.state = State::Active;
                    self.handshake_deadline = None;
                    self.next_ping = self.config.heartbeat_ivl.map(|ivl| now + ivl);
                    self.peer = Some(peer.clone());
                    self.events.push_back(Event::Handshaken(peer));
                }
                State::Active => return self.process_frames(buf, now, max_messages, messages),
            }
        }
    }

    fn process_frames(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
        max_messages: usize,
        mut messages: Option<&mut Vec<Message>>,
    ) -> Result<usize, ConnectionError> {
        let mut any = false;
        let mut decoded = 0;
        while decoded < max_messages {
            let Some(frame) = self.decoder.decode_part(buf)? else {
                break;
            };
            any = true;
            if !frame.command {
                self.ttl_deadline = None;
                self.partial.push(frame.body);
                if !frame.more {
                    let msg = std::mem::take(&mut self.partial);
                    match messages.as_deref_mut() {
                        Some(out) if self.events.is_empty() => out.push(msg),
                        _ => self.events.push_back(Event::Message(msg)),
                    }
                    decoded += 1;
                }
                continue;
            }
            match Command::parse(&frame.body.into_bytes())? {
                Command::Ping { ttl_ds, context } => {
                    Command::Pong(context).encode(&mut self.out.tail);
                    if ttl_ds > 0 {
                        self.ttl_deadline =
                            Some(now + Duration::from_millis(u64::from(ttl_ds) * 100));
                    }
                    continue;
                }
                Command::Subscribe(t) => self.events.push_back(Event::Subscribe(t)),
                Command::Cancel(t) => self.events.push_back(Event::Cancel(t)),
                Command::Error(reason) => {
                    return Err(ConnectionError::PeerError(
                        String::from_utf8_lossy(&reason).into_owned(),
                    ))
                }
                Command::Ready(_) => {
                    return Err(ConnectionError::Protocol("READY after handshake"))
                }
                // PONG only proves liveness; unknown commands are dropped as libzmq does.
                Command::Pong(_) | Command::Other { .. } => {}
            }
            self.ttl_deadline = None;
        }
        if any {
            // Any traffic answers our outstanding PING.
            self.ping_deadline = None;
        }
        Ok(decoded)
    }

    /// Queues a message for transmission. Call only when [`is_active`](Self::is_active).
    pub fn send_message(&mut self, msg: &Message) {
        let last = msg.len().saturating_sub(1);
        for (i, frame) in msg.iter().enumerate() {
            self.push_frame(i != last, frame);
        }
    }

    /// Queues a message of one frame whose body is copied from `body`,
    /// as [`send_message`](Self::send_message) would queue
    /// `Message::copy_from_slice(body)`, without making that message: the
    /// body goes straight into the output, or, if large, into a buffer of
    /// its own.
    pub fn send_slice(&mut self, body: &[u8]) {
        if body.len() >= ZERO_COPY_THRESHOLD {
            encode_header(&mut self.out.tail, false, false, body.len());
            self.push_copied(body);
        } else {
            encode_frame(&mut self.out.tail, false, false, body);
        }
    }

    /// Queues bytes that are already framed: the rest of frames written in
    /// part from the application's own buffer (whose headers came from
    /// [`frame::header`](crate::wire::frame::header)). Anything else breaks
    /// the stream for the peer.
    pub fn send_framed(&mut self, bytes: &[u8]) {
        if bytes.len() >= ZERO_COPY_THRESHOLD {
            self.push_copied(bytes);
        } else {
            self.out.tail.extend_from_slice(bytes);
        }
    }

    /// `bytes` copied into a chunk of the output of their own (in memory
    /// that copies of large frames go round: see `copy_frame`), so that
    /// the small-frame buffer does not grow to their size.
    fn push_copied(&mut self, bytes: &[u8]) {
        self.out.seal_tail();
        self.out.chunks.push_back(crate::message::copy_frame(bytes));
    }

    fn push_frame(&mut self, more: bool, body: &Frame) {
        if let Some(shared) = body.as_shared().filter(|b| b.len() >= ZERO_COPY_THRESHOLD) {
            encode_header(&mut self.out.tail, more, false, shared.len());
            self.out.seal_tail();
            self.out.chunks.push_back(shared.clone());
        } else {
            encode_frame(&mut self.out.tail, more, false, body);
        }
    }

    /// Queues a subscription (or cancellation) in the form the peer expects:
    /// a SUBSCRIBE/CANCEL command for ZMTP 3.1, a `0x01`/`0x00`-prefixed
    /// message for 3.0.
    pub fn send_subscription(&mut self, subscribe: bool, topic: &Bytes) {
        if self.zmtp_minor >= 1 {
            let cmd = if subscribe {
                Command::Subscribe(topic.clone())
            } else {
                Command::Cancel(topic.clone())
            };
            cmd.encode(&mut self.out.tail);
        } else {
            let mut body = Vec::with_capacity(topic.len() + 1);
            body.push(u8::from(subscribe));
            body.extend_from_slice(topic);
            encode_frame(&mut self.out.tail, false, false, &body);
        }
    }

    /// Handles the passing of the deadline returned by [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            self.state = State::Closed;
            return Err(ConnectionError::HandshakeTimeout);
        }
        if self.ping_deadline.is_some_and(|d| now >= d)
            || self.ttl_deadline.is_some_and(|d| now >= d)
        {
            self.state = State::Closed;
            return Err(ConnectionError::HeartbeatTimeout);
        }
        if let (Some(next), Some(ivl)) = (self.next_ping, self.config.heartbeat_ivl) {
            if now >= next {
                let ttl_ds = self
                    .config
                    .heartbeat_ttl
                    .map(|t| (t.as_millis() / 100).min(u128::from(u16::MAX)) as u16)
                    .unwrap_or(0);
                Command::Ping {
                    ttl_ds,
                    context: Bytes::new(),
                }
                .encode(&mut self.out.tail);
                self.next_ping = Some(now + ivl);
                if self.ping_deadline.is_none() {
                    self.ping_deadline = Some(now + self.config.heartbeat_timeout.unwrap_or(ivl));
                }
            }
        }
        Ok(())
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.handshake_deadline,
            self.next_ping,
            self.ping_deadline,
            self.ttl_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Fills `dst` with the bytes waiting to be written, in order, and returns
    /// how many slices were filled. Pass them to a vectored write.
    pub fn transmit_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.out.slices(dst)
    }

    /// Takes everything waiting to be written, in order, for a driver that
    /// writes it without holding the connection (so that messages can be
    /// encoded behind it meanwhile). Swaps with `into`, which must be empty:
    /// the connection goes on encoding into `into`'s buffer, so a driver
    /// that keeps one [`Taken`] alternates between two buffers and
    /// allocates none per write (unless large frames were queued behind a
    /// partial write). Hand back what the stream did not take
    /// with [`restore_transmit`](Self::restore_transmit) before writing
    /// anything else.
    pub fn take_transmit(&mut self, into: &mut Taken) {
        debug_assert!(into.is_empty());
        into.tail.clear();
        std::mem::swap(&mut self.out, into);
    }

    /// Puts back, ahead of anything encoded since, what remains of a
    /// [`take_transmit`](Self::take_transmit); `rest` is left empty, its
    /// buffers ready for the next take.
    pub fn restore_transmit(&mut self, rest: &mut Taken) {
        if rest.is_empty() {
            return;
        }
        if self.transmit_is_empty() {
            // Nothing new: the taken output goes back as it was.
            std::mem::swap(&mut self.out, rest);
            return;
        }
        if self.out.chunks.is_empty() {
            // Only small frames came meanwhile (the common case under
            // backpressure): copy them behind the rest (at most the
            // encode-ahead limit) and keep both buffers as they were,
            // rather than freeze the rest into a shared chunk and make the
            // connection grow a new buffer while it is written.
            rest.tail.extend_from_slice(&self.out.tail);
            self.out.tail.clear();
            std::mem::swap(&mut self.out, rest);
            return;
        }
        if !rest.tail.is_empty() {
            self.out.chunks.push_front(rest.tail.split().freeze());
        }
        while let Some(chunk) = rest.chunks.pop_back() {
            self.out.chunks.push_front(chunk);
        }
    }

    /// Bytes waiting to be written.
    pub fn transmit_len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing is waiting to be written.
    pub fn transmit_is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Marks `n` bytes of what [`transmit_slices`](Self::transmit_slices) offered as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n);
    }

    /// How many more bytes `buf` (the unread input) needs before the next
    /// greeting or frame is whole: a hint for sizing the read buffer. Frames
    /// announced by the peer count in full, so cap the hint by what has
    /// really arrived before allocating for it.
    pub fn read_hint(&self, buf: &[u8]) -> usize {
        match self.state {
            State::Greeting => crate::wire::GREETING_LEN.saturating_sub(buf.len()),
            State::Handshake(_) | State::Active => self.decoder.bytes_needed(buf),
            State::Closed => 0,
        }
    }

    /// True once the handshake is done and until the connection fails.
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active)
    }

    /// The peer, once the handshake is done.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// The peer's ZMTP minor version (1 until the greeting says otherwise).
    pub fn zmtp_minor(&self) -> u8 {
        self.zmtp_minor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::FLAG_COMMAND;

    /// Takes everything `c` wants to write.
    fn drain(c: &mut Connection) -> BytesMut {
        let mut wire = BytesMut::new();
        loop {
            let mut slices = [IoSlice::new(&[]); 4];
            let n = c.transmit_slices(&mut slices);
            if n == 0 {
                return wire;
            }
            let len: usize = slices[..n].iter().map(|s| s.len()).sum();
            for s in &slices[..n] {
                wire.extend_from_slice(s);
            }
            c.advance_transmit(len);
        }
    }

    /// An in-memory pair with a virtual clock.
    struct Pair {
        a: Connection,
        b: Connection,
        now: Instant,
    }

    impl Pair {
        fn new(a: Config, b: Config) -> Pair {
            let now = Instant::now();
            Pair {
                a: Connection::new(a, now),
                b: Connection::new(b, now),
                now,
            }
        }

        fn of(a: SocketType, b: SocketType) -> Pair {
            Pair::new(Config::new(a), Config::new(b))
        }

        /// Moves bytes both ways until quiet; returns the first error.
        fn drive(&mut self) -> Result<(), ConnectionError> {
            for _ in 0..10 {
                let mut ab = drain(&mut self.a);
                let mut ba = drain(&mut self.b);
                if ab.is_empty() && ba.is_empty() {
                    break;
                }
                self.b.handle_input(&mut ab, self.now)?;
                self.a.handle_input(&mut ba, self.now)?;
            }
            Ok(())
        }

        fn advance(
            &mut self,
            d: Duration,
        ) -> (Result<(), ConnectionError>, Result<(), ConnectionError>) {
            self.now += d;
            (
                self.a.handle_timeout(self.now),
                self.b.handle_timeout(self.now),
            )
        }
    }

    fn events(c: &mut Connection) -> Vec<Event> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn peer_greeting(mechanism: &[u8], minor: u8) -> BytesMut {
        let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, minor];
        let mut mech = [0u8; 20];
        mech[..mechanism.len()].copy_from_slice(mechanism);
        g.extend_from_slice(&mech);
        g.extend_from_slice(&[0u8; 32]);
        BytesMut::from(&g[..])
    }

    /// Writes up to `n` bytes of `taken` into `wire`, as a stream would.
    fn write_part(taken: &mut Taken, wire: &mut BytesMut, mut n: usize) {
        while n > 0 && !taken.is_empty() {
            let mut slices = [IoSlice::new(&[]); 4];
            let k = taken.slices(&mut slices);
            let mut done = 0;
            for s in &slices[..k] {
                let m = s.len().min(n - done);
                wire.extend_from_slice(&s[..m]);
                done += m;
                if done == n {
                    break;
                }
            }
            taken.advance(done);
            n -= done;
        }
    }

    /// A message sent from a slice goes out as the same bytes as one sent
    /// as a copied message, small, large or written in part from the
    /// slice with the rest queued framed; the peer gets each once, in order.
    #[test]
    fn slices_and_framed_rests_encode_as_messages_do() {
        let mut p = Pair::of(SocketType::Push, SocketType::Pull);
        p.drive().unwrap();
        events(&mut p.a);
        events(&mut p.b);
        let bodies: Vec<Vec<u8>> = [0usize, 5, 255, 256, 8191, 8192, 70_000]
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        let mut want = BytesMut::new();
        for b in &bodies {
            p.a.send_message(&Message::copy_from_slice(b));
            want.extend_from_slice(&drain(&mut p.a));
        }
        let mut got = BytesMut::new();
        for (i, b) in bodies.iter().enumerate() {
            if i % 2 == 0 {
                p.a.send_slice(b);
            } else {
                // As a direct write that got `k` bytes of header and body
                // out, queueing the rest.
                let (h, n) = crate::wire::frame::header(false, false, b.len());
                let mut framed = h[..n].to_vec();
                framed.extend_from_slice(b);
                let k = framed.len() / 3;
                got.extend_from_slice(&framed[..k]);
                p.a.send_framed(&framed[k..]);
            }
            got.extend_from_slice(&drain(&mut p.a));
        }
        assert_eq!(got, want);
        p.b.handle_input(&mut got, p.now).unwrap();
        let received: Vec<Event> = events(&mut p.b);
        let expected: Vec<Event> = bodies
            .iter()
            .map(|b| Event::Message(Message::copy_from_slice(b)))
            .collect();
        assert_eq!(received, expected);
    }

    /// A driver that writes taken output without holding the connection
    /// hands back a partial write while messages were encoded behind it:
    /// the peer still gets every byte once, in order.
    #[test]
    fn output_taken_out_and_partly_written_keeps_its_order() {
        let mut p = Pair::of(SocketType::Push, SocketType::Pull);
        p.drive().unwrap();
        events(&mut p.a);
        events(&mut p.b);
        let big = Bytes::from(vec![9u8; 70_000]);
        let mut taken = Taken::default();
        let check = |p: &mut Pair, wire: &mut BytesMut, want: &[&Bytes]| {
            p.b.handle_input(wire, p.now).unwrap();
            let want: Vec<Event> = want
                .iter()
                .map(|b| Event::Message(Message::from((*b).clone())))
                .collect();
            assert_eq!(events(&mut p.b), want);
        };
        let (one, two, three) = (Bytes::from("one"), Bytes::from("two"), Bytes::from("three"));

        // Large and small frames taken; more of both encoded meanwhile; the
        // stream took the first frames and 10 bytes into the large one.
        p.a.send_message(&Message::from(one.clone()));
        p.a.send_message(&Message::from(big.clone()));
        p.a.send_message(&Message::from(two.clone()));
        p.a.take_transmit(&mut taken);
        assert!(p.a.transmit_is_empty());
        p.a.send_message(&Message::from(three.clone()));
        p.a.send_message(&Message::from(big.clone()));
        let mut wire = BytesMut::new();
        write_part(&mut taken, &mut wire, 5 + 9 + 10);
        p.a.restore_transmit(&mut taken);
        assert!(taken.is_empty());
        wire.extend_from_slice(&drain(&mut p.a));
        check(&mut p, &mut wire, &[&one, &big, &two, &three, &big]);

        // Only small messages encoded meanwhile (in the new buffer), half
        // of the taken ones written.
        let (five, six) = (Bytes::from("five"), Bytes::from("six"));
        p.a.send_message(&Message::from(five.clone()));
        p.a.send_message(&Message::from(one.clone()));
        p.a.take_transmit(&mut taken);
        p.a.send_message(&Message::from(six.clone()));
        let mut wire = BytesMut::new();
        let half = taken.len() / 2;
        write_part(&mut taken, &mut wire, half);
        p.a.restore_transmit(&mut taken);
        wire.extend_from_slice(&drain(&mut p.a));
        check(&mut p, &mut wire, &[&five, &one, &six]);

        // Partly written with small frames encoded meanwhile, then more
        // encoded into the restored buffer before the next take.
        p.a.send_message(&Message::from(two.clone()));
        p.a.send_message(&Message::from(three.clone()));
        p.a.take_transmit(&mut taken);
        p.a.send_message(&Message::from(five.clone()));
        let mut wire = BytesMut::new();
        write_part(&mut taken, &mut wire, 4);
        p.a.restore_transmit(&mut taken);
        assert!(taken.is_empty());
        p.a.send_message(&Message::from(six.clone()));
        p.a.take_transmit(&mut taken);
        p.a.send_message(&Message::from(one.clone()));
        write_part(&mut taken, &mut wire, usize::MAX);
        p.a.restore_transmit(&mut taken);
        wire.extend_from_slice(&drain(&mut p.a));
        check(&mut p, &mut wire, &[&two, &three, &five, &six, &one]);

        // Partly written and nothing new: the rest goes back as it was.
        p.a.send_message(&Message::from(two.clone()));
        p.a.send_message(&Message::from(three.clone()));
        p.a.take_transmit(&mut taken);
        let mut wire = BytesMut::new();
        write_part(&mut taken, &mut wire, 3);
        p.a.restore_transmit(&mut taken);
        assert!(taken.is_empty());
        wire.extend_from_slice(&drain(&mut p.a));
        check(&mut p, &mut wire, &[&two, &three]);

        // Written in full: nothing is left over.
        p.a.send_message(&Message::from(six.clone()));
        p.a.take_transmit(&mut taken);
        let mut wire = BytesMut::new();
        write_part(&mut taken, &mut wire, usize::MAX);
        p.a.restore_transmit(&mut taken);
        assert!(p.a.transmit_is_empty());
        check(&mut p, &mut wire, &[&six]);
    }

    #[test]
    fn null_handshake_and_messages() {
        let mut cfg = Config::new(SocketType::Dealer);
        cfg.identity = Bytes::from_static(b"me");
        let mut p = Pair::new(cfg, Config::new(SocketType::Router));
        p.drive().unwrap();
        assert!(p.a.is_active() && p.b.is_active());
        let Event::Handshaken(peer) = p.b.poll_event().unwrap() else {
            panic!()
        };
        assert_eq!(peer.socket_type, Some(SocketType::Dealer));
        assert_eq!(&peer.identity[..], b"me");
        assert_eq!(peer.zmtp_minor, 1);
        let Event::Handshaken(peer) = p.a.poll_event().unwrap() else {
            panic!()
        };
        assert_eq!(peer.socket_type, Some(SocketType::Router));

        let big = Bytes::from(vec![7u8; 100_000]);
        p.a.send_message(&Message::from(["a", "", "c"]));
        let mut m = Message::from(big.clone());
        m.push_front("head");
        p.a.send_message(&m);
        p.drive().unwrap();
        assert_eq!(
            events(&mut p.b),
            [
                Event::Message(Message::from(["a", "", "c"])),
                Event::Message(m)
            ]
        );
    }

    #[test]
    fn any_input_chunking_gives_the_same_events() {
        let mut p = Pair::of(SocketType::Push, SocketType::Pull);
        p.drive().unwrap();
        events(&mut p.b);
        for i in 0..50u32 {
            p.a.send_message(&Message::from(
                vec![i.to_be_bytes().to_vec(), vec![1; i as usize * 20]]
                    .into_iter()
                    .map(Bytes::from)
                    .collect::<Vec<_>>(),
            ));
        }
        let wire = drain(&mut p.a);
        for chunk in [1, 2, 7, 300, wire.len()] {
            let mut fresh = Pair::of(SocketType::Push, SocketType::Pull);
            fresh.drive().unwrap();
            events(&mut fresh.b);
            let mut buf = BytesMut::new();
            let mut got = vec![];
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                fresh.b.handle_input(&mut buf, fresh.now).unwrap();
                got.extend(events(&mut fresh.b));
            }
            assert_eq!(got.len(), 50, "chunk {chunk}");
            for (i, e) in got.iter().enumerate() {
                let Event::Message(m) = e else { panic!() };
                assert_eq!(&m[0][..], &(i as u32).to_be_bytes());
                assert_eq!(m[1].len(), i * 20);
            }
        }
    }

    #[test]
    fn bounded_input_decodes_no_more_than_asked_and_resumes() {
        let mut p = Pair::of(SocketType::Push, SocketType::Pull);
        p.drive().unwrap();
        events(&mut p.b);
        for i in 0..10u32 {
            // Multipart, so a stop must fall between messages, not frames.
            p.a.send_message(&Message::from(vec![
                Bytes::from(i.to_be_bytes().to_vec()),
                Bytes::from_static(b"tail"),
            ]));
        }
        let mut buf = BytesMut::from(&drain(&mut p.a)[..]);
        let mut got = vec![];
        for want in [3, 0, 4, 100] {
            let n = p.b.handle_input_bounded(&mut buf, p.now, want).unwrap();
            let evs = events(&mut p.b);
            assert_eq!(n, evs.len(), "the count returned is what was queued");
            assert_eq!(n, want.min(10 - got.len()), "asked for {want}");
            got.extend(evs);
        }
        assert!(buf.is_empty(), "everything consumed in the end");
        for (i, ev) in got.iter().enumerate() {
            let Event::Message(m) = ev else {
                panic!("{ev:?}")
            };
            assert_eq!(&m[0][..], &(i as u32).to_be_bytes(), "in order");
            assert_eq!(&m[1][..], b"tail");
        }
    }

    /// Messages decoded into a caller's vector keep their order with the
    /// events around them: one that follows a pending event (here a
    /// SUBSCRIBE) waits behind it in the event queue.
    #[test]
    fn messages_into_a_vector_keep_their_order_with_events() {
        let mut p = Pair::of(SocketType::XSub, SocketType::XPub);
        p.drive().unwrap();
        events(&mut p.b);
        let msg = |i: u8| Message::from(vec![Bytes::from(vec![i])]);
        p.a.send_message(&msg(1));
        p.a.send_message(&msg(2));
        p.a.send_subscription(true, &Bytes::from_static(b"topic"));
        p.a.send_message(&msg(3));
        let mut buf = BytesMut::from(&drain(&mut p.a)[..]);
        let mut direct = Vec::new();
        let n =
            p.b.handle_input_into(&mut buf, p.now, usize::MAX, Some(&mut direct))
                .unwrap();
        assert_eq!(n, 3, "three messages decoded");
        assert_eq!(direct, [msg(1), msg(2)], "those before the event");
        let rest = events(&mut p.b);
        assert!(
            matches!(&rest[..], [Event::Subscribe(t), Event::Message(m)]
                if &t[..] == b"topic" && *m == msg(3)),
            "then the event, then the message after it: {rest:?}"
        );
    }

    #[test]
    fn incompatible_socket_types_close() {
        let mut p = Pair::of(SocketType::Push, SocketType::Push);
        assert!(matches!(
            p.drive(),
            Err(ConnectionError::IncompatibleSocketType {
                ours: SocketType::Push,
                ..
            })
        ));
    }

    #[test]
    fn bad_input_closes() {
        let now = Instant::now();
        let new = || Connection::new(Config::new(SocketType::Pull), now);
        type Check = fn(&ConnectionError) -> bool;
        let cases: Vec<(BytesMut, Check)> = vec![
            (BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]), |e| {
                matches!(e, ConnectionError::Greeting(GreetingError::Zmtp10))
            }),
            // A ZMTP 1.0 identity frame: length 1, flags 0.
            (BytesMut::from(&b"\x01\x00"[..]), |e| {
                matches!(e, ConnectionError::Greeting(_))
            }),
            (peer_greeting(b"CURVE", 1), |e| {
                matches!(e, ConnectionError::MechanismMismatch { .. })
            }),
            (
                {
                    let mut g = peer_greeting(b"NULL", 1);
                    g.extend_from_slice(b"\x00\x05hello");
                    g
                },
                |e| matches!(e, ConnectionError::Protocol(_)),
            ),
            (
                {
                    let mut g = peer_greeting(b"NULL", 1);
                    g.extend_from_slice(&[FLAG_COMMAND, 2, 9, b'x']);
                    g
                },
                |e| matches!(e, ConnectionError::Command(_)),
            ),
            (
                {
                    let mut g = peer_greeting(b"NULL", 1);
                    g.extend_from_slice(b"\x04\x0a\x05ERROR\x03400");
                    g
                },
                |e| matches!(e, ConnectionError::PeerError(r) if r == "400"),
            ),
        ];
        for (mut input, check) in cases {
            let mut c = new();
            let err = c.handle_input(&mut input, now).unwrap_err();
            assert!(check(&err), "{err:?}");
            assert!(!c.is_active());
            // A closed connection ignores further input.
            c.handle_input(&mut BytesMut::from(&b"more"[..]), now)
                .unwrap();
        }
    }

    #[test]
    fn oversized_frame_is_refused_without_allocating() {
        let mut cfg = Config::new(SocketType::Pull);
        cfg.max_msg_size = Some(1000);
        let mut p = Pair::new(Config::new(SocketType::Push), cfg);
        p.drive().unwrap();
        let mut wire = BytesMut::from(&b"\x02\x40\x00\x00\x00\x00\x00\x00\x00"[..]);
        assert!(matches!(
            p.b.handle_input(&mut wire, p.now),
            Err(ConnectionError::Frame(FrameError::TooLarge { .. }))
        ));
    }

    #[test]
    fn zmtp30_peer_gets_message_form_subscriptions() {
        let now = Instant::now();
        let mut c = Connection::new(Config::new(SocketType::Sub), now);
        let mut input = peer_greeting(b"NULL", 0);
        c.handle_input(&mut input, now).unwrap();
        let mut ready = BytesMut::new();
        null::ready(SocketType::Pub, &Bytes::new(), &Metadata::new()).encode(&mut ready);
        c.handle_input(&mut ready, now).unwrap();
        assert!(c.is_active());
        assert_eq!(c.zmtp_minor(), 0);
        drain(&mut c);
        c.send_subscription(true, &Bytes::from_static(b"A"));
        assert_eq!(&drain(&mut c)[..], b"\x00\x02\x01A");
    }

    #[test]
    fn handshake_timeout() {
        let mut cfg = Config::new(SocketType::Pair);
        cfg.handshake_timeout = Some(Duration::from_secs(1));
        let now = Instant::now();
        let mut c = Connection::new(cfg, now);
        assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(1)));
        c.handle_timeout(now + Duration::from_millis(999)).unwrap();
        assert_eq!(
            c.handle_timeout(now + Duration::from_secs(1)),
            Err(ConnectionError::HandshakeTimeout)
        );
    }

    #[test]
    fn heartbeats_ping_pong_and_timeout() {
        let mut cfg = Config::new(SocketType::Pair);
        cfg.heartbeat_ivl = Some(Duration::from_secs(1));
        cfg.heartbeat_ttl = Some(Duration::from_secs(5));
        let mut p = Pair::new(cfg, Config::new(SocketType::Pair));
        p.drive().unwrap();
        let (a, b) = p.advance(Duration::from_secs(1));
        a.unwrap();
        b.unwrap();
        // a sent PING with TTL 50 ds, b answers PONG; nothing times out.
        let ping = drain(&mut p.a);
        assert_eq!(&ping[..], b"\x04\x07\x04PING\x00\x32");
        p.b.handle_input(&mut ping.clone(), p.now).unwrap();
        let mut pong = drain(&mut p.b);
        assert_eq!(&pong[..], b"\x04\x05\x04PONG");
        p.a.handle_input(&mut pong, p.now).unwrap();
        // b now expects traffic within 5 s; a's timer is answered.
        assert_eq!(p.b.poll_timeout(), Some(p.now + Duration::from_secs(5)));
        // Now a's peer goes silent: the next PING goes unanswered.
        p.now += Duration::from_secs(1);
        p.a.handle_timeout(p.now).unwrap();
        drain(&mut p.a);
        p.now += Duration::from_millis(999);
        p.a.handle_timeout(p.now).unwrap();
        drain(&mut p.a);
        p.now += Duration::from_millis(1);
        assert_eq!(
            p.a.handle_timeout(p.now),
            Err(ConnectionError::HeartbeatTimeout)
        );
        // b's TTL from the PING expires too.
        p.now += Duration::from_secs(5);
        assert_eq!(
            p.b.handle_timeout(p.now),
            Err(ConnectionError::HeartbeatTimeout)
        );
    }
}
