//! Scheduled jobs and `sfwa sync` against both simulators, on the shared controllable clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use sfwa::app::{build_pipeline, scheduled_jobs};
use sfwa::domain::message::format_salesforce_datetime;
use sfwa::pipeline::jobs;
use sfwa::progress::Progress;
use sfwa::scheduler::Scheduler;

use crate::daemon_support::{spawn_app, spawn_app_with, Options, MSG};

const CUSTOMER: &str = "16505551234";

#[tokio::test]
async fn sync_sends_what_is_allowed_writes_every_outcome_back_and_reports_healthy() {
    // No status webhooks during the pass (not even `sent`, which could land between two flushes
    // and add a write), so the counts are exact.
    let mut options = Options::default();
    options.wa.delivered_after = std::time::Duration::from_secs(600);
    let app = spawn_app_with(options).await;
    app.wa.set_webhook_url(None);
    let ids = app
        .queue(json!([
            {"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"},
            {"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Text", "Body__c": "no window"},
            {"To_Phone__c": "not a phone", "Message_Type__c": "Text", "Body__c": "bad"},
        ]))
        .await;

    let summary = jobs::sync_once(&app.pipeline).await;

    assert!(summary.healthy(), "{summary}");
    assert_eq!(
        (summary.sends.sent, summary.sends.failed),
        (1, 2),
        "{summary}"
    );
    assert_eq!(summary.written, 3, "{summary}");
    assert_eq!(app.record(&ids[0])["Status__c"], "Sent");
    assert_eq!(
        app.record(&ids[1])["Error_Code__c"],
        "OUTSIDE_SESSION_WINDOW"
    );
    assert_eq!(app.record(&ids[2])["Error_Code__c"], "INVALID_PHONE");
    let text = summary.to_string();
    assert!(text.contains("1 sent, 2 failed"), "{text}");
}

/// Counts what `sync_once_with` reports.
#[derive(Default)]
struct Counted {
    fetched: AtomicUsize,
    dispatched: AtomicUsize,
    written: AtomicUsize,
}

impl Progress for Counted {
    fn fetched(&self, records: usize) {
        self.fetched.fetch_add(records, Ordering::Relaxed);
    }
    fn dispatched(&self, records: usize) {
        self.dispatched.fetch_add(records, Ordering::Relaxed);
    }
    fn written(&self, records: usize) {
        self.written.fetch_add(records, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn sync_tells_its_progress_observer_every_record_fetched_sent_and_written_back() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.intake.batch_size = 2),
        ..Options::default()
    })
    .await;
    let records: Vec<_> = (0..5)
        .map(|i| json!({"To_Phone__c": format!("+1650555120{i}"), "Message_Type__c": "Template", "Template_Name__c": "hello_world"}))
        .collect();
    app.queue(json!(records)).await;
    let progress = Counted::default();

    let summary = jobs::sync_once_with(&app.pipeline, &progress).await;

    assert_eq!(summary.sends.sent, 5, "{summary}");
    // Three pages (2 + 2 + 1), each flushed before the next; receipts that arrive meanwhile are
    // written back too, so more records may be written than were sent.
    let count = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    assert_eq!(count(&progress.fetched), summary.sends.fetched);
    assert_eq!(count(&progress.dispatched), 5);
    assert!(count(&progress.written) >= 5);
}

#[tokio::test]
async fn sync_reports_a_salesforce_outage_and_loses_nothing() {
    let app = spawn_app().await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;
    app.org_control("faults", json!({"error_503_rate": 1.0}))
        .await;

    let summary = jobs::sync_once(&app.pipeline).await;

    assert!(!summary.healthy());
    assert!(summary.salesforce_error.is_some(), "{summary}");
    assert!(summary
        .to_string()
        .contains("Salesforce could not be reached"));
    app.org_control("faults", json!({})).await;
    let again = jobs::sync_once(&app.pipeline).await;
    assert!(again.healthy(), "{again}");
    assert_eq!(again.sends.sent, 1);
    app.status_after_webhooks(&ids[0], "Read").await;
}

#[tokio::test]
async fn sync_reports_whatsapp_unreachable_and_keeps_the_message_queued_for_a_retry() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.whatsapp.api_base = "http://127.0.0.1:9".into()),
        ..Options::default()
    })
    .await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;

    let summary = jobs::sync_once(&app.pipeline).await;

    assert!(!summary.healthy());
    assert!(summary.sends.whatsapp_trouble);
    assert_eq!(summary.sends.waiting, 1, "{summary}");
    assert_ne!(app.record(&ids[0])["Status__c"], "Failed");
    let journal = app.journal(&ids[0]).await.unwrap();
    assert!(journal.next_attempt_at.is_some(), "a retry is scheduled");
}

