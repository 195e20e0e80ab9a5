//! `ferromq-bench`: throughput and latency of ferromq against libzmq and raw
//! TCP, in the style of libzmq's perf tools (`local_thr`/`remote_thr`,
//! `local_lat`/`remote_lat`).
//!
//! `ferromq-bench run` (the default) runs every selected row for every
//! backend, interleaved, for a few rounds and prints a markdown table of the
//! medians. Each run starts two processes, this binary again with the hidden
//! `role` subcommand: the binder announces its endpoint, the connector
//! follows, and the measuring side reports. Every message carries its
//! sequence number and is checked on arrival; a loss, reordering, failure or
//! timeout marks the row FAILED (it is not retried) and the command exits 1.

mod backend;
mod roles;
mod sock;

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use backend::{Ferromq, FerromqAsync, Libzmq, RawTcp};
use roles::{Job, Role};
use sock::{Result, Transport};

/// Benchmarks ferromq against libzmq and raw TCP (PUSH->PULL throughput,
/// REQ<->REP latency, PUB->SUB delivery and loss), each role in its own process.
#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the benchmarks and print a markdown table (the default).
    Run(RunArgs),
    /// One side of one run (started by `run`).
    #[command(hide = true)]
    Role {
        #[arg(long)]
        backend: Backend,
        #[command(flatten)]
        args: roles::RoleArgs,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Rounds; each round runs every row for every backend in turn [default: 3, 1 with --quick].
    #[arg(long)]
    rounds: Option<usize>,
    /// Tiny message counts (a CI smoke test, not a measurement).
    #[arg(long)]
    quick: bool,
    /// Backends to compare [default: all; zmq.rs when ferromq-bench-peers
    /// has been built beside this binary (see BENCHMARKS.md)].
    #[arg(long, value_delimiter = ',')]
    backends: Vec<Backend>,
    /// Rows, by name (thr-16, thr-256, thr-4k, thr-64k, thr-1m, lat-16, lat-4k,
    /// pub1-64, pub4-64, pub1-64-hwm0, pub4-64-hwm0) or by scenario (thr, lat,
    /// pub) [default: all].
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Message sizes (e.g. 100,2k,1m) replacing those of the selected scenarios.
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Messages (throughput) or round trips (latency) per run [default: sized for --secs].
    #[arg(long)]
    count: Option<u64>,
    /// Rough length of one run, from which counts are derived.
    #[arg(long, default_value_t = 1.0)]
    secs: f64,
    /// A run still going after this many seconds fails.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// tcp and ipc rows: run the binding process on CPU 0 and the
    /// connecting ones on CPU 1 (with `taskset`), the same for every
    /// backend. Unpinned, where the scheduler puts each side's threads
    /// varies from run to run and moves throughput by up to 2x.
    #[arg(long)]
    pin: bool,
}

/// An implementation under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
enum Backend {
    /// ferromq, blocking API.
    Ferromq,
    /// ferromq, async API in a tokio current-thread runtime.
    FerromqAsync,
    /// libzmq through the `zmq` crate.
    Libzmq,
    /// Length-prefixed frames over a buffered `TcpStream`.
    RawTcp,
    /// zmq.rs (the `zeromq` crate), run by `ferromq-bench-peers`.
    #[value(name = "zmq.rs")]
    ZmqRs,
    /// rzmq, run by `ferromq-bench-peers`.
    Rzmq,
    /// OMQ.rs (the `omq-tokio` crate), run by `ferromq-bench-peers`.
    #[value(name = "omq.rs")]
    Omq,
}

impl Backend {
    /// Played by `ferromq-bench-peers` rather than this binary.
    fn is_peer(self) -> bool {
        matches!(self, Backend::ZmqRs | Backend::Rzmq | Backend::Omq)
    }
}

/// The binary that plays the peers' roles, beside this one.
fn peers_exe() -> Result<std::path::PathBuf> {
    Ok(std::env::current_exe()?.with_file_name("ferromq-bench-peers"))
}

