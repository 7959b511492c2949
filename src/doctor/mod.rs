//! `sfwa doctor`: checks a setup end to end before (or beside) `sfwa run`, and says for every
//! problem what to do about it.
//!
//! The checks run in order, each a small async function returning one or more [`Check`]s:
//! 1. configuration; 2. the store; 3. write-back dead letters (and webhook events refused);
//! 4. Salesforce login; 5. the message object's fields; 6. the platform-event channel (stream
//!    mode); 7. the publish Flow is active ([`flow`], `FlowDefinitionView`);
//! 8. each WhatsApp number, with its throughput level against `whatsapp.throughput_per_second`;
//! 9. the Graph API version, against Meta's end dates and the version Meta says answered
//!    ([`meta`]); 10. the apps subscribed to the WhatsApp Business Account; 11. the app's webhook
//!    subscription and each webhook field sfwa needs (or will); 12. the webhook listener;
//! 13. Salesforce API usage.
//!
//! A check that needs something an earlier one found broken is [`Outcome::Skipped`] with the
//! reason, so the first failure is the one to fix; so is one whose optional setting is unset
//! (`whatsapp.business_account_id`, `whatsapp.app_id`), naming the key. Nothing is changed
//! anywhere: the store is opened without migrating it, the stream subscription is dropped at once,
//! no record is written, Meta is only read. Dates are the injected clock's ([`check_at`]).
//!
//! The fields the message-object check expects are not a hand-kept list: they are what the code
//! reads ([`MessageRecord::FIELDS`]) and writes (collected by calling [`record_update`] and
//! [`inbound_records`] themselves), so a new field in the pipeline is checked without anyone
//! remembering to. Only the type each needs is a table here (`field_need`); a test makes sure
//! every field the code uses has an entry.

pub mod flow;
pub mod meta;

use std::collections::BTreeSet;
use std::fmt;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, Utc};

use crate::clock::{Clock, SystemClock};
use crate::config::{AuthMode, ConfigError, IntakeMode, Problem, Settings};
use crate::domain::message::MessageRecord;
use crate::domain::status::MessageStatus;
use crate::pipeline::inbound_links::LINK_FIELDS;
use crate::pipeline::{inbound_records, record_update};
use crate::salesforce::{
    CometdClient, CometdError, FieldDescribe, ObjectDescribe, ReplayFrom, SalesforceClient,
    SalesforceError,
};
use crate::store::db::latest_version;
use crate::webhook::{InboundKind, InboundMediaKind, InboundMessage};
use crate::whatsapp::{SendError, WhatsAppClient, WhatsAppConfig};

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Works; what was found.
    Pass(String),
    /// Broken: what is wrong and what to do about it.
    Fail { problem: String, fix: String },
    /// Not checked, because of an earlier failure or a setting that makes it moot.
    Skipped(String),
    /// Worth knowing; neither pass nor fail.
    Info(String),
}

impl Check {
    fn new(name: impl Into<String>, outcome: Outcome) -> Check {
        Check {
            name: name.into(),
            outcome,
        }
    }

    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Outcome::Pass(detail.into()))
    }

    fn fail(name: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(
            name,
            Outcome::Fail {
                problem: problem.into(),
                fix: fix.into(),
            },
        )
    }

    fn skipped(name: impl Into<String>, reason: impl Into<String>) -> Check {
        Check::new(name, Outcome::Skipped(reason.into()))
    }

    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }

    /// The report line; `unicode` picks ✔ ✘ – • over ASCII words (for pipes and old terminals).
    pub fn line(&self, unicode: bool) -> String {
        let mark = |fancy: &'static str, plain: &'static str| if unicode { fancy } else { plain };
        match &self.outcome {
            Outcome::Pass(detail) => format!("{} {} ({detail})", mark("✔", "[ok]  "), self.name),
            Outcome::Fail { problem, fix } => format!(
                "{} {}: {problem} {} fix: {fix}",
                mark("✘", "[FAIL]"),
                self.name,
                mark("—", "--")
            ),
            Outcome::Skipped(reason) => {
                format!("{} {}: skipped, {reason}", mark("–", "[skip]"), self.name)
            }
            Outcome::Info(text) => format!("{} {}: {text}", mark("•", "[info]"), self.name),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line(true))
    }
}

/// The whole report, one line per check and a closing verdict.
pub fn render(checks: &[Check], unicode: bool) -> String {
    let mut out: String = checks.iter().map(|c| c.line(unicode) + "\n").collect();
    let failed = checks.iter().filter(|c| c.failed()).count();
    out.push_str(&match failed {
        0 => "All checks passed.\n".to_string(),
        1 => "1 check failed.\n".to_string(),
        n => format!("{n} checks failed.\n"),
    });
    out
}

