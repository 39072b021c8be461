//! A connected http connection: builds each document's request (path, query, body), sends it
//! through the shared caller (pacer, retries), reads the pages, and splits records.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use compiler::{HttpBody, PaginateSpec};
use connector_http::reqwest::Url;
use connector_http::reqwest::header::LINK;
use connector_http::{Caller, JsonRequest, JsonResponse, JsonSchema, SendError};
use engine::{
    ApiError, ConnectorError, Document, ErrorKind, FieldError, Input, OperationRef, Output, Redactor, Secret,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::auth::TokenCache;
use crate::options::{Piece, StepOptions};

/// Characters of a path parameter left as they are: RFC 3986's unreserved set. Everything else
/// (`/`, `?`, `#`, `%`, spaces, ...) is percent-encoded, so a value is always one segment.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// How requests carry the credential beyond the client's fixed headers.
#[derive(Debug)]
pub enum Bearer {
    None,
    Token(Secret),
    OAuth2 { cache: Arc<TokenCache>, token_caller: Caller },
}

pub struct Rest {
    pub connection: String,
    pub base: Url,
    pub caller: Caller,
    pub bearer: Bearer,
    pub redactor: Redactor,
    pub base_dir: PathBuf,
    /// Schema files, compiled on first use, by path as written.
    pub schemas: Mutex<HashMap<String, Result<Arc<JsonSchema>, String>>>,
}

/// A step's request for one document, before paging.
struct Request {
    url: Url,
    body: Option<Value>,
    text: Option<String>,
}

impl Rest {
    fn options(&self, op: &OperationRef<'_>) -> Result<StepOptions, ConnectorError> {
        StepOptions::read(op.options).map_err(|problems| ConnectorError::Config {
            connection: self.connection.clone(),
            message: problems.into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "),
        })
    }

    fn schema(&self, path: &str) -> Result<Arc<JsonSchema>, String> {
        let mut cache = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(path.to_owned())
            .or_insert_with(|| {
                let full = self.base_dir.join(path);
                let text = std::fs::read_to_string(&full)
                    .map_err(|e| format!("cannot read the schema file '{}': {e}", full.display()))?;
                JsonSchema::compile(path, &text).map(Arc::new).map_err(|e| e.to_string())
            })
            .clone()
    }

    /// The URL of `input`'s request: the base URL, the path with its parameters
    /// percent-encoded, and the query parameters.
    fn url(&self, options: &StepOptions, input: &Input) -> Result<Url, Vec<FieldError>> {
        let mut path = self.base.path().trim_end_matches('/').to_owned();
        for piece in &options.path {
            match piece {
                Piece::Text(t) => path.push_str(t),
                Piece::Param(name) => match input.parameters.get(name) {
                    Some(v) if !v.is_empty() => path.extend(utf8_percent_encode(v, PATH_VALUE)),
                    _ => {
                        return Err(vec![FieldError {
                            field: format!("parameters/{name}"),
                            reason: "empty".to_owned(),
                        }]);
                    }
                },
            }
        }
        let mut url = self.base.clone();
        url.set_path(if path.is_empty() { "/" } else { &path });
        if !input.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &input.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn request(&self, options: &StepOptions, input: &Input) -> Result<Request, Vec<FieldError>> {
        let url = self.url(options, input)?;
        let blank = input.document.data.iter().all(u8::is_ascii_whitespace);
        let (body, text) = match options.body {
            HttpBody::None => (None, None),
            HttpBody::Json if blank => (None, None),
            HttpBody::Json => (Some(connector_http::document_json(&input.document)?), None),
            HttpBody::Text => (None, Some(input.document.text().into_owned())),
        };
        Ok(Request { url, body, text })
    }

    /// Sends one request; an OAuth2 token the API refuses (401) is fetched again once.
    async fn send(&self, options: &StepOptions, url: &Url, req: &Request) -> Result<JsonResponse, SendError> {
        let mut refused: Option<Secret> = None;
        loop {
            let token = match &self.bearer {
                Bearer::None => None,
                Bearer::Token(t) => Some(t.clone()),
                Bearer::OAuth2 { cache, token_caller } => {
                    Some(cache.token(token_caller, &self.redactor, refused.as_ref()).await?)
                }
            };
            let json = JsonRequest {
                method: options.method.http(),
                url,
                bearer: token.as_ref().map(Secret::expose),
                body: req.body.as_ref(),
                label: options.method.as_str(),
                timeout: None,
            };
            let result = match &req.text {
                Some(text) => self.caller.send_text(&json, text, "text/plain; charset=utf-8", options.safety()).await,
                None => self.caller.send_json(&json, options.safety()).await,
            };
            match result {
                Err(SendError::Status { status: 401, .. })
                    if refused.is_none() && matches!(self.bearer, Bearer::OAuth2 { .. }) =>
                {
                    tracing::info!(connection = %self.connection, "The API refused the access token (401); fetching a new one.");
                    refused = token;
                }
                other => return other,
            }
        }
    }

    /// Every page of `input`'s request, each answer's records pushed as documents.
    async fn run_one(&self, options: &StepOptions, i: usize, req: Request, out: &mut Output) -> Result<(), ApiError> {
        let mut url = req.url.clone();
        let mut pages: u64 = 0;
        let mut seen = std::collections::HashSet::new();
        loop {
            pages += 1;
            let answer = self.send(options, &url, &req).await.map_err(|e| self.api_error(e))?;
            if out.recording() {
                out.exchange(
                    i,
                    serde_json::json!({
                        "request": {"method": options.method.as_str(), "url": url.as_str(), "body": req.body},
                        "response": {"status": answer.status, "body": answer.body},
                    }),
                );
            }
            let count = self.push_records(options, i, &answer.body, out)?;
            let Some(next) = self.next_page(options, &url, &answer, count, pages)? else { return Ok(()) };
            if !seen.insert(next.to_string()) || next == url {
                return Err(api(None, format!("paging does not advance: page {} is again '{next}'", pages + 1)));
            }
            url = next;
        }
    }

    /// The documents of one answer: the records at the step's pointer, or the whole answer.
    fn push_records(&self, options: &StepOptions, i: usize, body: &Value, out: &mut Output) -> Result<usize, ApiError> {
        let Some(pointer) = &options.records else {
            let data = if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap_or_default() };
            out.ok(i, Document::new(data));
            return Ok(1);
        };
        let records = match body.pointer(pointer) {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None if body.is_null() => return Ok(0),
            Some(other) => {
                return Err(api(
                    None,
                    format!("the answer's '{pointer}' is not an array of records but {}", kind(other)),
                ));
            }
            None => return Err(api(None, format!("the answer has no '{pointer}' (the step's 'records')"))),
        };
        for r in records {
            out.ok(i, Document::new(serde_json::to_vec(r).unwrap_or_default()));
        }
        Ok(records.len())
    }

    /// The URL of the next page, or `None` when the paging's stop rule says this was the last.
    fn next_page(
        &self,
        options: &StepOptions,
        url: &Url,
        answer: &JsonResponse,
        count: usize,
        pages: u64,
    ) -> Result<Option<Url>, ApiError> {
        let Some(paginate) = &options.paginate else { return Ok(None) };
        if max_pages(paginate).is_some_and(|max| pages >= max) {
            return Ok(None);
        }
        let text_at = |pointer: &str| match answer.body.pointer(pointer) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let next = match paginate {
            PaginateSpec::LinkHeader { .. } => {
                let links = answer.headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok());
                match links.filter_map(next_link).next() {
                    Some(link) => Some(self.same_origin(url.join(&link).ok(), &link)?),
                    None => None,
                }
            }
            PaginateSpec::NextUrl { pointer, .. } => match text_at(pointer) {
                Some(link) => Some(self.same_origin(url.join(&link).ok(), &link)?),
                None => None,
            },
            PaginateSpec::Cursor { pointer, param, .. } => text_at(pointer).map(|c| with_param(url, param, &c)),
            PaginateSpec::Page { param, start, size, .. } => {
                let stop = count == 0 || size.is_some_and(|s| (count as u64) < s);
                let page = start.unwrap_or(1) + pages;
                (!stop).then(|| with_param(url, param, &page.to_string()))
            }
            PaginateSpec::Offset { param, size, .. } => {
                let stop = count == 0 || (count as u64) < *size;
                (!stop).then(|| with_param(url, param, &(pages * size).to_string()))
            }
        };
        Ok(next)
    }

    /// A next-page URL, refused unless it is on the connection's own origin: the credential
    /// goes with it.
    fn same_origin(&self, url: Option<Url>, link: &str) -> Result<Url, ApiError> {
        match url {
            Some(u) if u.origin() == self.base.origin() => Ok(u),
            _ => Err(api(
                None,
                format!(
                    "the next page '{link}' is not on the connection's origin ({}); not following it with the credential",
                    self.base.origin().ascii_serialization()
                ),
            )),
        }
    }

    fn api_error(&self, e: SendError) -> ApiError {
        match e {
            SendError::Status { status, message, body, .. } => {
                let body = body.unwrap_or_else(|| Value::String(message.clone()));
                ApiError {
                    kind: ErrorKind::Api,
                    status: Some(status),
                    message,
                    details: Vec::new(),
                    body: Some(Box::new(body)),
                }
            }
            SendError::Transport { message, .. } => {
                ApiError { kind: ErrorKind::Transport, status: None, message, details: Vec::new(), body: None }
            }
            SendError::Ambiguous { status, message, .. } => ApiError {
                kind: ErrorKind::Transport,
                status,
                message: format!(
                    "{message}; the request may have been carried out, so it was not sent again \
                     (a post or patch is retried only when the step says 'idempotent: true')"
                ),
                details: Vec::new(),
                body: None,
            },
        }
    }
}

