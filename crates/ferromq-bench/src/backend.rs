//! The backends: one small trait, [`Sock`], implemented once per library.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use ferromq::{Bytes, SocketType};

use crate::sock::{Kind, PoolBuf, Result, Setup, Sock, Transport};

/// The one context both inproc sides of a process share.
fn shared<T: Send + Sync + 'static>(
    cell: &'static std::sync::OnceLock<T>,
    make: impl FnOnce() -> T,
) -> &'static T {
    cell.get_or_init(make)
}

static FERROMQ_INPROC: std::sync::OnceLock<ferromq::Context> = std::sync::OnceLock::new();
static LIBZMQ_INPROC: std::sync::OnceLock<zmq::Context> = std::sync::OnceLock::new();

fn socket_type(kind: Kind) -> SocketType {
    match kind {
        Kind::Push => SocketType::Push,
        Kind::Pull => SocketType::Pull,
        Kind::Req => SocketType::Req,
        Kind::Rep => SocketType::Rep,
        Kind::XPub => SocketType::XPub,
        Kind::Sub => SocketType::Sub,
        Kind::Router => SocketType::Router,
    }
}

fn single_frame(mut msg: ferromq::Message) -> Result<ferromq::Frame> {
    match (msg.len(), msg.pop_front()) {
        (1, Some(frame)) => Ok(frame),
        (n, _) => Err(format!("expected one frame, got {n}").into()),
    }
}

/// ferromq's two front ends differ only in `.await`: one macro writes both.
macro_rules! ferromq_backend {
    ($(#[$doc:meta])* $name:ident, $sock:ty, $make:ident, $context:expr, $term:ident $(, $aw:tt)?) => {
        $(#[$doc])*
        pub struct $name {
            /// `None` for inproc: the process's shared context.
            ctx: Option<ferromq::Context>,
            sock: $sock,
            last: ferromq::Frame,
        }

        impl $name {
            fn open(setup: Setup) -> Result<Self> {
                let ctx = (setup.transport != Transport::Inproc).then($context);
                let sock = ctx
                    .as_ref()
                    .unwrap_or_else(|| shared(&FERROMQ_INPROC, ferromq::Context::new))
                    .$make(socket_type(setup.kind))?;
                if let Some(hwm) = setup.hwm {
                    let hwm = usize::try_from(hwm)?;
                    sock.update_options(|o| {
                        o.sndhwm = hwm;
                        o.rcvhwm = hwm;
                    });
                }
                match setup.kind {
                    Kind::XPub => sock.set_xpub_verbose(true),
                    Kind::Sub => sock.subscribe("")?,
                    _ => {}
                }
                Ok($name { ctx, sock, last: ferromq::Frame::new() })
            }
        }

        impl Sock for $name {
            async fn bind(setup: Setup) -> Result<(Self, String)> {
                let s = Self::open(setup)?;
                s.sock.bind(&setup.transport.bind_endpoint())?;
                let endpoint = s.sock.last_endpoint();
                Ok((s, endpoint))
            }

            async fn connect(setup: Setup, endpoint: &str) -> Result<Self> {
                let s = Self::open(setup)?;
                s.sock.connect(endpoint)?;
                Ok(s)
            }

            async fn send(&mut self, data: &[u8]) -> Result<()> {
                self.sock.send_slice(data) $(.$aw)? ?;
                Ok(())
            }

            async fn send_pooled(&mut self, buf: PoolBuf) -> Result<()> {
                self.sock.send(Bytes::from_owner(buf)) $(.$aw)? ?;
                Ok(())
            }

            async fn recv(&mut self) -> Result<&[u8]> {
                self.last = single_frame(self.sock.recv() $(.$aw)? ?)?;
                Ok(&self.last)
            }

            async fn recv_briefly(&mut self) -> Result<Option<&[u8]>> {
                self.sock.set_rcvtimeo(Some(std::time::Duration::from_millis(1)));
                let got = self.sock.recv() $(.$aw)?;
                self.sock.set_rcvtimeo(None);
                match got {
                    Ok(m) => {
                        self.last = single_frame(m)?;
                        Ok(Some(&self.last))
                    }
                    Err(ferromq::Error::WouldBlock) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }

            async fn recv_frames(&mut self) -> Result<usize> {
                Ok(self.sock.recv() $(.$aw)? ?.len())
            }

            async fn close(self) -> Result<()> {
                let $name { ctx, sock, .. } = self;
                sock.close();
                match ctx {
                    Some(ctx) => ctx.$term() $(.$aw)? ?,
                    // inproc: the peer thread reads to the last message.
                    None => {}
                }
                Ok(())
            }
        }
    };
}

ferromq_backend!(
    /// `ferromq` with the blocking [`ferromq::Socket`].
    Ferromq,
    ferromq::Socket,
    socket,
    ferromq::Context::new,
    term
);

ferromq_backend!(
    /// `ferromq` with the async [`ferromq::AsyncSocket`], run in a tokio
    /// current-thread runtime, which its connections run on too (tcp, ipc).
    FerromqAsync,
    ferromq::AsyncSocket,
    async_socket,
    || ferromq::Context::builder()
        .runtime(tokio::runtime::Handle::current())
        .build(),
    term_async,
    await
);

/// libzmq's free function for [`libzmq_send_owned`]: the buffer goes back
/// to the pool; `hint` carries its length.
#[allow(unsafe_code)]
unsafe extern "C" fn libzmq_put_back(data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
    let len = hint as usize;
    // SAFETY: `data` and `len` are those of the `Box<[u8]>` that
    // `libzmq_send_owned` leaked into this message; libzmq calls this once.
    let b = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data.cast::<u8>(), len)) };
    PoolBuf::put_back(b);
}

