//! Training: trainingCampaign(s), enrollment(s), storePurchases, and the campaign mutations
//! (create, edit, close, delete, add user, remove user).

use serde_json::{Value, json};

use crate::support::*;

async fn course(sim: &Sim) -> String {
    let data = sim
        .gql(
            "{ storePurchases(per: 100) { nodes { id name enrollmentCount purchasedCourse { polymorphicId title } } pagination { totalCount } } }",
            json!({}),
        )
        .await;
    assert!(data["storePurchases"]["pagination"]["totalCount"].as_i64().unwrap() >= 1);
    data["storePurchases"]["nodes"][0]["purchasedCourse"]["polymorphicId"].as_str().unwrap().to_string()
}

const CREATE: &str = "mutation TrainingCampaignCreate($attributes: TrainingCampaignAttributes!, $endCampaignOption: TrainingCampaignEnd!) {
  trainingCampaignCreate(attributes: $attributes, endCampaignOption: $endCampaignOption) {
    node { id name status active autoEnroll startsAt endsAt endCampaignOption totalUsers groups { id } notifications { id messageType enabled } }
    errors { field placeholders reason recordId }
  }
}";

fn attributes(content: &str, group: i64) -> Value {
    json!({
        "name": "Onboarding",
        "startCampaignAtDate": "2025-01-02",
        "startCampaignAtTime": "09:00",
        "endCampaignAtDate": "2031-01-01",
        "endCampaignAtTime": "17:00",
        "autoEnroll": true,
        "timeZone": "EASTERN_TIME_US_CANADA",
        "allowPastDueCompletions": true,
        "allowSurveys": false,
        "allowSurveyComments": false,
        "allUsers": false,
        "selectedContent": [content],
        "selectedGroups": [group],
        "notifications": [{ "messageType": "WELCOME", "enabled": true, "offsetNumDays": 0 }],
    })
}

async fn create(sim: &Sim) -> (i64, i64) {
    let content = course(sim).await;
    let group = group_of_type(sim, "CONSOLE").await;
    let data = sim
        .gql(CREATE, json!({ "attributes": attributes(&content, group), "endCampaignOption": "SPECIFY_DATE" }))
        .await;
    let payload = &data["trainingCampaignCreate"];
    assert_eq!(payload["errors"], json!([]), "{payload}");
    (payload["node"]["id"].as_i64().unwrap(), group)
}

#[tokio::test]
async fn create_enrolls_the_active_members_of_its_groups() {
    let sim = Sim::default().await;
    let (id, group) = create(&sim).await;
    let members = sim
        .gql("query($g: Int!) { users(per: 1000, group: $g) { nodes { id } } }", json!({ "g": group }))
        .await["users"]["nodes"]
        .as_array()
        .unwrap()
        .len();
    let data = sim
        .gql(
            "query($id: Int!) { trainingCampaign(id: $id) { id name status active totalUsers percentComplete endCampaignOption timeZone groups { id } } enrollments(per: 1000, trainingCampaignId: $id) { nodes { id status trainingCampaign { id } user { id } enrollmentItem { ... on PurchasedCourse { title } ... on Policy { title } ... on KnowledgeRefresher { title } } } pagination { totalCount } } }",
            json!({ "id": id }),
        )
        .await;
    let c = &data["trainingCampaign"];
    assert_eq!(c["status"], json!("IN_PROGRESS"), "a campaign whose start has passed is running");
    assert_eq!(c["timeZone"], json!("EASTERN_TIME_US_CANADA"));
    assert_eq!(c["groups"], json!([{ "id": group }]));
    assert_eq!(c["totalUsers"], json!(members));
    assert_eq!(data["enrollments"]["pagination"]["totalCount"], json!(members));
    let first = &data["enrollments"]["nodes"][0];
    assert_eq!(first["trainingCampaign"]["id"], json!(id));
    assert!(first["enrollmentItem"]["title"].is_string());
    let enrollment_id = first["id"].as_i64().unwrap();
    let one = sim
        .gql("query($id: Int!) { enrollment(id: $id) { id status user { email } } }", json!({ "id": enrollment_id }))
        .await;
    assert_eq!(one["enrollment"]["id"], json!(enrollment_id));
}

