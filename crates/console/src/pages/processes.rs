//! The processes page (failing ones first, recent runs at a glance) and one process's page (its
//! graph, schedules, pause and resume, run now with property values, recent runs).

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use scheduler::ProcessView;
use store::{ListFilter, Role, RunRecord, RunStatus};

use super::graph::{Outcome, figure};
use super::{error_page, page, status_link, when};
use crate::Shared;
use crate::auth::Caller;
use crate::error::ApiError;

/// Runs shown at a glance per process.
const RECENT: usize = 10;

async fn recent(console: &Shared, process: &str, limit: usize) -> Result<Vec<RunRecord>, ApiError> {
    let filter = ListFilter { process: Some(process.to_owned()), limit: Some(limit), ..ListFilter::default() };
    Ok(console.store.list(&filter).await?)
}

fn next_fire(process: &ProcessView) -> Markup {
    html! {
        @if process.paused { "paused" }
        @else if let Some(next) = process.schedules.iter().filter_map(|s| s.next).min() { (when(next)) }
        @else if process.schedules.is_empty() { "no schedule" }
    }
}

fn glance(runs: &[RunRecord]) -> Markup {
    html! {
        span.recent {
            @for run in runs.iter().rev() {
                a class={ "status-" (run.status) } href={ "/runs/" (run.run_id) } title={ (run.status) " " (when(run.started_at)) } {
                    @if run.status == RunStatus::Error.as_str() || run.status == RunStatus::Aborted.as_str() { "✗" } @else { "●" }
                }
            }
        }
    }
}

pub(crate) async fn processes(State(console): State<Shared>, Extension(caller): Extension<Caller>) -> Response {
    match processes_body(&console).await {
        Ok(body) => page(StatusCode::OK, "Processes", Some(&caller), body),
        Err(error) => error_page(&caller, error),
    }
}

async fn processes_body(console: &Shared) -> Result<Markup, ApiError> {
    let mut rows = Vec::new();
    for process in console.control.processes().await? {
        let runs = recent(console, &process.name, RECENT).await?;
        rows.push((process, runs));
    }
    // Failing ones first: the last run that ran to its end (not a discarded one) ended in an
    // error or was aborted.
    let failing = |runs: &[RunRecord]| {
        let ran = runs.iter().find(|r| r.status.parse::<RunStatus>().is_ok_and(RunStatus::is_final));
        ran.is_some_and(|r| [RunStatus::Error, RunStatus::Aborted].iter().any(|s| r.status == s.as_str()))
    };
    rows.sort_by_key(|(p, runs)| (!failing(runs), p.name.clone()));
    Ok(html! {
        table {
            caption.note { "Processes this node serves; failing ones first." }
            thead { tr { th scope="col" { "Process" } th scope="col" { "Last run" } th scope="col" { "Recent runs" } th scope="col" { "Next fire" } } }
            tbody {
                @for (process, runs) in &rows {
                    tr {
                        td { a href={ "/processes/" (process.name) } { (process.name) } }
                        td { @if let Some(run) = runs.first() { (status_link(run)) " " span.note { (when(run.started_at)) } } @else { span.note { "none yet" } } }
                        td { (glance(runs)) }
                        td { (next_fire(process)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "No process is served here." } }
    })
}

pub(crate) async fn process(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    match process_body(&console, &caller, &name).await {
        Ok(body) => page(StatusCode::OK, &format!("Process {name}"), Some(&caller), body),
        Err(error) => error_page(&caller, error),
    }
}

fn actions(process: &ProcessView) -> Markup {
    let name = &process.name;
    html! {
        h2 { "Run now" }
        form.filters method="post" action={ "/processes/" (name) "/run" } {
            @for property in &process.outline.properties {
                label { (property.name) input name={ "property." (property.name) } value=(property.default); }
            }
            button type="submit" { "Run now" }
        }
        @if !process.schedules.is_empty() {
            @if process.paused {
                form.inline method="post" action={ "/processes/" (name) "/resume" } { button type="submit" { "Resume schedules" } }
            } @else {
                form.inline method="post" action={ "/processes/" (name) "/pause" } { button type="submit" { "Pause schedules" } }
            }
        }
    }
}

async fn process_body(console: &Shared, caller: &Caller, name: &str) -> Result<Markup, ApiError> {
    let process = crate::actions::held(console, name).await?;
    let runs = recent(console, name, 20).await?;
    Ok(html! {
        @if let Some(description) = &process.outline.description { p { (description) } }
        dl.facts {
            dt { "File" } dd { (process.path) }
            dt { "Version" } dd { code { (process.content_hash.get(..12).unwrap_or(&process.content_hash)) } }
            dt { "Schedules" } dd { @if process.schedules.is_empty() { "none (runs on demand)" } @else if process.paused { "paused" } @else { "active" } }
        }
        h2 { "Graph" }
        (figure(&format!("Steps of {name}."), &process.outline.steps, &|_| Outcome::Plain))
        @if !process.schedules.is_empty() {
            h2 { "Schedules" }
            table {
                thead { tr { th scope="col" { "Cron" } th scope="col" { "Time zone" } th scope="col" { "Next fire" } } }
                tbody { @for s in &process.schedules { tr { td { code { (s.cron) } } td { (s.timezone) } td { @if let Some(n) = s.next { (when(n)) } } } } }
            }
        }
        @if caller.role >= Role::Operator { (actions(&process)) }
        h2 { "Recent runs" }
        (super::runs::table(&runs))
        p { a href={ "/runs?process=" (name) } { "All runs of " (name) } }
    })
}
