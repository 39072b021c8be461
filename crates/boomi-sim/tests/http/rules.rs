//! Boomi's rules: invitations, removal with the last role, group roles need a login, non-primary
//! accounts, the non-UUID role, and the shape of the seed data.

use boomi_sim::{ADMINISTRATOR_ROLE_ID, NON_UUID_ROLE_ID, STANDARD_USER_ROLE_ID, SUPPORT_ROLE_ID, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Sim, sim, sim_with};

fn user<'a>(state: &'a Value, user_id: &str) -> Option<&'a Value> {
    state["users"].as_array()?.iter().find(|u| u["userId"] == user_id)
}

#[tokio::test]
async fn unknown_user_is_created_and_invited() {
    let s = sim(5).await;
    assert_eq!(s.stat("users"), 5);
    let a = s.grant("New.Person@Example.org", STANDARD_USER_ROLE_ID).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["firstName"], "New");
    assert_eq!(s.stat("invitations"), 1);
    assert_eq!(s.stat("users"), 6);
    let state = s.handle.state();
    let u = user(&state, "New.Person@Example.org").cloned().unwrap_or_default();
    assert_eq!(u["loggedIn"], false);
    assert_eq!(u["invited"], true);
    // A second role for the same user (any case of the email) is no new invitation.
    let a = s.grant("new.person@example.org", SUPPORT_ROLE_ID).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["userId"], "New.Person@Example.org");
    assert_eq!(s.stat("invitations"), 1);
    assert_eq!(s.stat("users"), 6);
}