#[tokio::test]
async fn sync_beside_a_running_daemon_on_the_same_store_never_sends_a_record_twice() {
    let app = spawn_app().await;
    let records: Vec<_> = (0..60)
        .map(|i| json!({"To_Phone__c": format!("+1650555{:04}", 2000 + i), "Message_Type__c": "Template", "Template_Name__c": "hello_world"}))
        .collect();
    app.queue(json!(records)).await;
    let other = build_pipeline(app.settings.clone(), Arc::new(app.clock.clone())).unwrap();

    tokio::join!(app.dispatch(), jobs::sync_once(&other));
    // A dispatch that erred or timed out under load leaves its record for a later pass.
    let deadline = tokio::time::Instant::now() + crate::daemon_support::DEADLINE;
    while distinct_records_in(&app.wa_messages().await) < 60 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every record was sent"
        );
        app.dispatch().await;
    }

    let messages = app.wa_messages().await;
    assert_eq!(messages.len(), 60, "each record sent exactly once");
}

fn distinct_records_in(messages: &[serde_json::Value]) -> usize {
    let mut ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["biz_opaque_callback_data"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

#[tokio::test]
async fn the_sync_command_prints_its_summary_and_exits_non_zero_when_salesforce_is_down() {
    let app = spawn_app().await;
    app.queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sfwa.toml");
    std::fs::write(&config, app.config_toml(&dir.path().join("sync.db"))).unwrap();
    let sync = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sfwa"))
            .args(["sync", "--config"])
            .arg(&config)
            .env("RUST_LOG", "error")
            .output()
    };

    let healthy = sync().await.unwrap();
    app.org_control("faults", json!({"error_503_rate": 1.0}))
        .await;
    let outage = sync().await.unwrap();

    let stdout = String::from_utf8_lossy(&healthy.stdout);
    assert!(healthy.status.success(), "{stdout}");
    assert!(stdout.contains("1 sent"), "{stdout}");
    assert!(
        stdout.contains("1 records updated in Salesforce"),
        "{stdout}"
    );
    assert_eq!(outage.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&outage.stdout).contains("Salesforce could not be reached"));
}

#[tokio::test]
async fn the_scheduled_sends_job_sends_a_message_only_once_its_time_has_come() {
    let app = spawn_app().await;
    let at = app.clock.now() + Duration::hours(1);
    let ids = app
        .queue(
            json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template",
            "Template_Name__c": "hello_world", "Scheduled_At__c": format_salesforce_datetime(at)}]),
        )
        .await;

    let early = jobs::scheduled_sends(&app.pipeline).await.unwrap();
    app.clock.shift(Duration::minutes(61));
    let due = jobs::scheduled_sends(&app.pipeline).await.unwrap();

    assert_eq!(early.fetched, 0);
    assert_eq!(due.sent, 1, "{due}");
    app.status_after_webhooks(&ids[0], "Read").await;
}

#[tokio::test]
async fn the_reconcile_job_drains_a_backlog_larger_than_one_page() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.intake.batch_size = 20),
        ..Options::default()
    })
    .await;
    let records: Vec<_> = (0..50)
        .map(|i| json!({"To_Phone__c": format!("+1650555{:04}", 3000 + i), "Message_Type__c": "Template", "Template_Name__c": "hello_world"}))
        .collect();
    app.queue(json!(records)).await;

    let summary = jobs::reconcile(&app.pipeline).await.unwrap();

    assert_eq!(summary.sent, 50, "{summary}");
    assert_eq!(app.wa_messages().await.len(), 50);
}