/// Whether nothing failed (the exit status of `sfwa doctor`).
pub fn all_passed(checks: &[Check]) -> bool {
    !checks.iter().any(Check::failed)
}

const CONFIGURATION: &str = "Configuration";
const STORE: &str = "Store";
const WEBHOOK_REJECTS: &str = "Refused webhook events";
const DEAD_LETTERS: &str = "Write-back dead letters";
const LOGIN: &str = "Salesforce login";
const FIELDS: &str = "Message object fields";
const CHANNEL: &str = "Platform event channel";
const WEBHOOK: &str = "Webhook listener";
const USAGE: &str = "Salesforce API usage";

const DEPLOY_FIX: &str = "deploy the package in salesforce/ (sf project deploy start)";
const ACCESS_FIX: &str = "grant field access with the WhatsApp_Integration permission set \
     (assign it to the integration user)";

/// Loads `config` (file and `SFWA_*` environment, as `sfwa run` does) and runs every check.
pub async fn run(config: &Path) -> Vec<Check> {
    match Settings::load_with_problems(config) {
        Ok((settings, problems)) => {
            run_checks(&settings, problems, SystemClock.now().date_naive()).await
        }
        Err(error) => {
            let fix = match &error {
                ConfigError::Read { .. } => "check the path and that this user may read it",
                ConfigError::Syntax { .. } => "correct the TOML at the line shown",
                ConfigError::Env { .. } => "rename or unset that variable",
                ConfigError::Invalid(_) => "fix the settings named",
            };
            let mut checks = vec![Check::fail(CONFIGURATION, error.to_string(), fix)];
            for name in [
                STORE,
                LOGIN,
                FIELDS,
                CHANNEL,
                flow::FLOW,
                "WhatsApp numbers",
                meta::VERSION,
                meta::SUBSCRIBED_APPS,
                meta::SUBSCRIPTION,
                WEBHOOK,
                USAGE,
            ] {
                checks.push(Check::skipped(name, "the configuration did not load"));
            }
            checks
        }
    }
}

/// Every check against settings already loaded (validated here), dated by the system clock.
pub async fn check(settings: &Settings) -> Vec<Check> {
    check_at(settings, &SystemClock).await
}

/// [`check`] with "today" from `clock` (the Graph version's end date is judged on it).
pub async fn check_at(settings: &Settings, clock: &dyn Clock) -> Vec<Check> {
    let problems = settings.validate().err().unwrap_or_default();
    run_checks(settings, problems, clock.now().date_naive()).await
}