impl Backend {
    fn name(self) -> String {
        self.to_possible_value()
            .expect("no skipped variants")
            .get_name()
            .to_owned()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Thr,
    /// As `Thr`, the sender handing over buffers of a pool, without copying
    /// where the library's API takes an owned buffer.
    ThrZc,
    Lat,
    /// PUB -> N SUBs: delivered msgs/s and loss.
    Pub,
    /// A ROUTER holding `count` idle tcp connections: its resident memory.
    Idle,
}

impl Scenario {
    fn prefix(self) -> &'static str {
        match self {
            Scenario::Thr => "thr",
            Scenario::ThrZc => "thrzc",
            Scenario::Lat => "lat",
            Scenario::Pub => "pub",
            Scenario::Idle => "idle",
        }
    }

    /// (binder, connector); the binder starts first and announces its endpoint.
    fn roles(self) -> (Role, Role) {
        match self {
            Scenario::Thr => (Role::ThrRecv, Role::ThrSend),
            Scenario::ThrZc => (Role::ThrRecv, Role::ThrSendPooled),
            Scenario::Lat => (Role::LatRep, Role::LatReq),
            Scenario::Pub => (Role::PubSend, Role::SubRecv),
            Scenario::Idle => (Role::IdleRouter, Role::IdleClients),
        }
    }

    /// Messages or round trips for a run of about `secs` seconds; the costs are
    /// rough figures for the slower backends on a 2-core machine.
    fn count(self, size: usize, secs: f64) -> u64 {
        let per_msg = match self {
            Scenario::Thr | Scenario::ThrZc => 0.4e-6 + size as f64 / 1.0e9,
            Scenario::Lat => 50e-6 + size as f64 / 0.5e9,
            // Kept small: at HWM 0 a publisher faster than its subscribers
            // queues everything in memory.
            Scenario::Pub => 2e-6 + size as f64 / 1.0e9,
            // Connections, not messages: as many as the issue asks for.
            Scenario::Idle => return 10_000,
        };
        let n = secs / per_msg;
        let unit = 10f64.powf(n.log10().floor() - 1.0).max(1.0); // two significant digits
        ((n / unit).round() * unit).max(10.0) as u64
    }
}

#[derive(Clone, Copy, Debug)]
struct Row {
    scenario: Scenario,
    size: usize,
    /// Subscriber processes (1 for the other scenarios).
    subs: u32,
    /// SNDHWM/RCVHWM of every socket (`None`: default).
    hwm: Option<i32>,
    transport: Transport,
}

/// `n` bytes as (number, unit, short unit): 4096 -> (4, "KiB", "k").
fn size_unit(n: usize) -> (usize, &'static str, &'static str) {
    match n {
        n if n % (1 << 20) == 0 => (n >> 20, "MiB", "m"),
        n if n % (1 << 10) == 0 => (n >> 10, "KiB", "k"),
        n => (n, "B", ""),
    }
}

impl Row {
    /// Messages or round trips for a run of about `secs` seconds.
    fn count(self, secs: f64) -> u64 {
        match (self.scenario, self.transport) {
            // Nothing is copied: the payload's size costs nothing.
            (Scenario::ThrZc, Transport::Inproc) => Scenario::ThrZc.count(8, secs / 5.0),
            (scenario, _) => scenario.count(self.size, secs),
        }
    }

    /// `thr-4k`: the name `--rows` takes.
    fn name(self) -> String {
        let (n, _, unit) = size_unit(self.size);
        let transport = match self.transport {
            Transport::Tcp => "",
            Transport::Ipc => "-ipc",
            Transport::Inproc => "-inproc",
        };
        match self.scenario {
            Scenario::Pub => {
                let hwm = self.hwm.map_or(String::new(), |h| format!("-hwm{h}"));
                format!("pub{}-{n}{unit}{hwm}{transport}", self.subs)
            }
            Scenario::Idle => "idle".into(),
            _ => format!("{}-{n}{unit}{transport}", self.scenario.prefix()),
        }
    }

