//! DESIGN.md's guarantees against the real daemon and both simulators: never sent twice (polls,
//! restarts, crashes, unknown outcomes), tokens expiring mid-run, Salesforce collections failing
//! per record or as a whole, frugal API use, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sfwa::app::App;
use sfwa::config::AuthMode;
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::store::journal::{self, JournalState};
use sfwa::store::{outbox, Store};
use sfwa_sim::salesforce::org::Transaction;
use sfwa_sim::whatsapp::WhatsAppSimConfig;
use tokio_util::sync::CancellationToken;

use crate::daemon_support::{eventually, spawn_app, spawn_app_with, Options, TestApp, MSG};

fn template(to: &str) -> Value {
    json!({"To_Phone__c": to, "Message_Type__c": "Template", "Template_Name__c": "hello_world"})
}

/// Client credentials: a JWT's `exp` is checked against the org's clock, which these tests shift.
fn client_credentials() -> Options {
    Options {
        tune: Box::new(|s| s.salesforce.auth = AuthMode::ClientCredentials),
        ..Options::default()
    }
}

/// Client credentials, and customers who take an hour to receive: after the `sent` statuses
/// nothing changes the outbox behind a flush's back (an enqueue during a flush keeps an item due).
fn quiet_after_sent() -> Options {
    Options {
        wa: WhatsAppSimConfig {
            delivered_after: Duration::from_secs(3600),
            ..WhatsAppSimConfig::default()
        },
        ..client_credentials()
    }
}

/// Delivers the webhooks due now — the `sent` statuses; `delivered` is an hour away — and asserts
/// that `count` of them reached the daemon (which stores a POST before answering it).
async fn sent_statuses_stored(app: &TestApp, count: u64) {
    app.deliver_due_webhooks().await;
    let stats = app.wa_stats().await;
    assert!(
        stats["webhooks"]["delivered"].as_u64().unwrap_or(0) >= count,
        "the `sent` statuses reached the daemon: {stats}"
    );
}

async fn outbox_depth(app: &TestApp) -> u64 {
    app.pipeline.core.store.read(outbox::depth).await.unwrap()
}

/// Journals `id` as if sfwa had crashed after committing `Sending` (the request may or may not
/// have reached Meta).
async fn crash_while_sending(app: &TestApp, id: &str, wa_id: &str) {
    let (id, number, wa_id) = (
        id.to_string(),
        app.wa.phone_number_id().to_string(),
        wa_id.to_string(),
    );
    let now = app.clock.now();
    app.pipeline
        .core
        .store
        .write(move |tx| {
            journal::claim(tx, &id.parse().unwrap(), now)?;
            journal::mark_sending(tx, &id.parse().unwrap(), &number, &wa_id, now)
        })
        .await
        .unwrap();
}

/// The request that reached Meta before the crash: a send carrying the record Id as the echo.
async fn meta_received_the_lost_request(app: &TestApp, id: &str, wa_id: &str) -> String {
    let response: Value = app
        .http
        .post(format!(
            "{}/{}/{}/messages",
            app.wa.url(),
            app.settings.whatsapp.api_version,
            app.wa.phone_number_id()
        ))
        .bearer_auth(app.wa.access_token())
        .json(&json!({
            "messaging_product": "whatsapp",
            "to": wa_id,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
            "biz_opaque_callback_data": id,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["messages"][0]["id"].as_str().unwrap().to_string()
}

fn calls(stats: &Value, endpoint: &str) -> u64 {
    stats["rest_calls"]["by_endpoint"][endpoint]
        .as_u64()
        .unwrap_or(0)
}

// ---- 1. Never sent twice -------------------------------------------------------------------

#[tokio::test]
async fn a_record_returned_by_repeated_polls_is_sent_once() {
    let app = spawn_app().await;
    let ids = app.queue(json!([template("+16505551234")])).await;

    let first = app.dispatch().await;
    let second = app.dispatch().await;

    assert_eq!(first.outcomes.len(), 1);
    assert!(
        second.outcomes.is_empty(),
        "the record is still Queued in Salesforce but already journaled: {second:?}"
    );
    app.status_after_webhooks(&ids[0], "Read").await;
    assert_eq!(app.wa_messages().await.len(), 1);
}

#[tokio::test]
async fn a_restart_mid_run_does_not_send_a_record_again() {
    let mut app = spawn_app().await;
    let ids = app.queue(json!([template("+16505551234")])).await;
    app.dispatch().await;

    app.restart().await;
    let after_restart = app.dispatch().await;

    assert!(after_restart.outcomes.is_empty(), "{after_restart:?}");
    app.status_after_webhooks(&ids[0], "Read").await;
    assert_eq!(app.wa_messages().await.len(), 1);
}

#[tokio::test]
async fn a_record_claimed_but_never_sent_is_sent_once() {
    let app = spawn_app().await;
    let ids = app.queue(json!([template("+16505551234")])).await;
    let (id, now) = (ids[0].clone(), app.clock.now());
    app.pipeline
        .core
        .store
        .write(move |tx| journal::claim(tx, &id.parse().unwrap(), now))
        .await
        .unwrap();

    app.dispatch().await;
    app.dispatch().await;

    app.status_after_webhooks(&ids[0], "Read").await;
    assert_eq!(app.wa_messages().await.len(), 1);
}

// ---- 2. Unknown outcome ----------------------------------------------------------------------

#[tokio::test]
async fn a_send_that_times_out_stays_sending_and_is_not_dispatched_again() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.whatsapp.timeout = Duration::from_millis(100)),
        ..Options::default()
    })
    .await;
    let ids = app.queue(json!([template("+16505551234")])).await;
    app.wa_control("faults", json!({"latency_ms": 400})).await;

    let step = app.dispatch().await;
    app.wa_control("faults", json!({"latency_ms": 0})).await;
    let again = app.dispatch().await;

    assert_eq!(step.outcomes, vec![DispatchOutcome::OutcomeUnknown]);
    assert!(again.outcomes.is_empty(), "{again:?}");
    let entry = app.journal(&ids[0]).await.unwrap();
    assert_ne!(entry.state, JournalState::Claimed, "never put back to send");
}

