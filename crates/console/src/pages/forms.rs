//! The forms of the pages: run now (with property values), pause, resume, cancel and rerun.
//! Each does what its API route does (`crate::actions`, audited) and answers with a redirect to
//! the page that shows the result, or a page saying why not.

use std::collections::BTreeMap;

use axum::extract::{Extension, Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::error_page;
use crate::Shared;
use crate::actions;
use crate::auth::Caller;

/// The run-now form: `property.NAME` fields.
fn overrides(form: BTreeMap<String, String>) -> Vec<(String, String)> {
    form.into_iter().filter_map(|(k, v)| k.strip_prefix("property.").map(|name| (name.to_owned(), v))).collect()
}

pub(crate) async fn run_now(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    match actions::queue_run(&console, &caller, &name, overrides(form)).await {
        Ok(run_id) => Redirect::to(&format!("/runs/{run_id}")).into_response(),
        Err(error) => error_page(&caller, error),
    }
}

pub(crate) async fn rerun(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> Response {
    match actions::rerun(&console, &caller, &run_id).await {
        Ok(again) => Redirect::to(&format!("/runs/{again}")).into_response(),
        Err(error) => error_page(&caller, error),
    }
}

pub(crate) async fn cancel(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> Response {
    match actions::cancel(&console, &caller, &run_id).await {
        Ok(_) => Redirect::to(&format!("/runs/{run_id}")).into_response(),
        Err(error) => error_page(&caller, error),
    }
}

async fn set_paused(console: Shared, caller: Caller, name: String, pause: bool) -> Response {
    match actions::set_paused(&console, &caller, &name, pause).await {
        Ok(()) => Redirect::to(&format!("/processes/{name}")).into_response(),
        Err(error) => error_page(&caller, error),
    }
}

pub(crate) async fn pause(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    set_paused(console, caller, name, true).await
}

pub(crate) async fn resume(
    State(console): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    set_paused(console, caller, name, false).await
}
