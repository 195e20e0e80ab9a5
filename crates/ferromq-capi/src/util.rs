//! The rest of the API: version, errors, capabilities, Z85, counters,
//! timers, stopwatch, threads, and what is not built yet (ENOTSUP).

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::errno::{self, fail};
use crate::guard;
use crate::socket::{c_str, Sock};

#[no_mangle]
pub extern "C" fn zmq_version(major: *mut i32, minor: *mut i32, patch: *mut i32) {
    for (p, v) in [(major, 4), (minor, 3), (patch, 5)] {
        if !p.is_null() {
            // SAFETY: non-null out-pointers from the caller.
            unsafe { *p = v };
        }
    }
}

#[no_mangle]
pub extern "C" fn zmq_errno() -> i32 {
    errno::errno()
}

#[no_mangle]
pub extern "C" fn zmq_strerror(e: i32) -> *const c_char {
    match errno::message(e) {
        Some(m) => m.as_ptr(),
        // SAFETY: strerror returns a valid C string for any code.
        None => unsafe { libc::strerror(e) },
    }
}

/// Only what really works is claimed.
#[no_mangle]
pub extern "C" fn zmq_has(capability: *const c_char) -> i32 {
    guard(0, || {
        let Some(cap) = c_str(capability) else {
            return 0;
        };
        // Not yet: pgm, tipc, norm, curve, gssapi, vmci, draft, WS, WSS.
        i32::from(cap == "ipc")
    })
}

#[no_mangle]
pub extern "C" fn zmq_z85_encode(dest: *mut c_char, data: *const u8, size: usize) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        if dest.is_null() || (data.is_null() && size != 0) || size % 4 != 0 {
            return fail(libc::EINVAL, std::ptr::null_mut());
        }
        let input = if size == 0 {
            &[][..]
        } else {
            // SAFETY: `size` readable bytes.
            unsafe { std::slice::from_raw_parts(data, size) }
        };
        let Ok(text) = ferromq_proto::z85::encode(input) else {
            return fail(libc::EINVAL, std::ptr::null_mut());
        };
        // SAFETY: the caller provides size * 5 / 4 + 1 bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), dest as *mut u8, text.len());
            *dest.add(text.len()) = 0;
        }
        dest
    })
}

#[no_mangle]
pub extern "C" fn zmq_z85_decode(dest: *mut u8, string: *const c_char) -> *mut u8 {
    guard(std::ptr::null_mut(), || {
        if dest.is_null() || string.is_null() {
            return fail(libc::EINVAL, std::ptr::null_mut());
        }
        // SAFETY: a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(string) }.to_bytes();
        let Ok(raw) = ferromq_proto::z85::decode(text) else {
            return fail(libc::EINVAL, std::ptr::null_mut());
        };
        // SAFETY: the caller provides strlen * 4 / 5 bytes.
        unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), dest, raw.len()) };
        dest
    })
}

#[no_mangle]
pub extern "C" fn zmq_curve_keypair(_public: *mut c_char, _secret: *mut c_char) -> i32 {
    // CURVE is not built yet.
    fail(libc::ENOTSUP, -1)
}

#[no_mangle]
pub extern "C" fn zmq_curve_public(_public: *mut c_char, _secret: *const c_char) -> i32 {
    fail(libc::ENOTSUP, -1)
}

#[no_mangle]
pub extern "C" fn zmq_socket_monitor(s: *mut c_void, addr: *const c_char, events: i32) -> i32 {
    guard(-1, || {
        let Some(sock) = crate::socket::Sock::get(s) else {
            return -1;
        };
        // Version 1 events fit in 16 bits.
        if (events as u32) >> 16 != 0 {
            return fail(libc::EINVAL, -1);
        }
        let r = if addr.is_null() {
            sock.sock.disable_monitor()
        } else {
            let Some(addr) = crate::socket::c_str(addr) else {
                return -1;
            };
            sock.sock.monitor(addr, events as u32)
        };
        match r {
            Ok(()) => 0,
            Err(e) => fail(crate::errno::code(&e), -1),
        }
    })
}

fn run_proxy(
    frontend: *mut c_void,
    backend: *mut c_void,
    capture: *mut c_void,
    control: *mut c_void,
) -> i32 {
    guard(-1, || {
        let (Some(f), Some(b)) = (Sock::get(frontend), Sock::get(backend)) else {
            return -1;
        };
        let optional = |p: *mut c_void| {
            if p.is_null() {
                Ok(None)
            } else {
                Sock::get(p).map(Some).ok_or(())
            }
        };
        let (Ok(c), Ok(k)) = (optional(capture), optional(control)) else {
            return -1;
        };
        let r = match &k {
            Some(k) => {
                ferromq::proxy_steerable(&f.sock, &b.sock, c.as_ref().map(|c| &c.sock), &k.sock)
            }
            None => ferromq::proxy(&f.sock, &b.sock, c.as_ref().map(|c| &c.sock)),
        };
        match r {
            Ok(()) => 0,
            Err(e) => fail(errno::code(&e), -1),
        }
    })
}

