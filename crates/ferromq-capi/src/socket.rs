//! Sockets: `zmq_socket`, `zmq_close`, endpoints, and frame-at-a-time send
//! and receive over ferromq's whole-message sockets.
//!
//! C sends a multipart message frame by frame with ZMQ_SNDMORE; the frames
//! gather here and go to ferromq as one message with the last frame, so a
//! message is still delivered whole or not at all. Received messages are
//! handed out a frame at a time, with ZMQ_RCVMORE telling if more follow.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_void, CStr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferromq::{Message, Socket, SocketType};
use ferromq_proto::Frame;
use parking_lot::{Mutex, RwLock};

use crate::ctx::Ctx;
use crate::errno::{self, fail};
use crate::guard;
use crate::msg::{CMeta, MsgRepr, ZmqMsg};

/// Send/receive flags.
pub const ZMQ_DONTWAIT: i32 = 1;
/// More frames of this message follow.
pub const ZMQ_SNDMORE: i32 = 2;

/// What a socket handle points to.
pub struct Sock {
    pub ctx: *const Ctx,
    pub sock: Socket,
    pub kind: SocketType,
    /// Frames of a message being sent.
    sending: Mutex<Message>,
    /// Frames of a received message not yet handed out.
    receiving: Mutex<VecDeque<Frame>>,
    /// The metadata of the message being handed out, and the connection
    /// metadata it was made from (converted again only when that changes).
    receiving_meta: Mutex<Option<(Arc<ferromq::Metadata>, Arc<CMeta>)>>,
    /// Values of options that have no effect here (multicast, affinity),
    /// kept so getsockopt returns what was set, as libzmq does.
    pub inert: Mutex<HashMap<i32, i64>>,
}

// SAFETY: `ctx` outlives every socket (zmq_ctx_term waits for all to close)
// and is only used through its own locks.
unsafe impl Send for Sock {}
// SAFETY: as above; every other field is Sync.
unsafe impl Sync for Sock {}

/// Live socket handles. A handle is checked here on every call, so a closed
/// or bogus pointer gives ENOTSOCK instead of undefined behaviour.
fn live() -> &'static RwLock<HashMap<usize, Arc<Sock>>> {
    static LIVE: OnceLock<RwLock<HashMap<usize, Arc<Sock>>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

impl Sock {
    /// The socket behind a handle, or None with errno ENOTSOCK.
    pub fn get(s: *mut c_void) -> Option<Arc<Sock>> {
        match live().read().get(&(s as usize)) {
            Some(sock) => Some(sock.clone()),
            None => fail(libc::ENOTSOCK, None),
        }
    }

    /// Frames of a partly read message remain.
    pub fn rcvmore(&self) -> bool {
        !self.receiving.lock().is_empty()
    }

    /// POLLIN / POLLOUT as libzmq's ZMQ_EVENTS reports them.
    pub fn events(&self) -> i32 {
        let r = self.sock.readiness();
        let mut ev = 0;
        if r.readable || self.rcvmore() {
            ev |= 1;
        }
        if r.writable || !self.sending.lock().is_empty() {
            ev |= 2;
        }
        ev
    }

