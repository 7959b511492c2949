//! `sfwa plan`: a dry run. For every record sfwa still has to send ([`PLANNED_STATUSES`], or
//! those an admin's SOQL filter selects among them), what sfwa would do with it now and why —
//! send, refuse with which code, wait until when, re-engage with which template, or leave it to
//! someone else — reached by the send path's own decisions ([`checks`]), changing nothing:
//!
//! - Salesforce: one query (a GET), paged; nothing written, nothing claimed.
//! - WhatsApp: at most the template listing (a GET), and only when a template goes to a BSUID
//!   (an authentication template cannot, 131062); nothing sent.
//! - The store: opened read-only (`SQLITE_OPEN_READ_ONLY`, never migrated), so it runs beside a
//!   `sfwa run` on the same file; the journal, the window mirror and the identities are read
//!   as the send path reads them.
//!
//! What it cannot see: the running daemon's memory — a hold on the token or a number (Meta
//! refused them; `/readyz` and the log say it) and its pace per number (the next free slot).
//! Those delay a send without changing its verdict.

pub mod checks;
mod render;
pub mod verdict;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::message::{OutboundMessage, QueuedRecord};
use crate::domain::status::MessageStatus;
use crate::pipeline::dispatch::template_to_ask;
use crate::salesforce::rows::MessageRow;
use crate::salesforce::{soql_string, SalesforceClient};
use crate::whatsapp::templates::{Category, TemplateCategories};
use crate::whatsapp::WhatsAppClient;

pub use render::{render_json, render_table};
pub use verdict::{Entry, Verdict};

/// The statuses of the records sfwa still has to send, which `sfwa plan` lists. One list: a
/// status that joins them (the re-engagement's `Waiting for Reply`) is one more entry.
pub const PLANNED_STATUSES: &[MessageStatus] =
    &[MessageStatus::Queued, MessageStatus::WaitingForReply];

/// How long a read waits for the running daemon's write to commit.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a dry run reads with: the settings, the time, and the two services' clients (only
/// their reads are used).
pub struct Planner {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub salesforce: SalesforceClient,
    pub whatsapp: WhatsAppClient,
}

/// Which records: a SOQL condition ANDed to the planned statuses (`--where`), at most `limit`.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub filter: Option<String>,
    pub limit: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            filter: None,
            limit: 2000,
        }
    }
}

/// The dry run's answer.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The "now" every verdict is for.
    pub at: DateTime<Utc>,
    /// Oldest first, as intake takes them.
    pub entries: Vec<Entry>,
    /// What the reader should know about the answer (no store yet, rows passed over…).
    pub notes: Vec<String>,
}

/// The SOQL of a dry run: outbound records in [`PLANNED_STATUSES`], and `filter`, oldest first.
pub fn plan_query(object: &str, filter: Option<&str>, limit: usize) -> String {
    let statuses: Vec<String> = PLANNED_STATUSES
        .iter()
        .map(|s| soql_string(s.as_salesforce()))
        .collect();
    let filter = filter
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| format!(" AND ({f})"))
        .unwrap_or_default();
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c IN \
         ({statuses}){filter} ORDER BY CreatedDate ASC, Id ASC LIMIT {limit}",
        fields = MessageRow::FIELDS.join(", "),
        statuses = statuses.join(","),
    )
}

/// Reads the records and judges each (see the module docs): nothing is written anywhere.
pub async fn plan(planner: &Planner, options: &PlanOptions) -> anyhow::Result<Plan> {
    let settings = planner.settings.clone();
    let now = planner.clock.now();
    let soql = plan_query(
        &settings.salesforce.message_object,
        options.filter.as_deref(),
        options.limit,
    );
    let rows: Vec<MessageRow> = planner
        .salesforce
        .query(&soql)
        .await
        .context("reading the records to plan from Salesforce")?;
    let mut notes = Vec::new();
    let records: Vec<QueuedRecord> = rows
        .into_iter()
        .filter_map(|row| match row.into_record() {
            Ok(record) => Some(record),
            Err(error) => {
                notes.push(format!("a row without a valid Id was passed over: {error}"));
                None
            }
        })
        .collect();
    let region = crate::domain::phone::region(&settings.whatsapp.default_region).ok();
    let authentication = authentication_templates(planner, &records, region, now).await;
    let unknown_numbers = unknown_numbers(planner, &records, &mut notes).await;
    tokio::task::spawn_blocking(move || {
        let (conn, note) = open_read_only(&settings.store.path)?;
        notes.extend(note);
        let context = checks::Context {
            settings: &settings,
            now,
            default_region: region,
            authentication: &authentication,
            unknown_numbers: &unknown_numbers,
        };
        let entries = records
            .iter()
            .map(|record| checks::judge(record, &context, &conn))
            .collect::<Result<Vec<Entry>, _>>()
            .context("reading the store")?;
        Ok(Plan {
            at: now,
            entries,
            notes,
        })
    })
    .await
    .context("the plan's store reads stopped")?
}

