//! The outbox isolates poison: a value Salesforce cannot take (a timestamp in milliseconds becomes
//! year 58870) makes it refuse a whole collections call; the flush splits the call until the bad
//! item is alone, writes everything else and dead-letters that item, which an operator then sees
//! (metrics, `sfwa doctor`) and retries or drops (`sfwa dead-letters`). An outage is still only a
//! delay.

use serde_json::{json, Map, Value};
use sfwa::doctor::{self, Outcome};
use sfwa::store::outbox::{self, DeadLetter};

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp, MSG};

/// What `format_salesforce_datetime` makes of a WhatsApp timestamp sent in milliseconds.
const POISON: &str = "+58870-01-01T00:00:00.000Z";
const GOOD: &str = "2026-11-25T10:00:00.000Z";
const WAMID_FIELD: &str = "WhatsApp_Message_Id__c";

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

fn sent_at(at: &str) -> Map<String, Value> {
    fields(json!({"Status__c": "Sent", "Sent_At__c": at}))
}

/// Message records in the org, as a Flow would have created them.
async fn seed_messages(app: &TestApp, count: usize) -> Vec<String> {
    let records: Vec<Value> = (0..count).map(|_| json!({"Status__c": "Queued"})).collect();
    app.seed(MSG, Value::Array(records)).await
}

