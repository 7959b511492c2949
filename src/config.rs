//! Settings: a TOML file (`--config`, default `sfwa.toml`) layered with `SFWA_SECTION__KEY`
//! environment variables (e.g. `SFWA_WHATSAPP__ACCESS_TOKEN`), secrets optionally read from files
//! (`*_file` keys, for Kubernetes Secrets and systemd credentials), then [`Settings::validate`],
//! which names every bad key and says how to fix it. Secrets are [`Secret`]s: never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A value that must never reach logs: Debug and Display print `***`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

/// Serialised only to learn the shape of the settings; the value itself is never written out.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    Jwt,
    ClientCredentials,
    RefreshToken,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceSettings {
    /// `https://login.salesforce.com`, `https://test.salesforce.com` or the My Domain URL.
    pub login_url: String,
    pub auth: AuthMode,
    pub client_id: String,
    /// The integration user (JWT flow).
    pub username: String,
    /// PEM private key whose certificate is uploaded to the External Client App (JWT flow).
    pub private_key_path: Option<PathBuf>,
    /// JWT `aud`; blank = `https://test.salesforce.com` for sandboxes, else `https://login.salesforce.com`.
    pub audience: Option<String>,
    pub client_secret: Secret,
    pub client_secret_file: Option<PathBuf>,
    pub refresh_token: Secret,
    pub refresh_token_file: Option<PathBuf>,
    pub api_version: String,
    pub message_object: String,
    /// The queue (its DeveloperName) that owns inbound records linked to no Case, Contact or Lead,
    /// so reps see replies under the Private sharing model. Blank: the integration user owns them.
    pub inbound_queue: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        SalesforceSettings {
            login_url: "https://login.salesforce.com".into(),
            auth: AuthMode::Jwt,
            client_id: String::new(),
            username: String::new(),
            private_key_path: None,
            audience: None,
            client_secret: Secret::default(),
            client_secret_file: None,
            refresh_token: Secret::default(),
            refresh_token_file: None,
            api_version: crate::salesforce::API_VERSION.into(),
            message_object: "WhatsApp_Message__c".into(),
            inbound_queue: "WhatsApp_Inbound".into(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl SalesforceSettings {
    /// The JWT audience: explicit, else derived from the login URL.
    pub fn jwt_audience(&self) -> String {
        match &self.audience {
            Some(aud) if !aud.trim().is_empty() => aud.trim().to_string(),
            _ if self.login_url.contains("test.salesforce.com") => {
                "https://test.salesforce.com".into()
            }
            _ => "https://login.salesforce.com".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsAppSettings {
    pub api_base: String,
    pub api_version: String,
    pub access_token: Secret,
    pub access_token_file: Option<PathBuf>,
    /// The phone_number_id used when a record's Business_Number_Id__c is blank.
    pub default_phone_number_id: String,
    /// Every business number this instance serves (the default is added automatically).
    pub phone_number_ids: Vec<String>,
    /// Key for `X-Hub-Signature-256` on webhooks.
    pub app_secret: Secret,
    pub app_secret_file: Option<PathBuf>,
    /// Answered to Meta's `hub.verify_token` when the webhook is registered.
    pub verify_token: Secret,
    pub verify_token_file: Option<PathBuf>,
    /// Messages per second per business number (Meta: 80 by default, up to 1000).
    pub throughput_per_second: u32,
    /// ISO region for numbers written without a country code (e.g. `US`); blank = require `+`.
    pub default_region: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The WhatsApp Business Account id (WhatsApp Manager → Account tools, or API setup). Optional:
    /// only `sfwa doctor` uses it, to check that the app is subscribed to the account's webhooks.
    pub business_account_id: String,
    /// The Meta app's id (App Dashboard → App settings → Basic). Optional: with `app_secret` it
    /// makes the app token (`{app_id}|{app_secret}`) `sfwa doctor` reads the webhook fields with.
    pub app_id: String,
}

impl Default for WhatsAppSettings {
    fn default() -> Self {
        WhatsAppSettings {
            api_base: "https://graph.facebook.com".into(),
            api_version: crate::whatsapp::versions::DEFAULT_VERSION.into(),
            access_token: Secret::default(),
            access_token_file: None,
            default_phone_number_id: String::new(),
            phone_number_ids: Vec::new(),
            app_secret: Secret::default(),
            app_secret_file: None,
            verify_token: Secret::default(),
            verify_token_file: None,
            throughput_per_second: 80,
            default_region: String::new(),
            timeout: Duration::from_secs(20),
            business_account_id: String::new(),
            app_id: String::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IntakeMode {
    /// Platform events over CometD: no REST call per message, near-instant pick-up.
    Stream,
    /// SOQL polling every `intake.interval`: one REST call per poll, even when nothing is queued.
    Poll,
}

/// Where stream intake starts when the store holds no replay id yet (the first start).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InitialReplay {
    /// Every event Salesforce still retains (72 h for high-volume events): nothing queued while
    /// sfwa was not yet running is missed.
    All,
    /// Only events published from now on (the reconcile poll still finds older Queued records).
    New,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSettings {
    pub mode: IntakeMode,
    /// Poll mode: how often to poll for Queued records. Stream mode: how often due retries and
    /// unknown outcomes are looked at (local only, no API call).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Records fetched per poll (the rest come next poll).
    pub batch_size: usize,
    /// Stream mode: the platform-event channel the package's Flow publishes to.
    pub channel: String,
    /// Stream mode: where the first start begins (later starts resume from the stored replay id).
    pub initial_replay: InitialReplay,
    /// Stream mode: in a burst, how long events gather before the next fetch (fewer API calls,
    /// at most this much added latency; a quiet stream's first event goes at once). 0 = never wait.
    #[serde(with = "humantime_serde")]
    pub batch_window: Duration,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            mode: IntakeMode::Stream,
            interval: Duration::from_secs(10),
            batch_size: 200,
            channel: "/event/WhatsApp_Outbound__e".into(),
            initial_replay: InitialReplay::All,
            batch_window: Duration::from_secs(2),
        }
    }
}

/// When the scheduled jobs run: cron expressions with seconds (`sec min hour day month weekday`),
/// in UTC. An empty string turns a job off.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Stream mode: a poll that catches any Queued record the stream missed.
    pub reconcile: String,
    /// Stream mode: a safety net for messages whose Scheduled_At__c has come. The stream already
    /// sets a local timer for each (no API call); this catches a time moved earlier afterwards.
    pub scheduled_sends: String,
    /// Folds inbound records created in Salesforce by other tools into the window mirror.
    pub inbound_mirror: String,
    /// Deletes finished journal rows and old webhook dedupe keys.
    pub retention: String,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            reconcile: "0 */5 * * * *".into(),
            scheduled_sends: "0 */15 * * * *".into(),
            inbound_mirror: "30 */10 * * * *".into(),
            retention: "0 30 3 * * *".into(),
        }
    }
}

/// How long finished work is kept in the store.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Journal rows of finished messages (Sent, Delivered, Read, Failed) untouched this long.
    #[serde(with = "humantime_serde")]
    pub journal: Duration,
    /// Webhook dedupe keys. Meta redelivers for up to 7 days, so keep them longer than that.
    #[serde(with = "humantime_serde")]
    pub webhook_dedupe: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            journal: Duration::from_secs(30 * 86_400),
            webhook_dedupe: Duration::from_secs(14 * 86_400),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowSettings {
    /// Free-form messages are refused this long before the 24 h window closes.
    #[serde(with = "humantime_serde")]
    pub margin: Duration,
}

impl Default for WindowSettings {
    fn default() -> Self {
        WindowSettings {
            margin: Duration::from_secs(120),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchSettings {
    /// Tries per message for retryable errors before it is Failed.
    pub max_attempts: u32,
    /// First back-off; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// A send whose outcome is unknown is re-sent only after this long without a status echo.
    #[serde(with = "humantime_serde")]
    pub unknown_outcome_grace: Duration,
    /// How long a message may keep meeting Meta's rate limits (130429, 131056, 131048, 4, 80007)
    /// before it is Failed. Those refusals do not count towards `max_attempts`: they say "slower",
    /// not "this message is wrong".
    #[serde(with = "humantime_serde")]
    pub max_rate_limited_wait: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            unknown_outcome_grace: Duration::from_secs(600),
            max_rate_limited_wait: Duration::from_secs(24 * 60 * 60),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where Meta's webhooks (and /healthz) are served.
    pub listen: SocketAddr,
    /// The callback path registered with Meta.
    pub path: String,
    /// Meta sends up to 3 MB per POST.
    pub max_body_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            path: "/webhook".into(),
            max_body_bytes: 3 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub path: PathBuf,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            path: PathBuf::from("sfwa.db"),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WritebackSettings {
    /// The outbox is flushed this often (and at once when `batch_size` records are pending).
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Records per collections call; Salesforce allows at most 200.
    pub batch_size: usize,
}

impl Default for WritebackSettings {
    fn default() -> Self {
        WritebackSettings {
            flush_interval: Duration::from_secs(10),
            batch_size: 200,
        }
    }
}

/// Every setting of `sfwa run`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub salesforce: SalesforceSettings,
    pub whatsapp: WhatsAppSettings,
    pub intake: IntakeSettings,
    pub window: WindowSettings,
    pub dispatch: DispatchSettings,
    pub webhook: WebhookSettings,
    pub store: StoreSettings,
    pub writeback: WritebackSettings,
    pub schedule: ScheduleSettings,
    pub retention: RetentionSettings,
}

/// One bad setting: which key, what is wrong, what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} — {}", self.key, self.problem, self.fix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {name} does not name a setting ({message}); use SFWA_<SECTION>__<KEY>, e.g. SFWA_WHATSAPP__ACCESS_TOKEN")]
    Env { name: String, message: String },
    #[error("the settings are incomplete or wrong:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

const ENV_PREFIX: &str = "SFWA_";

/// `SFWA_*` variables that set command-line options (see `src/main.rs`), not settings: the layering
/// below leaves them to clap instead of refusing them as unknown keys.
pub const CLI_ENV_VARS: &[&str] = &["SFWA_LOG_FORMAT"];

impl Settings {
    /// Reads `path` (a missing file is fine when the environment provides everything), layers the
    /// `SFWA_*` environment over it, reads `*_file` secrets and validates.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let (settings, problems) = Settings::load_with_problems(path)?;
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// [`Settings::load`] without refusing invalid settings: the settings as read, with every
    /// problem [`Settings::validate`] finds (a missing file is named first when there are any).
    /// `sfwa doctor` uses it to go on checking what the problems do not touch.
    pub fn load_with_problems(path: &Path) -> Result<(Settings, Vec<Problem>), ConfigError> {
        let mut missing_file = false;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing_file = true;
                String::new()
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let mut settings = Settings::from_layers(&text, &env).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        settings.read_secret_files()?;
        let mut problems = settings.validate().err().unwrap_or_default();
        if missing_file && !problems.is_empty() {
            problems.insert(
                0,
                Problem {
                    key: "--config".into(),
                    problem: format!("{} does not exist", path.display()),
                    fix: "copy sfwa.example.toml there and fill it in, or set SFWA_<SECTION>__<KEY> variables".into(),
                },
            );
        }
        Ok((settings, problems))
    }

    /// TOML text with environment overrides (no files read, no validation): the testable core.
    pub fn from_layers(
        toml_text: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(toml_text).map_err(|e| ConfigError::Syntax {
                path: PathBuf::new(),
                message: e.to_string(),
            })?;
        // Environment values are text; the defaults say which keys want numbers, booleans or lists.
        let defaults = toml::Table::try_from(Settings::default()).unwrap_or_default();
        for (name, value) in env {
            if CLI_ENV_VARS.contains(&name.as_str()) {
                continue;
            }
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                return Err(ConfigError::Env {
                    name: name.clone(),
                    message: "missing the double underscore between section and key".into(),
                });
            };
            let section_name = section.to_ascii_lowercase();
            let section = table
                .entry(section_name.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(section) = section.as_table_mut() else {
                return Err(ConfigError::Env {
                    name: name.clone(),
                    message: "that section is not a table".into(),
                });
            };
            let key = key.to_ascii_lowercase();
            let typed = defaults
                .get(&section_name)
                .and_then(|s| s.get(&key))
                .is_some_and(|v| !v.is_str());
            section.insert(
                key,
                if typed {
                    env_value(value)
                } else {
                    toml::Value::String(value.clone())
                },
            );
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: PathBuf::new(),
                message: e.to_string(),
            })
    }

    /// `*_file` keys replace their secret with the file's contents (trailing newline trimmed).
    pub fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let read = |path: &Option<PathBuf>, target: &mut Secret| -> Result<(), ConfigError> {
            if let Some(path) = path {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                *target = Secret::new(text.trim_end_matches(['\n', '\r']));
            }
            Ok(())
        };
        read(
            &self.salesforce.client_secret_file,
            &mut self.salesforce.client_secret,
        )?;
        read(
            &self.salesforce.refresh_token_file,
            &mut self.salesforce.refresh_token,
        )?;
        read(
            &self.whatsapp.access_token_file,
            &mut self.whatsapp.access_token,
        )?;
        read(
            &self.whatsapp.app_secret_file,
            &mut self.whatsapp.app_secret,
        )?;
        read(
            &self.whatsapp.verify_token_file,
            &mut self.whatsapp.verify_token,
        )?;
        Ok(())
    }

    /// Every problem at once, each naming its key and the fix.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut need = |ok: bool, key: &str, problem: &str, fix: &str| {
            if !ok {
                problems.push(Problem {
                    key: key.into(),
                    problem: problem.into(),
                    fix: fix.into(),
                });
            }
        };
        let sf = &self.salesforce;
        need(
            is_http_url(&sf.login_url),
            "salesforce.login_url",
            "is not an http(s) URL",
            "use https://login.salesforce.com, https://test.salesforce.com or your My Domain URL",
        );
        need(!sf.client_id.trim().is_empty(), "salesforce.client_id", "is empty",
            "copy the consumer key of the External Client App (Setup → External Client App Manager → sfwa (WhatsApp) → Settings → OAuth Settings → Consumer Key and Secret)");
        need(
            sf.inbound_queue
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "salesforce.inbound_queue",
            "is not a queue's API name (letters, digits and underscores)",
            "write the queue's DeveloperName (Setup → Queues → the queue's API name), e.g. \"WhatsApp_Inbound\", or \"\" to leave inbound records with the integration user",
        );
        need(
            is_version(&sf.api_version, false),
            "salesforce.api_version",
            "is not a version like 67.0",
            "write e.g. \"67.0\"",
        );
        match sf.auth {
            AuthMode::Jwt => {
                need(
                    !sf.username.trim().is_empty(),
                    "salesforce.username",
                    "is empty (needed for auth = \"jwt\")",
                    "set the integration user's username",
                );
                match &sf.private_key_path {
                    None => need(false, "salesforce.private_key_path", "is not set (needed for auth = \"jwt\")",
                        "point it at the PEM private key whose certificate is uploaded to the External Client App"),
                    Some(path) => {
                        let pem = std::fs::read_to_string(path).unwrap_or_default();
                        need(pem.contains("PRIVATE KEY-----"), "salesforce.private_key_path",
                            &format!("{} is missing or not a PEM private key", path.display()),
                            "check the path and that the file starts with -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY)");
                    }
                }
            }
            AuthMode::ClientCredentials => {
                need(
                    !sf.client_secret.is_empty(),
                    "salesforce.client_secret",
                    "is empty (needed for auth = \"client_credentials\")",
                    "set it, or client_secret_file, to the External Client App's consumer secret",
                );
                need(
                    !sf.login_url.contains("login.salesforce.com")
                        && !sf.login_url.contains("test.salesforce.com"),
                    "salesforce.login_url",
                    "is a shared login host, which refuses the client credentials flow",
                    "use your My Domain URL, e.g. https://acme.my.salesforce.com",
                );
            }
            AuthMode::RefreshToken => {
                need(!sf.refresh_token.is_empty(), "salesforce.refresh_token", "is empty (needed for auth = \"refresh_token\")",
                    "set it, or refresh_token_file, to a refresh token issued to the integration user");
            }
        }
        let wa = &self.whatsapp;
        need(
            is_http_url(&wa.api_base),
            "whatsapp.api_base",
            "is not an http(s) URL",
            "use https://graph.facebook.com",
        );
        need(
            is_version(&wa.api_version, true),
            "whatsapp.api_version",
            "is not a Graph version like v25.0",
            "write e.g. \"v25.0\"",
        );
        need(
            wa.business_account_id.is_empty() || is_digits(&wa.business_account_id),
            "whatsapp.business_account_id",
            "is not a WhatsApp Business Account id (digits)",
            "copy the WhatsApp Business Account ID from WhatsApp Manager → API setup, or leave it empty",
        );
        need(
            wa.app_id.is_empty() || is_digits(&wa.app_id),
            "whatsapp.app_id",
            "is not a Meta app id (digits)",
            "copy the App ID from the App Dashboard → App settings → Basic, or leave it empty",
        );
        need(!wa.access_token.is_empty(), "whatsapp.access_token", "is empty",
            "set it, or access_token_file, to a system-user access token with whatsapp_business_messaging");
        need(
            is_digits(&wa.default_phone_number_id),
            "whatsapp.default_phone_number_id",
            "is not a phone_number_id (digits)",
            "copy the phone number ID from WhatsApp Manager → API setup",
        );
        for (i, id) in wa.phone_number_ids.iter().enumerate() {
            need(
                is_digits(id),
                &format!("whatsapp.phone_number_ids[{i}]"),
                "is not a phone_number_id (digits)",
                "remove it or fix the digits",
            );
        }
        need(
            !wa.app_secret.is_empty(),
            "whatsapp.app_secret",
            "is empty (webhook signatures cannot be checked)",
            "set it, or app_secret_file, to the Meta app's secret (App settings → Basic)",
        );
        need(!wa.verify_token.is_empty(), "whatsapp.verify_token", "is empty",
            "choose any random string and enter the same one when registering the webhook with Meta");
        need(
            (1..=1000).contains(&wa.throughput_per_second),
            "whatsapp.throughput_per_second",
            "must be between 1 and 1000",
            "use 80 (Meta's default) unless Meta raised your number's limit",
        );
        need(
            wa.default_region.is_empty()
                || crate::domain::phone::region(&wa.default_region).is_ok(),
            "whatsapp.default_region",
            "is not an ISO 3166 region code",
            "use two letters such as US, GB or DE, or leave it empty",
        );
        need(
            !self.intake.interval.is_zero(),
            "intake.interval",
            "must be more than zero",
            "use e.g. \"10s\"",
        );
        need(
            (1..=2000).contains(&self.intake.batch_size),
            "intake.batch_size",
            "must be between 1 and 2000",
            "use 200",
        );
        need(
            (1..=200).contains(&self.writeback.batch_size),
            "writeback.batch_size",
            "must be between 1 and 200 (Salesforce collections take at most 200 records)",
            "use 200",
        );
        need(
            !self.writeback.flush_interval.is_zero(),
            "writeback.flush_interval",
            "must be more than zero",
            "use e.g. \"2s\"",
        );
        need(
            self.dispatch.max_attempts >= 1,
            "dispatch.max_attempts",
            "must be at least 1",
            "use 5",
        );
        need(
            self.window.margin < Duration::from_secs(6 * 3600),
            "window.margin",
            "is longer than 6 hours, which would refuse most messages inside the window",
            "use \"2m\"",
        );
        need(
            self.intake.batch_window <= Duration::from_secs(30),
            "intake.batch_window",
            "is longer than 30 s (Salesforce forgets a streaming client that does not reconnect within 40 s of receiving events)",
            "use \"500ms\"",
        );
        need(
            self.intake.channel.starts_with("/event/"),
            "intake.channel",
            "is not a platform-event channel",
            "use \"/event/WhatsApp_Outbound__e\"",
        );
        for (key, expression) in self.schedule.jobs() {
            if let Err(error) = parse_schedule(expression) {
                need(
                    false,
                    &format!("schedule.{key}"),
                    &format!("is not a cron expression ({error})"),
                    "use six fields, seconds first, e.g. \"0 */5 * * * *\" (every 5 minutes), or \"\" to turn the job off",
                );
            }
        }
        need(
            self.retention.webhook_dedupe >= Duration::from_secs(7 * 86_400),
            "retention.webhook_dedupe",
            "is shorter than the 7 days Meta keeps redelivering webhooks",
            "use \"14d\"",
        );
        need(
            self.retention.journal >= self.dispatch.unknown_outcome_grace,
            "retention.journal",
            "is shorter than dispatch.unknown_outcome_grace",
            "use \"30d\"",
        );
        need(
            self.webhook.path.starts_with('/'),
            "webhook.path",
            "must start with /",
            "use \"/webhook\"",
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Every business number served: the default first, then the others, without duplicates.
    pub fn business_numbers(&self) -> Vec<String> {
        let mut numbers = vec![self.whatsapp.default_phone_number_id.clone()];
        for id in &self.whatsapp.phone_number_ids {
            if !numbers.contains(id) {
                numbers.push(id.clone());
            }
        }
        numbers
    }
}

impl ScheduleSettings {
    /// `(key, expression)` of every job, in a fixed order.
    pub fn jobs(&self) -> [(&'static str, &str); 4] {
        [
            ("reconcile", &self.reconcile),
            ("scheduled_sends", &self.scheduled_sends),
            ("inbound_mirror", &self.inbound_mirror),
            ("retention", &self.retention),
        ]
    }
}

/// A job's schedule; `None` when the expression is empty (the job is off).
pub fn parse_schedule(expression: &str) -> Result<Option<cron::Schedule>, cron::error::Error> {
    let expression = expression.trim();
    if expression.is_empty() {
        return Ok(None);
    }
    expression.parse().map(Some)
}

/// An environment value for a non-text key, as TOML when it parses as one (numbers, booleans, arrays).
fn env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn is_version(text: &str, with_v: bool) -> bool {
    let number = if with_v {
        text.strip_prefix('v')
    } else {
        Some(text)
    };
    number.is_some_and(|n| {
        let mut parts = n.split('.');
        matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
            if !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
    })
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const MINIMAL: &str = r#"
        [salesforce]
        auth = "client_credentials"
        login_url = "https://acme.my.salesforce.com"
        client_id = "3MVG9abc"
        client_secret = "s3cret"
        [whatsapp]
        access_token = "EAAtoken"
        default_phone_number_id = "106540352242922"
        app_secret = "appsecret"
        verify_token = "vErIfY-t0k3n"
    "#;

    #[test]
    fn a_minimal_file_with_defaults_validates() {
        let settings = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
        settings.validate().unwrap();
        assert_eq!(settings.intake.interval, Duration::from_secs(10));
        assert_eq!(settings.window.margin, Duration::from_secs(120));
        assert_eq!(settings.writeback.batch_size, 200);
    }

    #[test]
    fn the_log_format_variable_is_left_to_the_command_line_not_refused_as_a_setting() {
        let settings =
            Settings::from_layers(MINIMAL, &env(&[("SFWA_LOG_FORMAT", "json")])).unwrap();
        settings.validate().unwrap();
    }

    #[test]
    fn environment_variables_override_the_file_with_typed_values() {
        let settings = Settings::from_layers(
            MINIMAL,
            &env(&[
                ("SFWA_WHATSAPP__ACCESS_TOKEN", "from-env"),
                ("SFWA_WHATSAPP__THROUGHPUT_PER_SECOND", "250"),
                ("SFWA_INTAKE__INTERVAL", "30s"),
                ("SFWA_WHATSAPP__DEFAULT_PHONE_NUMBER_ID", "123456"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.whatsapp.access_token.expose(), "from-env");
        assert_eq!(settings.whatsapp.throughput_per_second, 250);
        assert_eq!(settings.intake.interval, Duration::from_secs(30));
        assert_eq!(settings.whatsapp.default_phone_number_id, "123456");
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let error =
            Settings::from_layers("[whatsapp]\naccess_tokn = \"x\"", &BTreeMap::new()).unwrap_err();
        assert!(error.to_string().contains("access_tokn"), "{error}");
    }

    #[test]
    fn validation_names_every_bad_key_with_a_fix() {
        let settings = Settings::from_layers(
            "[writeback]\nbatch_size = 500\n[salesforce]\nauth = \"jwt\"",
            &BTreeMap::new(),
        )
        .unwrap();
        let problems = settings.validate().unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "salesforce.client_id",
            "salesforce.username",
            "salesforce.private_key_path",
            "whatsapp.access_token",
            "whatsapp.default_phone_number_id",
            "whatsapp.app_secret",
            "writeback.batch_size",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        assert!(problems.iter().all(|p| !p.fix.is_empty()));
    }

    #[test]
    fn client_credentials_against_the_shared_login_host_is_flagged() {
        let text = MINIMAL.replace(
            "https://acme.my.salesforce.com",
            "https://login.salesforce.com",
        );
        let problems = Settings::from_layers(&text, &BTreeMap::new())
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(problems[0].key, "salesforce.login_url");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let settings = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
        let printed = format!("{settings:?}");
        for secret in ["s3cret", "EAAtoken", "appsecret", "vErIfY-t0k3n"] {
            assert!(!printed.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn secret_files_replace_inline_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "EAAfromfile\n").unwrap();
        let mut settings = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
        settings.whatsapp.access_token_file = Some(file);
        settings.read_secret_files().unwrap();
        assert_eq!(settings.whatsapp.access_token.expose(), "EAAfromfile");
    }

    #[test]
    fn the_jwt_audience_follows_the_login_url() {
        let mut sf = SalesforceSettings::default();
        assert_eq!(sf.jwt_audience(), "https://login.salesforce.com");
        sf.login_url = "https://test.salesforce.com".into();
        assert_eq!(sf.jwt_audience(), "https://test.salesforce.com");
    }

    #[test]
    fn the_annotated_example_file_parses_with_every_key_known() {
        let text = include_str!("../sfwa.example.toml");
        let settings = Settings::from_layers(text, &BTreeMap::new()).unwrap();
        assert_eq!(settings.intake.interval, Duration::from_secs(10));
        assert_eq!(
            settings.dispatch.unknown_outcome_grace,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn a_missing_config_file_is_named_first_among_the_problems() {
        let missing = std::env::temp_dir().join("sfwa-no-such-config.toml");
        match Settings::load(&missing) {
            Err(ConfigError::Invalid(problems)) => assert_eq!(problems[0].key, "--config"),
            other => panic!("expected the missing file to be reported, got {other:?}"),
        }
    }
}
