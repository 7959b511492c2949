//! Several business numbers in one instance, isolated from each other: one number's block holds
//! that number only, a slow number's backlog does not delay a fast number's sends, and the
//! WhatsApp simulator serves every number as a peer (own throughput, hold and webhook callback;
//! the listing Meta gives of an account's numbers).

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sfwa_sim::whatsapp::WhatsAppSimConfig;

use crate::daemon_support::{spawn_app_with, Options, TestApp};
use crate::whatsapp_support::{spawn_sim, template_to, TestSim, WebhookReceiver};

/// Options for a daemon serving the simulator's main number and its second one; `tune` sees the
/// second number's id.
fn two_numbers(
    tune: impl FnOnce(&mut sfwa::config::Settings, &str) + 'static,
) -> (Options, String) {
    let mut options = Options::default();
    let second = options.wa.other_phone_numbers[0].phone_number_id.clone();
    let id = second.clone();
    options.tune = Box::new(move |settings| {
        settings.whatsapp.phone_number_ids = vec![id.clone()];
        tune(settings, &id);
    });
    (options, second)
}

/// `count` template records to distinct customers, from `number` (`None`: blank, the default).
fn templates(count: usize, first_customer: usize, number: Option<&str>) -> Value {
    let records: Vec<Value> = (0..count)
        .map(|i| {
            let mut record = json!({
                "To_Phone__c": format!("+1650555{:04}", first_customer + i + 1),
                "Message_Type__c": "Template",
                "Template_Name__c": "hello_world",
            });
            if let Some(number) = number {
                record["Business_Number_Id__c"] = json!(number);
            }
            record
        })
        .collect();
    json!(records)
}

/// The simulator's attempt log, oldest first.
async fn attempts(app: &TestApp) -> Vec<Value> {
    let url = format!("{}/__sim/attempts", app.wa.url());
    let page: Value = app
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["attempts"].as_array().cloned().unwrap_or_default()
}

fn from(attempts: &[Value], number: &str) -> Vec<Value> {
    attempts
        .iter()
        .filter(|a| a["phone_number_id"] == number)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_number_meta_blocked_is_held_alone_and_the_other_number_keeps_sending() {
    let (options, second) = two_numbers(|_, _| {});
    let app = spawn_app_with(options).await;
    let main = app.wa.phone_number_id().to_string();
    app.wa.set_number_hold(&main, Some(368)).unwrap();
    let blocked = app.queue(templates(2, 0, None)).await;
    let free = app.queue(templates(2, 100, Some(&second))).await;

    app.dispatch().await;

    for id in &free {
        assert!(app.journal(id).await.unwrap().wamid.is_some(), "sent");
    }
    for id in &blocked {
        let entry = app.journal(id).await.unwrap();
        assert_eq!(entry.state, sfwa::store::journal::JournalState::Claimed);
        assert_eq!(entry.attempts, 0, "a hold is not an attempt");
    }
    let held = app.pipeline.dispatcher.held_numbers();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, main);
    assert!(held[0].1.reason.contains("Temporarily blocked"), "{held:?}");
    assert!(app.pipeline.dispatcher.hold_on_all().is_none());
    let refused_before = from(&attempts(&app).await, &main).len();

    // Later records: the blocked number's wait without a call, the other number's go out.
    let later_blocked = app.queue(templates(1, 200, None)).await;
    let later_free = app.queue(templates(1, 300, Some(&second))).await;
    app.dispatch().await;

    let log = attempts(&app).await;
    assert_eq!(
        from(&log, &main).len(),
        refused_before,
        "no call from the held number"
    );
    assert_eq!(from(&log, &second).len(), 3);
    assert!(app.journal(&later_free[0]).await.unwrap().wamid.is_some());
    assert_eq!(
        app.journal(&later_blocked[0]).await.unwrap().state,
        sfwa::store::journal::JournalState::Claimed
    );
}

#[tokio::test]
async fn a_slow_numbers_backlog_does_not_delay_a_fast_numbers_sends() {
    // The slow number goes 4 a second (no burst); its backlog is more than a number's send slots
    // and was queued first. With one pool of slots for all numbers its records would take every
    // slot and the fast number's sends would trickle out behind them, one per slow send.
    let (options, slow) = two_numbers(|settings, slow| {
        settings.whatsapp.throughput_per_number = BTreeMap::from([(slow.to_string(), 4)]);
    });
    let app = spawn_app_with(options).await;
    let fast = app.wa.phone_number_id().to_string();
    app.queue(templates(17, 0, Some(&slow))).await;
    // Created later: the poll (oldest first) hands the slow number's records over first.
    app.clock.0.shift(chrono::Duration::seconds(2));
    app.queue(templates(16, 100, None)).await;

    let step = app.dispatch().await;

    assert_eq!(step.outcomes.len(), 33);
    let log = attempts(&app).await;
    let sixth_slow = from(&log, &slow)[5]["seq"].as_u64().unwrap();
    let fast_sends = from(&log, &fast);
    assert_eq!(fast_sends.len(), 16);
    // The sixth slow send is 1.25 s in; the fast number's 16 need about 0.1 s.
    assert!(
        fast_sends
            .iter()
            .all(|a| a["seq"].as_u64().unwrap() < sixth_slow),
        "{log:#?}"
    );
    assert!(log.iter().all(|a| a["outcome"] == "accepted"), "no 130429");
}

// ---- the simulator's numbers -------------------------------------------------------------------

