//! Keeps `docs/knowbe4.md` in step with the schemas: the object/action table between the
//! `BEGIN GENERATED` and `END GENERATED` markers is rebuilt from `schemas/knowbe4/*.json`;
//! the test fails when the file differs, and `UPDATE_EXPECT=1` rewrites it. Also checks that
//! every operation has a schema file and every schema file is used.

use std::path::PathBuf;

use serde_json::Value;

use crate::ops::OPERATIONS;
use crate::schemas::SCHEMAS;

const BEGIN: &str = "<!-- BEGIN GENERATED: cargo test -p knowbe4 (UPDATE_EXPECT=1 to rewrite) -->";
const END: &str = "<!-- END GENERATED -->";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn code(s: &str) -> String {
    format!("`{s}`")
}

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

fn row(name: &str, schema: &Value) -> String {
    let (object, action) = name.split_once('.').unwrap_or((name, ""));
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
    let source = schema.get("x-stepwise-input").and_then(Value::as_str).unwrap_or("?");
    let graphql = schema.get("x-graphql").and_then(Value::as_str).unwrap_or("?");
    let title = schema.get("title").and_then(Value::as_str).unwrap_or("");
    let dash = |v: &[String]| if v.is_empty() { "–".to_owned() } else { v.join(", ") };
    let mut required_cell = dash(&required);
    if !notes.is_empty() {
        required_cell.push_str(&format!("; {}", notes.join("; ")));
    }
    format!("| `{object}` | `{action}` | {title} | `{graphql}` | {source} | {required_cell} | {} |", dash(&optional))
}

/// The generated section.
fn table() -> String {
    let mut out = String::new();
    out.push_str("| object | action | does | GraphQL | input from | required | optional |\n");
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
    let dir = repo().join("schemas/knowbe4");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    files.sort();
    let mut ops: Vec<String> = OPERATIONS.iter().map(|o| format!("{}.{}", o.object, o.action)).collect();
    ops.sort();
    assert_eq!(files, ops, "schemas/knowbe4/*.json and operations() differ");
    let mut embedded: Vec<String> = SCHEMAS.sources().iter().map(|(n, _)| (*n).to_owned()).collect();
    embedded.sort();
    assert_eq!(embedded, ops, "embedded schemas and operations() differ");
    for (name, text) in SCHEMAS.sources() {
        let on_disk = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        assert_eq!(&on_disk, text, "{name}");
    }
}

#[test]
fn docs_table_matches_the_schemas() {
    let path = repo().join("docs/knowbe4.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = table();
    let (Some(b), Some(e)) = (current.find(BEGIN), current.find(END)) else {
        panic!("docs/knowbe4.md lacks the markers {BEGIN} ... {END}");
    };
    let start = b + BEGIN.len() + 1;
    let existing = current.get(start..e).unwrap_or("");
    if existing != generated {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let updated = format!("{}{}{}", &current[..start], generated, &current[e..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!(
                "docs/knowbe4.md's generated table is out of date; run with UPDATE_EXPECT=1\n--- expected\n{generated}"
            );
        }
    }
}
