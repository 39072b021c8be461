//! Phishing: phishingCampaign(s), phishingCampaignRun(s), phishingCampaignRecipients,
//! templateTopics, and the campaign and run mutations.

use serde_json::{Value, json};

use crate::support::*;

async fn topics(sim: &Sim) -> Vec<i64> {
    let data = sim
        .gql("{ templateTopics(per: 100) { nodes { createdAt disabledByDefault id name ordering templateCount topicType updatedAt } pagination { page pages } } }", json!({}))
        .await;
    data["templateTopics"]["nodes"].as_array().unwrap().iter().filter_map(|t| t["id"].as_i64()).collect()
}

#[tokio::test]
async fn campaigns_runs_and_recipients() {
    let sim = Sim::default().await;
    let data = sim
        .gql(
            "{ phishingCampaigns(per: 100) { nodes { id name active campaignType frequencyPeriod isRecurring selectedGroups groups { id } lastRun { id status } phishingCampaignRunCount templateTopics { id } } pagination { totalCount } } }",
            json!({}),
        )
        .await;
    let campaigns = data["phishingCampaigns"]["nodes"].as_array().unwrap();
    assert_eq!(campaigns.len(), 3);
    let first = &campaigns[0];
    let id = first["id"].as_i64().unwrap();
    let runs = sim
        .gql(
            "query($c: Int) { phishingCampaignRuns(campaignId: $c, page: 1, per: 1000) { nodes { id status campaign { id } recipientCount totalClicked phishPronePercentage groups { id } } pagination { totalCount } } }",
            json!({ "c": id }),
        )
        .await;
    let runs = runs["phishingCampaignRuns"]["nodes"].as_array().unwrap().clone();
    assert_eq!(json!(runs.len()), first["phishingCampaignRunCount"]);
    assert!(runs.iter().all(|r| r["campaign"]["id"] == json!(id)));
    let run_id = runs[0]["id"].as_i64().unwrap();
    let recipients = sim
        .gql(
            "query($r: Int) { phishingCampaignRecipients(campaignRunId: $r, page: 1, per: 1000) { nodes { id email delivered opened clicked reported campaignRun { id } user { id } } pagination { totalCount } } }",
            json!({ "r": run_id }),
        )
        .await;
    let recipients = recipients["phishingCampaignRecipients"]["nodes"].as_array().unwrap().clone();
    assert_eq!(json!(recipients.len()), runs[0]["recipientCount"]);
    let clicked = recipients.iter().filter(|r| r["clicked"] == json!(true)).count();
    assert_eq!(json!(clicked), runs[0]["totalClicked"]);
    let one = sim
        .gql("query($id: Int!) { phishingCampaignRun(id: $id) { id status scheduledCount } phishingCampaign(id: 401) { id lastRunDate } }", json!({ "id": run_id }))
        .await;
    assert_eq!(one["phishingCampaignRun"]["id"], json!(run_id));
    let inactive =
        sim.gql("{ phishingCampaigns(filter: INACTIVE, type: STANDARD) { nodes { active } } }", json!({})).await;
    assert!(inactive["phishingCampaigns"]["nodes"].as_array().unwrap().iter().all(|c| c["active"] == json!(false)));
}

