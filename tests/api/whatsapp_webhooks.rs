//! The simulator's webhooks: status lifecycles, the customer-service window, inbound messages, and
//! delivery behaviour (signature, retries, batching, duplicates, order).

use std::time::Duration;

use serde_json::json;

use crate::whatsapp_support::{assert_whatsapp_error, spawn_sim, template_to, text_to, CUSTOMER};

const REENGAGEMENT_DETAILS: &str = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.";

#[tokio::test]
async fn accepted_text_is_reported_sent_then_delivered_then_read_in_metas_envelope() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.customer_writes(CUSTOMER, "hi").await;
    let mut body = text_to(CUSTOMER, "Hello");
    body["biz_opaque_callback_data"] = json!("a01XXXXXXXXXXXXAAA");

    // Act
    let wamid = t.send_ok(&body).await;
    let sent = t.hooks.next().await;
    let delivered = t.hooks.next_status().await;
    let read = t.hooks.next_status().await;

    // Assert
    assert_eq!(sent.content_type, "application/json");
    assert_eq!(sent.body["object"], "whatsapp_business_account");
    let entry = &sent.body["entry"][0];
    assert_eq!(entry["id"], t.sim.waba_id());
    assert_eq!(entry["changes"][0]["field"], "messages");
    let value = &entry["changes"][0]["value"];
    assert_eq!(value["messaging_product"], "whatsapp");
    assert_eq!(
        value["metadata"],
        json!({"display_phone_number": t.sim.config().display_phone_number,
               "phone_number_id": t.sim.phone_number_id()})
    );
    let status = &value["statuses"][0];
    assert_eq!(status["id"], wamid.as_str());
    assert_eq!(status["status"], "sent");
    assert_eq!(status["recipient_id"], CUSTOMER);
    assert_eq!(status["biz_opaque_callback_data"], "a01XXXXXXXXXXXXAAA");
    assert_eq!(
        status["pricing"],
        json!({"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"})
    );
    assert!(status.get("conversation").is_none());
    assert!(status.get("errors").is_none());
    let now = t.sim.clock().now().timestamp();
    let stamp: i64 = status["timestamp"]
        .as_str()
        .expect("string timestamp")
        .parse()
        .expect("unix seconds");
    assert!((now - stamp).abs() <= 2);
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(read["status"], "read");
    assert_eq!(read["biz_opaque_callback_data"], "a01XXXXXXXXXXXXAAA");
}

#[tokio::test]
async fn text_to_a_customer_who_never_wrote_is_accepted_then_fails_with_131047() {
    let mut t = spawn_sim(|_| {}).await;

    let wamid = t.send_ok(&text_to(CUSTOMER, "Hello")).await;
    let failed = t.hooks.next_status().await;

    assert_eq!(failed["id"], wamid.as_str());
    assert_eq!(failed["status"], "failed");
    assert!(failed.get("pricing").is_none());
    assert_eq!(
        failed["errors"],
        json!([{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                "error_data": {"details": REENGAGEMENT_DETAILS}}])
    );
    assert!(
        t.hooks.quiet_for(Duration::from_millis(150)).await,
        "no sent/delivered after failed"
    );
}

#[tokio::test]
async fn text_to_a_customer_whose_last_message_is_25_hours_old_fails_with_131047() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.customer_writes(CUSTOMER, "hi").await;
    t.control_post("/__sim/clock", &json!({"shift_seconds": 90_000}))
        .await;

    // Act
    t.send_ok(&text_to(CUSTOMER, "Hello")).await;
    let status = t.hooks.next_status().await;

    // Assert
    assert_eq!(status["status"], "failed");
    assert_eq!(status["errors"][0]["code"], 131047);
}

#[tokio::test]
async fn window_violation_is_a_synchronous_400_when_configured() {
    let mut t = spawn_sim(|config| config.window_violation_sync = true).await;

    let (status, answer) = t.send(&text_to(CUSTOMER, "Hello")).await;

    let error = assert_whatsapp_error(status, &answer, 131047, "Re-engagement message");
    assert_eq!(error["error_data"]["details"], REENGAGEMENT_DETAILS);
    assert!(t.hooks.quiet_for(Duration::from_millis(100)).await);
}

