//! Validation against `schemas/process.schema.json`, the schema that editors use too.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;

use crate::check::{PARAM_SOURCES, param_sources_problem};
use crate::diagnostic::{Diagnostic, step_of};

/// The process format's JSON Schema, as shipped in `schemas/`.
pub const PROCESS_SCHEMA: &str = include_str!("../../../schemas/process.schema.json");

struct Compiled {
    validator: jsonschema::Validator,
    /// The schema itself, to find which keys are allowed where an unknown one was found.
    schema: serde_json::Value,
}

fn compiled() -> &'static Compiled {
    static SCHEMA: OnceLock<Compiled> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(PROCESS_SCHEMA).expect("the bundled process schema is valid JSON (tested)");
        // Compiled with draft 7 rules (see `connector_http::JsonSchema::compile` for why); the
        // schema only uses keywords that mean the same in 2020-12 (tested). Formats stay
        // annotations, as in 2020-12.
        let validator = jsonschema::draft7::options()
            .should_validate_formats(false)
            .build(&schema)
            .expect("the bundled process schema compiles (tested)");
        Compiled { validator, schema }
    })
}

/// The keys allowed by the subschema whose `additionalProperties: false` rejected a key:
/// `schema_path` is the validator's path to that keyword, through `$ref`s (each followed to its
/// local target), e.g. `/properties/steps/additionalProperties/$ref/allOf/0/then/$ref/additionalProperties`.
fn allowed_keys<'a>(schema: &'a serde_json::Value, schema_path: &str) -> Vec<&'a str> {
    let mut at = schema;
    let mut segments: Vec<String> =
        schema_path.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
    if segments.pop().as_deref() != Some("additionalProperties") {
        return Vec::new();
    }
    for segment in &segments {
        let next = if segment == "$ref" {
            at.get("$ref").and_then(|r| r.as_str()).and_then(|r| r.strip_prefix('#')).and_then(|p| schema.pointer(p))
        } else {
            match at {
                serde_json::Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => at.get(segment.as_str()),
            }
        };
        let Some(next) = next else { return Vec::new() };
        at = next;
    }
    at.get("properties").and_then(|p| p.as_object()).map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default()
}

/// The closest known key, when one is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Checks a loaded process against the schema, returning every problem.
pub fn check(value: &serde_json::Value) -> Vec<Diagnostic> {
    let compiled = compiled();
    let mut out = Vec::new();
    for error in compiled.validator.iter_errors(value) {
        let pointer = error.instance_path.to_string();
        let step = step_of(&pointer);
        let message = match &error.kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    let child = format!("{pointer}/{}", spec::escape_pointer(key));
                    let msg = if key == "next"
                        && value.pointer(&pointer).and_then(|v| v.get("type")) == Some(&"stop".into())
                    {
                        "a 'stop' step ends its path and cannot have a 'next'".to_owned()
                    } else {
                        let allowed = allowed_keys(&compiled.schema, &error.schema_path.to_string());
                        match did_you_mean(key, allowed.into_iter().filter(|k| k != key)) {
                            Some(s) => format!("unknown key '{key}' (did you mean '{s}'?)"),
                            None => format!("unknown key '{key}'"),
                        }
                    };
                    out.push(Diagnostic::error(step.as_deref(), child, naming_connection(&pointer, msg)));
                }
                continue;
            }
            ValidationErrorKind::Required { property } => {
                format!("missing required key '{}'", property.as_str().unwrap_or(""))
            }
            ValidationErrorKind::Enum { options } if pointer.ends_with("/type") => {
                let found = error.instance.as_str().unwrap_or("?");
                let options: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let hint = did_you_mean(found, options.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                format!("unknown type '{found}'{hint}; expected one of {}", options.join(", "))
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())).collect())
                    .unwrap_or_default();
                let field = pointer.rsplit('/').next().unwrap_or("");
                format!("'{field}' is {}; expected one of {}", error.instance, options.join(", "))
            }
            ValidationErrorKind::Type { .. }
            | ValidationErrorKind::MinProperties { .. }
            | ValidationErrorKind::MaxProperties { .. }
                if is_secret_pointer(&pointer) =>
            {
                let field = pointer.rsplit('/').next().unwrap_or("token");
                if error.instance.is_string() {
                    format!("a literal {field} is not allowed in a process file; use {{env: NAME}} or {{file: PATH}}")
                } else {
                    format!("{field} must be exactly one of {{env: NAME}} or {{file: PATH}}")
                }
            }
            ValidationErrorKind::OneOfNotValid | ValidationErrorKind::OneOfMultipleValid
                if error.instance.is_object() =>
            {
                // Only a parameter has a oneOf: exactly one source key. The compiler says the
                // same, in the same words, when the parameter parses; the two are merged.
                let kinds: Vec<&str> =
                    PARAM_SOURCES.iter().copied().filter(|k| error.instance.get(k).is_some()).collect();
                let name = param_name(value, &pointer).unwrap_or_else(|| "the parameter".to_owned());
                match param_sources_problem(&name, &kinds) {
                    Some(message) => message,
                    None => format!("{name} must have exactly one source key"),
                }
            }
            ValidationErrorKind::PropertyNames { error: inner } => {
                let key = inner.instance.as_str().unwrap_or("?");
                let rule = match &inner.kind {
                    ValidationErrorKind::Pattern { pattern } => {
                        pattern.trim_start_matches('^').trim_end_matches('$').to_owned()
                    }
                    _ => inner.to_string(),
                };
                let child = format!("{pointer}/{}", spec::escape_pointer(key));
                let (step, message) = match pointer.as_str() {
                    "/steps" => (Some(key), format!("step id '{key}' must match {rule}")),
                    "/connections" => (None, format!("connection name '{key}' must match {rule}")),
                    _ => (None, format!("key '{key}' must match {rule}")),
                };
                out.push(Diagnostic::error(step, child, message));
                continue;
            }
            ValidationErrorKind::Pattern { pattern } => {
                let field = pointer.rsplit('/').next().unwrap_or("");
                format!("'{field}' value {} does not match {pattern}", error.instance)
            }
            _ => {
                let field = pointer.rsplit('/').next().unwrap_or("");
                if field.is_empty() { error.to_string() } else { format!("'{field}': {error}") }
            }
        };
        let message = naming_connection(&pointer, message);
        out.push(Diagnostic::error(step.as_deref(), pointer, message));
    }
    out
}

