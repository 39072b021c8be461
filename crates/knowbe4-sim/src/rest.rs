//! The read-only Reporting REST API: `GET /v1/account`, `/v1/users[/{id}]`, `/v1/groups[/{id}]`
//! and `/v1/groups/{id}/members`. Lists are bare JSON arrays paged by `page` (from 1) and
//! `per_page` (default 100, at most 500); the end is a short or empty page.

use std::time::Instant;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use sim_net::Conn;

use crate::config::TokenKind;
use crate::model::{Db, Group, User};
use crate::scalars::GroupTypes;
use crate::server::{AppState, gate, json_response, log_request, truncate};

/// Default and largest `per_page`.
pub(crate) const DEFAULT_PER_PAGE: usize = 100;
pub(crate) const MAX_PER_PAGE: usize = 500;

fn param<'a>(query: &'a Option<String>, name: &str) -> Option<&'a str> {
    query.as_deref()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

fn paging(query: &Option<String>) -> (usize, usize) {
    let page = param(query, "page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let per = param(query, "per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    (page, per)
}

/// 200 with the asked page (`page`, `per_page`) of `items`, each as JSON.
fn page_json<T>(items: Vec<T>, query: &Option<String>, to_json: impl FnMut(T) -> Value) -> (StatusCode, Value) {
    let (page, per) = paging(query);
    let page = items.into_iter().skip((page - 1).saturating_mul(per)).take(per).map(to_json).collect();
    (StatusCode::OK, Value::Array(page))
}

fn not_found() -> (StatusCode, Value) {
    (StatusCode::NOT_FOUND, json!({ "message": "Not Found" }))
}

/// Runs one REST read through the gate; `op` is the route template for stats and logs.
async fn serve(
    app: &AppState,
    conn: &Conn,
    headers: &HeaderMap,
    op: &'static str,
    path: &str,
    read: impl FnOnce(&Db) -> (StatusCode, Value),
) -> Response {
    let started = Instant::now();
    let ops = vec![op.to_string()];
    let resp = match gate(&app.shared, headers, conn, &ops).await {
        Err(resp) => resp,
        Ok(admitted) if admitted.kind == TokenKind::Partner => json_response(
            StatusCode::FORBIDDEN,
            &json!({ "message": "Forbidden: the Reporting API needs an account API key" }),
        ),
        Ok(_) if !accepts_json(headers) => json_response(
            StatusCode::NOT_ACCEPTABLE,
            &json!({ "message": "Not Acceptable: the Reporting API answers JSON only" }),
        ),
        Ok(admitted) => {
            let (status, body) = {
                let db = app.shared.lock_db();
                read(&db)
            };
            if admitted.malformed {
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                truncate(json_response(status, &Value::Null), bytes)
            } else {
                json_response(status, &body)
            }
        }
    };
    log_request("GET", path, &ops, resp.status(), started, Some(conn.remote));
    resp
}

/// Whether an `Accept` header (none means anything) lets the answer be JSON; KnowBe4 answers
/// 406 otherwise.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(axum::http::header::ACCEPT) else { return true };
    let Ok(accept) = accept.to_str() else { return false };
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        matches!(media.as_str(), "*/*" | "application/*" | "application/json" | "") || media.ends_with("+json")
    })
}

fn opt_date(d: &Option<crate::scalars::Date>) -> Value {
    d.as_ref().map_or(Value::Null, |d| Value::String(d.0.clone()))
}

fn group_type(t: GroupTypes) -> &'static str {
    match t {
        GroupTypes::Console => "console_group",
        GroupTypes::Smart => "smart_group",
        GroupTypes::AdiManaged => "adi_group",
    }
}

pub(crate) fn group_json(g: &Group, db: &Db) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "group_type": group_type(g.group_type),
        "provisioning_guid": g.ldap_object_guid,
        "member_count": db.members_of(g.id).count(),
        "current_risk_score": g.risk_score,
        "status": if g.status == crate::scalars::GroupStatuses::Archived { "archived" } else { "active" },
    })
}