async fn run_checks(settings: &Settings, problems: Vec<Problem>, today: NaiveDate) -> Vec<Check> {
    let mut checks = Vec::new();
    if problems.is_empty() {
        checks.push(Check::pass(
            CONFIGURATION,
            format!("every setting valid; intake mode {}", mode_name(settings)),
        ));
    }
    for problem in &problems {
        checks.push(Check::fail(
            CONFIGURATION,
            format!("{} {}", problem.key, problem.problem),
            &problem.fix,
        ));
    }
    // A check whose settings are wrong would only repeat the configuration's complaint.
    let blocked = |prefixes: &[&str]| {
        problems
            .iter()
            .find(|p| prefixes.iter().any(|prefix| p.key.starts_with(prefix)))
            .map(|p| format!("fix {} first", p.key))
    };

    checks.push(match blocked(&["store."]) {
        Some(reason) => Check::skipped(STORE, reason),
        None => check_store(&settings.store.path).await,
    });
    checks.push(match blocked(&["store."]) {
        Some(reason) => Check::skipped(DEAD_LETTERS, reason),
        None => check_dead_letters(&settings.store.path).await,
    });
    if blocked(&["store."]).is_none() {
        checks.extend(check_webhook_rejects(&settings.store.path).await);
    }

    let salesforce = match blocked(&["salesforce."]) {
        Some(reason) => {
            checks.push(Check::skipped(LOGIN, reason));
            None
        }
        None => {
            let (check, client) = check_login(settings).await;
            checks.push(check);
            client
        }
    };
    let not_logged_in = "the Salesforce login failed";
    match &salesforce {
        Some(client) => {
            checks.push(check_fields(client, &settings.salesforce.message_object).await)
        }
        None => checks.push(Check::skipped(FIELDS, not_logged_in)),
    }
    checks.push(match (&salesforce, settings.intake.mode) {
        (_, IntakeMode::Poll) => {
            Check::skipped(CHANNEL, "intake.mode is poll (no platform events)")
        }
        (None, _) => Check::skipped(CHANNEL, not_logged_in),
        (Some(client), IntakeMode::Stream) => match blocked(&["intake.channel"]) {
            Some(reason) => Check::skipped(CHANNEL, reason),
            None => check_channel(client, &settings.intake.channel).await,
        },
    });

    checks.push(match &salesforce {
        None => Check::skipped(flow::FLOW, not_logged_in),
        Some(client) => flow::check_flow(client, settings.intake.mode).await,
    });

    let reachable = blocked(&[
        "whatsapp.api_base",
        "whatsapp.api_version",
        "whatsapp.access_token",
    ]);
    let mut answered_by = None;
    match reachable.clone().or(blocked(&[
        "whatsapp.default_phone_number_id",
        "whatsapp.phone_number_ids",
    ])) {
        Some(reason) => checks.push(Check::skipped("WhatsApp numbers", reason)),
        None => {
            let (number_checks, version) = check_numbers(settings).await;
            checks.extend(number_checks);
            answered_by = version;
        }
    }
    checks.push(match blocked(&["whatsapp.api_version"]) {
        Some(reason) => Check::skipped(meta::VERSION, reason),
        None => meta::version_check(
            &settings.whatsapp.api_version,
            today,
            answered_by.as_deref(),
        ),
    });
    let wa_client = whatsapp_client(settings);
    checks.push(
        match reachable
            .clone()
            .or(blocked(&["whatsapp.business_account_id"]))
        {
            Some(reason) => Check::skipped(meta::SUBSCRIBED_APPS, reason),
            None => meta::check_subscribed_apps(&wa_client, settings).await,
        },
    );
    match reachable.or(blocked(&["whatsapp.app_id", "whatsapp.app_secret"])) {
        Some(reason) => checks.push(Check::skipped(meta::SUBSCRIPTION, reason)),
        None => checks.extend(meta::check_webhook_fields(&wa_client, settings).await),
    }

    checks.push(match blocked(&["webhook."]) {
        Some(reason) => Check::skipped(WEBHOOK, reason),
        None => check_webhook(settings).await,
    });

    checks.push(match salesforce.as_ref().map(|c| c.api_usage()) {
        None => Check::skipped(USAGE, not_logged_in),
        Some(None) => Check::skipped(USAGE, "no REST call answered, so Salesforce reported none"),
        Some(Some(usage)) => {
            let share = usage.used as f64 * 100.0 / usage.max.max(1) as f64;
            let mut text = format!(
                "{} of {} calls used in the last 24 h ({share:.0}%), {} left",
                usage.used,
                usage.max,
                usage.remaining()
            );
            if share >= 80.0 {
                text.push_str(
                    "; close to the limit: prefer intake.mode = stream, or a longer \
                    intake.interval",
                );
            }
            Check::new(USAGE, Outcome::Info(text))
        }
    });
    checks
}

fn mode_name(settings: &Settings) -> &'static str {
    match settings.intake.mode {
        IntakeMode::Stream => "stream",
        IntakeMode::Poll => "poll",
    }
}

/// The store file can be opened for writing; nothing in it is changed (no migration, no rows), so
/// a running daemon is not disturbed — SQLite in WAL mode lets a second connection in.
async fn check_store(path: &Path) -> Check {
    let path = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || store_state(&path)).await;
    match checked {
        Ok(Ok(detail)) => Check::pass(STORE, detail),
        Ok(Err((problem, fix))) => Check::fail(STORE, problem, fix),
        Err(error) => Check::fail(
            STORE,
            format!("the check itself failed: {error}"),
            "run sfwa doctor again",
        ),
    }
}