/// Sends `buf` as one message through libzmq's zero-copy API
/// (`zmq_msg_init_data` with a free function), which the `zmq` crate offers
/// only for buffers it frees itself.
#[allow(unsafe_code)]
fn libzmq_send_owned(sock: &mut zmq::Socket, buf: Box<[u8]>) -> Result<()> {
    let len = buf.len();
    let data = Box::into_raw(buf).cast::<u8>();
    let mut msg = zmq_sys::zmq_msg_t::default();
    // SAFETY: `data` is a leaked `Box<[u8]>` of `len` bytes that only
    // `libzmq_put_back` frees; `msg` is closed if it is not sent, and
    // `sock` is a live socket this thread owns.
    unsafe {
        let rc = zmq_sys::zmq_msg_init_data(
            &mut msg,
            data.cast(),
            len,
            Some(libzmq_put_back),
            len as *mut std::ffi::c_void,
        );
        if rc != 0 {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)));
            return Err(zmq::Error::from_raw(zmq_sys::zmq_errno()).into());
        }
        if zmq_sys::zmq_msg_send(&mut msg, sock.as_mut_ptr(), 0) < 0 {
            let e = zmq::Error::from_raw(zmq_sys::zmq_errno());
            zmq_sys::zmq_msg_close(&mut msg);
            return Err(e.into());
        }
    }
    Ok(())
}

/// libzmq through the `zmq` crate (libzmq built from source by `zmq-sys`).
pub struct Libzmq {
    /// Shared with the other thread for inproc.
    ctx: zmq::Context,
    inproc: bool,
    sock: zmq::Socket,
    msg: zmq::Message,
}

impl Libzmq {
    fn open(setup: Setup) -> Result<Self> {
        let inproc = setup.transport == Transport::Inproc;
        let ctx = if inproc {
            shared(&LIBZMQ_INPROC, zmq::Context::new).clone()
        } else {
            zmq::Context::new()
        };
        let sock = ctx.socket(match setup.kind {
            Kind::Push => zmq::PUSH,
            Kind::Pull => zmq::PULL,
            Kind::Req => zmq::REQ,
            Kind::Rep => zmq::REP,
            Kind::XPub => zmq::XPUB,
            Kind::Sub => zmq::SUB,
            Kind::Router => zmq::ROUTER,
        })?;
        if let Some(hwm) = setup.hwm {
            sock.set_sndhwm(hwm)?;
            sock.set_rcvhwm(hwm)?;
        }
        match setup.kind {
            Kind::XPub => sock.set_xpub_verbose(true)?,
            Kind::Sub => sock.set_subscribe(b"")?,
            _ => {}
        }
        Ok(Libzmq {
            ctx,
            inproc,
            sock,
            msg: zmq::Message::new(),
        })
    }
}

impl Sock for Libzmq {
    async fn bind(setup: Setup) -> Result<(Self, String)> {
        let s = Self::open(setup)?;
        s.sock.bind(&setup.transport.bind_endpoint())?;
        let endpoint = s
            .sock
            .get_last_endpoint()?
            .map_err(|_| "endpoint not UTF-8")?;
        Ok((s, endpoint))
    }

    async fn connect(setup: Setup, endpoint: &str) -> Result<Self> {
        let s = Self::open(setup)?;
        s.sock.connect(endpoint)?;
        Ok(s)
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        Ok(self.sock.send(data, 0)?)
    }

    async fn send_pooled(&mut self, buf: PoolBuf) -> Result<()> {
        libzmq_send_owned(&mut self.sock, buf.into_box())
    }

