//! One JSON call through the pacer, with retries.
//!
//! Every attempt waits for a pacer slot. A throttled answer (429) pauses the whole pacer for
//! its `Retry-After` (plus jitter) and is retried without using up an attempt. Transient faults
//! are retried with exponential backoff and jitter, except that a call that is not idempotent
//! is never re-sent after a failure the server may have executed (a timeout, a reset after
//! sending, a 500/502/504, an unreadable answer): it returns [`SendError::Ambiguous`] so that
//! the connector can first check whether the object exists. 401, 403 and other 4xx answers are
//! not retried.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::time::Instant;

use crate::pacer::RateBudget;
use crate::retry::{Class, RetryPolicy, classify_status, parse_retry_after};
use crate::transport::{Outgoing, ReqwestTransport, Transport};

/// Whether a call may be sent twice with the same effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// Reads, and writes whose repetition changes nothing (set a field, add to a group).
    Idempotent,
    /// Creates and the like: re-sent only when the server surely did not execute it.
    NotIdempotent,
}

/// A request with a JSON body (or none). Its `Debug` leaves the bearer token out.
#[derive(Clone)]
pub struct JsonRequest<'a> {
    pub method: reqwest::Method,
    pub url: &'a reqwest::Url,
    /// Sent as `Authorization: Bearer ...`, marked sensitive, never logged.
    pub bearer: Option<&'a str>,
    pub body: Option<&'a Value>,
    /// A short name for logs (for example the GraphQL operation).
    pub label: &'a str,
    /// Overrides the client's request timeout.
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for JsonRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("bearer", &self.bearer.map(|_| "***"))
            .field("label", &self.label)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A successful (2xx) answer with a JSON body (`null` when the body is empty).
#[derive(Clone, Debug)]
pub struct JsonResponse {
    pub status: u16,
    pub body: Value,
    /// The answer's headers (a `Link` header for paging, say).
    pub headers: HeaderMap,
    /// Attempts made, the successful one included (throttled answers not counted).
    pub attempts: u32,
}

/// A call that did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SendError {
    /// An answer with a non-success status that is not retried, or still failing after the
    /// retries.
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String, body: Option<Value>, attempts: u32 },
    /// No usable answer after the retries (connection refused or reset, timeout, unreadable
    /// body).
    #[error("{message}")]
    Transport { message: String, attempts: u32 },
    /// A call that is not idempotent failed in a way the server may have executed it; it was
    /// not re-sent.
    #[error("{message}")]
    Ambiguous { status: Option<u16>, message: String, attempts: u32 },
}

impl SendError {
    pub fn status(&self) -> Option<u16> {
        match self {
            SendError::Status { status, .. } => Some(*status),
            SendError::Transport { .. } => None,
            SendError::Ambiguous { status, .. } => *status,
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            SendError::Status { attempts, .. }
            | SendError::Transport { attempts, .. }
            | SendError::Ambiguous { attempts, .. } => *attempts,
        }
    }

    /// The JSON body of the failed answer, when there was one.
    pub fn body(&self) -> Option<&Value> {
        match self {
            SendError::Status { body, .. } => body.as_ref(),
            _ => None,
        }
    }
}

/// Sends JSON requests through one pacer with one retry policy. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Caller {
    transport: Arc<dyn Transport>,
    pacer: Arc<dyn RateBudget>,
    policy: RetryPolicy,
}

/// A reserved slot of a budget, given back when dropped (so a cancelled call frees it too).
struct Ticket<'a> {
    budget: &'a dyn RateBudget,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.budget.finish(self.id);
    }
}

/// What one attempt gave.
struct Failure {
    class: Class,
    status: Option<u16>,
    message: String,
    body: Option<Value>,
    retry_after: Option<Duration>,
}

/// A readable message of an error answer: its JSON `message`, the first GraphQL error, or the
/// start of its text.
pub fn message_of(bytes: &[u8]) -> (String, Option<Value>) {
    let json: Option<Value> = serde_json::from_slice(bytes).ok();
    let from_json = json.as_ref().and_then(|v| {
        v.get("message")
            .and_then(Value::as_str)
            .or_else(|| v.get("error").and_then(Value::as_str))
            .or_else(|| v.pointer("/errors/0/message").and_then(Value::as_str))
            .map(str::to_owned)
    });
    let message = from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(bytes);
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut short: String = text.chars().take(200).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        if short.is_empty() { "(empty answer)".to_owned() } else { short }
    });
    (message, json)
}

