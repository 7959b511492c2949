//! A record sfwa finished, set back to Queued by a person: sent again only if WhatsApp never
//! accepted it; otherwise `ALREADY_SENT`, and WhatsApp sees exactly one send (guarantee 1).

use serde_json::{json, Value};
use sfwa::store::journal::JournalState;

use crate::daemon_support::{spawn_app, TestApp, MSG};

/// What an admin does in the record page: Status back to Queued (through DML, Flow included).
async fn requeue(app: &TestApp, id: &str) {
    let response = app
        .http
        .patch(format!("{}/__sim/records/{MSG}/{id}", app.org.url()))
        .json(&json!({"Status__c": "Queued"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Polls, sends and flushes twice, as the daemon would over two intervals.
async fn two_rounds(app: &TestApp) {
    for _ in 0..2 {
        app.dispatch().await;
        app.flush().await;
    }
}

/// Queues one template to a customer (templates go whatever the window).
async fn queue_template(app: &TestApp) -> Vec<String> {
    app.queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await
}

async fn sends_of(app: &TestApp, id: &str) -> usize {
    app.wa_messages()
        .await
        .iter()
        .filter(|m| m["biz_opaque_callback_data"] == id)
        .count()
}

#[tokio::test]
async fn a_requeued_record_whatsapp_never_accepted_is_sent_once() {
    // Arrange: a free-form message refused before sending (the customer's window is closed).
    let app = spawn_app().await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Text", "Body__c": "Your order shipped"}]))
        .await;
    app.dispatch().await;
    let failed = app.status_after_webhooks(&ids[0], "Failed").await;
    assert_eq!(failed["Error_Code__c"], "OUTSIDE_SESSION_WINDOW");
    app.customer_wrote("16505551234", 1).await;

    // Act: the admin re-queues it once the customer has written.
    requeue(&app, &ids[0]).await;
    two_rounds(&app).await;

    // Assert
    assert_eq!(sends_of(&app, &ids[0]).await, 1);
    let record = app.record(&ids[0]);
    assert!(
        ["Sent", "Delivered", "Read"].contains(&record["Status__c"].as_str().unwrap()),
        "{record}"
    );
    assert_eq!(record["Error_Code__c"], Value::Null);
    let entry = app.journal(&ids[0]).await.unwrap();
    assert!(entry.wamid.is_some());
    assert_eq!(entry.attempts, 0);
}

#[tokio::test]
async fn a_requeued_record_that_failed_after_whatsapp_accepted_it_ends_failed_already_sent() {
    // Arrange: WhatsApp accepts the send, then fails it (the number is not on WhatsApp).
    let app = spawn_app().await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+1 650 555 0000", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;
    app.dispatch().await;
    let failed = app.status_after_webhooks(&ids[0], "Failed").await;
    assert_eq!(failed["Error_Code__c"], "WA_131026");

    // Act
    requeue(&app, &ids[0]).await;
    two_rounds(&app).await;

    // Assert
    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Failed", "{record}");
    assert_eq!(record["Error_Code__c"], "ALREADY_SENT");
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(
        message.starts_with("WhatsApp accepted this message at ")
            && message.ends_with("UTC; create a new message to send it again."),
        "{message}"
    );
    assert_eq!(sends_of(&app, &ids[0]).await, 1);
    assert_eq!(
        app.journal(&ids[0]).await.unwrap().state,
        JournalState::Failed
    );
}

#[tokio::test]
async fn a_requeued_record_the_customer_read_gets_read_back_with_already_sent() {
    let app = spawn_app().await;
    let ids = queue_template(&app).await;
    app.dispatch().await;
    app.status_after_webhooks(&ids[0], "Read").await;

    requeue(&app, &ids[0]).await;
    two_rounds(&app).await;

    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Read", "{record}");
    assert_eq!(record["Error_Code__c"], "ALREADY_SENT");
    assert_eq!(sends_of(&app, &ids[0]).await, 1);
}

#[tokio::test]
async fn a_requeued_record_whose_journal_row_retention_deleted_is_not_sent_again() {
    // Arrange: sent and read long ago; retention has since deleted the journal row.
    let app = spawn_app().await;
    let ids = queue_template(&app).await;
    app.dispatch().await;
    app.status_after_webhooks(&ids[0], "Read").await;
    let future = app.clock.now() + chrono::Duration::days(400);
    app.pipeline
        .core
        .store
        .write(move |tx| sfwa::store::journal::delete_finished_before(tx, future, usize::MAX))
        .await
        .unwrap();
    assert!(app.journal(&ids[0]).await.is_none());

    // Act
    requeue(&app, &ids[0]).await;
    two_rounds(&app).await;

    // Assert
    let record = app.record(&ids[0]);
    assert_eq!(record["Status__c"], "Failed", "{record}");
    assert_eq!(record["Error_Code__c"], "ALREADY_SENT");
    assert_eq!(sends_of(&app, &ids[0]).await, 1);
}

#[tokio::test]
async fn a_record_read_before_its_write_back_landed_is_left_alone() {
    // Arrange: sent, but the Sent write-back has not been flushed, so Salesforce still says Queued.
    let app = spawn_app().await;
    let ids = queue_template(&app).await;
    app.dispatch().await;
    // The dispatch step journals the accepted send before it returns: nothing to wait for.
    let entry = app.journal(&ids[0]).await;
    assert!(
        entry.as_ref().is_some_and(|e| e.wamid.is_some()),
        "the send is journaled as accepted: {entry:?}"
    );
    assert_eq!(app.record(&ids[0])["Status__c"], "Queued");

    // Act: polled again while the write-back is pending.
    app.dispatch().await;

    // Assert: nothing settled as ALREADY_SENT; the flush writes the real status.
    app.flush().await;
    let record = app.record(&ids[0]);
    assert_ne!(record["Error_Code__c"], "ALREADY_SENT", "{record}");
    assert_eq!(sends_of(&app, &ids[0]).await, 1);
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

#[tokio::test]
async fn a_message_canceled_while_waiting_for_a_retry_is_never_sent_until_requeued() {
    // Arrange: WhatsApp fails the first attempt; the record waits for its retry.
    let app = spawn_app().await;
    app.wa_control("faults", json!({"error_rate": 1.0, "error_status": 500}))
        .await;
    let ids = queue_template(&app).await;
    app.dispatch().await;
    app.wa_control("faults", json!({"error_rate": 0.0})).await;

    // Act: the rep cancels it; the retry comes due.
    let canceled = rep_sets_status(&app, &ids[0], "Canceled").await;
    app.clock.shift(chrono::Duration::hours(1));
    two_rounds(&app).await;

    // Assert: withdrawn, not sent, and the pending Sending write-back did not overwrite Canceled.
    assert_eq!(canceled, 200);
    assert_eq!(sends_of(&app, &ids[0]).await, 0);
    assert_eq!(app.record(&ids[0])["Status__c"], "Canceled");
    let entry = app.journal(&ids[0]).await.unwrap();
    assert_eq!(entry.error_code.as_deref(), Some("NOT_QUEUED"));

    // And once the rep queues it again, it goes once.
    assert_eq!(rep_sets_status(&app, &ids[0], "Queued").await, 200);
    two_rounds(&app).await;
    assert_eq!(sends_of(&app, &ids[0]).await, 1);
}
