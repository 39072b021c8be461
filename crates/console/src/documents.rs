//! The documents a run kept (a process's `record`), for callers whose token may see data
//! (`--view-data`): a page of one step's documents as JSON, or all of them as JSON Lines. Every
//! view and download is written to the audit trail before the answer.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use store::RecordedDocument;

use crate::Shared;
use crate::auth::Caller;
use crate::error::ApiError;

/// Documents on one page unless the request says `limit`.
pub const DEFAULT_PAGE: u64 = 50;
/// The most documents one page holds.
pub const MAX_PAGE: u64 = 1000;
/// Documents read from the store at a time while a download streams.
const DOWNLOAD_CHUNK: u64 = 500;

/// `?offset=&limit=` of a page of documents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    pub(crate) offset: Option<u64>,
    pub(crate) limit: Option<u64>,
}

impl PageQuery {
    pub(crate) fn bounds(&self) -> Result<(u64, u64), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!("'limit' must be 1 to {MAX_PAGE}")));
        }
        Ok((self.offset.unwrap_or(0), limit))
    }
}

/// 403 unless the caller may see document contents.
pub(crate) fn may_see_data(caller: &Caller) -> Result<(), ApiError> {
    if caller.view_data {
        return Ok(());
    }
    Err(ApiError::forbidden(&format!(
        "document contents need a token made with --view-data; token '{}' was not",
        caller.name
    )))
}

/// A kept document as the API shows it: its data as text, or as base64 when it is not UTF-8.
pub(crate) fn to_json(document: &RecordedDocument) -> Value {
    let mut value = json!({"seq": document.seq, "properties": document.properties});
    match std::str::from_utf8(&document.data) {
        Ok(text) => value["data"] = Value::String(text.to_owned()),
        Err(_) => {
            value["data_base64"] = Value::String(base64::engine::general_purpose::STANDARD.encode(&document.data));
        }
    }
    value
}

/// How many documents of `step` (a step, or `STEP:errors` for the error documents it made) the
/// run kept; 404 when the run is unknown, or has counts for its steps and none for this one.
pub(crate) async fn kept(console: &Shared, run_id: &str, step: &str) -> Result<u64, ApiError> {
    let Some((_, steps)) = console.store.get(run_id).await? else {
        return Err(ApiError::not_found(format!("no run '{run_id}'")));
    };
    let named = store::error_documents_of(step).unwrap_or(step);
    if !steps.is_empty() && !steps.iter().any(|s| s.step == named) {
        return Err(ApiError::not_found(format!("run '{run_id}' has no step '{named}'")));
    }
    let counts = console.store.document_counts(run_id).await?;
    Ok(counts.into_iter().find(|c| c.step == step).map_or(0, |c| c.count))
}

/// Audits `caller`'s view of the page of `step`'s documents from `offset` (`limit` at most, of
/// `total`), saying which documents it shows.
pub(crate) async fn audit_view(
    console: &Shared,
    caller: &Caller,
    run_id: &str,
    step: &str,
    (offset, limit): (u64, u64),
    total: u64,
) -> Result<(), ApiError> {
    let last = offset.saturating_add(limit).min(total);
    let first = offset.saturating_add(1);
    let detail = if offset < last {
        format!("step {step}, documents {first} to {last} of {total}")
    } else {
        format!("step {step}, none (from document {first} of {total})")
    };
    crate::actions::audit(console, caller, "view_documents", run_id, Some(detail)).await
}

pub(crate) async fn page(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((run_id, step)): Path<(String, String)>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    may_see_data(&caller)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (offset, limit) = query.bounds()?;
    let total = kept(&console, &run_id, &step).await?;
    audit_view(&console, &caller, &run_id, &step, (offset, limit), total).await?;
    let documents = console.store.documents(&run_id, &step, offset, limit).await?;
    let documents: Vec<Value> = documents.iter().map(to_json).collect();
    Ok(Json(json!({"run_id": run_id, "step": step, "total": total, "offset": offset, "documents": documents}))
        .into_response())
}

/// Every kept document of the step as JSON Lines, read from the store a chunk at a time.
pub(crate) async fn download(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((run_id, step)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    may_see_data(&caller)?;
    let total = kept(&console, &run_id, &step).await?;
    crate::actions::audit(
        &console,
        &caller,
        "download_documents",
        &run_id,
        Some(format!("step {step}, {total} documents")),
    )
    .await?;
    let store = console.store.clone();
    let (run, name) = (run_id.clone(), step.clone());
    let chunks = futures::stream::unfold(Some(0u64), move |offset| {
        let (store, run, name) = (store.clone(), run.clone(), name.clone());
        async move {
            let offset = offset?;
            let documents = match store.documents(&run, &name, offset, DOWNLOAD_CHUNK).await {
                Ok(documents) => documents,
                Err(error) => return Some((Err(std::io::Error::other(error.to_string())), None)),
            };
            if documents.is_empty() {
                return None;
            }
            let mut text = String::new();
            for document in &documents {
                text.push_str(&to_json(document).to_string());
                text.push('\n');
            }
            let next = (documents.len() as u64 == DOWNLOAD_CHUNK).then_some(offset + DOWNLOAD_CHUNK);
            Some((Ok::<_, std::io::Error>(text), next))
        }
    });
    let file = format!("attachment; filename=\"{run_id}-{step}.jsonl\"");
    let headers = [(header::CONTENT_TYPE, "application/jsonl".to_owned()), (header::CONTENT_DISPOSITION, file)];
    Ok((StatusCode::OK, headers, Body::from_stream(chunks)).into_response())
}
