//! Runs with their filters in the URL and paging; one run (timings, steps against the process's
//! previous run, the graph coloured by outcome, the log with a level filter, cancel and rerun;
//! a running run's page reloads itself); and the documents a step kept.

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use store::{ListFilter, LogLine, Role, RunRecord, RunStatus, StepRecord, Trigger};

use super::graph::{Outcome, figure};
use super::{error_page, page, page_with, status_link, when};
use crate::Shared;
use crate::api::RunsQuery;
use crate::auth::Caller;
use crate::documents::PageQuery;
use crate::error::ApiError;

/// Runs on one page of the runs list.
const PAGE: usize = 50;
/// Seconds between reloads of a running run's page.
const REFRESH_SECS: u32 = 2;

fn select(name: &str, label: &str, options: &[&str], chosen: Option<&str>) -> Markup {
    html! {
        label { (label)
            select name=(name) {
                option value="" { "any" }
                @for option in options {
                    option value=(option) selected[chosen == Some(*option)] { (option) }
                }
            }
        }
    }
}

fn filters(query: &RunsQuery) -> Markup {
    let statuses: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
    let triggers: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
    html! {
        form.filters method="get" action="/runs" role="search" {
            label { "Process" input name="process" value=(query.process.as_deref().unwrap_or_default()); }
            (select("status", "Status", &statuses, query.status.as_deref()))
            (select("trigger", "Trigger", &triggers, query.trigger.as_deref()))
            label { "Since (RFC 3339)" input name="since" value=(query.since.as_deref().unwrap_or_default()); }
            label { "Until (RFC 3339)" input name="until" value=(query.until.as_deref().unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
    }
}

/// A table of runs.
pub(crate) fn table(runs: &[RunRecord]) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "Run" } th scope="col" { "Process" } th scope="col" { "Trigger" } th scope="col" { "Started" }
                th scope="col" { "Status" } th.num scope="col" { "In" } th.num scope="col" { "Out" } th.num scope="col" { "Errors" }
            } }
            tbody {
                @for run in runs {
                    tr {
                        td { a href={ "/runs/" (run.run_id) } { code { (run.run_id.get(..13).unwrap_or(&run.run_id)) "…" } } }
                        td { a href={ "/processes/" (run.process) } { (run.process) } }
                        td { (run.trigger) } td { (when(run.started_at)) } td { (status_link(run)) }
                        td.num { (run.documents_in) } td.num { (run.documents_out) } td.num { (run.documents_error) }
                    }
                }
            }
        }
        @if runs.is_empty() { p { "No run matches." } }
    }
}

/// The query string of `query` with `until` replaced (the next page).
fn older(query: &RunsQuery, until: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("process", &query.process),
        ("status", &query.status),
        ("trigger", &query.trigger),
        ("since", &query.since),
        ("limit", &query.limit),
    ] {
        if let Some(value) = value {
            pairs.push((name, value));
        }
    }
    pairs.push(("until", until));
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

pub(crate) async fn runs(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return error_page(&caller, ApiError::bad_request(rejection.body_text())),
    };
    let mut query = query.without_empty();
    query.limit = query.limit.or_else(|| Some(PAGE.to_string()));
    let listed = match query.filter() {
        Ok(filter) => console.store.list(&filter).await.map_err(ApiError::from),
        Err(error) => Err(error),
    };
    let runs = match listed {
        Ok(runs) => runs,
        Err(error) => return error_page(&caller, error),
    };
    let full = query.limit.as_deref().and_then(|l| l.parse::<usize>().ok()) == Some(runs.len());
    let body = html! {
        (filters(&query))
        (table(&runs))
        @if let (true, Some(last)) = (full, runs.last()) {
            nav.pager aria-label="Pages" {
                a href={ "/runs?" (older(&query, &last.started_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))) } { "Older runs →" }
            }
        }
    };
    page(StatusCode::OK, "Runs", Some(&caller), body)
}

/// `?level=` of a run's log.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunQuery {
    level: Option<String>,
}

