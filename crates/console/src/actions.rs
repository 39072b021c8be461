//! The actions of the console, shared by the API (JSON answers) and the pages (forms that
//! redirect): run now, rerun, cancel, pause and resume, making and revoking tokens. Each is
//! written to the audit trail before it happens (a cancel, by the store in the cancel's own
//! transaction): an action that cannot be recorded does not happen, and a refused one is not
//! recorded.

use chrono::Utc;
use store::{AuditEntry, NewRun, NewToken, Role, RunStatus, Trigger};

use crate::Shared;
use crate::auth::Caller;
use crate::error::ApiError;

/// Writes the audit line first: an action that cannot be recorded does not happen.
pub(crate) async fn audit(
    console: &Shared,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    let entry = audit_entry(caller, action, target, detail);
    console.store.record_audit(&entry).await?;
    audited(&entry);
    Ok(())
}

/// The audit line of `caller`'s `action` on `target`, now.
fn audit_entry(caller: &Caller, action: &str, target: &str, detail: Option<String>) -> AuditEntry {
    AuditEntry {
        at: Utc::now(),
        actor: caller.name.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    }
}

/// Logs a recorded audit line.
fn audited(entry: &AuditEntry) {
    tracing::info!(message = "Console action.", actor = %entry.actor, action = %entry.action, target = %entry.target);
}

/// The process `name` as this node holds it, or 404.
pub(crate) async fn held(console: &Shared, name: &str) -> Result<scheduler::ProcessView, ApiError> {
    let processes = console.control.processes().await?;
    processes
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no process '{name}' is served here")))
}