fn store_state(path: &Path) -> Result<String, (String, String)> {
    use rusqlite::{Connection, OpenFlags};
    let shown = path.display();
    if !path.exists() {
        // sfwa run creates the file and any missing directories: the nearest existing ancestor
        // must take a new file.
        let mut dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        while !dir.exists() {
            dir = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
        }
        let probe = dir.join(format!(".sfwa-doctor-{}", std::process::id()));
        return match std::fs::File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                Ok(format!(
                    "{shown} does not exist yet; sfwa run creates it in {}, which is \
                    writable",
                    dir.display()
                ))
            }
            Err(error) => Err((
                format!(
                    "{shown} cannot be created: {} is not writable ({error})",
                    dir.display()
                ),
                "set store.path to a writable location on persistent storage, or give \
                    this user write access"
                    .into(),
            )),
        };
    }
    let fix = "give this user read and write access to the file and its directory \
        (SQLite writes -wal and -shm files beside it)";
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|e| {
            (
                format!("{shown} cannot be opened for writing: {e}"),
                fix.to_string(),
            )
        })?;
    let _ = conn.busy_timeout(crate::store::db::BUSY_TIMEOUT);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| {
            (
                format!("{shown} is not a readable SQLite file: {e}"),
                "point store.path at sfwa's store, or move this file away so sfwa run \
                    creates a new one"
                    .to_string(),
            )
        })?;
    if version > latest_version() {
        return Err((
            format!(
                "{shown} was written by a newer sfwa (schema {version}, this one knows {})",
                latest_version()
            ),
            "run the newer sfwa, or restore a store from before the upgrade".into(),
        ));
    }
    // Taking the write lock and letting it go changes nothing but proves writes can happen (and
    // waits politely if a running daemon is mid-commit).
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(|e| (format!("{shown} cannot be written: {e}"), fix.to_string()))?;
    let state = if version < latest_version() {
        "sfwa run will update its schema"
    } else {
        "schema up to date"
    };
    Ok(format!("{shown} opens for writing; {state}"))
}

/// Write-backs Salesforce refused for good, read from the store file (read-only, so a running
/// daemon is not disturbed): none is a pass; any is a failure naming the newest and the command.
async fn check_dead_letters(path: &Path) -> Check {
    let path = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || dead_letter_state(&path)).await;
    match checked {
        Ok(Ok(None)) => Check::pass(DEAD_LETTERS, "none"),
        Ok(Ok(Some((count, newest)))) => Check::fail(
            DEAD_LETTERS,
            format!(
                "{count} write-back(s) Salesforce refused for good; newest: {}",
                newest.join("; ")
            ),
            "see them with `sfwa dead-letters list`; once the cause is fixed, \
             `sfwa dead-letters retry KEY…` (or --all), or give up with `sfwa dead-letters drop KEY…`",
        ),
        // The store check above already says what is wrong with the file.
        Ok(Err(reason)) => Check::skipped(DEAD_LETTERS, reason),
        Err(error) => Check::skipped(DEAD_LETTERS, format!("the check itself failed: {error}")),
    }
}

/// Webhook events answered 200 but refused (values Salesforce cannot store): worth knowing, not a
/// setup failure. Nothing when there are none.
async fn check_webhook_rejects(path: &Path) -> Option<Check> {
    let path = path.to_path_buf();
    let counted = tokio::task::spawn_blocking(move || -> Result<Vec<(String, u64)>, String> {
        use rusqlite::{Connection, OpenFlags};
        if !path.exists() {
            return Ok(Vec::new());
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
        let _ = conn.busy_timeout(crate::store::db::BUSY_TIMEOUT);
        let has_table: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_rejects'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| e.to_string())?;
        if !has_table {
            return Ok(Vec::new());
        }
        crate::store::webhook_rejects::counts_by_reason(&conn).map_err(|e| e.to_string())
    })
    .await;
    let counts = match counted {
        Ok(Ok(counts)) if !counts.is_empty() => counts,
        _ => return None,
    };
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let reasons = counts
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Check::new(
        WEBHOOK_REJECTS,
        Outcome::Info(format!(
            "{total} event(s) Meta sent were answered 200 but not applied ({reasons}); see them \
             with `sfwa dead-letters list`"
        )),
    ))
}

/// `None` when there are no dead letters; else their count and the newest three as `key: reason`.
fn dead_letter_state(path: &Path) -> Result<Option<(u64, Vec<String>)>, String> {
    use rusqlite::{Connection, OpenFlags};
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("the store cannot be read: {e}"))?;
    let _ = conn.busy_timeout(crate::store::db::BUSY_TIMEOUT);
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_dead'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| format!("the store cannot be read: {e}"))?;
    if !has_table {
        return Ok(None);
    }
    let count = crate::store::outbox::dead_letter_count(&conn).map_err(|e| e.to_string())?;
    if count == 0 {
        return Ok(None);
    }
    let newest = crate::store::outbox::dead_letters(&conn, 3)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|letter| {
            let reason: String = letter.reason.chars().take(120).collect();
            format!("{}: {reason}", letter.key)
        })
        .collect();
    Ok(Some((count, newest)))
}

