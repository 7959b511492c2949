//! The package's Flow, as the org simulator emulates it, seen through the real CometD endpoint.

use reqwest::Method;
use serde_json::{json, Value};
use sfwa_sim::salesforce::OUTBOUND_EVENT_CHANNEL;

use crate::helpers::spawn_org;

const MSG: &str = "WhatsApp_Message__c";

fn published_ids(org: &crate::helpers::Org) -> Vec<String> {
    org.sim
        .state()
        .bus
        .events(OUTBOUND_EVENT_CHANNEL)
        .iter()
        .map(|e| e.fields["Message_Id__c"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn outbound_records_created_queued_or_updated_to_queued_publish_the_outbound_event() {
    let org = spawn_org().await;
    let token = org.login().await;

    let queued = org
        .rest(Method::POST, &token, &format!("sobjects/{MSG}"))
        .json(&json!({"To_Phone__c": "+16505551234", "Status__c": "Queued", "Business_Number_Id__c": "106540352242922"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let batch: Value = org
        .rest(Method::POST, &token, "composite/sobjects")
        .json(&json!({"allOrNone": false, "records": [
            {"attributes": {"type": MSG}, "Status__c": "Queued"},
            {"attributes": {"type": MSG}, "Status__c": "Sent"},
            {"attributes": {"type": MSG}, "Direction__c": "Inbound", "Status__c": "Received"},
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = |i: usize| batch[i]["id"].as_str().unwrap().to_string();
    // Sent → Queued enters the condition; Queued → Queued (an edit) and Received → Queued on an
    // inbound record do not.
    for (record, fields) in [
        (id(1), json!({"Status__c": "Queued"})),
        (queued.clone(), json!({"Body__c": "edited"})),
        (id(2), json!({"Status__c": "Queued"})),
    ] {
        let (status, _) = org
            .call(
                Method::PATCH,
                &token,
                &format!("sobjects/{MSG}/{record}"),
                fields,
            )
            .await;
        assert_eq!(status, 204);
    }

    assert_eq!(published_ids(&org), [queued.clone(), id(0), id(1)]);
    let first = &org.sim.state().bus.events(OUTBOUND_EVENT_CHANNEL)[0];
    assert_eq!(first.fields["Business_Number_Id__c"], "106540352242922");
    assert_eq!(
        org.sim.state().bus.events(OUTBOUND_EVENT_CHANNEL)[1].fields["Business_Number_Id__c"],
        Value::Null
    );
}

#[tokio::test]
async fn a_record_requeued_through_a_collection_update_publishes_once() {
    let org = spawn_org().await;
    let token = org.login().await;
    let ids = org
        .seed(
            MSG,
            json!([{"Status__c": "Failed"}, {"Status__c": "Queued"}]),
        )
        .await;
    let before = published_ids(&org);

    let (status, _) = org
        .call(
            Method::PATCH,
            &token,
            "composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Queued"},
                {"attributes": {"type": MSG}, "id": ids[1], "Status__c": "Queued"},
            ]}),
        )
        .await;

    assert_eq!(status, 200);
    assert_eq!(before, [ids[1].clone()]);
    assert_eq!(published_ids(&org), [ids[1].clone(), ids[0].clone()]);
}

#[tokio::test]
async fn a_scheduled_record_publishes_when_its_time_comes_and_not_before() {
    let org = spawn_org().await;
    let clock = org.sim.clock();
    let later = (clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    let ids = org
        .seed(
            MSG,
            json!([
                {"Status__c": "Queued", "Scheduled_At__c": later},
                {"Status__c": "Queued", "Scheduled_At__c": later},
            ]),
        )
        .await;
    // The second one is canceled before its time: the scheduled path checks the condition again.
    let canceled = org
        .http
        .patch(org.url(&format!("/__sim/records/{MSG}/{}", ids[1])))
        .json(&json!({"Status__c": "Failed"}))
        .send()
        .await
        .unwrap();
    assert!(canceled.status().is_success());
    assert!(published_ids(&org).is_empty());

    org.control("clock", json!({"shift_seconds": 3660})).await;

    assert_eq!(published_ids(&org), [ids[0].clone()]);
}

#[tokio::test]
async fn an_inactive_flow_publishes_nothing_and_flow_definition_view_says_so() {
    let org = spawn_org().await;
    let token = org.login().await;
    let soql = "SELECT ActiveVersionId, ApiName, Label, LatestVersionId FROM FlowDefinitionView WHERE ApiName = 'WhatsApp_Publish_Outbound'";
    let (_, active) = org.query(&token, soql).await;

    org.control(
        "flows",
        json!({"api_name": "WhatsApp_Publish_Outbound", "active": false}),
    )
    .await;
    org.seed(MSG, json!([{"Status__c": "Queued"}])).await;
    let (status, inactive) = org.query(&token, soql).await;

    assert_eq!(status, 200);
    assert!(published_ids(&org).is_empty());
    let row = &active["records"][0];
    assert_eq!(active["totalSize"], 1);
    assert!(row["ActiveVersionId"].as_str().unwrap().starts_with("301"));
    assert_eq!(row["ApiName"], "WhatsApp_Publish_Outbound");
    assert!(row["Label"].is_string());
    assert_eq!(row["LatestVersionId"], row["ActiveVersionId"]);
    assert_eq!(inactive["records"][0]["ActiveVersionId"], Value::Null);
    assert_eq!(
        inactive["records"][0]["LatestVersionId"],
        row["LatestVersionId"]
    );
    let flows: Value = org
        .http
        .get(org.url("/__sim/flows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flows["flows"][0]["active"], false);
}

#[tokio::test]
async fn a_rolled_back_all_or_none_insert_publishes_nothing() {
    let org = spawn_org().await;
    let token = org.login().await;

    org.rest(Method::POST, &token, "composite/sobjects")
        .json(&json!({"allOrNone": true, "records": [
            {"attributes": {"type": MSG}, "Status__c": "Queued"},
            {"attributes": {"type": MSG}, "Status__c": "Bogus"},
        ]}))
        .send()
        .await
        .unwrap();

    assert!(published_ids(&org).is_empty());
}

#[tokio::test]
async fn a_cometd_subscriber_with_replay_minus_two_receives_the_flow_event_and_pays_no_rest_calls()
{
    let org = spawn_org().await;
    let token = org.login().await;
    let ids = org
        .seed(
            MSG,
            json!([{"Status__c": "Queued", "To_Phone__c": "+16505551234"}]),
        )
        .await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let endpoint = org.url("/cometd/62.0");
    let post = |body: Value| http.post(&endpoint).bearer_auth(&token).json(&body).send();

    let handshake: Value = post(json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"], "ext": {"replay": true}, "id": "1"}]))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client_id = handshake[0]["clientId"].as_str().unwrap().to_string();
    let subscribed: Value = post(json!([{"channel": "/meta/subscribe", "clientId": client_id,
        "subscription": OUTBOUND_EVENT_CHANNEL, "ext": {"replay": {OUTBOUND_EVENT_CHANNEL: -2}}, "id": "2"}]))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let connected: Value = post(json!([{"channel": "/meta/connect", "clientId": client_id,
        "connectionType": "long-polling", "id": "3"}]))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();

    assert_eq!(subscribed[0]["successful"], true);
    let event = connected
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["channel"] == OUTBOUND_EVENT_CHANNEL)
        .expect("the retained event is replayed");
    assert_eq!(event["data"]["payload"]["Message_Id__c"], ids[0]);
    assert!(event["data"]["event"]["replayId"].is_i64());
    let stats = org.stats().await;
    assert_eq!(stats["rest_calls"]["total"], 0);
    assert_eq!(stats["cometd_requests"], 3);
}
