//! `sfwa sim`: both simulators side by side, as a sandbox an admin or a test can point sfwa at.
//!
//! Credentials live in the state directory (`credentials.json` and the JWT private key), so a
//! sandbox restarted with the same `--state-dir` keeps working with an unchanged sfwa config.
//! Each start also writes `sfwa.toml` there: a daemon config for this sandbox, ready for
//! `sfwa run --config <state-dir>/sfwa.toml` (or `sfwa sync`), owner-only like the other files.

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
    /// The account id seeds the customers' BSUIDs: kept so they stay the same across restarts.
    /// Missing in files written before BSUIDs; added on the next start.
    #[serde(default)]
    whatsapp_waba_id: Option<String>,
    /// The account's second business number (webhooks of a number the daemon may not serve).
    #[serde(default)]
    whatsapp_other_number: Option<(String, String)>,
}

/// Both simulators, sharing one clock.
pub struct Sandbox {
    pub salesforce: SalesforceSim,
    pub whatsapp: WhatsAppSim,
    pub clock: SimClock,
    /// The daemon config written for this sandbox (`<state-dir>/sfwa.toml`).
    pub config_path: PathBuf,
}

/// The file name of the daemon config written into the state directory.
pub const DAEMON_CONFIG_FILE: &str = "sfwa.toml";

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
        if let Some(waba_id) = credentials.whatsapp_waba_id {
            wa_config.waba_id = waba_id;
        }
        let other = credentials
            .whatsapp_other_number
            .filter(|(phone_number_id, _)| !phone_number_id.is_empty());
        if let Some((phone_number_id, display_phone_number)) = other {
            wa_config.other_phone_numbers = vec![whatsapp::BusinessNumber {
                phone_number_id,
                display_phone_number,
            }];
        }
        let salesforce = salesforce::start(sf_config)
            .await
            .context("starting the Salesforce simulator")?;
        let whatsapp = whatsapp::start(wa_config)
            .await
            .context("starting the WhatsApp simulator")?;
        let config_path = state_dir.join(DAEMON_CONFIG_FILE);
        let config = daemon_config(
            &state_dir,
            &salesforce,
            &whatsapp,
            options.webhook_url.as_deref(),
        );
        write_owner_only(&config_path, &config)?;
        Ok(Sandbox {
            salesforce,
            whatsapp,
            clock,
            config_path,
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
                "other_phone_number_ids": wa
                    .other_phone_numbers
                    .iter()
                    .map(|number| number.phone_number_id.as_str())
                    .collect::<Vec<_>>(),
                "app_secret": wa.app_secret,
                "verify_token": wa.verify_token,
            },
            "config_path": self.config_path,
        })
    }

    /// A few readable lines for a person at a terminal.
    pub fn summary(&self) -> String {
        let sf = self.salesforce.config();
        let wa = self.whatsapp.config();
        format!(
            "Salesforce org simulator  {sf_url}\n  login URL / instance URL: {sf_url}  (JWT bearer: iss={client}, sub={user})\n  private key: {key}\n\
             WhatsApp Cloud API simulator  {wa_url}\n  phone_number_id: {phone}  webhooks to: {hook}\n  other numbers on the account (their webhooks come too): {others}\n\
             Control APIs: {sf_url}/__sim/  and  {wa_url}/__sim/  (see docs/simulators.md)\n\
             Daemon config for this sandbox: {config}  (sfwa run --config {config})\nStop with Ctrl-C.",
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
            others = wa
                .other_phone_numbers
                .iter()
                .map(|number| number.phone_number_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            hook = wa.webhook_url.as_deref().unwrap_or("(none: pass --webhook-url)"),
            config = self.config_path.display(),
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
        let mut credentials: Credentials = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not valid; delete it to get fresh credentials",
                path.display()
            )
        })?;
        if credentials.whatsapp_waba_id.is_none() || credentials.whatsapp_other_number.is_none() {
            credentials
                .whatsapp_waba_id
                .get_or_insert_with(|| wa.waba_id.clone());
            credentials
                .whatsapp_other_number
                .get_or_insert_with(|| other_number(wa));
            write_owner_only(&path, &serde_json::to_string_pretty(&credentials)?)?;
        }
        return Ok(credentials);
    }
    let credentials = Credentials {
        salesforce_client_id: sf.client_id.clone(),
        salesforce_client_secret: sf.client_secret.clone(),
        salesforce_username: sf.username.clone(),
        whatsapp_access_token: wa.access_token.clone(),
        whatsapp_phone_number_id: wa.phone_number_id.clone(),
        whatsapp_app_secret: wa.app_secret.clone(),
        whatsapp_verify_token: wa.verify_token.clone(),
        whatsapp_waba_id: Some(wa.waba_id.clone()),
        whatsapp_other_number: Some(other_number(wa)),
    };
    write_owner_only(&path, &serde_json::to_string_pretty(&credentials)?)?;
    Ok(credentials)
}

/// The first of the account's other numbers, as kept in the credentials file.
fn other_number(wa: &WhatsAppSimConfig) -> (String, String) {
    wa.other_phone_numbers
        .first()
        .map(|number| {
            (
                number.phone_number_id.clone(),
                number.display_phone_number.clone(),
            )
        })
        .unwrap_or_default()
}

