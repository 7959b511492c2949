//! The settings' types and defaults: one struct per section of `sfwa.toml`, each key documented
//! where it is declared (`sfwa.example.toml` is the annotated copy people start from).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

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
    /// How long after a message sfwa sent a customer's message (one not replying to a specific
    /// message) still belongs to that message's Case: later, it starts a new conversation and is
    /// linked to no Case. Default 7 days, the time a re-engagement waits for a reply.
    #[serde(with = "humantime_serde")]
    pub case_link_window: Duration,
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
            case_link_window: Duration::from_secs(7 * 24 * 60 * 60),
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
    /// Webhooks for any other number (the same Meta app serves other numbers, or another
    /// instance serves them) are acknowledged, counted and logged once, and change nothing.
    pub phone_number_ids: Vec<String>,
    /// Key for `X-Hub-Signature-256` on webhooks.
    pub app_secret: Secret,
    pub app_secret_file: Option<PathBuf>,
    /// Answered to Meta's `hub.verify_token` when the webhook is registered.
    pub verify_token: Secret,
    pub verify_token_file: Option<PathBuf>,
    /// Messages per second per business number (Meta: 80 by default, up to 1000).
    pub throughput_per_second: u32,
    /// Numbers whose ceiling differs from `throughput_per_second` (`{ "<phone_number_id>" = 20 }`:
    /// a coexistence number held to 20/s, one Meta raised to 200/s). Still only a ceiling: Meta's
    /// level and refusals lower it (`pipeline::pacing`).
    pub throughput_per_number: std::collections::BTreeMap<String, u32>,
    /// ISO region for numbers written without a country code (e.g. `US`); blank = require `+`.
    pub default_region: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// HTTP/2 for sends: `auto` (when Meta offers it over TLS), `always` (also in clear text, as
    /// to the simulator), `off` (HTTP/1.1). See `whatsapp::connections`.
    pub http2: crate::whatsapp::Http2,
    /// The WhatsApp Business Account id (WhatsApp Manager → Account tools, or API setup); also
    /// read as `waba_id`. The account whose template catalog sfwa mirrors and checks template
    /// sends against (`pipeline::catalog`); `sfwa doctor` checks the app's webhook subscription
    /// on it. Blank: no catalog (every template send goes, and WhatsApp judges it).
    #[serde(alias = "waba_id")]
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
            throughput_per_number: Default::default(),
            default_region: String::new(),
            timeout: Duration::from_secs(20),
            http2: crate::whatsapp::Http2::Auto,
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
    /// Links inbound records that matched no Contact or Lead when written (SOSL's index lags
    /// behind new records; reps create the Lead after the first message): `pipeline::relink`.
    pub relink: String,
    /// Deletes finished journal rows and old webhook dedupe keys.
    pub retention: String,
    /// Lists the account's templates into the catalog (also done at start; webhooks keep it
    /// current in between) and queues their Salesforce records.
    pub template_catalog: String,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            reconcile: "0 */5 * * * *".into(),
            scheduled_sends: "0 */15 * * * *".into(),
            inbound_mirror: "30 */10 * * * *".into(),
            relink: "45 */15 * * * *".into(),
            retention: "0 30 3 * * *".into(),
            template_catalog: "20 */30 * * * *".into(),
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
    /// Where Meta's webhooks are served (`path` alone; the probes are on [`ObserveSettings`]).
    pub listen: SocketAddr,
    /// The callback path registered with Meta.
    pub path: String,
    /// Meta sends up to 3 MB per POST.
    pub max_body_bytes: usize,
    /// Where one callback URL serves several shards: a signed POST with parts for these numbers
    /// is forwarded, as received, to the shard that serves them before this one answers Meta
    /// (see `webhook::server`). Empty (the default) when each shard has its own callback URL
    /// (Meta's per-number override, the preferred way).
    pub forward: Vec<ForwardRule>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            path: "/webhook".into(),
            max_body_bytes: 3 * 1024 * 1024,
            forward: Vec::new(),
        }
    }
}