    /// Runs `op` until it stops saying EAGAIN, waiting on the readiness fd in
    /// between, for at most `timeout`. A signal ends the wait with EINTR,
    /// as in libzmq, so callers like Python can handle it and retry.
    fn wait<T>(
        &self,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> Result<T, i32>,
    ) -> Result<T, i32> {
        if timeout == Some(Duration::ZERO) {
            return op();
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match op() {
                Err(libc::EAGAIN) => {}
                other => return other,
            }
            // Reset the fd, then look once more: a change from here on signals it.
            self.sock.readiness();
            match op() {
                Err(libc::EAGAIN) => {}
                other => return other,
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(libc::EAGAIN);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as i32
                }
            };
            let fd = self.sock.readiness_fd().map_err(|e| errno::code(&e))?;
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
                let e = errno::errno();
                if e == libc::EINTR {
                    return Err(libc::EINTR);
                }
            }
        }
    }

    /// Sends a message of one frame with the bytes of `data` if they can go
    /// straight onto a connection now (see `ferromq::Socket::send_slice`):
    /// no multipart message under way and no SNDMORE. False: nothing was
    /// sent, and the caller sends a copy as usual.
    pub fn try_send_slice(&self, data: &[u8], flags: i32) -> bool {
        if flags & ZMQ_SNDMORE != 0 || !self.kind.can_send() {
            return false;
        }
        let sending = self.sending.lock();
        // Held while sending: a frame another thread adds meanwhile would
        // otherwise go out after this message, not before it.
        sending.is_empty() && self.sock.try_send_slice(data)
    }

    /// Sends one frame; returns its size or an errno.
    pub fn send_frame(&self, frame: Frame, flags: i32) -> Result<usize, i32> {
        if !self.kind.can_send() {
            return Err(libc::ENOTSUP);
        }
        let len = frame.len();
        let dontwait = flags & ZMQ_DONTWAIT != 0;
        let mut sending = self.sending.lock();
        let first = sending.is_empty();
        if first && self.kind == SocketType::Router {
            if flags & ZMQ_SNDMORE == 0 {
                // A routing id with no message after it: libzmq drops it.
                return Ok(len);
            }
            // libzmq routes at the first frame, so ROUTER_MANDATORY fails
            // there: EHOSTUNREACH for an unknown peer, EAGAIN for a full one.
            if self.sock.options().router_mandatory {
                drop(sending);
                let timeout = if dontwait {
                    Some(Duration::ZERO)
                } else {
                    self.sock.options().sndtimeo
                };
                self.wait(timeout, &mut || {
                    self.sock.router_check(&frame).map_err(|e| errno::code(&e))
                })?;
                self.sending.lock().push(frame);
                return Ok(len);
            }
        }
        if flags & ZMQ_SNDMORE != 0 {
            // libzmq decides EAGAIN on the first frame; once it is taken the
            // rest of the message cannot fail for want of room.
            if first && dontwait && !self.sock.readiness().writable {
                return Err(libc::EAGAIN);
            }
            sending.push(frame);
            return Ok(len);
        }
        sending.push(frame);
        let msg = std::mem::take(&mut *sending);
        let multipart = !first;
        drop(sending);
        let mut msg = Some(msg);
        let mut attempt = || match self
            .sock
            .try_send(msg.take().expect("message kept until sent"))
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let code = errno::code(&e.error);
                msg = Some(e.message);
                Err(code)
            }
        };
        // Room was checked at a multipart message's first frame, so its last
        // frame waits out a race instead of failing half-way.
        let timeout = if dontwait && !multipart {
            Some(Duration::ZERO)
        } else {
            self.sock.options().sndtimeo
        };
        let r = self.wait(timeout, &mut attempt);
        if r.is_ok() && !dontwait {
            // As ferromq's blocking send: keep near the connection.
            self.sock.pace_large_send();
        }
        r.map(|()| len)
    }

    /// Receives one frame, whether more follow, and the metadata of the
    /// connection it came over.
    pub fn recv_frame(&self, flags: i32) -> Result<(Frame, bool, Option<Arc<CMeta>>), i32> {
        {
            let mut q = self.receiving.lock();
            if let Some(f) = q.pop_front() {
                let meta = self.receiving_meta.lock().as_ref().map(|(_, c)| c.clone());
                return Ok((f, !q.is_empty(), meta));
            }
        }
        let timeout = if flags & ZMQ_DONTWAIT != 0 {
            Some(Duration::ZERO)
        } else {
            self.sock.options().rcvtimeo
        };
        let msg = self.wait(timeout, || {
            self.sock.try_recv().map_err(|e| errno::code(&e))
        })?;
        let meta = {
            let mut cur = self.receiving_meta.lock();
            match (msg.metadata_arc(), cur.as_ref()) {
                (None, _) => *cur = None,
                (Some(m), Some((seen, _))) if Arc::ptr_eq(m, seen) => {}
                (Some(m), _) => *cur = Some((m.clone(), Arc::new(CMeta::new(m)))),
            }
            cur.as_ref().map(|(_, c)| c.clone())
        };
        let mut frames = msg.into_iter();
        let first = frames.next().unwrap_or_default();
        let mut q = self.receiving.lock();
        q.extend(frames);
        Ok((first, !q.is_empty(), meta))
    }
}

