//! The `http` connector through the binary, against small loopback servers that record every
//! request: each auth kind, each paging kind, retries and idempotence (requests counted at
//! the server), `error_response`, OAuth2 token caching and refresh, secrets kept out of logs
//! and dumps, and `validate`'s checks of the step keys.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::*;

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: String,
}

/// An answer: status, extra headers, body.
type Reply = (u16, Vec<(String, String)>, String);

/// A loopback HTTP/1.1 server answering each request with `answer(n, request)` (n counts from 0).
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(answer: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, target) =
                        (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
                    let mut headers = HashMap::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                        }
                    }
                    let len = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let req = Seen { method, target, headers, body: String::from_utf8_lossy(&body).into_owned() };
                    let n = {
                        let mut l = log.lock().unwrap();
                        l.push(req.clone());
                        l.len() - 1
                    };
                    let (status, extra, body) = answer(n, &req);
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                        body.len()
                    );
                    for (k, v) in extra {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes())).is_err() {
                        break;
                    }
                }
            }
        });
        Server { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, method: &str, prefix: &str) -> usize {
        self.seen().iter().filter(|s| s.method == method && s.target.starts_with(prefix)).count()
    }
}

fn ok(body: Value) -> Reply {
    (200, Vec::new(), body.to_string())
}

/// A process reading `path` of `base` with `step` keys added to the start step, `auth` YAML on
/// the connection; the documents arriving at `done` are dumped.
fn process(base: &str, auth: &str, start: &str) -> String {
    format!(
        "name: http-test\nconnections:\n  api:\n    type: http\n    base_url: {base}\n{auth}\nstart:\n  type: connector\n  connection: api\n{start}\n  next: done\nsteps:\n  done: {{type: stop}}\n"
    )
}

/// Runs `yaml` in test mode and returns the run and the documents that reached `done`.
fn run_yaml(yaml: &str, env: &[(&str, &str)]) -> (Run, Vec<Value>, Dir) {
    let dir = Dir::new();
    dir.write("p.yaml", yaml);
    let run = stepwise_env(dir.path(), &["run", "p.yaml", "--test", "--dump", "dump", "--log", "debug"], env);
    let mut docs = Vec::new();
    for n in 1.. {
        let p = dir.join(&format!("dump/steps/done/source/{n:06}.data"));
        let Ok(text) = std::fs::read_to_string(&p) else { break };
        docs.push(serde_json::from_str(&text).unwrap_or(Value::String(text)));
    }
    (run, docs, dir)
}

/// Every file under `dir`, as text.
fn all_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&all_text(&p));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()));
        }
    }
    out
}

#[test]
fn every_auth_kind_sends_its_credential() {
    let server = Server::start(|_, _| ok(json!({"ok": true})));
    let cases = [
        ("    auth: {type: none}", None, None),
        (
            "    auth: {type: bearer, token: {env: T}}",
            Some(("authorization", "Bearer s3cret-bearer")),
            Some("s3cret-bearer"),
        ),
        (
            "    auth: {type: basic, username: ada, password: {env: T}}",
            Some(("authorization", "Basic YWRhOnMzY3JldC1iYXNpYw==")),
            Some("s3cret-basic"),
        ),
        (
            "    auth: {type: header, name: X-Api-Key, value: {env: T}}",
            Some(("x-api-key", "s3cret-header")),
            Some("s3cret-header"),
        ),
    ];
    for (i, (auth, expect, secret)) in cases.iter().enumerate() {
        let yaml = process(&server.url(), auth, &format!("  method: get\n  path: /auth/{i}"));
        let env: Vec<(&str, &str)> = secret.iter().map(|s| ("T", *s)).collect();
        let (run, docs, dir) = run_yaml(&yaml, &env);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(docs, vec![json!({"ok": true})]);
        let req = server.seen().into_iter().find(|s| s.target == format!("/auth/{i}")).unwrap();
        match expect {
            Some((h, v)) => assert_eq!(req.headers.get(*h).map(String::as_str), Some(*v), "{auth}"),
            None => assert!(!req.headers.contains_key("authorization") && !req.headers.contains_key("x-api-key")),
        }
        if let Some(secret) = secret {
            let written = format!("{}{}{}", run.stdout, run.stderr, all_text(dir.path()));
            assert!(!written.contains(secret), "{auth}: the secret leaked:\n{written}");
        }
    }
}

