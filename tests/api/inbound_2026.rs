//! Meta's 2026 inbound webhooks against the real daemon: signed POSTs in Meta's documented shapes
//! (a username customer known only by a BSUID, every new message type, the `standby` field, other
//! numbers of the same app, Id-looking status callbacks), each checked on the record the org
//! simulator holds after a flush, in the window mirror, and in `/metrics`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sfwa::domain::ids::{BusinessNumberId, CustomerId};
use sfwa::store::{inbound, outbox};
use sfwa_sim::whatsapp::signature;

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp, MSG};

const BSUID: &str = "US.13491208655302741918";
const PHONE: &str = "16505551234";
/// A business number of the same Meta app that this instance does not serve.
const FOREIGN_NUMBER: &str = "999000111222";

/// Meta's envelope around one change per `(field, value)`, for `number`, signed.
fn signed_for(app: &TestApp, number: &str, changes: Vec<(&str, Value)>) -> (Vec<u8>, String) {
    let changes: Vec<Value> = changes
        .into_iter()
        .map(|(field, mut value)| {
            value["messaging_product"] = json!("whatsapp");
            value["metadata"] =
                json!({"display_phone_number": "15550000000", "phone_number_id": number});
            json!({"field": field, "value": value})
        })
        .collect();
    let body = serde_json::to_vec(&json!({"object": "whatsapp_business_account",
        "entry": [{"id": app.wa.waba_id(), "changes": changes}]}))
    .unwrap();
    let signature = signature(&body, app.wa.app_secret());
    (body, signature)
}

fn signed(app: &TestApp, changes: Vec<(&str, Value)>) -> (Vec<u8>, String) {
    signed_for(app, app.wa.phone_number_id(), changes)
}

