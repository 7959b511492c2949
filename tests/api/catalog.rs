//! The template catalog against both simulators: a template send is checked before it leaves
//! (exists, APPROVED, its parameters), a PAUSED template's messages wait for it (across a
//! restart) or are refused when set so, a template created after the last sync is fetched on
//! the miss, an unreadable catalog still lets sends go, and the catalog reaches Salesforce as
//! WhatsApp_Template__c records.

use std::time::Duration;

use serde_json::{json, Value};
use sfwa::pipeline::catalog_sync;

use crate::daemon_support::{spawn_app_with, Options, TestApp};

const TEMPLATE_OBJECT: &str = "WhatsApp_Template__c";

/// A daemon whose catalog is the simulator's account (`whatsapp.waba_id`), with `tune` after.
async fn spawn_with_catalog(tune: impl FnOnce(&mut sfwa::config::Settings) + 'static) -> TestApp {
    let options = Options::default();
    let waba_id = options.wa.waba_id.clone();
    spawn_app_with(Options {
        tune: Box::new(move |s| {
            s.whatsapp.business_account_id = waba_id;
            tune(s);
        }),
        ..options
    })
    .await
}

/// [`spawn_with_catalog`] whose messages stay Sent: the record must still show Sent at the flush,
/// with no delivered / read webhook on its own (50 ms of real time was not always enough under a
/// loaded test run).
async fn spawn_with_catalog_until_sent() -> TestApp {
    let mut options = Options::default();
    options.wa.delivered_after = Duration::from_secs(3600);
    let waba_id = options.wa.waba_id.clone();
    spawn_app_with(Options {
        tune: Box::new(move |s| s.whatsapp.business_account_id = waba_id),
        ..options
    })
    .await
}

fn hello_world(status: &str) -> Value {
    json!({"name": "hello_world", "language": "en_US", "status": status, "category": "UTILITY",
           "quality": "GREEN"})
}

/// Queues one `hello_world` template message.
async fn queue_hello(app: &TestApp) -> String {
    app.queue(
        json!([{"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Template",
                      "Template_Name__c": "hello_world"}]),
    )
    .await
    .remove(0)
}

#[tokio::test]
async fn a_paused_template_waits_without_calling_whatsapp_and_goes_once_it_is_approved_again_across_a_restart(
) {
    let mut app = spawn_with_catalog(|_| {}).await;
    app.wa_control("templates", hello_world("PAUSED")).await;
    let id = queue_hello(&app).await;

    app.dispatch().await;
    let waiting = app.status_after_flush(&id, "Queued").await;
    app.restart().await;
    app.dispatch().await;
    let still_waiting = app.record(&id);
    app.wa_control("templates", hello_world("APPROVED")).await;
    app.deliver_webhooks().await;
    app.dispatch().await;
    let sent = app.status_after_flush(&id, "Sent").await;

    let reason = waiting["Error_Message__c"].as_str().unwrap_or_default();
    assert!(
        reason.contains("paused template 'hello_world' (en_US)"),
        "{reason}"
    );
    assert_eq!(
        still_waiting["Status__c"], "Queued",
        "still waits after the restart"
    );
    assert!(sent["WhatsApp_Message_Id__c"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));
    assert_eq!(
        app.wa_messages().await.len(),
        1,
        "WhatsApp was called once, after the approval"
    );
}

#[tokio::test]
async fn a_paused_template_is_refused_before_calling_whatsapp_when_its_number_does_not_wait() {
    let app = spawn_with_catalog(|s| s.templates.wait_when_paused = false).await;
    app.wa_control("templates", hello_world("PAUSED")).await;
    let id = queue_hello(&app).await;

    app.dispatch().await;
    let record = app.status_after_flush(&id, "Failed").await;

    assert_eq!(record["Error_Code__c"], "TEMPLATE_PAUSED");
    assert!(
        app.wa_messages().await.is_empty(),
        "WhatsApp was never called"
    );
}

#[tokio::test]
async fn a_template_send_records_when_the_window_closes_whether_its_template_was_stored_or_fetched()
{
    // One template decided by the stored catalog, one fetched from Meta at its send: each
    // record says when the customer's window closes.
    let app = spawn_with_catalog_until_sent().await;
    catalog_sync::sync(&app.pipeline.dispatcher).await.unwrap();
    app.customer_wrote("16505551234", 2).await;
    let wrote_at = app.clock.now().timestamp() - 2 * 3600;
    // Created after the sync: fetched from Meta when its message is checked.
    app.wa_control(
        "templates",
        json!({"name": "order_update", "language": "en_US", "status": "APPROVED",
               "category": "UTILITY"}),
    )
    .await;
    let ids = app
        .queue(json!([
            {"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Template",
             "Template_Name__c": "hello_world"},
            {"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Template",
             "Template_Name__c": "order_update"}
        ]))
        .await;

    app.dispatch().await;

    for id in &ids {
        let record = app.status_after_flush(id, "Sent").await;
        let expires = record["Window_Expires_At__c"].as_str().unwrap_or_default();
        let expires = sfwa::domain::message::parse_salesforce_datetime(expires).unwrap();
        assert_eq!(expires.timestamp(), wrote_at + 24 * 3600, "{record}");
    }
    assert_eq!(app.wa_messages().await.len(), 2);
}

