//! The four roles, each written once over [`Sock`]; one role per process.
//!
//! A role talks to the parent on stdout: a binder first prints
//! `endpoint <ep>`, and the measuring side ends with `result <k>=<v>...`.

use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::backend::{Kind, Result, Sock};

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
}

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
            let (mut s, ep) = S::bind(Kind::Pull).await?;
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
            let mut s = S::connect(Kind::Push, endpoint(job)?).await?;
            for seq in 0..job.count {
                stamp(&mut buf, seq);
                s.send(&buf).await?;
            }
            s.close().await?;
        }
        Role::LatRep => {
            let (mut s, ep) = S::bind(Kind::Rep).await?;
            println!("endpoint {ep}");
            for seq in 0..warmup(job.count) + job.count {
                check(s.recv().await?, seq, job.size)?;
                stamp(&mut buf, seq);
                s.send(&buf).await?;
            }
            s.close().await?;
        }
        Role::LatReq => {
            let mut s = S::connect(Kind::Req, endpoint(job)?).await?;
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
    }
    Ok(())
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
