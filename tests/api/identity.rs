//! Who the customer is (issue 13): the real daemon against the WhatsApp simulator's 2026 world —
//! a customer with a username (phone withheld) writes in and is answered by their business-scoped
//! user id in `recipient`; a customer who changes number is written to at the new one; an
//! authentication template to a customer known only by user id is refused before sending (or, when
//! the template listing is unavailable, reads the same from Meta's 131062); the answer to a
//! `request_contact_info` gives the daemon the customer's phone.

use std::time::Duration;

use serde_json::{json, Value};
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::whatsapp::templates::Category;
use sfwa::whatsapp::AUTH_TEMPLATE_TO_USER_ID;
use sfwa_sim::whatsapp::WhatsAppSimConfig;

use crate::daemon_support::{spawn_app_with, Options, TestApp};

/// A customer who uses a WhatsApp username: Meta withholds their number.
const USERNAME_CUSTOMER: &str = "14155550111";
const CUSTOMER: &str = "14155550122";
const NEW_NUMBER: &str = "14155550199";
const AUTH_TEMPLATE: &str = "login_code";

/// Statuses an hour away: the tests look at what was sent, not at delivery.
fn quiet_whatsapp() -> WhatsAppSimConfig {
    WhatsAppSimConfig {
        delivered_after: Duration::from_secs(3600),
        read_after: Duration::from_secs(3600),
        ..WhatsAppSimConfig::default()
    }
}

/// The daemon knowing the simulated account's id (so it can list its templates), or not.
async fn spawn(knows_account: bool) -> TestApp {
    let wa = quiet_whatsapp();
    let waba_id = wa.waba_id.clone();
    spawn_app_with(Options {
        wa,
        tune: Box::new(move |s| {
            if knows_account {
                s.whatsapp.business_account_id = waba_id;
            }
        }),
        ..Options::default()
    })
    .await
}

/// A username customer writes "hi"; returns their BSUID as the webhook gave it.
async fn username_customer_writes_in(app: &TestApp) -> String {
    app.wa_control(
        "customers",
        json!({"wa_id": USERNAME_CUSTOMER, "username": "ana.b", "last_inbound_at": null}),
    )
    .await;
    let written = app
        .wa_control(
            "inbound",
            json!({"from": USERNAME_CUSTOMER, "type": "text", "text": "hi"}),
        )
        .await;
    assert_eq!(written["phone_shown"], false, "{written}");
    app.deliver_webhooks().await;
    written["user_id"].as_str().expect("a BSUID").to_string()
}

/// An approved authentication template in the simulator's registry.
async fn register_authentication_template(app: &TestApp) {
    app.wa_control(
        "templates",
        json!({"name": AUTH_TEMPLATE, "language": "en_US", "status": "APPROVED",
               "category": "AUTHENTICATION", "body_params": 1}),
    )
    .await;
}

fn auth_template_to(user_id: &str) -> Value {
    json!([{"To_User_Id__c": user_id, "Message_Type__c": "Template",
            "Template_Name__c": AUTH_TEMPLATE, "Template_Parameters__c": "[\"123456\"]"}])
}

