//! `zmq_msg_t`: a frame (a [`Frame`]) and its MORE flag, kept inside the
//! caller's 64-byte opaque struct. As in libzmq, a frame of a few bytes
//! lives inside the struct itself (`zmq_msg_data` points there).

use std::ffi::CString;
use std::ffi::{c_char, c_void};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ferromq_proto::Frame;

use crate::errno::fail;
use crate::guard;

/// libzmq's `zmq_msg_t`: 64 bytes, pointer-aligned.
#[repr(C, align(8))]
pub struct ZmqMsg {
    _opaque: [u8; 64],
}

/// What lives inside a `ZmqMsg`.
pub struct MsgRepr {
    pub data: Frame,
    pub more: bool,
    /// The connection's properties, for `zmq_msg_gets` (received frames only).
    pub meta: Option<Arc<CMeta>>,
}

/// Connection metadata as C strings, made once per connection (not per
/// message) and shared by every frame received over it.
#[derive(Debug)]
pub struct CMeta {
    props: Vec<(String, CString)>,
}

impl CMeta {
    /// Converts; a value with a NUL byte is cut there (C cannot see past it).
    pub fn new(meta: &ferromq::Metadata) -> CMeta {
        let props = meta
            .iter()
            .map(|(name, value)| {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                let value = CString::new(&value[..end]).expect("no NUL before end");
                (name.to_owned(), value)
            })
            .collect();
        CMeta { props }
    }

    /// A property by name, ignoring ASCII case (RFC 23); libzmq's deprecated
    /// "Identity" spelling and "Routing-Id" name the same property.
    fn get(&self, name: &str) -> Option<&CString> {
        let find = |n: &str| {
            self.props
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(n))
                .map(|(_, v)| v)
        };
        find(name).or_else(|| match name {
            n if n.eq_ignore_ascii_case("Routing-Id") => find("Identity"),
            n if n.eq_ignore_ascii_case("Identity") => find("Routing-Id"),
            _ => None,
        })
    }
}

const _: () = assert!(std::mem::size_of::<MsgRepr>() <= 64);
const _: () = assert!(std::mem::align_of::<MsgRepr>() <= 8);

const ZMQ_MORE: i32 = 1;
const ZMQ_SRCFD: i32 = 2;
const ZMQ_SHARED: i32 = 3;

impl MsgRepr {
    /// The message behind a `zmq_msg_t*`. `None` (EFAULT) for NULL.
    pub fn get<'a>(msg: *mut ZmqMsg) -> Option<&'a mut MsgRepr> {
        if msg.is_null() {
            return fail(libc::EFAULT, None);
        }
        // SAFETY: an initialised zmq_msg_t holds a MsgRepr (written by one of
        // the zmq_msg_init* functions); the struct is 8-aligned and 64 bytes.
        Some(unsafe { &mut *(msg as *mut MsgRepr) })
    }

    /// Writes a fresh message into uninitialised storage.
    pub fn init(msg: *mut ZmqMsg, data: Frame) -> i32 {
        if msg.is_null() {
            return fail(libc::EFAULT, -1);
        }
        // SAFETY: `msg` points to 64 writable, 8-aligned bytes (zmq_msg_t);
        // its previous content is not a live message (libzmq's contract).
        unsafe {
            std::ptr::write(
                msg as *mut MsgRepr,
                MsgRepr {
                    data,
                    more: false,
                    meta: None,
                },
            )
        };
        0
    }
}

/// A caller's buffer given with `zmq_msg_init_data`: its free function runs
/// once the last copy is gone, on the reaper thread, so it never runs under
/// one of our locks and may call back into the library.
struct ForeignBuf {
    ptr: *mut c_void,
    len: usize,
    ffn: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    hint: *mut c_void,
}

// SAFETY: the buffer is only read while alive and freed once, by its owner's
// function, which libzmq's contract allows on any thread.
unsafe impl Send for ForeignBuf {}

impl AsRef<[u8]> for ForeignBuf {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller promised `len` readable bytes at `ptr` until freed.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

struct FreeCall(unsafe extern "C" fn(*mut c_void, *mut c_void), usize, usize);

fn reaper() -> &'static mpsc::Sender<FreeCall> {
    static REAPER: OnceLock<mpsc::Sender<FreeCall>> = OnceLock::new();
    REAPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<FreeCall>();
        std::thread::Builder::new()
            .name("ferromq-free".into())
            .spawn(move || {
                crate::block_signals();
                for FreeCall(f, data, hint) in rx {
                    // SAFETY: the function and its arguments are what the caller
                    // gave zmq_msg_init_data, called exactly once.
                    unsafe { f(data as *mut c_void, hint as *mut c_void) };
                }
            })
            .expect("cannot start the free-callback thread");
        tx
    })
}

impl Drop for ForeignBuf {
    fn drop(&mut self) {
        if let Some(f) = self.ffn {
            let call = FreeCall(f, self.ptr as usize, self.hint as usize);
            if let Err(mpsc::SendError(call)) = reaper().send(call) {
                // SAFETY: as above; no lock of ours is held by a plain drop here.
                unsafe { (call.0)(call.1 as *mut c_void, call.2 as *mut c_void) };
            }
        }
    }
}