#[no_mangle]
pub extern "C" fn zmq_proxy(
    frontend: *mut c_void,
    backend: *mut c_void,
    capture: *mut c_void,
) -> i32 {
    run_proxy(frontend, backend, capture, std::ptr::null_mut())
}

#[no_mangle]
pub extern "C" fn zmq_proxy_steerable(
    frontend: *mut c_void,
    backend: *mut c_void,
    capture: *mut c_void,
    control: *mut c_void,
) -> i32 {
    run_proxy(frontend, backend, capture, control)
}

#[no_mangle]
pub extern "C" fn zmq_device(_kind: i32, frontend: *mut c_void, backend: *mut c_void) -> i32 {
    zmq_proxy(frontend, backend, std::ptr::null_mut())
}

#[no_mangle]
pub extern "C" fn zmq_atomic_counter_new() -> *mut c_void {
    Box::into_raw(Box::new(AtomicI32::new(0))) as *mut c_void
}

fn counter<'a>(c: *mut c_void) -> Option<&'a AtomicI32> {
    // SAFETY: non-null counters come from zmq_atomic_counter_new.
    (!c.is_null()).then(|| unsafe { &*(c as *const AtomicI32) })
}

#[no_mangle]
pub extern "C" fn zmq_atomic_counter_set(c: *mut c_void, value: i32) {
    if let Some(c) = counter(c) {
        c.store(value, Ordering::SeqCst);
    }
}

/// Returns the value before the increment, as libzmq does.
#[no_mangle]
pub extern "C" fn zmq_atomic_counter_inc(c: *mut c_void) -> i32 {
    counter(c).map_or(0, |c| c.fetch_add(1, Ordering::SeqCst))
}

/// Returns 1 if the counter is still above zero after the decrement, else 0.
#[no_mangle]
pub extern "C" fn zmq_atomic_counter_dec(c: *mut c_void) -> i32 {
    counter(c).map_or(0, |c| i32::from(c.fetch_sub(1, Ordering::SeqCst) - 1 > 0))
}

#[no_mangle]
pub extern "C" fn zmq_atomic_counter_value(c: *mut c_void) -> i32 {
    counter(c).map_or(0, |c| c.load(Ordering::SeqCst))
}