async fn post(app: &TestApp, (body, signature): (Vec<u8>, String)) {
    let status = app
        .http
        .post(app.wa.webhook_url().unwrap())
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

fn now(app: &TestApp) -> String {
    app.clock.now().timestamp().to_string()
}

/// The one Inbound record of message `wamid`.
fn record_of(app: &TestApp, wamid: &str) -> Value {
    let records: Vec<Value> = app
        .org
        .state()
        .org()
        .rows(MSG)
        .filter(|r| r["WhatsApp_Message_Id__c"] == wamid)
        .map(|r| Value::Object(r.clone()))
        .collect();
    assert_eq!(records.len(), 1, "records for {wamid}: {records:?}");
    records.into_iter().next().unwrap()
}

fn inbound_count(app: &TestApp) -> usize {
    app.org
        .state()
        .org()
        .rows(MSG)
        .filter(|r| r["Direction__c"] == "Inbound")
        .count()
}

/// When the mirror says `customer` last wrote to `number`.
async fn window(app: &TestApp, number: &str, customer: &str) -> Option<DateTime<Utc>> {
    let number: BusinessNumberId = number.parse().unwrap();
    let customer: CustomerId = customer.parse().unwrap();
    app.pipeline
        .core
        .store
        .read(move |c| inbound::last_inbound(c, &number, &customer))
        .await
        .unwrap()
}

/// Rows in a store table (the dedupe keys, the refused events).
async fn rows(app: &TestApp, table: &'static str) -> i64 {
    app.pipeline
        .core
        .store
        .read(move |c| {
            Ok(
                c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })
        .await
        .unwrap()
}

/// One sample of the daemon's `/metrics` (`name{labels}` as exposed); 0 when absent.
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.scrape().await;
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// Meta's message from a customer who uses a username: no `from`, their BSUID instead.
fn from_username(app: &TestApp, wamid: &str, kind: &str, object: Value) -> Value {
    let mut message =
        json!({"from_user_id": BSUID, "id": wamid, "timestamp": now(app), "type": kind});
    message[kind] = object;
    message
}

/// A message from the customer with a phone.
fn from_phone(app: &TestApp, wamid: &str, kind: &str, object: Value) -> Value {
    let mut message = json!({"from": PHONE, "id": wamid, "timestamp": now(app), "type": kind});
    message[kind] = object;
    message
}

fn username_contact() -> Value {
    json!([{"profile": {"name": "Ana Lima", "username": "ana.lima"}, "user_id": BSUID}])
}

#[tokio::test]
async fn a_username_customers_text_becomes_a_record_with_bsuid_and_username_and_opens_the_window() {
    let app = spawn_app().await;
    let message = from_username(
        &app,
        "wamid.USERNAME1",
        "text",
        json!({"body": "Is my order ready?"}),
    );
    let wrote_at = app.clock.now().timestamp();

    post(
        &app,
        signed(
            &app,
            vec![(
                "messages",
                json!({"contacts": username_contact(), "messages": [message]}),
            )],
        ),
    )
    .await;
    let flushed = app.flush().await;

    assert_eq!(flushed.written, 1, "{flushed:?}");
    let record = record_of(&app, "wamid.USERNAME1");
    assert_eq!(record["From_User_Id__c"], BSUID, "{record}");
    assert_eq!(record["From_Username__c"], "ana.lima");
    assert!(
        record["From_Phone__c"].is_null(),
        "no phone is known: {record}"
    );
    assert_eq!(record["Body__c"], "Is my order ready?");
    assert_eq!(record["Status__c"], "Received");
    assert!(record["Window_Expires_At__c"].is_string());
    let opened = window(&app, app.wa.phone_number_id(), BSUID).await;
    assert_eq!(opened.map(|at| at.timestamp()), Some(wrote_at));
}

#[tokio::test]
async fn each_new_message_type_becomes_a_record_whose_body_a_rep_can_act_on() {
    let app = spawn_app().await;
    let flow_answers = r#"{"flow_token":"t-1","name":"Ana","date":"2026-12-01"}"#;
    let mut with_ad = from_phone(&app, "wamid.AD", "text", json!({"body": "Is it in stock?"}));
    with_ad["referral"] = json!({"source_url": "https://fb.me/ad1", "source_id": "2381",
        "source_type": "ad", "headline": "Spring sale", "body": "20% off", "media_type": "image",
        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ"});
    let messages = vec![
        from_phone(
            &app,
            "wamid.CONTACTS",
            "contacts",
            json!([{
            "name": {"formatted_name": "Bo Chen"},
            "phones": [{"phone": "+1 650 555 7777", "wa_id": "16505557777", "type": "CELL"}],
            "emails": [{"email": "bo@example.com"}]}]),
        ),
        from_phone(
            &app,
            "wamid.ORDER",
            "order",
            json!({"catalog_id": "123", "text": "by Friday",
            "product_items": [{"product_retailer_id": "SKU-1", "quantity": 2, "item_price": 10, "currency": "BRL"}]}),
        ),
        from_phone(
            &app,
            "wamid.FLOW",
            "interactive",
            json!({"type": "nfm_reply",
            "nfm_reply": {"name": "signup", "body": "Sent", "response_json": flow_answers}}),
        ),
        from_phone(&app, "wamid.WELCOME", "request_welcome", json!({})),
        from_phone(
            &app,
            "wamid.SYSTEM",
            "system",
            json!({"type": "user_changed_number",
            "body": "Ana changed their phone number", "wa_id": "16505559999"}),
        ),
        {
            let mut m = from_phone(
                &app,
                "wamid.UNSUPPORTED",
                "unsupported",
                json!({"type": "edit"}),
            );
            m["errors"] = json!([{"code": 131051, "title": "Message type unknown"}]);
            m
        },
        from_phone(
            &app,
            "wamid.LOCATION",
            "location",
            json!({"latitude": 52.52, "longitude": 13.405, "name": "Office"}),
        ),
        from_phone(&app, "wamid.POLL", "poll", json!({"question": "Lunch?"})),
        with_ad,
    ];
    let expected = [
        ("wamid.CONTACTS", "Contacts", "Shared a contact: Bo Chen, +1 650 555 7777, bo@example.com"),
        ("wamid.ORDER", "Order", "Placed an order from catalog 123: 2 × SKU-1 at 10.00 BRL; total 20.00 BRL; note: by Friday"),
        ("wamid.FLOW", "Flow Reply", "Answered the WhatsApp Flow \"signup\": name = Ana, date = 2026-12-01"),
        ("wamid.WELCOME", "System", "Opened the chat on WhatsApp (no message yet)"),
        ("wamid.SYSTEM", "System", "Changed their WhatsApp number to +16505559999. WhatsApp says: \"Ana changed their phone number\""),
        ("wamid.UNSUPPORTED", "Text", "Sent a message WhatsApp cannot show here (type \"edit\"; 131051 Message type unknown). Ask the customer to send it again another way."),
        ("wamid.LOCATION", "Location", "Shared a location: Office (52.52, 13.405)"),
        ("wamid.POLL", "Text", "Sent a WhatsApp message of type \"poll\", which sfwa cannot show in words yet. Its content: {\"question\":\"Lunch?\"}"),
        ("wamid.AD", "Text", "Is it in stock?\n\nCame from the click-to-WhatsApp ad \"Spring sale\" (https://fb.me/ad1)."),
    ];
    let contacts = json!([{"profile": {"name": "Ana"}, "wa_id": PHONE}]);

    post(
        &app,
        signed(
            &app,
            vec![(
                "messages",
                json!({"contacts": contacts, "messages": messages}),
            )],
        ),
    )
    .await;
    let flushed = app.flush().await;

    assert_eq!(flushed.written, expected.len(), "{flushed:?}");
    for (wamid, message_type, body) in expected {
        let record = record_of(&app, wamid);
        assert_eq!(
            (
                record["Message_Type__c"].as_str(),
                record["Body__c"].as_str()
            ),
            (Some(message_type), Some(body)),
            "{wamid}"
        );
        assert_eq!(record["From_Phone__c"], "+16505551234", "{wamid}");
    }
    let ad = record_of(&app, "wamid.AD");
    assert_eq!(ad["Referral_Source_Type__c"], "ad");
    assert_eq!(ad["Referral_Source_URL__c"], "https://fb.me/ad1");
    assert_eq!(ad["Referral_Headline__c"], "Spring sale");
    assert_eq!(ad["Referral_Click_Id__c"], "ARAkLkA8rmlFeiCktEJQ");
}

#[tokio::test]
async fn a_standby_message_becomes_a_record_saying_metas_agent_handled_it_and_opens_the_window() {
    let app = spawn_app().await;
    let message = from_phone(
        &app,
        "wamid.STANDBY",
        "text",
        json!({"body": "Still there?"}),
    );

    post(
        &app,
        signed(
            &app,
            vec![
                ("standby", json!({"messages": [message]})),
                (
                    "messaging_handovers",
                    json!({"messaging_handovers": [{"recipient": {"display_phone_number": "15550000000"}}]}),
                ),
            ],
        ),
    )
    .await;
    app.flush().await;

    let record = record_of(&app, "wamid.STANDBY");
    let body = record["Body__c"].as_str().unwrap();
    assert!(body.starts_with("[Meta's business agent handled"), "{body}");
    assert!(body.ends_with("Still there?"), "{body}");
    assert!(window(&app, app.wa.phone_number_id(), PHONE)
        .await
        .is_some());
    assert_eq!(
        metric(
            &app,
            "sfwa_webhook_parts_ignored_total{reason=\"messaging_handover\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_group_message_is_recorded_as_a_group_message_and_opens_no_1to1_window() {
    let app = spawn_app().await;
    let mut message = from_phone(&app, "wamid.GROUP", "text", json!({"body": "Lunch at 1?"}));
    message["group_id"] = json!("120363025246125486");
    let contacts = json!([{"profile": {"name": "Ana"}, "wa_id": PHONE}]);

    post(
        &app,
        signed(
            &app,
            vec![(
                "messages",
                json!({"contacts": contacts, "messages": [message]}),
            )],
        ),
    )
    .await;
    app.flush().await;

    let record = record_of(&app, "wamid.GROUP");
    assert_eq!(
        record["Body__c"],
        "In the WhatsApp group 120363025246125486, Ana wrote: Lunch at 1?"
    );
    assert_eq!(record["Group_Id__c"], "120363025246125486");
    assert!(window(&app, app.wa.phone_number_id(), PHONE)
        .await
        .is_none());
}

#[tokio::test]
async fn a_foreign_numbers_message_and_status_change_nothing_and_are_counted() {
    // The simulator's own delivered/read an hour away: only this test's POST could move the
    // message on.
    let mut options = Options::default();
    options.wa.delivered_after = std::time::Duration::from_secs(3600);
    options.wa.read_after = std::time::Duration::from_secs(3600);
    let app = spawn_app_with(options).await;
    let record = app
        .queue(
            json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template",
                       "Template_Name__c": "hello_world"}]),
        )
        .await
        .remove(0);
    app.dispatch().await;
    app.deliver_webhooks().await;
    let sent = app.journal(&record).await.expect("journaled");
    let message = from_phone(&app, "wamid.FOREIGN", "text", json!({"body": "hello?"}));
    // Our own message's wamid and record Id, failed with 131047, and a malformed status: for
    // another number, neither is looked at.
    let statuses = json!([
        {"id": sent.wamid.clone().unwrap(), "status": "failed", "timestamp": now(&app),
         "recipient_id": PHONE, "biz_opaque_callback_data": record,
         "errors": [{"code": 131047, "title": "Re-engagement message"}]},
        {"id": "wamid.X", "status": "read", "timestamp": "yesterday"}]);
    let seen_before = rows(&app, "webhook_seen").await;
    let outbox_before = app.pipeline.core.store.read(outbox::depth).await.unwrap();

    post(
        &app,
        signed_for(
            &app,
            FOREIGN_NUMBER,
            vec![
                ("messages", json!({"messages": [message]})),
                ("messages", json!({"statuses": statuses})),
            ],
        ),
    )
    .await;

    assert_eq!(
        rows(&app, "webhook_seen").await,
        seen_before,
        "no dedupe key"
    );
    assert_eq!(rows(&app, "webhook_rejects").await, 0, "nothing refused");
    assert_eq!(
        app.pipeline.core.store.read(outbox::depth).await.unwrap(),
        outbox_before,
        "nothing queued for Salesforce"
    );
    assert_eq!(app.journal(&record).await.unwrap().state, sent.state);
    assert!(window(&app, FOREIGN_NUMBER, PHONE).await.is_none());
    app.flush().await;
    assert_eq!(inbound_count(&app), 0);
    assert_eq!(
        metric(&app, "sfwa_webhook_foreign_number_parts_total").await,
        2.0
    );
}

#[tokio::test]
async fn a_number_listed_in_phone_number_ids_is_served() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.whatsapp.phone_number_ids = vec![FOREIGN_NUMBER.to_string()]),
        ..Options::default()
    })
    .await;
    let message = from_phone(&app, "wamid.SECOND", "text", json!({"body": "hello?"}));

    post(
        &app,
        signed_for(
            &app,
            FOREIGN_NUMBER,
            vec![("messages", json!({"messages": [message]}))],
        ),
    )
    .await;
    app.flush().await;

    assert_eq!(
        record_of(&app, "wamid.SECOND")["Business_Number_Id__c"],
        FOREIGN_NUMBER
    );
    assert!(window(&app, FOREIGN_NUMBER, PHONE).await.is_some());
    assert_eq!(
        metric(&app, "sfwa_webhook_foreign_number_parts_total").await,
        0.0
    );
}

