//! GraphQL documents and answers: builds `query`/`mutation` text from the operation table and
//! reads answers, turning top-level `errors` (which KnowBe4 sends with HTTP 200) and mutation
//! payload `errors` into API errors.

use engine::{ApiError, ErrorKind, FieldError};
use serde_json::{Map, Value};

use crate::ops::Arg;

/// A GraphQL request body.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub query: String,
    pub variables: Map<String, Value>,
}

impl Request {
    pub fn body(&self) -> Value {
        serde_json::json!({ "query": self.query, "variables": self.variables })
    }
}

/// `kind($a: T, ...) { field(a: $a, ..., fixed) { select } }` with the arguments of `allowed`
/// that `input` has (a `null` counts as absent), plus `extra` arguments.
pub(crate) fn build(
    kind: &str,
    field: &str,
    allowed: &[Arg],
    input: &Map<String, Value>,
    extra: &[(Arg, Value)],
    fixed: &str,
    select: &str,
) -> Request {
    let mut decls = Vec::new();
    let mut uses = Vec::new();
    let mut variables = Map::new();
    let present = allowed.iter().filter_map(|a| input.get(a.name).filter(|v| !v.is_null()).map(|v| (*a, v.clone())));
    for (arg, value) in present.chain(extra.iter().cloned()) {
        if variables.contains_key(arg.name) {
            continue;
        }
        decls.push(format!("${}: {}", arg.name, arg.ty));
        uses.push(format!("{0}: ${0}", arg.name));
        variables.insert(arg.name.to_owned(), value);
    }
    if !fixed.is_empty() {
        uses.push(fixed.to_owned());
    }
    let decls = if decls.is_empty() { String::new() } else { format!("({})", decls.join(", ")) };
    let uses = if uses.is_empty() { String::new() } else { format!("({})", uses.join(", ")) };
    let select = if select.is_empty() { String::new() } else { format!(" {{ {select} }}") };
    Request { query: format!("{kind}{decls} {{ {field}{uses}{select} }}"), variables }
}

/// One entry of a mutation payload's `errors`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PayloadError {
    pub field: Option<String>,
    pub reason: String,
    pub record_id: Option<i64>,
    pub placeholders: Option<Value>,
}

impl PayloadError {
    fn describe(&self) -> String {
        let mut s = match &self.field {
            Some(f) => format!("{f}: {}", self.reason),
            None => self.reason.clone(),
        };
        if let Some(Value::Object(p)) = &self.placeholders {
            let parts: Vec<String> = p
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k} {s}"),
                    v => format!("{k} {v}"),
                })
                .collect();
            if !parts.is_empty() {
                s.push_str(&format!(" ({})", parts.join(", ")));
            }
        }
        if let Some(id) = self.record_id {
            s.push_str(&format!(" [record {id}]"));
        }
        s
    }
}

/// The payload `errors` of a mutation answer (empty on success).
pub(crate) fn payload_errors(payload: &Value) -> Vec<PayloadError> {
    let Some(list) = payload.get("errors").and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .map(|e| PayloadError {
            field: e.get("field").and_then(Value::as_str).map(str::to_owned),
            reason: e.get("reason").and_then(Value::as_str).unwrap_or("error").to_owned(),
            record_id: e.get("recordId").and_then(Value::as_i64),
            placeholders: e.get("placeholders").filter(|p| !p.is_null()).cloned(),
        })
        .collect()
}

/// The API error of a refused mutation.
pub(crate) fn refused(operation: &str, errors: &[PayloadError]) -> ApiError {
    let what: Vec<String> = errors.iter().map(PayloadError::describe).collect();
    ApiError {
        body: None,
        kind: ErrorKind::Api,
        status: Some(200),
        message: format!("KnowBe4 refused {operation}: {}", what.join("; ")),
        details: errors
            .iter()
            .map(|e| FieldError { field: e.field.clone().unwrap_or_default(), reason: e.reason.clone() })
            .collect(),
    }
}