/// The `(name, language)` of the authentication templates among those the records send to a
/// BSUID, from Meta's listing (a GET, once): the send path asks the same before addressing.
async fn authentication_templates(
    planner: &Planner,
    records: &[QueuedRecord],
    region: Option<phonenumber::country::Id>,
    now: DateTime<Utc>,
) -> HashSet<(String, String)> {
    let asked: HashSet<(String, String)> = records
        .iter()
        .filter_map(|record| OutboundMessage::from_record(record, region).ok())
        .filter_map(|message| {
            template_to_ask(&message).map(|(name, language)| (name.into(), language.into()))
        })
        .collect();
    let categories = TemplateCategories::default();
    let waba_id = &planner.settings.whatsapp.business_account_id;
    let mut authentication = HashSet::new();
    for (name, language) in asked {
        let category = categories
            .category(&planner.whatsapp, waba_id, &name, &language, now)
            .await;
        if category == Some(Category::Authentication) {
            authentication.insert((name, language));
        }
    }
    authentication
}

/// The business numbers of records no instance serves, as the UNKNOWN_BUSINESS_NUMBER sweep
/// judges them (`pipeline::unknown_numbers`): not this instance's, not the account's
/// (`GET /{waba_id}/phone_numbers`), in no lease record (one query). Asked only when a record
/// names a number this instance does not serve; when it cannot be told (no
/// `whatsapp.business_account_id`, a read failed), none is called unknown and a note says why.
async fn unknown_numbers(
    planner: &Planner,
    records: &[QueuedRecord],
    notes: &mut Vec<String>,
) -> HashSet<String> {
    let settings = &planner.settings;
    let foreign: HashSet<String> = records
        .iter()
        .filter_map(|r| r.business_number_id.as_deref().map(str::trim))
        .filter(|n| !n.is_empty() && !settings.serves(n))
        .map(String::from)
        .collect();
    if foreign.is_empty() {
        return foreign;
    }
    let waba = settings.whatsapp.business_account_id.trim();
    if waba.is_empty() {
        notes.push("records name numbers this instance does not serve; without whatsapp.business_account_id it cannot tell whether another instance serves them".into());
        return HashSet::new();
    }
    let account = planner.whatsapp.account_numbers(waba).await;
    let soql = format!(
        "SELECT Phone_Number_Id__c FROM {} ORDER BY Generation__c DESC LIMIT 2000",
        crate::pipeline::lease::OBJECT
    );
    let leased = planner.salesforce.query::<LeasedNumber>(&soql).await;
    match (account, leased) {
        (Ok(account), Ok(leased)) => foreign
            .into_iter()
            .filter(|n| {
                !account.contains(n) && !leased.iter().any(|l| l.number.as_ref() == Some(n))
            })
            .collect(),
        (account, leased) => {
            let why = account
                .err()
                .map(|e| e.to_string())
                .or(leased.err().map(|e| e.to_string()));
            notes.push(format!(
                "whether another instance serves the numbers this one does not could not be read: {}",
                why.unwrap_or_default()
            ));
            HashSet::new()
        }
    }
}

#[derive(serde::Deserialize)]
struct LeasedNumber {
    #[serde(rename = "Phone_Number_Id__c")]
    number: Option<String>,
}

/// The store, read-only and as it is (never migrated: `sfwa run` owns its schema). No file
/// yet: an empty in-memory store stands in (nobody has written in), with a note saying so.
pub fn open_read_only(path: &Path) -> anyhow::Result<(Connection, Option<String>)> {
    if !path.exists() {
        let mut conn = Connection::open_in_memory()?;
        crate::store::db::migrate(&mut conn)?;
        let note = format!(
            "no store at {}: sfwa has not run with these settings yet, so no customer is known to have written in",
            path.display()
        );
        return Ok((conn, Some(note)));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening the store at {} read-only", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let latest = crate::store::db::latest_version();
    if version != latest {
        anyhow::bail!(
            "the store at {} has schema version {version} where this sfwa reads {latest}: run \
             this version's `sfwa run` or `sfwa sync` once to bring it up to date (`sfwa plan` \
             never writes to the store)",
            path.display()
        );
    }
    Ok((conn, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_opened_read_only_and_one_of_another_schema_is_refused_not_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("sfwa.db");
        drop(crate::store::Store::open(&current).unwrap());
        let old = dir.path().join("old.db");
        Connection::open(&old)
            .unwrap()
            .pragma_update(None, "user_version", 1)
            .unwrap();

        let (conn, note) = open_read_only(&current).unwrap();
        let write = conn.execute("DELETE FROM journal", []);
        let refused = open_read_only(&old).map(|_| ()).unwrap_err().to_string();
        let (_, missing) = open_read_only(&dir.path().join("none.db")).unwrap();

        assert_eq!(note, None);
        assert!(write.is_err(), "a read-only connection refuses writes");
        assert!(refused.contains("schema version 1"), "{refused}");
        let version: i64 = Connection::open(&old)
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 1, "never migrated");
        assert!(missing.is_some_and(|n| n.contains("no store")));
        assert!(!dir.path().join("none.db").exists());
    }

    #[test]
    fn the_query_lists_the_planned_statuses_and_ands_the_filter() {
        let soql = plan_query("WhatsApp_Message__c", Some("CreatedDate = TODAY"), 10);

        assert!(
            soql.contains("Status__c IN ('Queued','Waiting for Reply')"),
            "{soql}"
        );
        assert!(
            soql.contains(" AND (CreatedDate = TODAY) ORDER BY"),
            "{soql}"
        );
        assert!(soql.ends_with("LIMIT 10"), "{soql}");
    }
}