/// Puts write-backs straight into the daemon's outbox, in order (the webhook edge is another
/// layer's job; the outbox must cope on its own).
async fn enqueue(app: &TestApp, updates: Vec<(String, Map<String, Value>)>) {
    let now = app.clock.now();
    app.pipeline
        .core
        .store
        .write(move |tx| {
            for (id, fields) in &updates {
                outbox::enqueue(tx, MSG, id, fields, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// An inbound message record to create by wamid (what a customer's message becomes).
async fn enqueue_inbound(app: &TestApp, wamid: &str, received_at: &str) {
    let (wamid, received_at) = (wamid.to_string(), received_at.to_string());
    let now = app.clock.now();
    app.pipeline
        .core
        .store
        .write(move |tx| {
            let record = fields(json!({
                "Direction__c": "Inbound",
                "Status__c": "Received",
                "Body__c": "hello",
                "Received_At__c": received_at,
            }));
            outbox::enqueue_upsert(tx, MSG, WAMID_FIELD, &wamid, &record, now)
        })
        .await
        .unwrap();
}

async fn dead_letters(app: &TestApp) -> Vec<DeadLetter> {
    app.pipeline
        .core
        .store
        .read(|c| outbox::dead_letters(c, 10_000))
        .await
        .unwrap()
}

async fn outbox_depth(app: &TestApp) -> u64 {
    app.pipeline.core.store.read(outbox::depth).await.unwrap()
}

/// Write calls (collections updates and upserts, and composite calls of several) the org has
/// answered so far.
async fn collections_calls(app: &TestApp) -> u64 {
    let stats = app.org_stats().await;
    let by_endpoint = &stats["rest_calls"]["by_endpoint"];
    [
        "PATCH composite/sobjects",
        "PATCH composite/sobjects/{object}/{field}",
        "POST composite",
    ]
    .iter()
    .map(|e| by_endpoint[*e].as_u64().unwrap_or(0))
    .sum()
}

async fn metrics(app: &TestApp) -> String {
    app.scrape().await
}

#[tokio::test]
async fn one_unparseable_value_is_dead_lettered_and_every_other_write_back_lands() {
    // Arrange: 900 status write-backs and 30 inbound records, 31 of them carrying a timestamp
    // Salesforce cannot parse, spread through every batch.
    const UPDATES: usize = 900;
    let app = spawn_app().await;
    let ids = seed_messages(&app, UPDATES).await;
    let poisoned = |n: usize| n % 31 == 7;
    let updates = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.clone(), sent_at(if poisoned(n) { POISON } else { GOOD })))
        .collect();
    enqueue(&app, updates).await;
    for n in 0..30 {
        let at = if n == 13 || n == 27 { POISON } else { GOOD };
        enqueue_inbound(&app, &format!("wamid.IN{n}"), at).await;
    }
    let calls_before = collections_calls(&app).await;

    // Act
    let flushed = app.flush().await;

    // Assert
    let calls = collections_calls(&app).await - calls_before;
    let poison_count = (0..UPDATES).filter(|n| poisoned(*n)).count() + 2;
    assert_eq!(poison_count, 31);
    println!(
        "poison: {} good write-backs written and {poison_count} dead-lettered in {calls} \
         collections calls ({flushed:?})",
        UPDATES + 30 - poison_count
    );
    assert_eq!(flushed.written, UPDATES + 30 - poison_count, "{flushed:?}");
    assert_eq!(flushed.dead_lettered, poison_count, "{flushed:?}");
    assert_eq!(flushed.calls as u64, calls);
    // 5 collections of ≤ 200 (fewer calls: they share composite calls); each bad item costs at
    // most 2·⌈log₂ 200⌉ = 16 more.
    assert!(calls <= 5 + 16 * poison_count as u64, "{calls} calls");
    assert_eq!(outbox_depth(&app).await, 0);
    for (n, id) in ids.iter().enumerate() {
        let record = app.record(id);
        if poisoned(n) {
            assert_eq!(record["Status__c"], "Queued", "{record}");
        } else {
            assert_eq!(record["Status__c"], "Sent", "{record}");
            assert!(record["Sent_At__c"].is_string(), "{record}");
        }
    }
    let inbound = app
        .org
        .state()
        .org()
        .rows(MSG)
        .filter(|r| r["Direction__c"] == "Inbound")
        .count();
    assert_eq!(inbound, 28);
    let letters = dead_letters(&app).await;
    assert_eq!(letters.len(), poison_count);
    assert!(letters
        .iter()
        .all(|l| l.reason.starts_with("JSON_PARSER_ERROR")));
    assert!(letters
        .iter()
        .any(|l| l.key == outbox::upsert_key(MSG, WAMID_FIELD, "wamid.IN13")));
}

#[tokio::test]
async fn a_refused_whole_call_is_split_until_the_bad_record_is_alone() {
    let app = spawn_app().await;
    let ids = seed_messages(&app, 9).await;
    let updates = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.clone(), sent_at(if n == 5 { POISON } else { GOOD })))
        .collect();
    enqueue(&app, updates).await;

    let flushed = app.flush().await;

    // 9 ✘ → 4 ✔ + 5 ✘ → 2 ✘ + 3 ✔ → 1 ✔ + 1 ✘ (alone): 7 collections, the halves of each
    // split sharing one composite call: 4 calls.
    assert_eq!(
        (flushed.written, flushed.dead_lettered, flushed.calls),
        (8, 1, 4),
        "{flushed:?}"
    );
    assert_eq!(app.record(&ids[5])["Status__c"], "Queued");
    assert_eq!(app.record(&ids[8])["Status__c"], "Sent");
    let letters = dead_letters(&app).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].key, ids[5]);
    assert!(
        letters[0]
            .reason
            .starts_with("JSON_PARSER_ERROR on Sent_At__c:"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].item.fields["Sent_At__c"], POISON);
    let text = metrics(&app).await;
    assert!(
        text.contains(r#"sfwa_writeback_dead_lettered_total{reason="JSON_PARSER_ERROR"} 1"#),
        "{text}"
    );
    assert!(text.contains("sfwa_outbox_dead_letters 1"), "{text}");
}

