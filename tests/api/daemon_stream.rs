//! Stream intake: platform events over CometD from the org simulator (Flow emulation publishes
//! `WhatsApp_Outbound__e` for each Queued record), the daemon's real client, durable replay ids.
//! Tests drive `StreamIntake::step` (one long poll, held 200 ms when idle) until a deadline.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use sfwa::pipeline::stream::{StepError, StreamIntake, StreamStep};
use sfwa::salesforce::{CometdError, ReplayFrom};

use std::sync::Arc;

use sfwa::app::App;
use tokio_util::sync::CancellationToken;

use crate::daemon_support::{eventually, spawn_app_with, Options, TestApp, DEADLINE};

fn stream_options() -> Options {
    let mut options = Options::default();
    options.org.connect_timeout = Duration::from_millis(200);
    options
}

fn templates(n: usize, first: usize) -> Value {
    json!((0..n)
        .map(|i| json!({"To_Phone__c": format!("+1650555{:04}", first + i), "Message_Type__c": "Template", "Template_Name__c": "hello_world"}))
        .collect::<Vec<_>>())
}

/// Steps until `sent` messages reached WhatsApp in total (failing the test after DEADLINE):
/// a stream delivery arrives when the org publishes it, so this steps rather than waits.
async fn step_until_sent(app: &TestApp, intake: &mut StreamIntake, sent: usize) -> Vec<StreamStep> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut steps = Vec::new();
    while app.wa_messages().await.len() < sent {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {sent} sent",
            app.wa_messages().await.len()
        );
        steps.push(intake.step(&app.pipeline).await.expect("stream step"));
    }
    steps
}

async fn query_calls(app: &TestApp) -> u64 {
    app.org_stats().await["rest_calls"]["by_endpoint"]["GET query"]
        .as_u64()
        .unwrap_or(0)
}

/// Every record sent exactly once.
async fn assert_sent_once(app: &TestApp, ids: &[String]) {
    let messages = app.wa_messages().await;
    let sent: Vec<String> = messages
        .iter()
        .map(|m| m["biz_opaque_callback_data"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(sent.len(), unique.len(), "a record was sent twice");
    for id in ids {
        assert!(unique.contains(id), "{id} was never sent");
    }
}

#[tokio::test]
async fn a_shutdown_during_the_long_poll_ends_the_step_and_loses_no_event() {
    // Arrange
    let app = spawn_app_with(stream_options()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap(); // subscribed; nothing yet
    let ids = app.queue(templates(1, 3000)).await;
    let shutdown = CancellationToken::new();
    shutdown.cancel();

    // Act: the step the running daemon takes, with shutdown asked for.
    let stopped = intake.step_until(&app.pipeline, &shutdown).await.unwrap();

    // Assert: nothing was received or sent; the next step (a restart) still gets the event.
    assert!(stopped.is_none(), "{stopped:?}");
    assert!(app.wa_messages().await.is_empty());
    step_until_sent(&app, &mut intake, 1).await;
    assert_sent_once(&app, &ids).await;
}

#[tokio::test]
async fn events_bring_records_to_whatsapp_without_any_soql_poll() {
    let app = spawn_app_with(stream_options()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap(); // subscribed; nothing yet

    let idle_calls = query_calls(&app).await;
    let ids = app.queue(templates(30, 1000)).await;
    let steps = step_until_sent(&app, &mut intake, 30).await;

    assert_eq!(idle_calls, 0, "an idle stream costs no REST call");
    let fetches = query_calls(&app).await;
    let steps_with_events = steps.iter().filter(|s| s.events > 0).count() as u64;
    assert_eq!(
        fetches, steps_with_events,
        "one SOQL fetch per batch of events, no poll"
    );
    assert!(fetches <= 2, "30 events cost {fetches} queries");
    assert_sent_once(&app, &ids).await;
    app.status_after_webhooks(&ids[0], "Read").await;
}

#[tokio::test]
async fn a_restarted_daemon_resumes_after_the_last_journaled_event_and_sends_nothing_twice() {
    let mut app = spawn_app_with(stream_options()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    let first = app.queue(templates(5, 1100)).await;
    step_until_sent(&app, &mut intake, 5).await;
    drop(intake); // killed: no disconnect, no goodbye

    let second = app.queue(templates(5, 1200)).await;
    app.restart().await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    assert!(matches!(intake.resume_point(), ReplayFrom::After(_)));
    step_until_sent(&app, &mut intake, 10).await;

    assert_sent_once(&app, &[first, second].concat()).await;
}

#[tokio::test]
async fn events_whose_records_could_not_be_fetched_are_replayed_after_a_crash() {
    let mut app = spawn_app_with(stream_options()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap();
    let ids = app.queue(templates(3, 1300)).await;
    app.org_control("faults", json!({"error_503_rate": 1.0}))
        .await;

    // Events arrive, but the SOQL fetch fails: nothing is journaled, the replay id stays put.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match intake.step(&app.pipeline).await {
            Err(StepError::Intake(_)) if intake.pending() > 0 => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "events never came"),
        }
    }
    drop(intake); // crash with the events in memory only
    app.org_control("faults", json!({})).await;
    app.restart().await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    step_until_sent(&app, &mut intake, 3).await;

    assert_sent_once(&app, &ids).await;
}

#[tokio::test]
async fn a_forgotten_streaming_client_handshakes_again_and_loses_no_event() {
    let app = spawn_app_with(stream_options()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap();

    app.org_control("streaming/drop-clients", json!({})).await;
    let ids = app.queue(templates(2, 1400)).await;
    let error = intake.step(&app.pipeline).await.unwrap_err();
    assert!(
        matches!(error, StepError::Stream(CometdError::UnknownClient)),
        "{error}"
    );
    assert_eq!(intake.recover(&app.pipeline, error).await, None);
    step_until_sent(&app, &mut intake, 2).await;

    assert_sent_once(&app, &ids).await;
}

#[tokio::test]
async fn an_expired_session_on_the_stream_logs_in_again_and_resumes() {
    let app = spawn_app_with(stream_options()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap();

    app.org_control("sessions/expire", json!({})).await;
    let ids = app.queue(templates(2, 1500)).await;
    let error = intake.step(&app.pipeline).await.unwrap_err();
    assert!(
        matches!(error, StepError::Stream(CometdError::AuthInvalid)),
        "{error}"
    );
    assert_eq!(intake.recover(&app.pipeline, error).await, None);
    step_until_sent(&app, &mut intake, 2).await;

    assert_sent_once(&app, &ids).await;
}

#[tokio::test]
async fn a_stale_replay_id_falls_back_to_all_retained_events_and_reconciles_the_rest() {
    let mut options = stream_options();
    options.tune = Box::new(|s| {
        // The JWT's expiry is checked against the simulator's (shifted) clock.
        s.salesforce.auth = sfwa::config::AuthMode::ClientCredentials;
    });
    let mut app = spawn_app_with(options).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    let first = app.queue(templates(1, 1600)).await;
    step_until_sent(&app, &mut intake, 1).await;
    drop(intake);

    // Down for four days: the record queued meanwhile has its event purged (72 h retention).
    let missed = app.queue(templates(1, 1700)).await;
    app.clock.shift(chrono::Duration::hours(96));
    app.restart().await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    let error = intake.step(&app.pipeline).await.unwrap_err();
    assert!(
        matches!(error, StepError::Stream(CometdError::StaleReplay { .. })),
        "{error}"
    );
    intake.recover(&app.pipeline, error).await;

    assert_eq!(intake.resume_point(), ReplayFrom::All);
    assert_sent_once(&app, &[first, missed].concat()).await;
    intake
        .step(&app.pipeline)
        .await
        .expect("subscribed again from -2");
}

#[tokio::test]
async fn a_scheduled_message_is_published_by_the_flow_when_its_time_comes_and_sent_then() {
    let mut options = stream_options();
    options.tune = Box::new(|s| s.salesforce.auth = sfwa::config::AuthMode::ClientCredentials);
    let app = spawn_app_with(options).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap();
    let at = app.clock.now() + chrono::Duration::minutes(30);
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551800", "Message_Type__c": "Template", "Template_Name__c": "hello_world",
            "Scheduled_At__c": sfwa::domain::message::format_salesforce_datetime(at)}]))
        .await;

    // The Flow's scheduled path waits: one long poll (200 ms) brings nothing.
    let early = intake.step(&app.pipeline).await.unwrap();
    app.clock.shift(chrono::Duration::minutes(31));
    // Half an hour idle: Salesforce has forgotten the streaming client, which handshakes again.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut events = 0;
    while app.wa_messages().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never sent");
        match intake.step(&app.pipeline).await {
            Ok(step) => events += step.events,
            Err(error) => {
                intake.recover(&app.pipeline, error).await;
            }
        }
    }

    assert_eq!(early.events, 0);
    assert_eq!(events, 1);
    assert_sent_once(&app, &ids).await;
}