#[tokio::test]
async fn create_rules() {
    let sim = Sim::default().await;
    let content = course(&sim).await;
    let group = group_of_type(&sim, "CONSOLE").await;
    let mut no_end = attributes(&content, group);
    no_end["endCampaignAtDate"] = Value::Null;
    let data = sim.gql(CREATE, json!({ "attributes": no_end, "endCampaignOption": "SPECIFY_DATE" })).await;
    assert_eq!(reasons(&data["trainingCampaignCreate"]), vec!["blank"]);
    assert_eq!(data["trainingCampaignCreate"]["errors"][0]["field"], json!("endCampaignAtDate"));
    let mut unknown = attributes("PurchasedCourse:1", 9);
    unknown["name"] = json!("");
    let data = sim.gql(CREATE, json!({ "attributes": unknown, "endCampaignOption": "NO_END_DATE" })).await;
    assert_eq!(reasons(&data["trainingCampaignCreate"]), vec!["blank", "not_found", "not_found"]);
    let bad_enum = sim
        .gql_as(TOKEN, CREATE, json!({ "attributes": attributes(&content, group), "endCampaignOption": "SOMEDAY" }))
        .await;
    assert!(bad_enum["errors"].is_array(), "an unknown enum value is a GraphQL error");
    let count = sim.gql("{ trainingCampaigns { pagination { totalCount } } }", json!({})).await;
    assert_eq!(count["trainingCampaigns"]["pagination"]["totalCount"], json!(3), "nothing was created");
}

