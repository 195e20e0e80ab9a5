//! Contexts: `zmq_ctx_*` and the legacy `zmq_init`/`zmq_term`.

use std::ffi::c_void;
use std::ptr;

use ferromq::Context;
use parking_lot::{Condvar, Mutex};

use crate::errno::{fail, ETERM};
use crate::guard;

const CTX_MAGIC: u32 = 0xabad_cafe;
const IO_THREADS: i32 = 1;
const MAX_SOCKETS: i32 = 2;
const SOCKET_LIMIT: i32 = 3;
const MAX_MSGSZ: i32 = 5;
const MSG_T_SIZE: i32 = 6;
const IPV6: i32 = 42;
const BLOCKY: i32 = 70;

/// What `zmq_ctx_new` hands out.
pub struct Ctx {
    magic: u32,
    /// The process that made it: a forked child inherits the memory but
    /// not the I/O threads, so it must not wait for them.
    pid: u32,
    pub state: Mutex<CtxState>,
    /// Signalled when a socket of this context closes.
    closed: Condvar,
}

/// A context's settings and lazily started engine.
pub struct CtxState {
    /// Started with the first socket, so IO_THREADS can still be set.
    pub engine: Option<Context>,
    pub io_threads: i32,
    pub max_sockets: i32,
    pub max_msgsz: i32,
    pub ipv6: bool,
    pub blocky: bool,
    pub terminated: bool,
    pub open_sockets: usize,
}

impl Ctx {
    /// The context behind a handle, or None (errno EFAULT) if it is not one.
    pub fn from_handle<'a>(p: *mut c_void) -> Option<&'a Ctx> {
        if p.is_null() {
            return fail(libc::EFAULT, None);
        }
        // SAFETY: non-null handles come from zmq_ctx_new; the magic check
        // rejects most stray pointers the way libzmq's tag check does.
        let ctx = unsafe { &*(p as *const Ctx) };
        if ctx.magic != CTX_MAGIC {
            return fail(libc::EFAULT, None);
        }
        Some(ctx)
    }

    /// Registers a new socket; returns its engine, or errno on failure.
    pub fn open_socket(&self) -> Result<Context, i32> {
        let mut st = self.state.lock();
        if st.terminated {
            return Err(ETERM);
        }
        if st.open_sockets >= st.max_sockets as usize {
            return Err(libc::EMFILE);
        }
        let threads = st.io_threads.max(1) as usize;
        let engine = st
            .engine
            .get_or_insert_with(|| {
                Context::builder()
                    .io_threads(threads)
                    .on_thread_start(crate::block_signals)
                    .build()
            })
            .clone();
        st.open_sockets += 1;
        Ok(engine)
    }

    /// A socket of this context was closed.
    pub fn socket_closed(&self) {
        let mut st = self.state.lock();
        st.open_sockets -= 1;
        self.closed.notify_all();
    }

    fn shutdown(&self) {
        let mut st = self.state.lock();
        st.terminated = true;
        if let Some(e) = &st.engine {
            e.shutdown();
        }
    }
}

#[no_mangle]
pub extern "C" fn zmq_ctx_new() -> *mut c_void {
    guard(ptr::null_mut(), || {
        let ctx = Box::new(Ctx {
            magic: CTX_MAGIC,
            pid: std::process::id(),
            state: Mutex::new(CtxState {
                engine: None,
                io_threads: 1,
                max_sockets: 1023,
                max_msgsz: i32::MAX,
                ipv6: false,
                blocky: true,
                terminated: false,
                open_sockets: 0,
            }),
            closed: Condvar::new(),
        });
        Box::into_raw(ctx) as *mut c_void
    })
}

#[no_mangle]
pub extern "C" fn zmq_init(io_threads: i32) -> *mut c_void {
    if io_threads < 0 {
        return fail(libc::EINVAL, ptr::null_mut());
    }
    let ctx = zmq_ctx_new();
    if let Some(c) = Ctx::from_handle(ctx) {
        c.state.lock().io_threads = io_threads;
    }
    ctx
}

#[no_mangle]
pub extern "C" fn zmq_ctx_shutdown(context: *mut c_void) -> i32 {
    guard(-1, || match Ctx::from_handle(context) {
        Some(c) => {
            c.shutdown();
            0
        }
        None => -1,
    })
}

/// Shuts down, waits for every socket to be closed, then for their linger.
#[no_mangle]
pub extern "C" fn zmq_ctx_term(context: *mut c_void) -> i32 {
    guard(-1, || {
        let Some(c) = Ctx::from_handle(context) else {
            return -1;
        };
        c.shutdown();
        let engine = {
            let mut st = c.state.lock();
            while st.open_sockets > 0 {
                c.closed.wait(&mut st);
            }
            st.engine.take()
        };
        if let Some(e) = engine {
            if std::process::id() == c.pid {
                // Linger: closed sockets flush before the engine stops.
                let _ = e.term();
            } else {
                // A forked child terminating its parent's context (as
                // libzmq allows): the I/O threads stayed in the parent, so
                // there is nothing to wait for or stop here.
                std::mem::forget(e);
            }
        }
        // SAFETY: the handle came from Box::into_raw in zmq_ctx_new, every
        // socket of it is closed, and libzmq forbids using it after term.
        unsafe {
            (*(context as *mut Ctx)).magic = 0;
            drop(Box::from_raw(context as *mut Ctx));
        }
        0
    })
}

#[no_mangle]
pub extern "C" fn zmq_term(context: *mut c_void) -> i32 {
    zmq_ctx_term(context)
}

#[no_mangle]
pub extern "C" fn zmq_ctx_destroy(context: *mut c_void) -> i32 {
    zmq_ctx_term(context)
}

#[no_mangle]
pub extern "C" fn zmq_ctx_set(context: *mut c_void, option: i32, value: i32) -> i32 {
    guard(-1, || {
        let Some(c) = Ctx::from_handle(context) else {
            return -1;
        };
        let mut st = c.state.lock();
        match option {
            IO_THREADS if value >= 0 => st.io_threads = value,
            MAX_SOCKETS if value >= 1 => st.max_sockets = value,
            MAX_MSGSZ if value >= 0 => st.max_msgsz = value,
            IPV6 => st.ipv6 = value != 0,
            BLOCKY => st.blocky = value != 0,
            _ => return fail(libc::EINVAL, -1),
        }
        0
    })
}

#[no_mangle]
pub extern "C" fn zmq_ctx_get(context: *mut c_void, option: i32) -> i32 {
    guard(-1, || {
        let Some(c) = Ctx::from_handle(context) else {
            return -1;
        };
        let st = c.state.lock();
        match option {
            IO_THREADS => st.io_threads,
            MAX_SOCKETS => st.max_sockets,
            SOCKET_LIMIT => 65535,
            MAX_MSGSZ => st.max_msgsz,
            MSG_T_SIZE => 64,
            IPV6 => i32::from(st.ipv6),
            BLOCKY => i32::from(st.blocky),
            _ => fail(libc::EINVAL, -1),
        }
    })
}