#[tokio::test]
async fn template_outside_the_window_is_delivered_and_billed() {
    let mut t = spawn_sim(|_| {}).await;

    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let sent = t.hooks.next_status().await;
    let delivered = t.hooks.status_of(&wamid, "delivered").await;

    assert_eq!(sent["status"], "sent");
    assert_eq!(
        sent["pricing"],
        json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"})
    );
    assert_eq!(delivered["id"], wamid.as_str());
}

#[tokio::test]
async fn number_not_on_whatsapp_is_accepted_then_fails_with_131026() {
    let mut t = spawn_sim(|_| {}).await;
    t.control_post(
        "/__sim/faults",
        &json!({"not_on_whatsapp": ["+447700900123"]}),
    )
    .await;

    let by_suffix = t
        .send_ok(&template_to("16505550000", "hello_world", json!([])))
        .await;
    let first = t.hooks.next_status().await;
    let by_control = t
        .send_ok(&template_to("447700900123", "hello_world", json!([])))
        .await;
    let second = t.hooks.next_status().await;

    for (status, wamid) in [(first, by_suffix), (second, by_control)] {
        assert_eq!(status["id"], wamid.as_str());
        assert_eq!(status["status"], "failed");
        assert_eq!(status["errors"][0]["code"], 131026);
        assert_eq!(status["errors"][0]["title"], "Message undeliverable");
    }
}

