//! The Streaming API simulator driven over HTTP the way a CometD client drives Salesforce:
//! handshake → subscribe (with replay) → connect (long poll).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use sfwa_sim::clock::SimClock;
use sfwa_sim::salesforce::streaming::{router, EventBus, StreamingConfig};
use sfwa_sim::server::RunningServer;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "/event/WhatsApp_Outbound__e";
/// Generous bound for anything that should happen "at once"; never reached when the code is right.
const PROMPTLY: Duration = Duration::from_secs(5);

/// A running streaming endpoint with its bus, clock and shutdown token.
struct StreamingSim {
    server: RunningServer,
    bus: Arc<EventBus>,
    clock: SimClock,
    shutdown: CancellationToken,
}

impl StreamingSim {
    async fn start() -> Self {
        Self::start_with(StreamingConfig::default()).await
    }

    async fn start_with(config: StreamingConfig) -> Self {
        let clock = SimClock::new();
        let bus = EventBus::new(clock.clone(), chrono::Duration::hours(72));
        bus.register_channel(CHANNEL);
        let shutdown = CancellationToken::new();
        // The org's session check, reduced to one valid token.
        let authorize = Arc::new(|headers: &axum::http::HeaderMap| {
            headers
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == b"Bearer good")
        });
        let app = router(bus.clone(), config, authorize, shutdown.clone());
        let server = RunningServer::bind("127.0.0.1:0".parse().unwrap(), app)
            .await
            .expect("bind streaming simulator");
        StreamingSim {
            server,
            bus,
            clock,
            shutdown,
        }
    }

    fn client(&self) -> CometdClient {
        CometdClient::new(&self.server.url(), "good", true)
    }

    fn publish(&self, message_id: &str) -> i64 {
        let mut fields = Map::new();
        fields.insert("Message_Id__c".into(), json!(message_id));
        self.bus.publish(CHANNEL, fields)
    }

    /// Waits (briefly) until `n` connects are parked on the server.
    async fn until_held(&self, n: usize) {
        tokio::time::timeout(PROMPTLY, async {
            while self.bus.held_connects() < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("connect was never held");
    }
}

/// A minimal Bayeux client: raw JSON in, raw JSON out, so tests see the exact wire.
#[derive(Clone)]
struct CometdClient {
    http: reqwest::Client,
    endpoint: String,
    token: String,
}

impl CometdClient {
    fn new(base: &str, token: &str, cookie_store: bool) -> Self {
        CometdClient {
            http: reqwest::Client::builder()
                .cookie_store(cookie_store)
                .build()
                .unwrap(),
            endpoint: format!("{base}/cometd/62.0"),
            token: token.into(),
        }
    }

    async fn post_raw(&self, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(&self.endpoint)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Posts messages and returns the reply array.
    async fn post(&self, messages: Value) -> Vec<Value> {
        let response = self.post_raw(serde_json::to_vec(&messages).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn handshake(&self) -> String {
        let replies = self
            .post(json!([{"channel":"/meta/handshake","version":"1.0",
                "supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"}]))
            .await;
        replies[0]["clientId"].as_str().unwrap().to_owned()
    }

    async fn subscribe(&self, client_id: &str, replay: Value) -> Value {
        let replies = self
            .post(
                json!([{"channel":"/meta/subscribe","clientId":client_id,"subscription":CHANNEL,
                "ext":{"replay":{CHANNEL: replay}},"id":"2"}]),
            )
            .await;
        replies[0].clone()
    }

    async fn connect(&self, client_id: &str) -> Vec<Value> {
        self.post(json!([{"channel":"/meta/connect","clientId":client_id,
            "connectionType":"long-polling","id":"3"}]))
            .await
    }
}

/// The `Message_Id__c` of every event message in a connect's replies.
fn delivered(replies: &[Value]) -> Vec<String> {
    replies
        .iter()
        .filter(|m| m["channel"] == CHANNEL)
        .map(|m| {
            m["data"]["payload"]["Message_Id__c"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn connect_reply(replies: &[Value]) -> &Value {
    replies.last().expect("a connect reply")
}

#[tokio::test]
async fn handshake_with_a_valid_session_returns_a_client_id_the_replay_ext_and_stream_cookies() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();

    // Act
    let response = client
        .post_raw(br#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"}]"#.to_vec())
        .await;

    // Assert
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(cookies.iter().any(|c| c.starts_with("BAYEUX_BROWSER=")));
    assert!(cookies.iter().any(|c| c.starts_with("sfdc-stream=!")));
    let text = response.text().await.unwrap();
    let replies: Vec<Value> = serde_json::from_str(&text).unwrap();
    let client_id = replies[0]["clientId"].as_str().unwrap();
    assert!(client_id.len() >= 26 && client_id.bytes().all(|b| b.is_ascii_alphanumeric()));
    // Field order as Salesforce sends it.
    assert_eq!(
        text,
        format!(
            r#"[{{"ext":{{"replay":true,"payload.format":true}},"minimumVersion":"1.0","clientId":"{client_id}","supportedConnectionTypes":["long-polling"],"channel":"/meta/handshake","id":"1","version":"1.0","successful":true}}]"#
        )
    );
}

#[tokio::test]
async fn handshake_without_a_valid_session_is_denied_with_salesforces_failure_reason() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = CometdClient::new(&sim.server.url(), "expired", true);

    // Act
    let response = client
        .post_raw(br#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"}]"#.to_vec())
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        r#"[{"ext":{"sfdc":{"failureReason":"401::Authentication invalid"},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"1","error":"403::Handshake denied","successful":false}]"#
    );
    assert_eq!(sim.bus.client_count(), 0);
}

#[tokio::test]
async fn subscribing_to_an_unregistered_channel_fails_with_channel_does_not_exist() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    let id = client.handshake().await;

    // Act
    let replies = client
        .post(
            json!([{"channel":"/meta/subscribe","clientId":id,"subscription":"/event/Foo__e",
            "ext":{"replay":{"/event/Foo__e":-1}},"id":"2"}]),
        )
        .await;

    // Assert
    assert_eq!(
        replies[0],
        json!({"clientId":id,"channel":"/meta/subscribe","id":"2","subscription":"/event/Foo__e",
            "error":"400::The channel you requested to subscribe to does not exist {/event/Foo__e}",
            "successful":false})
    );
}

#[tokio::test]
async fn subscribing_with_minus_two_replays_every_retained_event_on_the_first_connect() {
    // Arrange
    let sim = StreamingSim::start().await;
    let first = sim.publish("a01000000000001AAA");
    let second = sim.publish("a01000000000002AAA");
    let client = sim.client();
    let id = client.handshake().await;

    // Act
    let subscribed = client.subscribe(&id, json!(-2)).await;
    let replies = client.connect(&id).await;

    // Assert
    assert_eq!(
        subscribed,
        json!({"clientId":id,"channel":"/meta/subscribe","id":"2","subscription":CHANNEL,"successful":true})
    );
    assert_eq!(
        delivered(&replies),
        ["a01000000000001AAA", "a01000000000002AAA"]
    );
    let event = &replies[0];
    let stored = &sim.bus.events(CHANNEL)[0];
    assert_eq!(
        event,
        &json!({"data":{"schema":event["data"]["schema"],"payload":{
                "CreatedDate":stored.created_date.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "CreatedById":stored.created_by_id,"Message_Id__c":"a01000000000001AAA"},
            "event":{"EventUuid":stored.event_uuid,"replayId":first}},"channel":CHANNEL})
    );
    assert_eq!(replies[1]["data"]["event"]["replayId"], second);
    assert_eq!(replies[0]["data"]["schema"], replies[1]["data"]["schema"]);
    assert_eq!(
        connect_reply(&replies),
        &json!({"advice":{"interval":0,"timeout":110000,"reconnect":"retry"},"clientId":id,
            "channel":"/meta/connect","id":"3","successful":true})
    );
}

#[tokio::test]
async fn subscribing_with_minus_one_delivers_only_events_published_afterwards() {
    // Arrange
    let sim = StreamingSim::start().await;
    sim.publish("before");
    let client = sim.client();
    let id = client.handshake().await;
    client.subscribe(&id, json!(-1)).await;
    sim.publish("after");

    // Act
    let replies = client.connect(&id).await;

    // Assert
    assert_eq!(delivered(&replies), ["after"]);
}

#[tokio::test]
async fn subscribing_from_a_stored_replay_id_delivers_only_the_events_after_it() {
    // Arrange
    let sim = StreamingSim::start().await;
    sim.publish("one");
    let stored = sim.publish("two");
    sim.publish("three");
    let client = sim.client();
    let id = client.handshake().await;

    // Act
    let subscribed = client.subscribe(&id, json!(stored)).await;
    let replies = client.connect(&id).await;

    // Assert
    assert_eq!(subscribed["successful"], true);
    assert_eq!(delivered(&replies), ["three"]);
}

#[tokio::test]
async fn subscribing_from_a_replay_id_never_issued_fails_with_invalid_replay_id() {
    // Arrange
    let sim = StreamingSim::start().await;
    let issued = sim.publish("one");
    let client = sim.client();
    let id = client.handshake().await;

    // Act
    let subscribed = client.subscribe(&id, json!(issued + 1000)).await;

    // Assert
    assert_eq!(subscribed["successful"], false);
    assert_eq!(
        subscribed["error"],
        format!("400::The replayId {{{}}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.", issued + 1000)
    );
}

#[tokio::test]
async fn events_past_the_retention_are_neither_replayed_nor_valid_replay_ids() {
    // Arrange
    let sim = StreamingSim::start().await;
    let old = sim.publish("old");
    sim.clock.shift(chrono::Duration::hours(73));
    sim.publish("recent");
    let client = sim.client();
    let all = client.handshake().await;
    let from_old = client.handshake().await;

    // Act
    client.subscribe(&all, json!(-2)).await;
    let replayed = client.connect(&all).await;
    let stale = client.subscribe(&from_old, json!(old)).await;

    // Assert
    assert_eq!(delivered(&replayed), ["recent"]);
    assert_eq!(stale["successful"], false);
    assert!(stale["error"].as_str().unwrap().starts_with(&format!(
        "400::The replayId {{{old}}} you provided was invalid."
    )));
}

#[tokio::test]
async fn a_held_connect_is_released_by_a_publish() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    let id = client.handshake().await;
    client.subscribe(&id, json!(-1)).await;
    // CometD's own first connect asks for an immediate answer with `advice.timeout: 0`.
    let first = client
        .post(
            json!([{"channel":"/meta/connect","clientId":id,"connectionType":"long-polling",
            "advice":{"timeout":0},"id":"3"}]),
        )
        .await;
    assert_eq!(first[0]["advice"]["reconnect"], "retry");
    let poll = tokio::spawn({
        let (client, id) = (client.clone(), id.clone());
        async move { client.connect(&id).await }
    });
    sim.until_held(1).await;

    // Act
    let replay_id = sim.publish("a01000000000003AAA");

    // Assert
    let replies = tokio::time::timeout(PROMPTLY, poll).await.unwrap().unwrap();
    assert_eq!(delivered(&replies), ["a01000000000003AAA"]);
    assert_eq!(replies[0]["data"]["event"]["replayId"], replay_id);
    // Only the first connect carries advice.
    assert_eq!(
        connect_reply(&replies),
        &json!({"clientId":id,"channel":"/meta/connect","id":"3","successful":true})
    );
}

#[tokio::test]
async fn a_connect_with_nothing_to_deliver_answers_empty_after_the_configured_timeout() {
    // Arrange
    let sim = StreamingSim::start_with(StreamingConfig {
        connect_timeout: Duration::from_millis(150),
        ..StreamingConfig::default()
    })
    .await;
    let client = sim.client();
    let id = client.handshake().await;
    client.subscribe(&id, json!(-1)).await;

    // Act
    let started = std::time::Instant::now();
    let replies = tokio::time::timeout(PROMPTLY, client.connect(&id))
        .await
        .unwrap();

    // Assert
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        replies,
        [
            json!({"advice":{"interval":0,"timeout":150,"reconnect":"retry"},"clientId":id,
            "channel":"/meta/connect","id":"3","successful":true})
        ]
    );
}

#[tokio::test]
async fn a_connect_from_an_unknown_client_is_advised_to_handshake() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    client.handshake().await; // for the route cookie

    // Act
    let replies = client.connect("4xg15eeny70m2bbfjbxps2fqlt00").await;

    // Assert
    assert_eq!(
        replies,
        [
            json!({"advice":{"reconnect":"handshake","interval":0},"channel":"/meta/connect","id":"3",
            "error":"403::Unknown client","successful":false})
        ]
    );
}

#[tokio::test]
async fn dropping_all_clients_answers_a_held_connect_with_unknown_client() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    let id = client.handshake().await;
    client.subscribe(&id, json!(-1)).await;
    let poll = tokio::spawn({
        let (client, id) = (client.clone(), id.clone());
        async move { client.connect(&id).await }
    });
    sim.until_held(1).await;

    // Act
    sim.bus.drop_all_clients();

    // Assert
    let replies = tokio::time::timeout(PROMPTLY, poll).await.unwrap().unwrap();
    assert_eq!(connect_reply(&replies)["error"], "403::Unknown client");
    assert_eq!(connect_reply(&replies)["advice"]["reconnect"], "handshake");
    let resubscribe = client.subscribe(&id, json!(-1)).await;
    assert_eq!(resubscribe["error"], "403::Unknown client");
}

#[tokio::test]
async fn a_client_idle_longer_than_the_client_timeout_is_forgotten() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    let id = client.handshake().await;
    sim.clock.shift(chrono::Duration::seconds(41));

    // Act
    let replies = client.connect(&id).await;

    // Assert
    assert_eq!(connect_reply(&replies)["error"], "403::Unknown client");
}

#[tokio::test]
async fn a_connect_with_an_invalid_session_is_refused_with_authentication_invalid() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    let id = client.handshake().await;
    let expired = CometdClient {
        token: "expired".into(),
        ..client.clone()
    };

    // Act
    let replies = expired.connect(&id).await;

    // Assert
    assert_eq!(
        replies,
        [
            json!({"advice":{"reconnect":"none","interval":0},"channel":"/meta/connect","id":"3",
            "error":"401::Authentication invalid","successful":false})
        ]
    );
}