    /// `PUSH->PULL 4 KiB`: the table's scenario column.
    fn label(self) -> String {
        let (n, unit, _) = size_unit(self.size);
        let what = self.what();
        match self.transport {
            Transport::Tcp => what,
            Transport::Ipc => format!("{what} ipc"),
            Transport::Inproc => format!("{what} inproc"),
        }
        .replace("{n}", &n.to_string())
        .replace("{unit}", unit)
    }

    fn what(self) -> String {
        let (n, unit) = ("{n}", "{unit}");
        match self.scenario {
            Scenario::Thr => format!("PUSH->PULL {n} {unit}"),
            Scenario::ThrZc => format!("PUSH->PULL {n} {unit}, zero copy"),
            Scenario::Lat => format!("REQ<->REP {n} {unit}"),
            Scenario::Pub => format!(
                "PUB->{} SUB {n} {unit}, HWM {}",
                self.subs,
                self.hwm.map_or("1000".into(), |h| h.to_string())
            ),
            Scenario::Idle => "ROUTER, idle connections".into(),
        }
    }
}

fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let l = s.to_ascii_lowercase();
    let l = l.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match l.as_bytes().last() {
        Some(b'k') => (&l[..l.len() - 1], 1 << 10),
        Some(b'm') => (&l[..l.len() - 1], 1 << 20),
        _ => (l, 1),
    };
    let n = num
        .trim()
        .parse::<usize>()
        .map_err(|e| format!("{s}: {e}"))?
        * mult;
    if n < 8 {
        return Err(format!("{s}: at least 8 bytes (the sequence number)"));
    }
    Ok(n)
}

fn select_rows(args: &RunArgs) -> Result<Vec<Row>> {
    let row = |scenario, size| Row {
        scenario,
        size,
        subs: 1,
        hwm: None,
        transport: Transport::Tcp,
    };
    let mut all = Vec::new();
    for transport in [Transport::Tcp, Transport::Ipc, Transport::Inproc] {
        let thr = [16, 256, 4 << 10, 64 << 10, 1 << 20].map(|size| row(Scenario::Thr, size));
        let zc = [64 << 10, 1 << 20].map(|size| row(Scenario::ThrZc, size));
        let lat = [16, 4 << 10].map(|size| row(Scenario::Lat, size));
        all.extend(
            thr.into_iter()
                .chain(zc)
                .chain(lat)
                .map(|r| Row { transport, ..r }),
        );
    }
    all.extend(
        [(1, None), (4, None), (1, Some(0)), (4, Some(0))].map(|(subs, hwm)| Row {
            subs,
            hwm,
            ..row(Scenario::Pub, 64)
        }),
    );
    all.push(row(Scenario::Idle, 8)); // no messages to size; 8 passes --size
                                      // By name, by scenario (thr, lat, pub: tcp) or by transport (ipc, inproc).
    let is = |r: &Row, w: &str| {
        r.name() == w
            || (r.scenario.prefix() == w && r.transport == Transport::Tcp)
            || (w == "tcp" && r.transport == Transport::Tcp)
            || (w == "ipc" && r.transport == Transport::Ipc)
            || (w == "inproc" && r.transport == Transport::Inproc)
    };
    if let Some(w) = args.rows.iter().find(|w| !all.iter().any(|r| is(r, w))) {
        return Err(format!("unknown row {w:?}").into());
    }
    let rows: Vec<Row> = all
        .into_iter()
        .filter(|r| args.rows.is_empty() || args.rows.iter().any(|w| is(r, w)))
        .collect();
    if args.sizes.is_empty() {
        return Ok(rows);
    }
    let mut sized: Vec<Row> = Vec::new();
    for r in rows {
        if r.scenario == Scenario::Idle {
            sized.push(r); // no messages to size
            continue;
        }
        for &size in &args.sizes {
            let r = Row { size, ..r };
            if !sized.iter().any(|s| s.name() == r.name()) {
                sized.push(r);
            }
        }
    }
    Ok(sized)
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Throughput: msgs/s; latency: p50 in µs. Compared across rounds and backends.
    main: f64,
    /// Latency: p99 in µs.
    p99: f64,
    /// Publish/subscribe: the share of messages not delivered (0 to 1).
    loss: f64,
    /// Peak resident memory of the binding process, MiB.
    rss_bind: f64,
    /// Peak resident memory of the connecting process (the largest of
    /// them), MiB; 0 when both sides share one process (inproc).
    rss_conn: f64,
}