/// Logs in with the configured grant. Returns the client for the checks that need Salesforce.
async fn check_login(settings: &Settings) -> (Check, Option<SalesforceClient>) {
    let sf = &settings.salesforce;
    let mode = match sf.auth {
        AuthMode::Jwt => format!("jwt as {}", sf.username),
        AuthMode::ClientCredentials => {
            "client_credentials, as the connected app's Run As user".into()
        }
        AuthMode::RefreshToken => "refresh_token".into(),
    };
    let config = match crate::app::salesforce_config(settings) {
        Ok(config) => config,
        Err(error) => {
            return (
                Check::fail(
                    LOGIN,
                    format!("{error:#}"),
                    "fix salesforce.private_key_path",
                ),
                None,
            )
        }
    };
    let client = match SalesforceClient::new(http_client(), config) {
        Ok(client) => client,
        Err(error) => {
            return (
                Check::fail(
                    LOGIN,
                    format!("{mode}: {error}"),
                    "point salesforce.private_key_path at the PEM RSA private key whose \
                        certificate is on the connected app",
                ),
                None,
            )
        }
    };
    match client.session().await {
        Ok(session) => (
            Check::pass(LOGIN, format!("{mode}; instance {}", session.instance_url)),
            Some(client),
        ),
        Err(SalesforceError::Auth {
            error,
            description,
            hint,
        }) => (
            Check::fail(
                LOGIN,
                format!("{mode}: Salesforce answered {error}: {description}"),
                hint,
            ),
            None,
        ),
        Err(SalesforceError::Unavailable(message)) => (
            Check::fail(
                LOGIN,
                format!("{mode}: cannot reach {}: {message}", sf.login_url),
                "check salesforce.login_url, DNS and any proxy or firewall between this \
                    host and Salesforce",
            ),
            None,
        ),
        Err(error) => (
            Check::fail(
                LOGIN,
                format!("{mode}: {error}"),
                "check salesforce.login_url and the connected app's settings",
            ),
            None,
        ),
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("sfwa-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// What sfwa needs of one field: one of these describe types, at least this length (0 = any).
fn field_need(name: &str) -> Option<(&'static [&'static str], u32)> {
    const TEXT: &[&str] = &["string"];
    const LONG_TEXT: &[&str] = &["textarea"];
    const DATETIME: &[&str] = &["datetime"];
    const PICKLIST: &[&str] = &["picklist"];
    const PHONE: &[&str] = &["phone", "string"];
    const URL: &[&str] = &["url", "string"];
    const REFERENCE: &[&str] = &["reference"];
    Some(match name {
        "Direction__c" | "Status__c" | "Message_Type__c" => (PICKLIST, 0),
        "To_Phone__c" | "From_Phone__c" => (PHONE, 0),
        "Business_Number_Id__c" => (TEXT, 32),
        "Body__c" => (LONG_TEXT, 4096),
        "Template_Name__c" => (TEXT, 512),
        "Template_Language__c" => (TEXT, 16),
        "Template_Parameters__c" => (LONG_TEXT, 32768),
        "Media_URL__c" => (URL, 0),
        "Media_Filename__c" => (TEXT, 255),
        "WhatsApp_Message_Id__c" => (TEXT, 128),
        "Error_Code__c" => (TEXT, 32),
        "Error_Message__c" => (LONG_TEXT, 1024),
        "Scheduled_At__c"
        | "CreatedDate"
        | "Sent_At__c"
        | "Delivered_At__c"
        | "Read_At__c"
        | "Failed_At__c"
        | "Received_At__c"
        | "Window_Expires_At__c" => (DATETIME, 0),
        "Contact__c" | "Lead__c" => (REFERENCE, 0),
        _ => return None,
    })
}

/// Picklist values sfwa reads or writes, beyond the statuses.
const DIRECTIONS: &[&str] = &["Outbound", "Inbound"];
const MESSAGE_TYPES: &[&str] = &["Text", "Template", "Image", "Document", "Video", "Audio"];

/// The fields intake reads (the Id is every object's).
pub fn read_fields() -> Vec<&'static str> {
    MessageRecord::FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "Id")
        .collect()
}

/// The fields the pipeline writes, learned by building every kind of write it makes.
pub fn written_fields() -> BTreeSet<String> {
    let now = Utc::now();
    let mut writes = vec![
        record_update::sending(),
        record_update::accepted("wamid.doctor", Some(now)),
        record_update::failed("CODE", "message", now, Some(now)),
    ];
    writes.extend(
        MessageStatus::ALL
            .iter()
            .map(|status| record_update::status_reported(*status, now, true)),
    );
    // A document with a file name fills every field an inbound record can have.
    writes.push(inbound_records::inbound_record(&InboundMessage {
        wamid: "wamid.doctor".into(),
        business_number_id: "1".into(),
        display_phone_number: "1".into(),
        from: "14155550101".into(),
        profile_name: None,
        timestamp: now,
        kind: InboundKind::Media {
            kind: InboundMediaKind::Document,
            media_id: "1".into(),
            mime_type: None,
            caption: None,
            filename: Some("doctor.pdf".into()),
        },
        context_id: None,
    }));
    let mut fields: BTreeSet<String> = writes
        .into_iter()
        .flat_map(|w| w.into_iter().map(|(k, _)| k))
        .collect();
    fields.extend(LINK_FIELDS.iter().map(|f| f.to_string()));
    fields
}