#[tokio::test]
async fn list_filters() {
    let sim = Sim::default().await;
    let all = sim.gql("{ trainingCampaigns(per: 100) { nodes { id status active } } }", json!({})).await;
    let nodes = all["trainingCampaigns"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let active = sim.gql("{ trainingCampaigns(filter: ACTIVE) { nodes { active } } }", json!({})).await;
    assert!(active["trainingCampaigns"]["nodes"].as_array().unwrap().iter().all(|c| c["active"] == json!(true)));
    let q = "query($s: [TrainingCampaignStatuses!]) { trainingCampaigns(statuses: $s) { nodes { status } } }";
    let running = sim.gql(q, json!({ "s": ["IN_PROGRESS"] })).await;
    let running = running["trainingCampaigns"]["nodes"].as_array().unwrap();
    assert!(!running.is_empty() && running.iter().all(|c| c["status"] == json!("IN_PROGRESS")));
    let with_users = sim
        .gql("{ trainingCampaign(id: 301) { id userEnrollments { id } } enrollments(status: PASSED) { nodes { status } } }", json!({}))
        .await;
    assert!(with_users["trainingCampaign"]["userEnrollments"].as_array().is_some());
    assert!(with_users["enrollments"]["nodes"].as_array().unwrap().iter().all(|e| e["status"] == json!("Passed")));
}

#[tokio::test]
async fn edit_add_remove_close_delete() {
    let sim = Sim::default().await;
    let (id, group) = create(&sim).await;
    let edit = sim
        .gql(
            "mutation($id: Int!, $a: TrainingCampaignAttributes!) { trainingCampaignEdit(id: $id, attributes: $a, endCampaignOption: NO_END_DATE) { node { id name endsAt endCampaignOption } errors { reason } } }",
            json!({ "id": id, "a": { "name": "Onboarding v2" } }),
        )
        .await;
    assert_eq!(edit["trainingCampaignEdit"]["node"]["name"], json!("Onboarding v2"));
    assert_eq!(edit["trainingCampaignEdit"]["node"]["endsAt"], json!(null));
    let missing = sim
        .gql("mutation { trainingCampaignEdit(id: 1, attributes: { name: \"x\" }) { errors { reason } } }", json!({}))
        .await;
    assert_eq!(reasons(&missing["trainingCampaignEdit"]), vec!["not_found"]);

    // A user outside the group.
    let outsider = {
        let all = user_ids(&sim, "ACTIVE").await;
        let mut found = None;
        for u in all {
            if !group_ids_of(&sim, u).await.contains(&group) {
                found = Some(u);
                break;
            }
        }
        found.expect("a user outside the group")
    };
    const ADD: &str = "mutation($c: Int!, $u: Int!) { trainingCampaignAddUser(trainingCampaignId: $c, userId: $u) { node errors { field reason recordId } } }";
    const REMOVE: &str = "mutation($c: Int!, $u: Int!) { trainingCampaignRemoveUser(trainingCampaignId: $c, userId: $u) { removed node errors { reason } } }";
    let total = |d: &Value| d["trainingCampaign"]["totalUsers"].as_i64().unwrap();
    let tq = "query($id: Int!) { trainingCampaign(id: $id) { totalUsers status active } }";
    let before = total(&sim.gql(tq, json!({ "id": id })).await);
    let added = sim.gql(ADD, json!({ "c": id, "u": outsider })).await;
    assert_eq!(added["trainingCampaignAddUser"], json!({ "node": true, "errors": [] }));
    assert_eq!(total(&sim.gql(tq, json!({ "id": id })).await), before + 1);
    let again = sim.gql(ADD, json!({ "c": id, "u": outsider })).await;
    assert_eq!(reasons(&again["trainingCampaignAddUser"]), vec!["taken"]);
    let archived = user_ids(&sim, "ARCHIVED").await[0];
    let refused = sim.gql(ADD, json!({ "c": id, "u": archived })).await;
    assert_eq!(reasons(&refused["trainingCampaignAddUser"]), vec!["archived"]);
    assert_eq!(refused["trainingCampaignAddUser"]["node"], json!(false));

    let removed = sim.gql(REMOVE, json!({ "c": id, "u": outsider })).await;
    assert_eq!(removed["trainingCampaignRemoveUser"]["removed"], json!(true));
    assert_eq!(total(&sim.gql(tq, json!({ "id": id })).await), before);
    let not_enrolled = sim.gql(REMOVE, json!({ "c": id, "u": outsider })).await;
    assert_eq!(not_enrolled["trainingCampaignRemoveUser"]["removed"], json!(false));

    let closed = sim
        .gql("mutation($id: Int!) { trainingCampaignClose(id: $id) { node { active id name status } errors { reason } } }", json!({ "id": id }))
        .await;
    assert_eq!(closed["trainingCampaignClose"]["node"]["status"], json!("CLOSED"));
    assert_eq!(closed["trainingCampaignClose"]["node"]["active"], json!(false));
    let late = sim.gql(ADD, json!({ "c": id, "u": outsider })).await;
    assert_eq!(reasons(&late["trainingCampaignAddUser"]), vec!["closed"]);
    let missing = sim.gql("mutation { trainingCampaignClose(id: 1) { errors { reason } } }", json!({})).await;
    assert_eq!(reasons(&missing["trainingCampaignClose"]), vec!["not_found"]);

    let del = "mutation TrainingCampaignDelete($ids: [Int!]!) { trainingCampaignDelete(ids: $ids) { node errors { reason } } }";
    let deleted = sim.gql(del, json!({ "ids": [id] })).await;
    assert_eq!(deleted["trainingCampaignDelete"], json!({ "node": true, "errors": [] }));
    assert_eq!(sim.gql(tq, json!({ "id": id })).await["trainingCampaign"], json!(null));
    let left = sim
        .gql(
            "query($id: Int) { enrollments(trainingCampaignId: $id) { pagination { totalCount } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(left["enrollments"]["pagination"]["totalCount"], json!(0));
    let again = sim.gql(del, json!({ "ids": [id] })).await;
    assert_eq!(reasons(&again["trainingCampaignDelete"]), vec!["not_found"]);
}

#[tokio::test]
async fn new_users_are_auto_enrolled() {
    let sim = Sim::default().await;
    // Seeded campaign 301 targets all users with automatic enrollment.
    let q = "{ trainingCampaign(id: 301) { totalUsers autoEnroll allUsers status } }";
    let before = sim.gql(q, json!({})).await;
    assert_eq!(before["trainingCampaign"]["autoEnroll"], json!(true));
    let created = sim
        .gql("mutation { userCreate(email: \"auto@example.com\", firstName: \"Auto\") { node { id } errors { reason } } }", json!({}))
        .await;
    assert_eq!(created["userCreate"]["errors"], json!([]));
    let after = sim.gql(q, json!({})).await;
    assert_eq!(
        after["trainingCampaign"]["totalUsers"].as_i64().unwrap(),
        before["trainingCampaign"]["totalUsers"].as_i64().unwrap() + 1
    );
}