#[tokio::test]
async fn create_edit_deactivate_delete() {
    let sim = Sim::default().await;
    let topic = topics(&sim).await[0];
    let group = group_of_type(&sim, "CONSOLE").await;
    // The literal form MAKE sends, with enum values unquoted.
    let create = format!(
        "mutation PhishingCampaignCreate {{ phishingCampaignCreate(attributes: {{ name: \"Spring test\", frequencyPeriod: MONTH, selectedGroups: [{group}], nextRun: \"2031-03-01T09:00:00Z\", timeZone: EASTERN_TIME_US_CANADA, selectedTemplateTopics: [{topic}], spreadEmails: true, sendingDuration: 3, sendingDurationUnits: DAYS, businessHoursStartHour: \"9\", businessHoursEndHour: \"17\", businessDays: [1, 2, 3, 4, 5], trackingDuration: 3, trackingDurationUnits: DAYS }}) {{ errors {{ field placeholders reason recordId }} node {{ createdAt campaignType id name nextRun spreadEmails frequencyPeriod selectedGroups timeZone selectedTemplateTopics active }} }} }}"
    );
    let data = sim.gql(&create, json!({})).await;
    let node = &data["phishingCampaignCreate"]["node"];
    assert_eq!(data["phishingCampaignCreate"]["errors"], json!([]));
    assert_eq!(node["frequencyPeriod"], json!("MONTH"));
    assert_eq!(node["nextRun"], json!("2031-03-01T09:00:00Z"));
    assert_eq!(node["selectedGroups"], json!([group]));
    assert_eq!(node["active"], json!(true));
    let id = node["id"].as_i64().unwrap();

    let bad = sim
        .gql(
            "mutation($a: PhishingCampaignAttributes!) { phishingCampaignCreate(attributes: $a) { errors { field reason recordId } node { id } } }",
            json!({ "a": { "name": "Bad", "frequencyPeriod": "ONETIME", "selectedGroups": [group], "selectedTemplateTopics": [999] } }),
        )
        .await;
    assert_eq!(reasons(&bad["phishingCampaignCreate"]), vec!["not_found"]);
    assert_eq!(bad["phishingCampaignCreate"]["errors"][0]["recordId"], json!(999));

    let edit = sim
        .gql(
            "mutation($id: Int!, $a: PhishingCampaignAttributes!) { phishingCampaignEdit(id: $id, attributes: $a) { node { id name frequencyPeriod } errors { reason } } }",
            json!({ "id": id, "a": { "name": "Spring test (edited)", "frequencyPeriod": "QUARTER" } }),
        )
        .await;
    assert_eq!(edit["phishingCampaignEdit"]["node"]["name"], json!("Spring test (edited)"));
    assert_eq!(edit["phishingCampaignEdit"]["node"]["frequencyPeriod"], json!("QUARTER"));

    let q = "mutation($id: Int!, $d: Boolean!) { phishingCampaignDeactivate(id: $id, deactivate: $d) { node { id active } errors { reason } } }";
    let off = sim.gql(q, json!({ "id": id, "d": true })).await;
    assert_eq!(off["phishingCampaignDeactivate"]["node"]["active"], json!(false));
    let on = sim.gql(q, json!({ "id": id, "d": false })).await;
    assert_eq!(on["phishingCampaignDeactivate"]["node"]["active"], json!(true));
    let missing = sim.gql(q, json!({ "id": 1, "d": true })).await;
    assert_eq!(reasons(&missing["phishingCampaignDeactivate"]), vec!["not_found"]);
    // `deactivate: Boolean!` is required: leaving it out is a GraphQL error, not a deactivation.
    let q = format!("mutation {{ phishingCampaignDeactivate(id: {id}) {{ node {{ id active }} }} }}");
    let no_flag = sim.gql_as(TOKEN, &q, json!({})).await;
    assert!(error_message(&no_flag).contains("deactivate"), "{no_flag}");

    let del = "mutation($id: Int!) { phishingCampaignDelete(id: $id) { node { id } errors { reason } } }";
    let deleted = sim.gql(del, json!({ "id": id })).await;
    assert_eq!(deleted["phishingCampaignDelete"]["node"]["id"], json!(id));
    assert_eq!(sim.gql(del, json!({ "id": id })).await["phishingCampaignDelete"]["node"], json!(null));
}

async fn runs(sim: &Sim) -> Vec<Value> {
    let data = sim.gql("{ phishingCampaignRuns(per: 1000) { nodes { id status campaign { id } } } }", json!({})).await;
    data["phishingCampaignRuns"]["nodes"].as_array().unwrap().clone()
}

#[tokio::test]
async fn run_stop_and_delete() {
    let sim = Sim::default().await;
    let all = runs(&sim).await;
    let tracking = all.iter().find(|r| r["status"] == json!("TRACKING")).expect("a running run");
    let (campaign, run) = (tracking["campaign"]["id"].as_i64().unwrap(), tracking["id"].as_i64().unwrap());
    let stop = "mutation($c: Int!, $r: Int!) { phishingCampaignRunStop(campaignId: $c, runId: $r) { errors { field placeholders reason recordId } node { id status completedAt } } }";
    let stopped = sim.gql(stop, json!({ "c": campaign, "r": run })).await;
    assert_eq!(stopped["phishingCampaignRunStop"]["node"]["status"], json!("STOPPED"));
    let again = sim.gql(stop, json!({ "c": campaign, "r": run })).await;
    assert_eq!(reasons(&again["phishingCampaignRunStop"]), vec!["not_running"]);

    let other = all.iter().find(|r| r["campaign"]["id"] != json!(campaign)).expect("a run of another campaign");
    let wrong = sim.gql(stop, json!({ "c": campaign, "r": other["id"] })).await;
    assert_eq!(reasons(&wrong["phishingCampaignRunStop"]), vec!["not_found"]);

    let del = "mutation($c: Int!, $r: Int!) { phishingCampaignRunDelete(campaignId: $c, runId: $r) { errors { reason } node { id status } } }";
    let deleted = sim.gql(del, json!({ "c": campaign, "r": run })).await;
    assert_eq!(deleted["phishingCampaignRunDelete"]["node"]["id"], json!(run));
    assert_eq!(runs(&sim).await.len(), all.len() - 1);
    let recipients = sim
        .gql(
            "query($r: Int) { phishingCampaignRecipients(campaignRunId: $r) { pagination { totalCount } } }",
            json!({ "r": run }),
        )
        .await;
    assert_eq!(recipients["phishingCampaignRecipients"]["pagination"]["totalCount"], json!(0));
    let again = sim.gql(del, json!({ "c": campaign, "r": run })).await;
    assert_eq!(reasons(&again["phishingCampaignRunDelete"]), vec!["not_found"]);
}
