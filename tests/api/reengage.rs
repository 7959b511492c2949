//! Re-engagement that waits for the reply, and Canceled (issue 16): the real daemon against both
//! simulators, time through the shared injectable clock.

use chrono::Duration;
use serde_json::{json, Value};
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::store::journal::JournalState;

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp, MSG};

const CUSTOMER: &str = "16505551234";

/// Free-form texts to the customer naming a re-engagement template.
async fn queue_texts(app: &TestApp, bodies: &[&str]) -> Vec<String> {
    let records: Vec<Value> = bodies
        .iter()
        .map(|body| {
            json!({"To_Phone__c": format!("+{CUSTOMER}"), "Message_Type__c": "Text",
                   "Body__c": body, "Reengagement_Template__c": "hello_world",
                   "Reengagement_Language__c": "en_US"})
        })
        .collect();
    app.queue(json!(records)).await
}

/// The customer last wrote 30 hours ago: the window is closed.
async fn closed_window(app: &TestApp) {
    app.customer_wrote(CUSTOMER, 30).await;
}

fn waiting_for_reply(outcomes: &[DispatchOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, DispatchOutcome::WaitingForReply { .. }))
        .count()
}

/// What WhatsApp received, in order: `template:<name>` or the text's body.
async fn sent(app: &TestApp) -> Vec<String> {
    app.wa_messages()
        .await
        .iter()
        .map(|m| match m["type"].as_str() {
            Some("template") => format!("template:{}", m["template_name"].as_str().unwrap()),
            _ => m["request"]["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

/// A rep's edit in the UI (validation rules apply).
async fn rep_sets_status(app: &TestApp, id: &str, status: &str) -> u16 {
    app.http
        .patch(format!("{}/__sim/records/{MSG}/{id}?as=rep", app.org.url()))
        .json(&json!({"Status__c": status}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The texts wait, and the re-engagement template's own record is sent.
async fn texts_wait_and_template_goes(app: &TestApp, bodies: &[&str]) -> Vec<String> {
    let ids = queue_texts(app, bodies).await;
    let first = app.dispatch().await;
    assert_eq!(
        waiting_for_reply(&first.outcomes),
        bodies.len(),
        "{first:?}"
    );
    app.dispatch().await;
    app.flush().await;
    ids
}

#[tokio::test]
async fn two_texts_to_a_customer_whose_window_closed_send_one_reengagement_and_go_in_order_after_the_reply(
) {
    // Arrange
    let app = spawn_app().await;
    closed_window(&app).await;

    // Act: two texts meet the closed window; the template goes; the customer answers.
    let ids = texts_wait_and_template_goes(&app, &["first", "second"]).await;
    let before_reply = sent(&app).await;
    let waiting = [app.record(&ids[0]), app.record(&ids[1])];
    app.customer_wrote(CUSTOMER, 0).await;
    app.dispatch().await;
    let after_one_step = sent(&app).await;
    app.clock.shift(Duration::seconds(7));
    app.dispatch().await;
    app.flush().await;

    // Assert
    assert_eq!(before_reply, ["template:hello_world"]);
    for record in &waiting {
        assert_eq!(record["Status__c"], "Waiting for Reply", "{record}");
        assert!(record["Waiting_Expires_At__c"].is_string(), "{record}");
    }
    let link = &waiting[0]["Reengagement_Message__c"];
    assert!(
        link.is_string(),
        "linked to the template's record: {}",
        waiting[0]
    );
    assert_eq!(&waiting[1]["Reengagement_Message__c"], link);
    let template = app.record(link.as_str().unwrap());
    assert_eq!(template["Template_Name__c"], "hello_world");
    assert!(
        template["WhatsApp_Message_Id__c"].is_string(),
        "sent: {template}"
    );
    assert_eq!(
        after_one_step,
        ["template:hello_world", "first"],
        "one per recipient pace"
    );
    assert_eq!(
        sent(&app).await,
        ["template:hello_world", "first", "second"]
    );
    for id in &ids {
        let record = app.record(id);
        assert!(record["WhatsApp_Message_Id__c"].is_string(), "{record}");
        assert_ne!(record["Status__c"], "Failed", "{record}");
    }
}

#[tokio::test]
async fn a_waiting_text_whose_customer_never_answers_fails_at_its_expiry_after_a_restart() {
    // Arrange: a wait of 40 minutes (the default is 7 days; the simulated org's sessions and
    // sfwa's JWT do not survive a week's shift of the clock).
    let mut app = spawn_app_with(Options {
        tune: Box::new(|s| s.reengage.expiry = std::time::Duration::from_secs(40 * 60)),
        ..Options::default()
    })
    .await;
    closed_window(&app).await;
    let ids = texts_wait_and_template_goes(&app, &["are you there?"]).await;

    // Act: sfwa restarts; the wait runs out without a reply.
    app.restart().await;
    let early = app.dispatch().await;
    app.clock.shift(Duration::minutes(41));
    let expired = app.dispatch().await;
    app.flush().await;

    // Assert
    assert!(
        early.outcomes.is_empty(),
        "nothing due before the expiry: {early:?}"
    );
    assert_eq!(
        expired.outcomes,
        [DispatchOutcome::Refused {
            code: "OUTSIDE_SESSION_WINDOW".into()
        }]
    );
    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Failed");
    assert_eq!(record["Error_Code__c"], "OUTSIDE_SESSION_WINDOW");
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(message.contains("never answered"), "{message}");
    assert_eq!(sent(&app).await, ["template:hello_world"]);
}

#[tokio::test]
async fn a_canceled_waiting_message_is_never_sent() {
    // Arrange
    let app = spawn_app().await;
    closed_window(&app).await;
    let ids = texts_wait_and_template_goes(&app, &["cancel me", "keep me"]).await;

    // Act: the rep cancels the first; the customer answers.
    let canceled = rep_sets_status(&app, &ids[0], "Canceled").await;
    app.customer_wrote(CUSTOMER, 0).await;
    app.dispatch().await;
    app.clock.shift(Duration::seconds(7));
    app.dispatch().await;
    app.flush().await;

    // Assert
    assert_eq!(canceled, 200);
    assert_eq!(sent(&app).await, ["template:hello_world", "keep me"]);
    assert_eq!(app.record(&ids[0])["Status__c"], "Canceled");
    assert!(app.record(&ids[1])["WhatsApp_Message_Id__c"].is_string());
}

#[tokio::test]
async fn a_write_back_never_overwrites_canceled_and_is_no_dead_letter() {
    // Arrange: the text waits; its Waiting for Reply write-back is pending.
    let app = spawn_app().await;
    closed_window(&app).await;
    let ids = queue_texts(&app, &["too late"]).await;
    app.dispatch().await;

    // Act: the rep cancels it before sfwa's write-back lands.
    let canceled = rep_sets_status(&app, &ids[0], "Canceled").await;
    app.flush().await;

    // Assert
    assert_eq!(canceled, 200);
    assert_eq!(app.record(&ids[0])["Status__c"], "Canceled");
    let store = app.pipeline.core.store.clone();
    let (letters, pending) = store
        .read(|c| {
            Ok((
                sfwa::store::outbox::dead_letters(c, 10)?,
                sfwa::store::outbox::depth(c)?,
            ))
        })
        .await
        .unwrap();
    assert!(letters.is_empty(), "{letters:?}");
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn a_failed_reengagement_template_fails_the_waiting_messages_at_once_with_its_reason() {
    // Arrange: a template WhatsApp does not know.
    let app = spawn_app().await;
    closed_window(&app).await;
    let ids = app
        .queue(
            json!([{"To_Phone__c": format!("+{CUSTOMER}"), "Message_Type__c": "Text",
                       "Body__c": "hello", "Reengagement_Template__c": "no_such_template"}]),
        )
        .await;

    // Act
    app.dispatch().await;
    app.dispatch().await;
    app.flush().await;

    // Assert
    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Failed", "{record}");
    let template = app.record(record["Reengagement_Message__c"].as_str().unwrap());
    assert_eq!(template["Status__c"], "Failed");
    assert_eq!(record["Error_Code__c"], template["Error_Code__c"]);
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(message.contains("re-engagement template"), "{message}");
    let entry = app.journal(&ids[0]).await.unwrap();
    assert_eq!(entry.state, JournalState::Failed);
    assert!(!sent(&app).await.contains(&"hello".to_string()));
}

#[tokio::test]
async fn unreadable_reengagement_parameters_are_refused_before_anything_is_sent() {
    // Arrange
    let app = spawn_app().await;
    closed_window(&app).await;
    let ids = app
        .queue(
            json!([{"To_Phone__c": format!("+{CUSTOMER}"), "Message_Type__c": "Text",
                       "Body__c": "hello", "Reengagement_Template__c": "hello_world",
                       "Reengagement_Parameters__c": "{not json"}]),
        )
        .await;

    // Act
    let step = app.dispatch().await;
    app.flush().await;

    // Assert
    assert_eq!(
        step.outcomes,
        [DispatchOutcome::Refused {
            code: "REENGAGEMENT_PARAMETERS_INVALID".into()
        }]
    );
    assert_eq!(app.record(&ids[0])["Status__c"], "Failed");
    assert!(app.wa_messages().await.is_empty());
}
