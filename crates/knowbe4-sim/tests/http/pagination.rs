//! GraphQL pagination edges: `per` bounds (1..=1000), partial last page, pages past the end.

use serde_json::json;

use crate::support::*;

const USERS: &str = "query($page: Int, $per: Int) { users(page: $page, per: $per, status: ALL) { nodes { id } pagination { page pages per totalCount } } }";

#[tokio::test]
async fn per_bounds() {
    let sim = Sim::start(knowbe4_sim::SimConfig { seed_users: 60, ..config() }).await;
    for per in [1001, 0, -5] {
        let body = sim.gql_as(TOKEN, USERS, json!({ "page": 1, "per": per })).await;
        assert_eq!(body["data"], json!(null), "per {per}");
        assert!(error_message(&body).contains("per must be between 1 and 1000"), "{body}");
        assert_eq!(body["errors"][0]["path"], json!(["users"]));
    }
    let page0 = sim.gql_as(TOKEN, USERS, json!({ "page": 0, "per": 25 })).await;
    assert!(page0["errors"].is_array());
    let min = sim.gql(USERS, json!({ "page": 1, "per": 25 })).await;
    assert_eq!(min["users"]["nodes"].as_array().unwrap().len(), 25);
    // The connection check a public client (Netskope's plugin) sends to the real service.
    let check = sim.gql("{ users(per: 1, page: 1) { nodes { id } pagination { totalCount } } }", json!({})).await;
    assert_eq!(check["users"]["nodes"].as_array().unwrap().len(), 1, "{check}");
    let active = check["users"]["pagination"]["totalCount"].as_i64().unwrap();
    assert!(active >= 1, "{check}");
    let small = sim.gql(USERS, json!({ "page": 2, "per": 24 })).await;
    assert_eq!(small["users"]["pagination"], json!({ "page": 2, "pages": 3, "per": 24, "totalCount": 60 }));
    let max = sim.gql(USERS, json!({ "page": 1, "per": 1000 })).await;
    assert_eq!(max["users"]["nodes"].as_array().unwrap().len(), 60);
    assert_eq!(max["users"]["pagination"], json!({ "page": 1, "pages": 1, "per": 1000, "totalCount": 60 }));
    let default = sim.gql("{ users(status: ALL) { pagination { per } } }", json!({})).await;
    assert_eq!(default["users"]["pagination"]["per"], json!(25));
}

#[tokio::test]
async fn pages_partial_last_and_past_the_end() {
    let sim = Sim::start(knowbe4_sim::SimConfig { seed_users: 60, ..config() }).await;
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let data = sim.gql(USERS, json!({ "page": page, "per": 25 })).await;
        let p = &data["users"]["pagination"];
        assert_eq!(p["pages"], json!(3));
        assert_eq!(p["totalCount"], json!(60));
        assert_eq!(p["page"], json!(page));
        let nodes = data["users"]["nodes"].as_array().unwrap();
        seen.extend(nodes.iter().map(|n| n["id"].as_i64().unwrap()));
        if page == 3 {
            assert_eq!(nodes.len(), 10, "the last page is partial");
        }
        if page >= p["pages"].as_i64().unwrap() {
            break;
        }
        page += 1;
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 60, "every user once");
    let past = sim.gql(USERS, json!({ "page": 4, "per": 25 })).await;
    assert_eq!(past["users"]["nodes"], json!([]));
    assert_eq!(past["users"]["pagination"]["totalCount"], json!(60));
    let empty = sim
        .gql("{ users(search: \"zzzz-nobody\") { nodes { id } pagination { page pages totalCount } } }", json!({}))
        .await;
    assert_eq!(empty["users"]["pagination"], json!({ "page": 1, "pages": 0, "totalCount": 0 }));
}
