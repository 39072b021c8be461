//! Keeps `docs/boomi-platform.md` in step with the schemas: the object/action table between
//! the `BEGIN GENERATED` and `END GENERATED` markers is rebuilt from
//! `schemas/boomi_platform/*.json`; the test fails when the file differs, and `UPDATE_EXPECT=1`
//! rewrites it. Also checks that every operation has a schema file and every file is used.
//! The table and the checks are `connector_http::docs`'s; the required and optional cells are
//! Boomi's own.

use connector_http::docs::{ConnectorDocs, list_cell};
use serde_json::Value;

use crate::ops::OPERATIONS;
use crate::schemas::SCHEMAS;

static DOCS: ConnectorDocs = ConnectorDocs {
    manifest_dir: env!("CARGO_MANIFEST_DIR"),
    package: "boomi-platform",
    page: "docs/boomi-platform.md",
    schema_dir: "schemas/boomi_platform",
    schemas: &SCHEMAS,
    operations: OPERATIONS,
    call_column: "Boomi call",
    call_key: "x-boomi",
    fields: cells,
};

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

/// The required cell (with the alternative sets of fields) and the optional cell (with the
/// properties that are accepted and ignored) of a row.
fn cells(schema: &Value) -> (String, String) {
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
    let mut optional = list_cell(&may);
    if !ignored.is_empty() {
        optional.push_str(&format!("; accepted and ignored: {}", ignored.join(", ")));
    }
    (list_cell(&must), optional)
}

connector_http::docs_tests!(DOCS);
