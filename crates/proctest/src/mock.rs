//! A mocked connection: a `connector_http::Transport` that answers each request from a case's
//! answers and keeps every request it got. The connector above it is the real one.

use std::sync::Mutex;

use connector_http::reqwest::header::HeaderMap;
use connector_http::{Answer, Class, Fault, Outgoing, Transport};
use serde_json::{Value, json};

use crate::format::{Mock, Order, Reply, RequestMatch};

/// A request as a test sees it (no headers: credentials are never kept).
pub fn describe(req: &Outgoing<'_>) -> Value {
    let body = match (req.json, req.text) {
        (_, Some((text, _))) => Value::String(text.to_owned()),
        (Some(json), None) => json.clone(),
        (None, None) => Value::Null,
    };
    let operation = body.get("query").and_then(Value::as_str).and_then(graphql_operation);
    json!({
        "method": req.method.as_str(),
        "path": req.url.path(),
        "operation": operation,
        "body": body,
    })
}

/// The first field a GraphQL document asks for: `users` in `query($p: Int) { users(p: $p) { id } }`.
pub fn graphql_operation(query: &str) -> Option<String> {
    let rest = &query[query.find('{')? + 1..];
    let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// Whether `actual` contains `expected`: equal, or for objects every expected key with a
/// containing value, for arrays as many items each containing the expected one.
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (Value::Array(a), Value::Array(e)) => a.len() == e.len() && a.iter().zip(e).all(|(x, y)| contains(x, y)),
        _ => actual == expected,
    }
}

/// Whether `path` ends with the segments of `end`: `Role/query` ends `/api/x/Role/query` but
/// not `/api/x/AccountUserRole/query`.
pub fn path_ends_with(path: &str, end: &str) -> bool {
    let end = end.trim_start_matches('/');
    path.trim_end_matches('/') == end
        || path.strip_suffix(end).is_some_and(|rest| rest.ends_with('/'))
        || end.is_empty()
}

/// Whether a described request matches `m`.
pub fn matches(request: &Value, m: &RequestMatch) -> bool {
    let str_at = |key: &str| request.get(key).and_then(Value::as_str).unwrap_or("");
    m.method.as_deref().is_none_or(|x| x.eq_ignore_ascii_case(str_at("method")))
        && m.path.as_deref().is_none_or(|x| path_ends_with(str_at("path"), x))
        && m.operation.as_deref().is_none_or(|x| x == str_at("operation"))
        && m.body.as_ref().is_none_or(|b| request.get("body").is_some_and(|a| contains(a, b)))
}

/// The transport of one mocked connection in one case.
#[derive(Debug)]
pub struct MockTransport {
    connection: String,
    mock: Mock,
    received: Mutex<Vec<Value>>,
    /// Requests no answer was given for, with why.
    unanswered: Mutex<Vec<String>>,
    /// `order: once`: which answers have answered.
    used: Mutex<Vec<bool>>,
}

