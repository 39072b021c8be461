//! Compiler tests: inline snapshots, and the data-driven `test_data/{ok,err}` walk.

use std::path::Path;

use expect_test::{Expect, expect, expect_file};

use crate::{Operation, StaticCatalog, compile};

pub(crate) fn catalog() -> StaticCatalog {
    StaticCatalog::new()
        .with("disk", &[Operation { object: "", action: "get" }, Operation { object: "", action: "send" }])
        .with(
            "knowbe4",
            &[
                Operation { object: "user", action: "create" },
                Operation { object: "user", action: "list" },
                Operation { object: "group_membership", action: "add" },
            ],
        )
}

fn render(yaml: &str) -> String {
    let compiled = compile(yaml.as_bytes(), &catalog());
    let mut out = String::new();
    for d in &compiled.diagnostics {
        out.push_str(&d.render("p.yaml"));
        out.push('\n');
    }
    if let Some(plan) = &compiled.plan {
        out.push_str(&crate::render::mermaid(plan));
    }
    out
}

#[track_caller]
fn check(yaml: &str, expect: Expect) {
    expect.assert_eq(&render(yaml));
}

#[test]
fn smoke() {
    check(
        "name: p\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: stop}\n",
        expect![[r#"
            flowchart TD
                s_start(["start<br/><i>start</i>"])
                s_a(("a<br/><i>stop</i>"))
                s_start --> s_a
        "#]],
    );
}

#[test]
fn reports_a_cycle() {
    check(
        "name: p\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: map, jq: '.', next: b}\n  b: {type: map, jq: '.', next: a}\n",
        expect![[r#"
            p.yaml:4:3: error: step 'a': the process graph has a cycle: a -> b -> a
        "#]],
    );
}

/// Walks `test_data/ok` (no errors) and `test_data/err` (at least one error); each `X.yaml` has an
/// `X.txt` snapshot of the diagnostics (`UPDATE_EXPECT=1 cargo test` rewrites them).
#[test]
fn test_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut n = 0;
    for (dir, want_errors) in [("ok", false), ("err", true)] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
            let bytes = std::fs::read(&path).unwrap();
            let compiled = compile(&bytes, &catalog());
            assert_eq!(compiled.has_errors(), want_errors, "{}: {:#?}", path.display(), compiled.diagnostics);
            let mut out = String::new();
            for d in &compiled.diagnostics {
                out.push_str(&d.render(path.file_name().unwrap().to_str().unwrap()));
                out.push('\n');
            }
            expect_file![path.with_extension("txt")].assert_eq(&out);
            n += 1;
        }
    }
    assert!(n > 20, "only {n} test files");
}

/// The fields serde accepts for a JSON object, read from serde's own "unknown field" message.
fn serde_fields(mut probe: serde_json::Value, de: fn(serde_json::Value) -> Result<(), String>) -> Vec<String> {
    probe.as_object_mut().unwrap().insert("__probe__".to_owned(), serde_json::Value::from(1));
    let err = de(probe).expect_err("the probe key is refused");
    let list = err.split("expected one of ").nth(1).or_else(|| err.split("expected ").nth(1)).unwrap_or("");
    let mut fields: Vec<String> = list
        .split(", ")
        .flat_map(|s| s.split(" or "))
        .map(|s| s.trim().trim_matches('`').to_owned())
        .filter(|s| !s.is_empty() && !s.starts_with("there are no fields"))
        .collect();
    fields.sort();
    fields
}

fn schema_fields(def: &str) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(crate::schema::PROCESS_SCHEMA).unwrap();
    let node = if def.is_empty() { &schema } else { &schema["$defs"][def] };
    let mut fields: Vec<String> = node["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{def}"))
        .keys()
        .filter(|k| *k != "type")
        .cloned()
        .collect();
    fields.sort();
    fields
}

/// The JSON Schema in `schemas/` and the Rust spec types accept the same keys, object by object.
#[test]
fn schema_matches_rust_types() {
    use serde_json::json;
    fn step(v: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<spec::StepSpec>(v).map(drop).map_err(|e| e.to_string())
    }
    fn start(v: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<spec::StartSpec>(v).map(drop).map_err(|e| e.to_string())
    }
    fn conn(v: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<spec::ConnectionSpec>(v).map(drop).map_err(|e| e.to_string())
    }
    fn param(v: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<spec::ParamSpec>(v).map(drop).map_err(|e| e.to_string())
    }
    fn schedule(v: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<spec::ScheduleSpec>(v).map(drop).map_err(|e| e.to_string())
    }
    fn process(v: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<spec::ProcessSpec>(v).map(drop).map_err(|e| e.to_string())
    }
    for ty in spec::STEP_TYPES {
        let mut rust = serde_fields(json!({"type": ty}), step);
        if *ty == "stop" {
            // `next` is accepted by serde only to give a precise error; the schema forbids it.
            rust.retain(|f| f != "next");
        }
        assert_eq!(rust, schema_fields(&format!("step_{ty}")), "step type {ty}");
    }
    assert_eq!(serde_fields(json!({"type": "no_data"}), start), schema_fields("start_no_data"));
    assert_eq!(serde_fields(json!({"type": "connector"}), start), schema_fields("start_connector"));
    for ty in ["knowbe4", "boomi_platform", "disk"] {
        assert_eq!(
            serde_fields(json!({"type": ty}), conn),
            schema_fields(&format!("connection_{ty}")),
            "connection {ty}"
        );
    }
    assert_eq!(serde_fields(json!({}), param), schema_fields("param"));
    assert_eq!(serde_fields(json!({}), schedule), schema_fields("schedule"));
    assert_eq!(serde_fields(json!({}), process), schema_fields(""));
    fn limits(v: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<spec::LimitsSpec>(v).map(drop).map_err(|e| e.to_string())
    }
    assert_eq!(serde_fields(json!({}), limits), schema_fields("limits"));
    // Every step type the schema knows is a Rust step type.
    let schema: serde_json::Value = serde_json::from_str(crate::schema::PROCESS_SCHEMA).unwrap();
    let types: Vec<&str> = schema["$defs"]["step"]["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(types, spec::STEP_TYPES);
}
