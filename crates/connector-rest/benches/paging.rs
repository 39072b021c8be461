//! The http connector's cost over the HTTP it sends: 20,000 users read from the Microsoft
//! Graph simulator (`GET /v1.0/users`, `$top=100`, 200 pages followed by `@odata.nextLink`,
//! OAuth2 client credentials) through the whole stack (compiler, engine, connector, real HTTP
//! on loopback), against a baseline that sends the same 200 requests with the same shared
//! client and splits each page into its records, and nothing else.
//!
//! Rounds alternate (baseline, process) so that both see the same machine; reported are the
//! medians and their ratio, the connector's overhead per page and per record.
//!
//! Run: `cargo bench -p connector-rest --bench paging` (about a minute), `-- ROUNDS` to change
//! the 11 rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graph_sim::{SimConfig, User};
use serde_json::Value;

const USERS: usize = 20_000;
const TOP: usize = 100;

fn config() -> SimConfig {
    let users = (0..USERS)
        .map(|n| User {
            id: format!("{:08x}-0000-4000-8000-{:012x}", n + 1, n + 1),
            mail: format!("user{n}@contoso.example"),
            given_name: format!("Given{n}"),
            surname: format!("Surname{n}"),
        })
        .collect();
    SimConfig { users, ..SimConfig::default() }
}

fn process(url: &str, tenant: &str, client_id: &str) -> String {
    format!(
        "name: graph-users
connections:
  graph:
    type: http
    base_url: {url}
    auth:
      type: oauth2_client_credentials
      token_url: {url}/{tenant}/oauth2/v2.0/token
      client_id: {client_id}
      client_secret: {{ file: secret }}
      scope: https://graph.microsoft.com/.default
start:
  type: connector
  connection: graph
  method: get
  path: /v1.0/users
  query:
    $top: {{ static: \"{TOP}\" }}
  records: /value
  paginate: {{ type: next_url, pointer: /@odata.nextLink }}
  next: done
steps:
  done:
    type: stop
"
    )
}

/// The baseline: a token, then every page by its `@odata.nextLink`, each split into records.
async fn baseline(client: &reqwest::Client, config: &SimConfig, url: &str) -> usize {
    let token_url = format!("{url}/{}/oauth2/v2.0/token", config.tenant);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let token: Value = client.post(token_url).form(&form).send().await.expect("token").json().await.expect("JSON");
    let bearer = token["access_token"].as_str().expect("access_token").to_owned();
    let mut next = Some(format!("{url}/v1.0/users?$top={TOP}"));
    let mut records = Vec::new();
    while let Some(page_url) = next.take() {
        let page: Value =
            client.get(page_url).bearer_auth(&bearer).send().await.expect("page").json().await.expect("JSON");
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        if let Some(Value::Array(values)) = page.get("value") {
            records.extend(values.iter().map(|v| serde_json::to_vec(v).expect("record")));
        }
    }
    records.len()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(11);
    let config = config();
    let sim = graph_sim::start(config.clone()).await.expect("graph simulator");
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secret"), &config.client_secret).expect("secret file");
    let mut registry = engine::Registry::with_builtins();
    registry.register(Arc::new(connector_rest::HttpFactory));
    let yaml = process(&url, &config.tenant, &config.client_id);
    let compiled = compiler::compile(yaml.as_bytes(), &registry);
    let Some(plan) = compiled.plan else {
        panic!("bench process is invalid: {:?}", compiled.diagnostics);
    };
    let client = connector_http::shared_client().expect("client");
    let (mut base, mut full) = (Vec::new(), Vec::new());
    // One round of each first, unmeasured: connections and allocator warm.
    for round in 0..=rounds {
        let started = Instant::now();
        assert_eq!(baseline(&client, &config, &url).await, USERS);
        let baseline_time = started.elapsed();
        let options = engine::RunOptions {
            run_id: format!("bench-{round}"),
            overrides: Vec::new(),
            env: engine::ConnectEnv { base_dir: dir.path().to_owned(), ..engine::ConnectEnv::default() },
            recorder: None,
            abort: None,
            start_document: None,
            progress: None,
        };
        let started = Instant::now();
        let report = engine::run(&plan, &registry, options).await;
        let run_time = started.elapsed();
        assert_eq!(report.status, engine::RunStatus::Complete, "{:?}", report.error);
        assert_eq!(report.steps.first().map(|s| s.documents_out), Some(USERS as u64));
        if round > 0 {
            base.push(baseline_time);
            full.push(run_time);
        }
    }
    sim.shutdown().await;
    let (base, full) = (median(base), median(full));
    let pages = USERS.div_ceil(TOP);
    let extra = full.saturating_sub(base);
    println!("http connector: {USERS} Graph users, {pages} pages of {TOP}, OAuth2 client credentials, {rounds} rounds");
    println!("baseline (same requests, records split, nothing else): {:.1} ms", base.as_secs_f64() * 1e3);
    println!("process (compiler plan, engine, http connector):        {:.1} ms", full.as_secs_f64() * 1e3);
    println!(
        "ratio: {:.2}x; overhead {:.1} µs per page, {:.2} µs per record",
        full.as_secs_f64() / base.as_secs_f64(),
        extra.as_secs_f64() * 1e6 / pages as f64,
        extra.as_secs_f64() * 1e6 / USERS as f64
    );
}