#[tokio::test]
async fn inbound_text_produces_metas_inbound_webhook_and_opens_the_window() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;

    // Act
    let answer = t
        .control_post(
            "/__sim/inbound",
            &json!({"from": CUSTOMER, "type": "text", "text": "Does it come in another color?",
                    "name": "Sheena Nelson", "timestamp": 1_749_416_383}),
        )
        .await;
    let delivery = t.hooks.next().await;
    // The timestamp above is in the past, so write again "now" to open the window for the send.
    t.customer_writes(CUSTOMER, "still there?").await;
    let wamid = t.send_ok(&text_to(CUSTOMER, "Yes, in blue")).await;
    let status = t.hooks.next_status().await;

    // Assert
    assert_eq!(delivery.body["object"], "whatsapp_business_account");
    let value = &delivery.body["entry"][0]["changes"][0]["value"];
    // Since 2026 Meta names every sender by BSUID too (`user_id`, `from_user_id`).
    let user_id = answer["user_id"].as_str().expect("the customer's BSUID");
    assert_eq!(
        value["contacts"],
        json!([{"profile": {"name": "Sheena Nelson"}, "wa_id": CUSTOMER, "user_id": user_id}])
    );
    let message = &value["messages"][0];
    assert_eq!(message["from"], CUSTOMER);
    assert_eq!(message["from_user_id"], user_id);
    assert_eq!(message["id"], answer["wamid"]);
    assert!(message["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("wamid.")));
    assert_eq!(message["timestamp"], "1749416383");
    assert_eq!(message["type"], "text");
    assert_eq!(
        message["text"],
        json!({"body": "Does it come in another color?"})
    );
    assert_eq!(status["id"], wamid.as_str());
    assert_eq!(status["status"], "sent");
}

#[tokio::test]
async fn inbound_button_image_and_reaction_have_metas_shapes() {
    let mut t = spawn_sim(|_| {}).await;

    t.control_post(
        "/__sim/inbound",
        &json!({"from": CUSTOMER, "type": "button", "payload": "CONFIRM", "text": "Yes",
                "context_message_id": "wamid.abc"}),
    )
    .await;
    let button = t.hooks.next_value().await;
    t.control_post(
        "/__sim/inbound",
        &json!({"from": CUSTOMER, "type": "image", "id": "1234567890", "mime_type": "image/png",
                "sha256": "abc=", "caption": "my receipt"}),
    )
    .await;
    let image = t.hooks.next_value().await;
    t.control_post(
        "/__sim/inbound",
        &json!({"from": CUSTOMER, "type": "reaction", "message_id": "wamid.xyz", "emoji": "👍"}),
    )
    .await;
    let reaction = t.hooks.next_value().await;

    assert_eq!(
        button["messages"][0]["button"],
        json!({"payload": "CONFIRM", "text": "Yes"})
    );
    assert_eq!(button["messages"][0]["context"]["id"], "wamid.abc");
    assert_eq!(
        image["messages"][0]["image"],
        json!({"id": "1234567890", "mime_type": "image/png", "sha256": "abc=", "caption": "my receipt"})
    );
    assert_eq!(reaction["messages"][0]["type"], "reaction");
    assert_eq!(
        reaction["messages"][0]["reaction"],
        json!({"message_id": "wamid.xyz", "emoji": "👍"})
    );
}

#[tokio::test]
async fn a_reaction_alone_does_not_open_the_window() {
    let mut t = spawn_sim(|_| {}).await;
    t.control_post(
        "/__sim/inbound",
        &json!({"from": CUSTOMER, "type": "reaction", "message_id": "wamid.xyz", "emoji": "👍"}),
    )
    .await;
    t.hooks.next().await;

    t.send_ok(&text_to(CUSTOMER, "Thanks for the thumbs up"))
        .await;
    let status = t.hooks.next_status().await;

    assert_eq!(status["status"], "failed");
    assert_eq!(status["errors"][0]["code"], 131047);
}

#[tokio::test]
async fn webhook_refused_by_the_receiver_is_retried_until_accepted() {
    // Only one update in flight, so both refusals hit it.
    let mut t = spawn_sim(|config| config.delivered_after = Duration::from_secs(30)).await;
    t.hooks.fail_next(2);

    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let sent = t.hooks.next_status().await;

    assert_eq!(sent["id"], wamid.as_str());
    assert_eq!(sent["status"], "sent");
    let stats = t.control_get("/__sim/stats").await;
    assert_eq!(stats["webhooks"]["retried"], 2);
    assert!(t.hooks.attempts() >= 3);
}

#[tokio::test]
async fn webhook_is_given_up_after_the_configured_attempts() {
    let mut t = spawn_sim(|config| {
        config.webhook_retry.max_attempts = 2;
        config.customers_read = false;
        config.delivered_after = Duration::from_millis(200);
    })
    .await;
    t.hooks.fail_next(2);

    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let next = t.hooks.next_status().await;

    assert_eq!(next["id"], wamid.as_str());
    assert_eq!(
        next["status"], "delivered",
        "the sent update was dropped after 2 attempts"
    );
    let stats = t.control_get("/__sim/stats").await;
    assert_eq!(stats["webhooks"]["failed"], 1);
}

#[tokio::test]
async fn statuses_due_together_are_batched_into_one_post() {
    let mut t = spawn_sim(|config| {
        config.webhook_batch.max_statuses = 10;
        config.webhook_batch.linger = Duration::from_millis(100);
        config.delivered_after = Duration::from_secs(30);
    })
    .await;

    let mut wamids = Vec::new();
    for to in ["16505550001", "16505550002", "16505550003"] {
        wamids.push(t.send_ok(&template_to(to, "hello_world", json!([]))).await);
    }
    let value = t.hooks.next_value().await;

    let statuses = value["statuses"].as_array().expect("statuses");
    let ids: Vec<_> = statuses
        .iter()
        .map(|status| status["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, wamids);
    assert!(statuses.iter().all(|status| status["status"] == "sent"));
}

#[tokio::test]
async fn with_duplicate_rate_one_every_webhook_arrives_twice() {
    let mut t = spawn_sim(|config| {
        config.webhook_duplicate_rate = 1.0;
        config.delivered_after = Duration::from_secs(30);
    })
    .await;

    t.send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let first = t.hooks.next().await;
    let second = t.hooks.next().await;

    assert_eq!(first.body, second.body);
}

#[tokio::test]
async fn out_of_order_mode_reports_read_before_delivered() {
    let mut t = spawn_sim(|config| config.webhook_out_of_order = true).await;

    t.send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let order = [
        t.hooks.next_status().await["status"].clone(),
        t.hooks.next_status().await["status"].clone(),
        t.hooks.next_status().await["status"].clone(),
    ];

    assert_eq!(order, [json!("sent"), json!("read"), json!("delivered")]);
}

#[tokio::test]
async fn stop_ends_pending_webhook_deliveries_promptly() {
    let mut t = spawn_sim(|config| config.delivered_after = Duration::from_secs(60)).await;
    t.send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.hooks.next().await;

    let stopped = tokio::time::timeout(Duration::from_secs(2), t.sim.stop()).await;

    assert!(stopped.is_ok(), "stop waits for a 60 s delivery");
}

#[tokio::test]
async fn a_customer_set_not_to_read_gets_delivered_but_never_read() {
    let mut t = spawn_sim(|_| {}).await;
    let reader = "16505559876";
    t.customer_writes(CUSTOMER, "hi").await;
    t.customer_writes(reader, "hi").await;
    t.control_post(
        "/__sim/customers/reads",
        &json!({"wa_id": CUSTOMER, "reads": false}),
    )
    .await;

    let unread = t.send_ok(&text_to(CUSTOMER, "Your quote")).await;
    let read = t.send_ok(&text_to(reader, "Your quote")).await;
    let mut seen = Vec::new();
    loop {
        let value = t.hooks.next_value().await;
        for status in value["statuses"].as_array().into_iter().flatten() {
            seen.push((
                status["id"].as_str().unwrap().to_string(),
                status["status"].as_str().unwrap().to_string(),
            ));
        }
        // The reader's read was scheduled after the non-reader's would have been.
        if seen.contains(&(read.clone(), "read".to_string())) {
            break;
        }
    }

    assert!(seen.contains(&(unread.clone(), "delivered".to_string())));
    assert!(!seen.contains(&(unread, "read".to_string())));
}

// ---- Delivering scheduled webhooks now (tests drive webhooks instead of waiting) ------------

/// `(id, status)` of each status, in order.
fn id_and_status(statuses: &[serde_json::Value]) -> Vec<(String, String)> {
    statuses
        .iter()
        .map(|status| {
            (
                status["id"].as_str().unwrap_or("").to_owned(),
                status["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn webhooks_scheduled_an_hour_ahead_are_delivered_at_once_by_deliver_now() {
    // Arrange
    let mut t = spawn_sim(|config| {
        config.delivered_after = Duration::from_secs(3600);
        config.read_after = Duration::from_secs(3600);
    })
    .await;
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.hooks.status_of(&wamid, "sent").await;

    // Act
    let delivered = t.sim.deliver_webhooks_now().await;

    // Assert
    assert_eq!(delivered.events, 2, "{delivered:?}");
    assert_eq!(delivered.posts, 2, "{delivered:?}");
    assert_eq!(delivered.statuses, vec![Some(200), Some(200)]);
    assert_eq!(
        id_and_status(&t.hooks.statuses_received_so_far()),
        [
            (wamid.clone(), "delivered".to_owned()),
            (wamid, "read".to_owned())
        ],
        "already received when deliver_now returns, in due order"
    );
}

#[tokio::test]
async fn webhooks_delivered_now_are_not_sent_again_by_the_worker_when_they_fall_due() {
    // Arrange
    let mut t = spawn_sim(|config| {
        config.delivered_after = Duration::from_millis(150);
        config.read_after = Duration::from_millis(150);
    })
    .await;
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.hooks.status_of(&wamid, "sent").await;

    // Act
    let delivered = t.sim.deliver_webhooks_now().await;
    let received = t.hooks.statuses_received_so_far();
    // Past both due times: the worker would have sent them by now.
    let quiet = t.hooks.quiet_for(Duration::from_millis(600)).await;

    // Assert
    assert_eq!(delivered.events, 2, "{delivered:?}");
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(quiet, "the worker sent a delivered webhook again");
    let stats = t.control_get("/__sim/stats").await;
    assert_eq!(stats["webhooks"]["delivered"], 3, "sent, delivered, read");
}

#[tokio::test]
async fn the_deliver_control_on_an_empty_outbox_answers_zero() {
    let t = spawn_sim(|_| {}).await;

    let answer = t.control_post("/__sim/webhooks/deliver", &json!({})).await;

    assert_eq!(answer, json!({"events": 0, "posts": 0, "statuses": []}));
}

#[tokio::test]
async fn the_deliver_control_posts_scheduled_webhooks_and_answers_their_statuses() {
    // Arrange
    let mut t = spawn_sim(|config| {
        config.delivered_after = Duration::from_secs(3600);
        config.customers_read = false;
    })
    .await;
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.hooks.status_of(&wamid, "sent").await;

    // Act
    let answer = t.control_post("/__sim/webhooks/deliver", &json!({})).await;

    // Assert
    assert_eq!(answer, json!({"events": 1, "posts": 1, "statuses": [200]}));
    assert_eq!(
        id_and_status(&t.hooks.statuses_received_so_far()),
        [(wamid, "delivered".to_owned())]
    );
}

#[tokio::test]
async fn the_deliver_control_refuses_an_unknown_option() {
    let t = spawn_sim(|_| {}).await;

    let response = t
        .http
        .post(format!("{}/__sim/webhooks/deliver", t.sim.url()))
        .json(&json!({"due_onyl": true}))
        .send()
        .await
        .expect("control request");

    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn delivering_due_webhooks_sends_sent_and_leaves_delivered_for_later() {
    // Arrange
    let mut t = spawn_sim(|config| {
        config.delivered_after = Duration::from_secs(3600);
        config.customers_read = false;
    })
    .await;
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;

    // Act
    let due = t
        .control_post("/__sim/webhooks/deliver", &json!({"due_only": true}))
        .await;
    let received = t.hooks.statuses_received_so_far();
    let rest = t.sim.deliver_webhooks_now().await;

    // Assert
    assert!(due["events"].as_u64().unwrap_or(9) <= 1, "{due}");
    assert_eq!(
        id_and_status(&received),
        [(wamid.clone(), "sent".to_owned())],
        "the worker's or this call's: either way received before the call returned"
    );
    assert_eq!(rest.events, 1, "{rest:?}");
    assert_eq!(
        id_and_status(&t.hooks.statuses_received_so_far()),
        [(wamid, "delivered".to_owned())]
    );
}

#[tokio::test]
async fn deliver_now_retries_a_refused_post_as_the_worker_would() {
    // Arrange
    let mut t = spawn_sim(|config| {
        config.delivered_after = Duration::from_secs(3600);
        config.customers_read = false;
    })
    .await;
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.hooks.status_of(&wamid, "sent").await;
    t.hooks.fail_next(2);

    // Act
    let delivered = t.sim.deliver_webhooks_now().await;

    // Assert
    assert_eq!(delivered.statuses, vec![Some(200)]);
    let stats = t.control_get("/__sim/stats").await;
    assert_eq!(stats["webhooks"]["retried"], 2);
    assert_eq!(t.hooks.statuses_received_so_far().len(), 1);
}

#[tokio::test]
async fn deliver_now_answers_the_last_status_of_a_post_given_up() {
    let mut t = spawn_sim(|config| {
        config.delivered_after = Duration::from_secs(3600);
        config.customers_read = false;
        config.webhook_retry.max_attempts = 2;
    })
    .await;
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    t.hooks.status_of(&wamid, "sent").await;
    t.hooks.fail_next(2);

    let delivered = t.sim.deliver_webhooks_now().await;

    assert_eq!(delivered.statuses, vec![Some(500)]);
    assert!(t.hooks.statuses_received_so_far().is_empty());
}

#[tokio::test]
async fn deliver_now_returns_only_once_the_workers_own_posts_are_answered() {
    // Arrange: the worker takes `sent` at once and has its POST refused, then retries.
    let mut t = spawn_sim(|config| {
        config.delivered_after = Duration::from_secs(3600);
        config.customers_read = false;
        config.webhook_retry.initial_backoff = Duration::from_millis(200);
    })
    .await;
    t.hooks.fail_next(1);
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let deadline = tokio::time::Instant::now() + crate::whatsapp_support::DEADLINE;
    while t.hooks.attempts() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never posted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Act
    let delivered = t.sim.deliver_webhooks_now().await;

    // Assert
    assert_eq!(delivered.events, 1, "only `delivered` was still scheduled");
    let mut received = id_and_status(&t.hooks.statuses_received_so_far());
    received.sort();
    assert_eq!(
        received,
        [
            (wamid.clone(), "delivered".to_owned()),
            (wamid, "sent".to_owned())
        ],
        "the worker's retried `sent` was awaited too"
    );
}
