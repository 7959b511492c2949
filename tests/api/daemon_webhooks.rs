//! The daemon's webhook receiver against the WhatsApp simulator and hand-made POSTs: statuses only
//! move forward, duplicates are no-ops, forged or oversized POSTs change nothing, inbound messages
//! open the window (reactions do not), and a 131047 that still comes back corrects the mirror.

use std::time::Duration;

use serde_json::{json, Value};
use sfwa::domain::ids::{BusinessNumberId, CustomerId};
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::store::journal::JournalState;
use sfwa::store::{inbound, outbox};
use sfwa_sim::whatsapp::{signature, WhatsAppSimConfig};

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp};

const CUSTOMER: &str = "16505551234";

fn template() -> Value {
    json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}])
}

fn text(body: &str) -> Value {
    json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Text", "Body__c": body}])
}

fn webhook_url(app: &TestApp) -> String {
    app.wa.webhook_url().expect("the daemon is registered")
}

async fn outbox_depth(app: &TestApp) -> u64 {
    app.pipeline.core.store.read(outbox::depth).await.unwrap()
}

async fn mirror(app: &TestApp, wa_id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let (number, wa_id): (BusinessNumberId, CustomerId) = (
        app.wa.phone_number_id().parse().unwrap(),
        wa_id.parse().unwrap(),
    );
    app.pipeline
        .core
        .store
        .read(move |c| inbound::last_inbound(c, &number, &wa_id))
        .await
        .unwrap()
}

/// Meta's envelope around one `value`.
fn envelope(app: &TestApp, value: Value) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({
        "display_phone_number": "15550000000",
        "phone_number_id": app.wa.phone_number_id(),
    });
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": app.wa.waba_id(), "changes": [{"field": "messages", "value": value}]}],
    }))
    .unwrap()
}

fn failed_status(app: &TestApp, record_id: &str, wamid: &str, code: i64) -> Vec<u8> {
    let timestamp = app.clock.now().timestamp().to_string();
    envelope(
        app,
        json!({"statuses": [{
            "id": wamid,
            "status": "failed",
            "timestamp": timestamp,
            "recipient_id": CUSTOMER,
            "biz_opaque_callback_data": record_id,
            "errors": [{"code": code, "title": "Re-engagement message", "message": "Re-engagement message",
                        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}],
        }]}),
    )
}

fn inbound_text(app: &TestApp, from: &str) -> Vec<u8> {
    envelope(
        app,
        json!({
            "contacts": [{"profile": {"name": "Mallory"}, "wa_id": from}],
            "messages": [{"from": from, "id": "wamid.FORGED", "timestamp": app.clock.now().timestamp().to_string(),
                          "type": "text", "text": {"body": "let me in"}}],
        }),
    )
}

async fn post(app: &TestApp, body: Vec<u8>, signature: Option<String>) -> reqwest::StatusCode {
    let mut request = app
        .http
        .post(webhook_url(app))
        .header("content-type", "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.send().await.unwrap().status()
}

// ---- 3. Statuses only move forward; duplicates are no-ops ------------------------------------

#[tokio::test]
async fn duplicated_and_out_of_order_webhooks_end_at_read_and_never_regress() {
    let app = spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            webhook_duplicate_rate: 1.0,
            webhook_out_of_order: true,
            delivered_after: Duration::from_millis(30),
            read_after: Duration::from_millis(30),
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    })
    .await;
    let ids = app.queue(template()).await;

    app.dispatch().await;
    app.status_after_webhooks(&ids[0], "Read").await;
    let stats = app.wa_stats().await;
    assert!(
        stats["webhooks"]["duplicated"].as_u64().unwrap_or(0) >= 3
            && stats["webhooks"]["delivered"].as_u64().unwrap_or(0) >= 6,
        "every status webhook (and its duplicate) was delivered: {stats}"
    );
    app.flush().await;

    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Read", "{record}");
    assert!(record["Delivered_At__c"].is_string(), "{record}");
    assert_eq!(
        app.journal(&ids[0]).await.unwrap().state,
        JournalState::Read
    );
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_failed_webhook_after_delivered_changes_nothing() {
    let app = spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            customers_read: false,
            delivered_after: Duration::from_millis(30),
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    })
    .await;
    let ids = app.queue(template()).await;
    app.dispatch().await;
    let delivered = app.status_after_webhooks(&ids[0], "Delivered").await;
    let wamid = delivered["WhatsApp_Message_Id__c"].as_str().unwrap();

    let body = failed_status(&app, &ids[0], wamid, 131026);
    let sig = signature(&body, app.wa.app_secret());
    let status = post(&app, body, Some(sig)).await;
    app.flush().await;

    assert_eq!(status, 200);
    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Delivered", "{record}");
    assert!(record["Error_Code__c"].is_null(), "{record}");
    assert!(record["Failed_At__c"].is_null(), "{record}");
    assert_eq!(
        app.journal(&ids[0]).await.unwrap().state,
        JournalState::Delivered
    );
    assert_eq!(outbox_depth(&app).await, 0);
}