#[tokio::test]
async fn a_username_customer_who_wrote_in_gets_a_text_reply_by_user_id_in_recipient() {
    // Arrange
    let app = spawn(false).await;
    let user_id = username_customer_writes_in(&app).await;
    let ids = app
        .queue(json!([{"To_User_Id__c": user_id, "Message_Type__c": "Text",
                       "Body__c": "Thanks, we are on it"}]))
        .await;

    // Act
    let step = app.dispatch().await;

    // Assert
    assert!(
        matches!(step.outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "the window the BSUID opened lets the text go: {:?}",
        step.outcomes
    );
    let sent = app.wa_messages().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let request = &sent[0]["request"];
    assert_eq!(request["recipient"], user_id.as_str(), "{request}");
    assert!(
        request.get("to").is_none(),
        "a BSUID never goes in to: {request}"
    );
    assert_eq!(
        sent[0]["wa_id"], USERNAME_CUSTOMER,
        "it reached the customer"
    );
    app.status_after_flush(&ids[0], "Sent").await;
}

#[tokio::test]
async fn a_customer_who_changes_number_is_written_to_at_the_new_one() {
    // Arrange: the customer wrote from their old number, then Meta says they moved.
    let app = spawn(false).await;
    app.wa_control(
        "inbound",
        json!({"from": CUSTOMER, "type": "text", "text": "hello"}),
    )
    .await;
    app.deliver_webhooks().await;
    app.wa_control(
        "customers/change_number",
        json!({"customer": CUSTOMER, "new_wa_id": NEW_NUMBER}),
    )
    .await;
    app.deliver_webhooks().await;
    // The Contact still has the old number, so the Flow addresses the old one.
    let ids = app
        .queue(
            json!([{"To_Phone__c": format!("+{CUSTOMER}"), "Message_Type__c": "Text",
                       "Body__c": "Your order shipped"}]),
        )
        .await;

    // Act
    let step = app.dispatch().await;

    // Assert: free-form text is allowed (the window followed the person) and went to the new number.
    assert!(
        matches!(step.outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{:?}",
        step.outcomes
    );
    let sent = app.wa_messages().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["request"]["to"], NEW_NUMBER,
        "{}",
        sent[0]["request"]
    );
    assert_eq!(
        app.journal(&ids[0]).await.unwrap().wa_id.as_deref(),
        Some(NEW_NUMBER)
    );
}

#[tokio::test]
async fn an_authentication_template_to_a_user_id_only_customer_is_refused_before_sending() {
    // Arrange
    let app = spawn(true).await;
    register_authentication_template(&app).await;
    let user_id = username_customer_writes_in(&app).await;
    let ids = app.queue(auth_template_to(&user_id)).await;

    // Act
    let step = app.dispatch().await;

    // Assert
    assert!(
        matches!(step.outcomes.as_slice(), [DispatchOutcome::Refused { code }] if code == AUTH_TEMPLATE_TO_USER_ID),
        "{:?}",
        step.outcomes
    );
    assert!(app.wa_messages().await.is_empty(), "nothing was sent");
    let attempts = app.wa_sim_get("attempts").await;
    assert_eq!(
        attempts["attempts"],
        json!([]),
        "no call was made: {attempts}"
    );
    let record = app.status_after_flush(&ids[0], "Failed").await;
    assert_eq!(record["Error_Code__c"], AUTH_TEMPLATE_TO_USER_ID);
    assert!(
        record["Error_Message__c"]
            .as_str()
            .is_some_and(|m| m.contains("To Phone")),
        "{record}"
    );
}

#[tokio::test]
async fn without_the_template_listing_metas_131062_fails_the_record_with_the_same_code() {
    // Arrange: the daemon does not know the account, so it cannot list template categories.
    let app = spawn(false).await;
    register_authentication_template(&app).await;
    let user_id = username_customer_writes_in(&app).await;
    let ids = app.queue(auth_template_to(&user_id)).await;

    // Act
    let step = app.dispatch().await;

    // Assert: sent (a failed listing never blocks a send), refused by Meta, same code for the rep.
    assert!(
        matches!(step.outcomes.as_slice(), [DispatchOutcome::Failed { code }] if code == AUTH_TEMPLATE_TO_USER_ID),
        "{:?}",
        step.outcomes
    );
    let record = app.status_after_flush(&ids[0], "Failed").await;
    assert_eq!(record["Error_Code__c"], AUTH_TEMPLATE_TO_USER_ID);
}

#[tokio::test]
async fn the_phone_shared_through_request_contact_info_lets_an_authentication_template_go() {
    // Arrange: ask the username customer for their number, and they share it.
    let app = spawn(true).await;
    register_authentication_template(&app).await;
    let user_id = username_customer_writes_in(&app).await;
    app.queue(
        json!([{"To_User_Id__c": user_id, "Message_Type__c": "Request Contact Info",
                      "Body__c": "Share your number so we can send your login code."}]),
    )
    .await;
    let asked = app.dispatch().await;
    let request = app.wa_messages().await[0]["request"].clone();
    app.wa_control("customers/share_phone", json!({"customer": user_id}))
        .await;
    app.deliver_webhooks().await;
    let ids = app.queue(auth_template_to(&user_id)).await;

    // Act
    let step = app.dispatch().await;

    // Assert
    assert!(
        matches!(asked.outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{:?}",
        asked.outcomes
    );
    assert_eq!(
        request["interactive"],
        json!({"type": "request_contact_info",
               "body": {"text": "Share your number so we can send your login code."},
               "action": {"name": "request_contact_info"}})
    );
    assert!(
        matches!(step.outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{:?}",
        step.outcomes
    );
    let sent = app.wa_messages().await;
    assert_eq!(
        sent[1]["request"]["to"], USERNAME_CUSTOMER,
        "{}",
        sent[1]["request"]
    );
    assert_eq!(
        app.journal(&ids[0]).await.unwrap().wa_id.as_deref(),
        Some(USERNAME_CUSTOMER)
    );
}

#[tokio::test]
async fn the_template_listing_is_read_across_its_pages_with_each_category() {
    // Arrange: more templates than one page of Meta's listing holds.
    let app = spawn(true).await;
    register_authentication_template(&app).await;
    for i in 0..30 {
        app.wa_control(
            "templates",
            json!({"name": format!("bulk_{i:02}"), "language": "en_US", "status": "APPROVED"}),
        )
        .await;
    }

    // Act
    let templates = app
        .pipeline
        .dispatcher
        .whatsapp
        .message_templates(app.wa.waba_id())
        .await
        .unwrap();

    // Assert
    let registry = app.wa_sim_get("templates").await;
    let expected = registry["templates"].as_array().unwrap().len();
    assert!(expected > 25, "more than one page: {expected}");
    assert_eq!(templates.len(), expected);
    let login = templates.iter().find(|t| t.name == AUTH_TEMPLATE).unwrap();
    assert_eq!(login.category, Category::Authentication);
    assert_eq!(login.language, "en_US");
}

/// The whole story for a customer who uses a username, against both simulators: Meta
/// withholds their phone, their message becomes a record linked to their Contact by the BSUID the
/// Contact holds, the window opens, and a rep's reply addressed by `To_User_Id__c` reaches them
/// by BSUID and is delivered.
#[tokio::test]
async fn a_username_customers_message_links_to_their_contact_by_bsuid_and_the_reply_by_bsuid_is_delivered(
) {
    // Arrange: the customer uses a username; their Contact holds the BSUID an earlier message
    // stored on it (the org has no phone for them at all).
    let app = spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            delivered_after: Duration::from_millis(10),
            read_after: Duration::from_secs(3600),
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    })
    .await;
    app.wa_control(
        "customers",
        json!({"wa_id": USERNAME_CUSTOMER, "username": "ana.b", "last_inbound_at": null}),
    )
    .await;
    let user_id = app.wa.user_id_of(USERNAME_CUSTOMER);
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Barros", "WhatsApp_User_Id__c": user_id}]),
        )
        .await;

    // Act: they write in; the write-back runs; a rep replies by user id.
    let written = app
        .wa_control(
            "inbound",
            json!({"from": USERNAME_CUSTOMER, "type": "text", "text": "Is my order on its way?"}),
        )
        .await;
    app.deliver_webhooks().await;
    app.flush().await;
    let reply = app
        .queue(json!([{"To_User_Id__c": user_id, "Message_Type__c": "Text",
                       "Body__c": "Yes, it ships today"}]))
        .await;
    let step = app.dispatch().await;

    // Assert
    assert_eq!(written["phone_shown"], false, "{written}");
    let inbound: Vec<Value> = app
        .org
        .state()
        .org()
        .rows("WhatsApp_Message__c")
        .filter(|r| r["WhatsApp_Message_Id__c"] == written["wamid"])
        .map(|r| Value::Object(r.clone()))
        .collect();
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    let record = &inbound[0];
    assert_eq!(record["From_User_Id__c"], user_id.as_str(), "{record}");
    assert_eq!(record["From_Username__c"], "ana.b", "{record}");
    assert!(
        record.get("From_Phone__c").is_none_or(Value::is_null),
        "{record}"
    );
    assert_eq!(
        record["Contact__c"],
        contact[0].as_str(),
        "linked by the stored BSUID"
    );
    assert_eq!(record["Body__c"], "Is my order on its way?");
    assert!(
        matches!(step.outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "the window their message opened lets the text go: {:?}",
        step.outcomes
    );
    let sent = app.wa_messages().await;
    assert_eq!(sent[0]["request"]["recipient"], user_id.as_str());
    app.deliver_webhooks().await;
    app.flush().await;
    let status = app.record(&reply[0])["Status__c"].clone();
    assert!(
        status == "Delivered" || status == "Read",
        "the reply reached the customer: {status}"
    );
}