pub(crate) fn user_json(u: &User, db: &Db, expand_groups: bool) -> Value {
    let groups: Vec<Value> = if expand_groups {
        u.memberships.iter().filter_map(|g| db.groups.get(g)).map(|g| group_json(g, db)).collect()
    } else {
        u.memberships.iter().map(|g| json!(g)).collect()
    };
    json!({
        "id": u.id,
        "employee_number": u.employee_number,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "job_title": u.job_title,
        "email": u.email,
        "phish_prone_percentage": u.current_ppp,
        "phone_number": u.phone_number,
        "extension": u.extension,
        "mobile_phone_number": u.mobile_phone_number,
        "location": u.location,
        "division": u.division,
        "manager_name": u.manager_name,
        "manager_email": u.manager_email,
        "provisioning_managed": u.provisioning_managed,
        "provisioning_guid": Value::Null,
        "groups": groups,
        "current_risk_score": u.risk_score,
        "aliases": u.email_aliases.iter().filter(|a| !a.primary).map(|a| a.email.clone()).collect::<Vec<_>>(),
        "joined_on": u.created_at.0,
        "last_sign_in": u.last_sign_in_at.as_ref().map(|t| t.0.clone()),
        "status": if u.archived { "archived" } else { "active" },
        "organization": u.organization,
        "department": u.department,
        "language": u.language,
        "comment": Value::Null,
        "employee_start_date": opt_date(&u.employee_start_date),
        "archived_at": u.archived_at.as_ref().map(|t| t.0.clone()),
        "custom_field_1": u.custom_field1,
        "custom_field_2": u.custom_field2,
        "custom_field_3": u.custom_field3,
        "custom_field_4": u.custom_field4,
        "custom_date_1": opt_date(&u.custom_date1),
        "custom_date_2": opt_date(&u.custom_date2),
    })
}

fn status_filter(query: &Option<String>) -> Option<bool> {
    match param(query, "status") {
        Some("active") => Some(false),
        Some("archived") => Some(true),
        _ => None,
    }
}

pub(crate) async fn users(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    serve(&app, &conn, &headers, "GET /v1/users", uri.path(), |db| {
        let archived = status_filter(&query);
        let group = param(&query, "group_id").and_then(|g| g.parse::<i32>().ok());
        let expand = param(&query, "expand") == Some("group");
        let items: Vec<&User> = db
            .users
            .values()
            .filter(|u| archived.is_none_or(|a| u.archived == a))
            .filter(|u| group.is_none_or(|g| u.memberships.contains(&g)))
            .collect();
        page_json(items, &query, |u| user_json(u, db, expand))
    })
    .await
}

pub(crate) async fn user(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    serve(&app, &conn, &headers, "GET /v1/users/{id}", uri.path(), |db| {
        match id.parse::<i32>().ok().and_then(|id| db.users.get(&id)) {
            Some(u) => (StatusCode::OK, user_json(u, db, false)),
            None => not_found(),
        }
    })
    .await
}

pub(crate) async fn groups(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    serve(&app, &conn, &headers, "GET /v1/groups", uri.path(), |db| {
        let archived = status_filter(&query);
        let items: Vec<&Group> = db
            .groups
            .values()
            .filter(|g| archived.is_none_or(|a| (g.status == crate::scalars::GroupStatuses::Archived) == a))
            .collect();
        page_json(items, &query, |g| group_json(g, db))
    })
    .await
}

pub(crate) async fn group(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    serve(&app, &conn, &headers, "GET /v1/groups/{id}", uri.path(), |db| {
        match id.parse::<i32>().ok().and_then(|id| db.groups.get(&id)) {
            Some(g) => (StatusCode::OK, group_json(g, db)),
            None => not_found(),
        }
    })
    .await
}

pub(crate) async fn members(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    serve(&app, &conn, &headers, "GET /v1/groups/{id}/members", uri.path(), |db| {
        let Some(group) = id.parse::<i32>().ok().filter(|id| db.groups.contains_key(id)) else {
            return not_found();
        };
        let items: Vec<&User> = db.members_of(group).collect();
        page_json(items, &query, |u| user_json(u, db, false))
    })
    .await
}

pub(crate) async fn account(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    serve(&app, &conn, &headers, "GET /v1/account", uri.path(), |db| {
        let Some(a) = db.account_view(db.tenant_account_id, false) else {
            return not_found();
        };
        let admins: Vec<Value> = db
            .users
            .values()
            .filter(|u| u.admin)
            .map(|u| json!({ "id": u.id, "first_name": u.first_name, "last_name": u.last_name, "email": u.email }))
            .collect();
        let risk: f64 = {
            let active: Vec<f64> = db.users.values().filter(|u| !u.archived).map(|u| u.risk_score).collect();
            if active.is_empty() {
                0.0
            } else {
                (active.iter().sum::<f64>() / active.len() as f64 * 10.0).round() / 10.0
            }
        };
        let body = json!({
            "name": a.company_name,
            "type": match a.billing_type {
                crate::scalars::AccountBillingTypes::Trial => "trial",
                crate::scalars::AccountBillingTypes::Free => "free",
                _ => "paid",
            },
            "domains": [a.domain],
            "admins": admins,
            "subscription_level": a.subscription_object.friendly_name,
            "subscription_end_date": a.subscription_end_date.as_ref().map(|d| d.0.clone()),
            "number_of_seats": a.number_of_seats,
            "current_risk_score": risk,
        });
        (StatusCode::OK, body)
    })
    .await
}