#[no_mangle]
pub extern "C" fn zmq_atomic_counter_destroy(p: *mut *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` points to a counter handle (or NULL), which we free and clear.
    unsafe {
        if !(*p).is_null() {
            drop(Box::from_raw(*p as *mut AtomicI32));
            *p = std::ptr::null_mut();
        }
    }
}

type TimerFn = unsafe extern "C" fn(i32, *mut c_void);

struct Timer {
    interval: Duration,
    due: Instant,
    handler: TimerFn,
    arg: usize,
}

/// `zmq_timers_*`: a set of repeating timers run by `zmq_timers_execute`.
#[derive(Default)]
struct Timers {
    next_id: i32,
    timers: BTreeMap<i32, Timer>,
}

fn timers<'a>(t: *mut c_void) -> Option<&'a mut Timers> {
    if t.is_null() {
        return fail(libc::EFAULT, None);
    }
    // SAFETY: non-null handles come from zmq_timers_new; not thread-safe, as in libzmq.
    Some(unsafe { &mut *(t as *mut Timers) })
}

#[no_mangle]
pub extern "C" fn zmq_timers_new() -> *mut c_void {
    Box::into_raw(Box::<Timers>::default()) as *mut c_void
}

#[no_mangle]
pub extern "C" fn zmq_timers_destroy(p: *mut *mut c_void) -> i32 {
    if p.is_null() {
        return fail(libc::EFAULT, -1);
    }
    // SAFETY: `p` points to a timers handle, freed and cleared here.
    unsafe {
        if (*p).is_null() {
            return fail(libc::EFAULT, -1);
        }
        drop(Box::from_raw(*p as *mut Timers));
        *p = std::ptr::null_mut();
    }
    0
}

#[no_mangle]
pub extern "C" fn zmq_timers_add(
    t: *mut c_void,
    interval: usize,
    handler: Option<TimerFn>,
    arg: *mut c_void,
) -> i32 {
    let Some(t) = timers(t) else { return -1 };
    let Some(handler) = handler else {
        return fail(libc::EFAULT, -1);
    };
    t.next_id += 1;
    let interval = Duration::from_millis(interval as u64);
    t.timers.insert(
        t.next_id,
        Timer {
            interval,
            due: Instant::now() + interval,
            handler,
            arg: arg as usize,
        },
    );
    t.next_id
}

#[no_mangle]
pub extern "C" fn zmq_timers_cancel(t: *mut c_void, id: i32) -> i32 {
    let Some(t) = timers(t) else { return -1 };
    match t.timers.remove(&id) {
        Some(_) => 0,
        None => fail(libc::EINVAL, -1),
    }
}

#[no_mangle]
pub extern "C" fn zmq_timers_set_interval(t: *mut c_void, id: i32, interval: usize) -> i32 {
    let Some(t) = timers(t) else { return -1 };
    match t.timers.get_mut(&id) {
        Some(tm) => {
            tm.interval = Duration::from_millis(interval as u64);
            tm.due = Instant::now() + tm.interval;
            0
        }
        None => fail(libc::EINVAL, -1),
    }
}

#[no_mangle]
pub extern "C" fn zmq_timers_reset(t: *mut c_void, id: i32) -> i32 {
    let Some(t) = timers(t) else { return -1 };
    match t.timers.get_mut(&id) {
        Some(tm) => {
            tm.due = Instant::now() + tm.interval;
            0
        }
        None => fail(libc::EINVAL, -1),
    }
}

/// Milliseconds until the next timer is due, or -1 if there is none.
#[no_mangle]
pub extern "C" fn zmq_timers_timeout(t: *mut c_void) -> libc::c_long {
    let Some(t) = timers(t) else { return -1 };
    let now = Instant::now();
    t.timers
        .values()
        .map(|tm| tm.due.saturating_duration_since(now).as_millis() as libc::c_long)
        .min()
        .unwrap_or(-1)
}

#[no_mangle]
pub extern "C" fn zmq_timers_execute(t: *mut c_void) -> i32 {
    let Some(t) = timers(t) else { return -1 };
    let now = Instant::now();
    let due: Vec<(i32, TimerFn, usize)> = t
        .timers
        .iter_mut()
        .filter(|(_, tm)| tm.due <= now)
        .map(|(id, tm)| {
            tm.due = now + tm.interval;
            (*id, tm.handler, tm.arg)
        })
        .collect();
    for (id, f, arg) in due {
        // SAFETY: the handler and argument the caller registered.
        unsafe { f(id, arg as *mut c_void) };
    }
    0
}

#[no_mangle]
pub extern "C" fn zmq_stopwatch_start() -> *mut c_void {
    Box::into_raw(Box::new(Instant::now())) as *mut c_void
}

/// Microseconds since start.
#[no_mangle]
pub extern "C" fn zmq_stopwatch_intermediate(w: *mut c_void) -> libc::c_ulong {
    if w.is_null() {
        return 0;
    }
    // SAFETY: handles come from zmq_stopwatch_start.
    unsafe { (*(w as *const Instant)).elapsed().as_micros() as libc::c_ulong }
}

/// Microseconds since start; frees the stopwatch.
#[no_mangle]
pub extern "C" fn zmq_stopwatch_stop(w: *mut c_void) -> libc::c_ulong {
    let us = zmq_stopwatch_intermediate(w);
    if !w.is_null() {
        // SAFETY: as above; freed once.
        drop(unsafe { Box::from_raw(w as *mut Instant) });
    }
    us
}

#[no_mangle]
pub extern "C" fn zmq_sleep(seconds: i32) {
    std::thread::sleep(Duration::from_secs(seconds.max(0) as u64));
}

type ThreadFn = unsafe extern "C" fn(*mut c_void);

#[no_mangle]
pub extern "C" fn zmq_threadstart(f: Option<ThreadFn>, arg: *mut c_void) -> *mut c_void {
    let Some(f) = f else {
        return std::ptr::null_mut();
    };
    let arg = arg as usize;
    // SAFETY: the caller's function with its argument, as libzmq runs it.
    let handle = std::thread::spawn(move || unsafe { f(arg as *mut c_void) });
    Box::into_raw(Box::new(handle)) as *mut c_void
}

#[no_mangle]
pub extern "C" fn zmq_threadclose(t: *mut c_void) {
    if t.is_null() {
        return;
    }
    // SAFETY: handles come from zmq_threadstart; joined and freed once.
    let handle = unsafe { Box::from_raw(t as *mut std::thread::JoinHandle<()>) };
    let _ = handle.join();
}