fn rank(level: &str) -> u8 {
    match level {
        "error" => 3,
        "warn" => 2,
        "info" => 1,
        _ => 0,
    }
}

/// Earlier runs looked at for [`previous`], a page at a time: an every-second schedule with
/// `overlap: skip` may have discarded many in a row.
const PREVIOUS_PAGE: usize = 50;
const PREVIOUS_LOOKED_AT: usize = 1000;

/// The steps of the process's previous run that ran to an end (not one discarded, queued or
/// still going, which have no final counts), among the [`PREVIOUS_LOOKED_AT`] before it.
async fn previous(console: &Shared, run: &RunRecord) -> Result<Option<Vec<StepRecord>>, ApiError> {
    let ran = |r: &RunRecord| {
        r.run_id != run.run_id && r.status.parse::<RunStatus>().is_ok_and(|s| s.is_final() && s != RunStatus::Discarded)
    };
    let mut until = run.started_at;
    for _ in 0..PREVIOUS_LOOKED_AT / PREVIOUS_PAGE {
        let filter = ListFilter {
            process: Some(run.process.clone()),
            until: Some(until),
            limit: Some(PREVIOUS_PAGE),
            ..ListFilter::default()
        };
        let page = console.store.list(&filter).await?;
        if let Some(before) = page.iter().find(|r| ran(r)) {
            return Ok(console.store.get(&before.run_id).await?.map(|(_, steps)| steps));
        }
        // `until` is exclusive: the next page starts before this one's oldest run.
        match page.last() {
            Some(last) if page.len() == PREVIOUS_PAGE => until = last.started_at,
            _ => break,
        }
    }
    Ok(None)
}

fn delta(now: u64, before: Option<u64>) -> Markup {
    let Some(before) = before else {
        return html! {};
    };
    let change = i128::from(now) - i128::from(before);
    html! { @if change != 0 { " " span.delta { "(" @if change > 0 { "+" } (change) ")" } } }
}

/// The steps table. `kept` links to the kept documents for callers who may see them
/// (`--view-data`); others see how many there are.
fn steps_table(
    steps: &[StepRecord],
    before: Option<&[StepRecord]>,
    kept: &[(String, u64)],
    run_id: &str,
    sees_data: bool,
) -> Markup {
    let prior = |id: &str| before.and_then(|b| b.iter().find(|s| s.step == id));
    html! {
        table {
            caption.note { @if before.is_some() { "Changes against the process's previous run in brackets." } @else { "The process's first run." } }
            thead { tr {
                th scope="col" { "Step" } th.num scope="col" { "In" } th.num scope="col" { "Out" } th.num scope="col" { "Errors" }
                th.num scope="col" { "ms" } th scope="col" { "Kept documents" }
            } }
            tbody {
                @for s in steps {
                    @let p = prior(&s.step);
                    tr {
                        td { (s.step) }
                        td.num { (s.documents_in) (delta(s.documents_in, p.map(|p| p.documents_in))) }
                        td.num { (s.documents_out) (delta(s.documents_out, p.map(|p| p.documents_out))) }
                        td.num { (s.documents_error) (delta(s.documents_error, p.map(|p| p.documents_error))) }
                        td.num { (s.millis) (delta(s.millis, p.map(|p| p.millis))) }
                        td { @match kept.iter().find(|(step, _)| *step == s.step) {
                            Some((_, n)) if sees_data => a href={ "/runs/" (run_id) "/steps/" (s.step) } { (n) " kept" },
                            Some((_, n)) => { (n) " kept" },
                            None => span.note { "none" },
                        } }
                    }
                }
            }
        }
    }
}

fn outcome_of(steps: &[StepRecord]) -> impl Fn(&str) -> Outcome + '_ {
    move |id| match steps.iter().find(|s| s.step == id) {
        Some(s) if s.documents_error > 0 => Outcome::Failed,
        Some(s) if s.documents_in > 0 || s.millis > 0 => Outcome::Ran,
        _ => Outcome::NotReached,
    }
}