#[tokio::test]
async fn an_unknown_outcome_is_resolved_by_the_status_echo_and_never_resent() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| {
            s.salesforce.auth = AuthMode::ClientCredentials;
            s.dispatch.unknown_outcome_grace = Duration::from_secs(600);
        }),
        ..Options::default()
    })
    .await;
    let ids = app.queue(json!([template("+16505551234")])).await;
    crash_while_sending(&app, &ids[0], "16505551234").await;
    assert!(app.dispatch().await.outcomes.is_empty());
    assert_eq!(
        app.journal(&ids[0]).await.unwrap().state,
        JournalState::Sending
    );

    let wamid = meta_received_the_lost_request(&app, &ids[0], "16505551234").await;
    let record = app.status_after_webhooks(&ids[0], "Read").await;
    app.clock.shift(chrono::Duration::minutes(13));
    let past_grace = app.dispatch().await;

    assert_eq!(
        app.journal(&ids[0]).await.unwrap().wamid.as_deref(),
        Some(wamid.as_str())
    );
    assert_eq!(record["WhatsApp_Message_Id__c"], wamid.as_str());
    assert!(past_grace.outcomes.is_empty(), "{past_grace:?}");
    assert_eq!(past_grace.resolved_unknown, 0);
    assert_eq!(app.wa_messages().await.len(), 1, "only the lost request");
}

#[tokio::test]
async fn an_unknown_outcome_without_an_echo_is_resent_once_after_the_grace_period() {
    let app = spawn_app_with(client_credentials()).await;
    let ids = app.queue(json!([template("+16505551234")])).await;
    crash_while_sending(&app, &ids[0], "16505551234").await;
    assert!(
        app.dispatch().await.outcomes.is_empty(),
        "within the grace period"
    );

    app.clock.shift(chrono::Duration::minutes(13));
    let resent = app.dispatch().await;
    let after = app.dispatch().await;

    assert_eq!(resent.resolved_unknown, 1);
    assert!(
        matches!(resent.outcomes[..], [DispatchOutcome::Sent { .. }]),
        "{resent:?}"
    );
    assert!(after.outcomes.is_empty(), "{after:?}");
    app.status_after_webhooks(&ids[0], "Read").await;
    assert_eq!(app.wa_messages().await.len(), 1);
}

// ---- 7. Tokens expiring mid-run -------------------------------------------------------------

#[tokio::test]
async fn an_expired_salesforce_session_is_renewed_on_the_next_poll_and_flush() {
    let app = spawn_app().await;
    let ids = app.queue(json!([template("+16505551234")])).await;
    app.dispatch().await;

    app.org_control("sessions/expire", json!({})).await;
    let flushed = app.flush().await;
    app.org_control("sessions/expire", json!({})).await;
    let more = app.queue(json!([template("+16505551235")])).await;
    let polled = app.dispatch().await;

    assert!(flushed.written >= 1, "{flushed:?}");
    assert_eq!(polled.outcomes.len(), 1, "{polled:?}");
    app.status_after_webhooks(&ids[0], "Read").await;
    app.status_after_webhooks(&more[0], "Read").await;
}