// ---- 4. Forged webhooks ----------------------------------------------------------------------

#[tokio::test]
async fn unsigned_or_wrongly_signed_webhooks_get_401_and_change_nothing() {
    let app = spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            delivered_after: Duration::from_secs(3600),
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    })
    .await;
    let ids = app.queue(template()).await;
    app.dispatch().await;
    let sent = app.status_after_flush(&ids[0], "Sent").await;
    let wamid = sent["WhatsApp_Message_Id__c"].as_str().unwrap().to_string();
    app.deliver_due_webhooks().await;
    let delivered = app.wa_stats().await["webhooks"]["delivered"].clone();
    assert!(
        delivered.as_u64().unwrap_or(0) >= 1,
        "the `sent` webhook was stored: {delivered}"
    );
    app.flush().await;
    let journal_before = app.journal(&ids[0]).await.unwrap();
    let record_before = app.record(&ids[0]);

    let forged_status = failed_status(&app, &ids[0], &wamid, 131026);
    let unsigned = post(&app, forged_status.clone(), None).await;
    let wrong_secret = post(
        &app,
        forged_status.clone(),
        Some(signature(&forged_status, "not-the-app-secret")),
    )
    .await;
    let garbage = post(&app, forged_status, Some("sha256=00ff".into())).await;
    let forged_inbound = inbound_text(&app, "16505559999");
    let inbound_wrong = post(
        &app,
        forged_inbound.clone(),
        Some(signature(&forged_inbound, "not-the-app-secret")),
    )
    .await;

    assert_eq!(
        [unsigned, wrong_secret, garbage, inbound_wrong],
        [401, 401, 401, 401]
    );
    assert_eq!(app.journal(&ids[0]).await.unwrap(), journal_before);
    assert_eq!(outbox_depth(&app).await, 0);
    assert_eq!(app.record(&ids[0]), record_before);
    assert_eq!(mirror(&app, "16505559999").await, None);
}

#[tokio::test]
async fn the_verification_handshake_answers_the_challenge_only_to_the_right_token() {
    let app = spawn_app().await;
    let get = |token: String| {
        let app = &app;
        async move {
            let response = app
                .http
                .get(webhook_url(app))
                .query(&[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", token.as_str()),
                    ("hub.challenge", "1158201444"),
                ])
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    let right = get(app.wa.verify_token().to_string()).await;
    let wrong = get("guessed".to_string()).await;
    let by_meta: Value = app.wa_control("webhook/verify", json!({})).await;

    assert_eq!(right, (reqwest::StatusCode::OK, "1158201444".to_string()));
    assert_eq!(wrong.0, 403);
    assert_ne!(wrong.1, "1158201444");
    assert_eq!(by_meta["verified"], true, "{by_meta}");
}

#[tokio::test]
async fn a_webhook_body_over_the_limit_gets_413() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.webhook.max_body_bytes = 4096),
        ..Options::default()
    })
    .await;
    let mut body = inbound_text(&app, CUSTOMER);
    body.extend(vec![b' '; 8192]);
    let sig = signature(&body, app.wa.app_secret());

    let status = post(&app, body, Some(sig)).await;

    assert_eq!(status, 413);
    assert_eq!(mirror(&app, CUSTOMER).await, None);
}

// ---- 5. Inbound opens the window -------------------------------------------------------------