/// Reads a C string argument.
pub fn c_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return fail(libc::EINVAL, None);
    }
    // SAFETY: the caller passes a NUL-terminated string.
    match unsafe { CStr::from_ptr(p) }.to_str() {
        Ok(s) => Some(s),
        Err(_) => fail(libc::EINVAL, None),
    }
}

#[no_mangle]
pub extern "C" fn zmq_socket(context: *mut c_void, kind: i32) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        let Some(ctx) = Ctx::from_handle(context) else {
            return std::ptr::null_mut();
        };
        let Some(kind) = SocketType::from_id(kind) else {
            return fail(libc::EINVAL, std::ptr::null_mut());
        };
        let engine = match ctx.open_socket() {
            Ok(e) => e,
            Err(e) => return fail(e, std::ptr::null_mut()),
        };
        let sock = match engine.socket(kind) {
            Ok(s) => s,
            Err(e) => {
                ctx.socket_closed();
                return fail(errno::code(&e), std::ptr::null_mut());
            }
        };
        // libzmq's defaults: wait forever at close (unless the context is
        // not BLOCKY), and the context's IPv6 setting.
        let (blocky, ipv6) = {
            let st = ctx.state.lock();
            (st.blocky, st.ipv6)
        };
        sock.set_linger(if blocky {
            None
        } else {
            Some(std::time::Duration::ZERO)
        });
        sock.set_ipv6(ipv6);
        let handle = Arc::new(Sock {
            ctx,
            sock,
            kind,
            sending: Mutex::new(Message::new()),
            receiving: Mutex::new(VecDeque::new()),
            receiving_meta: Mutex::new(None),
            inert: Mutex::new(HashMap::new()),
        });
        let ptr = Arc::as_ptr(&handle) as *mut c_void;
        live().write().insert(ptr as usize, handle);
        ptr
    })
}

#[no_mangle]
pub extern "C" fn zmq_close(s: *mut c_void) -> i32 {
    guard(-1, || {
        let Some(sock) = live().write().remove(&(s as usize)) else {
            return fail(libc::ENOTSOCK, -1);
        };
        sock.sock.clone().close();
        // SAFETY: ctx outlives its sockets (zmq_ctx_term waits for this call).
        unsafe { &*sock.ctx }.socket_closed();
        0
    })
}

fn endpoint_call(
    s: *mut c_void,
    addr: *const c_char,
    f: fn(&Socket, &str) -> ferromq::Result<()>,
) -> i32 {
    guard(-1, || {
        let Some(sock) = Sock::get(s) else { return -1 };
        let Some(addr) = c_str(addr) else { return -1 };
        match f(&sock.sock, addr) {
            Ok(()) => 0,
            Err(e) => fail(errno::code(&e), -1),
        }
    })
}

#[no_mangle]
pub extern "C" fn zmq_bind(s: *mut c_void, addr: *const c_char) -> i32 {
    guard(-1, || {
        let Some(sock) = Sock::get(s) else { return -1 };
        let Some(addr) = c_str(addr) else { return -1 };
        let use_fd = sock
            .inert
            .lock()
            .get(&crate::sockopt::USE_FD)
            .copied()
            .unwrap_or(-1);
        let bound = if use_fd < 0 {
            sock.sock.bind(addr)
        } else {
            match adopt_listener(&sock.sock, addr, use_fd as i32) {
                Ok(r) => r.map(drop),
                Err(code) => return fail(code, -1),
            }
        };
        match bound {
            Ok(()) => 0,
            Err(e) => fail(errno::code(&e), -1),
        }
    })
}

