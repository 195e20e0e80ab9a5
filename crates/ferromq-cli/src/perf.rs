//! `ferromq perf`: a quick local throughput and latency test, both sides in
//! this process (over tcp loopback, ipc or inproc), with a progress display.
//! For side-by-side figures against libzmq, use `ferromq-bench`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ferromq::{Bytes, Context, Socket, SocketType};

use crate::Fail;

/// `ferromq perf` arguments.
#[derive(Args, Debug, Clone)]
pub struct PerfArgs {
    /// Where the messages travel.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
    /// Message size in bytes (at least 8: a sequence number is checked).
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    size: usize,
    /// Seconds for each of the two tests.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    secs: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Transport {
    Tcp,
    Ipc,
    Inproc,
}

impl Transport {
    fn endpoint(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp://127.0.0.1:*",
            Transport::Ipc => "ipc://*",
            Transport::Inproc => "inproc://ferromq-perf",
        }
    }
}

/// The sequence number of the sender's last message.
const END: u64 = u64::MAX;
const WAIT: Duration = Duration::from_secs(10);

fn stamp(buf: &mut [u8], seq: u64) -> Bytes {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    Bytes::copy_from_slice(buf)
}

fn sequence(frame: &[u8], size: usize) -> Result<u64, Fail> {
    match frame.get(..8) {
        Some(b) if frame.len() == size => Ok(u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        _ => Err(Fail(format!(
            "a message of {} bytes, not {size}",
            frame.len()
        ))),
    }
}

/// `1234567.8` as `1,234,568`.
fn grouped(n: f64) -> String {
    let s = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Redraws one status line on a terminal (nothing when stderr is not one).
struct Progress {
    tty: bool,
}

impl Progress {
    fn show(&self, what: &str, done: f64, figure: &str) {
        if !self.tty {
            return;
        }
        let width = 30;
        let filled = ((done.clamp(0.0, 1.0)) * width as f64) as usize;
        let bar: String = "=".repeat(filled) + &" ".repeat(width - filled);
        eprint!("\r{what:<10} [{bar}] {figure:<40}");
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.tty {
            eprint!("\r{:<90}\r", "");
        }
    }
}

fn sock(ctx: &Context, kind: SocketType) -> Result<Socket, Fail> {
    let s = ctx.socket(kind)?;
    s.set_rcvtimeo(Some(WAIT));
    s.set_sndtimeo(Some(WAIT));
    Ok(s)
}

/// Runs both tests and prints their figures.
pub fn run(args: &PerfArgs) -> Result<(), Fail> {
    if !(args.secs > 0.0 && args.secs < 3600.0) {
        return Err(Fail("--secs must be between 0 and 3600".into()));
    }
    let size = args.size.max(8);
    let secs = Duration::from_secs_f64(args.secs);
    let progress = Progress {
        tty: std::io::stderr().is_terminal(),
    };
    let ctx = Context::new();
    println!(
        "ferromq perf: {} {size}-byte messages, both sides in this process",
        args.transport
            .to_possible_value()
            .expect("no skipped variants")
            .get_name()
    );
    let perf = Perf {
        ctx: &ctx,
        transport: args.transport,
        size,
        secs,
        progress: &progress,
    };
    perf.throughput()?;
    perf.latency()
}

/// What both tests share.
struct Perf<'a> {
    ctx: &'a Context,
    transport: Transport,
    size: usize,
    secs: Duration,
    progress: &'a Progress,
}

impl Perf<'_> {
    fn throughput(&self) -> Result<(), Fail> {
        let Perf {
            ctx,
            transport,
            size,
            secs,
            progress,
        } = *self;
        let pull = sock(ctx, SocketType::Pull)?;
        pull.bind(transport.endpoint())?;
        let push = sock(ctx, SocketType::Push)?;
        push.connect(&pull.last_endpoint())?;
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || -> Result<u64, Fail> {
                let mut buf = vec![0u8; size];
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    push.send(stamp(&mut buf, seq)).map_err(|e| e.error)?;
                    seq += 1;
                }
                push.send(stamp(&mut buf, END)).map_err(|e| e.error)?;
                Ok(seq)
            })
        };
        let receiver = {
            let received = received.clone();
            std::thread::spawn(move || -> Result<(u64, Duration), Fail> {
                let mut next = 0;
                let mut first: Option<Instant> = None;
                loop {
                    let msg = pull.recv()?;
                    let seq = sequence(&msg[0], size)?;
                    if seq == END {
                        let elapsed = first.map_or(Duration::ZERO, |t| t.elapsed());
                        return Ok((next, elapsed));
                    }
                    if seq != next {
                        return Err(Fail(format!("message {seq} arrived when {next} was due")));
                    }
                    first.get_or_insert_with(Instant::now);
                    next += 1;
                    received.store(next, Ordering::Relaxed);
                }
            })
        };
        let start = Instant::now();
        while start.elapsed() < secs {
            std::thread::sleep(Duration::from_millis(100).min(secs));
            let t = start.elapsed().as_secs_f64();
            let rate = received.load(Ordering::Relaxed) as f64 / t;
            progress.show(
                "throughput",
                t / secs.as_secs_f64(),
                &format!("{} msgs/s", grouped(rate)),
            );
        }
        stop.store(true, Ordering::Relaxed);
        let sent = sender
            .join()
            .map_err(|_| Fail("sender panicked".into()))??;
        let (got, elapsed) = receiver
            .join()
            .map_err(|_| Fail("receiver panicked".into()))??;
        progress.clear();
        if got != sent {
            return Err(Fail(format!("sent {sent} messages, {got} arrived")));
        }
        let rate = got as f64 / elapsed.as_secs_f64().max(1e-9);
        println!(
        "throughput: {} msgs/s, {:.1} MB/s  (PUSH->PULL, {} messages in {:.2} s, all checked in order)",
        grouped(rate),
        rate * size as f64 / 1e6,
        grouped(got as f64),
        elapsed.as_secs_f64()
    );
        Ok(())
    }

    fn latency(&self) -> Result<(), Fail> {
        let Perf {
            ctx,
            transport,
            size,
            secs,
            progress,
        } = *self;
        let rep = sock(ctx, SocketType::Rep)?;
        let ep = match transport {
            Transport::Inproc => "inproc://ferromq-perf-lat",
            t => t.endpoint(),
        };
        rep.bind(ep)?;
        let req = sock(ctx, SocketType::Req)?;
        req.connect(&rep.last_endpoint())?;
        let echo = std::thread::spawn(move || -> Result<(), Fail> {
            loop {
                let msg = rep.recv()?;
                let end = sequence(&msg[0], size)? == END;
                rep.send(msg).map_err(|e| e.error)?;
                if end {
                    return Ok(());
                }
            }
        });
        let mut buf = vec![0u8; size];
        let mut times = Vec::new();
        let start = Instant::now();
        let mut last_shown = start;
        let mut seq = 0;
        while start.elapsed() < secs {
            let t = Instant::now();
            req.send(stamp(&mut buf, seq)).map_err(|e| e.error)?;
            let reply = req.recv()?;
            if sequence(&reply[0], size)? != seq {
                return Err(Fail(format!("reply {seq} does not match its request")));
            }
            times.push(t.elapsed());
            seq += 1;
            if last_shown.elapsed() > Duration::from_millis(100) {
                last_shown = Instant::now();
                let mut recent = times[times.len().saturating_sub(1000)..].to_vec();
                recent.sort_unstable();
                progress.show(
                    "latency",
                    start.elapsed().as_secs_f64() / secs.as_secs_f64(),
                    &format!("p50 {:.1} us", recent[recent.len() / 2].as_secs_f64() * 1e6),
                );
            }
        }
        req.send(stamp(&mut buf, END)).map_err(|e| e.error)?;
        req.recv()?;
        echo.join().map_err(|_| Fail("echo panicked".into()))??;
        progress.clear();
        times.sort_unstable();
        let pct = |p: f64| {
            let i = ((p / 100.0 * times.len() as f64).ceil() as usize).clamp(1, times.len());
            times[i - 1].as_secs_f64() * 1e6
        };
        println!(
            "latency:    p50 {:.1} us, p99 {:.1} us  (REQ<->REP round trip, {} round trips)",
            pct(50.0),
            pct(99.0),
            grouped(times.len() as f64)
        );
        Ok(())
    }
}
