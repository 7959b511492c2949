//! Marketing consent, end to end (issue 16): the real daemon against both simulators. A customer
//! who wrote STOP, turned marketing off in WhatsApp (`user_preferences`), or whose Contact has
//! `WhatsApp_Marketing_Opt_Out__c` checked gets no marketing template — refused `OPTED_OUT`
//! before WhatsApp is called — while utility templates still go; Meta's 131050 marks the customer
//! and is never retried; Meta's 131049 (marketing cap) waits at least a day.

use chrono::Duration;
use serde_json::{json, Value};
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::pipeline::worker;

use crate::daemon_support::{spawn_app_with, Options, TestApp};

/// A UK customer: Meta's US rule does not apply to them.
const CUSTOMER: &str = "447911123456";
const MARKETING: &str = "weekly_offer";

/// The daemon knowing the simulated account (so it can list its templates' categories), with a
/// marketing template registered in the simulator.
async fn spawn() -> TestApp {
    let mut options = Options::default();
    let waba_id = options.wa.waba_id.clone();
    // The 131049 test moves the clock a day on; the daemon's session must outlive it (sfwa signs
    // a new login with the host's real time, which the org, a day ahead, would refuse).
    options.org.session_timeout = Duration::days(3);
    let app = spawn_app_with(Options {
        tune: Box::new(move |s| s.whatsapp.business_account_id = waba_id),
        ..options
    })
    .await;
    app.wa_control(
        "templates",
        json!({"name": MARKETING, "language": "en_US", "status": "APPROVED",
               "category": "MARKETING", "body_params": 0}),
    )
    .await;
    app
}

fn template_to(template: &str, extra: Value) -> Value {
    let mut record = json!({"To_Phone__c": format!("+{CUSTOMER}"), "Message_Type__c": "Template",
                            "Template_Name__c": template, "Template_Language__c": "en_US"});
    if let (Some(record), Some(extra)) = (record.as_object_mut(), extra.as_object()) {
        record.extend(extra.clone());
    }
    json!([record])
}

/// The customer writes `text` and the daemon has the webhook.
async fn customer_says(app: &TestApp, text: &str) {
    app.wa_control(
        "inbound",
        json!({"from": CUSTOMER, "type": "text", "text": text}),
    )
    .await;
    app.deliver_webhooks().await;
}

/// Queues `records`, runs one dispatch step and returns its outcomes.
async fn send(app: &TestApp, records: Value) -> (Vec<String>, Vec<DispatchOutcome>) {
    let ids = app.queue(records).await;
    let step = app.dispatch().await;
    (ids, step.outcomes)
}

/// Templates the WhatsApp simulator accepted.
async fn templates_sent(app: &TestApp) -> usize {
    app.wa_messages()
        .await
        .iter()
        .filter(|m| m["type"] == "template")
        .count()
}

/// Send attempts the WhatsApp simulator saw, refused ones included.
async fn attempts(app: &TestApp) -> usize {
    let body = app.wa_sim_get("attempts").await;
    body["attempts"].as_array().map_or(0, Vec::len)
}

fn refused_opted_out(outcomes: &[DispatchOutcome]) -> bool {
    matches!(outcomes, [DispatchOutcome::Refused { code }] if code == "OPTED_OUT")
}