/// Every field sfwa reads or writes, the read ones first in SELECT order.
fn wanted_fields() -> Vec<String> {
    let mut wanted: Vec<String> = read_fields().into_iter().map(String::from).collect();
    for field in written_fields() {
        if !wanted.contains(&field) {
            wanted.push(field);
        }
    }
    wanted
}

/// Describes the message object and compares it with what the code reads and writes.
async fn check_fields(client: &SalesforceClient, object: &str) -> Check {
    let name = FIELDS;
    match client.describe(object).await {
        Ok(describe) => {
            let (deploy, access) = field_problems(&describe);
            let used = wanted_fields().len();
            if deploy.is_empty() && access.is_empty() {
                return Check::pass(
                    name,
                    format!(
                        "{object}: all {used} fields sfwa reads or writes are there, with \
                         compatible types"
                    ),
                );
            }
            let fix = match (deploy.is_empty(), access.is_empty()) {
                (false, true) => DEPLOY_FIX.to_string(),
                (true, false) => ACCESS_FIX.to_string(),
                _ => format!("{DEPLOY_FIX}; then {ACCESS_FIX}"),
            };
            Check::fail(
                name,
                format!("{object}: {}", [deploy, access].concat().join("; ")),
                fix,
            )
        }
        Err(SalesforceError::Api { status: 404, .. }) => Check::fail(
            name,
            format!("{object} does not exist, or the integration user cannot see it"),
            format!(
                "{DEPLOY_FIX}, and assign the WhatsApp_Integration permission set to \
                the integration user (or fix salesforce.message_object)"
            ),
        ),
        Err(error) => Check::fail(
            name,
            error.to_string(),
            "check the integration user's API access and try again",
        ),
    }
}

/// What is wrong with the object: (fixed by deploying the package, fixed by granting access).
/// A field the user may not read is absent from describe, so "missing" names both fixes.
fn field_problems(describe: &ObjectDescribe) -> (Vec<String>, Vec<String>) {
    let written = written_fields();
    let mut missing = Vec::new();
    let mut deploy = Vec::new();
    let mut access = Vec::new();
    for field_name in &wanted_fields() {
        let Some(field) = describe.field(field_name) else {
            missing.push(field_name.clone());
            continue;
        };
        if let Some((types, min_length)) = field_need(field_name) {
            if !types.contains(&field.field_type.as_str()) {
                deploy.push(format!(
                    "{field_name} is {} where sfwa needs {}",
                    field.field_type,
                    types.join(" or ")
                ));
            } else if field.length < min_length {
                deploy.push(format!(
                    "{field_name} holds {} characters where sfwa writes up to {min_length}",
                    field.length
                ));
            }
        }
        if written.contains(field_name) && !(field.createable && field.updateable) {
            access.push(format!(
                "{field_name} is read-only for the integration user"
            ));
        }
    }
    if !missing.is_empty() {
        deploy.insert(0, format!("missing {}", missing.join(", ")));
    }
    let statuses: Vec<&str> = MessageStatus::ALL
        .iter()
        .map(|s| s.as_salesforce())
        .collect();
    for (field_name, values) in [
        ("Status__c", statuses.as_slice()),
        ("Direction__c", DIRECTIONS),
        ("Message_Type__c", MESSAGE_TYPES),
    ] {
        if let Some(field) = describe.field(field_name) {
            let lacking = lacking_values(field, values);
            if !lacking.is_empty() {
                deploy.push(format!(
                    "{field_name} lacks picklist value(s) {}",
                    lacking.join(", ")
                ));
            }
        }
    }
    if let Some(wamid) = describe.field(inbound_records::WAMID_FIELD) {
        if !wamid.external_id {
            deploy.push(format!(
                "{} is not an External ID (inbound records are upserted on it)",
                inbound_records::WAMID_FIELD
            ));
        }
    }
    for (lookup, target) in [("Contact__c", "Contact"), ("Lead__c", "Lead")] {
        if let Some(field) = describe.field(lookup) {
            if field.field_type == "reference" && !field.reference_to.iter().any(|t| t == target) {
                deploy.push(format!("{lookup} does not look up {target}"));
            }
        }
    }
    (deploy, access)
}

