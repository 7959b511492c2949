//! Upgrades are safe: a store file written by an earlier release opens with this code, migrates,
//! and keeps working.
//!
//! `tests/fixtures/store-schema-4.db` was written by the release whose schema is version 4 (the
//! `store` migrations 0001–0004), with [`writes_the_store_upgrade_fixture`]:
//! `cargo test --test api store_upgrade -- --ignored` rewrites it (only do that to add a state the
//! fixture lacks, with the release the fixture stands for; the point is an old file, not a fresh
//! one). It holds a journal row in each of Claimed (claimed, never sent), Sent (with its wamid) and
//! Failed, the write-backs they owe in the outbox, an inbound message (window mirror, dedupe key,
//! the inbound record's upsert), a stream replay cursor and a dead letter.
//!
//! **Every later schema change keeps [`a_store_written_by_schema_4_opens_migrates_and_keeps_working`]
//! passing, unchanged.** A migration that cannot carry these rows forward is a breaking upgrade and
//! needs its own plan, not an edit of this test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};
use sfwa::domain::ids::{BusinessNumberId, CustomerId};
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::store::db::latest_version;
use sfwa::store::journal::{self, JournalEntry, JournalState};
use sfwa::store::{cursors, inbound, outbox};
use sfwa_sim::whatsapp::{signature, WhatsAppSimConfig};

use crate::daemon_support::{spawn_app_with, Options, TestApp, MSG};

const CUSTOMER: &str = "16505551234";
const CURSOR: &str = "replay:/event/WhatsApp_Outbound__e";
const CURSOR_VALUE: &str = "4242";
/// Why Salesforce refused the dead letter's write-back for good.
const DEAD_REASON: &str = "STRING_TOO_LONG";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-schema-4.db")
}

/// Webhooks from the simulator wait an hour: the Sent row stays Sent while the fixture is written.
fn quiet_whatsapp() -> WhatsAppSimConfig {
    WhatsAppSimConfig {
        delivered_after: Duration::from_secs(3600),
        read_after: Duration::from_secs(3600),
        ..WhatsAppSimConfig::default()
    }
}

