//! The cost of keeping every document of a run for the console (`record: all`, issue 16:
//! at most 1.5x a run without recording). `cargo bench -p stepwise --bench recording`
//! (`-- N` for another document count; default 10,000).
//!
//! One process, `start` (disk `get`, `format: jsonl`, documents of about 300 bytes) -> `map`
//! -> `message` -> `stop`, compiled with `compiler::compile` and run with `engine::run` on a
//! multi-thread tokio runtime, as `serve` runs it, four ways, interleaved, 21 times each:
//!
//! * baseline: `record: none`, no recorder, no live progress;
//! * `record: none` with live progress (`engine::Progress`, as `serve` runs every run);
//! * `record: errors` on a run that completes: the recorder collects, nothing is saved;
//! * `record: all`: the recorder collects, and at the end `recording::finish` scrubs and saves
//!   every document in the SQLite run store (a temporary file), as `serve` does.
//!
//! Prints the median time of each and its ratio to the baseline's median. Under
//! `cargo test --benches` (no `--bench` argument) it runs once each on 200 documents.

// The binary's own module, compiled into the bench as it is (the binary has no library target).
#[path = "../src/recording.rs"]
#[allow(dead_code, unused_imports)]
mod recording;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROCESS: &str = r#"
name: recording
record: RECORD
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
    jq: '{email: .email, name: .name, id: .id, department: .department, manager: .manager}'
    next: render
  render:
    type: message
    template: "'{\"user\": \"'{1}'\", \"id\": '{2}', \"department\": \"'{3}'\"}'"
    parameters:
      - { json: /email }
      - { json: /id }
      - { json: /department }
    next: done
  done:
    type: stop
"#;

/// `(record, live progress)`; the first is the baseline.
const MODES: [(&str, bool); 4] = [("none", false), ("none", true), ("errors", false), ("all", false)];

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let count: u64 = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benchmarking { 10_000 } else { 200 });
    let rounds = if benchmarking { 21 } else { 1 };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bytes = generate(&dir.path().join("in").join("users.jsonl"), count);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let store: Arc<dyn store::Store> =
        Arc::new(store::SqliteStore::open(&dir.path().join("state.db")).expect("the SQLite run store"));
    let registry = engine::Registry::with_builtins();
    let plans: Vec<compiler::Plan> = MODES.iter().map(|(mode, _)| plan(mode, &registry)).collect();
    let mut times: Vec<Vec<Duration>> = MODES.iter().map(|_| Vec::new()).collect();
    let mut saves: Vec<Duration> = Vec::new();
    // A warm-up run of each, then the four in turn, so that a busy moment hits them alike.
    for round in 0..=rounds {
        for (i, plan) in plans.iter().enumerate() {
            let run_id = format!("run-{round}-{i}");
            let progress = MODES[i].1;
            let (elapsed, save) =
                runtime.block_on(run(plan, &registry, dir.path(), store.clone(), &run_id, count, progress));
            if round > 0 {
                times[i].push(elapsed);
                if plan.record == spec::RecordMode::All {
                    saves.push(save);
                }
            }
        }
    }
    // Before the medians sort them: each `record: all` run's time without its saving.
    let mut runs_only: Vec<Duration> = times[3].iter().zip(&saves).map(|(t, s)| t.saturating_sub(*s)).collect();
    println!(
        "Recording documents: start(jsonl) -> map -> message -> stop, {count} documents of {} bytes, \
         SQLite run store; median of {rounds}",
        bytes / count.max(1)
    );
    let base = median(&mut times[0]);
    for ((mode, progress), runs) in MODES.iter().zip(times.iter_mut()) {
        let m = median(runs);
        let label = format!("{mode}{}", if *progress { " + live progress" } else { "" });
        println!(
            "record: {label:<23} {:>9.1} ms  {:.2}x the baseline (record: none){}",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base.as_secs_f64(),
            if *mode == "all" { "; saving at the end included" } else { "" }
        );
    }
    let run_only = median(&mut runs_only);
    println!(
        "record: all, the run without the saving: {:.1} ms = {:.2}x the baseline",
        run_only.as_secs_f64() * 1e3,
        run_only.as_secs_f64() / base.as_secs_f64()
    );
    let save = median(&mut saves);
    println!(
        "of which saving (recording::finish: scrub, then one transaction in the store) {:.1} ms = {:.2}x the baseline",
        save.as_secs_f64() * 1e3,
        save.as_secs_f64() / base.as_secs_f64()
    );
}

