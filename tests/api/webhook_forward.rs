//! One callback URL for two shards (`[[webhook.forward]]`): shard A receives every webhook of the
//! account and forwards, as received, the POSTs naming shard B's number to B, which checks Meta's
//! signature itself and applies them. A down B makes A answer 5xx (Meta retries; here the test
//! re-POSTs), and nothing is lost or applied twice.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use serde_json::json;
use sfwa::config::ForwardRule;
use sfwa::domain::ids::{BusinessNumberId, CustomerId};
use sfwa::store::inbound;
use sfwa_sim::whatsapp::signature;

use crate::daemon_support::{eventually, spawn_app_with, Options, TestApp, MSG};

/// Both shards serve numbers of one Meta app: one app secret signs every webhook.
const APP_SECRET: &str = "5f1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b";
const NUMBER_B: &str = "222000222000222";
const CUSTOMER: &str = "16505550101";

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Shard B on a fixed address (so it comes back on the same URL), then shard A forwarding B's
/// number to it. Each has its own org and account simulators; what matters here is the webhook
/// path between them.
async fn two_shards() -> (TestApp, TestApp) {
    let b_addr = free_port();
    let mut b_options = Options::default();
    b_options.wa.app_secret = APP_SECRET.into();
    b_options.wa.phone_number_id = NUMBER_B.into();
    b_options.tune = Box::new(move |s| s.webhook.listen = b_addr);
    let b = spawn_app_with(b_options).await;
    let b_url = format!("http://{b_addr}/webhook");
    let mut a_options = Options::default();
    a_options.wa.app_secret = APP_SECRET.into();
    a_options.tune = Box::new(move |s| {
        s.webhook.forward = vec![ForwardRule {
            numbers: vec![NUMBER_B.into()],
            url: b_url,
        }]
    });
    let a = spawn_app_with(a_options).await;
    (a, b)
}

async fn mirrored(app: &TestApp, number: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let (number, wa_id): (BusinessNumberId, CustomerId) =
        (number.parse().unwrap(), CUSTOMER.parse().unwrap());
    app.pipeline
        .core
        .store
        .read(move |c| inbound::last_inbound(c, &number, &wa_id))
        .await
        .unwrap()
}

/// A signed inbound text from the customer to B's number, as Meta sends it.
fn inbound_for_b(b: &TestApp, wamid: &str) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": b.wa.waba_id(), "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000222", "phone_number_id": NUMBER_B},
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": CUSTOMER}],
            "messages": [{"from": CUSTOMER, "id": wamid, "timestamp": b.clock.now().timestamp().to_string(),
                          "type": "text", "text": {"body": "hello B"}}],
        }}]}],
    }))
    .unwrap();
    let signed = signature(&body, APP_SECRET);
    (body, signed)
}

#[tokio::test]
async fn statuses_and_inbound_for_the_other_shards_number_are_forwarded_to_it_and_applied_there() {
    // Arrange: B sends a template; Meta (B's account simulator) calls A's URL for everything.
    let (a, b) = two_shards().await;
    let id = b
        .queue(json!([{"To_Phone__c": "+16505550101", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await
        .remove(0);
    b.dispatch().await;
    b.wa.set_webhook_url(a.wa.webhook_url());

    // Act: the statuses and a customer's reply reach A, which answers 200 only once B has them.
    b.deliver_webhooks().await;
    b.wa_control(
        "inbound",
        json!({"from": CUSTOMER, "type": "text", "text": "hello B"}),
    )
    .await;
    b.deliver_webhooks().await;

    // Assert: applied by B (its record, its window mirror), nothing kept by A.
    let record = b.status_after_flush(&id, "Read").await;
    assert_eq!(record["Status__c"], "Read");
    assert!(mirrored(&b, NUMBER_B).await.is_some());
    assert!(mirrored(&a, NUMBER_B).await.is_none());
    let served_by_a = a.wa.phone_number_id().to_string();
    assert!(mirrored(&a, &served_by_a).await.is_none());
}

#[tokio::test]
async fn a_down_shard_makes_the_receiving_shard_answer_5xx_and_the_retry_applies_it_once() {
    // Arrange
    let (a, mut b) = two_shards().await;
    let (body, signed) = inbound_for_b(&b, "wamid.FORWARD1");
    b.stop_webhooks();
    let b_addr = b.settings.webhook.listen;
    eventually("shard B's port is closed", || async move {
        tokio::net::TcpStream::connect(b_addr).await.is_err()
    })
    .await;

    // Act: Meta's POST while B is down, then Meta's retry (twice) once B is back.
    let while_down = a.post_webhook(&body, &signed).await;
    b.restart().await;
    let retried = a.post_webhook(&body, &signed).await;
    let retried_again = a.post_webhook(&body, &signed).await;

    // Assert
    assert_eq!(while_down, 502);
    assert_eq!((retried, retried_again), (200, 200));
    assert!(mirrored(&b, NUMBER_B).await.is_some());
    b.flush().await;
    let inbound_records = b
        .org
        .state()
        .org()
        .rows(MSG)
        .filter(|r| r.get("Direction__c") == Some(&json!("Inbound")))
        .count();
    assert_eq!(inbound_records, 1, "the retried message is applied once");
}

#[tokio::test]
async fn a_forwarded_post_is_never_forwarded_again() {
    // Arrange: A forwards B's number to A itself (a loop, as a misconfiguration would make).
    let mut options = Options::default();
    options.wa.app_secret = APP_SECRET.into();
    let addr = free_port();
    options.tune = Box::new(move |s| {
        s.webhook.listen = addr;
        s.webhook.forward = vec![ForwardRule {
            numbers: vec![NUMBER_B.into()],
            url: format!("http://{addr}/webhook"),
        }];
    });
    let a = spawn_app_with(options).await;
    let (body, signed) = inbound_for_b(&a, "wamid.LOOP");

    // Act
    let answered =
        tokio::time::timeout(Duration::from_secs(10), a.post_webhook(&body, &signed)).await;

    // Assert: one hop, answered; a loop would time out or fail.
    assert_eq!(answered.expect("answered without looping"), 200);
}
