//! The Partner API: `accounts(...)` with seats and active user counts, and `account`.

use serde_json::{Value, json};

use crate::support::*;

const ACCOUNTS: &str = "query Accounts($per: Int!, $page: Int!, $partnerId: Int, $status: AccountStatuses, $billingType: AccountBillingTypes, $search: String, $archivedUsers: Boolean, $sortField: AccountSortFields, $sortDirection: SortDirections, $otherPartnersAccounts: AccountPartnerInclusions) {
  accounts(per: $per, page: $page, partnerId: $partnerId, status: $status, billingType: $billingType, search: $search, archivedUsers: $archivedUsers, sortField: $sortField, sortDirection: $sortDirection, otherPartnersAccounts: $otherPartnersAccounts) {
    nodes { id accountSettingsFlagNames archived billingType pstCount companyName purchasedCourseCount createdAt domain hasFreePst hasFreePrt hasFreeSpt hasFreeQrt hasFreeUsb numberOfSeats userCount allUserCount partnerAccessExpiration percentageUsersPhished percentageUsersTrained phishPronePercentage latestRiskScore subscriptionEndDate partnerId partnerDomain partnerDisplayName accountOwner { id confirmedAt } subscriptionObject { id friendlyName } purchasedSkus { skuCode status } languageSettings { adminLocale } }
    pagination { pages page per totalCount }
  }
}";

async fn accounts(sim: &Sim, vars: Value) -> Value {
    let body = sim.gql_as(PARTNER, ACCOUNTS, vars).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["accounts"].clone()
}

#[tokio::test]
async fn accounts_report_seats_and_active_users() {
    let sim = Sim::default().await;
    let base = json!({ "per": 25, "page": 1, "archivedUsers": false, "status": "ALL", "billingType": "ANY", "otherPartnersAccounts": "ALL" });
    let page = accounts(&sim, base.clone()).await;
    assert_eq!(page["pagination"], json!({ "pages": 1, "page": 1, "per": 25, "totalCount": 5 }));
    let tenant = page["nodes"][0].clone();
    let active = user_ids(&sim, "ACTIVE").await.len();
    assert_eq!(tenant["userCount"], json!(active), "userCount counts active users");
    assert_eq!(tenant["allUserCount"], json!(50));
    assert!(tenant["numberOfSeats"].as_i64().unwrap() >= 50);

    let victim = user_ids(&sim, "ACTIVE").await[1];
    sim.gql("mutation($u: [Int!]!) { userArchive(userIds: $u) { errors { reason } } }", json!({ "u": [victim] })).await;
    let page = accounts(&sim, base.clone()).await;
    assert_eq!(page["nodes"][0]["userCount"], json!(active - 1), "archived users stop counting");
    let mut with_archived = base.clone();
    with_archived["archivedUsers"] = json!(true);
    assert_eq!(accounts(&sim, with_archived).await["nodes"][0]["userCount"], json!(50));
}

#[tokio::test]
async fn accounts_filters_and_sorting() {
    let sim = Sim::default().await;
    let archived = accounts(&sim, json!({ "per": 25, "page": 1, "status": "ARCHIVED" })).await;
    assert!(archived["nodes"].as_array().unwrap().iter().all(|a| a["archived"] == json!(true)));
    assert_eq!(archived["pagination"]["totalCount"], json!(1));
    let trial = accounts(&sim, json!({ "per": 25, "page": 1, "billingType": "TRIAL" })).await;
    assert!(trial["nodes"].as_array().unwrap().iter().all(|a| a["billingType"] == json!("TRIAL")));
    let search = accounts(&sim, json!({ "per": 25, "page": 1, "search": "GLOBEX" })).await;
    assert_eq!(search["nodes"].as_array().unwrap().len(), 1);
    let sorted =
        accounts(&sim, json!({ "per": 25, "page": 1, "sortField": "SEATS", "sortDirection": "DESCENDING" })).await;
    let seats: Vec<i64> =
        sorted["nodes"].as_array().unwrap().iter().map(|a| a["numberOfSeats"].as_i64().unwrap()).collect();
    assert!(seats.windows(2).all(|w| w[0] >= w[1]), "{seats:?}");
    let past_end = accounts(&sim, json!({ "per": 25, "page": 2 })).await;
    assert_eq!(past_end["nodes"], json!([]));
    let bad_per = sim.gql_as(PARTNER, ACCOUNTS, json!({ "per": 0, "page": 1 })).await;
    assert!(error_message(&bad_per).contains("per must be between 1 and 1000"));
}

#[tokio::test]
async fn account_for_ksat_and_partner_tokens() {
    let sim = Sim::default().await;
    let own = sim
        .gql("{ account { id companyName numberOfSeats hasOnlyStaleContent accountOwner { email } } }", json!({}))
        .await;
    assert_eq!(own["account"]["companyName"], json!("Stepwise Sandbox Inc."));
    assert!(own["account"]["accountOwner"]["email"].as_str().unwrap().ends_with("@example.com"));
    let managed =
        sim.gql_as(PARTNER, "{ account(id: 100002) { id companyName } none: account(id: 1) { id } }", json!({})).await;
    assert_eq!(managed["data"]["account"]["id"], json!(100_002));
    assert_eq!(managed["data"]["none"], json!(null));
}
