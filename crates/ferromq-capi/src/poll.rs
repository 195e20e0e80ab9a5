//! `zmq_poll`: level-triggered over ZeroMQ sockets and raw fds.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use crate::errno::fail;
use crate::guard;
use crate::socket::Sock;

const POLLIN: i16 = 1;
const POLLOUT: i16 = 2;
const POLLERR: i16 = 4;
const POLLPRI: i16 = 8;

/// libzmq's `zmq_pollitem_t`: 16 bytes, fd at offset 8, events at 12.
#[repr(C)]
pub struct PollItem {
    pub socket: *mut c_void,
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

const _: () = assert!(std::mem::size_of::<PollItem>() == 16);

#[no_mangle]
pub extern "C" fn zmq_poll(items: *mut PollItem, nitems: i32, timeout: libc::c_long) -> i32 {
    guard(-1, || {
        if nitems < 0 || (nitems > 0 && items.is_null()) {
            return fail(libc::EINVAL, -1);
        }
        let deadline =
            (timeout >= 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
        if nitems == 0 {
            // libzmq sleeps for the timeout when given nothing to poll.
            match deadline {
                Some(d) => std::thread::sleep(d.saturating_duration_since(Instant::now())),
                None => return fail(libc::EFAULT, -1),
            }
            return 0;
        }
        // SAFETY: the caller passes `nitems` items.
        let items = unsafe { std::slice::from_raw_parts_mut(items, nitems as usize) };
        let mut socks = Vec::with_capacity(items.len());
        for it in items.iter() {
            if it.socket.is_null() {
                socks.push(None);
            } else {
                match Sock::get(it.socket) {
                    Some(s) => socks.push(Some(s)),
                    None => return -1,
                }
            }
        }
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(items.len());
        loop {
            // Socket readiness first: reading it also resets each socket's fd,
            // so any change from here on wakes the poll below.
            let mut ready = 0;
            fds.clear();
            for (it, s) in items.iter_mut().zip(&socks) {
                it.revents = 0;
                match s {
                    Some(s) => {
                        it.revents = (s.events() as i16) & it.events & (POLLIN | POLLOUT);
                        let fd = match s.sock.readiness_fd() {
                            Ok(fd) => std::os::fd::AsRawFd::as_raw_fd(&fd),
                            Err(_) => return fail(libc::EFAULT, -1),
                        };
                        fds.push(libc::pollfd {
                            fd,
                            events: libc::POLLIN,
                            revents: 0,
                        });
                    }
                    None => {
                        let mut ev = 0;
                        if it.events & POLLIN != 0 {
                            ev |= libc::POLLIN;
                        }
                        if it.events & POLLOUT != 0 {
                            ev |= libc::POLLOUT;
                        }
                        if it.events & POLLPRI != 0 {
                            ev |= libc::POLLPRI;
                        }
                        fds.push(libc::pollfd {
                            fd: it.fd,
                            events: ev,
                            revents: 0,
                        });
                    }
                }
                if it.revents != 0 {
                    ready += 1;
                }
            }
            let wait_ms = if ready > 0 {
                0
            } else {
                match deadline {
                    None => -1,
                    Some(d) => d
                        .saturating_duration_since(Instant::now())
                        .as_millis()
                        .min(i32::MAX as u128) as i32,
                }
            };
            // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
            if rc < 0 {
                return -1; // errno set by poll (EINTR included, as libzmq reports it)
            }
            for ((it, s), pfd) in items.iter_mut().zip(&socks).zip(&fds) {
                if s.is_none() {
                    let mut r = 0;
                    if pfd.revents & libc::POLLIN != 0 {
                        r |= POLLIN;
                    }
                    if pfd.revents & libc::POLLOUT != 0 {
                        r |= POLLOUT;
                    }
                    if pfd.revents & libc::POLLPRI != 0 {
                        r |= POLLPRI;
                    }
                    if pfd.revents & !(libc::POLLIN | libc::POLLOUT | libc::POLLPRI) != 0 {
                        r |= POLLERR;
                    }
                    if r != 0 && it.revents == 0 {
                        ready += 1;
                    }
                    it.revents = r;
                }
            }
            if ready > 0 {
                return ready;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return 0;
            }
        }
    })
}
