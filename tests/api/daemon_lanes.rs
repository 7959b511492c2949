//! Sends that keep flowing across intake steps (issue 15): a stream step or a poll page hands its
//! records to the per-number lanes and returns while their sends are in flight, yet every record
//! is sent exactly once. Each Graph call is held 1 s by the simulator, so the sends cannot have
//! finished when a step returns; the tests then wait for the lanes to go idle (with a deadline).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sfwa::pipeline::dispatch::DispatchOutcome;
use sfwa::pipeline::stream::StreamIntake;
use sfwa::pipeline::worker;
use tokio_util::sync::CancellationToken;

use crate::daemon_support::{spawn_app_with, Options, TestApp, DEADLINE};

fn templates(n: usize, first: usize) -> Value {
    json!((0..n)
        .map(|i| json!({"To_Phone__c": format!("+1650555{:04}", first + i), "Message_Type__c": "Template", "Template_Name__c": "hello_world"}))
        .collect::<Vec<_>>())
}

/// Every record in `ids` reached WhatsApp exactly once.
async fn assert_sent_once(app: &TestApp, ids: &[String]) {
    let sent: Vec<String> = app
        .wa_messages()
        .await
        .iter()
        .map(|m| m["biz_opaque_callback_data"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(sent.len(), unique.len(), "a record was sent twice");
    for id in ids {
        assert!(unique.contains(id), "{id} was never sent");
    }
}

/// Waits (with the tests' deadline) until no send is left in the lanes.
async fn lanes_idle(app: &TestApp) {
    tokio::time::timeout(DEADLINE, app.pipeline.dispatcher.lanes.idle())
        .await
        .expect("the lanes went idle before the deadline");
}

#[tokio::test]
async fn a_stream_step_returns_while_its_sends_are_in_flight_yet_every_record_is_sent_once() {
    // Arrange: a subscribed stream, Graph calls held 1 s.
    let mut options = Options::default();
    options.org.connect_timeout = std::time::Duration::from_millis(200);
    let app = spawn_app_with(options).await;
    app.wa_control("faults", json!({"latency_ms": 1000})).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    let running = CancellationToken::new();
    intake.step_until(&app.pipeline, &running).await.unwrap(); // subscribed; nothing yet
    let ids = app.queue(templates(12, 4000)).await;

    // Act: the running daemon's steps until every event is handled.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let (mut events, mut returned_with_sends_in_flight) = (0, 0);
    while events < ids.len() {
        assert!(tokio::time::Instant::now() < deadline, "{events} events");
        let step = intake.step_until(&app.pipeline, &running).await.unwrap();
        let step = step.expect("not shut down");
        events += step.events;
        if step.events > 0 && app.pipeline.dispatcher.lanes.busy() > 0 {
            returned_with_sends_in_flight += 1;
        }
    }
    let sent_when_the_last_step_returned = app.wa_messages().await.len();
    lanes_idle(&app).await;

    // Assert
    assert!(returned_with_sends_in_flight > 0);
    assert!(sent_when_the_last_step_returned < ids.len());
    assert_sent_once(&app, &ids).await;
}

#[tokio::test]
async fn a_draining_poll_reads_the_next_pages_while_sends_are_in_flight_and_sends_each_record_once()
{
    // Arrange: pages of 3, seven records queued at once (one CreatedDate: the Id breaks ties).
    let options = Options {
        tune: Box::new(|settings| settings.intake.batch_size = 3),
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    app.wa_control("faults", json!({"latency_ms": 1000})).await;
    let ids = app.queue(templates(7, 4100)).await;

    // Act: the poll loop's steps, each from where the last page ended.
    let (first, page_1) = worker::poll_step(&app.pipeline, None).await.unwrap();
    let (second, page_2) = worker::poll_step(&app.pipeline, page_1.next_page.clone())
        .await
        .unwrap();
    let (third, page_3) = worker::poll_step(&app.pipeline, page_2.next_page.clone())
        .await
        .unwrap();
    let in_flight_after_three_pages = app.pipeline.dispatcher.lanes.busy();
    let handed: Vec<_> = first.into_iter().chain(second).chain(third).collect();
    let outcomes = tokio::time::timeout(DEADLINE, worker::outcomes_of(handed))
        .await
        .expect("every send ended before the deadline");

    // Assert: three different pages (not the first one again), the last one short.
    assert_eq!((page_1.handed, page_2.handed, page_3.handed), (3, 3, 1));
    assert!(page_1.next_page.is_some() && page_2.next_page.is_some());
    assert_eq!(page_3.next_page, None, "a short page ends the drain");
    assert_eq!(in_flight_after_three_pages, 7);
    assert_eq!(outcomes.len(), 7);
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, DispatchOutcome::Sent { .. })));
    assert_sent_once(&app, &ids).await;
}
