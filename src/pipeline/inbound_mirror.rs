//! The inbound mirror job: inbound records other tools created in Salesforce, folded into the
//! window mirror so the 24-hour window is right even when another system receives some of Meta's
//! webhooks ([`crate::window`] reads the mirror).
//!
//! Only the last 24 hours can still open a window, so a run never reads further back. Within
//! that day it reads only what was saved since the last run: the newest `SystemModstamp` it read
//! is kept as a cursor ([`crate::store::cursors`], set once the run's rows are folded in), and the
//! next run asks for records saved since then, less [`MIRROR_LOOKBACK`]. Before, every run (every
//! 10 minutes by default) read and folded the whole day again: at a busy org's inbound volume
//! that was a day of query pages and rows each time, for a few minutes' news.
//!
//! The cursor is Salesforce's own clock, not ours, so no clock skew between the two can skip a
//! record. It is kept per message object and set of served numbers: a shard that starts serving
//! another number reads that number's whole day once.

use std::fmt;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ids::{BusinessNumberId, CustomerId};
use crate::domain::message::parse_salesforce_datetime;
use crate::domain::phone::E164;
use crate::salesforce::soql_datetime;
use crate::store::{cursors, dedupe, inbound, StoreError};

use super::{intake, Intake};

/// How far before the last run's newest `SystemModstamp` the next run reads again. Salesforce
/// stamps a record when its transaction saves it but shows it only once that transaction commits,
/// so a slow one (a Flow, Apex making callouts) becomes readable after records stamped later; and
/// SOQL compares datetimes to the second. Folding a record in again changes nothing (the mirror
/// keeps the latest time per customer), so the overlap costs only its rows.
pub const MIRROR_LOOKBACK: chrono::Duration = chrono::Duration::minutes(5);

/// Inbound records one write of [`inbound_mirror`] folds in: a day of a busy org's inbound
/// records in one write would hold the store's writer, which every webhook's answer waits for
/// (as a flush's answers and the retention did; docs/performance.md, fifteenth measurement).
const MIRROR_ROWS_PER_WRITE: usize = 500;

/// The store cursor of [`inbound_mirror`].
const CURSOR: &str = "inbound_mirror";

/// Where the last run got to: the newest `SystemModstamp` it read, and what it read it of.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The message object and the served numbers' SOQL condition: another scope starts over.
    scope: String,
    through: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct InboundRow {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "From_Phone__c")]
    from_phone: Option<String>,
    /// The BSUID: the only sender key of a customer who hides their number behind a username.
    #[serde(rename = "From_User_Id__c")]
    from_user_id: Option<String>,
    #[serde(rename = "Business_Number_Id__c")]
    business_number_id: Option<String>,
    #[serde(rename = "Received_At__c")]
    received_at: Option<String>,
    #[serde(rename = "WhatsApp_Message_Id__c")]
    wamid: Option<String>,
    #[serde(rename = "SystemModstamp")]
    modstamp: Option<String>,
}

/// What [`inbound_mirror`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MirrorSummary {
    /// Inbound records received within the last 24 hours (and saved since `saved_since`).
    pub read: usize,
    /// `None` when the run read the whole day (its first run, or the served numbers changed);
    /// else the `SystemModstamp` it read from: the last run's newest less [`MIRROR_LOOKBACK`].
    pub saved_since: Option<DateTime<Utc>>,
    /// Folded into the mirror (the mirror keeps the latest time per customer).
    pub folded: usize,
    /// Already known from our own webhooks.
    pub known: usize,
    /// Unusable rows (neither a phone nor a BSUID, a phone that is not a number, no time), each
    /// logged with its Id.
    pub unusable: usize,
}

impl fmt::Display for MirrorSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} inbound records from the last 24 h", self.read)?;
        if let Some(since) = self.saved_since {
            write!(f, " saved since {}", soql_datetime(since))?;
        }
        write!(
            f,
            ": {} folded into the window mirror, {} already known, {} unusable",
            self.folded, self.known, self.unusable
        )
    }
}

/// A usable row: the business number, the sender's keys, when the message came, its wamid.
type Usable = (
    BusinessNumberId,
    Vec<CustomerId>,
    DateTime<Utc>,
    Option<String>,
);