impl MockTransport {
    pub fn new(connection: &str, mock: Mock) -> MockTransport {
        MockTransport {
            connection: connection.to_owned(),
            received: Mutex::default(),
            unanswered: Mutex::default(),
            used: Mutex::new(vec![false; mock.answers.len()]),
            mock,
        }
    }

    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn unanswered(&self) -> Vec<String> {
        self.unanswered.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn pick(&self, request: &Value, index: usize) -> Result<&Reply, String> {
        match self.mock.order {
            Order::Match => {
                self.mock.answers.iter().find(|a| matches(request, &a.when)).map(|a| &a.reply).ok_or_else(|| {
                    format!("connection '{}': no answer matches request {index}: {request}", self.connection)
                })
            }
            Order::Once => {
                let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
                let found =
                    self.mock.answers.iter().zip(used.iter()).position(|(a, u)| !u && matches(request, &a.when));
                let i = found.ok_or_else(|| {
                    format!("connection '{}': no unused answer matches request {index}: {request}", self.connection)
                })?;
                used[i] = true;
                Ok(&self.mock.answers[i].reply)
            }
            Order::Sequence => match self.mock.answers.get(index - 1) {
                Some(a) if matches(request, &a.when) => Ok(&a.reply),
                Some(_) => Err(format!(
                    "connection '{}': request {index} does not match answer {index}: {request}",
                    self.connection
                )),
                None => Err(format!(
                    "connection '{}': request {index} but only {} answers: {request}",
                    self.connection,
                    self.mock.answers.len()
                )),
            },
        }
    }
}

fn permanent(message: String) -> Fault {
    Fault { class: Class::Permanent, status: None, message }
}

#[async_trait::async_trait]
impl Transport for MockTransport {
    async fn send(&self, req: &Outgoing<'_>) -> Result<Answer, Fault> {
        let request = describe(req);
        let index = {
            let mut received = self.received.lock().unwrap_or_else(|p| p.into_inner());
            received.push(request.clone());
            received.len()
        };
        let reply = match self.pick(&request, index) {
            Ok(r) => r,
            Err(why) => {
                self.unanswered.lock().unwrap_or_else(|p| p.into_inner()).push(why.clone());
                return Err(permanent(format!("mock: {why}")));
            }
        };
        if let Some(fault) = &reply.fault {
            return Err(permanent(fault.clone()));
        }
        let (status, body) = match (&reply.body, &reply.message) {
            (Some(body), _) => (reply.status.unwrap_or(200), body.clone()),
            (None, message) => (reply.status.unwrap_or(500), json!({ "message": message.clone().unwrap_or_default() })),
        };
        let body = serde_json::to_vec(&body).map_err(|e| permanent(e.to_string()))?;
        Ok(Answer { status, headers: HeaderMap::new(), body: body.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graphql_operation_is_the_first_field_asked_for() {
        assert_eq!(graphql_operation("query($p: Int!) { users(page: $p) { id } }").as_deref(), Some("users"));
        assert_eq!(
            graphql_operation("mutation { userArchive(userIds: [1]) { node { id } } }").as_deref(),
            Some("userArchive")
        );
        assert_eq!(graphql_operation("no braces"), None);
    }

    #[test]
    fn a_path_matches_by_whole_segments_at_its_end() {
        assert!(path_ends_with("/api/rest/v1/acme/Role/query", "Role/query"));
        assert!(path_ends_with("/api/rest/v1/acme/Role/query", "/acme/Role/query"));
        assert!(!path_ends_with("/api/rest/v1/acme/AccountUserRole/query", "Role/query"));
        assert!(path_ends_with("/graphql", "/graphql"));
        assert!(path_ends_with("/graphql", "graphql"));
    }

    #[test]
    fn containment_is_by_keys_for_objects_and_by_position_for_arrays() {
        let actual = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}});
        assert!(contains(&actual, &json!({"b": {"c": [1, {"d": 2}]}})));
        assert!(!contains(&actual, &json!({"b": {"c": [1]}})), "arrays keep their length");
        assert!(!contains(&actual, &json!({"a": 2})));
        assert!(!contains(&actual, &json!({"z": null})), "a missing key is not null");
    }

    #[test]
    fn the_bundled_schema_compiles_and_refuses_a_reply_with_a_body_and_a_fault() {
        let schema: Value = serde_json::from_str(crate::TEST_SCHEMA).unwrap();
        let v = jsonschema::draft7::new(&schema).unwrap();
        let file = |reply: Value| json!({"process": "p.yaml", "cases": [{"name": "c", "mocks": {"k": {"answers": [{"reply": reply}]}}}]});
        assert!(v.is_valid(&file(json!({"body": {}}))));
        assert!(v.is_valid(&file(json!({"status": 404, "message": "gone"}))));
        assert!(v.is_valid(&file(json!({"fault": "reset"}))));
        assert!(!v.is_valid(&file(json!({"body": {}, "fault": "reset"}))));
        assert!(!v.is_valid(&file(json!({"status": 404}))));
    }
}
