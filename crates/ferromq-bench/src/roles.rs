//! The four roles, each written once over [`Sock`]; one role per process.
//!
//! A role talks to the parent on stdout: a binder first prints
//! `endpoint <ep>`, and the measuring side ends with `result <k>=<v>...`.

use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::backend::{Kind, Result, Setup, Sock, Transport};

/// One side of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// PULL: binds, receives and checks `count` messages, times first to last.
    ThrRecv,
    /// PUSH: connects and sends `count` messages, then flushes.
    ThrSend,
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

/// Plays `job.role` with backend `S`.
pub async fn run<S: Sock>(job: &Job) -> Result<()> {
    let mut buf = vec![0u8; job.size];
    match job.role {
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
