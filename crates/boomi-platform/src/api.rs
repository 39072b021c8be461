//! Calls to the Boomi Platform API of one account: JSON requests through the shared
//! `connector_http::Caller` (pacing, retries), queries read to the last page through
//! `queryMore`, Boomi's three error body shapes, and the request/response record that test mode
//! dumps (never a header, so never the credentials).

use connector_http::reqwest::{Method, Url};
use connector_http::{Caller, JsonRequest, Safety, SendError};
use engine::{ApiError, ErrorKind};
use serde_json::{Map, Value, json};

use crate::ops::Object;

/// The exchanges of one input, in order, for test-mode dumps.
pub type Trace = Vec<Value>;

/// A failed call, with what Boomi said.
#[derive(Clone, Debug)]
pub struct CallFailed {
    /// The HTTP status, `None` when no answer came.
    pub status: Option<u16>,
    /// Boomi's message (from any of its error body shapes).
    pub message: String,
    /// What was being done, for messages ("AccountUserRole create").
    pub what: String,
    pub attempts: u32,
}

impl CallFailed {
    /// A refusal that says the object is already there (a duplicate grant).
    pub fn already_exists(&self) -> bool {
        self.status == Some(400) && self.message.to_ascii_lowercase().contains("already exists")
    }

    pub fn not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// The error of the document this call was for.
    pub fn to_api_error(&self) -> ApiError {
        let tries = if self.attempts > 1 { format!(" (after {} attempts)", self.attempts) } else { String::new() };
        let (kind, message) = match self.status {
            None => (ErrorKind::Transport, format!("{}: {}{tries}", self.what, self.message)),
            Some(status @ (401 | 403)) => (
                ErrorKind::Api,
                format!(
                    "Boomi refused {} (HTTP {status}: {}); check the connection's account_id, email and token, and \
                     that the API user has the API Access and Account Administrator privileges",
                    self.what, self.message
                ),
            ),
            Some(status) => (ErrorKind::Api, format!("{}: HTTP {status}: {}{tries}", self.what, self.message)),
        };
        ApiError { body: None, kind, status: self.status, message, details: Vec::new() }
    }
}

/// Boomi's message from `{"message"}`, `{"error": {"message"}}` or `{"@type": "Error", "message"}`.
fn message_in(body: Option<&Value>) -> Option<String> {
    let body = body?;
    body.get("message")
        .or_else(|| body.pointer("/error/message"))
        .or_else(|| body.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn failed(what: &str, e: &SendError) -> CallFailed {
    let message = message_in(e.body()).unwrap_or_else(|| match e {
        SendError::Status { message, .. }
        | SendError::Transport { message, .. }
        | SendError::Ambiguous { message, .. } => message.clone(),
    });
    CallFailed { status: e.status(), message, what: what.to_owned(), attempts: e.attempts() }
}

/// The `QueryFilter` body: every filter an EQUALS, joined with `and`; none lists everything.
pub fn query_body(filters: &Map<String, Value>) -> Value {
    let simple: Vec<Value> = filters
        .iter()
        .map(|(property, value)| {
            let argument = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"property": property, "operator": "EQUALS", "argument": [argument]})
        })
        .collect();
    match simple.len() {
        0 => json!({"QueryFilter": {}}),
        1 => json!({"QueryFilter": {"expression": simple[0]}}),
        _ => json!({"QueryFilter": {"expression": {"operator": "and", "nestedExpression": simple}}}),
    }
}

/// Safety net against a server that keeps answering with more pages.
const MAX_PAGES: usize = 100_000;

/// One account's API.
#[derive(Clone, Debug)]
pub struct Api {
    caller: Caller,
    /// `{base}/api/rest/v1/{accountId}/`.
    root: Url,
}

impl Api {
    pub fn new(caller: Caller, root: Url) -> Api {
        Api { caller, root }
    }