/// Folds inbound records received in the last 24 hours, and saved since the last run, into the
/// window mirror (see the module docs).
pub async fn inbound_mirror(intake: &Intake) -> anyhow::Result<MirrorSummary> {
    let now = intake.core.now();
    let object = &intake.core.settings.salesforce.message_object;
    let served = intake::ServedNumbers::of(&intake.core.settings);
    let scope = format!("{object} {}", served.soql());
    let last = last_run(intake, &scope).await?;
    let saved_since = last.map(|through| through - MIRROR_LOOKBACK);
    let soql = inbound_mirror_query(object, &served, now - crate::window::WINDOW, saved_since);
    let rows: Vec<InboundRow> = intake
        .salesforce
        .query(&soql)
        .await
        .context("reading inbound records from Salesforce")?;
    let newest = rows
        .iter()
        .filter_map(|row| row.modstamp.as_deref().and_then(parse_salesforce_datetime))
        .max();
    let mut summary = MirrorSummary {
        read: rows.len(),
        saved_since,
        ..Default::default()
    };
    let usable = usable_rows(intake, rows, &mut summary);
    let (counts, ended) = intake
        .core
        .store
        .write_in_chunks(usable, MIRROR_ROWS_PER_WRITE, fold)
        .await;
    // What was folded before a failed write stays folded; the cursor stays where it was, so the
    // next run reads those records again.
    ended?;
    (summary.folded, summary.known) = counts
        .into_iter()
        .fold((0, 0), |(f, k), (folded, known)| (f + folded, k + known));
    if let Some(through) = newest.max(last) {
        let cursor = serde_json::to_string(&Cursor { scope, through })?;
        intake
            .core
            .store
            .write(move |tx| cursors::set(tx, CURSOR, &cursor, now))
            .await?;
    }
    Ok(summary)
}

/// The newest `SystemModstamp` the last run over `scope` read; `None` if none did.
async fn last_run(intake: &Intake, scope: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    let value = intake
        .core
        .store
        .read(|conn| cursors::get(conn, CURSOR))
        .await?;
    Ok(value.and_then(|value| resume_from(&value, scope)))
}

/// The cursor `value`'s time if it was set for `scope`; `None` for another scope, or a value
/// that cannot be read (logged): the run then reads the whole day, which is always right.
fn resume_from(value: &str, scope: &str) -> Option<DateTime<Utc>> {
    match serde_json::from_str::<Cursor>(value) {
        Ok(cursor) => (cursor.scope == scope).then_some(cursor.through),
        Err(error) => {
            tracing::warn!(%error, cursor = CURSOR, "the inbound mirror's cursor is unreadable; reading the whole last 24 h");
            None
        }
    }
}

/// The rows the mirror can use; each other one is counted in `summary` and logged with its Id.
fn usable_rows(intake: &Intake, rows: Vec<InboundRow>, summary: &mut MirrorSummary) -> Vec<Usable> {
    let default_number = &intake.core.settings.whatsapp.default_phone_number_id;
    let region = intake.core.default_region;
    let mut usable = Vec::new();
    for row in rows {
        let keys = sender_keys(&row, region);
        let at = row
            .received_at
            .as_deref()
            .and_then(parse_salesforce_datetime);
        let number = row
            .business_number_id
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| default_number.clone())
            .parse::<BusinessNumberId>();
        match (keys, at, number) {
            (Some(keys), Some(at), Ok(number)) => usable.push((number, keys, at, row.wamid)),
            _ => {
                tracing::warn!(record_id = %row.id, "inbound record skipped by the window mirror: From_Phone__c must be a phone number or From_User_Id__c a BSUID, Received_At__c set and the business number a phone_number_id");
                summary.unusable += 1;
            }
        }
    }
    usable
}

/// One write of [`inbound_mirror`]: folds `rows` into the mirror; how many were folded and how
/// many were known already.
fn fold(tx: &rusqlite::Transaction, rows: &[Usable]) -> Result<(usize, usize), StoreError> {
    let (mut folded, mut known) = (0, 0);
    for (number, keys, at, wamid) in rows {
        // Messages our webhook stored already went through its own rules (a reaction does not
        // open the window); only other tools' records are folded in.
        let ours = match wamid {
            Some(wamid) => dedupe::seen(tx, &format!("inbound:{wamid}"))?,
            None => false,
        };
        if ours {
            known += 1;
        } else {
            for customer in keys {
                inbound::record_inbound(tx, number, customer, *at)?;
            }
            folded += 1;
        }
    }
    Ok((folded, known))
}

