//! 1,000 grants through the engine and the connector against the Boomi simulator at Boomi's
//! limit (10 requests per second): a process creates 1,000 `AccountUserRole` grants for new
//! users. Prints the wall time of the grant step divided by the floor that 10 requests per
//! second allows (calls / 10 s), the calls made divided by the minimum (one per grant), and the
//! simulator's throttled (503) count, which must be 0.
//!
//! Run with `cargo bench -p boomi-platform --bench grants`; `BOOMI_BENCH_GRANTS` changes the
//! number of grants (default 1000, at least 10).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use boomi_platform::BoomiPlatformFactory;
use engine::{ConnectEnv, Registry, RunOptions, SandboxTarget};

const RATE: f64 = 10.0;

fn main() {
    let grants: usize = std::env::var("BOOMI_BENCH_GRANTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000).max(10);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    runtime.block_on(run(grants));
}

async fn run(grants: usize) {
    let config = boomi_sim::SimConfig::default();
    assert_eq!(config.rate_per_second, Some(10), "the simulator keeps Boomi's limit");
    let target = SandboxTarget {
        base_url: String::new(),
        token: config.token.clone(),
        extra: [("account_id".to_owned(), config.account_id.clone()), ("email".to_owned(), config.email.clone())]
            .into_iter()
            .collect(),
    };
    let sim = boomi_sim::start(config).await.expect("the simulator starts");
    let target = SandboxTarget { base_url: sim.base_url(), ..target };
    let before = sim.stats();

    let yaml = format!(
        r#"name: grants-bench
connections:
  boomi:
    type: boomi_platform
    account_id: bench
    email: bench@example.com
    token: {{ env: BOOMI_BENCH_UNUSED }}
start:
  type: no_data
  next: docs
steps:
  docs:
    type: map
    jq: 'range({grants}) | {{userId: "bench.user\(.)@example.com", roleId: "{role}"}}'
    next: grant
  grant:
    type: connector
    connection: boomi
    object: account_user_role
    action: create
    next: done
  done:
    type: stop
"#,
        role = boomi_sim::STANDARD_USER_ROLE_ID,
    );
    let mut registry = Registry::with_builtins();
    registry.register(Arc::new(BoomiPlatformFactory));
    let compiled = compiler::compile(yaml.as_bytes(), &registry);
    let Some(plan) = compiled.plan else {
        panic!("the bench process does not compile: {:?}", compiled.diagnostics);
    };
    let env = ConnectEnv { sandbox: HashMap::from([("boomi_platform".to_owned(), target)]), ..ConnectEnv::default() };
    let options = RunOptions {
        run_id: "grants-bench".to_owned(),
        overrides: Vec::new(),
        env,
        recorder: None,
        abort: None,
        start_document: None,
        progress: None,
    };
    let started = Instant::now();
    let report = engine::run(&plan, &registry, options).await;
    let wall = started.elapsed().as_secs_f64();
    assert!(report.error.is_none(), "the run failed: {:?}", report.error);
    let step_ms = report.steps.iter().find(|s| s.step == "grant").map(|s| s.millis).unwrap_or_default();

    let after = sim.stats();
    let count = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_default();
    let calls = count(&after, "requests") - count(&before, "requests");
    let throttled = count(&after, "throttled") - count(&before, "throttled");
    let made = count(&after, "account_user_roles") - count(&before, "account_user_roles");
    assert_eq!(made, grants as u64, "every grant made once");
    let floor = calls as f64 / RATE;
    let step = step_ms as f64 / 1000.0;
    println!("Boomi Platform grants: {grants} grants, {calls} calls, {throttled} throttled (503)");
    println!("  floor at {RATE} requests/s: {floor:.1} s");
    println!("  grant step: {step:.2} s, ratio to the floor {:.3}", step / floor);
    println!("  whole run:  {wall:.2} s, ratio to the floor {:.3}", wall / floor);
    println!("  calls / minimum: {:.3}", calls as f64 / grants as f64);
    sim.shutdown().await;
}