#[tokio::test]
async fn an_inbound_record_from_another_tool_opens_the_window_after_the_mirror_job() {
    let app = spawn_app().await;
    let wrote_at = app.clock.now() - Duration::hours(2);
    let old = app.clock.now() - Duration::hours(30);
    // The customer writes, but the webhook goes to another system, which records it in Salesforce.
    let our_webhook = app.wa.webhook_url();
    app.wa.set_webhook_url(None);
    app.wa_control(
        "inbound",
        json!({"from": CUSTOMER, "type": "text", "text": "hi", "timestamp": wrote_at.timestamp()}),
    )
    .await;
    app.wa.set_webhook_url(our_webhook);
    app.seed(
        MSG,
        json!([
            {"Direction__c": "Inbound", "Status__c": "Received", "From_Phone__c": "(650) 555-1234",
             "Received_At__c": format_salesforce_datetime(wrote_at), "WhatsApp_Message_Id__c": "wamid.other-tool-1"},
            {"Direction__c": "Inbound", "Status__c": "Received", "From_Phone__c": "+1 650 555 9999",
             "Received_At__c": format_salesforce_datetime(old), "WhatsApp_Message_Id__c": "wamid.other-tool-2"},
            {"Direction__c": "Inbound", "Status__c": "Received", "From_Phone__c": "call me",
             "Received_At__c": format_salesforce_datetime(wrote_at)},
        ]),
    )
    .await;

    let summary = jobs::inbound_mirror(&app.pipeline.intake).await.unwrap();
    let ids = app
        .queue(json!([
            {"To_Phone__c": "+16505551234", "Message_Type__c": "Text", "Body__c": "inside the window"},
            {"To_Phone__c": "+16505559999", "Message_Type__c": "Text", "Body__c": "outside"},
        ]))
        .await;
    app.dispatch().await;

    assert_eq!(
        (summary.read, summary.folded, summary.unusable),
        (2, 1, 1),
        "{summary}"
    );
    app.status_after_webhooks(&ids[0], "Read").await;
    assert_eq!(
        app.record(&ids[1])["Error_Code__c"],
        "OUTSIDE_SESSION_WINDOW"
    );
}

#[tokio::test]
async fn after_its_first_run_the_inbound_mirror_reads_only_records_saved_since_the_last_run() {
    // Arrange: another tool records a customer writing, ten minutes later a second, ten minutes
    // after that a third; the mirror runs after each.
    let app = spawn_app().await;
    let inbound = |phone: &str, wamid: &str| {
        let at = format_salesforce_datetime(app.clock.now() - Duration::hours(2));
        json!([{"Direction__c": "Inbound", "Status__c": "Received", "From_Phone__c": phone,
                "Received_At__c": at, "WhatsApp_Message_Id__c": wamid}])
    };
    let modstamp = |id: &str| {
        sfwa::domain::message::parse_salesforce_datetime(
            app.record(id)["SystemModstamp"].as_str().unwrap(),
        )
    };
    let first = app.seed(MSG, inbound("+16505550001", "wamid.tool-1")).await;
    let first_run = jobs::inbound_mirror(&app.pipeline.intake).await.unwrap();
    app.clock.shift(Duration::minutes(10));
    let second = app.seed(MSG, inbound("+16505550002", "wamid.tool-2")).await;
    let second_run = jobs::inbound_mirror(&app.pipeline.intake).await.unwrap();

    // Act: the third customer wrote to WhatsApp, whose webhook went to the other tool.
    app.clock.shift(Duration::minutes(10));
    let our_webhook = app.wa.webhook_url();
    app.wa.set_webhook_url(None);
    let wrote_at = app.clock.now() - Duration::hours(2);
    app.wa_control(
        "inbound",
        json!({"from": "16505550003", "type": "text", "text": "hi", "timestamp": wrote_at.timestamp()}),
    )
    .await;
    app.wa.set_webhook_url(our_webhook);
    app.seed(MSG, inbound("+16505550003", "wamid.tool-3")).await;
    let third_run = jobs::inbound_mirror(&app.pipeline.intake).await.unwrap();

    // Assert: the first run read the whole day; each later one what was saved since the last
    // run's newest record less the lookback (which holds that newest record), not the first.
    let since = |id: &str| modstamp(id).map(|at| at - jobs::MIRROR_LOOKBACK);
    assert_eq!(
        (first_run.read, first_run.saved_since),
        (1, None),
        "{first_run}"
    );
    assert_eq!(
        (second_run.read, second_run.saved_since),
        (2, since(&first[0])),
        "{second_run}"
    );
    assert_eq!(
        (third_run.read, third_run.folded, third_run.saved_since),
        (2, 2, since(&second[0])),
        "{third_run}"
    );
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505550003", "Message_Type__c": "Text", "Body__c": "hi"}]))
        .await;
    app.dispatch().await;
    app.status_after_webhooks(&ids[0], "Read").await;
}

