//! Keeps `docs/knowbe4.md` in step with the schemas: the object/action table between the
//! `BEGIN GENERATED` and `END GENERATED` markers is rebuilt from `schemas/knowbe4/*.json`;
//! the test fails when the file differs, and `UPDATE_EXPECT=1` rewrites it. Also checks that
//! every operation has a schema file and every schema file is used. The table and the checks
//! are `connector_http::docs`'s; the required and optional cells are KnowBe4's own.

use connector_http::docs::{ConnectorDocs, code, list_cell};
use serde_json::Value;

use crate::ops::OPERATIONS;
use crate::schemas::SCHEMAS;

static DOCS: ConnectorDocs = ConnectorDocs {
    manifest_dir: env!("CARGO_MANIFEST_DIR"),
    package: "knowbe4",
    page: "docs/knowbe4.md",
    schema_dir: "schemas/knowbe4",
    schemas: &SCHEMAS,
    operations: OPERATIONS,
    call_column: "GraphQL",
    call_key: "x-graphql",
    fields: cells,
};

/// Required and optional fields of an object schema, nested objects flattened with dots.
fn fields(schema: &Value, prefix: &str, parent_required: bool, required: &mut Vec<String>, optional: &mut Vec<String>) {
    let req: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
    for (name, prop) in props {
        let path = format!("{prefix}{name}");
        let is_req = parent_required && req.contains(&name.as_str());
        if prop.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty()) {
            let before = required.len();
            fields(prop, &format!("{path}."), is_req, required, optional);
            if is_req && required.len() == before {
                required.push(format!("{} (at least one field)", code(&path)));
            }
        } else if is_req {
            required.push(code(&path));
        } else {
            optional.push(code(&path));
        }
    }
}

fn alternatives(list: &Value, prefix: &str) -> Option<String> {
    let alts: Vec<String> = list
        .as_array()?
        .iter()
        .filter_map(|alt| {
            let name = alt.get("required")?.as_array()?.first()?.as_str()?;
            let path = format!("{prefix}{name}");
            Some(match alt.pointer(&format!("/properties/{name}/const")) {
                Some(c) => code(&format!("{path}: {c}")),
                None => code(&path),
            })
        })
        .collect();
    (!alts.is_empty()).then(|| alts.join(" or "))
}

/// The required cell (with the alternatives and conditions a schema states) and the optional
/// cell of a row.
fn cells(schema: &Value) -> (String, String) {
    let mut required = Vec::new();
    let mut optional = Vec::new();
    fields(schema, "", true, &mut required, &mut optional);
    let mut notes = Vec::new();
    if let Some(one) = schema.get("oneOf").and_then(|v| alternatives(v, "")) {
        optional.retain(|o| !one.contains(o.as_str()));
        required.push(format!("one of {one}"));
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (pname, prop) in props {
            if let Some(any) = prop.get("anyOf").and_then(|v| alternatives(v, &format!("{pname}."))) {
                notes.push(format!("needs {any}"));
            }
        }
    }
    if let (Some(cond), Some(then)) = (schema.get("if"), schema.get("then")) {
        let when = cond.get("properties").and_then(Value::as_object).and_then(|p| {
            p.iter()
                .next()
                .map(|(k, v)| format!("{} is {}", code(k), v.get("const").map(|c| c.to_string()).unwrap_or_default()))
        });
        let need: Vec<String> = then
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .flat_map(|(k, v)| {
                        v.get("required")
                            .and_then(Value::as_array)
                            .map(|r| {
                                r.iter()
                                    .filter_map(Value::as_str)
                                    .map(|f| code(&format!("{k}.{f}")))
                                    .collect::<Vec<_>>()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(when) = when {
            notes.push(format!("{} when {when}", need.join(", ")));
        }
    }
    let mut required_cell = list_cell(&required);
    if !notes.is_empty() {
        required_cell.push_str(&format!("; {}", notes.join("; ")));
    }
    (required_cell, list_cell(&optional))
}

connector_http::docs_tests!(DOCS);