impl Sample {
    fn show(self, row: Row) -> String {
        match row.scenario {
            Scenario::Thr | Scenario::ThrZc => format!("{} msgs/s", grouped(self.main)),
            Scenario::Lat => format!("p50 {:.1} us, p99 {:.1} us", self.main, self.p99),
            Scenario::Pub => format!(
                "{} msgs/s delivered, {:.2}% lost",
                grouped(self.main),
                self.loss * 100.0
            ),
            Scenario::Idle => format!(
                "{:.1} KiB per connection, {:.1} MiB in all",
                self.main, self.rss_bind
            ),
        }
    }
}

/// The two role processes of one run; killed if still running when dropped.
#[derive(Default)]
struct Procs {
    /// Pin the binder to CPU 0 and the connectors to CPU 1 (see `--pin`).
    pin: bool,
    children: Vec<(Role, Child)>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// The connectors' stdin, closed once the binder is done: a sender
    /// whose library drops its queue at close waits for that EOF.
    stdins: Vec<std::process::ChildStdin>,
}

impl Procs {
    fn spawn(
        &mut self,
        exe: &Path,
        backend: Backend,
        role: Role,
        job: &Job,
        tx: mpsc::Sender<String>,
    ) -> Result<()> {
        self.spawn_with(exe, backend, role, None, job, tx)
    }

    /// One process playing `role` and, in threads, `job.subs` x `peer`.
    fn spawn_inproc(
        &mut self,
        exe: &Path,
        backend: Backend,
        role: Role,
        peer: Role,
        job: &Job,
        tx: mpsc::Sender<String>,
    ) -> Result<()> {
        self.spawn_with(exe, backend, role, Some(peer), job, tx)
    }

    fn spawn_with(
        &mut self,
        exe: &Path,
        backend: Backend,
        role: Role,
        peer_role: Option<Role>,
        job: &Job,
        tx: mpsc::Sender<String>,
    ) -> Result<()> {
        let mut cmd = if self.pin && job.transport != Transport::Inproc {
            let cpu = if self.children.is_empty() { "0" } else { "1" };
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(["role", "--backend", &backend.name()])
            .args([
                "--role",
                role.to_possible_value().expect("named").get_name(),
            ])
            .args([
                "--size",
                &job.size.to_string(),
                "--count",
                &job.count.to_string(),
            ]);
        if let Some(ep) = &job.endpoint {
            cmd.args(["--endpoint", ep]);
        }
        if let Some(peer) = peer_role {
            cmd.args([
                "--peer-role",
                peer.to_possible_value().expect("named").get_name(),
            ]);
        }
        cmd.args([
            "--transport",
            job.transport.to_possible_value().expect("named").get_name(),
        ]);
        cmd.args(["--subs", &job.subs.to_string()]);
        if let Some(hwm) = job.hwm {
            cmd.args(["--hwm", &hwm.to_string()]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stdin(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().expect("piped");
        self.stdins.push(child.stdin.take().expect("piped"));
        self.readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::io::Result::ok)
            {
                let _ = tx.send(line);
            }
        }));
        self.children.push((role, child));
        Ok(())
    }