#[tokio::test]
async fn an_outage_still_retries_everything_later_without_dead_lettering() {
    let app = spawn_app().await;
    let ids = seed_messages(&app, 4).await;
    let updates = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.clone(), sent_at(if n == 0 { POISON } else { GOOD })))
        .collect();
    enqueue(&app, updates).await;
    app.org_control("faults", json!({"error_503_rate": 1.0}))
        .await;

    let during = app.flush().await;
    let waiting = app
        .pipeline
        .core
        .store
        .read(move |c| outbox::due(c, chrono::DateTime::<chrono::Utc>::MAX_UTC, 10))
        .await
        .unwrap();
    app.org_control("faults", json!({})).await;
    app.clock.shift(chrono::Duration::seconds(11));
    let after = app.flush().await;

    assert_eq!(
        (
            during.written,
            during.retried,
            during.dead_lettered,
            during.calls
        ),
        (0, 4, 0, 1),
        "{during:?}"
    );
    assert!(
        waiting.iter().all(|item| item.attempts == 0),
        "an outage spends no attempts: {waiting:?}"
    );
    assert_eq!((after.written, after.dead_lettered), (3, 1), "{after:?}");
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_record_locked_for_hours_becomes_a_dead_letter_after_the_attempt_cap() {
    let app = spawn_app_with(Options::default()).await;
    let ids = seed_messages(&app, 1).await;
    enqueue(&app, vec![(ids[0].clone(), sent_at(GOOD))]).await;
    app.org_control("faults", json!({"lock_row_rate": 1.0}))
        .await;

    let mut flushes = 0;
    while dead_letters(&app).await.is_empty() {
        flushes += 1;
        assert!(flushes <= 25, "never dead-lettered");
        app.flush().await;
        app.clock.shift(chrono::Duration::minutes(11));
    }

    assert_eq!(
        flushes,
        sfwa::pipeline::writeback::MAX_RECORD_ATTEMPTS as usize
    );
    let letter = &dead_letters(&app).await[0];
    assert!(
        letter
            .reason
            .starts_with("gave up after 20 attempts: UNABLE_TO_LOCK_ROW"),
        "{}",
        letter.reason
    );
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn the_doctor_names_dead_letters_and_the_command_to_act_on_them() {
    let app = spawn_app().await;
    let ids = seed_messages(&app, 2).await;
    let before = doctor::check(&app.settings).await;
    enqueue(
        &app,
        vec![
            (ids[0].clone(), sent_at(POISON)),
            (ids[1].clone(), sent_at(GOOD)),
        ],
    )
    .await;
    app.flush().await;

    let after = doctor::check(&app.settings).await;

    let line = |checks: &[doctor::Check]| {
        checks
            .iter()
            .find(|c| c.name == "Write-back dead letters")
            .expect("a dead-letter check")
            .clone()
    };
    assert_eq!(line(&before).outcome, Outcome::Pass("none".into()));
    let Outcome::Fail { problem, fix } = line(&after).outcome else {
        panic!("{:?}", line(&after));
    };
    assert!(problem.starts_with("1 write-back(s)"), "{problem}");
    assert!(
        problem.contains(&ids[0]) && problem.contains("JSON_PARSER_ERROR"),
        "{problem}"
    );
    assert!(
        fix.contains("sfwa dead-letters list") && fix.contains("sfwa dead-letters retry"),
        "{fix}"
    );
    println!("{}", line(&after));
}

/// `sfwa dead-letters …` against the test daemon's store, as a separate process.
async fn dead_letters_command(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sfwa.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n",
            app.settings.store.path.display().to_string()
        ),
    )
    .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .arg("dead-letters")
        .args(args)
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("sfwa dead-letters runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn dead_letters_can_be_listed_retried_and_dropped_beside_the_running_daemon() {
    // Arrange: two dead letters; then a newer write-back for the first record is pending.
    let app = spawn_app().await;
    let ids = seed_messages(&app, 2).await;
    enqueue(
        &app,
        vec![
            (ids[0].clone(), sent_at(POISON)),
            (ids[1].clone(), sent_at(POISON)),
        ],
    )
    .await;
    app.flush().await;
    enqueue(
        &app,
        vec![(
            ids[0].clone(),
            fields(json!({"Sent_At__c": GOOD, "Status__c": "Delivered", "Delivered_At__c": GOOD})),
        )],
    )
    .await;
    app.clock.shift(chrono::Duration::hours(1));

    // Act
    let listed = dead_letters_command(&app, &["list"]).await;
    let unnamed = dead_letters_command(&app, &["retry"]).await;
    let retried = dead_letters_command(&app, &["retry", &ids[0]]).await;
    let dropped = dead_letters_command(&app, &["drop", &ids[1], "a01NOTAKEY"]).await;
    let flushed = app.flush().await;
    let listed_after = dead_letters_command(&app, &["list", "--all"]).await;

    // Assert
    println!("{}", listed.1);
    assert_eq!(listed.0, 0, "{listed:?}");
    assert!(
        listed.1.starts_with("2 of 2 dead letter(s)"),
        "{}",
        listed.1
    );
    assert!(
        listed.1.contains(&ids[0]) && listed.1.contains(&ids[1]),
        "{}",
        listed.1
    );
    assert!(
        listed.1.contains(POISON),
        "the fields are shown: {}",
        listed.1
    );
    assert_eq!(unnamed.0, 2, "a retry names its dead letters: {unnamed:?}");
    assert_eq!(retried.0, 0, "{retried:?}");
    assert!(
        retried.1.contains("1 merged with one already pending"),
        "{}",
        retried.1
    );
    assert_eq!(dropped.0, 0, "{dropped:?}");
    assert!(
        dropped.1.contains("No dead letter has the key a01NOTAKEY")
            && dropped.1.contains("\n1 dead letter(s) dropped for good"),
        "{}",
        dropped.1
    );
    assert_eq!(
        (flushed.written, flushed.dead_lettered),
        (1, 0),
        "{flushed:?}"
    );
    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Delivered", "{record}");
    assert!(record["Sent_At__c"].is_string(), "{record}");
    assert_eq!(app.record(&ids[1])["Status__c"], "Queued");
    assert!(
        listed_after.1.starts_with("No dead letters"),
        "{}",
        listed_after.1
    );
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_call_the_org_refuses_as_a_whole_waits_for_an_admin_and_the_other_writes_land() {
    // Arrange: an upsert keyed by a field the org does not have (404), queued before two updates.
    let app = spawn_app().await;
    let ids = seed_messages(&app, 2).await;
    let now = app.clock.now();
    app.pipeline
        .core
        .store
        .write(move |tx| {
            outbox::enqueue_upsert(
                tx,
                MSG,
                "Not_A_Field__c",
                "wamid.X",
                &fields(json!({"Body__c": "hi"})),
                now,
            )
        })
        .await
        .unwrap();
    enqueue(
        &app,
        ids.iter().map(|id| (id.clone(), sent_at(GOOD))).collect(),
    )
    .await;

    // Act
    let flushed = app.flush().await;

    // Assert
    assert_eq!(
        (
            flushed.written,
            flushed.retried,
            flushed.dead_lettered,
            flushed.calls
        ),
        (2, 1, 0, 1),
        "{flushed:?}"
    );
    for id in &ids {
        assert_eq!(app.record(id)["Status__c"], "Sent");
    }
    let waiting = app
        .pipeline
        .core
        .store
        .read(|c| outbox::due(c, chrono::DateTime::<chrono::Utc>::MAX_UTC, 10))
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].attempts, 0, "the item itself is not at fault");
    assert!(
        waiting[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("404")),
        "{waiting:?}"
    );
    assert!(dead_letters(&app).await.is_empty());
    let not_yet = app.flush().await;
    assert_eq!(not_yet.calls, 0, "it waits: {not_yet:?}");
}

