//! Test support for the WhatsApp simulator: start it on port 0 with short delays, a signature-checking
//! webhook receiver, and one-line Graph / control calls.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use reqwest::Client;
use serde_json::{json, Value};
use sfwa_sim::server::RunningServer;
use sfwa_sim::whatsapp::{self, signature, WhatsAppSim, WhatsAppSimConfig};
use tokio::sync::mpsc;

/// How long a test waits for an asynchronous effect before failing.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A webhook POST as the receiver got it.
#[derive(Debug)]
pub struct Delivery {
    pub body: Value,
    pub content_type: String,
}

#[derive(Clone)]
struct ReceiverState {
    app_secret: String,
    verify_token: String,
    deliveries: mpsc::UnboundedSender<Delivery>,
    /// Answer 500 to this many POSTs before accepting (to exercise retries).
    fail_next: Arc<AtomicU32>,
    attempts: Arc<AtomicU32>,
}

/// The daemon's side of the webhook, minimal: checks the signature on the raw bytes like the real
/// receiver must, answers the verification handshake, forwards accepted payloads to the test.
pub struct WebhookReceiver {
    pub url: String,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    fail_next: Arc<AtomicU32>,
    attempts: Arc<AtomicU32>,
    _server: RunningServer,
}

impl WebhookReceiver {
    pub async fn start(app_secret: &str, verify_token: &str) -> Self {
        let (sender, deliveries) = mpsc::unbounded_channel();
        let fail_next = Arc::new(AtomicU32::new(0));
        let attempts = Arc::new(AtomicU32::new(0));
        let state = ReceiverState {
            app_secret: app_secret.to_owned(),
            verify_token: verify_token.to_owned(),
            deliveries: sender,
            fail_next: fail_next.clone(),
            attempts: attempts.clone(),
        };
        let router = Router::new()
            .route("/webhook", post(receive).get(verify))
            .with_state(state);
        let server = RunningServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), router)
            .await
            .expect("bind webhook receiver");
        Self {
            url: format!("{}/webhook", server.url()),
            deliveries,
            fail_next,
            attempts,
            _server: server,
        }
    }

    pub fn fail_next(&self, count: u32) {
        self.fail_next.store(count, Ordering::SeqCst);
    }

    /// POSTs received so far, including refused ones.
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// The next accepted webhook, or a test failure after [`DEADLINE`].
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(DEADLINE, self.deliveries.recv())
            .await
            .expect("no webhook within the deadline")
            .expect("receiver closed")
    }

    /// The next accepted webhook's `entry[0].changes[0].value`.
    pub async fn next_value(&mut self) -> Value {
        let delivery = self.next().await;
        delivery.body["entry"][0]["changes"][0]["value"].clone()
    }

    /// The next single status object (asserts one status per POST).
    pub async fn next_status(&mut self) -> Value {
        let value = self.next_value().await;
        let statuses = value["statuses"].as_array().expect("a statuses webhook");
        assert_eq!(statuses.len(), 1, "expected one status per POST: {value}");
        statuses[0].clone()
    }

    /// Waits until `wamid` reaches `status`, returning it; other updates are skipped.
    pub async fn status_of(&mut self, wamid: &str, status: &str) -> Value {
        loop {
            let value = self.next_value().await;
            for update in value["statuses"].as_array().into_iter().flatten() {
                if update["id"] == wamid && update["status"] == status {
                    return update.clone();
                }
            }
        }
    }

    /// The statuses of every webhook already received (and not yet read), without waiting: what a
    /// receiver holds the moment a call returns.
    pub fn statuses_received_so_far(&mut self) -> Vec<Value> {
        let mut statuses = Vec::new();
        while let Ok(delivery) = self.deliveries.try_recv() {
            let value = &delivery.body["entry"][0]["changes"][0]["value"];
            statuses.extend(value["statuses"].as_array().into_iter().flatten().cloned());
        }
        statuses
    }

    /// Whether nothing arrives within `window` (for "no further webhook" assertions).
    pub async fn quiet_for(&mut self, window: Duration) -> bool {
        tokio::time::timeout(window, self.deliveries.recv())
            .await
            .is_err()
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.attempts.fetch_add(1, Ordering::SeqCst);
    let given = headers
        .get("x-hub-signature-256")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if given != signature(&body, &state.app_secret) {
        return StatusCode::UNAUTHORIZED;
    }
    let refuse = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refuse {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Ok(body) = serde_json::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = state.deliveries.send(Delivery { body, content_type });
    StatusCode::OK
}

async fn verify(
    State(state): State<ReceiverState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, String) {
    let token_ok = query.get("hub.verify_token") == Some(&state.verify_token);
    match (query.get("hub.mode").map(String::as_str), token_ok) {
        (Some("subscribe"), true) => (
            StatusCode::OK,
            query.get("hub.challenge").cloned().unwrap_or_default(),
        ),
        _ => (StatusCode::FORBIDDEN, String::new()),
    }
}

/// A running simulator wired to a receiver, plus an HTTP client.
pub struct TestSim {
    pub sim: WhatsAppSim,
    pub hooks: WebhookReceiver,
    pub http: Client,
}

/// Starts a simulator with test-speed delays; `tune` adjusts the config further.
pub async fn spawn_sim(tune: impl FnOnce(&mut WhatsAppSimConfig)) -> TestSim {
    let mut config = WhatsAppSimConfig {
        // Long enough that consecutive updates do not overtake each other on a loaded machine.
        delivered_after: Duration::from_millis(100),
        read_after: Duration::from_millis(100),
        ..WhatsAppSimConfig::default()
    };
    config.webhook_retry.initial_backoff = Duration::from_millis(10);
    let hooks = WebhookReceiver::start(&config.app_secret, &config.verify_token).await;
    config.webhook_url = Some(hooks.url.clone());
    tune(&mut config);
    let sim = whatsapp::start(config).await.expect("start simulator");
    TestSim {
        sim,
        hooks,
        http: Client::new(),
    }
}

pub const CUSTOMER: &str = "16505551234";

pub fn text_to(to: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": false, "body": body},
    })
}

