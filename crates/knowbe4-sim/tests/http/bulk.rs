//! Bulk membership calls over the configured size answer 504, count as requests, and change
//! nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

const ADD: &str = "mutation($u: [Int!]!, $g: [Int!]!) { userAddToGroups(userIds: $u, groupIds: $g) { node { id } errors { reason } } }";
const REMOVE: &str = "mutation($u: [Int!]!, $g: Int!) { userDeleteMemberships(userIds: $u, groupId: $g) { node { id } errors { reason } } }";

async fn members(sim: &Sim, group: i64) -> i64 {
    let data = sim.gql("query($id: Int!) { group(id: $id) { memberCount } }", json!({ "id": group })).await;
    data["group"]["memberCount"].as_i64().unwrap()
}

#[tokio::test]
async fn more_than_95_ids_time_out_without_change() {
    let sim = Sim::start(knowbe4_sim::SimConfig { seed_users: 150, ..config() }).await;
    let created = sim.gql("mutation { groupCreate(attributes: { name: \"Bulk\" }) { node { id } } }", json!({})).await;
    let group = created["groupCreate"]["node"]["id"].as_i64().unwrap();
    let active = user_ids(&sim, "ACTIVE").await;
    assert!(active.len() >= 96);

    let resp = sim.post(Some(TOKEN), ADD, json!({ "u": active[..96], "g": [group] })).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(members(&sim, group).await, 0, "a 504 changes nothing");

    let literal = format!(
        "mutation {{ userAddToGroups(userIds: [{}], groupIds: [{group}]) {{ errors {{ reason }} }} }}",
        active[..100].iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    );
    let resp = sim.post(Some(TOKEN), &literal, json!({})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT, "literal lists count too");
    assert_eq!(members(&sim, group).await, 0);

    let ok = sim.gql(ADD, json!({ "u": active[..95], "g": [group] })).await;
    assert_eq!(ok["userAddToGroups"]["errors"], json!([]));
    assert_eq!(members(&sim, group).await, 95, "95 ids complete");

    let resp = sim.post(Some(TOKEN), REMOVE, json!({ "u": active[..96], "g": group })).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(members(&sim, group).await, 95);

    let stats = sim.stats().await;
    assert_eq!(stats["gateway_timeouts"], json!(3));
    assert_eq!(stats["by_operation"]["userAddToGroups"], json!(3), "a 504 still counts as a request");
    assert_eq!(stats["by_operation"]["userDeleteMemberships"], json!(1));
}

#[tokio::test]
async fn bulk_size_is_configurable() {
    let sim = Sim::start(knowbe4_sim::SimConfig { bulk_timeout_size: 2, ..config() }).await;
    let group = group_of_type(&sim, "CONSOLE").await;
    let active = user_ids(&sim, "ACTIVE").await;
    let resp = sim.post(Some(TOKEN), REMOVE, json!({ "u": active[..3], "g": group })).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    let resp = sim.post(Some(TOKEN), REMOVE, json!({ "u": active[..2], "g": group })).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