#[tokio::test]
async fn a_status_echo_with_an_id_looking_callback_this_instance_did_not_send_writes_nothing() {
    let app = spawn_app().await;
    // Real Ids of the org (well-formed, right checksum): a message record this instance never
    // claimed, and a Contact.
    let message_record = app
        .seed(
            MSG,
            json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Text", "Body__c": "x", "Status__c": "Sent"}]),
        )
        .await
        .remove(0);
    let contact = app
        .seed("Contact", json!([{"LastName": "Lima"}]))
        .await
        .remove(0);
    let status = |wamid: &str, callback: &str| {
        json!({"id": wamid, "status": "delivered", "timestamp": now(&app), "recipient_id": PHONE,
               "biz_opaque_callback_data": callback})
    };

    post(
        &app,
        signed(
            &app,
            vec![(
                "messages",
                json!({"statuses": [status("wamid.NOT_OURS_1", &message_record),
                                    status("wamid.NOT_OURS_2", &contact)]}),
            )],
        ),
    )
    .await;
    let flushed = app.flush().await;

    assert_eq!(flushed.calls, 0, "{flushed:?}");
    assert!(app.record(&message_record)["Delivered_At__c"].is_null());
    assert_eq!(
        app.pipeline.core.store.read(outbox::depth).await.unwrap(),
        0
    );
    assert_eq!(
        metric(
            &app,
            "sfwa_webhook_parts_ignored_total{reason=\"untrusted_callback\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn a_record_naming_a_number_this_instance_does_not_serve_is_left_queued_for_the_instance_that_serves_it(
) {
    // Arrange: the customer wrote (so only the number can stop the text).
    let app = spawn_app().await;
    app.customer_wrote(PHONE, 1).await;
    let ids = app
        .queue(
            json!([{"To_Phone__c": format!("+{PHONE}"), "Message_Type__c": "Text",
                       "Body__c": "hello", "Business_Number_Id__c": FOREIGN_NUMBER}]),
        )
        .await;

    // Act
    let step = app.dispatch().await;
    app.flush().await;

    // Assert: never claimed, never written: another shard (or the UNKNOWN_BUSINESS_NUMBER
    // sweep) owns it.
    assert!(step.outcomes.is_empty(), "{:?}", step.outcomes);
    assert!(app.journal(&ids[0]).await.is_none());
    assert_eq!(app.record(&ids[0])["Status__c"], "Queued");
    assert!(app.wa_messages().await.is_empty(), "nothing was sent");
}
