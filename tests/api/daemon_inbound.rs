//! Inbound customer messages become `WhatsApp_Message__c` records (Direction Inbound, Status
//! Received) linked to the Contact / Lead with the sender's number: the real daemon, a customer
//! writing through the WhatsApp simulator (or a hand-signed webhook), the write-back flush driven
//! step by step against the org simulator.

use chrono::Duration;
use serde_json::{json, Value};
use sfwa::domain::message::parse_salesforce_datetime;
use sfwa::store::outbox;
use sfwa_sim::whatsapp::signature;

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp, MSG};

/// The customer; the org stores the number as people write it.
const CUSTOMER: &str = "14155550101";

/// Every Inbound record in the org.
fn inbound_records(app: &TestApp) -> Vec<Value> {
    app.org
        .state()
        .org()
        .rows(MSG)
        .filter(|r| r["Direction__c"] == "Inbound")
        .map(|r| Value::Object(r.clone()))
        .collect()
}

/// The one record of message `wamid`.
fn record_of(app: &TestApp, wamid: &str) -> Value {
    let records: Vec<Value> = inbound_records(app)
        .into_iter()
        .filter(|r| r["WhatsApp_Message_Id__c"] == wamid)
        .collect();
    assert_eq!(records.len(), 1, "records for {wamid}: {records:?}");
    records.into_iter().next().unwrap()
}

async fn outbox_depth(app: &TestApp) -> u64 {
    app.pipeline.core.store.read(outbox::depth).await.unwrap()
}

/// Asserts the webhook for `wamid` is stored (its record is queued for Salesforce).
async fn assert_queued(app: &TestApp, wamid: &str) {
    let key = outbox::upsert_key(MSG, "WhatsApp_Message_Id__c", wamid);
    let queued = app
        .pipeline
        .core
        .store
        .read(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM outbox WHERE item_key = ?1",
                [&key],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(queued, 1, "the webhook for {wamid} is stored");
}

/// A customer writes through the WhatsApp simulator (which signs and posts Meta's webhook, here
/// delivered at once); returns the wamid, stored by the daemon.
async fn customer_writes(app: &TestApp, message: Value) -> String {
    let mut message = message;
    message["from"] = json!(CUSTOMER);
    let answer = app.wa_control("inbound", message).await;
    let wamid = answer["wamid"].as_str().unwrap().to_string();
    app.deliver_webhooks().await;
    assert_queued(app, &wamid).await;
    wamid
}

/// Meta's webhook around one inbound `message` from the customer, signed.
fn signed_inbound(app: &TestApp, message: Value) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": app.wa.waba_id(), "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": app.wa.phone_number_id()},
            "contacts": [{"profile": {"name": "Ana Rivera"}, "wa_id": CUSTOMER}],
            "messages": [message],
        }}]}],
    }))
    .unwrap();
    let signature = signature(&body, app.wa.app_secret());
    (body, signature)
}

