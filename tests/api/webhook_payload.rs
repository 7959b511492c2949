//! sfwa's webhook parsing against what the WhatsApp simulator really posts: signed with the app
//! secret, in Meta's envelope, for inbound messages and for the statuses of messages sent by sfwa's
//! own client.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use sfwa::domain::ids::{CustomerId, Wamid};
use sfwa::domain::message::{MessageKind, OutboundMessage};
use sfwa::domain::phone::E164;
use sfwa::domain::sf_id::SfId;
use sfwa::domain::status::MessageStatus;
use sfwa::domain::template::TemplateParameters;
use sfwa::domain::webhook_event::{InboundKind, InboundMediaKind, StatusUpdate, WebhookEvent};
use sfwa::webhook;
use sfwa::whatsapp::{Action, WhatsAppClient, WhatsAppConfig};
use sfwa_sim::server::RunningServer;
use sfwa_sim::whatsapp::{self, WhatsAppSim, WhatsAppSimConfig};
use tokio::sync::mpsc;

use crate::whatsapp_support::{CUSTOMER, DEADLINE};

const RECORD_ID: &str = "a005g0000012345AAA";

/// A POST exactly as it arrived: raw bytes and the signature header.
struct RawPost {
    body: Bytes,
    signature: Option<String>,
}

/// A simulator posting to a receiver that forwards raw POSTs to the test.
struct Harness {
    sim: WhatsAppSim,
    posts: mpsc::UnboundedReceiver<RawPost>,
    http: reqwest::Client,
    _receiver: RunningServer,
}

async fn receive(
    State(posts): State<mpsc::UnboundedSender<RawPost>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = posts.send(RawPost { body, signature });
    StatusCode::OK
}

async fn harness(tune: impl FnOnce(&mut WhatsAppSimConfig)) -> Harness {
    let (sender, posts) = mpsc::unbounded_channel();
    let router = Router::new()
        .route("/webhook", post(receive))
        .with_state(sender);
    let receiver = RunningServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), router)
        .await
        .expect("bind receiver");
    let mut config = WhatsAppSimConfig {
        webhook_url: Some(format!("{}/webhook", receiver.url())),
        delivered_after: Duration::from_millis(50),
        read_after: Duration::from_millis(50),
        ..WhatsAppSimConfig::default()
    };
    tune(&mut config);
    let sim = whatsapp::start(config).await.expect("start simulator");
    Harness {
        sim,
        posts,
        http: reqwest::Client::new(),
        _receiver: receiver,
    }
}

impl Harness {
    /// The next POST, signature-checked and parsed.
    async fn next_events(&mut self) -> Vec<WebhookEvent> {
        let post = tokio::time::timeout(DEADLINE, self.posts.recv())
            .await
            .expect("a webhook within the deadline")
            .expect("receiver open");
        assert!(
            webhook::verify_signature(self.sim.app_secret(), &post.body, post.signature.as_deref()),
            "the simulator's signature verifies"
        );
        let parsed = webhook::parse(&post.body).expect("Meta's envelope");
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        parsed.events
    }

    async fn next_event(&mut self) -> WebhookEvent {
        let mut events = self.next_events().await;
        assert_eq!(events.len(), 1, "{events:?}");
        events.remove(0)
    }