    async fn recv(&mut self) -> Result<&[u8]> {
        self.sock.recv(&mut self.msg, 0)?;
        if self.msg.get_more() {
            return Err("expected one frame, got more".into());
        }
        Ok(&self.msg)
    }

    async fn recv_briefly(&mut self) -> Result<Option<&[u8]>> {
        if self.sock.poll(zmq::POLLIN, 1)? == 0 {
            return Ok(None);
        }
        self.recv().await.map(Some)
    }

    async fn recv_frames(&mut self) -> Result<usize> {
        let mut n = 1;
        self.sock.recv(&mut self.msg, 0)?;
        while self.msg.get_more() {
            self.sock.recv(&mut self.msg, 0)?;
            n += 1;
        }
        Ok(n)
    }

    async fn close(self) -> Result<()> {
        let Libzmq {
            mut ctx,
            sock,
            inproc,
            ..
        } = self;
        drop(sock); // linger is infinite: zmq_ctx_term waits for the flush
        if inproc {
            return Ok(()); // the other side still uses the context
        }
        Ok(ctx.destroy()?)
    }
}

/// Length-prefixed frames over a plain `TcpStream` with 64 KiB buffers:
/// the ceiling that loopback TCP and these two processes allow.
///
/// PUSH flushes only when its buffer fills (and at close); REQ/REP flush
/// each message.
pub struct RawTcp {
    listener: Option<TcpListener>,
    io: Option<(BufReader<TcpStream>, BufWriter<TcpStream>)>,
    flush_each: bool,
    buf: Vec<u8>,
}

impl RawTcp {
    fn new(kind: Kind, listener: Option<TcpListener>, stream: Option<TcpStream>) -> Result<Self> {
        if matches!(kind, Kind::XPub | Kind::Sub | Kind::Router) {
            return Err("raw TCP has only point-to-point rows".into());
        }
        let mut s = RawTcp {
            listener,
            io: None,
            flush_each: matches!(kind, Kind::Req | Kind::Rep),
            buf: Vec::new(),
        };
        if let Some(stream) = stream {
            s.attach(stream)?;
        }
        Ok(s)
    }

    fn attach(&mut self, stream: TcpStream) -> Result<()> {
        stream.set_nodelay(true)?;
        let reader = BufReader::with_capacity(64 << 10, stream.try_clone()?);
        self.io = Some((reader, BufWriter::with_capacity(64 << 10, stream)));
        Ok(())
    }

    /// The connection, accepting it first on a bound socket.
    fn io(&mut self) -> Result<&mut (BufReader<TcpStream>, BufWriter<TcpStream>)> {
        if self.io.is_none() {
            let listener = self.listener.take().ok_or("not bound")?;
            self.attach(listener.accept()?.0)?;
        }
        Ok(self.io.as_mut().expect("attached above"))
    }
}

impl Sock for RawTcp {
    async fn bind(setup: Setup) -> Result<(Self, String)> {
        if setup.transport != Transport::Tcp {
            return Err("the raw baseline is tcp only".into());
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let endpoint = format!("tcp://{}", listener.local_addr()?);
        Ok((Self::new(setup.kind, Some(listener), None)?, endpoint))
    }

    async fn connect(setup: Setup, endpoint: &str) -> Result<Self> {
        let addr = endpoint
            .strip_prefix("tcp://")
            .ok_or("not a tcp endpoint")?;
        Self::new(setup.kind, None, Some(TcpStream::connect(addr)?))
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        let flush = self.flush_each;
        let (_, w) = self.io()?;
        w.write_all(&(data.len() as u64).to_le_bytes())?;
        w.write_all(data)?;
        if flush {
            w.flush()?;
        }
        Ok(())
    }

    async fn recv(&mut self) -> Result<&[u8]> {
        let mut buf = std::mem::take(&mut self.buf);
        let (r, _) = self.io()?;
        let mut len = [0u8; 8];
        r.read_exact(&mut len)?;
        buf.resize(usize::try_from(u64::from_le_bytes(len))?, 0);
        r.read_exact(&mut buf)?;
        self.buf = buf;
        Ok(&self.buf)
    }

    async fn close(self) -> Result<()> {
        if let Some((mut r, mut w)) = self.io {
            // Flush, then wait for the peer's EOF: it has read everything.
            w.flush()?;
            w.get_ref().shutdown(Shutdown::Write)?;
            let rest = std::io::copy(&mut r, &mut std::io::sink())?;
            if rest != 0 {
                return Err(format!("{rest} unexpected bytes before EOF").into());
            }
        }
        Ok(())
    }
}