async fn graph_get(sim: &TestSim, path: &str) -> (StatusCode, Value) {
    let response = sim
        .http
        .get(format!("{}/v23.0/{path}", sim.sim.url()))
        .bearer_auth(sim.sim.access_token())
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn graph_post(sim: &TestSim, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = sim
        .http
        .post(format!("{}/v23.0/{path}", sim.sim.url()))
        .bearer_auth(sim.sim.access_token())
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_simulator_lists_the_accounts_numbers_in_metas_shape_page_by_page() {
    let sim = spawn_sim(|_| {}).await;
    let added = sim.sim.add_number(Some(200)).unwrap();
    sim.sim.add_number(None).unwrap();
    let waba = sim.sim.waba_id().to_string();

    let (status, first) = graph_get(&sim, &format!("{waba}/phone_numbers?limit=3")).await;
    let after = first["paging"]["cursors"]["after"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, second) = graph_get(&sim, &format!("{waba}/phone_numbers?limit=3&after={after}")).await;

    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    assert!(first["paging"]["next"].is_string(), "{first}");
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["paging"].get("next").is_none(), "{second}");
    let main = &first["data"][0];
    assert_eq!(main["id"], sim.sim.phone_number_id());
    for field in [
        "display_phone_number",
        "verified_name",
        "quality_rating",
        "code_verification_status",
        "platform_type",
    ] {
        assert!(main[field].is_string(), "{field}: {main}");
    }
    assert_eq!(main["throughput"]["level"], "STANDARD");
    assert_eq!(first["data"][2]["id"], added.phone_number_id.as_str());
    assert_eq!(first["data"][2]["throughput"]["level"], "HIGH");
}

#[tokio::test]
async fn a_number_added_through_the_control_api_has_its_own_throughput_and_hold() {
    let sim = spawn_sim(|config: &mut WhatsAppSimConfig| config.throughput_per_second = 80).await;
    let response = sim
        .http
        .post(format!("{}/__sim/numbers", sim.sim.url()))
        .json(&json!({"throughput_per_second": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let added: Value = response.json().await.unwrap();
    let id = added["phone_number_id"].as_str().unwrap().to_string();
    let send_from = |number: &str, i: usize| {
        let url = format!("{}/v23.0/{number}/messages", sim.sim.url());
        let body = template_to(&format!("1650555{:04}", i + 1), "hello_world", json!([]));
        let request = sim
            .http
            .post(url)
            .bearer_auth(sim.sim.access_token())
            .json(&body);
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let body: Value = answer.json().await.unwrap();
            (status, body["error"]["code"].clone())
        }
    };

    let mut codes = Vec::new();
    for i in 0..3 {
        codes.push(send_from(&id, i).await.1);
    }
    let main_ok = send_from(sim.sim.phone_number_id(), 10).await;
    let patched = sim
        .http
        .patch(format!("{}/__sim/numbers/{id}", sim.sim.url()))
        .json(&json!({"hold_error": 131031}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let (held_status, held_code) = send_from(&id, 20).await;
    let (main_status, _) = send_from(sim.sim.phone_number_id(), 21).await;

    assert_eq!(codes, vec![Value::Null, Value::Null, json!(130429)]);
    assert_eq!(
        main_ok.0,
        StatusCode::OK,
        "the main number has its own bucket"
    );
    assert_eq!(held_status, StatusCode::FORBIDDEN);
    assert_eq!(held_code, json!(131031));
    assert_eq!(
        main_status,
        StatusCode::OK,
        "the hold is that number's only"
    );
}

#[tokio::test]
async fn a_numbers_webhook_override_receives_its_messages_and_the_others_stay_with_the_app() {
    let mut sim = spawn_sim(|_| {}).await;
    let (second, _) = {
        let number = sim.sim.add_number(None).unwrap();
        (number.phone_number_id, number.display_phone_number)
    };
    let mut shard = WebhookReceiver::start(sim.sim.app_secret(), "shard-token").await;
    let configure = |uri: &str, token: &str| json!({"webhook_configuration": {"override_callback_uri": uri, "verify_token": token}});

    let (refused, error) = graph_post(&sim, &second, &configure(&shard.url, "wrong")).await;
    let (status, answer) = graph_post(&sim, &second, &configure(&shard.url, "shard-token")).await;
    let (_, shown) = graph_get(&sim, &format!("{second}?fields=webhook_configuration")).await;
    sim.control_post(
        "/__sim/inbound",
        &json!({"from": "16505550101", "text": "to the shard", "phone_number_id": second}),
    )
    .await;
    sim.control_post(
        "/__sim/inbound",
        &json!({"from": "16505550102", "text": "to the app"}),
    )
    .await;
    let at_shard = shard.next_value().await;
    let at_app = sim.hooks.next_value().await;

    assert_eq!(refused, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], 2200);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"success": true}));
    assert_eq!(
        shown["webhook_configuration"]["phone_number"],
        shard.url.as_str()
    );
    assert_eq!(at_shard["metadata"]["phone_number_id"], second.as_str());
    assert_eq!(
        at_app["metadata"]["phone_number_id"],
        sim.sim.phone_number_id()
    );

    // An empty override_callback_uri removes it: the number's webhooks go to the app again.
    let (removed, _) = graph_post(&sim, &second, &configure("", "")).await;
    sim.control_post(
        "/__sim/inbound",
        &json!({"from": "16505550103", "text": "back to the app", "phone_number_id": second}),
    )
    .await;
    let back = sim.hooks.next_value().await;
    assert_eq!(removed, StatusCode::OK);
    assert_eq!(back["metadata"]["phone_number_id"], second.as_str());
}
