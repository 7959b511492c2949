//! A wire-faithful Salesforce org: OAuth, REST (query, SOSL search, sObject rows, describe,
//! collections, composite, limits), CometD streaming, API usage and faults, plus a control API
//! under `/__sim/` for tests and demos.
//!
//! Start one with [`start`]; the returned [`SalesforceSim`] knows its URL and credentials. The schema
//! comes from the package's SFDX metadata ([`schema::Schema::embedded`]). Everything answers in
//! Salesforce's exact wire shapes (see `shared/reference/salesforce-api.md` and docs/simulators.md).

pub mod auth;
pub mod channels;
pub mod composite;
pub mod control;
pub mod faults;
pub mod files;
pub mod flows;
pub mod ids;
pub mod keys;
pub mod org;
pub mod rest;
pub mod schema;
pub mod search;
pub mod soql;
pub mod streaming;
pub mod usage;
pub mod validation;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::server::RunningServer;

pub use keys::TrustedKey;

/// The platform event the package's Flow publishes for every Queued outbound record.
pub const OUTBOUND_EVENT_CHANNEL: &str = "/event/WhatsApp_Outbound__e";

/// How the simulated org is set up.
#[derive(Clone, Debug)]
pub struct SalesforceSimConfig {
    /// Where to listen; port 0 picks any free port.
    pub addr: SocketAddr,
    pub clock: SimClock,
    /// Consumer key of the External Client App.
    pub client_id: String,
    /// Consumer secret (client credentials and refresh flows).
    pub client_secret: String,
    /// The integration user the JWT flow logs in as.
    pub username: String,
    /// The key pair the External Client App trusts for JWT bearer.
    pub trusted_key: TrustedKey,
    /// Inactivity after which an access token stops working (Salesforce's default is 2 h).
    pub session_timeout: chrono::Duration,
    /// Records per query page before `nextRecordsUrl` (Salesforce: up to 2000).
    pub query_page_size: usize,
    /// REST calls allowed per day (Developer Edition: 15,000).
    pub daily_api_allowance: u64,
    /// How long a CometD connect is held when no event arrives (Salesforce: 110 s).
    pub connect_timeout: Duration,
    /// How long platform events are kept for replay (high-volume events: 72 h).
    pub event_retention: chrono::Duration,
    /// `DailyDeliveredPlatformEvents`: events delivered to subscribers per day, each subscriber
    /// counting each event (Developer Edition: about 10,000). Past it, events are not delivered.
    pub daily_delivered_platform_events: u64,
    /// How long after its creation a record becomes findable by SOSL (`GET search`); Salesforce's
    /// index lags by seconds to minutes. Changeable at run time (`POST /__sim/search`).
    pub search_index_lag: chrono::Duration,
    pub schema: Arc<schema::Schema>,
}

impl SalesforceSimConfig {
    /// A ready-to-use config with fresh credentials and the embedded schema.
    pub fn new(trusted_key: TrustedKey) -> anyhow::Result<SalesforceSimConfig> {
        Ok(SalesforceSimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock: SimClock::new(),
            client_id: format!("3MVG9sfwaSim{}", short_random(40)),
            client_secret: short_random(64),
            username: "integration@sfwa.example".into(),
            trusted_key,
            session_timeout: chrono::Duration::hours(2),
            query_page_size: 2000,
            daily_api_allowance: 15_000,
            connect_timeout: Duration::from_secs(110),
            event_retention: chrono::Duration::hours(72),
            daily_delivered_platform_events: streaming::channels::DEFAULT_DAILY_DELIVERIES,
            search_index_lag: chrono::Duration::zero(),
            schema: Arc::new(schema::Schema::embedded()?),
        })
    }

    /// A config for tests: a process-wide key, so each test does not pay for RSA key generation.
    pub fn for_tests() -> SalesforceSimConfig {
        Self::new(TrustedKey::for_tests()).expect("the embedded schema parses")
    }
}

