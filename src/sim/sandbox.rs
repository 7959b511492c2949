//! `sfwa sim`: both simulators side by side, as a sandbox an admin or a test can point sfwa at.
//!
//! Credentials live in the state directory (`credentials.json` and the JWT private key), so a
//! sandbox restarted with the same `--state-dir` keeps working with an unchanged sfwa config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::clock::SimClock;
use super::salesforce::{self, SalesforceSim, SalesforceSimConfig, TrustedKey};
use super::whatsapp::{self, WhatsAppSim, WhatsAppSimConfig};

/// Where and how to run the pair.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub salesforce_addr: SocketAddr,
    pub whatsapp_addr: SocketAddr,
    /// Where the WhatsApp simulator delivers webhooks (sfwa's webhook listener).
    pub webhook_url: Option<String>,
    /// Keys and credentials; created on first use.
    pub state_dir: PathBuf,
}

/// Credentials that survive restarts of the sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Credentials {
    salesforce_client_id: String,
    salesforce_client_secret: String,
    salesforce_username: String,
    whatsapp_access_token: String,
    whatsapp_phone_number_id: String,
    whatsapp_app_secret: String,
    whatsapp_verify_token: String,
}

/// Both simulators, sharing one clock.
pub struct Sandbox {
    pub salesforce: SalesforceSim,
    pub whatsapp: WhatsAppSim,
    pub clock: SimClock,
}

impl Sandbox {
    pub async fn start(options: &SandboxOptions) -> anyhow::Result<Sandbox> {
        std::fs::create_dir_all(&options.state_dir).with_context(|| {
            format!(
                "creating the state directory {}",
                options.state_dir.display()
            )
        })?;
        // Absolute, so the printed private_key_path works from any working directory.
        let state_dir = options.state_dir.canonicalize()?;
        let key = TrustedKey::load_or_create(&state_dir)?;
        let clock = SimClock::new();
        let mut sf_config = SalesforceSimConfig::new(key)?;
        let mut wa_config = WhatsAppSimConfig::default();
        let credentials = load_or_create_credentials(&state_dir, &sf_config, &wa_config)?;
        sf_config.addr = options.salesforce_addr;
        sf_config.clock = clock.clone();
        sf_config.client_id = credentials.salesforce_client_id;
        sf_config.client_secret = credentials.salesforce_client_secret;
        sf_config.username = credentials.salesforce_username;
        wa_config.addr = options.whatsapp_addr;
        wa_config.clock = clock.clone();
        wa_config.webhook_url = options.webhook_url.clone();
        wa_config.access_token = credentials.whatsapp_access_token;
        wa_config.phone_number_id = credentials.whatsapp_phone_number_id;
        wa_config.app_secret = credentials.whatsapp_app_secret;
        wa_config.verify_token = credentials.whatsapp_verify_token;
        let salesforce = salesforce::start(sf_config)
            .await
            .context("starting the Salesforce simulator")?;
        let whatsapp = whatsapp::start(wa_config)
            .await
            .context("starting the WhatsApp simulator")?;
        Ok(Sandbox {
            salesforce,
            whatsapp,
            clock,
        })
    }

    /// The one-line JSON a client needs (the first line `sfwa sim` prints).
    pub fn connection_info(&self) -> Value {
        let sf = self.salesforce.config();
        let wa = self.whatsapp.config();
        json!({
            "salesforce_url": self.salesforce.url(),
            "whatsapp_url": self.whatsapp.url(),
            "salesforce": {
                "client_id": sf.client_id,
                "client_secret": sf.client_secret,
                "username": sf.username,
                "private_key_path": sf.trusted_key.private_key_path,
            },
            "whatsapp": {
                "access_token": wa.access_token,
                "phone_number_id": wa.phone_number_id,
                "app_secret": wa.app_secret,
                "verify_token": wa.verify_token,
            },
        })
    }

    /// A few readable lines for a person at a terminal.
    pub fn summary(&self) -> String {
        let sf = self.salesforce.config();
        let wa = self.whatsapp.config();
        format!(
            "Salesforce org simulator  {sf_url}\n  login URL / instance URL: {sf_url}  (JWT bearer: iss={client}, sub={user})\n  private key: {key}\n\
             WhatsApp Cloud API simulator  {wa_url}\n  phone_number_id: {phone}  webhooks to: {hook}\n\
             Control APIs: {sf_url}/__sim/  and  {wa_url}/__sim/  (see docs/simulators.md)\nStop with Ctrl-C.",
            sf_url = self.salesforce.url(),
            client = sf.client_id,
            user = sf.username,
            key = sf
                .trusted_key
                .private_key_path
                .as_ref()
                .map_or("(in memory)".into(), |p| p.display().to_string()),
            wa_url = self.whatsapp.url(),
            phone = wa.phone_number_id,
            hook = wa.webhook_url.as_deref().unwrap_or("(none: pass --webhook-url)"),
        )
    }

    pub async fn stop(self) {
        self.whatsapp.stop().await;
        self.salesforce.stop().await;
    }
}

fn load_or_create_credentials(
    dir: &Path,
    sf: &SalesforceSimConfig,
    wa: &WhatsAppSimConfig,
) -> anyhow::Result<Credentials> {
    let path = dir.join("credentials.json");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not valid; delete it to get fresh credentials",
                path.display()
            )
        });
    }
    let credentials = Credentials {
        salesforce_client_id: sf.client_id.clone(),
        salesforce_client_secret: sf.client_secret.clone(),
        salesforce_username: sf.username.clone(),
        whatsapp_access_token: wa.access_token.clone(),
        whatsapp_phone_number_id: wa.phone_number_id.clone(),
        whatsapp_app_secret: wa.app_secret.clone(),
        whatsapp_verify_token: wa.verify_token.clone(),
    };
    std::fs::write(&path, serde_json::to_string_pretty(&credentials)?)
        .with_context(|| format!("writing {}", path.display()))?;
    // Secrets: readable by the owner only, like the private key beside them.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(credentials)
}