/// A zero-copy frame over a caller's buffer.
pub fn foreign_bytes(
    data: *mut c_void,
    len: usize,
    ffn: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    hint: *mut c_void,
) -> Bytes {
    Bytes::from_owner(ForeignBuf {
        ptr: data,
        len,
        ffn,
        hint,
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_init(msg: *mut ZmqMsg) -> i32 {
    guard(-1, || MsgRepr::init(msg, Frame::new()))
}

#[no_mangle]
pub extern "C" fn zmq_msg_init_size(msg: *mut ZmqMsg, size: usize) -> i32 {
    guard(-1, || {
        if size > isize::MAX as usize {
            return fail(libc::ENOMEM, -1);
        }
        // Zeroed so the bytes are initialised: inline when small, else a
        // Vec -> Bytes that keeps its pointer, and the message is its only
        // owner until sent, so the caller may write through zmq_msg_data.
        MsgRepr::init(msg, Frame::from(vec![0u8; size]))
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_init_data(
    msg: *mut ZmqMsg,
    data: *mut c_void,
    size: usize,
    ffn: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    hint: *mut c_void,
) -> i32 {
    guard(-1, || {
        if data.is_null() && size != 0 {
            return fail(libc::EFAULT, -1);
        }
        // Kept as given, however short: its free function runs once the
        // message is done with, not at once.
        MsgRepr::init(msg, Frame::shared(foreign_bytes(data, size, ffn, hint)))
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_close(msg: *mut ZmqMsg) -> i32 {
    guard(-1, || {
        let Some(m) = MsgRepr::get(msg) else {
            return -1;
        };
        // Leave an empty message behind: closing twice stays harmless.
        m.data = Frame::new();
        m.more = false;
        m.meta = None;
        0
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_move(dest: *mut ZmqMsg, src: *mut ZmqMsg) -> i32 {
    guard(-1, || {
        let (Some(d), Some(s)) = (MsgRepr::get(dest), MsgRepr::get(src)) else {
            return -1;
        };
        if std::ptr::eq(d, s) {
            return 0;
        }
        d.data = std::mem::take(&mut s.data);
        d.more = std::mem::take(&mut s.more);
        d.meta = s.meta.take();
        0
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_copy(dest: *mut ZmqMsg, src: *mut ZmqMsg) -> i32 {
    guard(-1, || {
        let (Some(d), Some(s)) = (MsgRepr::get(dest), MsgRepr::get(src)) else {
            return -1;
        };
        d.data = s.data.clone();
        d.more = s.more;
        d.meta = s.meta.clone();
        0
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_data(msg: *mut ZmqMsg) -> *mut c_void {
    guard(std::ptr::null_mut(), || match MsgRepr::get(msg) {
        // An inline frame's bytes are inside the caller's struct, which it
        // may write into (after zmq_msg_init_size).
        Some(m) => match m.data.inline_mut() {
            Some(inline) => inline.as_mut_ptr() as *mut c_void,
            None => m.data.as_ptr() as *mut c_void,
        },
        None => std::ptr::null_mut(),
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_size(msg: *const ZmqMsg) -> usize {
    guard(0, || {
        MsgRepr::get(msg as *mut ZmqMsg).map_or(0, |m| m.data.len())
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_more(msg: *const ZmqMsg) -> i32 {
    guard(0, || {
        MsgRepr::get(msg as *mut ZmqMsg).map_or(0, |m| i32::from(m.more))
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_get(msg: *const ZmqMsg, property: i32) -> i32 {
    guard(-1, || {
        let Some(m) = MsgRepr::get(msg as *mut ZmqMsg) else {
            return -1;
        };
        match property {
            ZMQ_MORE => i32::from(m.more),
            // No file descriptor is exposed per message.
            ZMQ_SRCFD => fail(libc::EINVAL, -1),
            ZMQ_SHARED => i32::from(m.data.as_shared().is_some_and(|b| !b.is_unique())),
            _ => fail(libc::EINVAL, -1),
        }
    })
}

#[no_mangle]
pub extern "C" fn zmq_msg_set(_msg: *mut ZmqMsg, _property: i32, _value: i32) -> i32 {
    // libzmq has no settable message property either.
    fail(libc::EINVAL, -1)
}

#[no_mangle]
pub extern "C" fn zmq_msg_gets(msg: *const ZmqMsg, property: *const c_char) -> *const c_char {
    guard(std::ptr::null(), || {
        let Some(m) = MsgRepr::get(msg as *mut ZmqMsg) else {
            return std::ptr::null();
        };
        let Some(name) = crate::socket::c_str(property) else {
            return std::ptr::null();
        };
        // The string lives as long as the message holds its metadata.
        match m.meta.as_ref().and_then(|meta| meta.get(name)) {
            Some(v) => v.as_ptr(),
            None => fail(libc::EINVAL, std::ptr::null()),
        }
    })
}