/// `data.<field>` of a GraphQL answer, or the API error its top-level `errors` describe.
pub(crate) fn field_of(body: &Value, field: &str, operation: &str) -> Result<Value, ApiError> {
    if let Some(errors) = body.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty()) {
        let messages: Vec<String> = errors
            .iter()
            .map(|e| e.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_owned())
            .collect();
        let details = errors
            .iter()
            .map(|e| {
                let path = e
                    .get("path")
                    .and_then(Value::as_array)
                    .map(|p| {
                        p.iter()
                            .map(|x| match x {
                                Value::String(s) => s.clone(),
                                v => v.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .unwrap_or_default();
                let reason = e
                    .pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_else(|| "graphql".to_owned());
                FieldError { field: path, reason }
            })
            .collect();
        return Err(ApiError {
            body: None,
            kind: ErrorKind::Api,
            status: Some(200),
            message: format!("KnowBe4 answered {operation} with errors: {}", messages.join("; ")),
            details,
        });
    }
    match body.pointer(&format!("/data/{field}")) {
        Some(v) => Ok(v.clone()),
        None => Err(ApiError {
            body: None,
            kind: ErrorKind::Api,
            status: Some(200),
            message: format!("KnowBe4's answer to {operation} has no data.{field}"),
            details: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arg(name: &'static str, ty: &'static str) -> Arg {
        Arg { name, ty }
    }

    #[test]
    fn builds_only_present_arguments() {
        let input = json!({"email": "a@b.co", "firstName": "A", "lastName": null});
        let r = build(
            "mutation",
            "userCreate",
            &[arg("email", "String!"), arg("firstName", "String!"), arg("lastName", "String!")],
            input.as_object().unwrap(),
            &[],
            "",
            "node { id } errors { field }",
        );
        assert_eq!(
            r.query,
            "mutation($email: String!, $firstName: String!) { userCreate(email: $email, firstName: $firstName) { node { id } errors { field } } }"
        );
        assert_eq!(Value::Object(r.variables), json!({"email": "a@b.co", "firstName": "A"}));
        let r =
            build("query", "storePurchases", &[], &Map::new(), &[(arg("page", "Int!"), json!(1))], "", "nodes { id }");
        assert_eq!(r.query, "query($page: Int!) { storePurchases(page: $page) { nodes { id } } }");
        let r = build(
            "mutation",
            "groupArchive",
            &[arg("ids", "[Int!]!")],
            json!({"ids": [1]}).as_object().unwrap(),
            &[],
            "archive: true",
            "nodes { id }",
        );
        assert_eq!(r.query, "mutation($ids: [Int!]!) { groupArchive(ids: $ids, archive: true) { nodes { id } } }");
    }

    #[test]
    fn top_level_errors_are_api_errors() {
        let body = json!({"data": null, "errors": [{"message": "Read Only scope", "path": ["userCreate"], "extensions": {"code": "FORBIDDEN"}}]});
        let e = field_of(&body, "userCreate", "userCreate").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Api);
        assert_eq!(e.status, Some(200));
        assert!(e.message.contains("Read Only scope"));
        assert_eq!(e.details, vec![FieldError { field: "userCreate".into(), reason: "forbidden".into() }]);
        assert_eq!(field_of(&json!({"data": {"user": null}}), "user", "user").unwrap(), Value::Null);
        assert!(field_of(&json!({}), "user", "user").is_err());
    }

    #[test]
    fn payload_errors_become_details() {
        let payload = json!({"node": null, "errors": [{"field": "name", "reason": "too_long", "recordId": null, "placeholders": {"count": 128}}]});
        let errs = payload_errors(&payload);
        let e = refused("groupCreate", &errs);
        assert_eq!(e.message, "KnowBe4 refused groupCreate: name: too_long (count 128)");
        assert_eq!(e.details, vec![FieldError { field: "name".into(), reason: "too_long".into() }]);
        assert!(payload_errors(&json!({"node": {"id": 1}, "errors": []})).is_empty());
    }
}