    fn url(&self, path: &[&str]) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        url
    }

    fn record(
        trace: &mut Trace,
        method: &Method,
        url: &Url,
        body: Option<Value>,
        result: &Result<connector_http::JsonResponse, SendError>,
    ) {
        let request = json!({"method": method.as_str(), "url": url.as_str(), "body": body});
        let exchange = match result {
            Ok(r) => {
                json!({"request": request, "response": {"status": r.status, "body": r.body}, "attempts": r.attempts})
            }
            Err(e) => json!({
                "request": request,
                "response": {"status": e.status(), "error": e.to_string(), "body": e.body()},
                "attempts": e.attempts(),
            }),
        };
        trace.push(exchange);
    }

    /// One JSON call. Every Boomi call the connector makes is safe to repeat (a repeated create
    /// answers "already exists", a repeated delete 404), so all are retried on transient faults.
    pub async fn call(
        &self,
        method: Method,
        path: &[&str],
        body: Option<&Value>,
        what: &str,
        trace: &mut Trace,
    ) -> Result<Value, CallFailed> {
        let url = self.url(path);
        let req = JsonRequest { method: method.clone(), url: &url, bearer: None, body, label: what, timeout: None };
        let result = self.caller.send_json(&req, Safety::Idempotent).await;
        Self::record(trace, &method, &url, body.cloned(), &result);
        match result {
            Ok(r) => Ok(r.body),
            Err(e) => Err(failed(what, &e)),
        }
    }

    /// Every record of a query, all pages read through `queryMore`.
    pub async fn query(
        &self,
        object: Object,
        filters: &Map<String, Value>,
        trace: &mut Trace,
    ) -> Result<Vec<Value>, CallFailed> {
        let name = object.api_name();
        let what = format!("{name} query");
        let body = query_body(filters);
        let mut page = self.call(Method::POST, &[name, "query"], Some(&body), &what, trace).await?;
        let mut records = Vec::new();
        let mut seen_tokens = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            match page.get("result") {
                Some(Value::Array(items)) => records.extend(items.iter().cloned()),
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(CallFailed {
                        status: Some(200),
                        message: "the answer's result is not a list".to_owned(),
                        what,
                        attempts: 1,
                    });
                }
            }
            let Some(token) = page.get("queryToken").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
                return Ok(records);
            };
            if !seen_tokens.insert(token.to_owned()) {
                return Err(CallFailed {
                    status: Some(200),
                    message: "Boomi answered the same queryToken twice; stopping rather than looping".to_owned(),
                    what,
                    attempts: 1,
                });
            }
            page = self.query_more(name, token, trace).await?;
        }
        Err(CallFailed { status: None, message: format!("more than {MAX_PAGES} pages"), what, attempts: 1 })
    }

    /// `POST /{Object}/queryMore` with the bare token as a `text/plain` body.
    async fn query_more(&self, name: &str, token: &str, trace: &mut Trace) -> Result<Value, CallFailed> {
        let what = format!("{name} queryMore");
        let url = self.url(&[name, "queryMore"]);
        let req =
            JsonRequest { method: Method::POST, url: &url, bearer: None, body: None, label: &what, timeout: None };
        let result = self.caller.send_text(&req, token, "text/plain", Safety::Idempotent).await;
        Self::record(trace, &Method::POST, &url, Some(Value::String(token.to_owned())), &result);
        match result {
            Ok(r) => Ok(r.body),
            Err(e) => Err(failed(&what, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bodies() {
        assert_eq!(query_body(&Map::new()), json!({"QueryFilter": {}}));
        let one: Map<String, Value> = [("userId".to_owned(), json!("a@example.com"))].into_iter().collect();
        assert_eq!(
            query_body(&one),
            json!({"QueryFilter": {"expression": {"property": "userId", "operator": "EQUALS", "argument": ["a@example.com"]}}})
        );
        let two: Map<String, Value> =
            [("userId".to_owned(), json!("a@example.com")), ("roleId".to_owned(), json!("r"))].into_iter().collect();
        let body = query_body(&two);
        assert_eq!(body.pointer("/QueryFilter/expression/operator"), Some(&json!("and")));
        assert_eq!(body.pointer("/QueryFilter/expression/nestedExpression/1/argument/0"), Some(&json!("r")));
    }

    #[test]
    fn error_messages_of_every_shape() {
        assert_eq!(message_in(Some(&json!({"message": "a"}))).as_deref(), Some("a"));
        assert_eq!(message_in(Some(&json!({"error": {"message": "b"}}))).as_deref(), Some("b"));
        assert_eq!(message_in(Some(&json!({"@type": "Error", "message": "c"}))).as_deref(), Some("c"));
        assert_eq!(message_in(Some(&json!({"error": "d"}))).as_deref(), Some("d"));
        assert_eq!(message_in(Some(&json!([1]))), None);
        let dup = CallFailed {
            status: Some(400),
            message: "AccountUserRole already exists: x".into(),
            what: "w".into(),
            attempts: 1,
        };
        assert!(dup.already_exists());
        let e =
            CallFailed { status: Some(401), message: "Unauthorized".into(), what: "Role query".into(), attempts: 1 };
        assert!(e.to_api_error().message.contains("check the connection's account_id"));
        let t = CallFailed { status: None, message: "cannot connect".into(), what: "Role query".into(), attempts: 5 };
        assert_eq!(t.to_api_error().kind, ErrorKind::Transport);
        assert!(t.to_api_error().message.contains("after 5 attempts"));
    }
}