/// The generator of the fixture (see the module docs). Ignored: it overwrites a committed file.
#[tokio::test]
#[ignore = "rewrites tests/fixtures/store-schema-4.db; run by hand with the release it stands for"]
async fn writes_the_store_upgrade_fixture() {
    let app = spawn_app_with(Options {
        wa: quiet_whatsapp(),
        ..Options::default()
    })
    .await;
    // Sent (a template) and Failed (free-form text, the customer's window closed), write-backs
    // owed for both.
    let sent_and_failed = app
        .queue(json!([
            {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"},
            {"To_Phone__c": "+16505551234", "Message_Type__c": "Text", "Body__c": "Your order shipped"},
        ]))
        .await;
    app.dispatch().await;
    // An inbound message: mirror row, dedupe key, the inbound record to upsert.
    app.customer_wrote(CUSTOMER, 1).await;
    // Claimed, never sent (sfwa stopped between the claim and the send); a dead letter.
    let (claimed_id, dead_id) = {
        let org = app.org.state().org();
        (org.new_id("a00"), org.new_id("a00"))
    };
    app.pipeline
        .core
        .store
        .write(move |tx| {
            let now = chrono::Utc::now();
            journal::claim(tx, &claimed_id.parse().unwrap(), now)?;
            cursors::set(tx, CURSOR, CURSOR_VALUE, now)?;
            let mut fields = Map::new();
            fields.insert("Status__c".into(), json!("Delivered"));
            outbox::enqueue(tx, MSG, &dead_id, &fields, now)?;
            assert!(outbox::dead_letter(tx, &dead_id, 1, DEAD_REASON, now)?);
            Ok(())
        })
        .await
        .unwrap();
    for id in &sent_and_failed {
        assert!(app.journal(id).await.unwrap().state.is_finished());
    }

    let path = fixture();
    let _ = std::fs::remove_file(&path);
    let target = path.to_string_lossy().into_owned();
    app.pipeline
        .core
        .store
        .read(move |c| {
            c.execute("VACUUM INTO ?1", [target])?;
            Ok(())
        })
        .await
        .unwrap();
}

/// The fixture's journal rows by state.
fn row_in(rows: &[JournalEntry], state: JournalState) -> JournalEntry {
    rows.iter()
        .find(|e| e.state == state)
        .unwrap_or_else(|| panic!("the fixture has a {state:?} row"))
        .clone()
}

/// Puts the fixture's records into the fresh org under their own Ids, as the rep left them.
fn recreate_records(app: &TestApp, rows: &[(&JournalEntry, &str)]) {
    let mut org = app.org.state().org();
    // The org that wrote the file handed these Ids out already; this fresh simulator counts from
    // the same start, so it moves past them before creating any record (the inbound upsert).
    let last = rows.iter().map(|(e, _)| e.record_id.as_str()).max();
    while last.is_some_and(|last| org.new_id("a00").as_str() <= last) {}
    for (entry, status) in rows {
        let record = json!({
            "Id": entry.record_id, "Direction__c": "Outbound", "Status__c": status,
            "To_Phone__c": "+16505551234", "Message_Type__c": "Template",
            "Template_Name__c": "hello_world", "CreatedDate": "2026-11-24T12:00:00.000+0000",
        });
        let Value::Object(record) = record else {
            unreachable!()
        };
        org.seed_system_record(MSG, record);
    }
}

async fn post_delivered(app: &TestApp, entry: &JournalEntry) -> reqwest::StatusCode {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": app.wa.waba_id(), "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": app.wa.phone_number_id()},
            "statuses": [{"id": entry.wamid, "status": "delivered",
                          "timestamp": app.clock.now().timestamp().to_string(),
                          "recipient_id": CUSTOMER, "biz_opaque_callback_data": entry.record_id}],
        }}]}],
    }))
    .unwrap();
    app.http
        .post(app.wa.webhook_url().expect("the daemon is registered"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature(&body, app.wa.app_secret()))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// See the module docs: this test stays, unchanged, through every later schema change.
#[tokio::test]
async fn a_store_written_by_schema_4_opens_migrates_and_keeps_working() {
    // Arrange: a copy of the old file (opening it switches it to WAL and migrates it).
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("sfwa.db");
    std::fs::copy(fixture(), &store).unwrap();
    let path = store.clone();
    let app = spawn_app_with(Options {
        wa: quiet_whatsapp(),
        tune: Box::new(move |s| s.store.path = path),
        ..Options::default()
    })
    .await;
    let rows = app
        .pipeline
        .core
        .store
        .read(|c| {
            let mut rows = Vec::new();
            for (id,) in c
                .prepare("SELECT record_id FROM journal")?
                .query_map([], |r| Ok((r.get::<_, String>(0)?,)))?
                .collect::<Result<Vec<_>, _>>()?
            {
                rows.extend(journal::get(c, &id.parse().unwrap())?);
            }
            Ok(rows)
        })
        .await
        .unwrap();
    let (claimed, sent, failed) = (
        row_in(&rows, JournalState::Claimed),
        row_in(&rows, JournalState::Sent),
        row_in(&rows, JournalState::Failed),
    );
    recreate_records(
        &app,
        &[
            (&claimed, "Queued"),
            (&sent, "Sending"),
            (&failed, "Queued"),
        ],
    );

    // Act: the claim is resumed and sent, a status lands on the Sent row, the outbox flushes.
    let step = app.dispatch().await;
    let webhook = post_delivered(&app, &sent).await;
    let flush = app.flush().await;

    // Assert
    let version: i64 = app
        .pipeline
        .core
        .store
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(version, latest_version(), "migrated to this build's schema");
    assert!(
        matches!(step.outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "the orphaned claim is sent once: {:?}",
        step.outcomes
    );
    assert_eq!(webhook, 200);
    assert_eq!(
        app.journal(sent.record_id.as_str()).await.unwrap().state,
        JournalState::Delivered
    );
    assert_eq!(app.record(claimed.record_id.as_str())["Status__c"], "Sent");
    assert_eq!(
        app.record(sent.record_id.as_str())["Status__c"],
        "Delivered"
    );
    let failed_record = app.record(failed.record_id.as_str());
    assert_eq!(failed_record["Status__c"], "Failed");
    assert_eq!(failed_record["Error_Code__c"], "OUTSIDE_SESSION_WINDOW");
    assert!(flush.written >= 4, "{flush:?}");
    // The simulator that wrote the file had its own (random) phone_number_id.
    let number: BusinessNumberId = sent
        .business_number_id
        .clone()
        .expect("the number it went from")
        .parse()
        .unwrap();
    let customer: CustomerId = CUSTOMER.parse().unwrap();
    let (depth, letters, cursor, mirror) = app
        .pipeline
        .core
        .store
        .read(move |c| {
            Ok((
                outbox::depth(c)?,
                outbox::dead_letters(c, 10)?,
                cursors::get(c, CURSOR)?,
                inbound::last_inbound(c, &number, &customer)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(depth, 0, "every write-back the old file owed landed");
    assert_eq!(letters.len(), 1, "the dead letter is kept for an operator");
    assert_eq!(letters[0].reason, DEAD_REASON);
    assert_eq!(cursor.as_deref(), Some(CURSOR_VALUE));
    assert!(mirror.is_some(), "the inbound mirror row is still read");
}

/// Issue 13 moved the window mirror into the customer identity store (migration 5): the window a
/// schema-4 file held for a customer is that person's window afterwards, found by the phone, and
/// stays theirs when a later message shows their business-scoped user id beside the phone.
#[tokio::test]
async fn a_window_migrated_from_schema_4_still_opens_the_window_for_that_customer() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sfwa.db");
    std::fs::copy(fixture(), &path).unwrap();
    let store = sfwa::store::Store::open(&path).unwrap();
    let customer: CustomerId = CUSTOMER.parse().unwrap();
    let bsuid: CustomerId = "US.13491208655302741918".parse().unwrap();
    let number: BusinessNumberId = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT business_number_id FROM journal WHERE business_number_id IS NOT NULL LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await
        .unwrap()
        .parse()
        .unwrap();

    // Act
    let (n, c) = (number.clone(), customer.clone());
    let migrated = store
        .read(move |conn| inbound::last_inbound(conn, &n, &c))
        .await
        .unwrap()
        .expect("the schema-4 mirror row became the customer's window");
    let (n, b, c) = (number.clone(), bsuid.clone(), customer.clone());
    let by_bsuid = store
        .write(move |tx| {
            let seen = sfwa::store::identity::Seen {
                wa_id: Some(c),
                user_id: Some(b.clone()),
                parent_user_id: None,
                username: None,
                at: migrated - chrono::Duration::minutes(1),
            };
            sfwa::store::identity::observe(tx, &n, &seen)?;
            inbound::last_inbound(tx, &n, &b)
        })
        .await
        .unwrap();

    // Assert: a free-form message an hour after that inbound message is inside the window.
    let decision = sfwa::window::decide(
        false,
        Some(migrated),
        migrated + chrono::Duration::hours(1),
        chrono::Duration::minutes(2),
    );
    assert!(
        matches!(decision, sfwa::window::Decision::Allowed { .. }),
        "{decision:?}"
    );
    assert_eq!(
        by_bsuid,
        Some(migrated),
        "the BSUID shown later finds the same window"
    );
}
