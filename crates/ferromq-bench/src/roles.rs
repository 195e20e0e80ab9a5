//! The four roles, each written once over [`Sock`]; one role per process.
//!
//! A role talks to the parent on stdout: a binder first prints
//! `endpoint <ep>`, and the measuring side ends with `result <k>=<v>...`.

use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::sock::{Kind, PoolBuf, Result, Setup, Sock, Transport};

/// One side of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// PULL: binds, receives and checks `count` messages, times first to last.
    ThrRecv,
    /// PUSH: connects and sends `count` messages, then flushes.
    ThrSend,
    /// PUSH, zero copy: as `ThrSend`, each message a buffer of a pool the
    /// library takes without copying where its API allows.
    ThrSendPooled,
    /// REP: binds and answers every request.
    LatRep,
    /// REQ: connects and times each round trip.
    LatReq,
    /// XPUB: binds, waits for `subs` subscribers, publishes `count`
    /// messages, then end markers until every subscriber has left.
    PubSend,
    /// SUB: connects, subscribes to everything and checks what arrives
    /// (in order, no duplicates; losses are counted, not errors).
    SubRecv,
    /// ROUTER: binds, takes `count` connections (one message from each) and
    /// reports its resident memory before and with them.
    IdleRouter,
    /// `count` tcp connections that each say hello as a ZMTP DEALER and then
    /// stay idle until the ROUTER closes them (the same for every backend).
    IdleClients,
}

impl Role {
    /// Whether this role binds (and so starts first).
    pub fn binds(self) -> bool {
        matches!(
            self,
            Role::ThrRecv | Role::LatRep | Role::PubSend | Role::IdleRouter
        )
    }
}

/// The sequence number of the publisher's end marker.
const END: u64 = u64::MAX;

/// What one role process is asked to do.
#[derive(Clone, Debug)]
pub struct Job {
    /// The side to play.
    pub role: Role,
    /// Message size in bytes (at least 8: the sequence number).
    pub size: usize,
    /// Messages (throughput) or timed round trips (latency).
    pub count: u64,
    /// Where to connect (connecting roles only).
    pub endpoint: Option<String>,
    /// Subscribers the publisher waits for.
    pub subs: u32,
    /// SNDHWM and RCVHWM (`None`: default).
    pub hwm: Option<i32>,
    /// Where the messages travel.
    pub transport: Transport,
}

/// The arguments of the hidden `role` subcommand, the same for
/// ferromq-bench and ferromq-bench-peers (which gets them from it).
#[derive(clap::Args, Clone, Debug)]
pub struct RoleArgs {
    #[arg(long)]
    pub role: Role,
    #[arg(long)]
    pub size: usize,
    #[arg(long)]
    pub count: u64,
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub subs: u32,
    #[arg(long)]
    pub hwm: Option<i32>,
    #[arg(long, default_value = "tcp")]
    pub transport: Transport,
    /// inproc: also play `subs` connecting roles of this kind in this process.
    #[arg(long)]
    pub peer_role: Option<Role>,
}

impl RoleArgs {
    /// The job of the role this process plays.
    pub fn job(&self) -> Job {
        Job {
            role: self.role,
            size: self.size,
            count: self.count,
            endpoint: self.endpoint.clone(),
            subs: self.subs,
            hwm: self.hwm,
            transport: self.transport,
        }
    }

    /// The job of the connecting roles played beside it over inproc.
    pub fn peer_job(&self) -> Option<Job> {
        self.peer_role.map(|role| Job {
            role,
            endpoint: Some(Transport::Inproc.bind_endpoint()),
            ..self.job()
        })
    }
}

impl Job {
    fn setup(&self, kind: Kind) -> Setup {
        Setup {
            kind,
            hwm: self.hwm,
            transport: self.transport,
        }
    }
}

/// Untimed round trips before a latency measurement.
pub fn warmup(count: u64) -> u64 {
    (count / 10).clamp(1, 1000)
}

/// Writes the sequence number into the first 8 bytes of a payload.
fn stamp(buf: &mut [u8], seq: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Fails unless `msg` is message number `seq` of `size` bytes.
fn check(msg: &[u8], seq: u64, size: usize) -> Result<()> {
    let got = msg
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    if msg.len() != size || got != Some(seq) {
        let got = got.map_or("none".into(), |g| g.to_string());
        return Err(format!(
            "message {seq} lost, reordered or corrupted: got sequence {got} in {} bytes, \
             want sequence {seq} in {size} bytes",
            msg.len()
        )
        .into());
    }
    Ok(())
}

/// Percentile `p` (0-100) of sorted samples, nearest rank.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn endpoint(job: &Job) -> Result<&str> {
    job.endpoint
        .as_deref()
        .ok_or_else(|| "--endpoint is required".into())
}

