//! Keeps `docs/boomi-platform.md` in step with the schemas: the object/action table between
//! the `BEGIN GENERATED` and `END GENERATED` markers is rebuilt from
//! `schemas/boomi_platform/*.json`; the test fails when the file differs, and `UPDATE_EXPECT=1`
//! rewrites it. Also checks that every operation has a schema file and every file is used.

use std::path::PathBuf;

use serde_json::Value;

use crate::ops::OPERATIONS;
use crate::schemas::SCHEMAS;

const BEGIN: &str = "<!-- BEGIN GENERATED: cargo test -p boomi-platform (UPDATE_EXPECT=1 to rewrite) -->";
const END: &str = "<!-- END GENERATED -->";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A field with what its value must be: `userId` (email), `roleId` (UUID), `x` (a | b).
fn field(name: &str, prop: &Value) -> String {
    let mut notes = Vec::new();
    match prop.get("type").and_then(Value::as_str) {
        Some("boolean") => notes.push("true \\| false".to_owned()),
        Some("string") | None => {}
        Some(other) => notes.push(other.to_owned()),
    }
    if let Some(format) = prop.get("format").and_then(Value::as_str) {
        notes.push(format.to_owned());
    }
    if prop.get("pattern").is_some() {
        notes.push("a standard UUID".to_owned());
    }
    if let Some(values) = prop.get("enum").and_then(Value::as_array) {
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        notes.push(values.join(" \\| "));
    }
    if notes.is_empty() { format!("`{name}`") } else { format!("`{name}` ({})", notes.join(", ")) }
}

fn row(name: &str, schema: &Value) -> String {
    let (object, action) = name.split_once('.').unwrap_or((name, ""));
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let empty = serde_json::Map::new();
    let props = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let mut must = Vec::new();
    let mut may = Vec::new();
    let mut ignored = Vec::new();
    for (pname, prop) in props {
        if prop.get("type").is_none() {
            ignored.push(format!("`{pname}`"));
        } else if required.contains(&pname.as_str()) {
            must.push(field(pname, prop));
        } else {
            may.push(field(pname, prop));
        }
    }
    if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
        let alts: Vec<String> = alternatives
            .iter()
            .filter_map(|a| a.get("required").and_then(Value::as_array))
            .map(|r| r.iter().filter_map(Value::as_str).map(|f| format!("`{f}`")).collect::<Vec<_>>().join(" + "))
            .collect();
        must.push(format!("one of {}", alts.join(" or ")));
    }
    let dash = |v: &[String]| if v.is_empty() { "–".to_owned() } else { v.join(", ") };
    let mut optional = dash(&may);
    if !ignored.is_empty() {
        optional.push_str(&format!("; accepted and ignored: {}", ignored.join(", ")));
    }
    let source = match schema.get("x-stepwise-input").and_then(Value::as_str) {
        Some("parameters_or_document") => "parameters, or the document",
        Some(other) => other,
        None => "?",
    };
    let http = schema.get("x-boomi").and_then(Value::as_str).unwrap_or("?");
    let title = schema.get("title").and_then(Value::as_str).unwrap_or("");
    format!("| `{object}` | `{action}` | {title} | `{http}` | {source} | {} | {optional} |", dash(&must))
}

/// The generated section.
fn table() -> String {
    let mut out = String::new();
    out.push_str("| object | action | does | Boomi call | input from | required | optional |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for op in OPERATIONS {
        let name = format!("{}.{}", op.object, op.action);
        let text = SCHEMAS.sources().iter().find(|(n, _)| *n == name).map(|(_, t)| *t).unwrap_or("{}");
        let schema: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        out.push_str(&row(&name, &schema));
        out.push('\n');
    }
    out
}

#[test]
fn every_operation_has_a_schema_file_and_every_file_is_used() {
    let dir = repo().join("schemas/boomi_platform");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    files.sort();
    let mut ops: Vec<String> = OPERATIONS.iter().map(|o| format!("{}.{}", o.object, o.action)).collect();
    ops.sort();
    assert_eq!(files, ops, "schemas/boomi_platform/*.json and the operations differ");
    let mut embedded: Vec<String> = SCHEMAS.sources().iter().map(|(n, _)| (*n).to_owned()).collect();
    embedded.sort();
    assert_eq!(embedded, ops, "embedded schemas and the operations differ");
}

#[test]
fn docs_table_matches_the_schemas() {
    let path = repo().join("docs/boomi-platform.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = table();
    let (Some(b), Some(e)) = (current.find(BEGIN), current.find(END)) else {
        panic!("docs/boomi-platform.md lacks the markers {BEGIN} ... {END}");
    };
    let start = b + BEGIN.len() + 1;
    let existing = current.get(start..e).unwrap_or("");
    if existing != generated {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let updated = format!("{}{}{}", &current[..start], generated, &current[e..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!(
                "docs/boomi-platform.md's generated table is out of date; run with UPDATE_EXPECT=1\n--- expected\n{generated}"
            );
        }
    }
}
