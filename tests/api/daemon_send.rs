//! The daemon's send path against both simulators: the window rule, record validation, Meta's
//! refusals, and the record a rep sees at the end.

use serde_json::json;

use crate::daemon_support::{spawn_app, spawn_app_with, Options};

const CUSTOMER: &str = "16505551234";

#[tokio::test]
async fn a_template_to_a_new_customer_is_sent_and_ends_read_on_the_record() {
    let app = spawn_app().await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;

    app.dispatch().await;
    let record = app.status_after_webhooks(&ids[0], "Read").await;

    assert!(record["WhatsApp_Message_Id__c"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));
    for field in ["Sent_At__c", "Delivered_At__c", "Read_At__c"] {
        assert!(record[field].is_string(), "{field} set");
    }
    let sent = app.wa_messages().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["biz_opaque_callback_data"], ids[0].as_str());
}

#[tokio::test]
async fn a_text_outside_the_window_is_failed_without_calling_whatsapp() {
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 25).await;
    let ids = app
        .queue(
            json!([{"To_Phone__c": "(650) 555-1234", "Message_Type__c": "Text", "Body__c": "hi"}]),
        )
        .await;

    app.dispatch().await;
    let record = app.status_after_webhooks(&ids[0], "Failed").await;

    assert_eq!(record["Error_Code__c"], "OUTSIDE_SESSION_WINDOW");
    assert!(record["Error_Message__c"]
        .as_str()
        .unwrap()
        .contains("template"));
    assert!(
        record["Window_Expires_At__c"].is_string(),
        "says when the window closed"
    );
    assert!(
        app.wa_messages().await.is_empty(),
        "WhatsApp was never called"
    );
}

#[tokio::test]
async fn a_text_inside_the_window_is_sent_with_the_window_expiry() {
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Text", "Body__c": "Your order shipped"}]))
        .await;

    app.dispatch().await;
    let record = app.status_after_webhooks(&ids[0], "Read").await;

    assert!(record["Window_Expires_At__c"].is_string());
    assert_eq!(app.wa_messages().await.len(), 1);
}

#[tokio::test]
async fn a_text_to_a_customer_who_never_wrote_is_refused() {
    let app = spawn_app().await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Image", "Media_URL__c": "https://x.test/a.png"}]))
        .await;

    app.dispatch().await;

    assert_eq!(
        app.status_after_webhooks(&ids[0], "Failed").await["Error_Code__c"],
        "OUTSIDE_SESSION_WINDOW"
    );
}

#[tokio::test]
async fn every_record_problem_gets_its_error_code_and_the_others_still_go() {
    let app = spawn_app().await;
    let cases = json!([
        {"To_Phone__c": "not a phone", "Message_Type__c": "Template", "Template_Name__c": "hello_world"},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Template"},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world", "Template_Parameters__c": "[oops"},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Image", "Media_URL__c": "https://x.test/a.png", "Body__c": "x".repeat(1025)},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Text"},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Document"},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "appointment_reminder", "Template_Parameters__c": "[\"only one\"]"},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "no_such_template"},
        {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"},
    ]);
    let ids = app.queue(cases).await;

    app.dispatch().await;

    let expected = [
        "INVALID_PHONE",
        "MISSING_TEMPLATE",
        "INVALID_TEMPLATE_PARAMETERS",
        "BODY_TOO_LONG",
        "MISSING_BODY",
        "MISSING_MEDIA_URL",
        "WA_132000",
        "WA_132001",
    ];
    for (id, code) in ids.iter().zip(expected) {
        let record = app.status_after_webhooks(id, "Failed").await;
        assert_eq!(record["Error_Code__c"], code, "{record}");
        assert!(!record["Error_Message__c"].as_str().unwrap_or("").is_empty());
    }
    app.status_after_webhooks(&ids[8], "Read").await;
}

#[tokio::test]
async fn a_number_not_on_whatsapp_fails_from_the_webhook_with_131026() {
    let app = spawn_app().await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+1 650 555 0000", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;

    app.dispatch().await;
    let record = app.status_after_webhooks(&ids[0], "Failed").await;

    assert_eq!(record["Error_Code__c"], "WA_131026");
    assert!(record["Error_Message__c"]
        .as_str()
        .unwrap()
        .contains("WhatsApp"));
}

#[tokio::test]
async fn a_scheduled_message_waits_until_it_is_due() {
    // Client credentials: a JWT's exp is checked against the org's (shifted) clock.
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.salesforce.auth = sfwa::config::AuthMode::ClientCredentials),
        ..Options::default()
    })
    .await;
    let later = (app.clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world", "Scheduled_At__c": later}]))
        .await;

    app.dispatch().await;
    assert!(
        app.journal(&ids[0]).await.is_none(),
        "not claimed before it is due"
    );
    app.clock.shift(chrono::Duration::minutes(61));

    app.dispatch().await;
    assert!(app.journal(&ids[0]).await.is_some());
}
