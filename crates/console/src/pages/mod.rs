//! Server-rendered pages (maud, escaped by construction): sign in, processes, one process, runs
//! with their filters in the URL, one run, a step's kept documents, the forms of the actions,
//! and for admins tokens and the audit trail. Links and forms work without JavaScript; pages send a Content-Security-Policy that
//! allows no script and no style but the console's own stylesheet.

mod admin;
mod forms;
mod graph;
mod processes;
mod runs;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use store::RunRecord;

pub(crate) use admin::{audit, create_token, revoke_token, tokens};
pub(crate) use forms::{cancel, pause, rerun, resume, run_now};
pub(crate) use processes::{process, processes};
pub(crate) use runs::{run, runs, step_documents};

use crate::Shared;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::session;

/// The policy of every page: this origin's stylesheet and forms; no script, no frame.
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's stylesheet, served at `/console.css`.
pub const STYLESHEET: &str = include_str!("../../assets/console.css");

/// A page answer with the security headers.
pub(crate) fn page(status: StatusCode, title: &str, caller: Option<&Caller>, body: Markup) -> Response {
    page_with(status, title, caller, None, body)
}

/// [`page`], reloading itself every `refresh` seconds (a running run's progress).
pub(crate) fn page_with(
    status: StatusCode,
    title: &str,
    caller: Option<&Caller>,
    refresh: Option<u32>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds); }
                title { (title) " · Stepwise" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                @if let Some(caller) = caller {
                    nav aria-label="Main" {
                        a href="/" { "Processes" } a href="/runs" { "Runs" }
                        @if caller.role >= store::Role::Admin { a href="/tokens" { "Tokens" } a href="/audit" { "Audit" } }
                        span.note { "Signed in as " (caller.name) " (" (caller.role) @if caller.view_data { ", sees data" } ")" }
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
        // Not `no-referrer`: under it a browser sends `Origin: null` with the pages' own forms,
        // which the cross-origin check must refuse. `same-origin` sends the real origin to this
        // console and no referrer anywhere else.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    ];
    (status, headers, markup.into_string()).into_response()
}

/// An action or read that failed, as a page.
pub(crate) fn error_page(caller: &Caller, error: ApiError) -> Response {
    refusal_page(Some(caller), error)
}

/// A refused request as a page, with the caller's navigation when the caller is known.
pub(crate) fn refusal_page(caller: Option<&Caller>, error: ApiError) -> Response {
    let status = error.status();
    // Without a session, the processes page sends a browser on to sign in.
    page(
        status,
        "Not done",
        caller,
        html! { p role="alert" { (error.message()) } p { a href="/" { "Back to the processes" } } },
    )
}

pub(crate) async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], STYLESHEET)
        .into_response()
}

/// `?code=` of the one-time sign-in address `serve` prints.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    code: Option<String>,
}

fn login_form(error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error { p role="alert" { (error) } }
        form method="post" action="/login" {
            label for="token" { "Token" }
            input id="token" name="token" type="password" autocomplete="off" required;
            button type="submit" { "Sign in" }
        }
    }
}

/// The one-time address's page: one button, which uses the code (a GET changes nothing).
fn code_form(code: &str, token: &str) -> Markup {
    html! {
        p { "This address signs you in once, as the token '" (token) "' that " code { "serve" } " made." }
        form method="post" action="/login" {
            input type="hidden" name="code" value=(code);
            button type="submit" { "Sign in as " (token) }
        }
    }
}

const USED_CODE: &str = "This sign-in address was used already or has expired: sign in with a token \
                         (make one with `stepwise token create NAME --role admin --store STORE`, STORE being \
                         the run store serve uses).";

const REVOKED_CODE: &str = "The token this address signs in as was revoked: sign in with another token.";

pub(crate) async fn login_page(
    State(console): State<Shared>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let code = query.ok().and_then(|Query(q)| q.code).filter(|c| !c.trim().is_empty());
    let body = match code.as_deref().map(|c| (c, console.codes.peek(c))) {
        // The page offers the button while a token of that name exists (signing in checks it is
        // the very token); the store failing is answered by the sign-in itself.
        Some((code, Some((name, _)))) => {
            let tokens = console.store.tokens().await;
            if tokens.is_ok_and(|tokens| !tokens.iter().any(|t| t.name == name)) {
                login_form(Some(REVOKED_CODE))
            } else {
                code_form(code, &name)
            }
        }
        Some((_, None)) => login_form(Some(USED_CODE)),
        None => login_form(None),
    };
    page(StatusCode::OK, "Sign in", None, body)
}

/// The sign-in form: a token, or the one-time code of the address `serve` printed.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: Option<String>,
    code: Option<String>,
}

pub(crate) async fn login(
    State(console): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let refused = |error| Ok(page(StatusCode::UNAUTHORIZED, "Sign in", None, login_form(Some(error))));
    let (id, name) = match (form.code, form.token) {
        (Some(code), _) => {
            // The code's token must still exist; the session is opened before the code is
            // used up, and closed again if another request used it meanwhile.
            let Some((_, token_hash)) = console.codes.peek(&code) else { return refused(USED_CODE) };
            // That very token (not a later one of the same name).
            let Some(record) = console.store.authenticate(&token_hash, chrono::Utc::now()).await? else {
                return refused(REVOKED_CODE);
            };
            let name = record.name;
            let id = session::open(&*console.store, &name).await?;
            if !console.codes.take(&code) {
                session::close(&*console.store, &id).await?;
                return refused(USED_CODE);
            }
            (id, name)
        }
        (None, Some(token)) => {
            let hash = crate::token::hash(token.trim());
            let Some(record) = console.store.authenticate(&hash, chrono::Utc::now()).await? else {
                return refused("Unknown or revoked token.");
            };
            (session::open(&*console.store, &record.name).await?, record.name)
        }
        (None, None) => return refused("Enter a token."),
    };
    tracing::info!(message = "Signed in to the console.", token = %name);
    let secure = console.options.https || session::behind_https_proxy(&headers);
    Ok(([(header::SET_COOKIE, session::set_cookie(&id, secure))], Redirect::to("/")).into_response())
}

pub(crate) async fn logout(State(console): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session::cookie(&headers) {
        session::close(&*console.store, id).await?;
    }
    Ok(([(header::SET_COOKIE, session::clear_cookie())], Redirect::to("/login")).into_response())
}

/// A run's status, coloured, linking to the run.
pub(crate) fn status_link(run: &RunRecord) -> Markup {
    html! { a class={ "status status-" (run.status) } href={ "/runs/" (run.run_id) } { (run.status) } }
}

/// An instant as the pages show it: UTC, to the second.
pub(crate) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