    /// True once every process has exited successfully; an error as soon as
    /// one fails or `deadline` passes.
    fn poll(&mut self, deadline: Instant, what: &str) -> Result<bool> {
        let mut all = true;
        for (i, (role, child)) in self.children.iter_mut().enumerate() {
            match child.try_wait()? {
                Some(status) if !status.success() => {
                    return Err(format!("{what}: {role:?} failed ({status})").into())
                }
                // The binder (started first) is done: release the others.
                Some(_) if i == 0 => self.stdins.clear(),
                Some(_) => {}
                None => all = false,
            }
        }
        if !all && Instant::now() > deadline {
            return Err(format!("{what}: timed out (messages lost, or a hang)").into());
        }
        Ok(all)
    }

    /// Waits for every process to exit successfully and for all their output.
    fn wait(&mut self, deadline: Instant, what: &str) -> Result<()> {
        while !self.poll(deadline, what)? {
            std::thread::sleep(Duration::from_millis(2));
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Ok(())
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// One run: both roles of `row` with `backend`, in two fresh processes.
fn run_once(
    exe: &Path,
    backend: Backend,
    row: Row,
    count: u64,
    timeout: Duration,
    pin: bool,
) -> Result<Sample> {
    let peers = peers_exe()?;
    let exe = if backend.is_peer() {
        peers.as_path()
    } else {
        exe
    };
    let what = format!("{} {}", backend.name(), row.label());
    let deadline = Instant::now() + timeout;
    let (binder, connector) = row.scenario.roles();
    let mut job = Job {
        role: binder,
        size: row.size,
        count,
        endpoint: None,
        subs: row.subs,
        hwm: row.hwm,
        transport: row.transport,
    };
    let (tx, rx) = mpsc::channel();
    let mut procs = Procs::default();
    procs.pin = pin;
    if row.transport == Transport::Inproc {
        // Both sides in one process: the binder role plays the connectors too.
        procs.spawn_inproc(exe, backend, binder, connector, &job, tx)?;
        procs.wait(deadline, &what)?;
        return sample(row, count, &what, rx.try_iter());
    }
    procs.spawn(exe, backend, binder, &job, tx.clone())?;
    let endpoint = loop {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(10)) {
            break line;
        }
        if procs.poll(deadline, &what)? {
            return Err(format!("{what}: {binder:?} exited without an endpoint").into());
        }
    };
    let endpoint = endpoint.strip_prefix("endpoint ").ok_or("no endpoint")?;
    job.endpoint = Some(endpoint.to_owned());
    for _ in 0..row.subs {
        procs.spawn(exe, backend, connector, &job, tx.clone())?;
    }
    drop(tx);
    procs.wait(deadline, &what)?;
    sample(row, count, &what, rx.try_iter())
}

/// What the role processes of one run reported, as a sample.
fn sample(row: Row, count: u64, what: &str, lines: impl Iterator<Item = String>) -> Result<Sample> {
    // One map per `result` line (one per subscriber in pub rows).
    let results: Vec<HashMap<String, f64>> = lines
        .filter_map(|line| line.strip_prefix("result ").map(str::to_owned))
        .map(|line| {
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect()
        })
        .collect();
    let all = |k: &str| -> Result<Vec<f64>> {
        let v: Vec<f64> = results.iter().filter_map(|r| r.get(k).copied()).collect();
        if v.is_empty() {
            return Err(format!("{what}: no {k} reported").into());
        }
        Ok(v)
    };
    let get = |k: &str| all(k).map(|v| v[0]);
    let mib = |kb: f64| kb / 1024.0;
    let rss_bind = mib(get("peak_bind_kb")?);
    let rss_conn = mib(all("peak_conn_kb").map_or(0.0, |v| v.into_iter().fold(0.0, f64::max)));
    let (main, p99, loss) = match row.scenario {
        // As libzmq's local_thr: messages over the time from first to last.
        Scenario::Thr | Scenario::ThrZc => {
            (count as f64 / (get("elapsed_ns")?.max(1.0) / 1e9), 0.0, 0.0)
        }
        Scenario::Lat => (get("p50_ns")? / 1e3, get("p99_ns")? / 1e3, 0.0),
        // The ROUTER's growth per connection, KiB.
        Scenario::Idle => {
            let (before, with) = (get("rss_before_kb")?, get("rss_with_kb")?);
            let per = (with - before) / count as f64;
            return Ok(Sample {
                main: per,
                p99: 0.0,
                loss: 0.0,
                rss_bind: mib(with),
                rss_conn: 0.0,
            });
        }
        // Delivered: everything every subscriber received, over the longest
        // time one of them took from its first message to its last.
        Scenario::Pub => {
            let received = all("received")?;
            if received.len() != row.subs as usize {
                return Err(format!(
                    "{what}: {} of {} subscribers reported",
                    received.len(),
                    row.subs
                )
                .into());
            }
            let total: f64 = received.iter().sum();
            let longest = all("elapsed_ns")?.into_iter().fold(1.0, f64::max);
            (
                total / (longest / 1e9),
                0.0,
                1.0 - total / (count as f64 * f64::from(row.subs)),
            )
        }
    };
    Ok(Sample {
        main,
        p99,
        loss,
        rss_bind,
        rss_conn,
    })
}

/// The raw baseline is tcp point to point only; zmq.rs runs the point to
/// point rows over tcp and ipc (it has no inproc).
fn applies(backend: Backend, row: Row) -> bool {
    let point_to_point = matches!(
        row.scenario,
        Scenario::Thr | Scenario::ThrZc | Scenario::Lat
    );
    match backend {
        Backend::RawTcp => point_to_point && row.transport == Transport::Tcp,
        Backend::ZmqRs => point_to_point && row.transport != Transport::Inproc,
        Backend::Rzmq | Backend::Omq => point_to_point,
        _ => true,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let (a, b, c) = zmq::version();
    // The tcp rows move with the kernel and its congestion control: on this
    // project's VM, BBR's pacing made raw TCP at 64 KiB ~3x slower than
    // CUBIC (see BENCHMARKS.md, run of 2026-12-07 late evening).
    let proc_line = |path: &str| {
        std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_owned())
    };
    let kernel = proc_line("/proc/sys/kernel/osrelease");
    let cc = proc_line("/proc/sys/net/ipv4/tcp_congestion_control");
    format!(
        "{cores} cores, {cpu}; Linux {kernel}, tcp congestion control {cc}; \
         libzmq {a}.{b}.{c} (zmq crate, built from source)"
    )
}

fn run(args: &RunArgs) -> Result<()> {
    let mut args = args.clone();
    if args.backends.is_empty() {
        args.backends = vec![
            Backend::Ferromq,
            Backend::FerromqAsync,
            Backend::Libzmq,
            Backend::RawTcp,
        ];
        if peers_exe()?.exists() {
            args.backends
                .extend([Backend::ZmqRs, Backend::Rzmq, Backend::Omq]);
        }
    }
    if args.backends.iter().any(|b| b.is_peer()) && !peers_exe()?.exists() {
        return Err(format!(
            "zmq.rs, rzmq, omq.rs: {} is not built (cargo build --release --manifest-path \
             bench-peers/Cargo.toml --target-dir target)",
            peers_exe()?.display()
        )
        .into());
    }
    let args = &args;
    let rows = select_rows(args)?;
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let count = |row: Row| match (args.count, args.quick) {
        (Some(n), _) => n,
        (None, true) if row.scenario == Scenario::Idle => 100,
        // Smoke-test sizes: at most ~1 MiB per run.
        (None, true) => row.count(0.01).min((1 << 20) / row.size as u64).max(2),
        (None, false) => row.count(args.secs),
    };
    let exe = std::env::current_exe()?;
    let timeout = Duration::from_secs(args.timeout);
    let mut samples: HashMap<(usize, Backend), Vec<Sample>> = HashMap::new();
    let mut failed: HashMap<(usize, Backend), String> = HashMap::new();
    for round in 1..=rounds {
        for (i, &row) in rows.iter().enumerate() {
            for &backend in &args.backends {
                if failed.contains_key(&(i, backend)) || !applies(backend, row) {
                    continue; // not again: a hang costs a timeout each time
                }
                let tag = format!(
                    "round {round}/{rounds} {:<8} {:<14}",
                    row.name(),
                    backend.name()
                );
                match run_once(&exe, backend, row, count(row), timeout, args.pin) {
                    Ok(s) => {
                        eprintln!("{tag} {}", s.show(row));
                        samples.entry((i, backend)).or_default().push(s);
                    }
                    Err(e) => {
                        eprintln!("{tag} FAILED: {e}");
                        failed.insert((i, backend), format!("round {round}: {e}"));
                    }
                }
            }
        }
    }

    println!(
        "ferromq-bench: tcp over 127.0.0.1 and ipc with each role in its own process, \
         inproc with both in one; median of {rounds} interleaved round(s)"
    );
    println!("machine: {}\n", machine());
    println!(
        "| scenario | count | backend | msgs/s | MB/s | p50 µs | p99 µs | loss | peak RSS MiB | vs libzmq | spread |"
    );
    println!("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (i, &row) in rows.iter().enumerate() {
        let med = |b: Backend, f: fn(&Sample) -> f64| {
            let v = samples.get(&(i, b))?;
            Some(median(v.iter().map(f).collect()))
        };
        let libzmq = med(Backend::Libzmq, |s| s.main);
        for &b in &args.backends {
            let head = format!(
                "| {} | {} | {}",
                row.label(),
                grouped(count(row) as f64),
                b.name()
            );
            if !applies(b, row) {
                println!("{head} | n/a | | | | | | | |");
                continue;
            }
            if let Some(e) = failed.get(&(i, b)) {
                println!("{head} | **FAILED** | | | | | | | |");
                eprintln!("{} {}: FAILED in {e}", b.name(), row.label());
                continue;
            }
            let main = med(b, |s| s.main).expect("sampled or failed");
            let v = &samples[&(i, b)];
            let lo = v.iter().map(|s| s.main).fold(f64::MAX, f64::min);
            let hi = v.iter().map(|s| s.main).fold(f64::MIN, f64::max);
            let figures = match row.scenario {
                Scenario::Thr | Scenario::ThrZc => format!(
                    "{} | {:.1} | | |",
                    grouped(main),
                    main * row.size as f64 / 1e6
                ),
                Scenario::Lat => {
                    format!("| | {main:.1} | {:.1} |", med(b, |s| s.p99).unwrap_or(0.0))
                }
                Scenario::Pub => format!(
                    "{} | {:.1} | | | {:.2}%",
                    grouped(main),
                    main * row.size as f64 / 1e6,
                    med(b, |s| s.loss).unwrap_or(0.0) * 100.0
                ),
                Scenario::Idle => "| | | |".into(),
            };
            let (rb, rc) = (med(b, |s| s.rss_bind), med(b, |s| s.rss_conn));
            let rss = match (row.scenario, rb, rc) {
                (Scenario::Idle, Some(with), _) => {
                    format!("{with:.1} ({main:.1} KiB per connection)")
                }
                (_, Some(rb), Some(rc)) if rc > 0.0 => format!("{rb:.1} / {rc:.1}"),
                (_, Some(rb), _) => format!("{rb:.1}"),
                _ => String::new(),
            };
            let ratio = libzmq.map_or(String::new(), |l| format!("{:.2}", main / l));
            println!(
                "{head} | {figures} | {rss} | {ratio} | {:.0}% |",
                (hi - lo) / main * 100.0
            );
        }
    }
    println!(
        "\nvs libzmq: throughput: msgs/s ÷ libzmq's (above 1 = faster); latency: p50 ÷ libzmq's \
         (below 1 = faster). p50/p99: one REQ->REP->REQ round trip. \
         PUB rows: msgs/s delivered to all subscribers together (over the longest first-to-last \
         time of one), loss = share of published messages a subscriber did not get. \
         peak RSS: the binding process / the connecting one (the largest, for PUB rows); \
         inproc: the one process. Idle ROUTER row: its RSS holding `count` idle tcp \
         connections (made by a raw ZMTP client process, the same for every backend) and \
         its growth per connection; vs libzmq compares that growth (below 1 = leaner). \
         spread: (max - min) ÷ median over the rounds. MB = 10^6 bytes."
    );
    match failed.len() {
        0 => Ok(()),
        n => Err(format!("{n} row(s) FAILED (see above)").into()),
    }
}

/// Drives a blocking backend's future, which is ready on its first poll.
fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a blocking backend never waits in poll"),
    }
}

