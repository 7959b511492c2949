//! `spawn_app()`: the real daemon wired to both simulators on port 0, one shared clock, a store in
//! a temporary directory. The webhook receiver runs; the workers do not — tests call the steps
//! (`dispatch_step`, `flush_once`) so nothing depends on timing. `run()` starts the whole daemon
//! for shutdown/restart tests.

// Support code: not every test module uses every helper.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sfwa::app::App;
use sfwa::config::{AuthMode, Secret, Settings};
use sfwa::domain::ids::{BusinessNumberId, CustomerId};
use sfwa::observe::health::Health;
use sfwa::observe::metrics::Metrics;
use sfwa::pipeline::worker::{self, DispatchStep};
use sfwa::pipeline::writeback::{self, FlushOutcome};
use sfwa::pipeline::Pipeline;
use sfwa::store::journal::{self, JournalEntry};
use sfwa_sim::salesforce::{self, SalesforceSim, SalesforceSimConfig};
use sfwa_sim::whatsapp::{self, WhatsAppSim, WhatsAppSimConfig};
use tokio_util::sync::CancellationToken;

use crate::helpers::SimTime;

/// Generous bound for asynchronous effects (webhooks); never reached when the code is right, even
/// with the suite run at 16 threads on 2 cores (the property test and the soak-like tests load it).
pub const DEADLINE: Duration = Duration::from_secs(30);

pub const MSG: &str = "WhatsApp_Message__c";

pub struct TestApp {
    pub org: SalesforceSim,
    pub wa: WhatsAppSim,
    pub clock: SimTime,
    pub pipeline: Pipeline,
    /// What `/metrics` renders (the pipeline reports into it).
    pub metrics: Metrics,
    /// `http://127.0.0.1:port` of the observe listener (`/metrics`, `/healthz`, `/readyz`).
    pub observe_base: String,
    /// Where the platform-event allocation reading is kept (`observe::limits::read_once`).
    pub health: Arc<Health>,
    pub settings: Settings,
    pub http: reqwest::Client,
    webhook_stop: CancellationToken,
    _dir: tempfile::TempDir,
}

/// Knobs a test may turn before the daemon starts.
pub struct Options {
    pub wa: WhatsAppSimConfig,
    pub org: SalesforceSimConfig,
    pub tune: Box<dyn FnOnce(&mut Settings)>,
}