fn lacking_values<'v>(field: &FieldDescribe, values: &[&'v str]) -> Vec<&'v str> {
    values
        .iter()
        .copied()
        .filter(|v| {
            !field
                .picklist_values
                .iter()
                .any(|p| p.active && p.value == *v)
        })
        .collect()
}

/// The field of the platform event the stream reads (see `pipeline::stream`).
const EVENT_MESSAGE_ID_FIELD: &str = "Message_Id__c";

/// Handshake and subscribe (replay -1: nothing is consumed), disconnect; then the event's fields.
async fn check_channel(client: &SalesforceClient, channel: &str) -> Check {
    let name = CHANNEL;
    let event_fix = "deploy the package's WhatsApp_Outbound__e platform event and the \
        WhatsApp_Publish_Outbound Flow (sf project deploy start), and assign the \
        WhatsApp_Integration permission set (read access to the event)";
    let mut cometd = match CometdClient::new(client.clone(), channel) {
        Ok(cometd) => cometd,
        Err(error) => {
            return Check::fail(
                name,
                error.to_string(),
                "set intake.channel to /event/WhatsApp_Outbound__e",
            )
        }
    };
    let subscribed = cometd.subscribe(ReplayFrom::New).await;
    cometd.disconnect().await;
    match subscribed {
        Ok(()) => {}
        Err(CometdError::Protocol(message)) => {
            return Check::fail(name, format!("{channel}: {message}"), event_fix)
        }
        Err(CometdError::Transport(message)) => {
            return Check::fail(
                name,
                format!("the Streaming API cannot be reached: {message}"),
                "check that this host may reach the instance's /cometd endpoint \
                    (proxies must allow long-polling POSTs)",
            )
        }
        Err(error) => {
            return Check::fail(
                name,
                error.to_string(),
                "run sfwa doctor again; if it persists, check the integration user's \
            API access",
            )
        }
    }
    let Some(event) = channel.strip_prefix("/event/") else {
        return Check::pass(
            name,
            format!("{channel}: subscribed (replay -1) and disconnected"),
        );
    };
    match client.describe(event).await {
        Ok(describe) if describe.field(EVENT_MESSAGE_ID_FIELD).is_some() => Check::pass(
            name,
            format!(
                "{channel}: subscribed (replay -1) and disconnected; {event} carries \
                    {EVENT_MESSAGE_ID_FIELD}"
            ),
        ),
        Ok(_) => Check::fail(
            name,
            format!("{event} has no {EVENT_MESSAGE_ID_FIELD} field, so events name no record"),
            event_fix,
        ),
        Err(error) => Check::fail(
            name,
            format!("subscribed, but {event} cannot be described: {error}"),
            event_fix,
        ),
    }
}

fn whatsapp_client(settings: &Settings) -> WhatsAppClient {
    let wa = &settings.whatsapp;
    WhatsAppClient::new(
        http_client(),
        WhatsAppConfig {
            api_base: wa.api_base.clone(),
            api_version: wa.api_version.clone(),
            access_token: wa.access_token.expose().to_string(),
            timeout: wa.timeout,
        },
    )
}

/// Each business number's details from the Cloud API: proves the token and the id. Also returns
/// the Graph version Meta says answered (`facebook-api-version`), for the version check.
async fn check_numbers(settings: &Settings) -> (Vec<Check>, Option<String>) {
    let wa = &settings.whatsapp;
    let client = whatsapp_client(settings);
    let mut checks = Vec::new();
    let mut answered_by = None;
    for id in settings.business_numbers() {
        let name = format!("WhatsApp number {id}");
        let check = match client.phone_number(&id).await {
            Ok(info) => {
                if answered_by.is_none() {
                    answered_by = info.answered_by_version.clone();
                }
                let shown = |v: Option<String>| v.unwrap_or_else(|| "?".into());
                let quality = shown(info.quality_rating.clone());
                let mut detail = format!(
                    "{}, {}, quality {quality}",
                    shown(info.verified_name.clone()),
                    shown(info.display_phone_number.clone())
                );
                if let Some(level) = info.throughput_level() {
                    detail.push_str(&format!(", throughput {level}"));
                }
                if matches!(quality.as_str(), "YELLOW" | "RED") {
                    detail.push_str(
                        ": customers are blocking or reporting messages; Meta may lower this \
                        number's limits",
                    );
                }
                let configured = wa.throughput_per_second;
                let level_rate = info.throughput_per_second();
                checks.push(Check::pass(name.clone(), detail));
                if let Some(rate) = level_rate.filter(|rate| configured > *rate) {
                    checks.push(Check::new(
                        format!("{name} throughput"),
                        Outcome::Info(format!(
                            "whatsapp.throughput_per_second is {configured}, above the {rate} \
                            messages a second of level {}; sfwa paces this number at {rate}/s and \
                            slows down further on Meta's 130429 refusals. Set it to {rate} or less \
                            (coexistence numbers: 20)",
                            info.throughput_level().unwrap_or("?")
                        )),
                    ));
                }
                continue;
            }
            Err(SendError::Meta(error)) => {
                let fix = match error.code {
                    0 | 190 => {
                        "create a new system-user access token with whatsapp_business_messaging \
                        (Business Settings → System users) and set whatsapp.access_token"
                    }
                    10 | 200..=299 | 3 => {
                        "give the system user whatsapp_business_management and \
                        whatsapp_business_messaging on this WhatsApp account"
                    }
                    100 | 803 => {
                        "copy the phone number ID from WhatsApp Manager → API setup, and assign \
                        the WhatsApp account to the token's system user"
                    }
                    _ => {
                        "see Meta's message; check whatsapp.api_version and the account's state \
                        in WhatsApp Manager"
                    }
                };
                Check::fail(
                    name,
                    format!("WhatsApp refused ({}): {}", error.code, error.message),
                    fix,
                )
            }
            Err(error) => Check::fail(
                name,
                error.to_string(),
                "check whatsapp.api_base and that this host can reach it (proxy, firewall)",
            ),
        };
        checks.push(check);
    }
    (checks, answered_by)
}