/// `[[webhook.forward]]`: the business numbers another shard serves, and that shard's webhook URL.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRule {
    /// Meta's `phone_number_id`s the other shard serves.
    pub numbers: Vec<String>,
    /// Its webhook URL, e.g. `http://sfwa-b.sfwa.svc:8080/webhook`.
    pub url: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub path: PathBuf,
    /// While the store is busy, how long its writer waits for more writes before each COMMIT
    /// (one fsync shared by all of them): `0s` (the default) commits at once. A few ms cut the
    /// daemon's CPU per message under a sustained send backlog; every write, and so every
    /// webhook's answer, waits up to that much longer ([`crate::store::db::linger_before_commit`]).
    #[serde(with = "humantime_serde")]
    pub commit_linger: Duration,
    /// The same wait, only while a send backlog drains (a number's sends wait for their pace:
    /// its rate, not sfwa, bounds them, so writes waiting a little longer cost no throughput).
    /// Default `20ms`; `0s` turns it off. The larger of this and `commit_linger` applies.
    #[serde(with = "humantime_serde")]
    pub backlog_commit_linger: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            path: PathBuf::from("sfwa.db"),
            commit_linger: Duration::ZERO,
            backlog_commit_linger: Duration::from_millis(20),
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

/// Customers' files (images, documents, audio, video) copied into Salesforce Files on their
/// message record (`pipeline::media`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// Whether inbound files are downloaded from Meta and saved to Salesforce Files at all.
    pub enabled: bool,
    /// The largest file copied, in bytes. Default 25 MB: a file goes to Salesforce as base64 in
    /// one JSON request, which carries at most 37.5 MB of base64 (about 28 MB of file).
    pub max_bytes: u64,
}

/// The most `media.max_bytes` may be: 37.5 MB of base64 is 28.125 MB of file.
pub const MEDIA_MAX_BYTES_LIMIT: u64 = 37_500_000 / 4 * 3;

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            enabled: true,
            max_bytes: 25 * 1024 * 1024,
        }
    }
}

/// Re-engagement that waits for the reply (`pipeline::reengage`): a free-form message that meets
/// a closed window, when its record names a re-engagement template (or its number has a default
/// here), sends that template once per customer per `period` and waits for the reply.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReengageSettings {
    /// At most one re-engagement template per customer and number this often.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// How long a message waits for the reply before it ends Failed OUTSIDE_SESSION_WINDOW.
    #[serde(with = "humantime_serde")]
    pub expiry: Duration,
    /// Per business number (phone_number_id): the template used when the record names none.
    pub defaults: std::collections::BTreeMap<String, ReengageDefault>,
}

impl Default for ReengageSettings {
    fn default() -> Self {
        ReengageSettings {
            period: Duration::from_secs(24 * 60 * 60),
            expiry: Duration::from_secs(7 * 24 * 60 * 60),
            defaults: std::collections::BTreeMap::new(),
        }
    }
}

/// A number's default re-engagement template, with fixed parameter values.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReengageDefault {
    pub template: String,
    #[serde(default = "default_reengage_language")]
    pub language: String,
    /// The body parameters `{{1}}`, `{{2}}`… in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

fn default_reengage_language() -> String {
    "en_US".to_string()
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
    pub media: MediaSettings,
    pub templates: TemplateSettings,
    pub shard: ShardSettings,
    pub observe: ObserveSettings,
    pub reengage: ReengageSettings,
    pub consent: ConsentSettings,
}

/// The template catalog's checks (`pipeline::catalog`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateSettings {
    /// A message whose template Meta paused waits (Queued, the reason on the record) for it to be
    /// approved again, instead of failing `TEMPLATE_PAUSED`.
    pub wait_when_paused: bool,
    /// Numbers for which this differs (`{ "<phone_number_id>" = false }`).
    pub wait_when_paused_per_number: std::collections::BTreeMap<String, bool>,
    /// How long such a message waits at most (Meta pauses for 3 h, then 6 h, then disables).
    #[serde(with = "humantime_serde")]
    pub max_paused_wait: Duration,
}

impl Default for TemplateSettings {
    fn default() -> Self {
        TemplateSettings {
            wait_when_paused: true,
            wait_when_paused_per_number: Default::default(),
            max_paused_wait: Duration::from_secs(10 * 3600),
        }
    }
}

impl TemplateSettings {
    /// Whether messages from `number` wait for a paused template.
    pub fn waits_when_paused(&self, number: &str) -> bool {
        self.wait_when_paused_per_number
            .get(number)
            .copied()
            .unwrap_or(self.wait_when_paused)
    }
}