impl Default for Options {
    fn default() -> Self {
        let wa = WhatsAppSimConfig {
            delivered_after: Duration::from_millis(50),
            read_after: Duration::from_millis(50),
            ..WhatsAppSimConfig::default()
        };
        Options {
            wa,
            org: SalesforceSimConfig::for_tests(),
            tune: Box::new(|_| {}),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimTime::default();
    let mut org_config = options.org;
    org_config.clock = clock.0.clone();
    let mut key = org_config.trusted_key.clone();
    let key_path = dir.path().join("jwt.pem");
    key.write_to(&key_path).unwrap();
    org_config.trusted_key = key;
    let org = salesforce::start(org_config).await.unwrap();
    let mut wa_config = options.wa;
    wa_config.clock = clock.0.clone();
    let wa = whatsapp::start(wa_config).await.unwrap();
    let settings = settings_for(
        &org,
        &wa,
        key_path,
        dir.path().join("sfwa.db"),
        options.tune,
    );
    let Started {
        pipeline,
        metrics,
        observe_base,
        health,
        stop: webhook_stop,
    } = start_daemon(&wa, settings.clone(), &clock).await;
    TestApp {
        org,
        wa,
        clock,
        pipeline,
        metrics,
        observe_base,
        health,
        settings,
        http: reqwest::Client::new(),
        webhook_stop,
        _dir: dir,
    }
}

fn settings_for(
    org: &SalesforceSim,
    wa: &WhatsAppSim,
    key_path: PathBuf,
    store: PathBuf,
    tune: Box<dyn FnOnce(&mut Settings)>,
) -> Settings {
    let mut s = Settings::default();
    s.salesforce.login_url = org.url();
    s.salesforce.auth = AuthMode::Jwt;
    s.salesforce.client_id = org.config().client_id.clone();
    s.salesforce.username = org.config().username.clone();
    s.salesforce.private_key_path = Some(key_path);
    s.salesforce.client_secret = Secret::new(org.config().client_secret.clone());
    s.whatsapp.api_base = wa.url();
    s.whatsapp.access_token = Secret::new(wa.access_token());
    s.whatsapp.default_phone_number_id = wa.phone_number_id().to_string();
    s.whatsapp.app_secret = Secret::new(wa.app_secret());
    s.whatsapp.verify_token = Secret::new(wa.verify_token());
    s.whatsapp.default_region = "US".into();
    s.whatsapp.timeout = Duration::from_secs(2);
    // Sends as HTTP/2 streams, as to Meta (`auto` would choose it there by ALPN).
    s.whatsapp.http2 = sfwa::whatsapp::Http2::Always;
    s.dispatch.initial_backoff = Duration::from_millis(10);
    s.webhook.listen = "127.0.0.1:0".parse().unwrap();
    s.observe.listen = "127.0.0.1:0".parse().unwrap();
    s.store.path = store;
    tune(&mut s);
    s.validate().expect("test settings are valid");
    s
}

/// A daemon serving its webhook and observe listeners, its workers not running.
struct Started {
    pipeline: Pipeline,
    metrics: Metrics,
    observe_base: String,
    health: Arc<Health>,
    stop: CancellationToken,
}

async fn start_daemon(wa: &WhatsAppSim, settings: Settings, clock: &SimTime) -> Started {
    let app = App::build(settings, Arc::new(clock.clone())).await.unwrap();
    wa.set_webhook_url(Some(app.webhook_url()));
    let metrics = app.metrics().clone();
    let observe_base = format!("http://{}", app.observe_addr());
    let health = app.health().clone();
    let stop = CancellationToken::new();
    let (pipeline, _server) = app.spawn_webhook_server(stop.clone());
    Started {
        pipeline,
        metrics,
        observe_base,
        health,
        stop,
    }
}

impl TestApp {
    /// The store's writes so far (each a closure the writer ran; several may share a commit).
    pub fn store_writes(&self) -> u64 {
        self.pipeline
            .core
            .store
            .commit_counts()
            .writes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A GET of the WhatsApp simulator's control API (`/__sim/{path}`), as JSON.
    pub async fn wa_sim_get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}/__sim/{path}", self.wa.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The WhatsApp simulator's media counters (`GET /__sim/media`): `downloads`, `uploads`, `files`.
    pub async fn sim_media_stat(&self, counter: &str) -> u64 {
        let stats = self.wa_sim_get("media").await;
        stats[counter]
            .as_u64()
            .unwrap_or_else(|| panic!("/__sim/media has no counter {counter}: {stats}"))
    }

    /// A `sfwa.toml` for this app's simulators (JWT login, its WhatsApp settings) with the
    /// store at `store`: for tests that run the `sfwa` binary beside it.
    pub fn config_toml(&self, store: &std::path::Path) -> String {
        let s = &self.settings;
        format!(
            r#"[salesforce]
login_url = "{login}"
auth = "jwt"
client_id = "{client_id}"
username = "{username}"
private_key_path = "{key}"
[whatsapp]
api_base = "{wa}"
access_token = "{token}"
default_phone_number_id = "{number}"
app_secret = "{secret}"
verify_token = "{verify}"
default_region = "US"
[store]
path = "{store}"
"#,
            login = s.salesforce.login_url,
            client_id = s.salesforce.client_id,
            username = s.salesforce.username,
            key = s.salesforce.private_key_path.as_ref().unwrap().display(),
            wa = s.whatsapp.api_base,
            token = s.whatsapp.access_token.expose(),
            number = s.whatsapp.default_phone_number_id,
            secret = s.whatsapp.app_secret.expose(),
            verify = s.whatsapp.verify_token.expose(),
            store = store.display(),
        )
    }

    /// Stops this daemon and starts a new one on the same store (a restart).
    pub async fn restart(&mut self) {
        self.webhook_stop.cancel();
        let started = start_daemon(&self.wa, self.settings.clone(), &self.clock).await;
        self.pipeline = started.pipeline;
        self.metrics = started.metrics;
        self.observe_base = started.observe_base;
        self.health = started.health;
        self.webhook_stop = started.stop;
    }

    /// `GET /metrics` on the daemon's observe listener.
    pub async fn scrape(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.observe_base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET /metrics");
        response.text().await.unwrap()
    }

    /// Stops the webhook receiver only (the daemon's port refuses connections once it has
    /// closed); [`TestApp::restart`] brings it back on the same `webhook.listen`.
    /// POSTs `body` to the daemon's webhook as Meta would, with `signature` as
    /// `X-Hub-Signature-256`; the HTTP status it answered.
    pub async fn post_webhook(&self, body: &[u8], signature: &str) -> u16 {
        self.http
            .post(self.wa.webhook_url().unwrap())
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub fn stop_webhooks(&self) {
        self.webhook_stop.cancel();
    }

    pub async fn dispatch(&self) -> DispatchStep {
        worker::dispatch_step(&self.pipeline)
            .await
            .expect("dispatch step")
    }

    pub async fn flush(&self) -> FlushOutcome {
        writeback::flush_once(&self.pipeline.write_back)
            .await
            .expect("flush")
    }

    /// Creates Queued outbound records the way a Flow would (through DML, not the REST API).
    pub async fn queue(&self, records: Value) -> Vec<String> {
        let records: Vec<Value> = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["Status__c"] = json!("Queued");
                r
            })
            .collect();
        self.seed(MSG, json!(records)).await
    }

    /// Inserts records into the org through DML (Flows included), returning their Ids.
    pub async fn seed(&self, object: &str, records: Value) -> Vec<String> {
        crate::helpers::seed_records(&self.http, &self.org.url(), object, records).await
    }

    /// A record as a rep sees it.
    pub fn record(&self, id: &str) -> Value {
        Value::Object(self.org.state().org().get(MSG, id).unwrap().clone())
    }

    pub async fn journal(&self, id: &str) -> Option<JournalEntry> {
        let id = id.to_string();
        self.pipeline
            .core
            .store
            .read(move |c| journal::get(c, &id.parse().unwrap()))
            .await
            .unwrap()
    }

    /// A customer writes to the business number `hours_ago` hours ago (Meta's timestamp).
    pub async fn customer_wrote(&self, wa_id: &str, hours_ago: i64) {
        let timestamp = self.clock.now().timestamp() - hours_ago * 3600;
        self.wa_control(
            "inbound",
            json!({"from": wa_id, "type": "text", "text": "hello", "timestamp": timestamp}),
        )
        .await;
        self.deliver_webhooks().await;
        let (number, wa_id): (BusinessNumberId, CustomerId) = (
            self.wa.phone_number_id().parse().unwrap(),
            wa_id.parse().unwrap(),
        );
        let mirrored = self
            .pipeline
            .core
            .store
            .read(move |c| sfwa::store::inbound::last_inbound(c, &number, &wa_id))
            .await
            .unwrap();
        assert!(
            mirrored.is_some_and(|at| at.timestamp() == timestamp),
            "the inbound message reaches the mirror: {mirrored:?}"
        );
    }

    pub async fn wa_control(&self, path: &str, body: Value) -> Value {
        self.control(&self.wa.url(), path, body).await
    }

    pub async fn org_control(&self, path: &str, body: Value) -> Value {
        self.control(&self.org.url(), path, body).await
    }

    async fn control(&self, base: &str, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{base}/__sim/{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// Messages the WhatsApp simulator received.
    pub async fn wa_messages(&self) -> Vec<Value> {
        let body = self
            .get_json(&format!("{}/__sim/messages", self.wa.url()))
            .await;
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    pub async fn org_stats(&self) -> Value {
        self.get_json(&format!("{}/__sim/stats", self.org.url()))
            .await
    }

    pub async fn wa_stats(&self) -> Value {
        self.get_json(&format!("{}/__sim/stats", self.wa.url()))
            .await
    }

    async fn get_json(&self, url: &str) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Has the WhatsApp simulator deliver every webhook it has scheduled now, whatever its due
    /// time, and returns once the daemon has answered each POST. The daemon's receiver stores a
    /// POST in one transaction before it answers 200 (`webhook::server`, `webhook_apply`), so
    /// what they said is in the store and the outbox when this returns: no waiting, no polling.
    pub async fn deliver_webhooks(&self) {
        let delivered = self.wa.deliver_webhooks_now().await;
        assert_all_answered_200(&delivered.statuses, &delivered);
    }

    /// Like [`TestApp::deliver_webhooks`] for the webhooks already due only (`sent`, an inbound
    /// message), leaving those `delivered_after`/`read_after` away scheduled.
    pub async fn deliver_due_webhooks(&self) {
        let delivered = self.wa.deliver_due_webhooks().await;
        assert_all_answered_200(&delivered.statuses, &delivered);
    }

    /// Delivers the scheduled webhooks, flushes once and returns the record, which must show
    /// `status` by then.
    pub async fn status_after_webhooks(&self, id: &str, status: &str) -> Value {
        self.deliver_webhooks().await;
        self.status_after_flush(id, status).await
    }

    /// Flushes once and returns the record, which must show `status` by then: for what the
    /// daemon writes back itself (`Sent` with the wamid once WhatsApp accepted, a refusal).
    pub async fn status_after_flush(&self, id: &str, status: &str) -> Value {
        self.flush().await;
        let record = self.record(id);
        assert_eq!(
            record["Status__c"], status,
            "record {id} never reached {status}; it is {}",
            record["Status__c"]
        );
        record
    }
}

fn assert_all_answered_200(statuses: &[Option<u16>], delivered: &impl std::fmt::Debug) {
    assert!(
        statuses.iter().all(|status| *status == Some(200)),
        "the daemon refused a webhook: {delivered:?}"
    );
}

/// Waits for an asynchronous condition, failing the test after DEADLINE.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