fn short_random(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Everything the request handlers share. Locks are std mutexes held only for in-memory work,
/// never across an `.await`.
pub struct OrgState {
    pub config: SalesforceSimConfig,
    pub clock: SimClock,
    pub org_id: String,
    pub user_id: String,
    /// Set once the listener is bound (port 0 is only known then).
    url: std::sync::OnceLock<String>,
    pub org: Mutex<org::Org>,
    pub sessions: Mutex<auth::Sessions>,
    pub usage: Mutex<usage::Usage>,
    pub faults: Mutex<faults::Faults>,
    /// Query locator → remaining rows, for `nextRecordsUrl`.
    pub cursors: Mutex<HashMap<String, rest::Cursor>>,
    pub bus: Arc<streaming::EventBus>,
    /// The publishing Flow's scheduled paths waiting for their time ([`flows::run_scheduled`]).
    pub scheduled: Mutex<flows::ScheduledPaths>,
    /// The search index's lag ([`search`]), from the config, changed by the control API.
    pub search_lag: Mutex<chrono::Duration>,
    /// ContentVersion Id → the file's bytes (`VersionData`; see [`files`]).
    pub files: Mutex<HashMap<String, bytes::Bytes>>,
}

impl OrgState {
    /// The org's instance URL (also its My Domain and login URL).
    pub fn url(&self) -> String {
        self.url.get().cloned().unwrap_or_default()
    }

    pub fn org(&self) -> MutexGuard<'_, org::Org> {
        self.org.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lock order: [`OrgState::org`] first when both are needed.
    pub fn scheduled_paths(&self) -> MutexGuard<'_, flows::ScheduledPaths> {
        self.scheduled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a new record stays out of SOSL results.
    pub fn search_index_lag(&self) -> chrono::Duration {
        *self.search_lag.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_search_index_lag(&self, lag: chrono::Duration) {
        *self.search_lag.lock().unwrap_or_else(|e| e.into_inner()) = lag;
    }

    pub fn usage(&self) -> MutexGuard<'_, usage::Usage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn sessions(&self) -> MutexGuard<'_, auth::Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> faults::Faults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True when the request carries a live access token (used by CometD too).
    pub fn authorized(&self, headers: &axum::http::HeaderMap) -> bool {
        auth::bearer(headers).is_some_and(|token| {
            self.sessions()
                .touch(token, self.clock.now(), self.config.session_timeout)
                .is_ok()
        })
    }
}

/// A running simulated org.
pub struct SalesforceSim {
    state: Arc<OrgState>,
    server: RunningServer,
    shutdown: CancellationToken,
    /// Releases held CometD connects when the handle is dropped without `stop()`.
    _release_on_drop: tokio_util::sync::DropGuard,
}

/// Starts a simulated org on `config.addr`.
pub async fn start(config: SalesforceSimConfig) -> anyhow::Result<SalesforceSim> {
    let bus = streaming::EventBus::new(config.clock.clone(), config.event_retention);
    bus.register_channel(OUTBOUND_EVENT_CHANNEL);
    bus.set_delivery_allocation(Some(config.daily_delivered_platform_events), None);
    let state = Arc::new(OrgState {
        clock: config.clock.clone(),
        org_id: ids::IdGenerator::default().next("00D"),
        user_id: org::INTEGRATION_USER_ID.to_string(),
        url: std::sync::OnceLock::new(),
        org: Mutex::new({
            let mut org = org::Org::new(config.schema.clone());
            flows::seed(&mut org);
            org
        }),
        sessions: Mutex::new(auth::Sessions::default()),
        usage: Mutex::new(usage::Usage::new(config.daily_api_allowance)),
        faults: Mutex::new(faults::Faults::default()),
        cursors: Mutex::new(HashMap::new()),
        bus: bus.clone(),
        scheduled: Mutex::new(flows::ScheduledPaths::default()),
        search_lag: Mutex::new(config.search_index_lag),
        files: Mutex::new(HashMap::new()),
        config,
    });
    let shutdown = CancellationToken::new();
    let authorize_state = state.clone();
    let streaming = streaming::router(
        bus,
        streaming::StreamingConfig {
            connect_timeout: state.config.connect_timeout,
            ..Default::default()
        },
        Arc::new(move |headers: &axum::http::HeaderMap| authorize_state.authorized(headers)),
        shutdown.clone(),
    );
    let counted_streaming = streaming.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        rest::count_cometd,
    ));
    let router = Router::new()
        .route("/services/oauth2/token", post(auth::token))
        .merge(rest::router(state.clone(), composite::router()))
        .nest("/__sim", control::router())
        .with_state(state.clone())
        .merge(counted_streaming);
    let server = RunningServer::bind(state.config.addr, router).await?;
    // The Flow's scheduled paths run on the sim clock, which moves with wall time (and jumps when
    // the control API shifts it; that handler runs them at once).
    let (timer_state, timer_stop) = (state.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = timer_stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {
                    flows::run_scheduled(&timer_state);
                }
            }
        }
    });
    let _ = state.url.set(server.url());
    Ok(SalesforceSim {
        state,
        server,
        _release_on_drop: shutdown.clone().drop_guard(),
        shutdown,
    })
}

impl SalesforceSim {
    /// Instance URL, login URL and My Domain in one: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn config(&self) -> &SalesforceSimConfig {
        &self.state.config
    }

    pub fn clock(&self) -> SimClock {
        self.state.clock.clone()
    }

    /// Shared state, for in-process tests and the demo.
    pub fn state(&self) -> &Arc<OrgState> {
        &self.state
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.stop().await;
    }
}
