//! What the benchmarks share: both simulators and daemon settings pointing at them.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sfwa::clock::Clock;
use sfwa::config::{AuthMode, Secret, Settings};
use sfwa_sim::clock::SimClock;
use sfwa_sim::salesforce::{self, SalesforceSim, SalesforceSimConfig, TrustedKey};
use sfwa_sim::whatsapp::{self, WhatsAppSim, WhatsAppSimConfig};

/// A fresh simulated org (allowance 1,000,000 calls a day) and Cloud API (1,000 messages/s), and
/// settings for a daemon at 1,000 messages/s with its store in a temporary directory.
pub struct Bench {
    pub org: SalesforceSim,
    pub wa: WhatsAppSim,
    /// The simulators' clock, for the daemon too.
    pub clock: SimTime,
    pub settings: Settings,
    pub dir: PathBuf,
}

impl Bench {
    pub async fn start() -> anyhow::Result<Bench> {
        let dir = std::env::temp_dir().join(format!(
            "sfwa-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let clock = SimClock::new();
        let mut org_config = SalesforceSimConfig::new(TrustedKey::generate()?)?;
        org_config.clock = clock.clone();
        org_config.daily_api_allowance = 1_000_000;
        let key_path = dir.join("jwt.pem");
        org_config.trusted_key.write_to(&key_path)?;
        let org = salesforce::start(org_config).await?;
        let wa = whatsapp::start(WhatsAppSimConfig {
            clock: clock.clone(),
            throughput_per_second: 1000,
            ..WhatsAppSimConfig::default()
        })
        .await?;

        let mut settings = Settings::default();
        settings.salesforce.login_url = org.url();
        settings.salesforce.auth = AuthMode::Jwt;
        settings.salesforce.client_id = org.config().client_id.clone();
        settings.salesforce.username = org.config().username.clone();
        settings.salesforce.private_key_path = Some(key_path);
        settings.whatsapp.api_base = wa.url();
        settings.whatsapp.http2 = sfwa::whatsapp::Http2::Always;
        settings.whatsapp.access_token = Secret::new(wa.access_token());
        settings.whatsapp.default_phone_number_id = wa.phone_number_id().to_string();
        settings.whatsapp.app_secret = Secret::new(wa.app_secret());
        settings.whatsapp.verify_token = Secret::new(wa.verify_token());
        settings.whatsapp.throughput_per_second = 1000;
        settings.webhook.listen = "127.0.0.1:0".parse()?;
        settings.observe.listen = "127.0.0.1:0".parse()?;
        settings.store.path = dir.join("sfwa.db");
        Ok(Bench {
            org,
            wa,
            clock: SimTime(clock),
            settings,
            dir,
        })
    }

    /// Removes the temporary directory.
    pub fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The simulators' shiftable clock as the daemon's `Clock`, so both sides share one "now" (the
/// simulator crate does not know the daemon's trait).
#[derive(Clone, Debug)]
pub struct SimTime(pub SimClock);

impl Clock for SimTime {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

/// GET `url` as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Waits between progress checks (the benchmarks poll the simulators' control APIs).
pub const CHECK_EVERY: Duration = Duration::from_millis(100);