#[tokio::test]
async fn a_bsuid_only_inbound_record_from_another_tool_opens_that_customers_window_after_the_mirror_job(
) {
    // Arrange: a username customer (phone withheld) wrote 2 h ago to another system, which
    // recorded the message in Salesforce by BSUID alone.
    let app = spawn_app().await;
    let wrote_at = app.clock.now() - Duration::hours(2);
    let customer = app
        .wa_control(
            "customers",
            json!({"wa_id": CUSTOMER, "username": "lee.k", "last_inbound_at": wrote_at.timestamp()}),
        )
        .await;
    let user_id = customer["user_id"].as_str().expect("a BSUID").to_string();
    app.seed(
        MSG,
        json!([{"Direction__c": "Inbound", "Status__c": "Received", "From_User_Id__c": user_id,
                "From_Username__c": "lee.k", "Received_At__c": format_salesforce_datetime(wrote_at),
                "WhatsApp_Message_Id__c": "wamid.other-tool-bsuid"}]),
    )
    .await;

    // Act
    let summary = jobs::inbound_mirror(&app.pipeline.intake).await.unwrap();
    let ids = app
        .queue(json!([{"To_User_Id__c": user_id, "Message_Type__c": "Text",
                       "Body__c": "inside the window"}]))
        .await;
    app.dispatch().await;

    // Assert
    assert_eq!(
        (summary.read, summary.folded, summary.unusable),
        (1, 1, 0),
        "{summary}"
    );
    app.status_after_webhooks(&ids[0], "Read").await;
    let sent = app.wa_messages().await;
    assert_eq!(
        sent[0]["request"]["recipient"],
        user_id.as_str(),
        "{sent:?}"
    );
}

#[tokio::test]
async fn the_retention_job_deletes_finished_work_older_than_the_settings_and_keeps_the_rest() {
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;
    app.dispatch().await;
    app.status_after_webhooks(&ids[0], "Read").await;

    let soon = jobs::retention(&app.pipeline.core).await.unwrap();
    app.clock.shift(Duration::days(31));
    let later = jobs::retention(&app.pipeline.core).await.unwrap();

    assert_eq!(soon.journal_rows + soon.webhook_keys, 0);
    assert_eq!(later.journal_rows, 1, "{later}");
    // The inbound message's key; its statuses were remembered on the journal row, deleted above.
    assert!(later.webhook_keys >= 1, "the inbound key: {later}");
    assert!(app.journal(&ids[0]).await.is_none());
}

#[tokio::test]
async fn retention_deletes_a_backlog_of_old_rows_a_bounded_write_at_a_time() {
    // Arrange: 1,201 dedupe keys past the retention, and one that is not.
    let app = spawn_app().await;
    let store = &app.pipeline.core.store;
    let long_ago = app.clock.now() - Duration::days(30);
    let now = app.clock.now();
    store
        .write(move |tx| {
            for i in 0..1201 {
                sfwa::store::dedupe::first_seen(tx, &format!("status:wamid.{i}:read"), long_ago)?;
            }
            sfwa::store::dedupe::first_seen(tx, "status:wamid.new:read", now)?;
            Ok(())
        })
        .await
        .unwrap();
    let writes_before = app.store_writes();

    // Act
    let summary = jobs::retention(&app.pipeline.core).await.unwrap();

    // Assert: every old key is gone and the new one kept, the keys in writes of 500, 500 and 201
    // (each other table in one write that found nothing) — no write holds the store's writer,
    // which every webhook's answer waits for, for the whole backlog.
    assert_eq!(summary.webhook_keys, 1201, "{summary}");
    assert_eq!(jobs::RETENTION_ROWS_PER_WRITE, 500);
    assert_eq!(app.store_writes() - writes_before, 3 + 3);
    let left = store
        .read(|conn| {
            Ok((
                sfwa::store::dedupe::seen(conn, "status:wamid.0:read")?,
                sfwa::store::dedupe::seen(conn, "status:wamid.new:read")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(left, (false, true));
}

#[tokio::test]
async fn the_daemon_schedules_the_configured_jobs_on_its_clock() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| {
            // The JWT's expiry is checked against the simulator's (shifted) clock.
            s.salesforce.auth = sfwa::config::AuthMode::ClientCredentials;
            s.schedule.retention = String::new();
            s.schedule.reconcile = "0 */5 * * * *".into();
            s.schedule.scheduled_sends = "0 */15 * * * *".into();
            s.schedule.inbound_mirror = "30 */10 * * * *".into();
            s.schedule.relink = "45 */15 * * * *".into();
        }),
        ..Options::default()
    })
    .await;
    let jobs = scheduled_jobs(&app.pipeline).unwrap();
    let names: Vec<_> = jobs.iter().map(|j| j.name().to_string()).collect();
    let mut scheduler = Scheduler::new(Arc::new(app.clock.clone()), jobs);
    app.queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;

    // Every job's first time is at most 15 minutes away, whatever the time of day.
    app.clock.shift(Duration::minutes(16));
    let tick = scheduler.tick();
    scheduler.idle().await;

    assert_eq!(
        names,
        ["reconcile", "scheduled_sends", "inbound_mirror", "relink"]
    );
    assert_eq!(tick.started, names);
    assert_eq!(
        app.wa_messages().await.len(),
        1,
        "the reconcile poll sent it"
    );
}