/// `ZMQ_USE_FD`: serves the application's listening socket `fd` for a bind
/// to `addr` (whose transport says what `fd` must be; libzmq ignores the
/// rest of the address). We serve a duplicate, so the application's fd
/// stays valid and its own; libzmq instead closes it with the socket.
/// `Err` is an errno for a fd that is not a listening socket of that kind.
fn adopt_listener(sock: &Socket, addr: &str, fd: i32) -> Result<ferromq::Result<String>, i32> {
    use std::os::fd::FromRawFd;
    let domains: &[i32] = if addr.starts_with("tcp://") {
        &[libc::AF_INET, libc::AF_INET6]
    } else if addr.starts_with("ipc://") {
        &[libc::AF_UNIX]
    } else {
        return Err(libc::EINVAL);
    };
    // SAFETY: fcntl on any integer is defined; it fails with EBADF for a
    // closed one. The duplicate is ours from here on.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EBADF));
    }
    // SAFETY: `dup` is an open fd that nothing else owns.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(dup) };
    let sockopt = |level: i32, name: i32| -> Option<i32> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: v and len are valid for writing one c_int.
        let rc = unsafe {
            libc::getsockopt(
                owned.as_raw_fd(),
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(v)
    };
    let listening = sockopt(libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1);
    let domain_ok =
        sockopt(libc::SOL_SOCKET, libc::SO_DOMAIN).is_some_and(|d| domains.contains(&d));
    if !listening || !domain_ok {
        return Err(libc::EINVAL);
    }
    Ok(if domains[0] == libc::AF_UNIX {
        sock.bind_ipc_listener(owned.into())
    } else {
        sock.bind_tcp_listener(owned.into())
    })
}

#[no_mangle]
pub extern "C" fn zmq_connect(s: *mut c_void, addr: *const c_char) -> i32 {
    endpoint_call(s, addr, Socket::connect)
}

#[no_mangle]
pub extern "C" fn zmq_unbind(s: *mut c_void, addr: *const c_char) -> i32 {
    endpoint_call(s, addr, Socket::unbind)
}

#[no_mangle]
pub extern "C" fn zmq_disconnect(s: *mut c_void, addr: *const c_char) -> i32 {
    endpoint_call(s, addr, Socket::disconnect)
}

fn send_bytes(s: *mut c_void, frame: Frame, flags: i32) -> i32 {
    let Some(sock) = Sock::get(s) else { return -1 };
    send_frame_on(&sock, frame, flags)
}

fn send_frame_on(sock: &Sock, frame: Frame, flags: i32) -> i32 {
    match sock.send_frame(frame, flags) {
        Ok(n) => n.min(i32::MAX as usize) as i32,
        Err(e) => fail(e, -1),
    }
}

#[no_mangle]
pub extern "C" fn zmq_send(s: *mut c_void, buf: *const c_void, len: usize, flags: i32) -> i32 {
    guard(-1, || {
        if buf.is_null() && len != 0 {
            return fail(libc::EFAULT, -1);
        }
        let data: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the caller passes `len` readable bytes, which it keeps
            // until we return.
            unsafe { std::slice::from_raw_parts(buf as *const u8, len) }
        };
        // Straight onto the connection when it takes them, with no message
        // made; else a copy (small ones inline; large ones in buffers the
        // connection is done with: see `copy_frame`).
        let Some(sock) = Sock::get(s) else { return -1 };
        if sock.try_send_slice(data, flags) {
            return len.min(i32::MAX as usize) as i32;
        }
        send_frame_on(&sock, Frame::copy_from_slice(data), flags)
    })
}

#[no_mangle]
pub extern "C" fn zmq_send_const(
    s: *mut c_void,
    buf: *const c_void,
    len: usize,
    flags: i32,
) -> i32 {
    guard(-1, || {
        if buf.is_null() && len != 0 {
            return fail(libc::EFAULT, -1);
        }
        // The caller promises the buffer outlives the message: no copy.
        send_bytes(
            s,
            crate::msg::foreign_bytes(buf as *mut c_void, len, None, std::ptr::null_mut()).into(),
            flags,
        )
    })
}

