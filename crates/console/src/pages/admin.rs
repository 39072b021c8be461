//! The admins' pages: tokens (list, make, revoke) and the audit trail. Making and revoking go
//! through `crate::actions`, audited as their API routes are; a new token is shown once, on the
//! page that answers the form (never stored, never in a URL).

use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use store::{AuditEntry, Role, TokenRecord};

use super::{error_page, page, when};
use crate::Shared;
use crate::actions;
use crate::auth::Caller;
use crate::error::ApiError;

fn tokens_table(tokens: &[TokenRecord]) -> Markup {
    html! {
        table {
            caption { "Tokens (only their hashes are kept)" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Sees data" }
                th scope="col" { "Made" } th scope="col" { "Last used" } th scope="col" { "Revoke" } } }
            tbody {
                @for t in tokens {
                    tr {
                        td { (t.name) } td { (t.role) } td { @if t.view_data { "yes" } @else { "no" } }
                        td { (when(t.created_at)) } td { @if let Some(at) = t.last_used_at { (when(at)) } @else { "never" } }
                        td { form.inline method="post" action={ "/tokens/" (t.name) "/revoke" } {
                            button type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" } } }
                    }
                }
            }
        }
    }
}

fn new_token_form() -> Markup {
    html! {
        h2 { "Make a token" }
        form.filters method="post" action="/tokens" {
            label { "Name" input name="name" required pattern="[A-Za-z0-9._-]{1,64}" autocomplete="off"; }
            label { "Role"
                select name="role" { @for role in ["viewer", "operator", "admin"] { option value=(role) { (role) } } }
            }
            label { input type="checkbox" name="view_data" value="on"; "Sees document contents" }
            button type="submit" { "Make token" }
        }
    }
}

pub(crate) async fn tokens(State(console): State<Shared>, Extension(caller): Extension<Caller>) -> Response {
    match console.store.tokens().await {
        Ok(tokens) => {
            let body = html! { (tokens_table(&tokens)) (new_token_form()) };
            page(StatusCode::OK, "Tokens", Some(&caller), body)
        }
        Err(error) => error_page(&caller, error.into()),
    }
}

/// The make-a-token form.
#[derive(Debug, Deserialize)]
pub(crate) struct NewTokenForm {
    name: String,
    role: String,
    view_data: Option<String>,
}

/// Makes a token and shows it, once, on the answer (201; the page is never cached).
pub(crate) async fn create_token(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    form: Result<Form<NewTokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return error_page(&caller, ApiError::bad_request(rejection.body_text())),
    };
    let made = async {
        let role: Role = form.role.parse().map_err(ApiError::bad_request)?;
        actions::create_token(&console, &caller, form.name.trim(), role, form.view_data.is_some()).await
    };
    match made.await {
        Ok((token, record)) => {
            let body = html! {
                p role="status" { "Token '" (record.name) "' (" (record.role) @if record.view_data { ", sees data" } ") was made. \
                    It is shown only now: copy it into your secret store." }
                label for="new-token" { "The token" }
                input id="new-token" type="text" readonly value=(token) size="60";
                p { a href="/tokens" { "Back to the tokens" } }
            };
            page(StatusCode::CREATED, "Token made", Some(&caller), body)
        }
        Err(error) => error_page(&caller, error),
    }
}

pub(crate) async fn revoke_token(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    match actions::revoke_token(&console, &caller, &name).await {
        Ok(()) => Redirect::to("/tokens").into_response(),
        Err(error) => error_page(&caller, error),
    }
}

/// `?limit=` of the audit page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    limit: Option<String>,
}

fn audit_table(entries: &[AuditEntry]) -> Markup {
    html! {
        table {
            caption { "Newest first" }
            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" }
                th scope="col" { "On" } th scope="col" { "Detail" } } }
            tbody {
                @for e in entries {
                    tr { td { (when(e.at)) } td { (e.actor) } td { (e.action) } td { (e.target) }
                        td { (e.detail.as_deref().unwrap_or("")) } }
                }
            }
        }
    }
}

pub(crate) async fn audit(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // The API's `limit` rule (`GET /api/v1/audit`).
    let limit = match query
        .map_err(|e| ApiError::bad_request(e.body_text()))
        .and_then(|Query(q)| crate::api::limit(q.limit.as_deref()))
    {
        Ok(limit) => limit,
        Err(error) => return error_page(&caller, error),
    };
    match console.store.audit(limit).await {
        Ok(entries) => {
            let most = crate::api::MAX_LIMIT;
            let more = (entries.len() == limit && limit < most).then(|| (limit * 10).min(most));
            let body = html! {
                (audit_table(&entries))
                @if let Some(more) = more { p { a href={ "/audit?limit=" (more) } { "Show up to " (more) " lines" } } }
            };
            page(StatusCode::OK, "Audit trail", Some(&caller), body)
        }
        Err(error) => error_page(&caller, error.into()),
    }
}
