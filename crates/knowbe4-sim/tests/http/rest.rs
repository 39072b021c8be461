//! The Reporting REST reads: bare arrays, `page` / `per_page` (at most 500), filters, 404s.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn users_pages_are_bare_arrays_capped_at_500() {
    let sim = Sim::start(knowbe4_sim::SimConfig { seed_users: 510, ..config() }).await;
    let (status, body) = sim.rest("/v1/users?per_page=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 500, "per_page is capped at 500");
    let (_, page2) = sim.rest("/v1/users?per_page=500&page=2").await;
    assert_eq!(page2.as_array().unwrap().len(), 10, "a short last page");
    let (_, page3) = sim.rest("/v1/users?per_page=500&page=3").await;
    assert_eq!(page3, json!([]), "past the end is an empty array");
    let (_, default) = sim.rest("/v1/users").await;
    assert_eq!(default.as_array().unwrap().len(), 100, "per_page defaults to 100");
    let first = &default[0];
    for key in [
        "id",
        "email",
        "first_name",
        "last_name",
        "status",
        "groups",
        "current_risk_score",
        "phish_prone_percentage",
        "joined_on",
    ] {
        assert!(first.get(key).is_some(), "user JSON has {key}");
    }
    assert_eq!(first["status"], json!("active"));
}

#[tokio::test]
async fn users_filters_and_single_user() {
    let sim = Sim::default().await;
    let (_, archived) = sim.rest("/v1/users?status=archived&per_page=500").await;
    let archived = archived.as_array().unwrap();
    assert_eq!(archived.len(), user_ids(&sim, "ARCHIVED").await.len());
    assert!(archived.iter().all(|u| u["status"] == json!("archived") && u["archived_at"].is_string()));
    let (_, active) = sim.rest("/v1/users?status=active&per_page=500").await;
    assert_eq!(active.as_array().unwrap().len(), user_ids(&sim, "ACTIVE").await.len());
    let group = group_of_type(&sim, "CONSOLE").await;
    let (_, members) = sim.rest(&format!("/v1/users?group_id={group}&expand=group&per_page=500")).await;
    let members = members.as_array().unwrap();
    assert!(!members.is_empty());
    assert!(members.iter().all(|u| u["groups"].as_array().unwrap().iter().any(|g| g["id"] == json!(group))));
    let id = active[0]["id"].as_i64().unwrap();
    let (status, one) = sim.rest(&format!("/v1/users/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], json!(id));
    let (status, body) = sim.rest("/v1/users/42").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], json!("Not Found"));
    let (status, _) = sim.rest("/v1/users/abc").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn groups_members_and_account() {
    let sim = Sim::default().await;
    let (_, all) = sim.rest("/v1/groups").await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.iter().any(|g| g["group_type"] == json!("console_group")));
    assert!(all.iter().any(|g| g["group_type"] == json!("smart_group")));
    let (_, active) = sim.rest("/v1/groups?status=active").await;
    assert!(active.as_array().unwrap().iter().all(|g| g["status"] == json!("active")));
    let (_, paged) = sim.rest("/v1/groups?per_page=2&page=3").await;
    assert_eq!(paged.as_array().unwrap().len(), 1);

    let group = group_of_type(&sim, "CONSOLE").await;
    let (_, one) = sim.rest(&format!("/v1/groups/{group}")).await;
    let (_, members) = sim.rest(&format!("/v1/groups/{group}/members?per_page=500")).await;
    assert_eq!(json!(members.as_array().unwrap().len()), one["member_count"]);
    let (_, first) = sim.rest(&format!("/v1/groups/{group}/members?per_page=1")).await;
    assert_eq!(first.as_array().unwrap().len(), 1);
    let (status, _) = sim.rest("/v1/groups/7/members").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, account) = sim.rest("/v1/account").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["name"], json!("Stepwise Sandbox Inc."));
    assert!(account["number_of_seats"].as_i64().unwrap() >= 50);
    let (status, _) = sim.rest("/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_json_is_answered() {
    let sim = Sim::default().await;
    let get = |accept: &'static str| {
        sim.client.get(sim.url("/v1/account")).bearer_auth(TOKEN).header("accept", accept).send()
    };
    for accept in ["application/json", "*/*", "application/*", "text/html, application/json;q=0.9"] {
        assert_eq!(get(accept).await.unwrap().status(), StatusCode::OK, "{accept}");
    }
    let refused = get("application/xml").await.unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("JSON only"), "{body}");
}
