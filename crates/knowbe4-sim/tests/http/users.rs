//! User queries and mutations: user, userByEmail, users, userCreate, userEdit, userArchive,
//! userUnarchive, and their business rules.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn users_lists_active_by_default_and_filters_by_status() {
    let sim = Sim::default().await;
    let active = user_ids(&sim, "ACTIVE").await;
    let archived = user_ids(&sim, "ARCHIVED").await;
    let all = user_ids(&sim, "ALL").await;
    assert_eq!(active.len() + archived.len(), 50);
    assert_eq!(all.len(), 50);
    assert!(!archived.is_empty(), "the seed archives some users");
    let data = sim.gql("{ users(per: 1000) { nodes { id archived } pagination { totalCount } } }", json!({})).await;
    assert_eq!(data["users"]["pagination"]["totalCount"], json!(active.len()));
    assert!(data["users"]["nodes"].as_array().unwrap().iter().all(|u| u["archived"] == json!(false)));
}

#[tokio::test]
async fn seeded_emails_follow_the_pattern_and_are_deterministic() {
    let a = Sim::default().await;
    let b = Sim::default().await;
    let q = "{ users(per: 1000, status: ALL) { nodes { id email firstName lastName archived riskScore } } }";
    let da = a.gql(q, json!({})).await;
    let db = b.gql(q, json!({})).await;
    assert_eq!(da, db, "same seed, same data");
    for (i, u) in da["users"]["nodes"].as_array().unwrap().iter().enumerate() {
        let email = u["email"].as_str().unwrap();
        let first = u["firstName"].as_str().unwrap().to_lowercase();
        let last = u["lastName"].as_str().unwrap().to_lowercase();
        assert_eq!(email, format!("{first}.{last}{}@example.com", i + 1));
    }
    let other = Sim::start(knowbe4_sim::SimConfig { seed: 99, ..config() }).await;
    assert_ne!(other.gql(q, json!({})).await, da, "another seed, other data");
}

#[tokio::test]
async fn user_and_user_by_email() {
    let sim = Sim::default().await;
    let id = user_ids(&sim, "ACTIVE").await[0];
    let data = sim
        .gql(
            "query($id: Int!) { user(id: $id) { id email displayName archived archivable admin groupIds groups { id name } role } }",
            json!({ "id": id }),
        )
        .await;
    let user = &data["user"];
    assert_eq!(user["id"], json!(id));
    assert_eq!(user["admin"], json!(true), "the first seeded user is the admin");
    assert_eq!(user["archivable"], json!(false));
    let email = user["email"].as_str().unwrap().to_uppercase();
    let by_email = sim.gql("query($e: String!) { userByEmail(email: $e) { id } }", json!({ "e": email })).await;
    assert_eq!(by_email["userByEmail"]["id"], json!(id), "email lookup ignores case");
    let missing = sim.gql("{ user(id: 1) { id } userByEmail(email: \"nobody@example.com\") { id } }", json!({})).await;
    assert_eq!(missing["user"], json!(null));
    assert_eq!(missing["userByEmail"], json!(null));
}

const CREATE: &str = "mutation($email: String!, $first: String, $last: String, $title: String) {
  userCreate(email: $email, firstName: $first, lastName: $last, jobTitle: $title) {
    node { id email firstName lastName jobTitle archived groupIds }
    errors { field placeholders reason recordId }
  }
}";

#[tokio::test]
async fn user_create_and_its_rules() {
    let sim = Sim::default().await;
    let data = sim
        .gql(CREATE, json!({ "email": "new.person@example.com", "first": "New", "last": "Person", "title": "Tester" }))
        .await;
    let payload = &data["userCreate"];
    assert_eq!(payload["errors"], json!([]));
    assert_eq!(payload["node"]["email"], json!("new.person@example.com"));
    assert_eq!(payload["node"]["jobTitle"], json!("Tester"));
    assert_eq!(payload["node"]["archived"], json!(false));
    let new_id = payload["node"]["id"].as_i64().unwrap();

    let dup = sim.gql(CREATE, json!({ "email": "NEW.PERSON@example.com", "first": "X" })).await;
    assert_eq!(reasons(&dup["userCreate"]), vec!["taken"]);
    assert_eq!(dup["userCreate"]["errors"][0]["field"], json!("email"));
    assert_eq!(dup["userCreate"]["errors"][0]["recordId"], json!(new_id));
    assert_eq!(dup["userCreate"]["node"], json!(null));

    let bad = sim.gql(CREATE, json!({ "email": "not-an-email" })).await;
    assert_eq!(reasons(&bad["userCreate"]), vec!["invalid"]);
    let long = sim.gql(CREATE, json!({ "email": "long@example.com", "first": "x".repeat(256) })).await;
    assert_eq!(reasons(&long["userCreate"]), vec!["too_long"]);
    assert_eq!(user_ids(&sim, "ALL").await.len(), 51, "only the valid create added a user");
}

#[tokio::test]
async fn user_create_literal_query_as_make_sends_it() {
    let sim = Sim::default().await;
    let query = r#"mutation { userCreate(email: "lit@example.com", firstName: "Lit", lastName: "Eral" jobTitle: "QA") { errors { placeholders reason recordId }node { admin archived archivedAt currentPpp department division email groupIds groupNamesConcat id jobTitle firstName lastName managerEmail managerName organization outOfOfficeEnd outOfOfficeStart riskScore role employeeNumber }}}"#;
    let data = sim.gql(query, json!({})).await;
    assert_eq!(data["userCreate"]["node"]["role"], json!("USER"));
}