fn api(status: Option<u16>, message: String) -> ApiError {
    ApiError { kind: ErrorKind::Api, status, message, details: Vec::new(), body: None }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn max_pages(p: &PaginateSpec) -> Option<u64> {
    match p {
        PaginateSpec::LinkHeader { max_pages }
        | PaginateSpec::NextUrl { max_pages, .. }
        | PaginateSpec::Cursor { max_pages, .. }
        | PaginateSpec::Page { max_pages, .. }
        | PaginateSpec::Offset { max_pages, .. } => *max_pages,
    }
}

/// `url` with query parameter `param` set to `value` (replaced if present).
fn with_param(url: &Url, param: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| k != param).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut next = url.clone();
    next.set_query(None);
    {
        let mut pairs = next.query_pairs_mut();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        pairs.append_pair(param, value);
    }
    next
}

/// The `rel="next"` target of one `Link` header value (RFC 8288), if it has one.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let Some((k, v)) = p.split_once('=') else { return false };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
        });
        is_next.then(|| target.to_owned())
    })
}

/// Page and page-size parameters added to the first request.
fn first_page(options: &StepOptions, url: &mut Url) {
    let set = |url: &mut Url, param: &str, value: String| *url = with_param(url, param, &value);
    match &options.paginate {
        Some(PaginateSpec::Page { param, start, size, size_param, .. }) => {
            set(url, param, start.unwrap_or(1).to_string());
            if let (Some(sp), Some(size)) = (size_param, size) {
                set(url, sp, size.to_string());
            }
        }
        Some(PaginateSpec::Offset { param, size, size_param, .. }) => {
            set(url, param, "0".to_owned());
            if let Some(sp) = size_param {
                set(url, sp, size.to_string());
            }
        }
        _ => {}
    }
}

