//! Engine throughput: 1,000,000 small JSON documents through start(jsonl) -> map -> message -> stop.
//!
//! Run with `cargo bench -p engine --bench throughput` (optionally `-- N` for another document
//! count). Generates the input into a temporary directory, compiles the process with
//! `compiler::compile`, runs it with `engine::run` on a current-thread tokio runtime, and reports
//! documents per second and peak memory (VmHWM from /proc/self/status, reset just before the
//! run through /proc/self/clear_refs) against the input size. It runs twice: with a plain field
//! mapping, which the engine runs without jq's interpreter, and with one computed field, which
//! needs it. A baseline in the same process reads the same lines and parses each with
//! serde_json; the engine's time is reported as a multiple of it.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The process; `JQ` is replaced by the map's program.
const PROCESS: &str = r#"
name: throughput
connections:
  input: {type: disk, directory: in}
start:
  type: connector
  connection: input
  action: get
  format: jsonl
  pattern: "*.jsonl"
  next: to_user
steps:
  to_user:
    type: map
    jq: 'JQ'
    next: render
  render:
    type: message
    template: "'{\"user\": \"'{1}'\", \"id\": '{2}'}'"
    parameters:
      - { json: /email }
      - { json: /id }
    next: done
  done:
    type: stop
"#;

/// A field mapping, which the engine runs without jq's interpreter.
const MAPPING: &str = "{email: .email, name: .name, id: .id}";
/// The same with one computed field, which needs the interpreter.
const COMPUTED: &str = "{email: .email, name: (.name | ascii_downcase), id: .id}";

struct Measured {
    elapsed: Duration,
    rss_before_kib: u64,
    peak_kib: u64,
    reset: bool,
    report: engine::RunReport,
}

fn main() {
    let count: u64 =
        std::env::args().skip(1).filter(|a| !a.starts_with('-')).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("in").join("users.jsonl");
    let input_bytes = generate(&input, count);

    let mapping = measure(dir.path(), MAPPING, count);
    let computed = measure(dir.path(), COMPUTED, count);
    // Baseline, after the runs so that it does not count in their peaks: read the same lines and
    // parse each as JSON.
    let baseline = baseline(&input, count);

    let input_mib = input_bytes as f64 / (1024.0 * 1024.0);
    println!("Engine throughput: start(jsonl) -> map -> message -> stop, {count} documents");
    println!("input           {input_mib:.1} MiB ({} bytes per document)", input_bytes / count.max(1));
    println!(
        "baseline        {:.3} s  {:.0} documents/s (read the lines, serde_json-parse each)",
        baseline.as_secs_f64(),
        per_sec(count, baseline)
    );
    for (what, m) in [(MAPPING, &mapping), (COMPUTED, &computed)] {
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!();
        println!("map '{what}'");
        println!(
            "engine          {:.3} s  {:.0} documents/s  {:.2}x the baseline's time",
            m.elapsed.as_secs_f64(),
            per_sec(count, m.elapsed),
            m.elapsed.as_secs_f64() / baseline.as_secs_f64()
        );
        println!(
            "peak memory     {:.1} MiB VmHWM{} = {:.2}x the input; {:.1} MiB of it resident before the run, \
             so the run added {:.1} MiB = {:.2}x the input",
            mib(m.peak_kib),
            if m.reset { " (reset before the run)" } else { " (could not reset; includes setup)" },
            mib(m.peak_kib) / input_mib,
            mib(m.rss_before_kib),
            mib(m.peak_kib.saturating_sub(m.rss_before_kib)),
            mib(m.peak_kib.saturating_sub(m.rss_before_kib)) / input_mib
        );
        print!("{}", m.report.render());
    }
}

/// Compiles the process with `program` as its map and runs it once.
fn measure(base_dir: &Path, program: &str, count: u64) -> Measured {
    let registry = engine::Registry::with_builtins();
    let process = PROCESS.replace("JQ", program);
    let compiled = compiler::compile(process.as_bytes(), &registry);
    let plan = compiled.plan.unwrap_or_else(|| panic!("the benchmark process is invalid: {:?}", compiled.diagnostics));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let options = engine::RunOptions {
        run_id: "bench".to_owned(),
        overrides: Vec::new(),
        env: engine::ConnectEnv { base_dir: base_dir.to_path_buf(), ..engine::ConnectEnv::default() },
        recorder: None,
        abort: None,
        start_document: None,
        progress: None,
    };
    let rss_before_kib = status_kib("VmRSS:");
    // Writing 5 to clear_refs resets VmHWM to the current resident size.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let clock = Instant::now();
    let report = runtime.block_on(engine::run(&plan, &registry, options));
    let elapsed = clock.elapsed();
    let peak_kib = status_kib("VmHWM:");
    assert_eq!(report.status, engine::RunStatus::Complete, "{}", report.render());
    assert_eq!(report.documents_out, count, "{}", report.render());
    Measured { elapsed, rss_before_kib, peak_kib, reset, report }
}

/// Writes `count` small JSON lines; returns the file size.
fn generate(path: &Path, count: u64) -> u64 {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("the input directory");
    let mut out = BufWriter::new(std::fs::File::create(path).expect("the input file"));
    for i in 0..count {
        writeln!(out, r#"{{"id":{i},"name":"User {i}","email":"user{i}@example.com","active":true}}"#)
            .expect("writing the input");
    }
    out.flush().expect("writing the input");
    std::fs::metadata(path).expect("the input file").len()
}

fn baseline(path: &Path, count: u64) -> Duration {
    let clock = Instant::now();
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).expect("the input file"));
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).expect("reading the input") == 0 {
            break;
        }
        let v: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
        std::hint::black_box(v);
        n += 1;
    }
    assert_eq!(n, count);
    clock.elapsed()
}

fn per_sec(count: u64, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64().max(f64::EPSILON)
}

/// A `/proc/self/status` field in KiB (0 where there is no /proc).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
