//! Group queries and mutations: group, groups, groupCreate, groupArchive, groupDelete, and the
//! membership mutations userAddToGroups / userDeleteMemberships with their rules.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn seeded_groups_are_mostly_console_with_a_smart_one() {
    let sim = Sim::default().await;
    let all = groups(&sim).await;
    assert_eq!(all.len(), 5);
    let console = all.iter().filter(|g| g.2 == "CONSOLE").count();
    assert!(console >= 3, "{all:?}");
    assert!(all.iter().any(|g| g.2 == "SMART"));
    let active = sim.gql("{ groups { nodes { id status } pagination { totalCount } } }", json!({})).await;
    let archived = all.iter().filter(|g| g.3 == "ARCHIVED").count();
    assert!(archived >= 1, "the seed archives a group");
    assert_eq!(active["groups"]["pagination"]["totalCount"], json!(5 - archived), "ACTIVE by default");
    let smart = sim.gql("{ groups(type: SMART) { nodes { groupType } } }", json!({})).await;
    assert_eq!(smart["groups"]["nodes"], json!([{ "groupType": "SMART" }]));
    let search = sim.gql("{ groups(search: \"engin\") { nodes { name } } }", json!({})).await;
    assert_eq!(search["groups"]["nodes"], json!([{ "name": "Engineering" }]));
}

#[tokio::test]
async fn group_by_id_with_make_selection() {
    let sim = Sim::default().await;
    let id = group_of_type(&sim, "CONSOLE").await;
    let q = "query($id: Int!) { group(id: $id) { accountId accountName accountNameWithDomain createdAt displayName groupType hasCampaignRuns id ldapObjectGuid memberCount name riskScore securityRoles { createdAt id name updatedAt userCount } status updatedAt userPhishingLocales } }";
    let data = sim.gql(q, json!({ "id": id })).await;
    let members = sim
        .gql(
            "query($g: Int!) { users(per: 1000, status: ALL, group: $g) { pagination { totalCount } } }",
            json!({ "g": id }),
        )
        .await;
    assert_eq!(data["group"]["memberCount"], members["users"]["pagination"]["totalCount"]);
    assert_eq!(sim.gql("{ group(id: 1) { id } }", json!({})).await["group"], json!(null));
}

const CREATE: &str = "mutation($a: GroupAttributes!) { groupCreate(attributes: $a) { node { id name groupType status memberCount } errors { field placeholders reason recordId } } }";

#[tokio::test]
async fn group_create_name_rules() {
    let sim = Sim::default().await;
    let ok = sim.gql(CREATE, json!({ "a": { "name": "x".repeat(128) } })).await;
    assert_eq!(ok["groupCreate"]["errors"], json!([]));
    assert_eq!(ok["groupCreate"]["node"]["groupType"], json!("CONSOLE"));
    assert_eq!(ok["groupCreate"]["node"]["memberCount"], json!(0));
    let long = sim.gql(CREATE, json!({ "a": { "name": "y".repeat(129) } })).await;
    assert_eq!(reasons(&long["groupCreate"]), vec!["too_long"]);
    assert_eq!(long["groupCreate"]["errors"][0]["placeholders"], json!({ "count": 128 }));
    let blank = sim.gql(CREATE, json!({ "a": { "name": "  " } })).await;
    assert_eq!(reasons(&blank["groupCreate"]), vec!["blank"]);
    let taken = sim.gql(CREATE, json!({ "a": { "name": "engineering" } })).await;
    assert_eq!(reasons(&taken["groupCreate"]), vec!["taken"]);
    let smart = sim
        .gql(
            "mutation { groupCreate(attributes: { name: \"Smarties\", groupType: SMART, securityRoles: [] }) { errors { reason } node { groupType } } }",
            json!({}),
        )
        .await;
    assert_eq!(smart["groupCreate"]["node"]["groupType"], json!("SMART"));
    assert_eq!(groups(&sim).await.len(), 7);
}