#[tokio::test]
async fn requests_without_the_sfdc_stream_cookie_are_from_an_unknown_client() {
    // Arrange
    let sim = StreamingSim::start().await;
    let no_cookies = CometdClient::new(&sim.server.url(), "good", false);
    let id = no_cookies.handshake().await;

    // Act
    let subscribed = no_cookies.subscribe(&id, json!(-1)).await;

    // Assert
    assert_eq!(subscribed["error"], "403::Unknown client");
}

#[tokio::test]
async fn a_body_over_32768_bytes_is_refused_with_413() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    let padding = "x".repeat(32_768);
    let body = serde_json::to_vec(&json!([{"channel":"/meta/handshake","id":padding}])).unwrap();

    // Act
    let response = client.post_raw(body).await;

    // Assert
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn several_messages_in_one_post_are_answered_in_order() {
    // Arrange
    let sim = StreamingSim::start().await;
    sim.publish("retained");
    let client = sim.client();
    let id = client.handshake().await;

    // Act
    let replies = client
        .post(json!([
            {"channel":"/meta/subscribe","clientId":id,"subscription":CHANNEL,"ext":{"replay":{CHANNEL:-2}},"id":"2"},
            {"channel":"/meta/connect","clientId":id,"connectionType":"long-polling","id":"3"}
        ]))
        .await;

    // Assert
    let channels: Vec<&str> = replies
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["/meta/subscribe", CHANNEL, "/meta/connect"]);
}

