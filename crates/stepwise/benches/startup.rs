//! Start-up cost of the `stepwise` binary (`cargo bench -p stepwise --bench startup`).
//!
//! Runs, alternately and N times each (default 40; `-- N` for another count), `jq -n 1` (the
//! baseline: a small native program), `stepwise run` of a process with one no-data start and a
//! stop (`--no-history`), and `stepwise validate` of that file. Each run goes through
//! `/usr/bin/time -f %M` for its peak resident memory (whole process). Prints the median and p90
//! wall time and the median peak RSS of each, and each as a ratio of the baseline's.
//!
//! Under `cargo test --benches` (no `--bench` argument) it runs 3 times each, as a smoke test.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PROCESS: &str = "name: startup\nstart: {type: no_data, next: done}\nsteps:\n  done: {type: stop}\n";

struct Sample {
    wall: Duration,
    rss_kib: u64,
}

/// One run of `program args` under `/usr/bin/time -f %M`.
fn sample(program: &str, args: &[&str], cwd: &Path) -> Sample {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .env_remove("STEPWISE_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run /usr/bin/time {program}: {e} (apt-get install time)"));
    let wall = started.elapsed();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss_kib = stderr.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    Sample { wall, rss_kib }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(if benchmarking { 40 } else { 3 });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("p.yaml"), PROCESS).expect("writing the process");
    let stepwise = env!("CARGO_BIN_EXE_stepwise");
    let cases: [(&str, &str, Vec<&str>); 3] = [
        ("jq -n 1 (baseline)", "jq", vec!["-n", "1"]),
        ("stepwise run (no-data start, stop)", stepwise, vec!["run", "p.yaml", "--no-history"]),
        ("stepwise validate (one small file)", stepwise, vec!["validate", "p.yaml"]),
    ];
    let mut samples: Vec<Vec<Sample>> = cases.iter().map(|_| Vec::new()).collect();
    // Warm-up, then the cases in turn, so that a busy moment of the machine hits them alike.
    for (_, program, args) in &cases {
        sample(program, args, dir.path());
    }
    for _ in 0..n {
        for (i, (_, program, args)) in cases.iter().enumerate() {
            samples[i].push(sample(program, args, dir.path()));
        }
    }
    println!("{n} runs each; wall time includes /usr/bin/time");
    println!(
        "{:<38} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "command", "median ms", "p90 ms", "x base", "RSS MiB", "x base"
    );
    let mut base: Option<(Duration, u64)> = None;
    for ((name, _, _), runs) in cases.iter().zip(&samples) {
        let mut walls: Vec<Duration> = runs.iter().map(|s| s.wall).collect();
        walls.sort();
        let mut rss: Vec<u64> = runs.iter().map(|s| s.rss_kib).collect();
        rss.sort();
        let (median, p90, rss) = (percentile(&walls, 0.5), percentile(&walls, 0.9), rss[rss.len() / 2]);
        let (base_wall, base_rss) = *base.get_or_insert((median, rss));
        println!(
            "{name:<38} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            median.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3,
            median.as_secs_f64() / base_wall.as_secs_f64(),
            rss as f64 / 1024.0,
            rss as f64 / base_rss.max(1) as f64,
        );
    }
}