#[tokio::test]
async fn a_record_requeued_after_failing_unsent_is_sent_from_its_event() {
    // Arrange: refused before sending (window closed), written back as Failed.
    let app = spawn_app_with(stream_options()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551801", "Message_Type__c": "Text", "Body__c": "hi"}]))
        .await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while intake.step(&app.pipeline).await.unwrap().events == 0 {
        assert!(tokio::time::Instant::now() < deadline);
    }
    app.status_after_webhooks(&ids[0], "Failed").await;
    app.customer_wrote("16505551801", 1).await;

    // Act: the admin sets it back to Queued; the Flow publishes again.
    let response = app
        .http
        .patch(format!(
            "{}/__sim/records/WhatsApp_Message__c/{}",
            app.org.url(),
            ids[0]
        ))
        .json(&json!({"Status__c": "Queued"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    step_until_sent(&app, &mut intake, 1).await;

    // Assert
    assert_sent_once(&app, &ids).await;
}

#[tokio::test]
async fn the_running_daemon_in_stream_mode_sends_and_writes_back_without_polling() {
    let helper = spawn_app_with(stream_options()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = helper.settings.clone();
    settings.store.path = dir.path().join("daemon.db");
    settings.writeback.flush_interval = Duration::from_millis(50);
    let app = App::build(settings, Arc::new(helper.clock.clone()))
        .await
        .unwrap();
    helper.wa.set_webhook_url(Some(app.webhook_url()));
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let ids = helper.queue(templates(3, 1900)).await;

    // Polled: intake, dispatch, the simulator's webhook worker and the write-back all run on
    // their own in the spawned daemon; this test only watches the end result.
    eventually("the three records show Read", || async {
        ids.iter()
            .all(|id| helper.record(id)["Status__c"] == "Read")
    })
    .await;
    shutdown.cancel();
    daemon.await.unwrap().unwrap();

    let queries = query_calls(&helper).await;
    assert!(
        (1..=3).contains(&queries),
        "fetches only, no polls: {queries}"
    );
    assert_sent_once(&helper, &ids).await;
}
