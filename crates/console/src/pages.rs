//! Server-rendered pages (maud, escaped by construction): sign in, processes, runs with their
//! filters in the URL, one run. Links and forms work without JavaScript; pages send a
//! Content-Security-Policy that allows no script at all.

use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use store::{RunRecord, RunStatus, Trigger};

use crate::Shared;
use crate::api::RunsQuery;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::session;

/// The policy of every page: nothing but this origin's forms; no script, no style, no frame.
pub const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page answer with the security headers.
fn page(status: StatusCode, title: &str, caller: Option<&Caller>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · Stepwise" } }
            body {
                @if let Some(caller) = caller {
                    nav aria-label="Main" {
                        a href="/" { "Processes" } " · " a href="/runs" { "Runs" }
                        " · signed in as " (caller.name) " (" (caller.role) ") "
                        form method="post" action="/logout" { button type="submit" { "Sign out" } }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    ];
    (status, headers, markup.into_string()).into_response()
}

/// `?token=` of the login address `serve` prints.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    token: Option<String>,
}

fn login_form(token: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error { p role="alert" { (error) } }
        form method="post" action="/login" {
            label for="token" { "Token" }
            input id="token" name="token" type="password" autocomplete="off" required value=(token);
            button type="submit" { "Sign in" }
        }
    }
}

pub(crate) async fn login_page(Query(query): Query<LoginQuery>) -> Response {
    page(StatusCode::OK, "Sign in", None, login_form(query.token.as_deref().unwrap_or_default(), None))
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

pub(crate) async fn login(State(console): State<Shared>, Form(form): Form<LoginForm>) -> Result<Response, ApiError> {
    let hash = crate::token::hash(form.token.trim());
    let Some(record) = console.store.authenticate(&hash, chrono::Utc::now()).await? else {
        let form = login_form("", Some("Unknown or revoked token."));
        return Ok(page(StatusCode::UNAUTHORIZED, "Sign in", None, form));
    };
    let id = session::open(&*console.store, &record.name).await?;
    tracing::info!(message = "Signed in to the console.", token = %record.name);
    Ok(([(header::SET_COOKIE, session::set_cookie(&id))], Redirect::to("/")).into_response())
}

pub(crate) async fn logout(State(console): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session::cookie(&headers) {
        session::close(&*console.store, id).await?;
    }
    Ok(([(header::SET_COOKIE, session::clear_cookie())], Redirect::to("/login")).into_response())
}

fn status_of(run: &RunRecord) -> Markup {
    html! { a href={ "/runs/" (run.run_id) } { (run.status) } }
}

pub(crate) async fn processes(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let mut rows = Vec::new();
    for process in console.control.processes().await? {
        let filter = store::ListFilter { process: Some(process.name.clone()), limit: Some(1), ..Default::default() };
        rows.push((process, console.store.list(&filter).await?.into_iter().next()));
    }
    // Failing ones first.
    rows.sort_by_key(|(p, last)| (last.as_ref().is_none_or(|r| r.status != RunStatus::Error.as_str()), p.name.clone()));
    let body = html! {
        table {
            thead { tr { th scope="col" { "Process" } th scope="col" { "Schedules" } th scope="col" { "Next fire" } th scope="col" { "Last run" } } }
            tbody {
                @for (process, last) in &rows {
                    tr {
                        td { a href={ "/runs?process=" (process.name) } { (process.name) } }
                        td { @if process.paused { "paused" } @else { (process.schedules.len()) } }
                        td { @if let Some(next) = process.schedules.iter().filter_map(|s| s.next).min() { (next.to_rfc3339()) } }
                        td { @if let Some(run) = last { (status_of(run)) " " (run.started_at.to_rfc3339()) } @else { "none" } }
                    }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, "Processes", Some(&caller), body))
}

fn select(name: &str, label: &str, options: &[&str], chosen: Option<&str>) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            option value="" { "any" }
            @for option in options {
                option value=(option) selected[chosen == Some(*option)] { (option) }
            }
        }
    }
}

fn filters(query: &RunsQuery) -> Markup {
    let statuses: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
    let triggers: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
    html! {
        form method="get" action="/runs" {
            label for="process" { "Process" }
            input id="process" name="process" value=(query.process.as_deref().unwrap_or_default());
            (select("status", "Status", &statuses, query.status.as_deref()))
            (select("trigger", "Trigger", &triggers, query.trigger.as_deref()))
            label for="since" { "Since (RFC 3339)" }
            input id="since" name="since" value=(query.since.as_deref().unwrap_or_default());
            label for="until" { "Until" }
            input id="until" name="until" value=(query.until.as_deref().unwrap_or_default());
            button type="submit" { "Filter" }
        }
    }
}

pub(crate) async fn runs(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<RunsQuery>,
) -> Result<Response, ApiError> {
    let query = query.without_empty();
    let runs = console.store.list(&query.filter()?).await?;
    let body = html! {
        (filters(&query))
        table {
            thead { tr { th scope="col" { "Run" } th scope="col" { "Process" } th scope="col" { "Trigger" } th scope="col" { "Started" } th scope="col" { "Status" } th scope="col" { "In / out / errors" } } }
            tbody {
                @for run in &runs {
                    tr {
                        td { a href={ "/runs/" (run.run_id) } { (run.run_id) } }
                        td { (run.process) } td { (run.trigger) } td { (run.started_at.to_rfc3339()) } td { (run.status) }
                        td { (run.documents_in) " / " (run.documents_out) " / " (run.documents_error) }
                    }
                }
            }
        }
        @if runs.is_empty() { p { "No run matches." } }
    };
    Ok(page(StatusCode::OK, "Runs", Some(&caller), body))
}

pub(crate) async fn run(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let Some((run, steps)) = console.store.get(&run_id).await? else {
        return Ok(page(StatusCode::NOT_FOUND, "No such run", Some(&caller), html! { p { "No run " (run_id) "." } }));
    };
    let logs = console.store.logs(&run_id).await?;
    let body = html! {
        dl {
            dt { "Process" } dd { a href={ "/runs?process=" (run.process) } { (run.process) } }
            dt { "Status" } dd { (run.status) }
            dt { "Trigger" } dd { (run.trigger) }
            dt { "Node" } dd { (run.node.as_deref().unwrap_or("-")) }
            dt { "Started" } dd { (run.started_at.to_rfc3339()) }
            dt { "Ended" } dd { (run.ended_at.map(|t| t.to_rfc3339()).unwrap_or_default()) }
            @if let Some(error) = &run.error { dt { "Error" } dd { (error) } }
        }
        h2 { "Steps" }
        table {
            thead { tr { th scope="col" { "Step" } th scope="col" { "In" } th scope="col" { "Out" } th scope="col" { "Errors" } th scope="col" { "ms" } } }
            tbody { @for s in &steps { tr { td { (s.step) } td { (s.documents_in) } td { (s.documents_out) } td { (s.documents_error) } td { (s.millis) } } } }
        }
        h2 { "Log" }
        ol { @for line in &logs { li { (line.at.to_rfc3339()) " " (line.level) " " (line.node) ": " (line.message) } } }
    };
    Ok(page(StatusCode::OK, &format!("Run {run_id}"), Some(&caller), body))
}