/// The SOQL for inbound records received since `received_since` (and, when given, saved since
/// `saved_since`), of the served numbers only: each instance's window mirror holds its own
/// numbers' conversations.
fn inbound_mirror_query(
    object: &str,
    served: &intake::ServedNumbers,
    received_since: DateTime<Utc>,
    saved_since: Option<DateTime<Utc>>,
) -> String {
    let saved = saved_since
        .map(|at| format!(" AND SystemModstamp >= {}", soql_datetime(at)))
        .unwrap_or_default();
    format!(
        "SELECT Id, From_Phone__c, From_User_Id__c, Business_Number_Id__c, Received_At__c, WhatsApp_Message_Id__c, SystemModstamp \
         FROM {object} WHERE Direction__c = 'Inbound' AND Received_At__c >= {since}{saved} AND {served} \
         ORDER BY Received_At__c ASC",
        since = soql_datetime(received_since),
        served = served.soql(),
    )
}

/// The keys an inbound record names its sender by: the phone (as its wa_id) and the BSUID, each
/// when present and well formed; `None` when the record gives neither, or a phone that is not a
/// number (a record that gets its one key wrong is not trusted for the other). Both keys open the
/// window, so a reply by either is allowed; the identity store joins the two persons when a
/// webhook shows both.
fn sender_keys(
    row: &InboundRow,
    region: Option<phonenumber::country::Id>,
) -> Option<Vec<CustomerId>> {
    let given = |field: &Option<String>| {
        field
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    let mut keys = Vec::new();
    if let Some(phone) = given(&row.from_phone) {
        keys.push(CustomerId::from_phone(&E164::parse(&phone, region).ok()?));
    }
    if let Some(user_id) = given(&row.from_user_id) {
        keys.push(CustomerId::user_id(&user_id).ok()?);
    }
    (!keys.is_empty()).then_some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbound_mirror_reads_only_the_served_numbers_inbound_records() {
        let served = intake::ServedNumbers::new(vec!["111".into()], false);
        let since = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();

        let soql = inbound_mirror_query("WhatsApp_Message__c", &served, since, None);

        assert!(soql.contains(
            "WHERE Direction__c = 'Inbound' AND Received_At__c >= 2026-11-24T15:00:00Z AND (Business_Number_Id__c IN ('111')) ORDER BY"
        ));
    }

    #[test]
    fn after_a_run_the_mirror_asks_only_for_records_saved_since_less_the_lookback() {
        let served = intake::ServedNumbers::new(vec!["111".into()], false);
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let last = at("2026-11-25T14:50:00Z");

        let soql = inbound_mirror_query(
            "WhatsApp_Message__c",
            &served,
            at("2026-11-24T15:00:00Z"),
            Some(last - MIRROR_LOOKBACK),
        );

        assert!(soql.contains(
            "AND Received_At__c >= 2026-11-24T15:00:00Z AND SystemModstamp >= 2026-11-25T14:45:00Z AND (Business_Number_Id__c IN ('111'))"
        ), "{soql}");
    }

    #[test]
    fn a_cursor_resumes_only_the_scope_it_was_set_for() {
        let through = DateTime::parse_from_rfc3339("2026-11-25T14:50:00Z")
            .unwrap()
            .to_utc();
        let value = serde_json::to_string(&Cursor {
            scope: "WhatsApp_Message__c (Business_Number_Id__c IN ('111'))".into(),
            through,
        })
        .unwrap();

        assert_eq!(
            resume_from(
                &value,
                "WhatsApp_Message__c (Business_Number_Id__c IN ('111'))"
            ),
            Some(through)
        );
        assert_eq!(
            resume_from(
                &value,
                "WhatsApp_Message__c (Business_Number_Id__c IN ('111', '222'))"
            ),
            None,
            "a shard serving another number reads its whole day"
        );
        assert_eq!(resume_from("not json", "anything"), None);
    }
}