#[tokio::test]
async fn an_inbound_message_opens_the_window_and_a_text_then_goes_out() {
    let app = spawn_app().await;
    assert_eq!(mirror(&app, CUSTOMER).await, None);

    app.customer_wrote(CUSTOMER, 0).await;
    let ids = app.queue(text("Thanks for writing")).await;
    let step = app.dispatch().await;

    assert!(
        matches!(step.outcomes[..], [DispatchOutcome::Sent { .. }]),
        "{step:?}"
    );
    app.status_after_webhooks(&ids[0], "Read").await;
}

#[tokio::test]
async fn a_reaction_does_not_open_the_window() {
    let app = spawn_app().await;
    app.wa_control(
        "inbound",
        json!({"from": CUSTOMER, "type": "reaction", "message_id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI", "emoji": "👍"}),
    )
    .await;
    app.deliver_webhooks().await;
    let delivered = app.wa_stats().await["webhooks"]["delivered"].clone();
    assert!(
        delivered.as_u64().unwrap_or(0) >= 1,
        "the reaction webhook reached the daemon: {delivered}"
    );

    let ids = app.queue(text("hello?")).await;
    let step = app.dispatch().await;

    assert_eq!(mirror(&app, CUSTOMER).await, None);
    assert_eq!(
        step.outcomes,
        vec![DispatchOutcome::Refused {
            code: "OUTSIDE_SESSION_WINDOW".into()
        }]
    );
    app.status_after_webhooks(&ids[0], "Failed").await;
    assert!(app.wa_messages().await.is_empty());
}

// ---- 6. A 131047 that still comes back -------------------------------------------------------

#[tokio::test]
async fn a_131047_from_meta_fails_the_record_and_closes_the_window_in_the_mirror() {
    let app = spawn_app().await;
    // The mirror believes the customer wrote an hour ago; Meta never saw that message.
    let (number, customer, an_hour_ago): (BusinessNumberId, CustomerId, _) = (
        app.wa.phone_number_id().parse().unwrap(),
        CUSTOMER.parse().unwrap(),
        app.clock.now() - chrono::Duration::hours(1),
    );
    app.pipeline
        .core
        .store
        .write(move |tx| inbound::record_inbound(tx, &number, &customer, an_hour_ago))
        .await
        .unwrap();
    let first = app.queue(text("Your order shipped")).await;

    let step = app.dispatch().await;
    let record = app.status_after_webhooks(&first[0], "Failed").await;

    assert!(
        matches!(step.outcomes[..], [DispatchOutcome::Sent { .. }]),
        "Meta accepts, then fails: {step:?}"
    );
    assert_eq!(
        record["Error_Code__c"], "OUTSIDE_SESSION_WINDOW",
        "{record}"
    );
    assert!(record["Error_Message__c"]
        .as_str()
        .unwrap()
        .contains("template"));
    let corrected = mirror(&app, CUSTOMER).await.unwrap();
    assert!(
        corrected <= app.clock.now() - chrono::Duration::hours(24),
        "window closed in the mirror: {corrected}"
    );

    let second = app.queue(text("Did you get it?")).await;
    let next = app.dispatch().await;

    assert_eq!(
        next.outcomes,
        vec![DispatchOutcome::Refused {
            code: "OUTSIDE_SESSION_WINDOW".into()
        }]
    );
    app.status_after_webhooks(&second[0], "Failed").await;
    assert_eq!(app.wa_messages().await.len(), 1, "only the first text");
}

// ---- A bad event costs only itself (issue 10) -------------------------------------------------

async fn rejects(app: &TestApp) -> Vec<sfwa::store::webhook_rejects::WebhookReject> {
    app.pipeline
        .core
        .store
        .read(|c| sfwa::store::webhook_rejects::list(c, 100))
        .await
        .unwrap()
}

fn inbound_message(app: &TestApp, wamid: &str, timestamp: &str, body: &str) -> Value {
    let _ = app;
    json!({"from": CUSTOMER, "id": wamid, "timestamp": timestamp, "type": "text", "text": {"body": body}})
}