#[tokio::test]
async fn an_unsubscribed_channel_delivers_nothing_and_a_disconnected_client_is_forgotten() {
    // Arrange
    let sim = StreamingSim::start_with(StreamingConfig {
        connect_timeout: Duration::from_millis(50),
        ..StreamingConfig::default()
    })
    .await;
    let client = sim.client();
    let id = client.handshake().await;
    client.subscribe(&id, json!(-1)).await;

    // Act
    let unsubscribed = client
        .post(
            json!([{"channel":"/meta/unsubscribe","clientId":id,"subscription":CHANNEL,"id":"4"}]),
        )
        .await;
    sim.publish("unheard");
    let replies = client.connect(&id).await;
    let disconnected = client
        .post(json!([{"channel":"/meta/disconnect","clientId":id,"id":"5"}]))
        .await;
    let after = client.connect(&id).await;

    // Assert
    assert_eq!(unsubscribed[0]["successful"], true);
    assert!(delivered(&replies).is_empty());
    assert_eq!(
        disconnected,
        [json!({"clientId":id,"channel":"/meta/disconnect","id":"5","successful":true})]
    );
    assert_eq!(connect_reply(&after)["error"], "403::Unknown client");
}

#[tokio::test]
async fn shutdown_releases_a_held_connect_promptly() {
    // Arrange
    let sim = StreamingSim::start().await;
    let client = sim.client();
    let id = client.handshake().await;
    client.subscribe(&id, json!(-1)).await;
    let poll = tokio::spawn({
        let (client, id) = (client.clone(), id.clone());
        async move { client.connect(&id).await }
    });
    sim.until_held(1).await;

    // Act
    sim.shutdown.cancel();

    // Assert
    let replies = tokio::time::timeout(PROMPTLY, poll).await.unwrap().unwrap();
    assert_eq!(connect_reply(&replies)["successful"], true);
    tokio::time::timeout(PROMPTLY, sim.server.stop())
        .await
        .unwrap();
}