#[tokio::test]
async fn group_archive_unarchive_and_delete() {
    let sim = Sim::default().await;
    let id = group_of_type(&sim, "CONSOLE").await;
    let q = "mutation($archive: Boolean, $ids: [Int!]!) { groupArchive(archive: $archive, ids: $ids) { nodes { id status } errors { reason recordId } } }";
    let archived = sim.gql(q, json!({ "archive": true, "ids": [id] })).await;
    assert_eq!(archived["groupArchive"]["nodes"], json!([{ "id": id, "status": "ARCHIVED" }]));
    let back = sim.gql(q, json!({ "archive": false, "ids": [id] })).await;
    assert_eq!(back["groupArchive"]["nodes"][0]["status"], json!("ACTIVE"));
    let unknown = sim.gql(q, json!({ "archive": true, "ids": [id, 5] })).await;
    assert_eq!(reasons(&unknown["groupArchive"]), vec!["not_found"]);
    assert_eq!(unknown["groupArchive"]["errors"][0]["recordId"], json!(5));

    let member =
        sim.gql("query($g: Int!) { users(group: $g) { nodes { id } } }", json!({ "g": id })).await["users"]["nodes"][0]
            ["id"]
            .as_i64()
            .unwrap();
    let del = sim
        .gql(
            "mutation($ids: [Int!]!) { groupDelete(ids: $ids) { nodes { id name } errors { reason } } }",
            json!({ "ids": [id] }),
        )
        .await;
    assert_eq!(del["groupDelete"]["nodes"][0]["id"], json!(id));
    assert_eq!(sim.gql("query($id: Int!) { group(id: $id) { id } }", json!({ "id": id })).await["group"], json!(null));
    assert!(!group_ids_of(&sim, member).await.contains(&id), "memberships go with the group");
    let again = sim
        .gql(
            "mutation($ids: [Int!]!) { groupDelete(ids: $ids) { nodes { id } errors { reason } } }",
            json!({ "ids": [id] }),
        )
        .await;
    assert_eq!(reasons(&again["groupDelete"]), vec!["not_found"]);
}

const ADD: &str = "mutation($u: [Int!]!, $g: [Int!]!) { userAddToGroups(userIds: $u, groupIds: $g) { node { id groupIds groupNamesConcat } errors { field reason recordId } } }";
const REMOVE: &str = "mutation($u: [Int!]!, $g: Int!) { userDeleteMemberships(userIds: $u, groupId: $g) { node { id groupIds } errors { field reason recordId } } }";

#[tokio::test]
async fn membership_changes_on_console_groups() {
    let sim = Sim::default().await;
    let created = sim.gql(CREATE, json!({ "a": { "name": "Pilot" } })).await;
    let group = created["groupCreate"]["node"]["id"].as_i64().unwrap();
    let users = user_ids(&sim, "ACTIVE").await;
    let (a, b) = (users[1], users[2]);
    let added = sim.gql(ADD, json!({ "u": [a, b], "g": [group] })).await;
    assert_eq!(added["userAddToGroups"]["errors"], json!([]));
    let nodes = added["userAddToGroups"]["node"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n["groupIds"].as_array().unwrap().contains(&json!(group))));
    assert!(nodes[0]["groupNamesConcat"].as_str().unwrap().contains("Pilot"));
    let count = sim.gql("query($id: Int!) { group(id: $id) { memberCount } }", json!({ "id": group })).await;
    assert_eq!(count["group"]["memberCount"], json!(2));

    let removed = sim.gql(REMOVE, json!({ "u": [a], "g": group })).await;
    assert_eq!(removed["userDeleteMemberships"]["errors"], json!([]));
    assert!(!group_ids_of(&sim, a).await.contains(&group));
    assert!(group_ids_of(&sim, b).await.contains(&group));
}

#[tokio::test]
async fn only_console_groups_take_manual_members() {
    let sim = Sim::default().await;
    let smart = group_of_type(&sim, "SMART").await;
    let console = group_of_type(&sim, "CONSOLE").await;
    let user = user_ids(&sim, "ACTIVE").await[3];
    let before = group_ids_of(&sim, user).await;
    let refused = sim.gql(ADD, json!({ "u": [user], "g": [console, smart] })).await;
    assert_eq!(reasons(&refused["userAddToGroups"]), vec!["not_console_group"]);
    assert_eq!(refused["userAddToGroups"]["errors"][0]["recordId"], json!(smart));
    assert_eq!(refused["userAddToGroups"]["node"], json!(null));
    assert_eq!(group_ids_of(&sim, user).await, before, "a refused call changes nothing");
    let refused = sim.gql(REMOVE, json!({ "u": [user], "g": smart })).await;
    assert_eq!(reasons(&refused["userDeleteMemberships"]), vec!["not_console_group"]);

    let archived_user = user_ids(&sim, "ARCHIVED").await[0];
    let archived = sim.gql(ADD, json!({ "u": [archived_user], "g": [console] })).await;
    assert_eq!(reasons(&archived["userAddToGroups"]), vec!["archived"]);
    let unknown = sim.gql(ADD, json!({ "u": [user, 3], "g": [4] })).await;
    assert_eq!(reasons(&unknown["userAddToGroups"]), vec!["not_found", "not_found"]);
    let unknown = sim.gql(REMOVE, json!({ "u": [user], "g": 4 })).await;
    assert_eq!(reasons(&unknown["userDeleteMemberships"]), vec!["not_found"]);
}