pub fn template_to(to: &str, name: &str, components: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {"name": name, "language": {"code": "en_US"}, "components": components},
    })
}

impl TestSim {
    pub fn messages_url(&self) -> String {
        format!(
            "{}/v23.0/{}/messages",
            self.sim.url(),
            self.sim.phone_number_id()
        )
    }

    /// Sends with the right token; returns status and JSON body.
    pub async fn send(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.messages_url())
            .bearer_auth(self.sim.access_token())
            .json(body)
            .send()
            .await
            .expect("send request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        (status, response.json().await.expect("JSON body"))
    }

    /// Sends and expects 200; returns the wamid.
    pub async fn send_ok(&self, body: &Value) -> String {
        let (status, answer) = self.send(body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["messages"][0]["id"]
            .as_str()
            .expect("wamid")
            .to_owned()
    }

    pub async fn control_post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.url()))
            .json(body)
            .send()
            .await
            .expect("control request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("JSON body")
    }

    pub async fn control_put(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .put(format!("{}{path}", self.sim.url()))
            .json(body)
            .send()
            .await
            .expect("control request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("JSON body")
    }

    pub async fn control_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim.url()))
            .send()
            .await
            .expect("control request")
            .json()
            .await
            .expect("JSON body")
    }

    /// Polls a control GET until `check` holds, failing after [`DEADLINE`]. For effects the
    /// simulator records after a webhook was already handed to the receiver.
    pub async fn control_get_until(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let value = self.control_get(path).await;
            if check(&value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never satisfied the condition: {value}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The customer writes to the business (opens the window) and the inbound webhook is consumed.
    pub async fn customer_writes(&mut self, from: &str, text: &str) -> Value {
        let answer = self
            .control_post(
                "/__sim/inbound",
                &json!({"from": from, "type": "text", "text": text}),
            )
            .await;
        let value = self.hooks.next_value().await;
        assert_eq!(value["messages"][0]["id"], answer["wamid"]);
        value
    }
}

/// Asserts Meta's error body shape and returns `error`.
pub fn assert_meta_error(status: StatusCode, body: &Value, http: u16, code: u64) -> Value {
    assert_eq!(status.as_u16(), http, "{body}");
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "{body}");
    assert!(error["type"].is_string(), "{body}");
    let trace = error["fbtrace_id"].as_str().expect("fbtrace_id");
    assert_eq!(trace.len(), 23);
    error
}

/// Asserts a WhatsApp-level error: `(#CODE) Title` and `error_data` with details.
pub fn assert_whatsapp_error(status: StatusCode, body: &Value, code: u64, title: &str) -> Value {
    let error = assert_meta_error(status, body, 400, code);
    assert_eq!(error["message"], format!("(#{code}) {title}"), "{body}");
    assert_eq!(error["type"], "OAuthException");
    assert_eq!(error["error_data"]["messaging_product"], "whatsapp");
    assert!(error["error_data"]["details"].is_string(), "{body}");
    error
}