#[tokio::test]
async fn an_expired_whatsapp_token_holds_sending_without_failing_anything() {
    let app = spawn_app_with(client_credentials()).await;
    let ids = app
        .queue(json!([template("+16505551234"), template("+16505551235")]))
        .await;
    app.wa_control("faults", json!({"token_expired": true}))
        .await;

    let held = app.dispatch().await;
    app.flush().await;

    assert!(
        held.outcomes.iter().all(|o| *o == DispatchOutcome::Held),
        "{held:?}"
    );
    for id in &ids {
        assert_eq!(app.journal(id).await.unwrap().state, JournalState::Claimed);
        assert_ne!(app.record(id)["Status__c"], "Failed");
    }

    app.wa_control("faults", json!({"token_expired": false}))
        .await;
    let still_held = app.dispatch().await;
    assert!(still_held
        .outcomes
        .iter()
        .all(|o| *o == DispatchOutcome::Held));
    app.clock.shift(chrono::Duration::seconds(61));
    let released = app.dispatch().await;

    assert_eq!(released.outcomes.len(), 2, "{released:?}");
    for id in &ids {
        app.status_after_webhooks(id, "Read").await;
    }
    assert_eq!(app.wa_messages().await.len(), 2);
}

// ---- 8. Collections partial failures ---------------------------------------------------------

#[tokio::test]
async fn locked_rows_are_retried_and_written_once_the_lock_is_gone() {
    let app = spawn_app_with(quiet_after_sent()).await;
    let ids = app
        .queue(json!([template("+16505551234"), template("+16505551235")]))
        .await;
    app.dispatch().await;
    // The `sent` webhooks merge into the pending write-backs; let them land first.
    sent_statuses_stored(&app, 2).await;
    app.org_control("faults", json!({"lock_row_rate": 1.0}))
        .await;

    let locked = app.flush().await;
    app.org_control("faults", json!({})).await;
    let not_due = app.flush().await;
    app.clock.shift(chrono::Duration::seconds(6));
    let retried = app.flush().await;

    assert_eq!((locked.written, locked.retried), (0, 2), "{locked:?}");
    assert_eq!(not_due.calls, 0, "backed off: {not_due:?}");
    assert_eq!(retried.written, 2, "{retried:?}");
    for id in &ids {
        assert_eq!(app.record(id)["Status__c"], "Sent");
    }
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_record_deleted_in_salesforce_drops_its_write_back_and_the_others_are_written() {
    let app = spawn_app_with(quiet_after_sent()).await;
    let ids = app
        .queue(json!([template("+16505551234"), template("+16505551235")]))
        .await;
    app.dispatch().await;
    sent_statuses_stored(&app, 2).await;
    app.org
        .state()
        .org()
        .delete(MSG, &ids[0], &mut Transaction::default())
        .unwrap();

    let flushed = app.flush().await;

    assert_eq!((flushed.written, flushed.dropped), (1, 1), "{flushed:?}");
    assert_eq!(app.record(&ids[1])["Status__c"], "Sent");
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_salesforce_outage_during_write_back_loses_nothing() {
    let app = spawn_app_with(quiet_after_sent()).await;
    let ids = app
        .queue(json!([
            template("+16505551234"),
            template("+16505551235"),
            template("+16505551236")
        ]))
        .await;
    app.dispatch().await;
    sent_statuses_stored(&app, 3).await;
    app.org_control("faults", json!({"error_503_rate": 1.0}))
        .await;

    let during = app.flush().await;
    let depth_during = outbox_depth(&app).await;
    app.org_control("faults", json!({})).await;
    app.clock.shift(chrono::Duration::seconds(11));
    let after = app.flush().await;

    assert_eq!(during.written, 0, "{during:?}");
    assert_eq!(depth_during, 3);
    assert_eq!(after.written, 3, "{after:?}");
    for id in &ids {
        let record = app.record(id);
        assert_eq!(record["Status__c"], "Sent", "{record}");
        assert!(record["Sent_At__c"].is_string(), "{record}");
    }
    assert_eq!(outbox_depth(&app).await, 0);
}

// ---- 9. Frugal with Salesforce API calls -----------------------------------------------------

#[tokio::test]
async fn four_hundred_fifty_messages_cost_a_handful_of_salesforce_calls() {
    const MESSAGES: usize = 450;
    let app = spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            throughput_per_second: 1000,
            delivered_after: Duration::from_millis(50),
            read_after: Duration::from_millis(50),
            webhook_batch: sfwa_sim::whatsapp::WebhookBatch {
                max_statuses: 100,
                linger: Duration::from_millis(20),
            },
            ..WhatsAppSimConfig::default()
        },
        tune: Box::new(|s| s.whatsapp.throughput_per_second = 1000),
        ..Options::default()
    })
    .await;
    let records: Vec<Value> = (1..=MESSAGES)
        .map(|i| template(&format!("+1650555{i:04}")))
        .collect();
    let ids = app.queue(Value::Array(records)).await;
    let before = app.org_stats().await;

    // The daemon's cycle: poll and send, then write back (a record stays Queued in Salesforce,
    // and keeps coming back in the oldest-first poll, until its write-back lands).
    let mut dispatched = 0;
    let mut cycles = 0;
    loop {
        let step = app.dispatch().await;
        if step.outcomes.is_empty() {
            break;
        }
        dispatched += step.outcomes.len();
        cycles += 1;
        let flushed = app.flush().await;
        assert!(flushed.calls <= 3, "cycle {cycles}: {flushed:?}");
    }
    app.deliver_webhooks().await;
    let read = app
        .pipeline
        .core
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM journal WHERE state = 'read'",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(read, MESSAGES as i64, "every message is read");
    let last_flush = app.flush().await;
    let after = app.org_stats().await;

    assert_eq!(dispatched, MESSAGES);
    assert!(last_flush.calls <= 3, "{last_flush:?}");
    let collections =
        calls(&after, "PATCH composite/sobjects") - calls(&before, "PATCH composite/sobjects");
    let total = after["rest_calls"]["total"].as_u64().unwrap()
        - before["rest_calls"]["total"].as_u64().unwrap();
    let per_message = total as f64 / MESSAGES as f64;
    println!(
        "frugal: {MESSAGES} messages, {cycles} send cycles, {total} REST calls \
         ({collections} collections), {per_message:.4} calls per message; by endpoint: {}",
        after["rest_calls"]["by_endpoint"]
    );
    assert!(
        collections <= 3 * (cycles as u64 + 1),
        "{collections} collections calls"
    );
    assert!(per_message < 0.05, "{per_message} calls per message");
    assert_eq!(app.record(&ids[MESSAGES - 1])["Status__c"], "Read");
    assert_eq!(outbox_depth(&app).await, 0);
}