/// An OAuth2 token endpoint and an API on one server: `/token` hands out `tok-N` (expiring
/// after `expires_in`), `/api/...` accepts only the latest token unless `refuse_first`.
fn oauth_server(expires_in: u64, refuse_first: bool) -> Server {
    Server::start(move |_, req| {
        if req.target == "/tenant/token" {
            assert_eq!(req.method, "POST");
            assert_eq!(req.headers.get("content-type").map(String::as_str), Some("application/x-www-form-urlencoded"));
            assert!(
                req.body.contains("grant_type=client_credentials") && req.body.contains("client_secret=cl1ent-s3cret")
            );
            return ok(json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": "acc3ss-token-x"}));
        }
        let auth = req.headers.get("authorization").cloned().unwrap_or_default();
        if auth != "Bearer acc3ss-token-x" {
            return (401, Vec::new(), json!({"error": "bad token"}).to_string());
        }
        if refuse_first && req.target.ends_with("first=1") {
            return (401, Vec::new(), json!({"error": {"code": "InvalidAuthenticationToken"}}).to_string());
        }
        let page: u32 = req.target.rsplit('=').next().and_then(|p| p.parse().ok()).unwrap_or(1);
        let next = if page < 3 { json!(format!("/api/items?page={}", page + 1)) } else { Value::Null };
        ok(json!({"value": [{"page": page}], "@odata.nextLink": next}))
    })
}

fn oauth_yaml(url: &str, extra: &str) -> String {
    let auth = format!(
        "    auth:\n      type: oauth2_client_credentials\n      token_url: {url}/tenant/token\n      client_id: app-1\n      client_secret: {{env: CS}}\n      scope: {url}/.default"
    );
    process(
        url,
        &auth,
        &format!(
            "  method: get\n  path: /api/items\n  records: /value\n  paginate: {{type: next_url, pointer: /@odata.nextLink}}{extra}"
        ),
    )
}

#[test]
fn oauth2_token_is_fetched_once_cached_and_never_written() {
    let server = oauth_server(3600, false);
    let (run, docs, dir) = run_yaml(&oauth_yaml(&server.url(), ""), &[("CS", "cl1ent-s3cret")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(docs, vec![json!({"page": 1}), json!({"page": 2}), json!({"page": 3})]);
    assert_eq!(server.count("POST", "/tenant/token"), 1, "one token for three pages");
    assert_eq!(server.count("GET", "/api/items"), 3);
    let written = format!("{}{}{}", run.stdout, run.stderr, all_text(dir.path()));
    for secret in ["cl1ent-s3cret", "acc3ss-token-x"] {
        assert!(!written.contains(secret), "{secret} leaked:\n{written}");
    }
}

#[test]
fn oauth2_token_is_refreshed_when_it_expires_and_when_refused() {
    // A token that expires at once is fetched again before every request.
    let server = oauth_server(0, false);
    let (run, docs, _dir) = run_yaml(&oauth_yaml(&server.url(), ""), &[("CS", "cl1ent-s3cret")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(docs.len(), 3);
    assert_eq!(server.count("POST", "/tenant/token"), 3, "{:?}", server.seen());
    // A token the API refuses (401) is fetched again once, and the request re-sent.
    let server = oauth_server(3600, true);
    let (run, _, _dir) =
        run_yaml(&oauth_yaml(&server.url(), "\n  query: {first: {static: '1'}}"), &[("CS", "cl1ent-s3cret")]);
    assert_ne!(run.code, 0, "the API refuses every token on that path: {run:?}");
    assert_eq!(server.count("POST", "/tenant/token"), 2, "one fetch, one refresh after the 401");
    assert_eq!(server.count("GET", "/api/items?first=1"), 2, "the request was re-sent once, not more");
}

/// A server of 5 records `r1..r5` read 2 at a time, in the paging style of `kind`.
fn pager(kind: &'static str) -> Server {
    Server::start(move |_, req| {
        let q: HashMap<String, String> = req
            .target
            .split_once('?')
            .map(|(_, q)| {
                q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
            })
            .unwrap_or_default();
        let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        let start = match kind {
            "page" => (num("page", 1) - 1) * 2,
            "offset" => num("skip", 0),
            _ => num("at", 0),
        };
        let items: Vec<Value> = (start..(start + 2).min(5)).map(|i| json!({"id": format!("r{}", i + 1)})).collect();
        let more = start + 2 < 5;
        let next_at = format!("/items?at={}", start + 2);
        match kind {
            "link_header" => {
                let headers = if more {
                    vec![("link".to_owned(), format!("<{next_at}>; rel=\"next\", </items?at=0>; rel=\"first\""))]
                } else {
                    Vec::new()
                };
                (200, headers, json!({"items": items}).to_string())
            }
            "next_url" => ok(json!({"items": items, "next": if more { json!(next_at) } else { Value::Null }})),
            "cursor" => ok(
                json!({"items": items, "meta": {"cursor": if more { json!(format!("{}", start + 2)) } else { json!("") }}}),
            ),
            _ => ok(json!({"items": items})),
        }
    })
}

#[test]
fn every_paging_kind_reads_every_page() {
    let cases = [
        ("link_header", "{type: link_header}", 3),
        ("next_url", "{type: next_url, pointer: /next}", 3),
        ("cursor", "{type: cursor, pointer: /meta/cursor, param: at}", 3),
        ("page", "{type: page, param: page, size: 2, size_param: per_page}", 3),
        // The last page is full here: one more request finds it empty.
        ("offset", "{type: offset, param: skip, size: 2, size_param: top}", 3),
    ];
    for (kind, paginate, requests) in cases {
        let server = pager(kind);
        let yaml = process(
            &server.url(),
            "",
            &format!("  method: get\n  path: /items\n  records: /items\n  paginate: {paginate}"),
        );
        let (run, docs, _dir) = run_yaml(&yaml, &[]);
        assert_eq!(run.code, 0, "{kind}: {run:?}");
        let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["r1", "r2", "r3", "r4", "r5"], "{kind}");
        assert_eq!(server.seen().len(), requests, "{kind}: {:?}", server.seen());
    }
    // page and offset send their size parameter.
    let server = pager("page");
    let yaml = process(
        &server.url(),
        "",
        "  method: get\n  path: /items\n  records: /items\n  paginate: {type: page, param: page, size: 2, size_param: per_page, max_pages: 2}",
    );
    let (run, docs, _dir) = run_yaml(&yaml, &[]);
    assert_eq!((run.code, docs.len()), (0, 4), "max_pages stops after 2 pages: {run:?}");
    assert_eq!(server.seen()[0].target, "/items?page=1&per_page=2");
}

/// A no_data start, a message making one JSON document, and a connector step with `keys`.
fn write_process(base: &str, keys: &str) -> String {
    format!(
        "name: http-write\nconnections:\n  api:\n    type: http\n    base_url: {base}\nstart: {{type: no_data, next: make}}\nsteps:\n  make:\n    type: map\n    jq: '{{name: \"ada\"}}'\n    next: call\n  call:\n    type: connector\n    connection: api\n{keys}\n    next: done\n  done: {{type: stop}}\n"
    )
}

#[test]
fn reads_are_retried_and_posts_only_when_idempotent() {
    // GET: a 500 then a success: two requests.
    let server = Server::start(|n, _| if n == 0 { (500, Vec::new(), "{}".to_owned()) } else { ok(json!({"ok": 1})) });
    let (run, docs, _d) = run_yaml(&process(&server.url(), "", "  method: get\n  path: /x"), &[]);
    assert_eq!((run.code, docs.len()), (0, 1), "{run:?}");
    assert_eq!(server.seen().len(), 2);
    // POST: a 500 may have been executed: never sent again, the run fails.
    let server = Server::start(|n, _| if n == 0 { (500, Vec::new(), "{}".to_owned()) } else { ok(json!({"ok": 1})) });
    let (run, _, _d) = run_yaml(&write_process(&server.url(), "    method: post\n    path: /things"), &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("idempotent") || run.stderr.contains("idempotent"), "{run:?}");
    assert_eq!(server.count("POST", "/things"), 1, "a POST is never repeated unless marked idempotent");
    assert_eq!(server.seen()[0].body, r#"{"name":"ada"}"#);
    // PATCH marked idempotent: retried.
    let server = Server::start(|n, _| if n == 0 { (502, Vec::new(), "{}".to_owned()) } else { ok(json!({"ok": 1})) });
    let (run, docs, _d) =
        run_yaml(&write_process(&server.url(), "    method: patch\n    path: /things/1\n    idempotent: true"), &[]);
    assert_eq!((run.code, docs.len()), (0, 1), "{run:?}");
    assert_eq!(server.count("PATCH", "/things/1"), 2);
}

#[test]
fn error_response_gives_an_error_document_with_the_answer_body() {
    let server =
        Server::start(|_, _| (404, Vec::new(), json!({"error": {"code": "Request_ResourceNotFound"}}).to_string()));
    let (run, docs, _d) = run_yaml(
        &write_process(
            &server.url(),
            "    method: put\n    path: /things/{id}\n    parameters: {id: {static: 'a/1'}}\n    error_response: true",
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(server.count("PUT", "/things/a%2F1"), 1, "4xx is not retried; the parameter is one segment");
    assert_eq!(docs.len(), 1);
    let e = &docs[0]["error"];
    assert_eq!(e["kind"], "api");
    assert_eq!(e["status"], 404);
    assert_eq!(e["step"], "call");
    assert_eq!(e["action"], "put");
    assert_eq!(e["input"], json!({"name": "ada"}));
    assert_eq!(e["body"], json!({"error": {"code": "Request_ResourceNotFound"}}));
    // Without error_response the run fails at the step.
    let (run, _, _d) = run_yaml(&write_process(&server.url(), "    method: put\n    path: /things/1"), &[]);
    assert_ne!(run.code, 0);
    assert!(run.stdout.contains("HTTP 404") || run.stderr.contains("HTTP 404"), "{run:?}");
}

#[test]
fn schema_file_is_checked_before_any_request() {
    let server = Server::start(|_, _| ok(json!({})));
    let dir = Dir::new();
    dir.write("user.schema.json", r#"{"type": "object", "required": ["email"]}"#);
    dir.write(
        "p.yaml",
        write_process(&server.url(), "    method: post\n    path: /users\n    schema: user.schema.json"),
    );
    let run = stepwise(dir.path(), &["run", "p.yaml"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("email") || run.stdout.contains("email"), "{run:?}");
    assert!(server.seen().is_empty(), "no request at all");
}

#[test]
fn validate_reports_bad_http_keys_at_their_line() {
    let dir = Dir::new();
    let connections = "name: bad-http
connections:
  api:
    type: http
    base_url: http://api.example.com
    headers:
      Authorization: Bearer abc
    auth: {type: bearer, token: literal-token}
  idp:
    type: http
    base_url: https://api.example.com
    auth: {type: oauth2_client_credentials, token_url: http://login.example.com/t, client_id: a, client_secret: {env: S}}
start: {type: no_data, next: done}
steps:
  done: {type: stop}
";
    let steps = "name: bad-http-steps
connections:
  ok:
    type: http
    base_url: https://api.example.com
start:
  type: connector
  connection: ok
  method: fetch
  next: one
steps:
  one:
    type: connector
    connection: ok
    method: get
    path: /groups/{group}/members
    records: value
    next: two
  two:
    type: connector
    connection: ok
    method: get
    path: /x
    parameters:
      unused: {static: a}
    paginate: {type: next_url, pointer: next}
    next: three
  three:
    type: connector
    connection: ok
    method: get
    path: /x?a=1
    body: json
    next: done
  done: {type: stop}
";
    for (yaml, expected) in [
        (
            connections,
            &[
                "p.yaml:5:5: error: connection 'api': 'http://api.example.com' uses plain http to a host that is not loopback",
                "p.yaml:7:7: error: connection 'api': header 'Authorization' carries a credential",
                "p.yaml:8:26: error: connection 'api': a literal token is not allowed in a process file",
                "p.yaml:12:45: error: connection 'idp': 'http://login.example.com/t' uses plain http",
            ][..],
        ),
        (
            steps,
            &[
                "p.yaml:9:3: error: step 'start': 'method' is \"fetch\"; expected one of get, post, put, patch, delete",
                "p.yaml:16:5: error: step 'one': path parameter '{group}' has no value: add it to 'parameters'",
                "p.yaml:17:5: error: step 'one': 'value' is not a JSON pointer: it must start with '/'",
                "p.yaml:25:7: error: step 'two': parameter 'unused' is not used in 'path'",
                "p.yaml:26:32: error: step 'two': 'next' is not a JSON pointer",
                "p.yaml:32:5: error: step 'three': path '/x?a=1' must not hold a query or a fragment; use 'query'",
                "p.yaml:33:5: error: step 'three': a get request has no body",
            ][..],
        ),
    ] {
        dir.write("p.yaml", yaml);
        let run = stepwise(dir.path(), &["validate", "p.yaml"]);
        assert_ne!(run.code, 0);
        for line in expected {
            assert!(run.stderr.contains(line), "missing {line:?} in:\n{}", run.stderr);
        }
    }
}

#[test]
fn http_keys_on_other_connections_are_refused() {
    let dir = Dir::new();
    dir.write(
        "p.yaml",
        "name: mixed\nconnections:\n  files: {type: disk, directory: d}\nstart:\n  type: connector\n  connection: files\n  action: get\n  format: json\n  method: get\n  next: done\nsteps:\n  done: {type: stop}\n",
    );
    let run = stepwise(dir.path(), &["validate", "p.yaml"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("p.yaml:9:3: error: step 'start': 'method' only applies to http connections"),
        "{run:?}"
    );
}

/// The `step in out errors` row of `step` in a run's table.
fn row(stdout: &str, step: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(step))
        .unwrap_or_else(|| panic!("no row {step}:\n{stdout}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn shipped_entra_group_sync_runs_in_the_sandbox() {
    let repo = repo();
    let validate = stepwise(&repo, &["validate", "processes/entra-group-sync.yaml"]);
    assert_eq!(validate.code, 0, "{validate:?}");
    let run = stepwise(&repo, &["run", "--sandbox", "processes/entra-group-sync.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    // 24 members in the simulated Entra group, one without a mail.
    assert_eq!(row(&run.stdout, "start")[3], "24", "{run:?}");
    assert_eq!(row(&run.stdout, "people")[3], "23");
    // None of them is in the sandbox's KnowBe4: each is created and added; the group's 16
    // members who are not in the Entra group are removed.
    assert_eq!(&row(&run.stdout, "create")[2..5], ["23", "23", "0"]);
    assert_eq!(&row(&run.stdout, "add")[2..5], ["23", "23", "0"]);
    assert_eq!(&row(&run.stdout, "remove")[2..5], ["16", "16", "0"]);
    assert_eq!(row(&run.stdout, "create_failed")[2], "0");
    assert!(!run.stdout.contains("graph-sim-client-secret") && !run.stderr.contains("graph-sim-client-secret"));
}
