//! Every endpoint, auth failures, content negotiation and error shapes.

use boomi_sim::{ADMINISTRATOR_ROLE_ID, NON_UUID_ROLE_ID, STANDARD_USER_ROLE_ID, SUPPORT_ROLE_ID};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Sim, sim};

#[tokio::test]
async fn bad_credentials_answer_401_and_wrong_account_403() {
    let s = sim(3).await;
    let url = s.url("Role/query");
    let body = json!({ "QueryFilter": {} });
    // No credentials.
    let a = s.send(s.http.post(&url).header("Accept", "application/json").json(&body)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body["message"].is_string(), "{}", a.text);
    // Wrong token.
    let a = s
        .send(s.http.post(&url).basic_auth(&s.user, Some("nope")).header("Accept", "application/json").json(&body))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // The email without the BOOMI_TOKEN. prefix.
    let a = s
        .send(
            s.http
                .post(&url)
                .basic_auth("admin@example.com", Some(&s.token))
                .header("Accept", "application/json")
                .json(&body),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // A bearer token is not Basic auth.
    let a = s.send(s.http.post(&url).bearer_auth(&s.token).header("Accept", "application/json").json(&body)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Right credentials, another account.
    let other = format!("{}/api/rest/v1/someone-else-XY99/Role/query", s.handle.base_url());
    let a = s.send(s.authed(s.http.post(&other)).json(&body)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body["message"].as_str().unwrap_or_default().contains("someone-else-XY99"));
    // The email is case-insensitive.
    let a = s
        .send(
            s.http
                .post(&url)
                .basic_auth("BOOMI_TOKEN.Admin@Example.com", Some(&s.token))
                .header("Accept", "application/json")
                .json(&body),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let stats = s.handle.stats();
    assert_eq!(stats["unauthorized"], 4);
    assert_eq!(stats["forbidden"], 1);
    assert_eq!(stats["by_operation"]["Role.query"], 6);
}

#[tokio::test]
async fn json_headers_are_required() {
    let s = sim(3).await;
    let body = json!({ "QueryFilter": {} });
    let no_accept = s.http.post(s.url("Role/query")).basic_auth(&s.user, Some(&s.token)).json(&body);
    let a = s.send(no_accept.header("Accept", "application/xml")).await;
    assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(a.body["@type"], "Error");
    let a = s
        .send(s.authed(s.http.post(s.url("Role/query"))).header("Content-Type", "text/plain").body(body.to_string()))
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(a.body["@type"], "Error");
    // Unreadable JSON: the error.message shape.
    let a = s
        .send(s.authed(s.http.post(s.url("Role/query"))).header("Content-Type", "application/json").body("{not json"))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["error"]["message"].is_string(), "{}", a.text);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = sim(3).await;
    let a = s.get("Nope/123").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = s.get("AccountUserRole/abc").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.body["@type"], "Error");
    let a = s.post("AccountGroup/bulk", json!({})).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    let a = s.send(s.http.get(format!("{}/elsewhere", s.handle.base_url()))).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(s.op_count("unmatched") >= 2);
}

fn ids(results: &[Value]) -> Vec<String> {
    results.iter().map(|r| r["id"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn roles_get_query_and_bulk() {
    let s = sim(3).await;
    let (roles, pages) = s.query_all("Role", None).await;
    assert_eq!(pages, 1);
    assert_eq!(roles.len(), 8, "4 default, 3 custom, 1 non-UUID");
    for role in &roles {
        assert_eq!(role["@type"], "Role");
        assert_eq!(role["Privileges"]["@type"], "Privileges");
        assert!(role["Privileges"]["Privilege"].as_array().is_some_and(|p| !p.is_empty()));
        assert!(role["Description"].is_string());
    }
    let names: Vec<&str> = roles.iter().filter_map(|r| r["name"].as_str()).collect();
    for name in ["Standard User", "Administrator", "Production Support", "Support"] {
        assert!(names.contains(&name), "{name}");
    }
    let standard = roles.iter().find(|r| r["name"] == "Standard User").cloned().unwrap_or_default();
    assert_eq!(standard["id"], STANDARD_USER_ROLE_ID);
    assert_eq!(standard["accountId"], "1");
    let custom = roles.iter().filter(|r| r["accountId"] == s.account.as_str()).count();
    assert_eq!(custom, 4, "three custom roles and the non-UUID one belong to the account");

    let a = s.get(&format!("Role/{ADMINISTRATOR_ROLE_ID}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["name"], "Administrator");
    assert_eq!(a.body["@type"], "Role");
    let a = s.get("Role/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body["@type"], "Error");

    let a = s
        .post(
            "Role/bulk",
            json!({ "type": "GET", "request": [{ "id": SUPPORT_ROLE_ID }, { "id": "not-a-role" }, { "id": NON_UUID_ROLE_ID }] }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["@type"], "BulkResult");
    let responses = a.body["response"].as_array().cloned().unwrap_or_default();
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["statusCode"], 200);
    assert_eq!(responses[0]["Result"]["name"], "Support");
    assert_eq!(responses[1]["statusCode"], 400);
    assert!(responses[1]["errorMessage"].is_string());
    assert_eq!(responses[2]["Result"]["id"], NON_UUID_ROLE_ID);

    let too_many: Vec<Value> = (0..101).map(|i| json!({ "id": format!("r{i}") })).collect();
    let a = s.post("Role/bulk", json!({ "type": "GET", "request": too_many })).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["@type"], "Error");
    let hundred: Vec<Value> = (0..100).map(|_| json!({ "id": STANDARD_USER_ROLE_ID })).collect();
    let a = s.post("Role/bulk", json!({ "type": "GET", "request": hundred })).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(s.op_count("Role.bulk"), 3);
    assert_eq!(s.op_count("Role.get"), 2);
}

#[tokio::test]
async fn account_user_roles_create_query_delete() {
    let s = sim(6).await;
    let (grants, _) = s.query_all("AccountUserRole", None).await;
    assert!(!grants.is_empty());
    for g in &grants {
        assert_eq!(g["@type"], "AccountUserRole");
        assert_eq!(g["accountId"], s.account.as_str());
        assert!(g["userId"].as_str().is_some_and(|u| u.contains('@')));
        assert!(g["firstName"].is_string() && g["lastName"].is_string());
    }
    // Grant Support to an existing user who lacks it.
    let user = grants
        .iter()
        .map(|g| g["userId"].as_str().unwrap_or_default().to_string())
        .find(|u| !grants.iter().any(|g| g["userId"] == u.as_str() && g["roleId"] == SUPPORT_ROLE_ID))
        .unwrap_or_default();
    let a = s.grant(&user, SUPPORT_ROLE_ID).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["@type"], "AccountUserRole");
    assert_eq!(a.body["userId"], user.as_str());
    assert_eq!(a.body["roleId"], SUPPORT_ROLE_ID);
    assert_ne!(a.body["firstName"], "New", "names are ignored for an existing user");
    let id = a.body["id"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty());
    assert_eq!(s.stat("invitations"), 0);

    // The same grant again: 400 "already exists".
    let again = s.grant(&user, SUPPORT_ROLE_ID).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body["@type"], "Error");
    assert!(again.body["message"].as_str().unwrap_or_default().contains("already exists"));

    // The body's account must match the URL's.
    let a = s
        .post("AccountUserRole", json!({ "accountId": "other", "userId": user, "roleId": ADMINISTRATOR_ROLE_ID }))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = s.post("AccountUserRole", json!({ "userId": user, "roleId": ADMINISTRATOR_ROLE_ID })).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Unknown role; userId that is not an email.
    let a = s.grant(&user, "00000000-0000-4000-8000-000000000000").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = s.grant("not-an-email", ADMINISTRATOR_ROLE_ID).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // The new grant is found by a query on its user and role.
    let q = s
        .query(
            "AccountUserRole",
            Some(json!({ "operator": "and", "nestedExpression": [
                Sim::expr("userId", "EQUALS", &[&user]),
                Sim::expr("roleId", "EQUALS", &[SUPPORT_ROLE_ID]),
            ]})),
        )
        .await;
    assert_eq!(ids(q.body["result"].as_array().map(Vec::as_slice).unwrap_or_default()), vec![id.clone()]);

    // Delete: 200 with an empty body; again: 404.
    let d = s.delete(&format!("AccountUserRole/{id}")).await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(d.text.is_empty());
    let d = s.delete(&format!("AccountUserRole/{id}")).await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
    assert_eq!(d.body["@type"], "Error");
    assert_eq!(s.stat("users_removed"), 0, "the user still holds other roles");
    assert_eq!(s.op_count("AccountUserRole.create"), 6);
    assert_eq!(s.op_count("AccountUserRole.delete"), 2);
}

#[tokio::test]
async fn conceptual_ids_are_base64_of_role_user_account() {
    let s = sim(3).await;
    let a = s.grant("someone.new@example.org", STANDARD_USER_ROLE_ID).await;
    assert_eq!(a.status, StatusCode::OK);
    let id = a.body["id"].as_str().unwrap_or_default();
    let expected = format!("{STANDARD_USER_ROLE_ID}|someone.new@example.org|{}", s.account);
    assert_eq!(id, b64url(expected.as_bytes()));
}

/// Unpadded URL-safe base64, written out so the test does not share the simulator's encoder.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn account_groups_get_and_query() {
    let s = sim(10).await;
    let (groups, _) = s.query_all("AccountGroup", None).await;
    assert_eq!(groups.len(), 3);
    for g in &groups {
        assert_eq!(g["@type"], "AccountGroup");
        assert_eq!(g["accountId"], s.account.as_str());
        assert_eq!(g["Resources"]["@type"], "Resources");
        assert!(g["autoSubscribeAlertLevel"].is_string());
    }
    assert_eq!(groups.iter().filter(|g| g["defaultGroup"] == true).count(), 1);
    let all_accounts = groups.iter().find(|g| g["name"] == "All Accounts").cloned().unwrap_or_default();
    let id = all_accounts["id"].as_str().unwrap_or_default();
    let a = s.get(&format!("AccountGroup/{id}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, all_accounts);
    let a = s.get("AccountGroup/nope").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(s.op_count("AccountGroup.get"), 2);
    assert_eq!(s.op_count("AccountGroup.query"), 1);
}

#[tokio::test]
async fn account_group_user_roles_create_query_delete() {
    let s = sim(10).await;
    let (grants, _) = s.query_all("AccountGroupUserRole", None).await;
    assert!(grants.len() >= 6, "three groups with two or more grants each");
    for g in &grants {
        assert_eq!(g["@type"], "AccountGroupUserRole");
        assert!(g["accountGroupId"].is_string() && g["userId"].is_string() && g["roleId"].is_string());
        assert!(g.get("accountId").is_none());
    }
    // Some user holds two roles in the same group.
    let two = grants.iter().any(|a| {
        grants
            .iter()
            .any(|b| a["id"] != b["id"] && a["userId"] == b["userId"] && a["accountGroupId"] == b["accountGroupId"])
    });
    assert!(two);

    let (groups, _) = s.query_all("AccountGroup", None).await;
    let group = groups[2]["id"].as_str().unwrap_or_default().to_string();
    let user = s.handle.state()["users"][0]["userId"].as_str().unwrap_or_default().to_string();
    let body = json!({ "accountGroupId": group, "userId": user, "roleId": SUPPORT_ROLE_ID, "notifyUser": false });
    // Make sure the grant does not exist yet.
    let existing = grants.iter().find(|g| {
        g["accountGroupId"] == group.as_str() && g["userId"] == user.as_str() && g["roleId"] == SUPPORT_ROLE_ID
    });
    if let Some(g) = existing {
        let d = s.delete(&format!("AccountGroupUserRole/{}", g["id"].as_str().unwrap_or_default())).await;
        assert_eq!(d.status, StatusCode::OK);
    }
    let a = s.post("AccountGroupUserRole", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["@type"], "AccountGroupUserRole");
    assert_eq!(a.body["accountGroupId"], group.as_str());
    let id = a.body["id"].as_str().unwrap_or_default().to_string();
    let again = s.post("AccountGroupUserRole", body).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body["message"].as_str().unwrap_or_default().contains("already exists"));

    let q = s.query("AccountGroupUserRole", Some(Sim::expr("accountGroupId", "EQUALS", &[&group]))).await;
    let found = q.body["result"].as_array().cloned().unwrap_or_default();
    assert!(found.iter().any(|g| g["id"] == id.as_str()));
    assert!(found.iter().all(|g| g["accountGroupId"] == group.as_str()));

    let bad_group = s
        .post("AccountGroupUserRole", json!({ "accountGroupId": "nope", "userId": user, "roleId": SUPPORT_ROLE_ID }))
        .await;
    assert_eq!(bad_group.status, StatusCode::BAD_REQUEST);

    let d = s.delete(&format!("AccountGroupUserRole/{id}")).await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(d.text.is_empty());
    let d = s.delete(&format!("AccountGroupUserRole/{id}")).await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
    assert!(s.op_count("AccountGroupUserRole.create") >= 3);
    assert!(s.op_count("AccountGroupUserRole.delete") >= 2);
}

#[tokio::test]
async fn sim_endpoints_and_state() {
    let s = sim(4).await;
    let stats: Value = s
        .http
        .get(format!("{}/__sim/stats", s.handle.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    for key in ["requests", "by_operation", "throttled", "faults", "invitations", "users_removed", "users"] {
        assert!(stats.get(key).is_some(), "{key}");
    }
    assert_eq!(stats["users"], 4);
    assert_eq!(stats["requests"], 0, "the sim endpoints are not counted");
    let state: Value = s
        .http
        .get(format!("{}/__sim/state", s.handle.base_url()))
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state, s.handle.state());
    assert_eq!(state["users"].as_array().map(Vec::len), Some(4));
}