impl Caller {
    pub fn new(client: reqwest::Client, budget: Arc<dyn RateBudget>, policy: RetryPolicy) -> Caller {
        Caller { transport: Arc::new(ReqwestTransport(client)), pacer: budget, policy }
    }

    /// The same caller sending through `transport` instead of the network.
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Caller {
        self.transport = transport;
        self
    }

    /// The rate budget this caller shares.
    pub fn budget(&self) -> &Arc<dyn RateBudget> {
        &self.pacer
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    async fn once(
        &self,
        req: &JsonRequest<'_>,
        text: Option<TextBody<'_>>,
    ) -> Result<(u16, HeaderMap, bytes::Bytes), Failure> {
        let out = Outgoing {
            method: req.method.clone(),
            url: req.url,
            bearer: req.bearer,
            json: req.body,
            text: text.map(|t| (t.text, t.content_type)),
            timeout: req.timeout,
        };
        match self.transport.send(&out).await {
            Ok(a) => Ok((a.status, a.headers, a.body)),
            Err(f) => {
                Err(Failure { class: f.class, status: f.status, message: f.message, body: None, retry_after: None })
            }
        }
    }

    /// Sends `req` until it succeeds, fails for good, or (for `NotIdempotent`) fails in a way
    /// that may have been executed.
    pub async fn send_json(&self, req: &JsonRequest<'_>, safety: Safety) -> Result<JsonResponse, SendError> {
        self.send(req, None, safety).await
    }

    /// The pacing and retry loop of every call; `text`, when given, replaces `req.body`.
    async fn send(
        &self,
        req: &JsonRequest<'_>,
        text: Option<TextBody<'_>>,
        safety: Safety,
    ) -> Result<JsonResponse, SendError> {
        let mut attempts: u32 = 0;
        let mut throttled: u32 = 0;
        let mut bare_throttled: u32 = 0;
        loop {
            attempts += 1;
            let ticket = match self.pacer.acquire().await {
                Ok(id) => Ticket { budget: self.pacer.as_ref(), id },
                Err(e) => {
                    let attempts = attempts - 1;
                    return Err(SendError::Status { status: 429, message: e.reason, body: None, attempts });
                }
            };
            let started = Instant::now();
            let result = self.once(req, text).await;
            drop(ticket);
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let failure = match result {
                Ok((status, headers, bytes)) if (200..300).contains(&status) => {
                    let parsed = if bytes.iter().all(u8::is_ascii_whitespace) {
                        Ok(Value::Null)
                    } else {
                        serde_json::from_slice::<Value>(&bytes)
                    };
                    match parsed {
                        Ok(body) => {
                            tracing::debug!(
                                call = req.label,
                                attempt = attempts,
                                status,
                                elapsed_ms,
                                "HTTP call succeeded."
                            );
                            return Ok(JsonResponse { status, body, headers, attempts });
                        }
                        Err(e) => Failure {
                            class: Class::Transient { maybe_executed: true },
                            status: Some(status),
                            message: format!("the answer (HTTP {status}) is not valid JSON: {e}"),
                            body: None,
                            retry_after: None,
                        },
                    }
                }
                Ok((status, headers, bytes)) => {
                    let (message, body) = message_of(&bytes);
                    Failure {
                        class: classify_status(status),
                        status: Some(status),
                        message,
                        body,
                        retry_after: parse_retry_after(&headers),
                    }
                }
                Err(f) => f,
            };
            tracing::debug!(
                call = req.label,
                attempt = attempts,
                status = failure.status,
                elapsed_ms,
                error = %failure.message,
                "HTTP call failed."
            );
            let give_up = |f: Failure, attempts: u32| match f.status {
                Some(status) if !(200..300).contains(&status) => {
                    SendError::Status { status, message: f.message, body: f.body, attempts }
                }
                _ => SendError::Transport { message: f.message, attempts },
            };
            let class = match failure.class {
                Class::Throttled if self.policy.throttle_as_transient => Class::Transient { maybe_executed: false },
                class => class,
            };
            match class {
                Class::Throttled => {
                    attempts -= 1;
                    throttled += 1;
                    if failure.retry_after.is_none() {
                        bare_throttled += 1;
                    }
                    if bare_throttled > 1 {
                        // Twice throttled with no word on when to come back, after a wait that
                        // covers any per-minute window: a quota (KnowBe4's daily one) is used
                        // up. Every call of this budget fails at once for a while.
                        let until = Instant::now() + self.policy.exhausted_pause;
                        let reason = format!(
                            "rate limit reached and the server says not when to retry (HTTP 429 without \
                             Retry-After, twice, {} s apart): a request quota (a daily limit) is probably used \
                             up; calls with this token are not sent for the next {} minutes",
                            self.policy.default_retry_after.as_secs(),
                            self.policy.exhausted_pause.as_secs().div_ceil(60)
                        );
                        tracing::error!(call = req.label, "{reason}");
                        self.pacer.exhaust(until, reason.clone());
                        return Err(SendError::Status { status: 429, message: reason, body: failure.body, attempts });
                    }
                    let too_long = failure.retry_after.is_some_and(|d| d > self.policy.max_retry_after);
                    if too_long || throttled > self.policy.max_throttled {
                        let mut f = failure;
                        f.message = match f.retry_after {
                            Some(d) => {
                                format!("rate limit reached; the server asks to wait {} s ({})", d.as_secs(), f.message)
                            }
                            None => format!("rate limit reached ({})", f.message),
                        };
                        return Err(give_up(f, attempts.max(1)));
                    }
                    let wait = self.policy.throttle_wait(failure.retry_after);
                    tracing::warn!(
                        call = req.label,
                        wait_ms = wait.as_millis() as u64,
                        "Throttled (HTTP 429); pausing every call of this API key."
                    );
                    self.pacer.pause_until(Instant::now() + wait);
                }
                Class::Permanent => return Err(give_up(failure, attempts)),
                Class::Transient { maybe_executed } => {
                    if maybe_executed && safety == Safety::NotIdempotent {
                        tracing::warn!(call = req.label, error = %failure.message, "The call may have been executed; not re-sending it blindly.");
                        return Err(SendError::Ambiguous {
                            status: failure.status,
                            message: failure.message,
                            attempts,
                        });
                    }
                    if attempts >= self.policy.max_attempts {
                        return Err(give_up(failure, attempts));
                    }
                    let mut wait = self.policy.backoff(attempts);
                    if let Some(ra) = failure.retry_after {
                        wait = wait.max(ra.min(self.policy.max_retry_after));
                    }
                    tracing::info!(
                        call = req.label,
                        attempt = attempts,
                        wait_ms = wait.as_millis() as u64,
                        error = %failure.message,
                        "Transient failure; retrying."
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// A body that is not JSON: its text and content type.
#[derive(Clone, Copy)]
struct TextBody<'a> {
    text: &'a str,
    content_type: &'static str,
}

impl Caller {
    /// Like [`Caller::send_json`] with `text` as the body, sent as `content_type` (for example
    /// Boomi's `queryMore`, whose body is a bare `text/plain` token). The answer is JSON, and
    /// the pacer, the retries and the rule for calls that are not idempotent are the same
    /// (`req.body` is not used).
    pub async fn send_text(
        &self,
        req: &JsonRequest<'_>,
        text: &str,
        content_type: &'static str,
        safety: Safety,
    ) -> Result<JsonResponse, SendError> {
        self.send(req, Some(TextBody { text, content_type }), safety).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server answering each request with the next scripted raw response (the last
    /// one repeats); `None` closes the connection without answering. Returns its URL and the
    /// request counter.
    async fn server(script: Vec<Option<&'static str>>) -> (reqwest::Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = reqwest::Url::parse(&format!("http://{}/graphql", listener.local_addr().unwrap())).unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break;
                        }
                    }
                }
                let i = seen.fetch_add(1, Ordering::SeqCst);
                let answer = script.get(i).or(script.last()).copied().flatten();
                if let Some(raw) = answer {
                    let _ = sock.write_all(raw.as_bytes()).await;
                }
                let _ = sock.shutdown().await;
            }
        });
        (url, count)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"data\":1}\n";
    const E500: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 25\r\nconnection: close\r\n\r\n{\"message\":\"it broke\"}\n\n\n";
    const E503: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    const E401: &str =
        "HTTP/1.1 401 Unauthorized\r\ncontent-length: 26\r\nconnection: close\r\n\r\n{\"message\":\"Unauthorized\"}";
    const E429: &str =
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    const BAD: &str = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\n{\"dat";

    fn caller() -> Caller {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            default_retry_after: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        Caller::new(crate::ClientConfig::default().build().unwrap(), Arc::new(crate::Pacer::unlimited()), policy)
    }

    fn req<'a>(url: &'a reqwest::Url, body: &'a Value) -> JsonRequest<'a> {
        JsonRequest {
            method: reqwest::Method::POST,
            url,
            bearer: Some("t0ken"),
            body: Some(body),
            label: "test",
            timeout: Some(Duration::from_secs(5)),
        }
    }

    #[test]
    fn debug_of_a_request_leaves_the_bearer_token_out() {
        let url = reqwest::Url::parse("http://127.0.0.1:1/graphql").unwrap();
        let body = serde_json::json!({});
        let printed = format!("{:?} {:#?}", req(&url, &body), req(&url, &body));
        assert!(!printed.contains("t0ken") && printed.contains("127.0.0.1:1/graphql"), "{printed}");
    }

    #[tokio::test]
    async fn reads_retry_transient_faults() {
        let (url, count) = server(vec![Some(E500), None, Some(BAD), Some(E503), Some(OK)]).await;
        let body = serde_json::json!({});
        let r = caller().send_json(&req(&url, &body), Safety::Idempotent).await.unwrap();
        assert_eq!(r.body, serde_json::json!({"data": 1}));
        assert_eq!(r.attempts, 5);
        assert_eq!(count.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn writes_are_not_resent_after_a_maybe_executed_failure() {
        for first in [E500, BAD] {
            let (url, count) = server(vec![Some(first), Some(OK)]).await;
            let body = serde_json::json!({});
            let e = caller().send_json(&req(&url, &body), Safety::NotIdempotent).await.unwrap_err();
            assert!(matches!(e, SendError::Ambiguous { .. }), "{e:?}");
            assert_eq!(count.load(Ordering::SeqCst), 1);
        }
        let (url, count) = server(vec![None, Some(OK)]).await;
        let body = serde_json::json!({});
        let e = caller().send_json(&req(&url, &body), Safety::NotIdempotent).await.unwrap_err();
        assert!(matches!(e, SendError::Ambiguous { .. }), "{e:?}");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // A 503 and a 429 were surely not executed: re-sent.
        let (url, count) = server(vec![Some(E503), Some(E429), Some(OK)]).await;
        let r = caller().send_json(&req(&url, &body), Safety::NotIdempotent).await.unwrap();
        assert_eq!(r.attempts, 2);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn unauthorized_is_not_retried() {
        let (url, count) = server(vec![Some(E401)]).await;
        let body = serde_json::json!({});
        let e = caller().send_json(&req(&url, &body), Safety::Idempotent).await.unwrap_err();
        match e {
            SendError::Status { status, message, .. } => {
                assert_eq!(status, 401);
                assert_eq!(message, "Unauthorized");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn throttling_can_count_as_a_transient_fault() {
        // Boomi's way: a 429 uses up an attempt and waits the backoff, at most max_attempts.
        const BARE_429: &str = "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        let (url, count) = server(vec![Some(BARE_429)]).await;
        let body = serde_json::json!({});
        let mut caller = caller();
        caller.policy.max_attempts = 3;
        caller.policy.throttle_as_transient = true;
        // Were the 429 handled as throttling, the default wait would be a minute per answer.
        caller.policy.default_retry_after = Duration::from_secs(3600);
        let e = caller.send_json(&req(&url, &body), Safety::Idempotent).await.unwrap_err();
        match e {
            SendError::Status { status, attempts, .. } => assert_eq!((status, attempts), (429, 3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // A 429 then a success: one retry, counted as an attempt.
        let (url, count) = server(vec![Some(BARE_429), Some(OK)]).await;
        let r = caller.send_json(&req(&url, &body), Safety::Idempotent).await.unwrap();
        assert_eq!((r.attempts, count.load(Ordering::SeqCst)), (2, 2));
    }

    #[tokio::test]
    async fn throttling_waits_for_retry_after() {
        let (url, count) = server(vec![Some(E429), Some(OK)]).await;
        let body = serde_json::json!({});
        let started = Instant::now();
        let r = caller().send_json(&req(&url, &body), Safety::Idempotent).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(r.attempts, 1, "a 429 does not use up an attempt");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts() {
        let (url, count) = server(vec![Some(E500)]).await;
        let body = serde_json::json!({});
        let e = caller().send_json(&req(&url, &body), Safety::Idempotent).await.unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert_eq!(e.attempts(), 6);
        assert_eq!(count.load(Ordering::SeqCst), 6);
        assert_eq!(e.to_string(), "HTTP 500: it broke");
    }

    #[tokio::test]
    async fn connection_refused_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = reqwest::Url::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let body = serde_json::json!({});
        let e = caller().send_json(&req(&url, &body), Safety::NotIdempotent).await.unwrap_err();
        assert!(matches!(e, SendError::Transport { attempts: 6, .. }), "{e:?}");
    }
}
