//! Nothing lost by the primary path: claims orphaned by a kill are resumed by the stream's own
//! retry step (reconcile off), and Meta's rate limits slow sfwa down instead of failing messages.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::pipeline::stream::StreamIntake;
use sfwa::pipeline::worker;
use sfwa::store::journal::JournalState;

use crate::daemon_support::{eventually, spawn_app_with, Options, TestApp, DEADLINE};

fn templates(n: usize, first: usize) -> Value {
    json!((0..n)
        .map(|i| json!({"To_Phone__c": format!("+1650555{:04}", first + i), "Message_Type__c": "Template", "Template_Name__c": "hello_world"}))
        .collect::<Vec<_>>())
}

/// How many accepted sends carried each record Id.
async fn sends_per_record(app: &TestApp) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for message in app.wa_messages().await {
        let id = message["biz_opaque_callback_data"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *counts.entry(id).or_default() += 1;
    }
    counts.into_iter().collect()
}

#[tokio::test]
async fn claims_orphaned_by_a_kill_between_claim_and_send_are_sent_once_after_restart_without_the_reconcile(
) {
    // Arrange: stream mode, reconcile off, and a pace of 1 message a second, so that after the
    // first send the rest of the batch sits claimed, waiting for a slot, when the kill comes.
    let mut options = Options::default();
    options.org.connect_timeout = Duration::from_millis(200);
    options.tune = Box::new(|s| {
        s.whatsapp.throughput_per_second = 1;
        s.schedule.reconcile = String::new();
        s.schedule.scheduled_sends = String::new();
    });
    let mut app = spawn_app_with(options).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap(); // subscribed
    let ids = app.queue(templates(5, 2100)).await;

    // Act: the step claims all five (and stores the replay id), sends one, and is killed.
    let pipeline = app.pipeline.clone();
    let step = tokio::spawn(async move {
        loop {
            let step = intake.step(&pipeline).await.expect("stream step");
            if step.events > 0 {
                return;
            }
        }
    });
    // Polled: the send is made by the stream step running in the spawned task (a stream delivery).
    eventually("the first record of the batch is sent", || async {
        !app.wa_messages().await.is_empty()
    })
    .await;
    step.abort();
    let _ = step.await;
    let orphaned = futures_util::future::join_all(ids.iter().map(|id| app.journal(id))).await;
    let claimed = orphaned
        .iter()
        .flatten()
        .filter(|e| e.state == JournalState::Claimed && e.next_attempt_at.is_none())
        .count();
    app.clock.shift(chrono::Duration::seconds(1));
    app.restart().await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    let resumed =
        tokio::time::timeout(Duration::from_millis(600), intake.step(&app.pipeline)).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while app.wa_messages().await.len() < ids.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} sent",
            app.wa_messages().await.len(),
            ids.len()
        );
        worker::retry_step(&app.pipeline).await.unwrap();
    }

    // Assert
    assert!(claimed >= 3, "the kill left {claimed} claims orphaned");
    assert!(
        !matches!(resumed, Ok(Ok(ref step)) if step.events > 0),
        "the stream must resume after the stored replay id, not replay the batch"
    );
    let sends = sends_per_record(&app).await;
    assert_eq!(sends.len(), ids.len());
    assert!(
        sends.iter().all(|(_, n)| *n == 1),
        "each record sent exactly once: {sends:?}"
    );
    let sent_ids: BTreeSet<&str> = sends.iter().map(|(id, _)| id.as_str()).collect();
    assert!(ids.iter().all(|id| sent_ids.contains(id.as_str())));
}

#[tokio::test]
async fn a_dispatch_working_on_a_claim_keeps_the_orphan_scan_away_from_it() {
    // Arrange: a record claimed by this process and registered as in flight.
    let app = spawn_app_with(Options::default()).await;
    let ids = app.queue(templates(1, 2200)).await;
    let id = ids[0].clone();
    let now = app.clock.now() - chrono::Duration::minutes(5);
    let claim_id = id.clone();
    app.pipeline
        .core
        .store
        .write(move |tx| {
            sfwa::store::journal::claim(tx, &claim_id.parse().unwrap(), now).map(|_| ())
        })
        .await
        .unwrap();
    let guard = app
        .pipeline
        .dispatcher
        .in_flight
        .enter(&id)
        .expect("not in flight yet");

    // Act
    let while_in_flight = worker::retry_step(&app.pipeline).await.unwrap();
    drop(guard);
    let after = worker::retry_step(&app.pipeline).await.unwrap();

    // Assert
    assert!(while_in_flight.outcomes.is_empty());
    assert!(matches!(after.outcomes[..], [DispatchOutcome::Sent { .. }]));
    assert_eq!(app.wa_messages().await.len(), 1);
}

