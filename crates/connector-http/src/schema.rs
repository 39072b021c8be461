//! Validation of a JSON document against an embedded JSON Schema, with errors as
//! `engine::FieldError`s: `field` is the path of the offending value (a property name such as
//! `email`, or a JSON pointer without its leading slash for nested values, such as
//! `attributes/name` or `userIds/2`; empty for the document itself), and `reason` is the JSON
//! Schema keyword that failed (`required`, `type`, `format`, `maxLength`, `enum`,
//! `additionalProperties`, ...).

use std::sync::OnceLock;

use engine::FieldError;
use indexmap::IndexMap;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::error::HttpError;

/// A compiled schema and its source.
pub struct JsonSchema {
    name: String,
    raw: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchema").field("name", &self.name).finish_non_exhaustive()
    }
}

fn join(path: &str, name: &str) -> String {
    let base = path.trim_start_matches('/');
    let name = name.replace('~', "~0").replace('/', "~1");
    if base.is_empty() { name } else { format!("{base}/{name}") }
}

impl JsonSchema {
    /// Compiles `text` (a JSON Schema; formats such as `email` and `date` are asserted).
    ///
    /// The schemas say draft 2020-12 (for editors) but are compiled with draft 7 rules: the
    /// jsonschema crate first checks a schema against its draft's meta-schema, and the 2020-12
    /// meta-schema (`$dynamicRef`s) takes ~50 MB and tens of milliseconds to build, the bulk of
    /// a short run's cost; draft 7's is small. The schemas use only keywords that mean the same
    /// in both drafts, with no `$ref` beside other assertions (`compiler`'s
    /// `schemas_mean_the_same_in_draft_7` test checks every file under `schemas/`).
    pub fn compile(name: &str, text: &str) -> Result<JsonSchema, HttpError> {
        let err = |message: String| HttpError::Schema { name: name.to_owned(), message };
        let raw: Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let validator =
            jsonschema::draft7::options().should_validate_formats(true).build(&raw).map_err(|e| err(e.to_string()))?;
        Ok(JsonSchema { name: name.to_owned(), raw, validator })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema as JSON (for connectors that read their own annotations from it).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Every problem of `instance`; empty when it is valid.
    pub fn validate(&self, instance: &Value) -> Vec<FieldError> {
        let mut out: Vec<FieldError> = Vec::new();
        for e in self.validator.iter_errors(instance) {
            let path = e.instance_path.as_str();
            let mut push = |field: String, reason: &str| {
                let fe = FieldError { field, reason: reason.to_owned() };
                if !out.contains(&fe) {
                    out.push(fe);
                }
            };
            match &e.kind {
                ValidationErrorKind::Required { property } => {
                    let name = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
                    push(join(path, &name), "required");
                }
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for name in unexpected {
                        push(join(path, name), "additionalProperties");
                    }
                }
                _ => {
                    let schema_path = e.schema_path.as_str();
                    let keyword = schema_path.rsplit('/').next().unwrap_or("invalid");
                    let keyword = if keyword.is_empty() { "invalid" } else { keyword };
                    push(path.trim_start_matches('/').to_owned(), keyword);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["email", "firstName"],
        "additionalProperties": false,
        "properties": {
            "email": {"type": "string", "format": "email"},
            "firstName": {"type": "string", "maxLength": 5},
            "attributes": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "day": {"type": "string", "format": "date"}
        }
    }"#;

    fn reasons(v: Value) -> Vec<(String, String)> {
        let s = JsonSchema::compile("t", SCHEMA).unwrap();
        s.validate(&v).into_iter().map(|e| (e.field, e.reason)).collect()
    }

    fn pair(f: &str, r: &str) -> (String, String) {
        (f.to_owned(), r.to_owned())
    }

    #[test]
    fn valid_is_empty() {
        assert!(reasons(json!({"email": "a@example.com", "firstName": "Al"})).is_empty());
    }

    #[test]
    fn names_the_field_and_the_keyword() {
        assert_eq!(reasons(json!({"firstName": "Al"})), vec![pair("email", "required")]);
        assert_eq!(reasons(json!({"email": "nope", "firstName": "Al"})), vec![pair("email", "format")]);
        assert_eq!(reasons(json!({"email": "a@b.co", "firstName": "Alberta"})), vec![pair("firstName", "maxLength")]);
        assert_eq!(reasons(json!({"email": "a@b.co", "firstName": 3})), vec![pair("firstName", "type")]);
        assert_eq!(
            reasons(json!({"email": "a@b.co", "firstName": "A", "x": 1})),
            vec![pair("x", "additionalProperties")]
        );
        assert_eq!(
            reasons(json!({"email": "a@b.co", "firstName": "A", "attributes": {"name": "long"}})),
            vec![pair("attributes/name", "maxLength")]
        );
        assert_eq!(reasons(json!({"email": "a@b.co", "firstName": "A", "ids": [1, "2"]})), vec![pair("ids/1", "type")]);
        assert_eq!(
            reasons(json!({"email": "a@b.co", "firstName": "A", "day": "2025-13-40"})),
            vec![pair("day", "format")]
        );
        assert_eq!(reasons(json!([1])), vec![pair("", "type")]);
    }

    #[test]
    fn a_bad_schema_is_an_error() {
        assert!(JsonSchema::compile("bad", "{").is_err());
        assert!(JsonSchema::compile("bad", r#"{"type": 12}"#).is_err());
    }

    #[test]
    fn schema_sets_name_the_bad_or_missing_schema() {
        static GOOD: SchemaSet = SchemaSet::new(&[("a.get", r#"{"x-stepwise-input": "parameters"}"#)]);
        assert_eq!(GOOD.compile_all(), Ok(()));
        assert!(GOOD.for_validation("a", "get").is_ok());
        let e = GOOD.for_validation("a", "put").unwrap_err();
        assert_eq!(e, vec![FieldError { field: String::new(), reason: "unknown_operation".to_owned() }]);
        static BAD: SchemaSet = SchemaSet::new(&[
            ("a.get", r#"{"x-stepwise-input": "document"}"#),
            ("a.list", r#"{"x-stepwise-input": "nowhere"}"#),
        ]);
        let e = BAD.compile_all().unwrap_err();
        assert!(e.starts_with("a.list: "), "{e}");
    }

    #[test]
    fn document_input_is_json_and_takes_no_parameters() {
        let none = IndexMap::new();
        assert_eq!(document_input(&engine::Document::new(r#"{"a": 1}"#), &none), Ok(json!({"a": 1})));
        let e = document_input(&engine::Document::new("nope"), &none).unwrap_err();
        assert_eq!(e, vec![FieldError { field: String::new(), reason: "json".to_owned() }]);
        let some: IndexMap<String, String> = [("id".to_owned(), "1".to_owned())].into_iter().collect();
        let e = document_input(&engine::Document::new("{}"), &some).unwrap_err();
        assert_eq!(
            e,
            vec![FieldError { field: "parameters/id".to_owned(), reason: "not_a_parameter_of_this_action".to_owned() }]
        );
    }
}

/// `&[(name, text)]` of the schema files `<dir><name>.json`, embedded in the binary: the
/// `sources` of a [`SchemaSet`]. `dir` is relative to the file that uses the macro and ends
/// with a slash.
///
/// ```ignore
/// pub static SCHEMAS: SchemaSet =
///     SchemaSet::new(connector_http::embed_schemas!("../../../schemas/knowbe4/"; "user.create", "user.get"));
/// ```
#[macro_export]
macro_rules! embed_schemas {
    ($dir:literal; $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!($dir, $name, ".json")))),*]
    };
}

/// Where an operation's input comes from: a schema's `x-stepwise-input`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// The document's JSON is the input.
    Document,
    /// The step's parameters are the input.
    Parameters,
    /// The step's parameters when it has any, else the document.
    ParametersOrDocument,
}

/// One operation's compiled input schema.
#[derive(Debug)]
pub struct InputSchema {
    pub schema: JsonSchema,
    pub source: InputSource,
}

/// A connector's embedded input schemas, `(object.action, schema text)`, each compiled on first
/// use. Both network connectors keep theirs in one of these.
pub struct SchemaSet {
    sources: &'static [(&'static str, &'static str)],
    compiled: OnceLock<Vec<OnceLock<Result<InputSchema, String>>>>,
}

impl SchemaSet {
    pub const fn new(sources: &'static [(&'static str, &'static str)]) -> SchemaSet {
        SchemaSet { sources, compiled: OnceLock::new() }
    }

    /// `(object.action, schema text)` of every schema.
    pub fn sources(&self) -> &'static [(&'static str, &'static str)] {
        self.sources
    }

    /// The schema of `object.action`; `Err` when it is missing or does not compile (a bug,
    /// caught by each connector's tests).
    pub fn get(&self, object: &str, action: &str) -> Result<&InputSchema, String> {
        let slots = self.compiled.get_or_init(|| self.sources.iter().map(|_| OnceLock::new()).collect());
        let key = format!("{object}.{action}");
        let index =
            self.sources.iter().position(|(n, _)| *n == key).ok_or_else(|| format!("no input schema for {key}"))?;
        let (name, text) = self.sources[index];
        slots[index].get_or_init(|| compile_input(name, text)).as_ref().map_err(Clone::clone)
    }

    /// The schema of `object.action` for a connector's `validate`: an operation without one is
    /// the input's error `("", "unknown_operation")`.
    pub fn for_validation(&self, object: &str, action: &str) -> Result<&InputSchema, Vec<FieldError>> {
        self.get(object, action)
            .map_err(|_| vec![FieldError { field: String::new(), reason: "unknown_operation".to_owned() }])
    }

    /// Compiles every schema; the first that is bad (for each connector's tests).
    pub fn compile_all(&self) -> Result<(), String> {
        for (name, _) in self.sources {
            let (object, action) = name.split_once('.').ok_or_else(|| format!("{name}: not object.action"))?;
            self.get(object, action).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    }
}

/// How a connector turns step parameters into the JSON its schema validates.
pub type ParametersJson = fn(&Value, &IndexMap<String, String>) -> Value;

impl SchemaSet {
    /// What `validate` can know of a step's parameters from the action's schema: parameters
    /// given to an action whose input is the document, unknown names, required ones missing,
    /// and static values the schema refuses (after `convert`, the connector's conversion).
    pub fn check_call(&self, call: &compiler::StaticCall<'_>, convert: ParametersJson) -> Vec<compiler::CallProblem> {
        let Ok(input) = self.get(call.object, call.action) else { return Vec::new() };
        let op = format!("{}.{}", call.object, call.action);
        let problem = |field: String, message: String| compiler::CallProblem { field, message };
        if input.source == InputSource::Document {
            let takes = format!("'{op}' takes no parameters: its input is the document");
            return call.parameters.iter().map(|(n, _)| problem(format!("parameters/{n}"), takes.clone())).collect();
        }
        let raw = input.schema.raw();
        let known: Vec<&str> = raw
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut problems = Vec::new();
        for (name, _) in call.parameters.iter().filter(|(n, _)| !known.contains(n)) {
            let list =
                if known.is_empty() { "it takes none".to_owned() } else { format!("known: {}", known.join(", ")) };
            problems.push(problem(format!("parameters/{name}"), format!("'{op}' has no parameter '{name}'; {list}")));
        }
        if input.source == InputSource::Parameters {
            let given = |r: &&str| call.parameters.iter().any(|(n, _)| n == r);
            for name in required(raw).filter(|r| !given(r)) {
                problems.push(problem("parameters".to_owned(), format!("'{op}' needs the parameter '{name}'")));
            }
        }
        let statics: IndexMap<String, String> = call
            .parameters
            .iter()
            .filter(|(n, _)| known.contains(n))
            .filter_map(|(n, v)| v.map(|v| ((*n).to_owned(), v.to_owned())))
            .collect();
        for error in input.schema.validate(&convert(raw, &statics)) {
            let name = error.field.split('/').next().unwrap_or_default();
            if let Some(value) = statics.get(name).filter(|_| error.reason != "required") {
                let why = refusal(raw, name, &error.reason);
                problems
                    .push(problem(format!("parameters/{name}"), format!("parameter '{name}': value '{value}' {why}")));
            }
        }
        problems
    }
}

fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

/// Why a parameter's value is refused, in words: the allowed values of an `enum`, the type, or
/// the schema keyword.
fn refusal(schema: &Value, name: &str, keyword: &str) -> String {
    let property = schema.pointer(&format!("/properties/{}", name.replace('~', "~0").replace('/', "~1")));
    let get = |key: &str| property.and_then(|p| p.get(key).or_else(|| p.pointer(&format!("/items/{key}"))));
    match (keyword, get(keyword)) {
        ("enum", Some(Value::Array(values))) => {
            let values: Vec<String> = values.iter().map(|v| v.as_str().map_or(v.to_string(), str::to_owned)).collect();
            format!("is not one of {}", values.join(", "))
        }
        ("type", Some(Value::String(ty))) => format!("is not of type {ty}"),
        (keyword, Some(limit)) if !limit.is_object() => format!("breaks the schema's '{keyword}' ({limit})"),
        (keyword, _) => format!("breaks the schema's '{keyword}'"),
    }
}

/// The error of an input that does not match its schema (the engine normally catches these
/// through the connector's `validate` before `execute`).
pub fn invalid_input(details: Vec<FieldError>) -> engine::ApiError {
    engine::ApiError {
        body: None,
        kind: engine::ErrorKind::Validation,
        status: None,
        message: "the document is not valid input for this action".to_owned(),
        details,
    }
}

/// The document's JSON; `("", "json")` when it is not JSON.
pub fn document_json(document: &engine::Document) -> Result<Value, Vec<FieldError>> {
    serde_json::from_slice::<Value>(&document.data)
        .map_err(|_| vec![FieldError { field: String::new(), reason: "json".to_owned() }])
}

/// The input of an action whose input is the document ([`InputSource::Document`]): its JSON.
/// Such an action takes no step parameters: the first one is `parameters/<name>`
/// `not_a_parameter_of_this_action`.
pub fn document_input(
    document: &engine::Document,
    parameters: &IndexMap<String, String>,
) -> Result<Value, Vec<FieldError>> {
    if let Some(name) = parameters.keys().next() {
        return Err(vec![FieldError {
            field: format!("parameters/{name}"),
            reason: "not_a_parameter_of_this_action".to_owned(),
        }]);
    }
    document_json(document)
}

fn compile_input(name: &str, text: &str) -> Result<InputSchema, String> {
    let schema = JsonSchema::compile(name, text).map_err(|e| e.to_string())?;
    let source = match schema.raw().get("x-stepwise-input").and_then(Value::as_str) {
        Some("document") => InputSource::Document,
        Some("parameters") => InputSource::Parameters,
        Some("parameters_or_document") => InputSource::ParametersOrDocument,
        other => return Err(format!("schema '{name}': bad x-stepwise-input {other:?}")),
    };
    Ok(InputSchema { schema, source })
}
