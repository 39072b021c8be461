//! Store overhead per run (`cargo bench -p store --bench overhead`): the store calls a run costs
//! in `serve` (a fire queued, a claim, a lease renewal, the end) on SQLite and on PostgreSQL
//! (a database created for the run on `STEPWISE_TEST_POSTGRES`), one run after another.
//!
//! Under `cargo test --benches` (no `--bench` argument) it runs a short smoke version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use store::{Claim, Fire, Overlap, RunEnd, RunStatus, Store};

#[path = "../tests/support/postgres.rs"]
mod pg;

async fn per_run(store: Arc<dyn Store>, runs: usize) -> [f64; 4] {
    let mut totals = [Duration::ZERO; 4];
    let base = Utc::now();
    for i in 0..runs {
        let fire = Fire {
            run_id: uuid::Uuid::now_v7().to_string(),
            process: "p".into(),
            schedule: "s".into(),
            instant: base + chrono::Duration::seconds(i as i64),
            overlap: Overlap::Skip,
            catch_up: false,
            content_hash: "h".into(),
            node: "n".into(),
            at: Utc::now(),
        };
        let t = Instant::now();
        store.fire(&fire).await.expect("fire");
        totals[0] += t.elapsed();
        let claim = Claim {
            node: "n".into(),
            processes: vec![("p".into(), "h".into())],
            max: 1,
            lease: Duration::from_secs(30),
            now: Utc::now(),
        };
        let t = Instant::now();
        let claimed = store.claim(&claim).await.expect("claim");
        totals[1] += t.elapsed();
        let run_id = claimed.runs[0].run_id.clone();
        let t = Instant::now();
        store.renew("n", std::slice::from_ref(&run_id), Duration::from_secs(30)).await.expect("renew");
        totals[2] += t.elapsed();
        let end = RunEnd {
            run_id,
            ended_at: Utc::now(),
            status: RunStatus::Complete,
            documents_in: 1,
            documents_out: 1,
            documents_error: 0,
            error: None,
            steps: Vec::new(),
            response: None,
        };
        let t = Instant::now();
        store.complete("n", &end).await.expect("complete");
        totals[3] += t.elapsed();
    }
    totals.map(|d| d.as_secs_f64() * 1e6 / runs as f64)
}

fn print(what: &str, us: [f64; 4], baseline: f64) {
    let total: f64 = us.iter().sum();
    println!(
        "  {what}: fire {:.0} µs, claim {:.0} µs, renew {:.0} µs, complete {:.0} µs; {total:.0} µs per run ({:.2}x SQLite)",
        us[0],
        us[1],
        us[2],
        us[3],
        total / baseline
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 2000 } else { 20 };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!("store overhead per run, {runs} runs one after another");
        let dir = tempfile::tempdir().expect("tmp");
        let sqlite: Arc<dyn Store> = Arc::new(store::SqliteStore::open(&dir.path().join("state.db")).expect("sqlite"));
        let base = per_run(sqlite, runs).await;
        let baseline: f64 = base.iter().sum();
        print("SQLite", base, baseline);
        if let Some(db) = pg::TestDb::create("bench_overhead").await {
            let pg: Arc<dyn Store> = Arc::new(store::PgStore::connect(&db.url).await.expect("postgres"));
            print("PostgreSQL", per_run(pg, runs).await, baseline);
        }
    });
}