#[async_trait::async_trait]
impl engine::Connector for Rest {
    fn validate(&self, op: &OperationRef<'_>, input: &Input) -> Result<(), Vec<FieldError>> {
        let options = StepOptions::read(op.options)
            .map_err(|p| p.into_iter().map(|p| FieldError { field: p.field, reason: p.message }).collect::<Vec<_>>())?;
        self.request(&options, input)?;
        if let Some(path) = &options.schema {
            let schema = self.schema(path).map_err(|e| vec![FieldError { field: "schema".to_owned(), reason: e }])?;
            let json = connector_http::document_json(&input.document)?;
            let problems = schema.validate(&json);
            if !problems.is_empty() {
                return Err(problems);
            }
        }
        Ok(())
    }

    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        let options = self.options(op)?;
        for (i, input) in inputs.iter().enumerate() {
            let mut req = match self.request(&options, input) {
                Ok(r) => r,
                Err(details) => {
                    if out.fail(i, connector_http::invalid_input(details)) {
                        return Ok(());
                    }
                    continue;
                }
            };
            first_page(&options, &mut req.url);
            if let Err(e) = self.run_one(&options, i, req, out).await
                && out.fail(i, e)
            {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let h = r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
        assert_eq!(next_link(h).as_deref(), Some("https://api.github.com/x?page=2"));
        assert_eq!(next_link(r#"<https://a/x?page=9>; rel="last""#), None);
        assert_eq!(next_link(r#"</p/3>; title="x"; rel="prev next""#).as_deref(), Some("/p/3"));
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn path_values_are_one_segment() {
        let enc: String = utf8_percent_encode("a/b c?d#%é~_.-", PATH_VALUE).collect();
        assert_eq!(enc, "a%2Fb%20c%3Fd%23%25%C3%A9~_.-");
    }

    #[test]
    fn page_parameters_replace_their_old_value() {
        let url = Url::parse("https://h/x?a=1&page=1&b=2").unwrap();
        assert_eq!(with_param(&url, "page", "2").as_str(), "https://h/x?a=1&b=2&page=2");
    }
}
