use std::collections::BTreeSet;

use super::*;

/// `(METHOD, path, role)` of every operation of `openapi.json`.
fn documented() -> BTreeSet<(String, String, String)> {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let role = operation["x-stepwise-role"].as_str().expect("x-stepwise-role").to_owned();
            out.insert((method.to_uppercase(), path.clone(), role));
        }
    }
    out
}

#[test]
fn openapi_describes_exactly_the_routes() {
    let routed: BTreeSet<(String, String, String)> = routes()
        .into_iter()
        .map(|r| {
            let role = if r.webhook_secret { "webhook-secret" } else { r.role.map_or("open", Role::as_str) };
            (r.method.to_string(), r.path.to_owned(), role.to_owned())
        })
        .collect();
    let documented = documented();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not documented: {missing:?}; documented, not routed: {extra:?}");
}

#[test]
fn only_health_is_open() {
    let open: Vec<&str> = routes().iter().filter(|r| r.role.is_none() && !r.webhook_secret).map(|r| r.path).collect();
    assert_eq!(open, ["/health", "/login", "/login", "/console.css"]);
}

#[test]
fn only_hooks_go_by_their_own_secret() {
    let hooks: Vec<&str> = routes().iter().filter(|r| r.webhook_secret).map(|r| r.path).collect();
    assert_eq!(hooks, ["/hooks/{name}"]);
    assert!(routes().iter().filter(|r| r.webhook_secret).all(|r| r.role.is_none()));
}