const EDIT: &str = "mutation($id: Int!, $a: UserAttributes!) {
  userEdit(userId: $id, attributes: $a) {
    node { id firstName customField1 employeeStartDate role }
    errors { field placeholders reason recordId }
  }
}";

#[tokio::test]
async fn user_edit_and_field_limits() {
    let sim = Sim::default().await;
    let id = user_ids(&sim, "ACTIVE").await[1];
    let ok = sim
        .gql(EDIT, json!({ "id": id, "a": { "firstName": "Renamed", "customField1": "x".repeat(255), "employeeStartDate": "2024-02-29" } }))
        .await;
    assert_eq!(ok["userEdit"]["errors"], json!([]));
    assert_eq!(ok["userEdit"]["node"]["firstName"], json!("Renamed"));
    assert_eq!(ok["userEdit"]["node"]["employeeStartDate"], json!("2024-02-29"));

    let long = sim.gql(EDIT, json!({ "id": id, "a": { "customField1": "y".repeat(256) } })).await;
    assert_eq!(reasons(&long["userEdit"]), vec!["too_long"]);
    assert_eq!(long["userEdit"]["errors"][0]["field"], json!("customField1"));
    assert_eq!(long["userEdit"]["errors"][0]["placeholders"], json!({ "count": 255 }));
    let after = sim.gql("query($id: Int!) { user(id: $id) { customField1 } }", json!({ "id": id })).await;
    assert_eq!(after["user"]["customField1"].as_str().unwrap().len(), 255, "a refused edit changes nothing");

    let missing = sim.gql(EDIT, json!({ "id": 1, "a": { "firstName": "Ghost" } })).await;
    assert_eq!(reasons(&missing["userEdit"]), vec!["not_found"]);
    assert_eq!(missing["userEdit"]["errors"][0]["recordId"], json!(1));

    let bad_date = sim.gql_as(TOKEN, EDIT, json!({ "id": id, "a": { "employeeStartDate": "29/02/2024" } })).await;
    assert!(bad_date["errors"].is_array(), "a malformed ISO8601Date is a GraphQL error: {bad_date}");
}

const ARCHIVE: &str = "mutation($ids: [Int!]!) { userArchive(userIds: $ids) { node { id archived archivedAt archivable } errors { field reason recordId } } }";
const UNARCHIVE: &str = "mutation($ids: [Int!]!) { userUnarchive(userIds: $ids) { node { id archived archivedAt } errors { field reason recordId } } }";

#[tokio::test]
async fn user_archive_and_unarchive() {
    let sim = Sim::default().await;
    let active = user_ids(&sim, "ACTIVE").await;
    let (admin, a, b) = (active[0], active[1], active[2]);
    let data = sim.gql(ARCHIVE, json!({ "ids": [a, b] })).await;
    let nodes = data["userArchive"]["node"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n["archived"] == json!(true) && n["archivedAt"].is_string()));
    let archived = user_ids(&sim, "ARCHIVED").await;
    assert!(archived.contains(&a) && archived.contains(&b));

    let refused = sim.gql(ARCHIVE, json!({ "ids": [active[3], admin] })).await;
    assert_eq!(reasons(&refused["userArchive"]), vec!["not_archivable"]);
    assert!(user_ids(&sim, "ACTIVE").await.contains(&active[3]), "a refused archive changes nothing");
    let unknown = sim.gql(ARCHIVE, json!({ "ids": [7] })).await;
    assert_eq!(reasons(&unknown["userArchive"]), vec!["not_found"]);

    let back = sim.gql(UNARCHIVE, json!({ "ids": [a] })).await;
    assert_eq!(back["userUnarchive"]["node"][0]["archived"], json!(false));
    assert_eq!(back["userUnarchive"]["node"][0]["archivedAt"], json!(null));
    assert!(user_ids(&sim, "ACTIVE").await.contains(&a));
    let unknown = sim.gql(UNARCHIVE, json!({ "ids": [7] })).await;
    assert_eq!(reasons(&unknown["userUnarchive"]), vec!["not_found"]);
}

#[tokio::test]
async fn users_filters_group_search_and_type() {
    let sim = Sim::default().await;
    let group = group_of_type(&sim, "CONSOLE").await;
    let data = sim
        .gql(
            "query($g: Int!) { users(per: 1000, group: $g) { nodes { id groupIds } } admins: users(type: ADMIN) { nodes { admin } } }",
            json!({ "g": group }),
        )
        .await;
    let members = data["users"]["nodes"].as_array().unwrap();
    assert!(!members.is_empty());
    assert!(members.iter().all(|u| u["groupIds"].as_array().unwrap().contains(&json!(group))));
    assert_eq!(data["admins"]["nodes"], json!([{ "admin": true }]));
    let first = sim.gql("{ users(per: 25) { nodes { email } } }", json!({})).await;
    let email = first["users"]["nodes"][0]["email"].as_str().unwrap().to_string();
    let search = sim
        .gql("query($s: String) { users(search: $s) { nodes { email } } }", json!({ "s": email.to_uppercase() }))
        .await;
    assert_eq!(search["users"]["nodes"][0]["email"], json!(email));
}