#[tokio::test]
async fn a_template_created_after_the_last_sync_is_found_by_the_fetch_on_miss_and_sent() {
    let app = spawn_with_catalog_until_sent().await;
    let synced = catalog_sync::sync(&app.pipeline.dispatcher).await.unwrap();
    app.wa_control(
        "templates",
        json!({"name": "spring_news", "language": "en_US", "status": "APPROVED",
               "category": "MARKETING", "body_params": 1}),
    )
    .await;
    // A UK customer: marketing templates to US (+1) numbers are refused (`consent`).
    let id = app
        .queue(
            json!([{"To_Phone__c": "+44 7911 123456", "Message_Type__c": "Template",
                       "Template_Name__c": "spring_news", "Template_Parameters__c": "[\"Ann\"]"}]),
        )
        .await
        .remove(0);

    app.dispatch().await;
    let record = app.status_after_flush(&id, "Sent").await;

    assert!(
        synced.templates >= 5,
        "the first sync listed the account: {synced:?}"
    );
    assert!(record["WhatsApp_Message_Id__c"].is_string());
    assert_eq!(app.wa_messages().await.len(), 1);
}

#[tokio::test]
async fn a_parameter_mismatch_is_refused_without_calling_whatsapp() {
    let app = spawn_with_catalog(|_| {}).await;
    let id = app
        .queue(
            json!([{"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Template",
                       "Template_Name__c": "appointment_reminder",
                       "Template_Parameters__c": "[\"Ann\"]"}]),
        )
        .await
        .remove(0);

    app.dispatch().await;
    let record = app.status_after_flush(&id, "Failed").await;

    assert_eq!(record["Error_Code__c"], "TEMPLATE_PARAMETERS_MISMATCH");
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(
        message.contains("'appointment_reminder' (en_US)"),
        "{message}"
    );
    assert!(message.contains("takes 2 body parameter"), "{message}");
    assert!(
        app.wa_messages().await.is_empty(),
        "WhatsApp was never called"
    );
}

#[tokio::test]
async fn a_template_send_goes_and_whatsapp_judges_it_when_the_catalog_cannot_be_read() {
    // An account the token cannot list: Meta answers the listing with an error.
    let app = spawn_with_catalog(|s| s.whatsapp.business_account_id = "1".into()).await;
    let id = app
        .queue(
            json!([{"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Template",
                       "Template_Name__c": "appointment_reminder",
                       "Template_Parameters__c": "[\"Ann\", \"Tuesday\"]"}]),
        )
        .await
        .remove(0);

    app.dispatch().await;
    let record = app.status_after_flush(&id, "Sent").await;

    assert!(record["WhatsApp_Message_Id__c"].is_string());
    assert_eq!(app.wa_messages().await.len(), 1);
}

#[tokio::test]
async fn the_catalog_reaches_salesforce_as_template_records_and_follows_a_category_webhook() {
    let app = spawn_with_catalog(|_| {}).await;

    catalog_sync::sync(&app.pipeline.dispatcher).await.unwrap();
    app.flush().await;
    let mut changed = hello_world("APPROVED");
    changed["category"] = json!("MARKETING");
    app.wa_control("templates", changed).await;
    app.deliver_webhooks().await;
    app.flush().await;

    let state = app.org.state();
    let org = state.org();
    let records: Vec<_> = org.rows(TEMPLATE_OBJECT).collect();
    assert_eq!(records.len(), 5, "one record per template and language");
    let hello = records
        .iter()
        .find(|r| r.get("Template_Key__c") == Some(&json!("hello_world|en_US")))
        .expect("hello_world's record");
    assert_eq!(hello.get("Category__c"), Some(&json!("MARKETING")));
    assert_eq!(hello.get("Status__c"), Some(&json!("APPROVED")));
    let order = records
        .iter()
        .find(|r| r.get("Template_Key__c") == Some(&json!("order_update|en_US")))
        .expect("order_update's record");
    assert_eq!(order.get("Header_Type__c"), Some(&json!("IMAGE")));
    assert_eq!(order.get("Parameter_Count__c"), Some(&json!(1)));
}

#[tokio::test]
async fn a_burst_of_sends_of_a_template_never_synced_all_go_after_one_fetch() {
    let app = spawn_with_catalog(|_| {}).await;
    let records: Vec<Value> = (0..8)
        .map(|i| {
            json!({"To_Phone__c": format!("+1650555{:04}", 4000 + i), "Message_Type__c": "Template",
                   "Template_Name__c": "hello_world"})
        })
        .collect();
    let ids = app.queue(json!(records)).await;

    app.dispatch().await;
    app.flush().await;

    for id in &ids {
        let record = app.record(id);
        assert!(record["WhatsApp_Message_Id__c"].is_string(), "{record}");
        assert!(record["Error_Code__c"].is_null(), "{record}");
    }
    assert_eq!(app.wa_messages().await.len(), ids.len());
}