/// The webhook address can be bound (or a running sfwa holds it), and the secrets are set.
async fn check_webhook(settings: &Settings) -> Check {
    let addr = settings.webhook.listen;
    let path = &settings.webhook.path;
    let mut missing = Vec::new();
    if settings.whatsapp.app_secret.is_empty() {
        missing.push("whatsapp.app_secret");
    }
    if settings.whatsapp.verify_token.is_empty() {
        missing.push("whatsapp.verify_token");
    }
    if !missing.is_empty() {
        return Check::fail(
            WEBHOOK,
            format!(
                "{} not set, so Meta's webhooks cannot be verified",
                missing.join(" and ")
            ),
            "set the Meta app's secret (App settings → Basic) and a verify token of \
                your choice, the same one entered when registering the webhook",
        );
    }
    let listening = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            format!("{addr} is free for sfwa run")
        }
        Err(error) if error.kind() == ErrorKind::AddrInUse => {
            if answers_healthz(addr).await {
                format!("{addr} is in use: a running sfwa answers /healthz there")
            } else {
                return Check::fail(
                    WEBHOOK,
                    format!("{addr} is in use by another program (nothing answers /healthz)"),
                    "stop that program, or set webhook.listen to a free port and route \
                        Meta's webhooks there",
                );
            }
        }
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            return Check::fail(
                WEBHOOK,
                format!("not allowed to listen on {addr}: {error}"),
                "use a port above 1023 behind the TLS proxy, or grant CAP_NET_BIND_SERVICE",
            )
        }
        Err(error) => {
            return Check::fail(
                WEBHOOK,
                format!("cannot listen on {addr}: {error}"),
                "set webhook.listen to an address of this host, e.g. 0.0.0.0:8080",
            )
        }
    };
    Check::pass(
        WEBHOOK,
        format!("{listening}; webhooks on {path}; app secret and verify token set"),
    )
}

/// Whether something at `addr` answers `GET /healthz` with 2xx, as sfwa does.
async fn answers_healthz(addr: SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/healthz", SocketAddr::new(ip, addr.port()));
    http_client()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_the_pipeline_reads_or_writes_has_an_expected_type() {
        let mut fields: BTreeSet<String> = written_fields();
        fields.extend(read_fields().into_iter().map(String::from));
        let without: Vec<&String> = fields.iter().filter(|f| field_need(f).is_none()).collect();
        assert!(without.is_empty(), "add these to field_need: {without:?}");
    }

    #[test]
    fn the_written_fields_include_failure_texts_links_and_inbound_fields() {
        let written = written_fields();
        for field in [
            "Error_Message__c",
            "Status__c",
            "Contact__c",
            "Received_At__c",
            "Media_Filename__c",
        ] {
            assert!(written.contains(field), "{field} missing from {written:?}");
        }
    }

    #[test]
    fn a_failed_check_prints_its_problem_and_fix_on_one_line() {
        let check = Check::fail(
            "Message object fields",
            "missing Error_Message__c",
            "deploy",
        );
        assert_eq!(
            check.line(true),
            "✘ Message object fields: missing Error_Message__c — fix: deploy"
        );
        assert_eq!(
            check.line(false),
            "[FAIL] Message object fields: missing Error_Message__c -- fix: deploy"
        );
    }
}
