//! The handlers of `/api/v1/`. Runs are the store's records, serialised as `history --json`
//! prints them.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{ListFilter, Role, RunStatus, Trigger};

use crate::Shared;
use crate::actions;
use crate::auth::Caller;
use crate::error::ApiError;

/// Runs listed when the request says no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The most runs (or audit lines) one request lists.
pub const MAX_LIMIT: usize = 1000;

type ApiResult = Result<Response, ApiError>;

pub(crate) async fn processes(State(console): State<Shared>) -> ApiResult {
    let mut out = Vec::new();
    for process in console.control.processes().await? {
        let filter = ListFilter { process: Some(process.name.clone()), limit: Some(1), ..ListFilter::default() };
        let last = console.store.list(&filter).await?.into_iter().next();
        let mut value = serde_json::to_value(&process).unwrap_or(Value::Null);
        value["last_run"] = serde_json::to_value(last).unwrap_or(Value::Null);
        out.push(value);
    }
    Ok(Json(out).into_response())
}

/// `GET /api/v1/runs` query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsQuery {
    pub(crate) process: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) trigger: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) limit: Option<String>,
}

fn instant(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| ApiError::bad_request(format!("'{field}': '{t}' is no RFC 3339 instant: {e}")))
    })
    .transpose()
}

pub(crate) fn limit(text: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!("'limit' must be 1 to {MAX_LIMIT}"))),
    }
}

impl RunsQuery {
    /// The same query without empty fields (an HTML form sends every field).
    pub(crate) fn without_empty(self) -> RunsQuery {
        let keep = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        RunsQuery {
            process: keep(self.process),
            status: keep(self.status),
            trigger: keep(self.trigger),
            since: keep(self.since),
            until: keep(self.until),
            limit: keep(self.limit),
        }
    }

    pub(crate) fn filter(&self) -> Result<ListFilter, ApiError> {
        let status = match &self.status {
            Some(s) => {
                Some(s.to_ascii_uppercase().parse::<RunStatus>().map_err(ApiError::bad_request)?.as_str().to_owned())
            }
            None => None,
        };
        let trigger = self.trigger.as_deref().map(|t| t.to_ascii_lowercase().parse::<Trigger>());
        let trigger = trigger.transpose().map_err(ApiError::bad_request)?;
        let limit = limit(self.limit.as_deref())?;
        Ok(ListFilter {
            process: self.process.clone(),
            status,
            trigger,
            since: instant("since", self.since.as_deref())?,
            until: instant("until", self.until.as_deref())?,
            limit: Some(limit),
        })
    }
}

pub(crate) async fn runs(
    State(console): State<Shared>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let runs = console.store.list(&query.without_empty().filter()?).await?;
    Ok(Json(runs).into_response())
}

pub(crate) async fn run(State(console): State<Shared>, Path(run_id): Path<String>) -> ApiResult {
    let detail =
        console.store.detail(&run_id).await?.ok_or_else(|| ApiError::not_found(format!("no run '{run_id}'")))?;
    Ok(Json(detail).into_response())
}

/// `POST /api/v1/processes/{name}/runs` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunNow {
    #[serde(default)]
    properties: BTreeMap<String, Value>,
}

/// A request body that is a JSON object such as `example`, read as `T` (serde would also read a
/// struct from an array of its fields in order: that is refused).
fn object<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> Result<T, ApiError> {
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("request body: {e}"));
    let value: Value = serde_json::from_slice(body).map_err(bad)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!("request body: expected a JSON object such as {example}")));
    }
    serde_json::from_value(value).map_err(bad)
}

fn overrides(body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let request: RunNow = if body.iter().all(u8::is_ascii_whitespace) {
        RunNow::default()
    } else {
        object(body, r#"{"properties": {"NAME": "VALUE"}}"#)?
    };
    request
        .properties
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, s)),
            Value::Number(_) | Value::Bool(_) => Ok((name, value.to_string())),
            _ => Err(ApiError::bad_request(format!("property '{name}': expected a string, number or boolean"))),
        })
        .collect()
}

pub(crate) async fn run_now(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let overrides = overrides(&body)?;
    let run_id = actions::queue_run(&console, &caller, &name, overrides).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"run_id": run_id}))).into_response())
}

/// `POST /api/v1/runs/{run_id}/rerun`.
pub(crate) async fn rerun(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> ApiResult {
    let again = actions::rerun(&console, &caller, &run_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"run_id": again, "rerun_of": run_id}))).into_response())
}

pub(crate) async fn cancel(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> ApiResult {
    let answer = match actions::cancel(&console, &caller, &run_id).await? {
        actions::Cancelled::Discarded => json!({"run_id": run_id, "status": "DISCARDED"}),
        actions::Cancelled::Stopping { node, here } => {
            json!({"run_id": run_id, "status": "cancelling", "node": node, "on_this_node": here})
        }
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

pub(crate) async fn pause(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    actions::set_paused(&console, &caller, &name, true).await?;
    Ok(Json(json!({"process": name, "paused": true})).into_response())
}

pub(crate) async fn resume(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    actions::set_paused(&console, &caller, &name, false).await?;
    Ok(Json(json!({"process": name, "paused": false})).into_response())
}

/// `?limit=` of the audit trail.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitQuery {
    limit: Option<String>,
}

pub(crate) async fn audit_trail(
    State(console): State<Shared>,
    query: Result<Query<LimitQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(console.store.audit(limit(query.limit.as_deref())?).await?).into_response())
}

pub(crate) async fn tokens(State(console): State<Shared>) -> ApiResult {
    Ok(Json(console.store.tokens().await?).into_response())
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenRequest {
    name: String,
    role: String,
    #[serde(default)]
    view_data: bool,
}

pub(crate) async fn create_token(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let request: NewTokenRequest = object(&body, r#"{"name": "ci", "role": "viewer"}"#)?;
    let role: Role = request.role.parse().map_err(ApiError::bad_request)?;
    let (token, record) = actions::create_token(&console, &caller, &request.name, role, request.view_data).await?;
    let answer = json!({"name": record.name, "role": role, "view_data": record.view_data, "token": token});
    // The token is shown this once: no cache keeps it.
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

pub(crate) async fn revoke_token(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    actions::revoke_token(&console, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