fn plan(record: &str, registry: &engine::Registry) -> compiler::Plan {
    let compiled = compiler::compile(PROCESS.replace("RECORD", record).as_bytes(), registry);
    compiled.plan.unwrap_or_else(|| panic!("the benchmark process is invalid: {:?}", compiled.diagnostics))
}

/// One run as `serve` makes it: the engine with the plan's recorder, then the documents kept.
async fn run(
    plan: &compiler::Plan,
    registry: &engine::Registry,
    base_dir: &Path,
    store: Arc<dyn store::Store>,
    run_id: &str,
    count: u64,
    progress: bool,
) -> (Duration, Duration) {
    // Kept documents belong to a recorded run, as in `serve`.
    let start = store::RunStart {
        run_id: run_id.to_owned(),
        process: plan.name.clone(),
        trigger: store::Trigger::Manual,
        scheduled_for: None,
        started_at: chrono::Utc::now(),
        node: "bench".to_owned(),
        lease: None,
        overrides: Vec::new(),
    };
    store.record_start(&start).await.expect("recording the run's start");
    let clock = Instant::now();
    let env = engine::ConnectEnv { base_dir: base_dir.to_path_buf(), ..engine::ConnectEnv::default() };
    let redactor = env.redactor.clone();
    let recorder = recording::DocumentRecorder::for_plan(plan);
    let options = engine::RunOptions {
        run_id: run_id.to_owned(),
        overrides: Vec::new(),
        env,
        recorder: recorder.clone().map(|r| r as Arc<dyn engine::Recorder>),
        abort: None,
        start_document: None,
        progress: progress.then(engine::Progress::new),
    };
    let report = engine::run(plan, registry, options).await;
    assert_eq!(report.status, engine::RunStatus::Complete, "{}", report.render());
    assert_eq!(report.documents_out, count, "{}", report.render());
    let entered: u64 = report.steps.iter().map(|s| s.documents_in).sum();
    let saving = Instant::now();
    if let Some(recorder) = recorder {
        let note = recording::finish(&*store, run_id, plan, &recorder, report.status, &redactor)
            .await
            .expect("saving the documents");
        assert!(note.is_none(), "{note:?}");
    }
    let (elapsed, save) = (clock.elapsed(), saving.elapsed());
    if plan.record == spec::RecordMode::All {
        let kept: u64 = store.document_counts(run_id).await.expect("counts").iter().map(|s| s.count).sum();
        // Every document that entered a step is kept.
        assert!(kept == entered && kept >= 2 * count, "run {run_id} kept {kept} of {entered} documents");
    }
    (elapsed, save)
}

/// Writes `count` JSON lines of about 300 bytes; returns the file size.
fn generate(path: &Path, count: u64) -> u64 {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("the input directory");
    let mut out = BufWriter::new(std::fs::File::create(path).expect("the input file"));
    for i in 0..count {
        writeln!(
            out,
            r#"{{"id":{i},"name":"User Number {i}","email":"user.number.{i}@example.com","active":true,"department":"Department {d}","manager":"manager.{d}@example.com","title":"Senior Integration Engineer","location":"Building {b}, Floor {f}","phone":"+1-555-{i:07}","joined":"2024-01-{day:02}T09:00:00Z","tags":["alpha","beta","gamma"]}}"#,
            d = i % 40,
            b = i % 7,
            f = i % 12,
            day = i % 28 + 1
        )
        .expect("writing the input");
    }
    out.flush().expect("writing the input");
    std::fs::metadata(path).expect("the input file").len()
}

fn median(runs: &mut [Duration]) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}