#[tokio::test]
async fn a_stop_reply_blocks_the_next_marketing_template_and_start_lifts_it() {
    // Arrange
    let app = spawn().await;
    customer_says(&app, "Stop").await;

    // Act
    let (blocked, outcomes) = send(&app, template_to(MARKETING, json!({}))).await;

    // Assert
    assert!(refused_opted_out(&outcomes), "{outcomes:?}");
    assert_eq!(templates_sent(&app).await, 0, "WhatsApp was never called");
    let record = app.status_after_flush(&blocked[0], "Failed").await;
    assert_eq!(record["Error_Code__c"], "OPTED_OUT");
    assert!(
        record["Error_Message__c"]
            .as_str()
            .is_some_and(|m| m.contains("stop word")),
        "{record}"
    );

    // Act: the customer opts back in.
    customer_says(&app, "START").await;
    let (_, outcomes) = send(&app, template_to(MARKETING, json!({}))).await;

    // Assert
    assert!(
        matches!(outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(templates_sent(&app).await, 1);
}

#[tokio::test]
async fn a_utility_template_still_goes_to_a_customer_who_stopped_marketing() {
    // Arrange
    let app = spawn().await;
    customer_says(&app, "UNSUBSCRIBE").await;

    // Act
    let (ids, outcomes) = send(&app, template_to("hello_world", json!({}))).await;

    // Assert
    assert!(
        matches!(outcomes.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{outcomes:?}"
    );
    app.status_after_flush(&ids[0], "Sent").await;
}

#[tokio::test]
async fn a_salesforce_side_opt_out_is_honoured_and_only_for_that_contact() {
    // Arrange
    let app = spawn().await;
    let contacts = app
        .seed(
            "Contact",
            json!([{"LastName": "Lima", "WhatsApp_Marketing_Opt_Out__c": true},
                   {"LastName": "Souza", "WhatsApp_Marketing_Opt_Out__c": false}]),
        )
        .await;

    // Act
    let (opted_out, refused) = send(
        &app,
        template_to(MARKETING, json!({"Contact__c": contacts[0]})),
    )
    .await;
    let (_, utility) = send(
        &app,
        template_to("hello_world", json!({"Contact__c": contacts[0]})),
    )
    .await;
    let (_, other) = send(
        &app,
        template_to(MARKETING, json!({"Contact__c": contacts[1]})),
    )
    .await;

    // Assert
    assert!(refused_opted_out(&refused), "{refused:?}");
    let record = app.status_after_flush(&opted_out[0], "Failed").await;
    assert!(
        record["Error_Message__c"]
            .as_str()
            .is_some_and(|m| m.contains("WhatsApp Marketing Opt Out is checked")),
        "{record}"
    );
    assert!(
        matches!(utility.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{utility:?}"
    );
    assert!(
        matches!(other.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{other:?}"
    );
}

#[tokio::test]
async fn a_user_preferences_stop_is_honoured_and_a_resume_lifts_it() {
    // Arrange
    let app = spawn().await;
    app.wa_control(
        "customers/marketing",
        json!({"customer": CUSTOMER, "value": "stop"}),
    )
    .await;
    app.deliver_webhooks().await;

    // Act
    let (_, stopped) = send(&app, template_to(MARKETING, json!({}))).await;
    app.wa_control(
        "customers/marketing",
        json!({"customer": CUSTOMER, "value": "resume"}),
    )
    .await;
    app.deliver_webhooks().await;
    let (_, resumed) = send(&app, template_to(MARKETING, json!({}))).await;

    // Assert
    assert!(refused_opted_out(&stopped), "{stopped:?}");
    assert_eq!(attempts(&app).await, 1, "only the send after the resume");
    assert!(
        matches!(resumed.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{resumed:?}"
    );
}

#[tokio::test]
async fn a_131050_is_not_retried_and_marks_the_customer_opted_out() {
    // Arrange: the customer stopped marketing in WhatsApp, and the webhook never reached sfwa.
    let app = spawn().await;
    app.stop_webhooks();
    app.wa_control(
        "customers/marketing",
        json!({"customer": CUSTOMER, "value": "stop"}),
    )
    .await;

    // Act
    let (first, outcomes) = send(&app, template_to(MARKETING, json!({}))).await;
    let (_, next) = send(&app, template_to(MARKETING, json!({}))).await;
    let retried = worker::retry_step(&app.pipeline).await.unwrap();

    // Assert
    assert!(
        matches!(outcomes.as_slice(), [DispatchOutcome::Failed { code }] if code == "OPTED_OUT"),
        "Meta's 131050 fails the record for good: {outcomes:?}"
    );
    assert!(
        refused_opted_out(&next),
        "the customer is marked: the next one is refused before sending: {next:?}"
    );
    assert!(retried.outcomes.is_empty(), "{:?}", retried.outcomes);
    assert_eq!(attempts(&app).await, 1, "one call to WhatsApp in all");
    let record = app.status_after_flush(&first[0], "Failed").await;
    assert_eq!(record["Error_Code__c"], "OPTED_OUT");
}

#[tokio::test]
async fn a_131049_marketing_cap_is_tried_again_no_sooner_than_a_day_later() {
    // Arrange
    let app = spawn().await;
    app.wa_control("customers/marketing_cap", json!({"customer": CUSTOMER}))
        .await;
    let before = app.clock.now();

    // Act
    let (ids, outcomes) = send(&app, template_to(MARKETING, json!({}))).await;
    app.clock.shift(Duration::hours(23));
    let too_soon = worker::retry_step(&app.pipeline).await.unwrap();
    app.clock.shift(Duration::hours(1) + Duration::minutes(1));
    let a_day_later = worker::retry_step(&app.pipeline).await.unwrap();

    // Assert
    match outcomes.as_slice() {
        [DispatchOutcome::RetryScheduled { at, code }] => {
            assert_eq!(code, "WA_131049");
            assert!(*at - before >= Duration::hours(24), "{at} vs {before}");
        }
        other => panic!("{other:?}"),
    }
    assert!(too_soon.outcomes.is_empty(), "{:?}", too_soon.outcomes);
    assert!(
        matches!(
            a_day_later.outcomes.as_slice(),
            [DispatchOutcome::Sent { .. }]
        ),
        "{:?}",
        a_day_later.outcomes
    );
    app.status_after_flush(&ids[0], "Sent").await;
}

#[tokio::test]
async fn a_marketing_template_to_a_us_number_is_refused_before_sending_and_a_utility_one_goes() {
    // Arrange
    let app = spawn().await;
    let to_us = |template: &str| {
        json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template",
                "Template_Name__c": template, "Template_Language__c": "en_US"}])
    };

    // Act
    let (_, marketing) = send(&app, to_us(MARKETING)).await;
    let (_, utility) = send(&app, to_us("hello_world")).await;

    // Assert
    assert!(
        matches!(marketing.as_slice(), [DispatchOutcome::Refused { code }] if code == "MARKETING_TO_US_NUMBER"),
        "{marketing:?}"
    );
    assert!(
        matches!(utility.as_slice(), [DispatchOutcome::Sent { .. }]),
        "{utility:?}"
    );
    assert_eq!(attempts(&app).await, 1);
}
