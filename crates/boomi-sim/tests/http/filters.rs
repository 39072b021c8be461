//! QueryFilter: every operator, nested and/or groups, filter errors, and paging with queryMore.

use std::collections::BTreeSet;

use boomi_sim::{ADMINISTRATOR_ROLE_ID, NON_UUID_ROLE_ID, STANDARD_USER_ROLE_ID, SUPPORT_ROLE_ID};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Sim, sim};

fn id_set(results: &[Value]) -> BTreeSet<String> {
    results.iter().map(|r| r["id"].as_str().unwrap_or_default().to_string()).collect()
}

fn field<'a>(r: &'a Value, name: &str) -> &'a str {
    r[name].as_str().unwrap_or_default()
}

/// Runs a filter and compares its ids with those of `all` that satisfy `expected`.
async fn check(s: &Sim, object: &str, all: &[Value], expression: Value, expected: impl Fn(&Value) -> bool) {
    let (got, _) = s.query_all(object, Some(expression.clone())).await;
    let want: Vec<Value> = all.iter().filter(|r| expected(r)).cloned().collect();
    assert_eq!(id_set(&got), id_set(&want), "filter {expression}");
    assert_eq!(got.len(), want.len(), "no duplicates for {expression}");
}

#[tokio::test]
async fn every_operator() {
    let s = sim(60).await;
    let (grants, _) = s.query_all("AccountUserRole", None).await;
    let (roles, _) = s.query_all("Role", None).await;
    let (groups, _) = s.query_all("AccountGroup", None).await;
    let aur = "AccountUserRole";
    let user = field(&grants[5], "userId").to_string();
    let prefix: String = user.chars().take(3).collect();
    let pivot = field(&grants[grants.len() / 2], "userId").to_string();

    check(&s, aur, &grants, Sim::expr("userId", "EQUALS", &[&user]), |r| field(r, "userId") == user).await;
    check(&s, aur, &grants, Sim::expr("roleId", "EQUALS", &[ADMINISTRATOR_ROLE_ID]), |r| {
        field(r, "roleId") == ADMINISTRATOR_ROLE_ID
    })
    .await;
    check(&s, aur, &grants, Sim::expr("userId", "LIKE", &[&format!("{prefix}%")]), |r| {
        field(r, "userId").starts_with(&prefix)
    })
    .await;
    check(&s, aur, &grants, Sim::expr("userId", "LIKE", &["%1@example.com"]), |r| {
        field(r, "userId").ends_with("1@example.com")
    })
    .await;
    check(&s, aur, &grants, Sim::expr("userId", "LIKE", &["%a%1%"]), |r| {
        let u = field(r, "userId");
        u.find('a').is_some_and(|at| u[at + 1..].contains('1'))
    })
    .await;
    check(&s, aur, &grants, Sim::expr("roleId", "NOT_EQUALS", &[STANDARD_USER_ROLE_ID]), |r| {
        field(r, "roleId") != STANDARD_USER_ROLE_ID
    })
    .await;
    check(&s, "Role", &roles, Sim::expr("parentId", "IS_NULL", &[]), |r| r.get("parentId").is_none()).await;
    check(&s, "Role", &roles, Sim::expr("parentId", "IS_NOT_NULL", &[]), |r| r.get("parentId").is_some()).await;
    let (is_null, _) = s.query_all("Role", Some(Sim::expr("parentId", "IS_NULL", &[]))).await;
    assert_eq!(is_null.len(), 1);
    assert_eq!(is_null[0]["id"], NON_UUID_ROLE_ID);
    check(&s, aur, &grants, Sim::expr("userId", "BETWEEN", &["c", "k"]), |r| ("c"..="k").contains(&field(r, "userId")))
        .await;
    check(&s, aur, &grants, Sim::expr("userId", "GREATER_THAN", &[&pivot]), |r| field(r, "userId") > pivot.as_str())
        .await;
    check(&s, aur, &grants, Sim::expr("userId", "GREATER_THAN_OR_EQUAL", &[&pivot]), |r| {
        field(r, "userId") >= pivot.as_str()
    })
    .await;
    check(&s, aur, &grants, Sim::expr("userId", "LESS_THAN", &[&pivot]), |r| field(r, "userId") < pivot.as_str()).await;
    check(&s, aur, &grants, Sim::expr("userId", "LESS_THAN_OR_EQUAL", &[&pivot]), |r| {
        field(r, "userId") <= pivot.as_str()
    })
    .await;
    check(&s, aur, &grants, Sim::expr("userId", "CONTAINS", &["an"]), |r| field(r, "userId").contains("an")).await;
    check(&s, aur, &grants, Sim::expr("userId", "NOT_CONTAINS", &["an"]), |r| !field(r, "userId").contains("an")).await;
    check(&s, "Role", &roles, Sim::expr("name", "STARTS_WITH", &["Pro"]), |r| field(r, "name").starts_with("Pro"))
        .await;
    let (pro, _) = s.query_all("Role", Some(Sim::expr("name", "STARTS_WITH", &["Pro"]))).await;
    assert_eq!(pro.len(), 2, "Production Support and Process Developer");
    check(&s, "AccountGroup", &groups, Sim::expr("defaultGroup", "EQUALS", &["true"]), |r| r["defaultGroup"] == true)
        .await;
    check(&s, "AccountGroup", &groups, Sim::expr("autoSubscribeAlertLevel", "NOT_EQUALS", &["none"]), |r| {
        r["autoSubscribeAlertLevel"] != "none"
    })
    .await;
}