async fn post_webhook(app: &TestApp, (body, signature): &(Vec<u8>, String)) {
    let status = app
        .http
        .post(app.wa.webhook_url().unwrap())
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

async fn rest_calls(app: &TestApp) -> u64 {
    app.org_stats().await["rest_calls"]["total"]
        .as_u64()
        .unwrap()
}

async fn set_org_faults(app: &TestApp, faults: Value) {
    app.org_control("faults", faults).await;
}

#[tokio::test]
async fn an_inbound_text_becomes_one_received_record_with_the_customers_details() {
    let app = spawn_app().await;
    let sent_at = app.clock.now().timestamp();
    let calls_before = rest_calls(&app).await;

    let wamid = customer_writes(
        &app,
        json!({"text": "Does it come in blue?", "timestamp": sent_at}),
    )
    .await;
    let flushed = app.flush().await;

    assert_eq!(
        (flushed.written, flushed.calls, flushed.lookups),
        (1, 1, 4),
        "one upsert; the customer's BSUID looked up on Contact and on Lead (one query each), one phone search for both, and the inbound queue's Id (at most once per 15 min): {flushed:?}"
    );
    // The login is not a REST call: five calls in all.
    assert_eq!(rest_calls(&app).await - calls_before, 5);
    let record = record_of(&app, &wamid);
    assert_eq!(record["Status__c"], "Received", "{record}");
    assert_eq!(record["Direction__c"], "Inbound");
    assert_eq!(record["Message_Type__c"], "Text");
    assert_eq!(record["Body__c"], "Does it come in blue?");
    assert_eq!(record["From_Phone__c"], "+14155550101");
    assert_eq!(record["Business_Number_Id__c"], app.wa.phone_number_id());
    let at = |field: &str| parse_salesforce_datetime(record[field].as_str().unwrap()).unwrap();
    assert_eq!(at("Received_At__c").timestamp(), sent_at);
    assert_eq!(at("Window_Expires_At__c").timestamp(), sent_at + 24 * 3600);
    // Nobody in the org has the number: no link and no note.
    assert!(record["Contact__c"].is_null(), "{record}");
    assert!(record["Lead__c"].is_null(), "{record}");
    assert!(record["Error_Message__c"].is_null(), "{record}");
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn the_same_webhook_delivered_twice_yields_one_record() {
    let app = spawn_app().await;
    let webhook = signed_inbound(
        &app,
        json!({"from": CUSTOMER, "id": "wamid.TWICE", "timestamp": app.clock.now().timestamp().to_string(),
               "type": "text", "text": {"body": "hello?"}}),
    );

    post_webhook(&app, &webhook).await;
    post_webhook(&app, &webhook).await;
    let flushed = app.flush().await;
    post_webhook(&app, &webhook).await;
    let after_redelivery = app.flush().await;

    assert_eq!(flushed.written, 1, "{flushed:?}");
    assert_eq!(after_redelivery.calls, 0, "{after_redelivery:?}");
    assert_eq!(record_of(&app, "wamid.TWICE")["Body__c"], "hello?");
    assert_eq!(inbound_records(&app).len(), 1);
}

#[tokio::test]
async fn a_flush_whose_answer_is_lost_is_sent_again_and_still_yields_one_record() {
    let app = spawn_app().await;
    let wamid = customer_writes(&app, json!({"text": "are you open today?"})).await;
    set_org_faults(
        &app,
        json!({"drop_connection_rate": 1.0, "drop_writes_only": true}),
    )
    .await;

    let lost = app.flush().await;
    let created_meanwhile = inbound_records(&app).len();
    set_org_faults(&app, json!({})).await;
    app.clock.shift(Duration::seconds(11));
    let again = app.flush().await;

    assert_eq!((lost.written, lost.retried), (0, 1), "{lost:?}");
    assert_eq!(created_meanwhile, 1, "the lost call did create the record");
    assert_eq!(again.written, 1, "{again:?}");
    assert_eq!(record_of(&app, &wamid)["Body__c"], "are you open today?");
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn a_contact_whose_phone_is_written_for_humans_is_linked() {
    let app = spawn_app().await;
    let contacts = app
        .seed(
            "Contact",
            json!([
                {"LastName": "Rivera", "Phone": "(415) 555-0101"},
                // The same last seven digits in another area code: not a match.
                {"LastName": "Decoy", "Phone": "(650) 555-0101"},
            ]),
        )
        .await;

    let wamid = customer_writes(&app, json!({"text": "hi, it's Ana"})).await;
    app.flush().await;

    let record = record_of(&app, &wamid);
    assert_eq!(record["Contact__c"], contacts[0].as_str(), "{record}");
    assert!(record["Lead__c"].is_null(), "{record}");
    assert!(record["Error_Message__c"].is_null(), "{record}");
}

#[tokio::test]
async fn a_lead_matched_by_mobile_phone_is_linked_but_a_converted_lead_is_not() {
    let app = spawn_app().await;
    let leads = app
        .seed(
            "Lead",
            json!([
                {"LastName": "Rivera", "Company": "Acme", "MobilePhone": "+1 415-555-0101"},
                {"LastName": "Rivera (old)", "Company": "Acme", "Phone": "415.555.0101"},
            ]),
        )
        .await;
    app.org
        .state()
        .org()
        .convert_lead(&leads[1], app.clock.now())
        .unwrap();

    let wamid = customer_writes(&app, json!({"text": "still interested"})).await;
    app.flush().await;

    let record = record_of(&app, &wamid);
    assert_eq!(record["Lead__c"], leads[0].as_str(), "{record}");
    assert!(record["Contact__c"].is_null(), "{record}");
    assert!(record["Error_Message__c"].is_null(), "{record}");
}

#[tokio::test]
async fn two_contacts_with_the_same_number_link_nothing_and_the_record_says_why() {
    let app = spawn_app().await;
    let mut contacts = app
        .seed(
            "Contact",
            json!([
                {"LastName": "Rivera", "Phone": "(415) 555-0101"},
                {"LastName": "Rivera Jr", "MobilePhone": "+14155550101"},
            ]),
        )
        .await;
    contacts.sort();

    let wamid = customer_writes(&app, json!({"text": "which one of us?"})).await;
    let flushed = app.flush().await;

    assert_eq!(flushed.written, 1, "{flushed:?}");
    let record = record_of(&app, &wamid);
    assert!(record["Contact__c"].is_null(), "{record}");
    assert_eq!(
        record["Error_Message__c"],
        format!(
            "Not linked: 2 Contacts have this phone number ({}, {}). Link the right one by hand.",
            contacts[0], contacts[1]
        )
    );
    assert_eq!(record["Status__c"], "Received");
}

#[tokio::test]
async fn media_messages_record_their_type_and_the_documents_filename() {
    let app = spawn_app().await;
    let image = customer_writes(
        &app,
        json!({"type": "image", "id": "1098765432101234", "mime_type": "image/jpeg"}),
    )
    .await;
    let captioned = customer_writes(
        &app,
        json!({"type": "image", "id": "1098765432109999", "caption": "my receipt"}),
    )
    .await;
    post_webhook(
        &app,
        &signed_inbound(
            &app,
            json!({"from": CUSTOMER, "id": "wamid.DOC", "timestamp": app.clock.now().timestamp().to_string(),
                   "type": "document", "document": {"id": "2233445566", "mime_type": "application/pdf",
                   "sha256": "x", "filename": "signed-quote.pdf"}}),
        ),
    )
    .await;

    let flushed = app.flush().await;

    assert_eq!((flushed.written, flushed.calls), (3, 1), "{flushed:?}");
    let image = record_of(&app, &image);
    assert_eq!(image["Message_Type__c"], "Image");
    let body = image["Body__c"].as_str().unwrap();
    assert!(
        body.contains("copying it into this record's Files"),
        "{body}"
    );
    let captioned = record_of(&app, &captioned)["Body__c"].clone();
    assert!(
        captioned.as_str().unwrap().starts_with("my receipt\n\n"),
        "{captioned}"
    );
    let document = record_of(&app, "wamid.DOC");
    assert_eq!(document["Message_Type__c"], "Document");
    assert_eq!(document["Media_Filename__c"], "signed-quote.pdf");
    let body = document["Body__c"].as_str().unwrap();
    assert!(
        body.starts_with("A document \"signed-quote.pdf\""),
        "{body}"
    );
}

#[tokio::test]
async fn a_salesforce_outage_during_the_flush_loses_nothing() {
    let app = spawn_app().await;
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Rivera", "Phone": "(415) 555-0101"}]),
        )
        .await;
    let wamid = customer_writes(&app, json!({"text": "anyone there?"})).await;
    set_org_faults(&app, json!({"error_503_rate": 1.0})).await;

    let during = app.flush().await;
    let depth_during = outbox_depth(&app).await;
    let records_during = inbound_records(&app).len();
    set_org_faults(&app, json!({})).await;
    let too_soon = app.flush().await;
    app.clock.shift(Duration::seconds(11));
    let after = app.flush().await;

    assert_eq!((during.written, during.retried), (0, 1), "{during:?}");
    assert_eq!(during.calls, 0, "no write is tried while the lookup fails");
    assert_eq!((depth_during, records_during), (1, 0));
    assert_eq!(
        too_soon.calls + too_soon.lookups,
        0,
        "backed off: {too_soon:?}"
    );
    assert_eq!(after.written, 1, "{after:?}");
    assert_eq!(record_of(&app, &wamid)["Contact__c"], contact[0].as_str());
    assert_eq!(outbox_depth(&app).await, 0);
}

#[tokio::test]
async fn sixty_inbound_messages_from_sixty_customers_and_a_status_cost_five_salesforce_calls() {
    const CUSTOMERS: usize = 60;
    let app = spawn_app().await;
    let template = json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]);
    let ids = app.queue(template).await;
    app.dispatch().await;
    let mut wamids = Vec::new();
    for i in 0..CUSTOMERS {
        let answer = app
            .wa_control(
                "inbound",
                json!({"from": format!("1415555{i:04}"), "text": format!("message {i}")}),
            )
            .await;
        wamids.push(answer["wamid"].as_str().unwrap().to_string());
    }
    app.deliver_webhooks().await;
    for wamid in &wamids {
        assert_queued(&app, wamid).await;
    }
    let before = rest_calls(&app).await;

    let flushed = app.flush().await;
    let calls = rest_calls(&app).await - before;

    // 60 distinct customers, each with a phone and a BSUID (as every 2026 webhook has): one
    // query per object for the 60 BSUIDs, one SOSL search for Contact and Lead, the inbound
    // queue's Id (at most once per 15 minutes, as nobody owns these numbers), and one composite
    // call carrying the upsert of the 60 records and the update of the outbound record's status.
    assert_eq!(flushed.lookups, 4, "{flushed:?}");
    assert_eq!(flushed.calls, 1, "{flushed:?}");
    assert_eq!(calls, 5);
    assert_eq!(inbound_records(&app).len(), CUSTOMERS);
    assert_ne!(app.record(&ids[0])["Status__c"], "Queued");
    println!(
        "inbound: {CUSTOMERS} messages from {CUSTOMERS} customers + 1 status write-back → {calls} REST calls"
    );
}