#[no_mangle]
pub extern "C" fn zmq_recv(s: *mut c_void, buf: *mut c_void, len: usize, flags: i32) -> i32 {
    guard(-1, || {
        if buf.is_null() && len != 0 {
            return fail(libc::EFAULT, -1);
        }
        let Some(sock) = Sock::get(s) else { return -1 };
        match sock.recv_frame(flags) {
            Ok((frame, _, _)) => {
                let n = frame.len().min(len);
                if n > 0 {
                    // SAFETY: the caller passes `len` writable bytes; n <= len.
                    unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), buf as *mut u8, n) };
                }
                // libzmq returns the full size even when it truncated.
                frame.len().min(i32::MAX as usize) as i32
            }
            Err(e) => fail(e, -1),
        }
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_send(msg: *mut ZmqMsg, s: *mut c_void, flags: i32) -> i32 {
    guard(-1, || {
        let Some(sock) = Sock::get(s) else { return -1 };
        let Some(m) = MsgRepr::get(msg) else {
            return -1;
        };
        let frame = m.data.clone();
        match sock.send_frame(frame, flags) {
            Ok(n) => {
                // Sent: the message is now empty, as after libzmq's send.
                m.data = Frame::new();
                m.more = false;
                m.meta = None;
                n.min(i32::MAX as usize) as i32
            }
            Err(e) => fail(e, -1),
        }
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_recv(msg: *mut ZmqMsg, s: *mut c_void, flags: i32) -> i32 {
    guard(-1, || {
        let Some(sock) = Sock::get(s) else { return -1 };
        let Some(m) = MsgRepr::get(msg) else {
            return -1;
        };
        match sock.recv_frame(flags) {
            Ok((frame, more, meta)) => {
                let n = frame.len();
                m.data = frame;
                m.more = more;
                m.meta = meta;
                n.min(i32::MAX as usize) as i32
            }
            Err(e) => fail(e, -1),
        }
    })
}

#[no_mangle]
pub extern "C" fn zmq_sendmsg(s: *mut c_void, msg: *mut ZmqMsg, flags: i32) -> i32 {
    zmq_msg_send(msg, s, flags)
}

#[no_mangle]
pub extern "C" fn zmq_recvmsg(s: *mut c_void, msg: *mut ZmqMsg, flags: i32) -> i32 {
    zmq_msg_recv(msg, s, flags)
}

#[no_mangle]
pub extern "C" fn zmq_sendiov(
    s: *mut c_void,
    iov: *mut libc::iovec,
    count: usize,
    flags: i32,
) -> i32 {
    guard(-1, || {
        if count == 0 || iov.is_null() {
            return fail(libc::EINVAL, -1);
        }
        let Some(sock) = Sock::get(s) else { return -1 };
        // SAFETY: the caller passes `count` iovecs.
        let iovs = unsafe { std::slice::from_raw_parts(iov, count) };
        let mut sent = 0;
        for (i, v) in iovs.iter().enumerate() {
            let data = if v.iov_len == 0 {
                Frame::new()
            } else {
                // SAFETY: each iovec describes readable memory.
                Frame::copy_from_slice(unsafe {
                    std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len)
                })
            };
            // As libzmq: every part goes with the caller's flags (so without
            // ZMQ_SNDMORE each is a message of its own), the last without
            // ZMQ_SNDMORE.
            let part_flags = if i + 1 < count {
                flags
            } else {
                flags & !ZMQ_SNDMORE
            };
            match sock.send_frame(data, part_flags) {
                Ok(n) => sent = n,
                Err(e) => return fail(e, -1),
            }
        }
        sent as i32
    })
}

#[no_mangle]
pub extern "C" fn zmq_recviov(
    s: *mut c_void,
    iov: *mut libc::iovec,
    count: *mut usize,
    flags: i32,
) -> i32 {
    guard(-1, || {
        if iov.is_null() || count.is_null() {
            return fail(libc::EINVAL, -1);
        }
        let Some(sock) = Sock::get(s) else { return -1 };
        // SAFETY: `count` points to the capacity of `iov`.
        let cap = unsafe { *count };
        if cap == 0 {
            return fail(libc::EINVAL, -1);
        }
        let mut n = 0;
        while n < cap {
            let (frame, more, _) = match sock.recv_frame(if n == 0 { flags } else { 0 }) {
                Ok(f) => f,
                Err(e) => return fail(e, -1),
            };
            // libzmq hands each part over in malloc'd memory the caller frees.
            // SAFETY: malloc of the frame's size (at least 1 byte); copied fully.
            let buf = unsafe { libc::malloc(frame.len().max(1)) };
            if buf.is_null() {
                return fail(libc::ENOMEM, -1);
            }
            // SAFETY: buf has room for the frame; iov has `cap` entries and n < cap.
            unsafe {
                std::ptr::copy_nonoverlapping(frame.as_ptr(), buf as *mut u8, frame.len());
                *iov.add(n) = libc::iovec {
                    iov_base: buf,
                    iov_len: frame.len(),
                };
            }
            n += 1;
            if !more {
                break;
            }
        }
        // SAFETY: as above.
        unsafe { *count = n };
        // libzmq returns the number of parts received.
        n.min(i32::MAX as usize) as i32
    })
}
