//! Test support for the WhatsApp simulator's own tests: a simulator wired to a webhook receiver
//! that keeps every change it is posted, and one-line Graph and control calls. Webhooks are taken
//! with [`Harness::webhooks`], which has the simulator deliver everything scheduled first (no
//! waiting for `delivered_after`).

// Each test file uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use reqwest::Client;
use serde_json::{json, Value};
use sfwa_sim::server::RunningServer;
use sfwa_sim::whatsapp::{self, signature, WhatsAppSim, WhatsAppSimConfig};

/// One change as the receiver got it: `entry[0].changes[0]`'s field and value.
#[derive(Clone, Debug)]
pub struct Change {
    pub field: String,
    pub value: Value,
}

type Received = Arc<Mutex<Vec<Change>>>;

pub struct Harness {
    pub sim: WhatsAppSim,
    pub http: Client,
    received: Received,
    _receiver: RunningServer,
}

async fn receive(
    State((received, secret)): State<(Received, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let given = headers
        .get("x-hub-signature-256")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if given != signature(&body, &secret) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let change = &body["entry"][0]["changes"][0];
    received.lock().expect("lock").push(Change {
        field: change["field"].as_str().unwrap_or_default().to_owned(),
        value: change["value"].clone(),
    });
    StatusCode::OK
}

impl Harness {
    pub async fn start() -> Self {
        let config = WhatsAppSimConfig::default();
        let received: Received = Arc::default();
        let router = Router::new()
            .route("/webhook", post(receive))
            .with_state((received.clone(), config.app_secret.clone()));
        let receiver = RunningServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), router)
            .await
            .expect("bind receiver");
        let sim = whatsapp::start(WhatsAppSimConfig {
            webhook_url: Some(format!("{}/webhook", receiver.url())),
            ..config
        })
        .await
        .expect("start simulator");
        Self {
            sim,
            http: Client::new(),
            received,
            _receiver: receiver,
        }
    }

    /// Every change posted so far, after the simulator delivered all it had scheduled; taken
    /// (a second call returns only newer ones).
    pub async fn webhooks(&self) -> Vec<Change> {
        self.sim.deliver_webhooks_now().await;
        std::mem::take(&mut *self.received.lock().expect("lock"))
    }

    /// The statuses among [`Harness::webhooks`], flattened.
    pub async fn statuses(&self) -> Vec<Value> {
        self.webhooks()
            .await
            .into_iter()
            .flat_map(|change| {
                change.value["statuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    /// `POST /v23.0/{phone_number_id}/messages` from `phone_number_id`.
    pub async fn send_from(&self, phone_number_id: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!(
                "{}/v23.0/{phone_number_id}/messages",
                self.sim.url()
            ))
            .bearer_auth(self.sim.access_token())
            .json(body)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, body: &Value) -> (u16, Value) {
        self.send_from(self.sim.phone_number_id(), body).await
    }

    /// A control call answered 200; its body.
    pub async fn control(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.control_raw(path, body).await;
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    pub async fn control_raw(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.url()))
            .json(body)
            .send()
            .await
            .expect("control call");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn control_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim.url()))
            .send()
            .await
            .expect("control get")
            .json()
            .await
            .expect("json")
    }
}

/// A text message body addressed by `field` (`to` or `recipient`).
pub fn text(field: &str, address: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        field: address,
        "type": "text",
        "text": {"body": body},
    })
}