/// Refuses (400) property values the process does not declare: nothing is queued, as
/// `stepwise trigger FILE --set` refuses them.
fn undeclared(process: &scheduler::ProcessView, overrides: &[(String, String)]) -> Result<(), ApiError> {
    let declared = &process.outline.properties;
    let unknown: Vec<String> = overrides
        .iter()
        .filter(|(name, _)| !declared.iter().any(|p| p.name == *name))
        .map(|(name, _)| format!("'{name}'"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let list = if declared.is_empty() {
        "it declares none".to_owned()
    } else {
        let names: Vec<String> = declared.iter().map(|p| format!("'{}'", p.name)).collect();
        format!("its properties are {}", names.join(", "))
    };
    let noun = if unknown.len() == 1 { "property" } else { "properties" };
    Err(ApiError::bad_request(format!(
        "process '{}' declares no {noun} {} ({list}); nothing was queued",
        process.name,
        unknown.join(", ")
    )))
}

/// Queues a run of `name` with `overrides` (a manual run); its id.
pub(crate) async fn queue_run(
    console: &Shared,
    caller: &Caller,
    name: &str,
    overrides: Vec<(String, String)>,
) -> Result<String, ApiError> {
    let process = held(console, name).await?;
    undeclared(&process, &overrides)?;
    let run = NewRun {
        run_id: uuid::Uuid::now_v7().to_string(),
        process: process.name.clone(),
        trigger: Trigger::Manual,
        overrides,
        content_hash: Some(process.content_hash.clone()),
        queued_at: Utc::now(),
        start_document: None,
        rerun_of: None,
    };
    let names: Vec<&str> = run.overrides.iter().map(|(n, _)| n.as_str()).collect();
    let detail = format!("run {}; properties: [{}]", run.run_id, names.join(", "));
    audit(console, caller, "run_now", name, Some(detail)).await?;
    console.store.enqueue(&run).await?;
    Ok(run.run_id)
}

/// Queues a finished run again, with the property values it had, on the process file as it is
/// now (trigger `rerun`); the new run's id.
pub(crate) async fn rerun(console: &Shared, caller: &Caller, run_id: &str) -> Result<String, ApiError> {
    let (run, _) = console.store.get(run_id).await?.ok_or_else(|| ApiError::not_found(format!("no run '{run_id}'")))?;
    if !run.status.parse::<RunStatus>().is_ok_and(RunStatus::is_final) {
        return Err(ApiError::conflict(format!(
            "run '{run_id}' is {}; only a run that ran to its end (COMPLETE, COMPLETE_WARN, ERROR or ABORTED) can \
             run again: start a new one with run now",
            run.status
        )));
    }
    if run.trigger == Trigger::Webhook {
        return Err(ApiError::conflict(format!(
            "run '{run_id}' was started by a webhook, whose request body is not kept; send the hook again"
        )));
    }
    let overrides = console.store.run_overrides(run_id).await?.unwrap_or_default();
    let process = held(console, &run.process).await?;
    let again = NewRun {
        run_id: uuid::Uuid::now_v7().to_string(),
        process: process.name.clone(),
        trigger: Trigger::Rerun,
        overrides,
        content_hash: Some(process.content_hash.clone()),
        queued_at: Utc::now(),
        start_document: None,
        rerun_of: Some(run_id.to_owned()),
    };
    audit(console, caller, "rerun", run_id, Some(format!("as run {}", again.run_id))).await?;
    console.store.enqueue(&again).await?;
    Ok(again.run_id)
}

/// What a cancel did.
pub(crate) enum Cancelled {
    /// The run was queued: it is `DISCARDED` and never starts.
    Discarded,
    /// The run is going on `node`; on this node it stops at once, on another when that node
    /// next renews its leases (every third of its lease, at most 10 s).
    Stopping { node: String, here: bool },
}

/// Cancels a queued run, or a going one on any node of the cluster (through the run store).
pub(crate) async fn cancel(console: &Shared, caller: &Caller, run_id: &str) -> Result<Cancelled, ApiError> {
    let (run, _) = console.store.get(run_id).await?.ok_or_else(|| ApiError::not_found(format!("no run '{run_id}'")))?;
    if run.status != RunStatus::InProcess.as_str() && run.status != "QUEUED" {
        return Err(ended(run_id, &run.status));
    }
    let was = match &run.node {
        Some(node) if run.status == RunStatus::InProcess.as_str() => format!("it was running on '{node}'"),
        _ => format!("it was {}", run.status),
    };
    let reason = format!("cancelled by '{}' from the console", caller.name);
    // The store records the audit entry with the cancel, and none for a refused one.
    let entry = audit_entry(caller, "cancel", run_id, Some(was));
    let outcome = console.store.request_cancel(run_id, &reason, &entry).await?;
    if outcome.took_effect() {
        audited(&entry);
    }
    match outcome {
        store::CancelOutcome::Discarded => {
            console.control.count_discarded(&run.process);
            Ok(Cancelled::Discarded)
        }
        store::CancelOutcome::Requested { node } => {
            let here = console.control.cancel(run_id, &reason).await?;
            Ok(Cancelled::Stopping { node, here })
        }
        store::CancelOutcome::Unleased { node } => Err(ApiError::conflict(format!(
            "run '{run_id}' is a `stepwise run` on '{node}', not a run of a service: stop it where it runs"
        ))),
        store::CancelOutcome::Ended { status } => Err(ended(run_id, &status)),
        store::CancelOutcome::Unknown => Err(ApiError::not_found(format!("no run '{run_id}'"))),
    }
}

fn ended(run_id: &str, status: &str) -> ApiError {
    ApiError::conflict(format!("run '{run_id}' is {status}; only a queued or running run can be cancelled"))
}

/// Pauses (or resumes) the schedules of `name`.
pub(crate) async fn set_paused(console: &Shared, caller: &Caller, name: &str, pause: bool) -> Result<(), ApiError> {
    held(console, name).await?;
    audit(console, caller, if pause { "pause" } else { "resume" }, name, None).await?;
    let by = pause.then_some(caller.name.as_str());
    console.store.set_paused(name, by, Utc::now()).await?;
    console.control.paused_changed().await?;
    Ok(())
}

/// Makes the token `name` (audited): its value, shown only now, and its record.
pub(crate) async fn create_token(
    console: &Shared,
    caller: &Caller,
    name: &str,
    role: Role,
    view_data: bool,
) -> Result<(String, NewToken), ApiError> {
    crate::token::check_name(name).map_err(ApiError::bad_request)?;
    // Refused before the audit: the trail records what happened.
    if console.store.tokens().await?.iter().any(|t| t.name == name) {
        return Err(ApiError::conflict(format!("a token named '{name}' already exists")));
    }
    let detail = format!("role {role}{}", if view_data { ", view data" } else { "" });
    audit(console, caller, "token_create", name, Some(detail)).await?;
    let (token, record) = crate::token::issue(name, role, view_data);
    match console.store.create_token(&record).await {
        Err(store::StoreError::DuplicateToken(name)) => {
            Err(ApiError::conflict(format!("a token named '{name}' already exists")))
        }
        Err(error) => Err(error.into()),
        Ok(()) => Ok((token, record)),
    }
}

/// Revokes the token `name` (audited); its sessions end with it. The last admin token stays:
/// without it nobody could manage tokens from the console (`stepwise token` can, on the store).
pub(crate) async fn revoke_token(console: &Shared, caller: &Caller, name: &str) -> Result<(), ApiError> {
    let tokens = console.store.tokens().await?;
    let Some(token) = tokens.iter().find(|t| t.name == name) else {
        return Err(ApiError::not_found(format!(
            "no token named '{name}'; the tokens are listed at /tokens (GET /api/v1/tokens)"
        )));
    };
    let last_admin = || {
        ApiError::conflict(format!(
            "'{name}' is the last admin token: make another admin token first, or revoke it with \
             `stepwise token revoke {name}` on the run store"
        ))
    };
    // Checked here so that a refusal is not audited, and again by the store, in the same step
    // as the delete (two admins revoking each other at once).
    if token.role == Role::Admin && tokens.iter().filter(|t| t.role == Role::Admin).count() == 1 {
        return Err(last_admin());
    }
    audit(console, caller, "token_revoke", name, None).await?;
    match console.store.revoke_token(name, true).await? {
        store::Revoked::Revoked => Ok(()),
        store::Revoked::NoSuchToken => Err(ApiError::not_found(format!("no token named '{name}'"))),
        store::Revoked::LastAdmin => Err(last_admin()),
    }
}