/// Writes secrets readable by the owner only, like the private key beside them. The file is
/// created under a temporary name with mode 0600 and renamed into place, so a reader (a daemon
/// container waiting for the sandbox) never sees it half-written or world-readable.
fn write_owner_only(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&partial)
        .with_context(|| format!("writing {}", partial.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    drop(file);
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}

/// A URL a client can connect to: a simulator bound to every interface (`0.0.0.0`, `::`) is
/// reached on loopback from this machine; from elsewhere (another container) the config's URLs
/// are overridden with `SFWA_SALESFORCE__LOGIN_URL` / `SFWA_WHATSAPP__API_BASE`.
fn reachable_url(url: &str) -> String {
    let Some(addr) = url
        .strip_prefix("http://")
        .and_then(|a| a.parse::<SocketAddr>().ok())
    else {
        return url.to_string();
    };
    let host = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{host}:{}", addr.port())
}

/// `webhook.listen` and `webhook.path` for the daemon, from the URL the simulator posts webhooks
/// to: the same port and path; the same address when it is an IP, else every interface (a host
/// name such as `sfwa` in compose names the daemon's container, which must accept from outside).
fn webhook_listener(webhook_url: Option<&str>) -> (String, String) {
    let defaults = ("0.0.0.0:8080".to_string(), "/webhook".to_string());
    let Some(url) = webhook_url.and_then(|u| url::Url::parse(u).ok()) else {
        return defaults;
    };
    let port = url.port_or_known_default().unwrap_or(8080);
    let listen = match url.host() {
        Some(url::Host::Ipv4(ip)) => SocketAddr::from((ip, port)).to_string(),
        Some(url::Host::Ipv6(ip)) => SocketAddr::from((ip, port)).to_string(),
        _ => format!("0.0.0.0:{port}"),
    };
    let path = if url.path().is_empty() || url.path() == "/" {
        defaults.1
    } else {
        url.path().to_string()
    };
    (listen, path)
}

/// The daemon's settings for this sandbox, as TOML. Secrets are written inline: the file is
/// owner-only and lives beside `credentials.json`, which holds the same values.
fn daemon_config(
    state_dir: &Path,
    salesforce: &SalesforceSim,
    whatsapp: &WhatsAppSim,
    webhook_url: Option<&str>,
) -> String {
    let sf = salesforce.config();
    let wa = whatsapp.config();
    let (listen, path) = webhook_listener(webhook_url);
    let key_path = sf
        .trusted_key
        .private_key_path
        .clone()
        .unwrap_or_else(|| state_dir.join("salesforce-jwt-private-key.pem"));
    let text = |value: &str| toml::Value::String(value.to_string()).to_string();
    format!(
        "# Written by `sfwa sim` at every start: sfwa's settings for this sandbox.\n\
         # Use it with `sfwa run --config {config}` or `sfwa sync --config {config}`.\n\
         # From another host or container, override the URLs, e.g.\n\
         #   SFWA_SALESFORCE__LOGIN_URL=http://sim:7701  SFWA_WHATSAPP__API_BASE=http://sim:7702\n\
         \n\
         [salesforce]\n\
         login_url = {login_url}\n\
         auth = \"jwt\"\n\
         client_id = {client_id}\n\
         username = {username}\n\
         private_key_path = {key}\n\
         \n\
         [whatsapp]\n\
         api_base = {api_base}\n\
         access_token = {access_token}\n\
         default_phone_number_id = {phone}\n\
         app_secret = {app_secret}\n\
         verify_token = {verify_token}\n\
         default_region = \"US\"\n\
         # For sfwa doctor's webhook subscription checks.\n\
         business_account_id = {waba_id}\n\
         app_id = {app_id}\n\
         \n\
         [intake]\n\
         # The simulated org publishes WhatsApp_Outbound__e like the package's Flow does.\n\
         mode = \"stream\"\n\
         \n\
         [webhook]\n\
         # Where the WhatsApp simulator posts webhooks (its --webhook-url).\n\
         listen = {listen}\n\
         path = {path}\n\
         \n\
         [store]\n\
         path = {store}\n",
        config = state_dir.join(DAEMON_CONFIG_FILE).display(),
        login_url = text(&reachable_url(&salesforce.url())),
        client_id = text(&sf.client_id),
        username = text(&sf.username),
        key = text(&key_path.to_string_lossy()),
        api_base = text(&reachable_url(&whatsapp.url())),
        access_token = text(&wa.access_token),
        phone = text(&wa.phone_number_id),
        app_secret = text(&wa.app_secret),
        verify_token = text(&wa.verify_token),
        waba_id = text(&wa.waba_id),
        app_id = text(&wa.app_id),
        listen = text(&listen),
        path = text(&path),
        store = text(&state_dir.join("sfwa.db").to_string_lossy()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_listens_where_the_simulator_posts_its_webhooks() {
        assert_eq!(
            webhook_listener(Some("http://sfwa:8080/webhook")),
            ("0.0.0.0:8080".into(), "/webhook".into())
        );
        assert_eq!(
            webhook_listener(Some("http://127.0.0.1:9000/hooks/meta")),
            ("127.0.0.1:9000".into(), "/hooks/meta".into())
        );
        assert_eq!(
            webhook_listener(None),
            ("0.0.0.0:8080".into(), "/webhook".into())
        );
    }

    #[test]
    fn a_simulator_on_every_interface_is_reached_on_loopback() {
        assert_eq!(
            reachable_url("http://0.0.0.0:7701"),
            "http://127.0.0.1:7701"
        );
        assert_eq!(reachable_url("http://[::]:7702"), "http://[::1]:7702");
        assert_eq!(
            reachable_url("http://127.0.0.1:7701"),
            "http://127.0.0.1:7701"
        );
    }
}