// ---- 10. Graceful shutdown -------------------------------------------------------------------

#[tokio::test]
async fn a_cancelled_daemon_finishes_its_sends_and_flushes_the_outbox_before_returning() {
    let helper = spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            delivered_after: Duration::from_secs(3600),
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = helper.settings.clone();
    settings.store.path = dir.path().join("daemon.db");
    settings.intake.interval = Duration::from_millis(50);
    settings.writeback.flush_interval = Duration::from_millis(50);
    let app = App::build(settings.clone(), Arc::new(helper.clock.clone()))
        .await
        .unwrap();
    helper.wa.set_webhook_url(Some(app.webhook_url()));
    let ids = helper
        .queue(json!([
            template("+16505551234"),
            template("+16505551235"),
            template("+16505551236")
        ]))
        .await;
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    // Polled: the sends are made by the daemon's own intake and dispatch workers, running in the
    // spawned loop, not by a step this test drives.
    eventually("the three sends reached WhatsApp", || async {
        helper.wa_messages().await.len() == 3
    })
    .await;
    sent_statuses_stored(&helper, 3).await;
    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), daemon).await;

    stopped
        .expect("stops promptly")
        .expect("task")
        .expect("run_until_stopped returns Ok");
    for id in &ids {
        let record = helper.record(id);
        assert_eq!(record["Status__c"], "Sent", "{record}");
        assert!(record["Sent_At__c"].is_string(), "{record}");
    }
    let store = Store::open(&settings.store.path).unwrap();
    assert_eq!(store.read(outbox::depth).await.unwrap(), 0);
}

#[tokio::test]
async fn a_backlog_larger_than_one_poll_drains_without_waiting_for_the_poll_interval() {
    let helper = spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            delivered_after: Duration::from_secs(3600),
            throughput_per_second: 1000,
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = helper.settings.clone();
    settings.store.path = dir.path().join("daemon.db");
    settings.whatsapp.throughput_per_second = 1000;
    settings.intake.mode = sfwa::config::IntakeMode::Poll;
    settings.intake.batch_size = 50;
    // Far longer than the test: only draining can move records past the first page.
    settings.intake.interval = Duration::from_secs(3600);
    settings.writeback.flush_interval = Duration::from_secs(3600);
    let app = App::build(settings, Arc::new(helper.clock.clone()))
        .await
        .unwrap();
    helper.wa.set_webhook_url(Some(app.webhook_url()));
    let records: Vec<serde_json::Value> = (0..180)
        .map(|i| template(&format!("+1650555{:04}", 2000 + i)))
        .collect();
    helper.queue(json!(records)).await;
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    // Polled: the daemon's own workers drain the backlog in the spawned loop.
    eventually("all 180 records reached WhatsApp", || async {
        helper.wa_messages().await.len() == 180
    })
    .await;
    shutdown.cancel();
    daemon.await.unwrap().unwrap();

    let stats = helper.org_stats().await;
    assert_eq!(
        stats["rest_calls"]["by_endpoint"]["GET query"], 5,
        "the number leases at start, then four polls of 50: 50, 50, 50, 30"
    );
}