#[tokio::test]
async fn nested_and_or_groups() {
    let s = sim(60).await;
    let (grants, _) = s.query_all("AccountUserRole", None).await;
    let is_admin_or_support = |r: &Value| [ADMINISTRATOR_ROLE_ID, SUPPORT_ROLE_ID].contains(&field(r, "roleId"));
    let expr = json!({
        "operator": "and",
        "nestedExpression": [
            { "operator": "or", "nestedExpression": [
                Sim::expr("roleId", "EQUALS", &[ADMINISTRATOR_ROLE_ID]),
                Sim::expr("roleId", "EQUALS", &[SUPPORT_ROLE_ID]),
            ]},
            Sim::expr("userId", "LESS_THAN", &["m"]),
        ]
    });
    check(&s, "AccountUserRole", &grants, expr, |r| is_admin_or_support(r) && field(r, "userId") < "m").await;
    let expr = json!({
        "operator": "or",
        "nestedExpression": [
            { "operator": "and", "nestedExpression": [
                Sim::expr("roleId", "EQUALS", &[STANDARD_USER_ROLE_ID]),
                Sim::expr("userId", "STARTS_WITH", &["a"]),
            ]},
            { "operator": "AND", "nestedExpression": [
                Sim::expr("roleId", "NOT_EQUALS", &[STANDARD_USER_ROLE_ID]),
                { "operator": "or", "nestedExpression": [
                    Sim::expr("userId", "CONTAINS", &["z"]),
                    Sim::expr("userId", "LIKE", &["%0@%"]),
                ]},
            ]},
        ]
    });
    check(&s, "AccountUserRole", &grants, expr, |r| {
        let (u, role) = (field(r, "userId"), field(r, "roleId"));
        (role == STANDARD_USER_ROLE_ID && u.starts_with('a'))
            || (role != STANDARD_USER_ROLE_ID && (u.contains('z') || u.contains("0@")))
    })
    .await;
}

#[tokio::test]
async fn bad_filters_are_400() {
    let s = sim(3).await;
    let bad = [
        json!({}),
        json!({ "QueryFilter": "x" }),
        json!({ "QueryFilter": { "expression": Sim::expr("firstName", "EQUALS", &["x"]) } }),
        json!({ "QueryFilter": { "expression": Sim::expr("userId", "SOUNDS_LIKE", &["x"]) } }),
        json!({ "QueryFilter": { "expression": Sim::expr("userId", "BETWEEN", &["a"]) } }),
        json!({ "QueryFilter": { "expression": Sim::expr("userId", "EQUALS", &[]) } }),
        json!({ "QueryFilter": { "expression": { "property": "userId", "operator": "EQUALS", "argument": [1] } } }),
        json!({ "QueryFilter": { "expression": { "operator": "xor", "nestedExpression": [Sim::expr("userId", "EQUALS", &["a"])] } } }),
        json!({ "QueryFilter": { "expression": { "operator": "and", "nestedExpression": [] } } }),
    ];
    for body in bad {
        let a = s.post("AccountUserRole/query", body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert_eq!(a.body["@type"], "Error", "{body}");
        assert!(a.body["message"].is_string());
    }
    // Properties are per object: Role filters on name and parentId only.
    let a = s.query("Role", Some(Sim::expr("roleId", "EQUALS", &["x"]))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn paging_across_250_plus_records() {
    let s = sim(200).await;
    let expected = s.handle.state()["users"]
        .as_array()
        .map(|u| u.iter().map(|u| u["globalRoles"].as_array().map_or(0, Vec::len)).sum::<usize>())
        .unwrap_or_default();
    assert!(expected >= 250, "{expected} grants");
    let first = s.query("AccountUserRole", None).await;
    assert_eq!(first.body["numberOfResults"], 100);
    assert!(first.body["queryToken"].is_string());
    let (all, pages) = s.query_all("AccountUserRole", None).await;
    assert_eq!(all.len(), expected);
    assert_eq!(pages, expected.div_ceil(100));
    assert_eq!(id_set(&all).len(), expected, "no record twice");
    assert_eq!(s.op_count("AccountUserRole.queryMore"), u64::try_from(pages - 1).unwrap_or_default());

    // A retried queryMore returns the same page; a JSON-quoted token works too.
    let token = first.body["queryToken"].as_str().unwrap_or_default().to_string();
    let a = s.post_text("AccountUserRole/queryMore", &token).await;
    let b = s.post_text("AccountUserRole/queryMore", &format!("\"{token}\"")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, b.body);
    // Unknown token; a token of another object.
    let a = s.post_text("AccountUserRole/queryMore", "nope").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["@type"], "Error");
    let a = s.post_text("Role/queryMore", &token).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = s.post_text("AccountUserRole/queryMore", "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // A filtered query with fewer than 100 matches has no token.
    let few = s.query("AccountUserRole", Some(Sim::expr("roleId", "EQUALS", &[NON_UUID_ROLE_ID]))).await;
    assert!(few.body.get("queryToken").is_none());
    // No matches: numberOfResults 0 and an empty result.
    let none = s.query("AccountUserRole", Some(Sim::expr("userId", "EQUALS", &["nobody@nowhere.example"]))).await;
    assert_eq!(none.body["numberOfResults"], 0);
    assert_eq!(none.body["result"], json!([]));
}