#[tokio::test]
async fn deleting_the_last_role_removes_the_user() {
    let s = sim(12).await;
    let state = s.handle.state();
    // A seeded user with exactly one global role and at least one group role, if any; else one role.
    let users = state["users"].as_array().cloned().unwrap_or_default();
    let single = users
        .iter()
        .filter(|u| u["globalRoles"].as_array().map(Vec::len) == Some(1))
        .max_by_key(|u| u["groupRoles"].as_array().map_or(0, Vec::len))
        .cloned()
        .unwrap_or_default();
    let user_id = single["userId"].as_str().unwrap_or_default().to_string();
    let grant_id = single["globalRoles"][0]["id"].as_str().unwrap_or_default().to_string();
    // Give them a second role, delete the first: the user stays.
    let a = s.grant(&user_id, STANDARD_USER_ROLE_ID).await;
    let second = if a.status == StatusCode::OK {
        a.body["id"].as_str().unwrap_or_default().to_string()
    } else {
        s.grant(&user_id, ADMINISTRATOR_ROLE_ID).await.body["id"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(s.delete(&format!("AccountUserRole/{grant_id}")).await.status, StatusCode::OK);
    assert_eq!(s.stat("users_removed"), 0);
    assert!(user(&s.handle.state(), &user_id).is_some());
    // Delete the last one: the user is gone from the account, group roles included.
    assert_eq!(s.delete(&format!("AccountUserRole/{second}")).await.status, StatusCode::OK);
    assert_eq!(s.stat("users_removed"), 1);
    assert_eq!(s.stat("users"), 11);
    assert!(user(&s.handle.state(), &user_id).is_none());
    let left = s.query("AccountUserRole", Some(Sim::expr("userId", "EQUALS", &[&user_id]))).await;
    assert_eq!(left.body["numberOfResults"], 0);
    let groups = s.query("AccountGroupUserRole", Some(Sim::expr("userId", "EQUALS", &[&user_id]))).await;
    assert_eq!(groups.body["numberOfResults"], 0);
    // Their group roles cannot be recreated: they are no longer a user of the account.
    let (all_groups, _) = s.query_all("AccountGroup", None).await;
    let a = s
        .post(
            "AccountGroupUserRole",
            json!({ "accountGroupId": all_groups[0]["id"], "userId": user_id, "roleId": SUPPORT_ROLE_ID }),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn group_role_needs_a_user_who_has_logged_in() {
    let s = sim(3).await;
    let (groups, _) = s.query_all("AccountGroup", None).await;
    let group = groups[1]["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(s.grant("fresh@example.net", STANDARD_USER_ROLE_ID).await.status, StatusCode::OK);
    let body = json!({ "accountGroupId": group, "userId": "fresh@example.net", "roleId": SUPPORT_ROLE_ID });
    let a = s.post("AccountGroupUserRole", body.clone()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["@type"], "Error");
    assert!(a.body["message"].as_str().unwrap_or_default().contains("logged in"), "{}", a.text);
    // After their first login it works.
    let login = s
        .http
        .post(format!("{}/__sim/users/fresh@example.net/login", s.handle.base_url()))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    let a = s.post("AccountGroupUserRole", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(s.handle.mark_logged_in("FRESH@example.net"));
    assert!(!s.handle.mark_logged_in("nobody@example.net"));
}

#[tokio::test]
async fn non_primary_account_has_no_groups() {
    let s = sim_with(SimConfig { primary: false, seed_users: 6, rate_per_second: None, ..SimConfig::default() }).await;
    for object in ["AccountGroup", "AccountGroupUserRole"] {
        let a = s.query(object, None).await;
        assert_eq!(a.status, StatusCode::OK, "{object}: not an error");
        assert_eq!(a.body["numberOfResults"], 0);
        assert_eq!(a.body["result"], json!([]));
    }
    let user_id = s.handle.state()["users"][0]["userId"].as_str().unwrap_or_default().to_string();
    let a = s
        .post("AccountGroupUserRole", json!({ "accountGroupId": "any", "userId": user_id, "roleId": SUPPORT_ROLE_ID }))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["message"].as_str().unwrap_or_default().contains("primary"));
    assert_eq!(s.get("AccountGroup/any").await.status, StatusCode::NOT_FOUND);
    assert!(s.handle.state()["users"].as_array().is_some_and(|u| u.iter().all(|u| u["groupRoles"] == json!([]))));
}

#[tokio::test]
async fn the_non_uuid_role_exists_and_cannot_be_assigned() {
    let s = sim(30).await;
    let a = s.get(&format!("Role/{NON_UUID_ROLE_ID}")).await;
    assert_eq!(a.status, StatusCode::OK);
    let id = a.body["id"].as_str().unwrap_or_default();
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_ne!(groups, vec![8, 4, 4, 4, 12], "not a standard UUID: {id}");
    let a = s.grant("someone@example.com", NON_UUID_ROLE_ID).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["message"].as_str().unwrap_or_default().contains("cannot be assigned"));
    assert_eq!(s.stat("invitations"), 0, "a refused grant invites nobody");
    // Other roles are standard UUIDs.
    let (roles, _) = s.query_all("Role", None).await;
    let standard = roles
        .iter()
        .filter(|r| {
            r["id"].as_str().is_some_and(|i| i.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12])
        })
        .count();
    assert_eq!(standard, roles.len() - 1);
}

#[tokio::test]
async fn seed_data_shape() {
    let s = sim(30).await;
    let state = s.handle.state();
    let users = state["users"].as_array().cloned().unwrap_or_default();
    assert_eq!(users.len(), 30);
    let mut single_non_standard = 0;
    for u in &users {
        assert_eq!(u["loggedIn"], true);
        let roles = u["globalRoles"].as_array().cloned().unwrap_or_default();
        assert!((1..=3).contains(&roles.len()), "{u}");
        if roles.len() == 1 && roles[0]["roleId"] != STANDARD_USER_ROLE_ID {
            single_non_standard += 1;
        }
    }
    assert!((8..=12).contains(&single_non_standard), "about a third: {single_non_standard}");
    assert!(users.iter().any(|u| u["globalRoles"].as_array().map(Vec::len) == Some(3)));
    assert!(
        users
            .iter()
            .any(|u| u["globalRoles"].as_array().is_some_and(|r| r.iter().any(|r| r["roleId"] == NON_UUID_ROLE_ID)))
    );
    assert_eq!(state["accountGroups"].as_array().map(Vec::len), Some(3));
    assert!(users.iter().any(|u| u["groupRoles"].as_array().is_some_and(|g| !g.is_empty())));
    // The same seed gives the same data; another seed, other data.
    let again = sim(30).await;
    assert_eq!(again.handle.state(), state);
    let other = sim_with(SimConfig { seed: 2, seed_users: 30, rate_per_second: None, ..SimConfig::default() }).await;
    assert_ne!(other.handle.state(), state);
}