#[tokio::test]
async fn a_post_with_a_poisonous_event_applies_the_rest_and_dead_letters_that_one() {
    let app = spawn_app().await;
    let now = app.clock.now();
    let seconds = now.timestamp().to_string();
    let millis = now.timestamp_millis().to_string();
    let body = envelope(
        &app,
        json!({"messages": [
            inbound_message(&app, "wamid.GOOD", &seconds, "fine"),
            inbound_message(&app, "wamid.MILLIS", &millis, "stamped in milliseconds"),
            inbound_message(&app, "wamid.YEAR5138", "99999999999", "poison"),
        ]}),
    );
    let sig = signature(&body, app.wa.app_secret());

    let status = post(&app, body, Some(sig)).await;
    let flushed = app.flush().await;

    assert_eq!(status, 200);
    let refused = rejects(&app).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].reason, "bad_timestamp");
    assert!(refused[0].event.contains("wamid.YEAR5138"));
    assert!(
        refused[0].detail.contains("1700-4000"),
        "{}",
        refused[0].detail
    );
    assert_eq!(flushed.written, 2, "{flushed:?}");
    assert_eq!(outbox_depth(&app).await, 0, "nothing left behind");
    let records = app
        .org
        .state()
        .org()
        .rows(crate::daemon_support::MSG)
        .filter(|r| r["Direction__c"] == "Inbound")
        .map(|r| {
            (
                r["WhatsApp_Message_Id__c"].clone(),
                r["Received_At__c"].clone(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().all(|(_, at)| at
            .as_str()
            .is_some_and(|a| a.starts_with(&now.format("%Y-").to_string()))),
        "{records:?}"
    );
    let metrics = app.metrics.render(&Default::default());
    assert!(
        metrics.contains(r#"sfwa_webhook_events_rejected_total{reason="bad_timestamp"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_lone_surrogate_in_a_customers_text_is_stored_as_a_replacement_character() {
    let app = spawn_app().await;
    let seconds = app.clock.now().timestamp().to_string();
    let body = String::from_utf8(envelope(
        &app,
        json!({"messages": [inbound_message(&app, "wamid.HALF", &seconds, "half an emoji: SURROGATE")]}),
    ))
    .unwrap()
    .replace("SURROGATE", "\\ud83d");
    let body = body.into_bytes();
    let sig = signature(&body, app.wa.app_secret());

    let status = post(&app, body, Some(sig)).await;
    app.flush().await;

    assert_eq!(status, 200);
    let record = app
        .org
        .state()
        .org()
        .rows(crate::daemon_support::MSG)
        .find(|r| r["WhatsApp_Message_Id__c"] == "wamid.HALF")
        .map(|r| r["Body__c"].clone());
    assert_eq!(record, Some(json!("half an emoji: \u{fffd}")));
    assert!(rejects(&app).await.is_empty());
}

#[tokio::test]
async fn a_signed_body_that_is_not_whatsapps_gets_a_400_that_echoes_at_most_200_characters() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&json!({"object": "x".repeat(1_000_000), "entry": []})).unwrap();
    let sig = signature(&body, app.wa.app_secret());

    let response = app
        .http
        .post(webhook_url(&app))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.len() < 400, "{} bytes", text.len());
    assert!(text.contains("xxx…"), "{text}");
}

#[tokio::test]
async fn a_redelivered_poisonous_event_is_one_dead_letter_seen_twice() {
    let app = spawn_app().await;
    let body = envelope(
        &app,
        json!({"statuses": [{"id": "w".repeat(129), "status": "read", "timestamp": app.clock.now().timestamp().to_string()}]}),
    );
    let sig = signature(&body, app.wa.app_secret());

    let first = post(&app, body.clone(), Some(sig.clone())).await;
    let again = post(&app, body, Some(sig)).await;

    assert_eq!((first.as_u16(), again.as_u16()), (200, 200));
    let refused = rejects(&app).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].reason, "value_too_long");
    assert_eq!(refused[0].times_seen, 2);
}

