//! The simulator's `/__sim/` control API: customers, clock, messages, templates, stats, webhook.

use std::time::Duration;

use serde_json::json;

use crate::whatsapp_support::{spawn_sim, template_to, text_to, CUSTOMER};

#[tokio::test]
async fn messages_lists_each_send_with_its_status_timeline() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    let mut body = template_to(CUSTOMER, "hello_world", json!([]));
    body["biz_opaque_callback_data"] = json!("a0B000000000001");

    // Act
    let wamid = t.send_ok(&body).await;
    t.hooks.status_of(&wamid, "read").await;
    let listed = t
        .control_get(&format!("/__sim/messages?to=%2B{CUSTOMER}"))
        .await;

    // Assert
    let messages = listed["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message["wamid"], wamid.as_str());
    assert_eq!(message["to"], CUSTOMER);
    assert_eq!(message["type"], "template");
    assert_eq!(message["template_name"], "hello_world");
    assert_eq!(message["biz_opaque_callback_data"], "a0B000000000001");
    let timeline: Vec<_> = message["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|status| status["status"].clone())
        .collect();
    assert_eq!(timeline, [json!("sent"), json!("delivered"), json!("read")]);
}

#[tokio::test]
async fn setting_a_customers_last_inbound_time_opens_the_window_without_a_webhook() {
    let mut t = spawn_sim(|_| {}).await;

    t.control_post("/__sim/customers", &json!({"wa_id": CUSTOMER}))
        .await;
    let quiet = t.hooks.quiet_for(Duration::from_millis(100)).await;
    let wamid = t.send_ok(&text_to(CUSTOMER, "Hello")).await;
    let status = t.hooks.next_status().await;
    let customers = t.control_get("/__sim/customers").await;

    assert!(quiet, "setting a customer sends no webhook");
    assert_eq!(status["id"], wamid.as_str());
    assert_eq!(status["status"], "sent");
    assert_eq!(customers["customers"][0]["wa_id"], CUSTOMER);
    assert_eq!(customers["customers"][0]["window_open"], true);
}

#[tokio::test]
async fn a_last_inbound_time_25_hours_ago_closes_the_window() {
    let mut t = spawn_sim(|_| {}).await;
    let long_ago = t.sim.clock().now().timestamp() - 25 * 3600;

    t.control_post(
        "/__sim/customers",
        &json!({"wa_id": CUSTOMER, "last_inbound_at": long_ago}),
    )
    .await;
    t.send_ok(&text_to(CUSTOMER, "Hello")).await;
    let status = t.hooks.next_status().await;

    assert_eq!(status["status"], "failed");
    assert_eq!(status["errors"][0]["code"], 131047);
}

#[tokio::test]
async fn clock_shift_moves_the_shared_sim_clock() {
    let t = spawn_sim(|_| {}).await;
    let before = t.sim.clock().now().timestamp();

    let answer = t
        .control_post("/__sim/clock", &json!({"shift_seconds": 90_000}))
        .await;

    assert_eq!(answer["offset_seconds"], 90_000);
    let now = answer["now"].as_i64().expect("now");
    assert!((now - before - 90_000).abs() <= 2);
    assert!(t.sim.clock().offset() >= chrono::Duration::seconds(90_000));
}

#[tokio::test]
async fn stats_count_messages_by_type_and_outcome_and_webhooks() {
    let mut t = spawn_sim(|config| config.delivered_after = Duration::from_secs(30)).await;

    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.hooks.status_of(&wamid, "sent").await;
    t.send(&text_to("123", "bad number")).await;
    let stats = t
        .control_get_until("/__sim/stats", |stats| stats["webhooks"]["delivered"] == 1)
        .await;

    assert_eq!(stats["messages_by_type"]["template"], 1);
    assert_eq!(stats["messages_by_outcome"]["accepted"], 1);
    assert_eq!(stats["messages_by_outcome"]["rejected"], 1);
    assert_eq!(stats["rejected_by_code"]["100"], 1);
    assert_eq!(stats["statuses"]["sent"], 1);
    assert_eq!(stats["webhooks"]["delivered"], 1);
}

#[tokio::test]
async fn templates_can_be_listed_and_upserted() {
    let t = spawn_sim(|_| {}).await;

    let before = t.control_get("/__sim/templates").await;
    t.control_post(
        "/__sim/templates",
        &json!({"name": "shipping_notice", "language": "de_DE", "status": "APPROVED",
                "header": {"format": "TEXT", "params": 1}, "body_params": 1}),
    )
    .await;
    let mut body = template_to(
        CUSTOMER,
        "shipping_notice",
        json!([
            {"type": "header", "parameters": [{"type": "text", "text": "A-1"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Montag"}]}
        ]),
    );
    body["template"]["language"]["code"] = json!("de_DE");
    let (status, answer) = t.send(&body).await;

    let names: Vec<_> = before["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|template| template["name"].as_str().unwrap_or("").to_owned())
        .collect();
    for expected in ["hello_world", "appointment_reminder", "order_update"] {
        assert!(names.iter().any(|name| name == expected), "{names:?}");
    }
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn webhook_verification_handshake_uses_the_verify_token() {
    let t = spawn_sim(|_| {}).await;

    let answer = t.control_post("/__sim/webhook/verify", &json!({})).await;

    assert_eq!(answer["verified"], true, "{answer}");
}

#[tokio::test]
async fn without_a_webhook_url_updates_are_recorded_but_not_posted() {
    let mut t = spawn_sim(|config| config.delivered_after = Duration::from_millis(300)).await;
    t.sim.set_webhook_url(None);

    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.control_get_until("/__sim/stats", |stats| {
        stats["webhooks"]["skipped_no_url"] == 1
    })
    .await;
    t.sim.set_webhook_url(Some(t.hooks.url.clone()));
    let read = t.hooks.status_of(&wamid, "read").await;

    assert_eq!(read["id"], wamid.as_str());
    let messages = t.control_get("/__sim/messages").await;
    assert_eq!(
        messages["messages"][0]["statuses"][0]["status"], "sent",
        "recorded though not posted"
    );
}

#[tokio::test]
async fn malformed_control_requests_get_a_400_with_a_reason() {
    let t = spawn_sim(|_| {}).await;

    let response = t
        .http
        .post(format!("{}/__sim/inbound", t.sim.url()))
        .json(&json!({"from": "not-a-number", "text": "hi"}))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("json");

    assert_eq!(status, 400);
    assert!(body["error"].is_string());
}