    /// Status events until `count` have arrived (they may come several per POST).
    async fn statuses(&mut self, count: usize) -> (Vec<StatusUpdate>, usize) {
        let mut statuses = Vec::new();
        let mut posts = 0;
        while statuses.len() < count {
            posts += 1;
            for event in self.next_events().await {
                match event {
                    WebhookEvent::Status(status) => statuses.push(status),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        (statuses, posts)
    }

    async fn inbound(&self, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/__sim/inbound", self.sim.url()))
            .json(&body)
            .send()
            .await
            .expect("control request");
        assert!(response.status().is_success());
        response.json().await.expect("json")
    }

    fn client(&self) -> WhatsAppClient {
        WhatsAppClient::new(
            self.http.clone(),
            WhatsAppConfig {
                api_base: self.sim.url(),
                api_version: "v23.0".into(),
                access_token: self.sim.access_token().into(),
                timeout: DEADLINE,
            },
        )
    }
}

fn outbound(kind: MessageKind) -> OutboundMessage {
    OutboundMessage {
        record_id: SfId::parse(RECORD_ID).expect("id"),
        to: sfwa::domain::ids::CustomerId::from_phone(&E164::from_wa_id(CUSTOMER).expect("phone")),
        business_number_id: None,
        kind,
        scheduled_at: None,
    }
}

fn hello_world() -> OutboundMessage {
    outbound(MessageKind::Template {
        name: "hello_world".into(),
        language: "en_US".into(),
        parameters: TemplateParameters::default(),
    })
}

#[tokio::test]
async fn a_customers_text_from_the_simulator_parses_into_an_inbound_event_for_our_number() {
    // Arrange
    let mut h = harness(|_| {}).await;

    // Act
    let answer = h
        .inbound(
            json!({"from": CUSTOMER, "type": "text", "text": "Does it come in blue?",
                        "name": "Sheena Nelson", "timestamp": 1_749_416_383}),
        )
        .await;
    let event = h.next_event().await;

    // Assert
    assert_eq!(
        event.dedupe_key(),
        format!("inbound:{}", answer["wamid"].as_str().expect("wamid"))
    );
    let WebhookEvent::Inbound(message) = event else {
        panic!("inbound expected")
    };
    assert_eq!(message.wamid, answer["wamid"].as_str().expect("wamid"));
    assert_eq!(message.from, CUSTOMER);
    assert_eq!(message.profile_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(message.business_number_id, h.sim.phone_number_id());
    assert_eq!(
        message.display_phone_number,
        h.sim.config().display_phone_number
    );
    assert_eq!(message.timestamp.timestamp(), 1_749_416_383);
    assert_eq!(
        message.kind,
        InboundKind::Text {
            body: "Does it come in blue?".into()
        }
    );
    assert!(message.opens_window());
}

#[tokio::test]
async fn button_image_and_reaction_from_the_simulator_parse_into_their_kinds() {
    let mut h = harness(|_| {}).await;

    h.inbound(
        json!({"from": CUSTOMER, "type": "button", "payload": "CONFIRM", "text": "Yes",
                     "context_message_id": "wamid.ours"}),
    )
    .await;
    let button = h.next_event().await;
    h.inbound(
        json!({"from": CUSTOMER, "type": "image", "id": "1234567890",
                     "mime_type": "image/png", "sha256": "abc=", "caption": "my receipt"}),
    )
    .await;
    let image = h.next_event().await;
    h.inbound(
        json!({"from": CUSTOMER, "type": "reaction", "message_id": "wamid.ours", "emoji": "👍"}),
    )
    .await;
    let reaction = h.next_event().await;

    let [WebhookEvent::Inbound(button), WebhookEvent::Inbound(image), WebhookEvent::Inbound(reaction)] =
        [button, image, reaction]
    else {
        panic!("three inbound messages expected")
    };
    assert_eq!(
        button.kind,
        InboundKind::Button {
            text: "Yes".into(),
            payload: "CONFIRM".into()
        }
    );
    assert_eq!(
        button.context_id.as_ref().map(Wamid::as_str),
        Some("wamid.ours")
    );
    assert_eq!(
        image.kind,
        InboundKind::Media {
            kind: InboundMediaKind::Image,
            media_id: "1234567890".into(),
            mime_type: Some("image/png".into()),
            caption: Some("my receipt".into()),
            filename: None
        }
    );
    assert_eq!(
        reaction.kind,
        InboundKind::Reaction {
            message_id: "wamid.ours".into(),
            emoji: Some("👍".into())
        }
    );
    assert!(button.opens_window() && image.opens_window());
    assert!(
        !reaction.opens_window(),
        "same strict reading as the simulator"
    );
}

#[tokio::test]
async fn statuses_of_a_message_sent_by_sfwas_client_carry_the_record_id_back() {
    // Arrange
    let mut h = harness(|_| {}).await;

    // Act
    let accepted = h
        .client()
        .send(h.sim.phone_number_id(), &hello_world())
        .await
        .expect("accepted");
    let (statuses, _) = h.statuses(3).await;

    // Assert
    let ladder: Vec<MessageStatus> = statuses.iter().map(|s| s.status).collect();
    assert_eq!(
        ladder,
        [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read
        ]
    );
    for status in &statuses {
        assert_eq!(status.wamid, accepted.wamid);
        assert_eq!(status.record_id.as_ref().map(SfId::as_str), Some(RECORD_ID));
        assert_eq!(
            status.recipient_id.as_ref().map(CustomerId::as_str),
            Some(CUSTOMER)
        );
        assert_eq!(status.business_number_id, h.sim.phone_number_id());
        assert!(status.errors.is_empty());
    }
    let keys: HashSet<String> = statuses
        .into_iter()
        .map(|s| WebhookEvent::Status(s).dedupe_key())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.contains(&format!("status:{}:read", accepted.wamid)));
}

#[tokio::test]
async fn a_free_form_message_outside_the_window_comes_back_failed_as_outside_session_window() {
    let mut h = harness(|_| {}).await;

    let accepted = h
        .client()
        .send(
            h.sim.phone_number_id(),
            &outbound(MessageKind::Text { body: "Hi".into() }),
        )
        .await
        .expect("accepted, fails later");
    let (statuses, _) = h.statuses(1).await;

    let failed = &statuses[0];
    assert_eq!(failed.wamid, accepted.wamid);
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(failed.record_id.as_ref().map(SfId::as_str), Some(RECORD_ID));
    let error = &failed.errors[0];
    assert_eq!(error.code, 131047);
    assert_eq!(error.action(), Action::Fail);
    assert_eq!(error.error_code(), "OUTSIDE_SESSION_WINDOW");
    assert!(error
        .details
        .as_deref()
        .is_some_and(|d| d.contains("24 hours")));
}

#[tokio::test]
async fn statuses_batched_into_one_post_are_all_parsed() {
    let mut h = harness(|config| {
        config.webhook_batch.max_statuses = 10;
        config.webhook_batch.linger = Duration::from_millis(300);
        config.customers_read = false;
    })
    .await;
    let client = h.client();

    let mut wamids = HashSet::new();
    for _ in 0..3 {
        let accepted = client
            .send(h.sim.phone_number_id(), &hello_world())
            .await
            .expect("accepted");
        wamids.insert(accepted.wamid);
    }
    let (statuses, posts) = h.statuses(6).await;

    assert!(posts < 6, "several statuses per POST ({posts} POSTs)");
    let seen: HashSet<Wamid> = statuses.iter().map(|s| s.wamid.clone()).collect();
    assert_eq!(seen, wamids);
    assert!(statuses.iter().all(|s| s.record_id.is_some()));
}