#[tokio::test]
async fn a_claim_whose_record_an_admin_took_out_of_the_queue_is_let_go_instead_of_fetched_forever()
{
    let app = spawn_app_with(Options::default()).await;
    let ids = app.queue(templates(1, 2300)).await;
    let (claim_id, then) = (
        ids[0].clone(),
        app.clock.now() - chrono::Duration::minutes(5),
    );
    app.pipeline
        .core
        .store
        .write(move |tx| {
            sfwa::store::journal::claim(tx, &claim_id.parse().unwrap(), then).map(|_| ())
        })
        .await
        .unwrap();
    let taken_out = json!({"Status__c": "Failed"}).as_object().unwrap().clone();
    let results = app
        .pipeline
        .intake
        .salesforce
        .update(crate::daemon_support::MSG, &[(ids[0].clone(), taken_out)])
        .await
        .unwrap();
    assert!(results[0].success);

    let step = worker::retry_step(&app.pipeline).await.unwrap();
    let again = worker::retry_step(&app.pipeline).await.unwrap();

    assert!(
        step.outcomes.is_empty() && again.outcomes.is_empty(),
        "{:?} {:?} {}",
        step.outcomes,
        again.outcomes,
        app.record(&ids[0])
    );
    assert!(app.wa_messages().await.is_empty());
    let entry = app.journal(&ids[0]).await.unwrap();
    assert_eq!(entry.state, JournalState::Failed);
    assert_eq!(entry.error_code.as_deref(), Some("NOT_QUEUED"));
}

#[tokio::test]
async fn a_rate_limited_record_waits_as_queued_says_why_and_is_sent_later_without_using_an_attempt()
{
    // Arrange: WhatsApp grants this number 1 message a second; sfwa believes 80 and allows only
    // one attempt per message for real errors.
    let mut options = Options::default();
    options.wa.throughput_per_second = 1;
    options.tune = Box::new(|s| s.dispatch.max_attempts = 1);
    let app = spawn_app_with(options).await;
    let ids = app.queue(templates(3, 2400)).await;

    // Act: the first poll sends all three at once; Meta takes one and refuses two (130429). The
    // Graph answers after 300 ms, so all three are in flight (sfwa paces them 12.5 ms apart)
    // before the first refusal can slow the pace: the race does not depend on the machine.
    app.wa_control("faults", json!({"latency_ms": 300})).await;
    let first = app.dispatch().await;
    app.wa_control("faults", json!({"latency_ms": 0})).await;
    app.flush().await;
    let waiting: Vec<Value> = ids.iter().map(|id| app.record(id)).collect();

    // Assert: refused ones wait as Queued and say why; no attempt was used up.
    let limited = first
        .outcomes
        .iter()
        .filter(|o| matches!(o, DispatchOutcome::RateLimited { code, .. } if code == "WA_130429"))
        .count();
    assert_eq!(limited, 2, "{:?}", first.outcomes);
    let queued: Vec<&Value> = waiting
        .iter()
        .filter(|r| r["Status__c"] == "Queued")
        .collect();
    assert_eq!(queued.len(), 2);
    for record in &queued {
        let reason = record["Error_Message__c"].as_str().unwrap_or_default();
        assert!(reason.contains("WA_130429"), "{reason}");
        assert!(reason.contains("more slowly"), "{reason}");
    }
    for id in &ids {
        assert_eq!(app.journal(id).await.unwrap().attempts, 0);
    }

    // …and go out once the pace allows, clearing the reason.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while app.wa_messages().await.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "never all sent");
        app.clock.shift(chrono::Duration::seconds(3));
        worker::retry_step(&app.pipeline).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        let record = app.status_after_webhooks(id, "Read").await;
        assert_eq!(record["Error_Message__c"], Value::Null);
    }
    assert_eq!(sends_per_record(&app).await.len(), 3);
}

#[tokio::test]
async fn a_number_granted_less_than_configured_slows_down_and_fails_nothing() {
    // Arrange: 60 templates; WhatsApp grants 10 messages a second, sfwa is set to 80.
    let mut options = Options::default();
    options.wa.throughput_per_second = 10;
    options.tune = Box::new(|s| s.dispatch.max_attempts = 2);
    let app = spawn_app_with(options).await;
    let ids = app.queue(templates(60, 2500)).await;

    // Act
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut outcomes = Vec::new();
    outcomes.extend(app.dispatch().await.outcomes);
    while app.wa_messages().await.len() < ids.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} sent",
            app.wa_messages().await.len()
        );
        app.clock.shift(chrono::Duration::seconds(3));
        outcomes.extend(worker::retry_step(&app.pipeline).await.unwrap().outcomes);
    }

    // Assert: every message went, exactly once; none failed; the refusals stayed few (the pace
    // adapted instead of every retry meeting the same wall).
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, DispatchOutcome::Failed { .. }))
        .count();
    assert_eq!(failed, 0, "{outcomes:?}");
    assert!(sends_per_record(&app).await.iter().all(|(_, n)| *n == 1));
    let refused = app.wa_stats().await["rejected_by_code"]["130429"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        refused < ids.len() as u64,
        "{refused} refusals for {} messages: the pace did not adapt",
        ids.len()
    );
    assert!(app.pipeline.dispatcher.pacer.rate(app.wa.phone_number_id()) < 80.0);
}