/// Sharding by business number: which records this instance takes, and the lease it holds in
/// Salesforce on each of its numbers so that two instances never serve one number.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardSettings {
    /// This instance's name, shown as the holder of its number leases in Salesforce (blank = the
    /// host name).
    pub name: String,
    /// Whether this instance takes records whose Business_Number_Id__c is blank (sending them from
    /// `whatsapp.default_phone_number_id`). Exactly one instance of an org may.
    pub takes_blank_numbers: bool,
    /// How long a number lease lasts without being renewed (renewed every quarter of it).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for ShardSettings {
    fn default() -> Self {
        ShardSettings {
            name: String::new(),
            takes_blank_numbers: true,
            lease_ttl: Duration::from_secs(10 * 60),
        }
    }
}

/// Where `/metrics`, `/healthz` and `/readyz` are served: apart from Meta's public webhook port.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveSettings {
    pub listen: SocketAddr,
}

impl Default for ObserveSettings {
    fn default() -> Self {
        ObserveSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

impl Settings {
    /// Every business number served: the default first, then the others, without duplicates.
    /// Webhooks are applied for these numbers only (`webhook::parse_served`).
    pub fn business_numbers(&self) -> Vec<String> {
        let mut numbers = vec![self.whatsapp.default_phone_number_id.clone()];
        for id in &self.whatsapp.phone_number_ids {
            if !numbers.contains(id) {
                numbers.push(id.clone());
            }
        }
        numbers
    }

    /// Whether `number` is one of [`Settings::business_numbers`] (asked once per send; builds
    /// no list).
    pub fn serves(&self, number: &str) -> bool {
        let whatsapp = &self.whatsapp;
        whatsapp.default_phone_number_id == number
            || whatsapp.phone_number_ids.iter().any(|id| id == number)
    }
}

impl ScheduleSettings {
    /// `(key, expression)` of every job, in a fixed order.
    pub fn jobs(&self) -> [(&'static str, &str); 6] {
        [
            ("reconcile", &self.reconcile),
            ("scheduled_sends", &self.scheduled_sends),
            ("inbound_mirror", &self.inbound_mirror),
            ("relink", &self.relink),
            ("retention", &self.retention),
            ("template_catalog", &self.template_catalog),
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

/// Marketing consent (`pipeline::consent`): the words that stop and resume marketing messages, and
/// the rules for marketing templates Meta would not deliver.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsentSettings {
    /// Per language (any label: `en`, `es`, …), the messages that stop or resume marketing. A
    /// customer's text matches when it is one of the words, ignoring case, spaces and punctuation
    /// around it ("Stop." matches STOP; "stop sending me offers" does not).
    pub keywords: std::collections::BTreeMap<String, KeywordSet>,
    /// Refuse marketing templates to +1 (US) numbers before sending (`MARKETING_TO_US_NUMBER`):
    /// Meta has not delivered them since 2025-04-01. Turn off when Meta delivers them again.
    pub refuse_marketing_to_us: bool,
    /// How long a marketing template Meta held back for the customer's marketing limit (131049)
    /// waits before it is tried again (Meta: no sooner than 24 h).
    #[serde(with = "humantime_serde")]
    pub marketing_cap_wait: Duration,
    /// How many times such a message is tried again before it ends Failed (`WA_131049`).
    pub marketing_cap_retries: u32,
}

/// One language's stop and start words.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KeywordSet {
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

impl Default for ConsentSettings {
    fn default() -> Self {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect();
        let mut keywords = std::collections::BTreeMap::new();
        keywords.insert(
            "en".to_string(),
            KeywordSet {
                stop: words(&["STOP", "STOP ALL", "UNSUBSCRIBE", "OPT OUT", "OPTOUT"]),
                start: words(&["START", "UNSTOP", "SUBSCRIBE", "OPT IN"]),
            },
        );
        keywords.insert(
            "es".to_string(),
            KeywordSet {
                stop: words(&["BAJA", "PARAR", "CANCELAR SUSCRIPCION"]),
                start: words(&["ALTA", "REANUDAR"]),
            },
        );
        ConsentSettings {
            keywords,
            refuse_marketing_to_us: true,
            marketing_cap_wait: Duration::from_secs(24 * 60 * 60),
            marketing_cap_retries: 2,
        }
    }
}
