//! The package's Flow, as the org simulator emulates it, seen through the real CometD endpoint.

use reqwest::Method;
use serde_json::{json, Value};
use sfwa::sim::salesforce::OUTBOUND_EVENT_CHANNEL;

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
async fn only_new_outbound_queued_records_publish_the_outbound_event() {
    let org = spawn_org().await;
    let token = org.login().await;

    let queued = org
        .rest(Method::POST, &token, &format!("sobjects/{MSG}"))
        .json(&json!({"To_Phone__c": "+16505551234", "Status__c": "Queued"}))
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
    org.rest(
        Method::PATCH,
        &token,
        &format!("sobjects/{MSG}/{}", batch[1]["id"].as_str().unwrap()),
    )
    .json(&json!({"Status__c": "Queued"}))
    .send()
    .await
    .unwrap();

    assert_eq!(
        published_ids(&org),
        [queued, batch[0]["id"].as_str().unwrap().to_string()]
    );
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