/// A line of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`: peak RSS).
pub fn status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status").into())
}

/// Prints this process's peak RSS as the binder's or a connector's.
pub fn report_peak_rss(role: Role) -> Result<()> {
    let side = if role.binds() { "bind" } else { "conn" };
    println!("result peak_{side}_kb={}", status_kb("VmHWM")?);
    Ok(())
}

/// What a ZMTP 3.1 DEALER with the NULL mechanism says first: its greeting
/// and READY (RFC 23; byte layouts as in ferromq-proto's wire tests).
fn dealer_hello() -> Vec<u8> {
    let mut b = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 1];
    b.extend_from_slice(b"NULL");
    b.resize(12 + 20, 0); // mechanism, zero padded
    b.push(0); // as-server
    b.resize(64, 0); // filler
    let mut ready = vec![5];
    ready.extend_from_slice(b"READY");
    ready.push(11);
    ready.extend_from_slice(b"Socket-Type");
    ready.extend_from_slice(&6u32.to_be_bytes());
    ready.extend_from_slice(b"DEALER");
    b.extend_from_slice(&[0x04, ready.len() as u8]);
    b.extend_from_slice(&ready);
    b
}

/// A one-frame message "hi".
const HI: [u8; 4] = [0x00, 2, b'h', b'i'];

/// The `IdleClients` role: needs no backend.
pub fn idle_clients(job: &Job) -> Result<()> {
    use std::io::Read;
    use std::io::Write;
    let addr = endpoint(job)?
        .strip_prefix("tcp://")
        .ok_or("idle connections are tcp only")?;
    let hello = dealer_hello();
    let mut conns = Vec::with_capacity(job.count as usize);
    for _ in 0..job.count {
        let mut c = std::net::TcpStream::connect(addr)?;
        c.write_all(&hello)?;
        // The ROUTER's greeting and READY: messages may follow only then
        // (libzmq takes an early one for a bad command). Waiting for them
        // also keeps the listen backlog from overflowing.
        let mut greeting = [0u8; 64];
        c.read_exact(&mut greeting)?;
        if greeting[0] != 0xFF || greeting[9] != 0x7F {
            return Err("not a ZMTP greeting".into());
        }
        let mut head = [0u8; 2];
        c.read_exact(&mut head)?;
        if head[0] != 0x04 {
            return Err(format!("expected a short READY command, got flags {:#x}", head[0]).into());
        }
        c.read_exact(&mut vec![0u8; usize::from(head[1])])?;
        c.write_all(&HI)?;
        conns.push(c);
    }
    // Idle until the ROUTER has measured and closes them.
    for mut c in conns {
        std::io::copy(&mut c, &mut std::io::sink())?;
    }
    Ok(())
}