fn play(backend: Backend, job: &Job) -> Result<()> {
    match backend {
        Backend::Ferromq => now(roles::run::<Ferromq>(job)),
        Backend::FerromqAsync => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(roles::run::<FerromqAsync>(job)),
        Backend::Libzmq => now(roles::run::<Libzmq>(job)),
        Backend::RawTcp => now(roles::run::<RawTcp>(job)),
        Backend::ZmqRs | Backend::Rzmq | Backend::Omq => {
            Err("peers' roles run in ferromq-bench-peers".into())
        }
    }
}

/// Plays `job` and, when given, `job.subs` connecting `peer` roles in
/// threads of this process (inproc: they share the context).
fn play_all(backend: Backend, args: &roles::RoleArgs) -> Result<()> {
    play_peers(backend, &args.job(), args.peer_job())?;
    roles::report_peak_rss(args.role)
}

fn play_peers(backend: Backend, job: &Job, peer_job: Option<Job>) -> Result<()> {
    let Some(peer_job) = peer_job else {
        return play(backend, job);
    };
    if backend == Backend::FerromqAsync {
        // Every role a task of one current-thread runtime, as an async
        // application has them (and as ferromq-bench-peers runs the async
        // peers' inproc rows).
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let mut roles: Vec<std::pin::Pin<Box<dyn Future<Output = Result<()>>>>> =
                    vec![Box::pin(roles::run::<FerromqAsync>(job))];
                for _ in 0..job.subs {
                    roles.push(Box::pin(roles::run::<FerromqAsync>(&peer_job)));
                }
                join_all(roles).await
            });
    }
    std::thread::scope(|s| {
        let peers: Vec<_> = (0..job.subs)
            .map(|_| s.spawn(|| play(backend, &peer_job)))
            .collect();
        let mine = play(backend, job);
        for p in peers {
            p.join().map_err(|_| "a peer thread panicked")??;
        }
        mine
    })
}

/// Runs `futs` to completion together; the first error, if any.
async fn join_all(
    mut futs: Vec<std::pin::Pin<Box<dyn Future<Output = Result<()>> + '_>>>,
) -> Result<()> {
    let mut first_err = None;
    std::future::poll_fn(|cx| {
        futs.retain_mut(|f| match f.as_mut().poll(cx) {
            Poll::Ready(r) => {
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
                false
            }
            Poll::Pending => true,
        });
        if futs.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    first_err.map_or(Ok(()), Err)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        None => run(&cli.run),
        Some(Cmd::Run(args)) => run(&args),
        Some(Cmd::Role { backend, args }) => play_all(backend, &args)
            .map_err(|e| format!("{} {:?}: {e}", backend.name(), args.role).into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferromq-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