/// Every REST call the org has answered so far.
async fn rest_calls(app: &TestApp) -> u64 {
    app.org_stats().await["rest_calls"]["total"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_thousand_pending_write_backs_go_to_salesforce_in_one_call() {
    // Arrange: 1,000 records, each with its Sent, Delivered and Read queued before the flush.
    let app = spawn_app().await;
    let ids = seed_messages(&app, 1000).await;
    for status in ["Sent", "Delivered", "Read"] {
        let updates = ids
            .iter()
            .map(|id| (id.clone(), fields(json!({"Status__c": status}))))
            .collect();
        enqueue(&app, updates).await;
    }
    let calls_before = rest_calls(&app).await;

    // Act
    let flushed = app.flush().await;

    // Assert: coalesced to one write per record, five collections of 200 in one composite call.
    assert_eq!((flushed.written, flushed.calls), (1000, 1), "{flushed:?}");
    assert_eq!(rest_calls(&app).await - calls_before, 1);
    assert_eq!(
        app.org_stats().await["rest_calls"]["by_endpoint"]["POST composite"],
        1
    );
    assert!(ids.iter().all(|id| app.record(id)["Status__c"] == "Read"));
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_flush_records_salesforces_thousand_answers_a_hundred_to_a_store_write() {
    // Arrange: 1,000 pending write-backs.
    let app = spawn_app().await;
    let ids = seed_messages(&app, 1000).await;
    let updates = ids
        .iter()
        .map(|id| (id.clone(), fields(json!({"Status__c": "Sent"}))))
        .collect();
    enqueue(&app, updates).await;
    let writes_before = app.store_writes();

    // Act
    let flushed = app.flush().await;

    // Assert: every answer is recorded (the outbox is empty), in ten writes of a hundred — none
    // holds the store's writer, which every webhook's answer waits for, for all thousand.
    assert_eq!(flushed.written, 1000, "{flushed:?}");
    assert_eq!(outbox_depth(&app).await, 0);
    assert_eq!(app.store_writes() - writes_before, 10);
}

#[tokio::test]
async fn an_early_flush_writes_the_full_batches_and_leaves_the_rest_for_the_interval() {
    // Arrange: 1,300 records pending, more than one batch (five collections of 200) and less
    // than two.
    let app = spawn_app().await;
    let ids = seed_messages(&app, 1300).await;
    let updates = ids
        .iter()
        .map(|id| (id.clone(), fields(json!({"Status__c": "Sent"}))))
        .collect();
    enqueue(&app, updates).await;
    let pending = outbox_depth(&app).await;

    // Act
    let early = sfwa::pipeline::writeback::flush_full_batches(&app.pipeline.write_back, pending)
        .await
        .unwrap();

    // Assert: one full batch in one call; the other 300 wait to fill a batch of their own.
    assert_eq!((early.written, early.calls), (1000, 1), "{early:?}");
    assert_eq!(outbox_depth(&app).await, 300);
    let rest = app.flush().await;
    assert_eq!((rest.written, rest.calls), (300, 1), "{rest:?}");
    assert!(ids.iter().all(|id| app.record(id)["Status__c"] == "Sent"));
}

#[tokio::test]
async fn a_subrequest_refused_as_a_whole_leaves_its_records_in_the_outbox_while_the_others_land() {
    // Arrange: 400 updates (two collections) and an upsert keyed by a field the org does not
    // have, which Salesforce refuses as a whole (404) inside the same composite call.
    let app = spawn_app().await;
    let ids = seed_messages(&app, 400).await;
    enqueue(
        &app,
        ids.iter().map(|id| (id.clone(), sent_at(GOOD))).collect(),
    )
    .await;
    let now = app.clock.now();
    app.pipeline
        .core
        .store
        .write(move |tx| {
            outbox::enqueue_upsert(
                tx,
                MSG,
                "Not_A_Field__c",
                "wamid.Y",
                &fields(json!({"Body__c": "hi"})),
                now,
            )
        })
        .await
        .unwrap();

    // Act
    let flushed = app.flush().await;

    // Assert
    assert_eq!(
        (flushed.written, flushed.retried, flushed.calls),
        (400, 1, 1),
        "{flushed:?}"
    );
    assert!(ids.iter().all(|id| app.record(id)["Status__c"] == "Sent"));
    assert_eq!(outbox_depth(&app).await, 1, "the refused upsert waits");
    assert!(dead_letters(&app).await.is_empty());
}

#[tokio::test]
async fn per_record_failures_inside_a_composite_call_are_handled_as_in_a_collections_call() {
    // Arrange: 600 updates in three collections of one composite call: one record deleted in
    // the org (a per-record ENTITY_IS_DELETED), one value Salesforce cannot parse (which
    // refuses its whole collection for its data).
    let app = spawn_app().await;
    let ids = seed_messages(&app, 600).await;
    let (deleted, poisoned) = (100, 450);
    let updates = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            (
                id.clone(),
                sent_at(if n == poisoned { POISON } else { GOOD }),
            )
        })
        .collect();
    enqueue(&app, updates).await;
    app.org
        .state()
        .org()
        .delete(
            MSG,
            &ids[deleted],
            &mut sfwa_sim::salesforce::org::Transaction::default(),
        )
        .unwrap();

    // Act
    let flushed = app.flush().await;

    // Assert: the deleted record's write is dropped, the bad one is split out (200 → 100 → … → 1:
    // 8 more calls at most, each half sharing a composite call) and dead-lettered; the rest lands.
    assert_eq!(
        (flushed.written, flushed.dropped, flushed.dead_lettered),
        (598, 2, 1),
        "{flushed:?}"
    );
    assert!(flushed.calls <= 9, "{flushed:?}");
    let letters = dead_letters(&app).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].key, ids[poisoned]);
    assert!(letters[0].reason.starts_with("JSON_PARSER_ERROR"));
    assert_eq!(app.record(&ids[599])["Status__c"], "Sent");
    assert_eq!(app.record(&ids[poisoned])["Status__c"], "Queued");
    assert_eq!(outbox_depth(&app).await, 0);
}
