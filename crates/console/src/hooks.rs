//! `POST /hooks/<process name>` (process format section 11): a process with a webhook start
//! runs once per authenticated request, with the body as its start document.
//!
//! * The hook authenticates by the process's own secret, not by console tokens: `Authorization:
//!   Bearer <secret>`, or `X-Stepwise-Signature: sha256=<hex HMAC-SHA256 of the body>`; both
//!   compared in constant time. Without a valid one: 401, and nothing is recorded.
//! * An unknown process and a process without a webhook start answer the same 404.
//! * A body over the process's `max_body_bytes` answers 413 (read no further than the cap).
//! * The run is queued in the run store with its start document (trigger `webhook`), so any
//!   node of a cluster may take it; the answer is 202 `{"run_id": ...}`. With `respond: sync`
//!   the hook waits (up to `respond_timeout_secs`) for the run's end and answers with its
//!   response document; past the wait, 202 with the run id as usual.
//! * The secret never appears in a log line or an answer.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use store::{NewRun, RunStatus, StartDocument, Trigger};
use subtle::ConstantTimeEq;

use crate::Shared;
use crate::error::ApiError;

/// The path of the hook route.
pub(crate) const PATH: &str = "/hooks/{name}";

/// The signature header.
const SIGNATURE: &str = "x-stepwise-signature";

/// How often a `respond: sync` request looks at its run.
const POLL: Duration = Duration::from_millis(50);

/// The hook route. Bodies are capped per process by the handler, not by axum's default limit.
pub(crate) fn route() -> axum::routing::MethodRouter<Shared> {
    post(hook).layer(DefaultBodyLimit::disable())
}

/// How the caller proved it knows the secret.
enum Proof {
    Bearer(String),
    Signature(Vec<u8>),
}

fn not_found() -> ApiError {
    ApiError::not_found("no webhook is served here under that name")
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized("a valid webhook secret or signature is required")
}

async fn hook(State(console): State<Shared>, Path(name): Path<String>, headers: HeaderMap, body: Body) -> Response {
    match accept(&console, &name, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn accept(console: &Shared, name: &str, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let process = console.control.processes().await?.into_iter().find(|p| p.name == name);
    let Some((process, webhook)) = process.and_then(|p| p.webhook.clone().map(|w| (p, w))) else {
        return Err(not_found());
    };
    let proof = proof(headers).ok_or_else(unauthorized)?;
    let secret = webhook.secret.read().map_err(|reason| {
        tracing::warn!(message = "Webhook refused: its secret cannot be read on this node.", process = %name, %reason);
        unauthorized()
    })?;
    // A wrong bearer is refused before the body is read.
    if let Proof::Bearer(given) = &proof
        && !bool::from(given.as_bytes().ct_eq(secret.as_bytes()))
    {
        tracing::info!(message = "Webhook refused: wrong secret.", process = %name);
        return Err(unauthorized());
    }
    let data = read_capped(body, webhook.max_body_bytes).await?;
    if let Proof::Signature(given) = &proof
        && !signature_matches(&secret, &data, given)
    {
        tracing::info!(message = "Webhook refused: wrong signature.", process = %name);
        return Err(unauthorized());
    }
    let properties = webhook
        .headers
        .iter()
        .filter_map(|h| {
            headers.get(h.as_str()).map(|v| (h.clone(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        })
        .collect();
    let run = NewRun {
        run_id: uuid::Uuid::now_v7().to_string(),
        process: process.name.clone(),
        trigger: Trigger::Webhook,
        overrides: Vec::new(),
        content_hash: Some(process.content_hash.clone()),
        queued_at: Utc::now(),
        start_document: Some(StartDocument { data, properties }),
        rerun_of: None,
    };
    console.store.enqueue(&run).await?;
    tracing::info!(message = "Webhook accepted; run queued.", process = %name, run_id = %run.run_id);
    if webhook.respond_sync {
        return respond(console, &run.run_id, webhook.respond_timeout).await;
    }
    Ok(accepted(&run.run_id))
}

fn accepted(run_id: &str) -> Response {
    (StatusCode::ACCEPTED, Json(json!({"run_id": run_id}))).into_response()
}

/// The bearer token or the signature the request carries; `None`: neither (or unreadable).
fn proof(headers: &HeaderMap) -> Option<Proof> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let text = auth.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| Proof::Bearer(token.trim().to_owned()));
    }
    let signature = headers.get(SIGNATURE)?.to_str().ok()?;
    let hex_digest = signature.trim().strip_prefix("sha256=")?;
    hex::decode(hex_digest).ok().map(Proof::Signature)
}

/// Whether `given` is the HMAC-SHA256 of `data` with `secret` (compared in constant time).
fn signature_matches(secret: &str, data: &[u8], given: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(data);
    mac.verify_slice(given).is_ok()
}

/// The body, or 413 as soon as it passes `cap` bytes.
async fn read_capped(body: Body, cap: u64) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is larger than this hook's {cap} bytes"))
    };
    let mut data = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("the request body could not be read"))?;
        if (data.len() + chunk.len()) as u64 > cap {
            return Err(too_large());
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// Waits for the run's end: 200 with its response document (JSON when it parses as JSON,
/// text otherwise), 204 when it ended without one, 500 when it failed (its error stays in the
/// history, not in the answer), 202 with the run id when `timeout` passes first.
async fn respond(console: &Shared, run_id: &str, timeout: Duration) -> Result<Response, ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let status = loop {
        let record = console.store.get(run_id).await?.map(|(run, _)| run.status);
        let status = record.as_deref().and_then(|s| s.parse::<RunStatus>().ok());
        if let Some(status) = status.filter(|s| s.is_final() || *s == RunStatus::Discarded) {
            break status;
        }
        if tokio::time::Instant::now() + POLL > deadline {
            return Ok(accepted(run_id));
        }
        tokio::time::sleep(POLL).await;
    };
    let run_header = HeaderValue::from_str(run_id).map_err(|_| ApiError::bad_request("bad run id"))?;
    let mut response = match (status, console.store.response(run_id).await?) {
        (RunStatus::Complete | RunStatus::CompleteWarn, Some(data)) => {
            let content_type = if serde_json::from_slice::<serde_json::Value>(&data).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            ([(header::CONTENT_TYPE, content_type)], data).into_response()
        }
        (RunStatus::Complete | RunStatus::CompleteWarn, None) => StatusCode::NO_CONTENT.into_response(),
        (status, _) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"run_id": run_id, "status": status.as_str()})))
            .into_response(),
    };
    response.headers_mut().insert("x-stepwise-run-id", run_header);
    Ok(response)
}