#[tokio::test]
async fn events_at_chronos_limits_that_bypass_the_parser_still_apply_without_a_panic() {
    use chrono::{DateTime, Utc};
    use sfwa::domain::webhook_event::{InboundKind, InboundMessage, ParsedWebhook, WebhookEvent};
    use sfwa::pipeline::webhook_apply;
    let app = spawn_app().await;
    let message = |wamid: &str, at: DateTime<Utc>, kind: InboundKind| {
        WebhookEvent::Inbound(InboundMessage::new(
            wamid.parse().unwrap(),
            app.wa.phone_number_id().parse().unwrap(),
            CUSTOMER.parse().unwrap(),
            at,
            kind,
        ))
    };
    let parsed = ParsedWebhook {
        events: vec![
            message(
                "wamid.LATEST",
                DateTime::<Utc>::MAX_UTC,
                InboundKind::Text { body: "x".into() },
            ),
            message(
                "wamid.REACTION",
                DateTime::<Utc>::MAX_UTC,
                InboundKind::Reaction {
                    message_id: "wamid.LATEST".into(),
                    emoji: Some("👍".into()),
                },
            ),
            message(
                "wamid.EARLIEST",
                DateTime::<Utc>::MIN_UTC,
                InboundKind::Text { body: "y".into() },
            ),
        ],
        ..ParsedWebhook::default()
    };

    let applied = webhook_apply::apply(&app.pipeline.core, parsed)
        .await
        .expect("stored");

    assert_eq!(applied.inbound, 3);
    assert!(applied.rejected.is_empty(), "{:?}", applied.rejected);
    assert_eq!(outbox_depth(&app).await, 3);
}

#[tokio::test]
async fn a_status_echoing_an_id_of_another_object_or_a_record_missing_from_the_journal_writes_nothing(
) {
    let app = spawn_app().await;
    app.queue(template()).await;
    app.dispatch().await;
    // Its own statuses stored now, so none lands behind the flush below.
    app.deliver_webhooks().await;
    let restored = app
        .seed(
            crate::daemon_support::MSG,
            json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template",
                    "Template_Name__c": "hello_world", "Status__c": "Sent"}]),
        )
        .await
        .remove(0);
    let contact = "003000000000001AAA";
    let status = |wamid: &str, echo: &str| {
        json!({"id": wamid, "status": "delivered", "recipient_id": CUSTOMER,
               "timestamp": app.clock.now().timestamp().to_string(), "biz_opaque_callback_data": echo})
    };
    let body = envelope(
        &app,
        json!({"statuses": [status("wamid.OTHER_TOOL", contact), status("wamid.RESTORED", &restored)]}),
    );
    let sig = signature(&body, app.wa.app_secret());

    let answer = post(&app, body, Some(sig)).await;
    app.flush().await;

    assert_eq!(answer, 200);
    // Trusted only when the journal knows the record (one this instance sent): a record it does
    // not know (a store restored from backup, another instance's message) is not written to.
    assert!(app.record(&restored)["Delivered_At__c"].is_null());
    assert_eq!(app.record(&restored)["Status__c"], "Sent");
    let dead = app
        .pipeline
        .core
        .store
        .read(|c| outbox::dead_letters(c, 10))
        .await
        .unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_refused_webhook_event_is_shown_to_operators_by_doctor_and_the_dead_letter_list() {
    let app = spawn_app().await;
    let body = envelope(
        &app,
        json!({"messages": [inbound_message(&app, "wamid.YEAR5138", "99999999999", "poison")]}),
    );
    let sig = signature(&body, app.wa.app_secret());
    assert_eq!(post(&app, body, Some(sig)).await, 200);

    let checks = sfwa::doctor::check(&app.settings).await;
    let listed = sfwa::pipeline::dead_letters::run(
        &app.pipeline.core.store,
        sfwa::pipeline::dead_letters::Action::List,
        outbox::Selection::Keys(Vec::new()),
        app.clock.now(),
    )
    .await
    .unwrap();

    let line = checks
        .iter()
        .find(|c| c.name == "Refused webhook events")
        .unwrap_or_else(|| panic!("no line for refused webhook events: {checks:#?}"));
    assert!(
        matches!(&line.outcome, sfwa::doctor::Outcome::Info(text) if text.contains("1 event(s)") && text.contains("bad_timestamp 1")),
        "{line:?}"
    );
    assert!(sfwa::doctor::all_passed(&checks), "{checks:#?}");
    assert!(listed.contains("1 webhook event(s) refused"), "{listed}");
    assert!(listed.contains("wamid.YEAR5138"), "{listed}");
}