fn log_section(logs: &[LogLine], level: &str, run_id: &str) -> Markup {
    let shown: Vec<&LogLine> = logs.iter().filter(|l| rank(&l.level) >= rank(level)).collect();
    html! {
        h2 { "Log" }
        form.filters method="get" action={ "/runs/" (run_id) } {
            label { "Level at least"
                select name="level" { @for l in ["info", "warn", "error"] { option value=(l) selected[l == level] { (l) } } }
            }
            button type="submit" { "Show" }
        }
        @if shown.is_empty() { p.note { "No log line at this level." } }
        ol { @for line in shown { li class={ "log-" (line.level) } { (when(line.at)) " " (line.level) " " (line.node) ": " (line.message) } } }
    }
}

fn run_actions(caller: &Caller, run: &RunRecord) -> Markup {
    let finished = run.status.parse::<RunStatus>().is_ok_and(RunStatus::is_final);
    let cancellable = run.status == RunStatus::InProcess.as_str() || run.status == "QUEUED";
    html! {
        @if let Some(reason) = &run.cancel_requested {
            p.note { "Cancel requested (" (reason) "): node '" (run.node.as_deref().unwrap_or("?"))
                "' stops the run when it next renews its lease, within 10 seconds." }
        }
        @if caller.role >= Role::Operator {
            @if cancellable && run.cancel_requested.is_none() {
                form.inline method="post" action={ "/runs/" (run.run_id) "/cancel" } { button type="submit" { "Cancel run" } }
            }
            @if finished {
                form.inline method="post" action={ "/runs/" (run.run_id) "/rerun" } { button type="submit" { "Run again" } }
            }
        }
    }
}

pub(crate) async fn run(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
    query: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let level = match query {
        Ok(Query(q)) => q.level.unwrap_or_else(|| "info".to_owned()),
        Err(rejection) => return error_page(&caller, ApiError::bad_request(rejection.body_text())),
    };
    if rank(&level) == 0 {
        return error_page(
            &caller,
            ApiError::bad_request(format!("'level' must be info, warn or error, not '{level}'")),
        );
    }
    match run_body(&console, &caller, &run_id, &level).await {
        Ok((body, going)) => page_with(
            StatusCode::OK,
            &format!("Run of {}", body.1),
            Some(&caller),
            going.then_some(REFRESH_SECS),
            body.0,
        ),
        Err(error) => error_page(&caller, error),
    }
}

async fn run_body(
    console: &Shared,
    caller: &Caller,
    run_id: &str,
    level: &str,
) -> Result<((Markup, String), bool), ApiError> {
    let (run, steps) =
        console.store.get(run_id).await?.ok_or_else(|| ApiError::not_found(format!("no run '{run_id}'")))?;
    let logs = console.store.logs(run_id).await?;
    let before = previous(console, &run).await?;
    let kept: Vec<(String, u64)> =
        console.store.document_counts(run_id).await?.into_iter().map(|c| (c.step, c.count)).collect();
    let outline = console.control.processes().await?.into_iter().find(|p| p.name == run.process).map(|p| p.outline);
    let going = matches!(run.status.as_str(), "QUEUED" | "INPROCESS");
    let body = html! {
        dl.facts {
            dt { "Run" } dd { code { (run.run_id) } }
            dt { "Process" } dd { a href={ "/processes/" (run.process) } { (run.process) } }
            dt { "Status" } dd { (status_link(&run)) @if going { " " span.note { "(this page reloads until it ends)" } } }
            dt { "Trigger" } dd { (run.trigger)
                @if let Some(of) = &run.rerun_of { " of " a href={ "/runs/" (of) } { code { (of) } } } }
            dt { "Node" } dd { (run.node.as_deref().unwrap_or("-")) }
            @if let Some(q) = run.queued_at { dt { "Queued" } dd { (when(q)) } }
            dt { "Started" } dd { (when(run.started_at)) }
            dt { "Ended" } dd { @if let Some(e) = run.ended_at { (when(e)) " (" ((e - run.started_at).num_milliseconds()) " ms)" } @else { "-" } }
            dt { "Documents" } dd { @if going { "counted at the end; the steps below show the counts so far" } @else { (run.documents_in) " in, " (run.documents_out) " out, " (run.documents_error) " errors" } }
            @if let Some(error) = &run.error { dt { "Error" } dd role="alert" { (error) } }
        }
        (run_actions(caller, &run))
        h2 { "Steps" @if going { " so far" } }
        @if going && steps.is_empty() { p.note { "No step has finished yet." } }
        (steps_table(&steps, before.as_deref(), &kept, run_id, caller.view_data))
        (error_documents(&run, &kept, caller.view_data))
        @if let Some(outline) = &outline {
            h2 { "Graph" }
            (figure("Steps coloured by what they did in this run.", &outline.steps, &outcome_of(&steps)))
        }
        (log_section(&logs, level, run_id))
    };
    Ok(((body, run.process.clone()), going))
}