#[tokio::test]
async fn a_reaction_record_shows_the_window_its_earlier_text_opened_not_a_new_one() {
    let app = spawn_app().await;
    let wrote_at = app.clock.now().timestamp() - 3600;
    customer_writes(&app, json!({"text": "hello", "timestamp": wrote_at})).await;
    let reaction = customer_writes(
        &app,
        json!({"type": "reaction", "message_id": "wamid.OUT", "emoji": "👍"}),
    )
    .await;

    app.flush().await;

    let record = record_of(&app, &reaction);
    let expires = parse_salesforce_datetime(record["Window_Expires_At__c"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(expires, wrote_at + 24 * 3600, "{record}");
}

#[tokio::test]
async fn a_conversation_looks_its_customer_up_once_until_the_answer_is_fifteen_minutes_old() {
    let app = spawn_app_with(Options {
        // The JWT's expiry is checked against the simulator's (shifted) clock.
        tune: Box::new(|s| s.salesforce.auth = sfwa::config::AuthMode::ClientCredentials),
        ..Options::default()
    })
    .await;
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Rivera", "Phone": "(415) 555-0101"}]),
        )
        .await;

    customer_writes(&app, json!({"text": "first"})).await;
    let first = app.flush().await;
    let second_message = customer_writes(&app, json!({"text": "second"})).await;
    let second = app.flush().await;
    app.clock.shift(Duration::minutes(16));
    customer_writes(&app, json!({"text": "third"})).await;
    let third = app.flush().await;

    // First: the BSUID on Contact and Lead (no one holds it yet), then the phone search, which
    // finds the Contact and stores the BSUID on it. Second: all cached. After 15 minutes: the
    // BSUID alone finds the Contact (one query per object), no phone search.
    assert_eq!((first.lookups, second.lookups, third.lookups), (3, 0, 2));
    assert_eq!(
        record_of(&app, &second_message)["Contact__c"],
        contact[0].as_str(),
        "the cached answer still links"
    );
}
