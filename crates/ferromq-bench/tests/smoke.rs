//! CI smoke test: `ferromq-bench run --quick` completes and reports every
//! selected backend on every row.

use std::process::Command;

#[test]
fn quick_run_reports_every_backend() {
    let mut backends = vec!["ferromq", "ferromq-async", "libzmq", "raw-tcp"];
    // zmq.rs, rzmq and OMQ.rs run in ferromq-bench-peers (bench-peers/, built by
    // .ci/run beside this binary); required in CI, optional elsewhere.
    let peers = std::path::Path::new(env!("CARGO_BIN_EXE_ferromq-bench"))
        .with_file_name("ferromq-bench-peers");
    if std::env::var_os("CI").is_some() {
        assert!(peers.exists(), "{} is not built", peers.display());
    }
    if peers.exists() {
        backends.extend(["zmq.rs", "rzmq", "omq.rs"]);
    }
    let run = |backends: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferromq-bench"))
            .args([
                "run",
                "--quick",
                "--timeout",
                "30",
                "--backends",
                &backends.join(","),
            ])
            .output()
            .expect("ferromq-bench runs")
    };
    let failed_rows = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .filter(|l| l.contains("**FAILED**"))
            .map(str::to_owned)
            .collect()
    };
    let out = run(&backends);
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let failed = failed_rows(&stdout);
    if !failed.is_empty() {
        eprintln!("failed rows: {failed:?}");
    }
    // libzmq 4.3.4 (the zmq crate's) loses messages over ipc now and then
    // (also with both sides libzmq, outside this harness): its ipc rows may
    // fail. The pure-Rust peers have hung now and then in one row (rzmq
    // over inproc, once in many CI runs, not reproduced in 8 runs of that
    // row alone): a peer that failed gets one more whole run of its own,
    // which must pass, and its rows are checked from that run. Any other
    // failure (ferromq's, raw TCP's, or the harness's) fails the test.
    let libzmq_ipc = |l: &str| l.contains("| libzmq |") && l.contains(" ipc |");
    let peer_of = |l: &str| {
        ["zmq.rs", "rzmq", "omq.rs"]
            .into_iter()
            .find(|p| l.contains(&format!("| {p} |")))
    };
    assert!(
        out.status.success() || failed.iter().all(|l| libzmq_ipc(l) || peer_of(l).is_some()),
        "ferromq-bench failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut again: Vec<&str> = failed.iter().filter_map(|l| peer_of(l)).collect();
    again.dedup();
    for peer in again {
        let out = run(&[peer]);
        let rerun = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{peer} failed twice ({}):\n{rerun}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let tag = format!("| {peer} |");
        stdout = stdout
            .lines()
            .filter(|l| !l.contains(&tag))
            .chain(rerun.lines().filter(|l| l.contains(&tag)))
            .collect::<Vec<_>>()
            .join("\n");
    }
    // Table rows: | scenario | count | backend | msgs/s | ...
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scenario"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let scenarios: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    for scenario in [
        "PUSH->PULL 16 B",
        "PUSH->PULL 1 MiB",
        "REQ<->REP 4 KiB",
        "PUB->4 SUB 64 B, HWM 0",
        "PUSH->PULL 16 B ipc",
        "REQ<->REP 16 B inproc",
        "PUSH->PULL 1 MiB inproc",
        "PUSH->PULL 64 KiB, zero copy",
        "PUSH->PULL 1 MiB, zero copy inproc",
        "ROUTER, idle connections",
    ] {
        assert!(
            scenarios.contains(&scenario),
            "no {scenario} row:\n{stdout}"
        );
    }
    for backend in backends {
        let mine: Vec<_> = rows.iter().filter(|r| r[3] == backend).collect();
        assert_eq!(
            mine.len(),
            32,
            "{backend}: want one row per scenario:\n{stdout}"
        );
        // The raw baseline is tcp point to point, zmq.rs runs point to
        // point over tcp and ipc, rzmq over every transport: other rows
        // say n/a.
        let not_point_to_point =
            |r: &Vec<&str>| r[1].starts_with("PUB") || r[1].starts_with("ROUTER");
        let raw_only_tcp = |r: &Vec<&str>| match backend {
            "raw-tcp" => not_point_to_point(r) || r[1].ends_with("ipc") || r[1].ends_with("inproc"),
            "zmq.rs" => not_point_to_point(r) || r[1].ends_with("inproc"),
            "rzmq" | "omq.rs" => not_point_to_point(r),
            _ => false,
        };
        // Figures: msgs/s (throughput, pub), p50 (latency) or the idle
        // ROUTER's memory; and every measured row has its peak RSS.
        let known_failure =
            |r: &Vec<&str>| backend == "libzmq" && r[1].ends_with("ipc") && r[4].contains("FAILED");
        assert!(
            mine.iter().all(|r| known_failure(r)
                || !r[4].contains("FAILED")
                    && (r[4] == "n/a" || !r[9].is_empty())
                    && (!r[4].is_empty() || !r[6].is_empty() || r[1].starts_with("ROUTER"))
                    && (r[4] != "n/a" || raw_only_tcp(r))),
            "{backend}: a row without figures:\n{stdout}"
        );
        // At HWM 0 nothing may be lost.
        for r in mine
            .iter()
            .filter(|r| r[1].ends_with("HWM 0") && r[4] != "n/a")
        {
            assert_eq!(r[8], "0.00%", "{backend} lost messages at HWM 0:\n{stdout}");
        }
    }
}