/// The error documents the run made: per step with a link when the run kept them, or how many
/// there were when it kept none.
fn error_documents(run: &RunRecord, kept: &[(String, u64)], sees_data: bool) -> Markup {
    let by_step: Vec<(&str, &str, u64)> = kept
        .iter()
        .filter_map(|(key, n)| store::error_documents_of(key).map(|step| (step, key.as_str(), *n)))
        .collect();
    html! {
        @if !by_step.is_empty() {
            h2 { "Error documents" }
            ul {
                @for (step, key, n) in &by_step {
                    li { (step) ": "
                        @if sees_data { a href={ "/runs/" (run.run_id) "/steps/" (key) } { (n) " error document" @if *n != 1 { "s" } } }
                        @else { (n) " error document" @if *n != 1 { "s" } " kept (their contents need a token with --view-data)" }
                    }
                }
            }
        } @else if run.documents_error > 0 && run.ended_at.is_some() {
            h2 { "Error documents" }
            p.note { "Errors: " (run.documents_error) "; no error documents kept (the process records "
                code { "none" } ", or they expired)." }
        }
    }
}

pub(crate) async fn step_documents(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((run_id, step)): Path<(String, String)>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match documents_body(&console, &caller, &run_id, &step, query).await {
        Ok(body) => {
            let title = match store::error_documents_of(&step) {
                Some(made_by) => format!("Error documents of step {made_by}"),
                None => format!("Documents of step {step}"),
            };
            page(StatusCode::OK, &title, Some(&caller), body)
        }
        Err(error) => error_page(&caller, error),
    }
}

async fn documents_body(
    console: &Shared,
    caller: &Caller,
    run_id: &str,
    step: &str,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, ApiError> {
    crate::documents::may_see_data(caller)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (offset, limit) = query.bounds()?;
    let total = crate::documents::kept(console, run_id, step).await?;
    crate::documents::audit_view(console, caller, run_id, step, (offset, limit), total).await?;
    let documents = console.store.documents(run_id, step, offset, limit).await?;
    let base = format!("/runs/{run_id}/steps/{step}");
    Ok(html! {
        p { "Run " a href={ "/runs/" (run_id) } { code { (run_id) } } ": " (total)
            @if let Some(made_by) = store::error_documents_of(step) { " error documents step " (made_by) " made were kept." }
            @else { " documents entered this step and were kept." } }
        p { a href={ "/api/v1/runs/" (run_id) "/steps/" (step) "/documents/download" } download { "Download all as JSON Lines" } }
        @for d in &documents {
            section aria-label={ "Document " (d.seq) } {
                h2 { "Document " (d.seq) }
                @if !d.properties.is_empty() {
                    dl.facts { @for (k, v) in &d.properties { dt { (k) } dd { (v) } } }
                }
                pre { @match std::str::from_utf8(&d.data) { Ok(text) => (text), Err(_) => { "(" (d.data.len()) " bytes, not text: see the download)" } } }
            }
        }
        nav.pager aria-label="Pages" {
            @if offset > 0 { a href={ (base) "?offset=" (offset.saturating_sub(limit)) "&limit=" (limit) } { "← Earlier" } }
            @if offset.saturating_add(limit) < total { a href={ (base) "?offset=" (offset + limit) "&limit=" (limit) } { "Later →" } }
        }
    })
}