/// Plays `job.role` with backend `S`.
pub async fn run<S: Sock>(job: &Job) -> Result<()> {
    let mut buf = vec![0u8; job.size];
    match job.role {
        Role::IdleRouter => {
            let (mut s, ep) = S::bind(job.setup(Kind::Router)).await?;
            let before = status_kb("VmRSS")?;
            println!("endpoint {ep}");
            for _ in 0..job.count {
                let frames = s.recv_frames().await?;
                if frames != 2 {
                    return Err(format!("expected [routing id, hi], got {frames} frames").into());
                }
            }
            let with = status_kb("VmRSS")?;
            println!("result rss_before_kb={before} rss_with_kb={with}");
            s.close().await?;
        }
        Role::IdleClients => idle_clients(job)?,
        Role::ThrRecv => {
            let (mut s, ep) = S::bind(job.setup(Kind::Pull)).await?;
            println!("endpoint {ep}");
            let mut start = None;
            for seq in 0..job.count {
                check(s.recv().await?, seq, job.size)?;
                start.get_or_insert_with(Instant::now);
            }
            let elapsed = start.map_or(Duration::ZERO, |t| t.elapsed());
            s.close().await?;
            println!("result elapsed_ns={}", elapsed.as_nanos());
        }
        Role::ThrSend => {
            let mut s = S::connect(job.setup(Kind::Push), endpoint(job)?).await?;
            for seq in 0..job.count {
                stamp(&mut buf, seq);
                s.send(&buf).await?;
            }
            s.close().await?;
        }
        Role::ThrSendPooled => {
            // As many buffers as can be in flight: SNDHWM and (inproc) RCVHWM
            // messages, a few more in the library's hands, at most ~1 GiB.
            let in_flight = 2100.min(job.count as usize).min((1 << 30) / job.size + 1);
            PoolBuf::prefill(job.size, in_flight);
            let mut s = S::connect(job.setup(Kind::Push), endpoint(job)?).await?;
            for seq in 0..job.count {
                let mut buf = PoolBuf::get(job.size);
                stamp(&mut buf, seq);
                s.send_pooled(buf).await?;
            }
            s.close().await?;
        }
        Role::LatRep => {
            let (mut s, ep) = S::bind(job.setup(Kind::Rep)).await?;
            println!("endpoint {ep}");
            for seq in 0..warmup(job.count) + job.count {
                check(s.recv().await?, seq, job.size)?;
                stamp(&mut buf, seq);
                s.send(&buf).await?;
            }
            s.close().await?;
        }
        Role::LatReq => {
            let mut s = S::connect(job.setup(Kind::Req), endpoint(job)?).await?;
            let warm = warmup(job.count);
            let mut times = Vec::with_capacity(job.count as usize);
            for seq in 0..warm + job.count {
                stamp(&mut buf, seq);
                let t = Instant::now();
                s.send(&buf).await?;
                check(s.recv().await?, seq, job.size)?;
                if seq >= warm {
                    times.push(t.elapsed());
                }
            }
            s.close().await?;
            times.sort_unstable();
            println!(
                "result p50_ns={} p99_ns={}",
                percentile(&times, 50.0).as_nanos(),
                percentile(&times, 99.0).as_nanos()
            );
        }
        Role::PubSend => {
            let (mut s, ep) = S::bind(job.setup(Kind::XPub)).await?;
            println!("endpoint {ep}");
            // A verbose XPUB passes up every subscription: once all are in,
            // no subscriber misses the start.
            let mut subscribed = 0;
            while subscribed < job.subs {
                subscribed += u32::from(s.recv().await?.first() == Some(&1));
            }
            let start = Instant::now();
            for seq in 0..job.count {
                stamp(&mut buf, seq);
                s.send(&buf).await?;
            }
            let elapsed = start.elapsed();
            // A full subscriber drops an end marker like anything else, so
            // send them until the cancel of the last subscriber's
            // subscription says all have finished.
            stamp(&mut buf, END);
            loop {
                s.send(&buf).await?;
                if s.recv_briefly().await? == Some(&[0u8][..]) {
                    break;
                }
            }
            s.close().await?;
            println!("result publish_ns={}", elapsed.as_nanos());
        }
        Role::SubRecv => {
            let mut s = S::connect(job.setup(Kind::Sub), endpoint(job)?).await?;
            let (mut received, mut next) = (0u64, 0u64);
            let mut first_last: Option<(Instant, Instant)> = None;
            loop {
                let msg = s.recv().await?;
                let seq = sequence(msg, job.size)?;
                if seq == END {
                    break;
                }
                if seq < next || seq >= job.count {
                    return Err(
                        format!("message {seq} after {next}: duplicated or reordered").into(),
                    );
                }
                next = seq + 1;
                received += 1;
                let now = Instant::now();
                first_last = Some((first_last.map_or(now, |(f, _)| f), now));
            }
            s.close().await?;
            let elapsed = first_last.map_or(Duration::ZERO, |(f, l)| l - f);
            println!(
                "result received={received} elapsed_ns={}",
                elapsed.as_nanos()
            );
        }
    }
    Ok(())
}

/// The sequence number of a `size`-byte message.
fn sequence(msg: &[u8], size: usize) -> Result<u64> {
    match msg.get(..8) {
        Some(b) if msg.len() == size => Ok(u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        _ => Err(format!("malformed message of {} bytes", msg.len()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_check_percentile() {
        let mut buf = vec![0u8; 16];
        stamp(&mut buf, 7);
        assert!(check(&buf, 7, 16).is_ok());
        assert!(check(&buf, 8, 16).is_err());
        assert!(check(&buf[..12], 7, 16).is_err());
        let v: Vec<_> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&v[..1], 99.0), Duration::from_micros(1));
    }
}