#[tokio::test]
async fn a_customer_sent_to_too_fast_delays_only_that_customer() {
    // Arrange: Meta allows one message per customer per hour here (131056 after that).
    let mut options = Options::default();
    options.wa.pair_rate = sfwa_sim::whatsapp::PairRate {
        burst: 1,
        refill_every: Duration::from_secs(3600),
    };
    let app = spawn_app_with(options).await;
    let same = json!({"To_Phone__c": "+16505552600", "Message_Type__c": "Template", "Template_Name__c": "hello_world"});
    let first = app.queue(json!([same.clone()])).await;
    app.dispatch().await;
    let second = app.queue(json!([same.clone()])).await;
    let other = app.queue(templates(1, 2601)).await;

    // Act: the second message to that customer meets 131056; a third is held back by sfwa.
    let refused = app.dispatch().await;
    let third = app.queue(json!([same])).await;
    let held = app.dispatch().await;

    // Assert: one refusal at Meta, no call for the third, the other customer's message went and
    // the number's pace is untouched.
    let pair_refusals = app.wa_stats().await["rejected_by_code"]["131056"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(pair_refusals, 1, "{:?}", refused.outcomes);
    assert!(matches!(
        held.outcomes[..],
        [DispatchOutcome::RateLimited { ref code, .. }] if code == "WA_131056"
    ));
    let sent: Vec<String> = sends_per_record(&app)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(sent.contains(&first[0]) && sent.contains(&other[0]));
    assert!(!sent.contains(&second[0]) && !sent.contains(&third[0]));
    assert_eq!(
        app.pipeline.dispatcher.pacer.rate(app.wa.phone_number_id()),
        80.0
    );
}

#[tokio::test]
async fn a_message_rate_limited_past_the_maximum_wait_fails_saying_so() {
    // Arrange: one message per customer per hour at Meta, and a 1-minute maximum wait.
    let mut options = Options::default();
    options.wa.pair_rate = sfwa_sim::whatsapp::PairRate {
        burst: 1,
        refill_every: Duration::from_secs(3600),
    };
    options.tune = Box::new(|s| s.dispatch.max_rate_limited_wait = Duration::from_secs(60));
    let app = spawn_app_with(options).await;
    let same = json!({"To_Phone__c": "+16505552700", "Message_Type__c": "Template", "Template_Name__c": "hello_world"});
    app.queue(json!([same.clone()])).await;
    app.dispatch().await;
    let late = app.queue(json!([same])).await;
    let first = app.dispatch().await;

    // Act: two minutes later Meta still refuses.
    app.clock.shift(chrono::Duration::minutes(2));
    let second = worker::retry_step(&app.pipeline).await.unwrap();
    app.flush().await;

    // Assert
    assert!(first
        .outcomes
        .iter()
        .any(|o| matches!(o, DispatchOutcome::RateLimited { .. })));
    assert!(matches!(
        second.outcomes[..],
        [DispatchOutcome::Failed { ref code }] if code == "WA_131056"
    ));
    let record = app.record(&late[0]);
    assert_eq!(record["Status__c"], "Failed");
    assert_eq!(record["Error_Code__c"], "WA_131056");
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(message.contains("kept doing so for 1 min"), "{message}");
}

#[tokio::test]
async fn a_restarted_daemon_resumes_the_pace_meta_taught_it_instead_of_meeting_the_limit_again() {
    // Arrange: Meta grants 1 message a second; three at once teach the pace a lower rate.
    let mut options = Options::default();
    options.wa.throughput_per_second = 1;
    let mut app = spawn_app_with(options).await;
    let number = app.wa.phone_number_id().to_string();
    app.queue(templates(3, 2800)).await;
    app.dispatch().await;
    let learned = app.pipeline.dispatcher.pacer.rate(&number);

    // Act
    app.restart().await;
    let fresh = app.pipeline.dispatcher.pacer.rate(&number);
    sfwa::app::read_throughput_levels(app.pipeline.dispatcher.clone()).await;

    // Assert
    assert!(learned < 80.0, "{learned}");
    assert_eq!(fresh, 80.0);
    assert!(
        (app.pipeline.dispatcher.pacer.rate(&number) - learned).abs() < 0.01,
        "{} after the restart, {learned} before",
        app.pipeline.dispatcher.pacer.rate(&number)
    );
}
