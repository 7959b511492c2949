//! The WhatsApp simulator's webhook subscription endpoints and its Graph versions, over HTTP: what
//! `sfwa doctor` reads, answered as Meta does (shapes, tokens, errors), and the control endpoint
//! that breaks the subscription.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::whatsapp_support::{assert_meta_error, spawn_sim, TestSim};

async fn get(t: &TestSim, path: &str, token: &str) -> (StatusCode, Value, Option<String>) {
    let response = t
        .http
        .get(format!("{}{path}", t.sim.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let version = response
        .headers()
        .get("facebook-api-version")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.expect("json"), version)
}

fn app_token(t: &TestSim) -> String {
    format!("{}|{}", t.sim.app_id(), t.sim.app_secret())
}

#[tokio::test]
async fn subscribed_apps_lists_the_app_in_metas_shape_until_it_is_unsubscribed() {
    let t = spawn_sim(|_| {}).await;
    let path = format!("/v25.0/{}/subscribed_apps", t.sim.waba_id());

    let (status, before, _) = get(&t, &path, t.sim.access_token()).await;
    t.control_put("/__sim/subscriptions", &json!({"app_subscribed": false}))
        .await;
    let (_, after, _) = get(&t, &path, t.sim.access_token()).await;

    assert_eq!(status, 200);
    let app = &before["data"][0]["whatsapp_business_api_data"];
    assert_eq!(app["id"], t.sim.app_id());
    assert!(
        app["name"].is_string() && app["link"].is_string(),
        "{before}"
    );
    assert_eq!(after, json!({"data": []}));
}

#[tokio::test]
async fn posting_subscribed_apps_subscribes_the_app_again() {
    let t = spawn_sim(|_| {}).await;
    t.control_put("/__sim/subscriptions", &json!({"app_subscribed": false}))
        .await;

    let response = t
        .http
        .post(format!(
            "{}/v25.0/{}/subscribed_apps",
            t.sim.url(),
            t.sim.waba_id()
        ))
        .bearer_auth(t.sim.access_token())
        .send()
        .await
        .expect("request");
    let answer: Value = response.json().await.expect("json");
    let state = t.control_get("/__sim/subscriptions").await;

    assert_eq!(answer, json!({"success": true}));
    assert_eq!(state["app_subscribed"], true);
}

#[tokio::test]
async fn subscribed_apps_refuses_a_wrong_token_and_an_unknown_account_as_meta_does() {
    let t = spawn_sim(|_| {}).await;

    let (status, body, _) = get(
        &t,
        &format!("/v25.0/{}/subscribed_apps", t.sim.waba_id()),
        "EAAwrong",
    )
    .await;
    let (unknown_status, unknown_body, _) = get(
        &t,
        "/v25.0/111111111111111/subscribed_apps",
        t.sim.access_token(),
    )
    .await;

    assert_meta_error(status, &body, 401, 190);
    let error = assert_meta_error(unknown_status, &unknown_body, 400, 100);
    assert_eq!(error["error_subcode"], 33);
}

#[tokio::test]
async fn app_subscriptions_show_the_callback_and_fields_and_lose_the_ones_removed() {
    let t = spawn_sim(|_| {}).await;
    let path = format!("/v25.0/{}/subscriptions", t.sim.app_id());

    let (status, before, _) = get(&t, &path, &app_token(&t)).await;
    t.control_put(
        "/__sim/subscriptions",
        &json!({"fields": ["messages", "standby"]}),
    )
    .await;
    let (_, after, _) = get(&t, &path, &app_token(&t)).await;
    t.control_put("/__sim/subscriptions", &json!({"fields": []}))
        .await;
    let (_, none, _) = get(&t, &path, &app_token(&t)).await;

    assert_eq!(status, 200);
    let subscription = &before["data"][0];
    assert_eq!(subscription["object"], "whatsapp_business_account");
    assert_eq!(subscription["callback_url"], t.hooks.url.as_str());
    assert_eq!(subscription["active"], true);
    assert_eq!(subscription["fields"].as_array().unwrap().len(), 6);
    let names: Vec<&str> = after["data"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["messages", "standby"]);
    assert!(after["data"][0]["fields"][0]["version"].is_string());
    assert_eq!(none, json!({"data": []}));
}

#[tokio::test]
async fn app_subscriptions_want_the_app_token_and_refuse_a_wrong_secret() {
    let t = spawn_sim(|_| {}).await;
    let path = format!("/v25.0/{}/subscriptions", t.sim.app_id());

    let (system_status, system_body, _) = get(&t, &path, t.sim.access_token()).await;
    let (wrong_status, wrong_body, _) =
        get(&t, &path, &format!("{}|not-the-secret", t.sim.app_id())).await;

    let error = assert_meta_error(system_status, &system_body, 400, 15);
    assert_eq!(
        error["message"],
        "(#15) This method must be called with an app access_token."
    );
    assert_meta_error(wrong_status, &wrong_body, 401, 190);
}

#[tokio::test]
async fn a_retired_graph_version_is_answered_as_the_oldest_available_and_an_unreleased_one_refused()
{
    let t = spawn_sim(|_| {}).await;
    // On the simulator's own calendar: v20.0 ended on 2026-09-24, v21.0 ends on 2027-01-21.
    let december_2026 = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").unwrap();
    t.sim
        .clock()
        .shift(december_2026.to_utc() - t.sim.clock().now());
    let number = t.sim.phone_number_id().to_owned();

    let (current, _, current_version) =
        get(&t, &format!("/v25.0/{number}"), t.sim.access_token()).await;
    let (retired, body, retired_version) =
        get(&t, &format!("/v20.0/{number}"), t.sim.access_token()).await;
    let (unreleased, unreleased_body, _) =
        get(&t, &format!("/v99.0/{number}"), t.sim.access_token()).await;

    assert_eq!(current, 200);
    assert_eq!(current_version.as_deref(), Some("v25.0"));
    assert_eq!(retired, 200, "{body}");
    assert_eq!(retired_version.as_deref(), Some("v21.0"));
    let error = assert_meta_error(unreleased, &unreleased_body, 400, 2500);
    assert_eq!(error["message"], "Unknown path components: /v99.0/");
}

#[tokio::test]
async fn without_the_messages_field_meta_posts_no_customer_message() {
    let t = spawn_sim(|_| {}).await;
    t.control_put("/__sim/subscriptions", &json!({"fields": ["standby"]}))
        .await;

    t.control_post(
        "/__sim/inbound",
        &json!({"from": "+16505551234", "text": "Hello?"}),
    )
    .await;
    let stats = t
        .control_get_until("/__sim/stats", |stats| {
            stats["webhooks"]["skipped_unsubscribed"] == 1
        })
        .await;

    assert_eq!(stats["webhooks"]["delivered"], 0);
    assert_eq!(t.hooks.attempts(), 0);
}

#[tokio::test]
async fn posting_subscriptions_verifies_the_callback_before_adding_the_fields() {
    let t = spawn_sim(|_| {}).await;
    t.control_put("/__sim/subscriptions", &json!({"fields": ["standby"]}))
        .await;
    let post = |verify_token: String| {
        let form = [
            ("object", "whatsapp_business_account".to_owned()),
            ("callback_url", t.hooks.url.clone()),
            ("fields", "messages,user_preferences".to_owned()),
            ("verify_token", verify_token),
            ("access_token", app_token(&t)),
        ];
        t.http
            .post(format!(
                "{}/v25.0/{}/subscriptions",
                t.sim.url(),
                t.sim.app_id()
            ))
            .form(&form)
            .send()
    };

    let refused = post("not-the-verify-token".into()).await.unwrap();
    let (refused_status, refused_body) = (refused.status(), refused.json::<Value>().await.unwrap());
    let accepted = post(t.sim.verify_token().to_owned()).await.unwrap();
    let accepted_body: Value = accepted.json().await.unwrap();
    let state = t.control_get("/__sim/subscriptions").await;

    let error = assert_meta_error(refused_status, &refused_body, 400, 2200);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("HTTP Status Code = 403"),
        "{error}"
    );
    assert_eq!(accepted_body, json!({"success": true}));
    assert_eq!(
        state["fields"],
        json!(["messages", "standby", "user_preferences"])
    );
}