/// A message about a connection's field names the connection, as steps' messages name the step.
fn naming_connection(pointer: &str, message: String) -> String {
    match pointer.strip_prefix("/connections/").map(|rest| rest.split('/').next().unwrap_or_default()) {
        Some(name) if !name.is_empty() => {
            format!("connection '{}': {message}", name.replace("~1", "/").replace("~0", "~"))
        }
        _ => message,
    }
}

/// What the compiler calls the parameter at `pointer`: `parameter 2` in a list, `parameter 'id'`
/// among a connector's named parameters, `left` or `right` in a decision.
fn param_name(value: &serde_json::Value, pointer: &str) -> Option<String> {
    let (parent, last) = pointer.rsplit_once('/')?;
    match value.pointer(parent)? {
        serde_json::Value::Array(_) => last.parse::<usize>().ok().map(|i| format!("parameter {}", i + 1)),
        serde_json::Value::Object(_) if parent.ends_with("/parameters") => {
            Some(format!("parameter '{}'", last.replace("~1", "/").replace("~0", "~")))
        }
        serde_json::Value::Object(_) if last == "left" || last == "right" => Some(last.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundled_schema_compiles() {
        let _ = super::compiled();
    }

    /// The schema alone (as editors use it) allows exactly one source key per parameter.
    #[test]
    fn a_parameter_has_exactly_one_source() {
        let process = |param: serde_json::Value| {
            serde_json::json!({
                "name": "p",
                "start": {"type": "no_data", "next": "a"},
                "steps": {"a": {"type": "notify", "template": "{1}", "parameters": [param], "next": "b"}, "b": {"type": "stop"}}
            })
        };
        let valid = |param| super::compiled().validator.is_valid(&process(param));
        assert!(valid(serde_json::json!({"static": "a"})));
        assert!(valid(serde_json::json!({"json": "/a", "default": "x"})));
        assert!(!valid(serde_json::json!({"static": "a", "json": "/a"})));
        assert!(!valid(serde_json::json!({"default": "x"})));
        assert!(!valid(serde_json::json!({})));
    }

    #[test]
    fn suggests_close_keys() {
        assert_eq!(super::did_you_mean("nxt", ["next", "type"]), Some("next"));
        assert_eq!(super::did_you_mean("templat", ["template"]), Some("template"));
        assert_eq!(super::did_you_mean("zzzzzz", ["next"]), None);
    }
}

/// Every schema under `schemas/` is compiled with draft 7 rules although it says 2020-12 (see
/// `connector_http::JsonSchema::compile`): it may only use keywords whose meaning is the same in
/// both drafts, and no `$ref` beside another assertion (draft 7 ignores a `$ref`'s siblings).
#[cfg(test)]
mod draft7 {
    const SAME_IN_BOTH: &[&str] = &[
        "$defs",
        "$id",
        "$ref",
        "$schema",
        "$comment",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "default",
        "description",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "if",
        "then",
        "else",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "not",
        "oneOf",
        "pattern",
        "properties",
        "patternProperties",
        "propertyNames",
        "required",
        "title",
        "type",
        "uniqueItems",
        "examples",
    ];
    const ANNOTATIONS: &[&str] = &["description", "title", "default", "$comment", "examples"];

    fn check(file: &str, at: &str, value: &serde_json::Value, problems: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if map.contains_key("$ref") {
                    let extra: Vec<&String> = map
                        .keys()
                        .filter(|k| *k != "$ref" && !ANNOTATIONS.contains(&k.as_str()) && !k.starts_with("x-"))
                        .collect();
                    if !extra.is_empty() {
                        problems.push(format!("{file}{at}: $ref beside {extra:?}"));
                    }
                }
                for (k, v) in map {
                    let child = format!("{at}/{k}");
                    if matches!(k.as_str(), "properties" | "$defs" | "patternProperties") {
                        for (name, sub) in v.as_object().into_iter().flatten() {
                            check(file, &format!("{child}/{name}"), sub, problems);
                        }
                        continue;
                    }
                    if !SAME_IN_BOTH.contains(&k.as_str()) && !k.starts_with("x-") {
                        problems.push(format!("{file}{child}: keyword '{k}' is not known to mean the same in draft 7"));
                    }
                    if !matches!(k.as_str(), "enum" | "const" | "default" | "examples" | "required") {
                        check(file, &child, v, problems);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(file, &format!("{at}/{i}"), v, problems);
                }
            }
            _ => {}
        }
    }

    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }

    #[test]
    fn schemas_mean_the_same_in_draft_7() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let mut files = Vec::new();
        walk(&root, &mut files);
        assert!(files.len() > 40, "{files:?}");
        let mut problems = Vec::new();
        for file in &files {
            let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            check(&file.display().to_string(), "", &value, &mut problems);
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

/// Whether `pointer` is a secret of a connection: a `token`, or the secret of an http `auth`.
fn is_secret_pointer(pointer: &str) -> bool {
    pointer.ends_with("/token")
        || pointer == "/start/secret"
        || ["/auth/password", "/auth/value", "/auth/client_secret"].iter().any(|s| pointer.ends_with(s))
}
