//! The outbound journal: one row per `WhatsApp_Message__c` record sfwa has taken on, keyed by its
//! 18-character Salesforce Id.
//!
//! This is what makes guarantee 1 ("never sent twice") hold across polls, replays and crashes:
//! 1. [`claim`] inserts the row (`Claimed`). A record that a poll or a replayed event returns again
//!    gets [`Claim::Existing`] and is not dispatched again.
//! 2. [`mark_sending`] is committed *before* the HTTP call. After a crash, a `Sending` row means "the
//!    outcome is unknown": the request may or may not have reached Meta.
//! 3. The response settles it ([`mark_sent`] with the wamid, [`mark_failed`], or [`schedule_retry`]
//!    for a send that provably did not happen). If no response ever came, the status webhook's
//!    `biz_opaque_callback_data` echo (the record Id) settles it through [`apply_status`]; only rows
//!    still `Sending` past the grace period ([`stuck_sending`]) may be re-sent.
//!
//! A `Claimed` row returned as `Existing` with no `next_attempt_at` was claimed but never reached
//! `Sending` (sfwa stopped in between): no request was made, so it is safe to dispatch.
//!
//! States only move forward along the ladder of [`MessageStatus`] (guarantee 3). Two steps back,
//! both allowed only while no wamid is known (WhatsApp never accepted the message, so nothing can
//! be sent twice): `Sending` → `Claimed` is [`schedule_retry`]; `Failed` → `Claimed` is [`rearm`],
//! for a record a person set back to Queued in Salesforce.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql};

use super::db::{limit_param, optional_time_column, time_column, to_millis};
use super::error::StoreError;
use crate::domain::ids::Wamid;
use crate::domain::sf_id::SfId;
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::status_dedupe_key;

/// Where an outbound record is. `Claimed` is the journal's name for Salesforce's `Queued`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JournalState {
    Claimed,
    Sending,
    Sent,
    Failed,
    Delivered,
    Read,
}

impl JournalState {
    pub const ALL: [JournalState; 6] = [
        JournalState::Claimed,
        JournalState::Sending,
        JournalState::Sent,
        JournalState::Failed,
        JournalState::Delivered,
        JournalState::Read,
    ];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalState::Claimed => "claimed",
            JournalState::Sending => "sending",
            JournalState::Sent => "sent",
            JournalState::Failed => "failed",
            JournalState::Delivered => "delivered",
            JournalState::Read => "read",
        }
    }

    /// The status this state stands for on Salesforce's ladder.
    pub fn as_status(self) -> MessageStatus {
        match self {
            JournalState::Claimed => MessageStatus::Queued,
            JournalState::Sending => MessageStatus::Sending,
            JournalState::Sent => MessageStatus::Sent,
            JournalState::Failed => MessageStatus::Failed,
            JournalState::Delivered => MessageStatus::Delivered,
            JournalState::Read => MessageStatus::Read,
        }
    }

    /// The journal state for an outbound status; `None` for `Received` (inbound only).
    pub fn from_status(status: MessageStatus) -> Option<JournalState> {
        JournalState::ALL
            .into_iter()
            .find(|state| state.as_status() == status)
    }

    /// Whether moving to `next` is progress on the ladder.
    pub fn advances_to(self, next: JournalState) -> bool {
        self.as_status().advances_to(next.as_status())
    }

    /// Past the send: only status webhooks change it now, and retention may delete it.
    pub fn is_finished(self) -> bool {
        !matches!(self, JournalState::Claimed | JournalState::Sending)
    }
}

impl fmt::Display for JournalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a journal state")]
pub struct UnknownJournalState(pub String);

impl FromStr for JournalState {
    type Err = UnknownJournalState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JournalState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownJournalState(text.to_string()))
    }
}

impl ToSql for JournalState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JournalState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// One journal row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    pub record_id: SfId,
    pub state: JournalState,
    /// The WhatsApp phone_number_id it was (or is being) sent from; set by [`mark_sending`].
    pub business_number_id: Option<String>,
    /// The recipient; set by [`mark_sending`].
    pub wa_id: Option<String>,
    /// Meta's message id, once the response or a status webhook told us.
    pub wamid: Option<String>,
    /// Failed attempts so far, as counted by the dispatcher ([`schedule_retry`]).
    pub attempts: u32,
    /// When a `Claimed` row is due again after a retryable failure.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the last HTTP send started.
    pub sending_since: Option<DateTime<Utc>>,
    pub error_code: Option<String>,
    /// Meta's timestamp of the last status applied from a webhook.
    pub status_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the current run of rate-limit refusals began (see [`schedule_rate_limited`]).
    pub rate_limited_since: Option<DateTime<Utc>>,
    /// Rate-limit refusals so far; they never count towards `attempts`.
    pub rate_limited_count: u32,
}

/// `SELECT <the columns entry_from_row reads> FROM journal <rest>`, as one literal: the hot
/// lookups (by record, by wamid) run for every status webhook, so no SQL is formatted per call.
macro_rules! select_entries {
    ($rest:literal) => {
        concat!(
            "SELECT record_id, state, business_number_id, wa_id, wamid, attempts, \
             next_attempt_at, sending_since, error_code, status_at, created_at, updated_at, \
             rate_limited_since, rate_limited_count FROM journal ",
            $rest
        )
    };
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        record_id: row.get(0)?,
        state: row.get(1)?,
        business_number_id: row.get(2)?,
        wa_id: row.get(3)?,
        wamid: row.get(4)?,
        attempts: row.get(5)?,
        next_attempt_at: optional_time_column(row, 6)?,
        sending_since: optional_time_column(row, 7)?,
        error_code: row.get(8)?,
        status_at: optional_time_column(row, 9)?,
        created_at: time_column(row, 10)?,
        updated_at: time_column(row, 11)?,
        rate_limited_since: optional_time_column(row, 12)?,
        rate_limited_count: row.get(13)?,
    })
}

/// What [`claim`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The record was not journaled; it now is, as `Claimed`. Dispatch it.
    New,
    /// The record was already journaled; do not dispatch it again (see the module docs for the one
    /// `Claimed` case that is safe to resume).
    Existing(Box<JournalEntry>),
}

/// Journals `record_id` as `Claimed` unless it already is.
#[tracing::instrument(level = "debug", skip_all, fields(record_id = %record_id))]
pub fn claim(conn: &Connection, record_id: &SfId, now: DateTime<Utc>) -> Result<Claim, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO journal (record_id, state, created_at, updated_at)
             VALUES (?1, 'claimed', ?2, ?2) ON CONFLICT (record_id) DO NOTHING",
        )?
        .execute(params![record_id, to_millis(now)])?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let entry = get(conn, record_id)?.ok_or_else(|| StoreError::NotJournaled {
        record_id: record_id.to_string(),
    })?;
    Ok(Claim::Existing(Box::new(entry)))
}

/// Records that the HTTP send is about to start. Commit this before making the request.
#[tracing::instrument(level = "debug", skip_all, fields(record_id = %record_id))]
pub fn mark_sending(
    conn: &Connection,
    record_id: &SfId,
    business_number_id: &str,
    wa_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Only a claimed row free to send moves. A claimed row waiting for a later retry is not free
    // either: whoever read it before its last attempt was rescheduled (another process, a stale
    // orphan scan) must not jump the queue, or a rate limit would be hit again at once.
    let moved = conn
        .prepare_cached(
            "UPDATE journal SET state = 'sending', business_number_id = ?2, wa_id = ?3,
                 sending_since = ?4, next_attempt_at = NULL, updated_at = ?4
             WHERE record_id = ?1 AND state = 'claimed'
                 AND (next_attempt_at IS NULL OR next_attempt_at <= ?4)",
        )?
        .execute(params![
            record_id,
            business_number_id,
            wa_id,
            to_millis(now)
        ])?;
    if moved == 1 {
        return Ok(());
    }
    // It did not move: the row read only now, to say why.
    let entry = require(conn, record_id)?;
    let state = match entry.next_attempt_at.filter(|due| *due > now) {
        Some(due) => format!("{} until {due}", entry.state),
        None => entry.state.to_string(),
    };
    Err(StoreError::NotClaimed {
        record_id: record_id.to_string(),
        state,
    })
}

/// Records Meta's acceptance of the send. A status webhook may have overtaken the response, so this
/// never moves the state back (a `Delivered` row stays `Delivered`); the wamid is kept if already known.
/// Returns whether the row moved to `Sent` (`false`: a webhook already took it further, so the
/// record must not be told `Sent` again).
#[tracing::instrument(level = "debug", skip_all, fields(record_id = %record_id, wamid = %wamid))]
pub fn mark_sent(
    conn: &Connection,
    record_id: &SfId,
    wamid: &Wamid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // The usual case, a row still `Sending`: one statement, no read first.
    let moved = conn
        .prepare_cached(
            "UPDATE journal SET state = 'sent', wamid = coalesce(wamid, ?2), updated_at = ?3
             WHERE record_id = ?1 AND state = 'sending'",
        )?
        .execute(params![record_id, wamid, to_millis(now)])?;
    if moved == 1 {
        return Ok(true);
    }
    let entry = require(conn, record_id)?;
    let state = forward(entry.state, JournalState::Sent);
    conn.prepare_cached(
        "UPDATE journal SET state = ?2, wamid = coalesce(wamid, ?3), updated_at = ?4
         WHERE record_id = ?1",
    )?
    .execute(params![record_id, state, wamid, to_millis(now)])?;
    Ok(state != entry.state)
}

/// Records a failure decided by sfwa or returned synchronously by Meta (`error_code` is what goes to
/// `Error_Code__c`). Ignored if the row already moved past `Failed`.
#[tracing::instrument(level = "debug", skip_all, fields(record_id = %record_id, error_code = %error_code))]
pub fn mark_failed(
    conn: &Connection,
    record_id: &SfId,
    error_code: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let entry = require(conn, record_id)?;
    if !entry.state.advances_to(JournalState::Failed) {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE journal SET state = 'failed', error_code = ?2, next_attempt_at = NULL, updated_at = ?3
         WHERE record_id = ?1",
    )?
    .execute(params![record_id, error_code, to_millis(now)])?;
    Ok(())
}

/// Puts the row back to `Claimed`, due at `next_attempt_at`, after a send that provably did not
/// happen (a retryable error, or no echo past the grace period). Returns `false`, changing nothing,
/// if the row has moved on meanwhile (a wamid or a later state is known): then it must not be re-sent.
#[tracing::instrument(level = "debug", skip_all, fields(record_id = %record_id, attempts))]
pub fn schedule_retry(
    conn: &Connection,
    record_id: &SfId,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE journal SET state = 'claimed', attempts = ?2, next_attempt_at = ?3,
                 sending_since = NULL, updated_at = ?4
             WHERE record_id = ?1 AND state IN ('claimed', 'sending') AND wamid IS NULL",
        )?
        .execute(params![
            record_id,
            attempts,
            to_millis(next_attempt_at),
            to_millis(now)
        ])?;
    Ok(changed == 1)
}

/// Lets go of a claim whose record is no longer waiting in Salesforce (canceled, changed or deleted
/// before it was sent): the row is finished as `Failed` with `NOT_QUEUED`, locally only — nothing is
/// written back, the record in Salesforce says what happened to it. Only a `Claimed` row without a
/// wamid is changed (nothing was ever sent for it).
pub fn withdraw(
    conn: &Connection,
    record_id: &SfId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE journal SET state = 'failed', error_code = 'NOT_QUEUED', next_attempt_at = NULL,
                 updated_at = ?2
             WHERE record_id = ?1 AND state = 'claimed' AND wamid IS NULL",
        )?
        .execute(params![record_id, to_millis(now)])?;
    Ok(changed == 1)
}

/// Takes a `Failed` row back to `Claimed`, as if new (attempts, rate-limit counters, error and
/// retry time reset): its record was set back to Queued by a person after the failure had been
/// written back ([`crate::pipeline::intake`] checks that). Only a row without a wamid moves:
/// WhatsApp never accepted that message, so sending it now is its first delivery, not a second
/// one. `false`, changing nothing, for any other row.
#[tracing::instrument(level = "debug", skip_all, fields(record_id = %record_id))]
pub fn rearm(conn: &Connection, record_id: &SfId, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE journal SET state = 'claimed', attempts = 0, next_attempt_at = NULL,
                 sending_since = NULL, error_code = NULL, status_at = NULL,
                 rate_limited_since = NULL, rate_limited_count = 0, updated_at = ?2
             WHERE record_id = ?1 AND state = 'failed' AND wamid IS NULL",
        )?
        .execute(params![record_id, to_millis(now)])?;
    Ok(changed == 1)
}

/// What [`schedule_rate_limited`] recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitedWait {
    /// When the current run of refusals began: the wait is bounded from here.
    pub since: DateTime<Utc>,
    /// Refusals in this run, this one included.
    pub count: u32,
}

/// Like [`schedule_retry`] for a rate-limit refusal (Meta asked to slow down; nothing was sent):
/// back to `Claimed`, due at `next_attempt_at`, **without** counting an attempt. The first refusal
/// of a run stamps `rate_limited_since`. `None`, changing nothing, if the row moved on meanwhile.
#[tracing::instrument(level = "debug", skip_all, fields(record_id = %record_id))]
pub fn schedule_rate_limited(
    conn: &Connection,
    record_id: &SfId,
    next_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<RateLimitedWait>, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE journal SET state = 'claimed', next_attempt_at = ?2, sending_since = NULL,
                 rate_limited_since = coalesce(rate_limited_since, ?3),
                 rate_limited_count = rate_limited_count + 1, updated_at = ?3
             WHERE record_id = ?1 AND state IN ('claimed', 'sending') AND wamid IS NULL",
        )?
        .execute(params![
            record_id,
            to_millis(next_attempt_at),
            to_millis(now)
        ])?;
    if changed == 0 {
        return Ok(None);
    }
    let entry = require(conn, record_id)?;
    Ok(Some(RateLimitedWait {
        since: entry.rate_limited_since.unwrap_or(now),
        count: entry.rate_limited_count,
    }))
}

/// `Claimed` rows with no retry time, last touched before `touched_before`: claimed and then
/// abandoned before `Sending` (sfwa was killed between the stream's claim and the send, or a
/// dispatch errored). Nothing was sent for them, so they are safe to dispatch; the caller excludes
/// the ones its own sends are working on right now. Oldest first.
pub fn orphaned_claims(
    conn: &Connection,
    touched_before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut statement = conn.prepare_cached(select_entries!(
        "WHERE state = 'claimed' AND next_attempt_at IS NULL AND updated_at < ?1
         ORDER BY updated_at, record_id LIMIT ?2"
    ))?;
    let rows = statement.query_map(
        params![to_millis(touched_before), limit_param(limit)],
        entry_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `Claimed` rows whose retry is due, earliest first.
pub fn due_retries(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut statement = conn.prepare_cached(select_entries!(
        "WHERE state = 'claimed' AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, record_id LIMIT ?2"
    ))?;
    let rows = statement.query_map(params![to_millis(now), limit_param(limit)], entry_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `Sending` rows whose send started before `older_than` and that neither a response nor a status
/// echo resolved: their outcome is unknown past the grace period.
pub fn stuck_sending(
    conn: &Connection,
    older_than: DateTime<Utc>,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut statement = conn.prepare_cached(select_entries!(
        "WHERE state = 'sending' AND sending_since < ?1
         ORDER BY sending_since, record_id"
    ))?;
    let rows = statement.query_map([to_millis(older_than)], entry_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, record_id: &SfId) -> Result<Option<JournalEntry>, StoreError> {
    Ok(conn
        .prepare_cached(select_entries!("WHERE record_id = ?1"))?
        .query_row([record_id], entry_from_row)
        .optional()?)
}

pub fn find_by_wamid(conn: &Connection, wamid: &Wamid) -> Result<Option<JournalEntry>, StoreError> {
    Ok(conn
        .prepare_cached(select_entries!("WHERE wamid = ?1"))?
        .query_row([wamid], entry_from_row)
        .optional()?)
}

/// The latest message WhatsApp accepted for one (business number, customer) pair: its record
/// and when its send started (the time an inbound reply is measured from, see
/// `pipeline::inbound_owner`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatestSent {
    pub record_id: String,
    /// `sending_since` of that row; `None` only for a row whose wamid a webhook taught it after
    /// its send time was cleared (then no time is known).
    pub sent_at: Option<DateTime<Utc>>,
}

/// The latest message WhatsApp accepted for each (business number, wa_id) pair asked about: what
/// an inbound message from that customer to that number most likely answers. Per pair, never per
/// customer alone: a customer who talks to two of the business's numbers has two conversations.
/// Pairs with no such message are left out. One query for all pairs, on the `journal_by_customer`
/// index (migration 4): its cost follows the customers asked about, not the size of the journal.
pub fn latest_accepted_to(
    conn: &Connection,
    pairs: &[(String, String)],
) -> Result<std::collections::HashMap<(String, String), LatestSent>, StoreError> {
    let mut found = std::collections::HashMap::new();
    if pairs.is_empty() {
        return Ok(found);
    }
    let wa_ids: Vec<&str> = pairs.iter().map(|(_, wa_id)| wa_id.as_str()).collect();
    let mut statement = conn.prepare(&latest_accepted_sql(wa_ids.len()))?;
    let rows = statement.query_map(rusqlite::params_from_iter(wa_ids), |row| {
        Ok((
            row.get::<_, Option<String>>(0)?,
            row.get::<_, Option<String>>(1)?,
            LatestSent {
                record_id: row.get::<_, String>(2)?,
                sent_at: optional_time_column(row, 3)?,
            },
        ))
    })?;
    for row in rows {
        if let (Some(number), Some(wa_id), latest) = row? {
            let pair = (number, wa_id);
            if pairs.contains(&pair) {
                found.insert(pair, latest);
            }
        }
    }
    Ok(found)
}

/// [`latest_accepted_to`]'s query for `customers` wa_ids. SQLite returns the bare columns of the
/// row holding the max().
fn latest_accepted_sql(customers: usize) -> String {
    let placeholders = vec!["?"; customers].join(", ");
    format!(
        "SELECT business_number_id, wa_id, record_id, max(sending_since) FROM journal
         WHERE wamid IS NOT NULL AND wa_id IN ({placeholders})
         GROUP BY business_number_id, wa_id"
    )
}

/// What [`apply_status`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusApplied {
    /// The row moved forward from `previous`; write the new status back to `record_id`.
    Applied {
        record_id: SfId,
        previous: JournalState,
    },
    /// A late status (e.g. `delivered` after `read`): the state stays; only its time is news.
    Ignored {
        record_id: SfId,
        current: JournalState,
    },
    /// This status of this wamid was applied before (Meta redelivers): nothing changes.
    Repeated,
    /// No row has this wamid or record Id (not ours, or deleted by retention).
    Unknown,
}

/// Applies a status webhook monotonically (guarantee 3), once.
///
/// The row is found by `wamid`, else by `record_id` (the `biz_opaque_callback_data` echo). A row
/// found by record Id that has no wamid yet learns this one, whatever the status does: that is how a
/// send whose response never arrived (`Sending`, or `Claimed` again after a scheduled retry) is
/// resolved as having happened, and [`schedule_retry`] then refuses to re-send it. A row with a
/// different wamid keeps its own (the status still counts: it is about the same record).
///
/// A repeat is [`StatusApplied::Repeated`]: the row keeps which statuses of its own wamid it
/// applied (`statuses_seen`, a bit each, written by the same statement as the state); a status of
/// another wamid than the row's, or of none the journal knows, is remembered in `webhook_seen`
/// ([`dedupe`](super::dedupe)) instead. A row keeps its first wamid for good, so its bits always
/// speak of that one.
pub fn apply_status(
    conn: &Connection,
    wamid: &Wamid,
    record_id: Option<&SfId>,
    status: MessageStatus,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<StatusApplied, StoreError> {
    Ok(apply_status_learning(conn, wamid, record_id, status, at, now)?.applied)
}

/// What [`apply_status_learning`] did: [`StatusApplied`], and whether the row learned the wamid
/// from this status (it was found by the echoed record Id and had none) — the record is then told
/// its wamid too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusOutcome {
    pub applied: StatusApplied,
    pub wamid_learned: bool,
}

/// What a status needs of its journal row: a narrow read, since it runs for every status webhook.
struct StatusRow {
    rowid: i64,
    record_id: SfId,
    state: JournalState,
    has_wamid: bool,
    statuses_seen: i64,
}

const STATUS_ROW_BY_WAMID: &str = "SELECT rowid, record_id, state, wamid IS NOT NULL, \
     statuses_seen FROM journal WHERE wamid = ?1";
const STATUS_ROW_BY_RECORD: &str = "SELECT rowid, record_id, state, wamid IS NOT NULL, \
     statuses_seen FROM journal WHERE record_id = ?1";

fn status_row(
    conn: &Connection,
    sql: &str,
    key: &dyn ToSql,
) -> Result<Option<StatusRow>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([key], |row| {
            Ok(StatusRow {
                rowid: row.get(0)?,
                record_id: row.get(1)?,
                state: row.get(2)?,
                has_wamid: row.get(3)?,
                statuses_seen: row.get(4)?,
            })
        })
        .optional()?)
}

/// The bit of `statuses_seen` that says a status moving the row to `state` was applied
/// (schema 12; only finished states arrive by webhook).
fn seen_bit(state: JournalState) -> i64 {
    match state {
        JournalState::Claimed | JournalState::Sending => 0,
        JournalState::Sent => 1,
        JournalState::Failed => 2,
        JournalState::Delivered => 4,
        JournalState::Read => 8,
    }
}

/// Whether [`apply_status`] has taken this status of `wamid` (on the row holding the wamid, or in
/// `webhook_seen` when no row does).
pub fn status_seen(
    conn: &Connection,
    wamid: &Wamid,
    status: MessageStatus,
) -> Result<bool, StoreError> {
    let bit = JournalState::from_status(status).map_or(0, seen_bit);
    match status_row(conn, STATUS_ROW_BY_WAMID, wamid)? {
        Some(entry) if entry.statuses_seen & bit != 0 => Ok(true),
        _ => super::dedupe::seen(conn, &status_dedupe_key(wamid, status)),
    }
}

/// [`apply_status`], also saying whether the row learned the wamid from this status. One lookup
/// (by wamid, else by the echoed record Id), a `webhook_seen` key only for a wamid not the row's
/// own, and at most one UPDATE: the webhook path's share of the journal.
#[tracing::instrument(level = "debug", skip_all, fields(wamid = %wamid, record_id = ?record_id, status = %status))]
pub fn apply_status_learning(
    conn: &Connection,
    wamid: &Wamid,
    record_id: Option<&SfId>,
    status: MessageStatus,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<StatusOutcome, StoreError> {
    let target = match JournalState::from_status(status) {
        Some(state) if state.is_finished() => state,
        _ => return Err(StoreError::NotAWebhookStatus(status)),
    };
    let outcome = |applied| StatusOutcome {
        applied,
        wamid_learned: false,
    };
    let (entry, own_wamid) = match status_row(conn, STATUS_ROW_BY_WAMID, wamid)? {
        Some(entry) => (Some(entry), true),
        None => match record_id {
            // Found by the echo with no wamid: it learns this one (so it is its own from here).
            // Found by the echo with another wamid: it keeps its own.
            Some(record_id) => {
                let entry = status_row(conn, STATUS_ROW_BY_RECORD, record_id)?;
                let learns = entry.as_ref().is_some_and(|entry| !entry.has_wamid);
                (entry, learns)
            }
            None => (None, false),
        },
    };
    // The row's bits speak only of its own wamid; another wamid's status sets none.
    let bit = if own_wamid { seen_bit(target) } else { 0 };
    let first_time = match &entry {
        Some(entry) if own_wamid => entry.statuses_seen & bit == 0,
        _ => super::dedupe::first_seen(conn, &status_dedupe_key(wamid, status), now)?,
    };
    if !first_time {
        return Ok(outcome(StatusApplied::Repeated));
    }
    let Some(entry) = entry else {
        return Ok(outcome(StatusApplied::Unknown));
    };
    let wamid_learned = !entry.has_wamid;
    let advances = entry.state.advances_to(target);
    record_status(
        conn,
        &entry,
        advances.then_some(target),
        at,
        now,
        wamid_learned.then_some(wamid),
        bit,
    )?;
    let applied = if advances {
        StatusApplied::Applied {
            record_id: entry.record_id,
            previous: entry.state,
        }
    } else {
        StatusApplied::Ignored {
            record_id: entry.record_id,
            current: entry.state,
        }
    };
    Ok(StatusOutcome {
        applied,
        wamid_learned,
    })
}

/// Writes what a status changed on its row in one statement: the state it advanced to (with
/// Meta's time), the wamid it taught, the status's `statuses_seen` bit (0: none to set). A row
/// that already holds its wamid is updated without naming the column, so the wamid and customer
/// indexes are left alone; a late status of a row that learns nothing only sets its bit.
fn record_status(
    conn: &Connection,
    entry: &StatusRow,
    advanced_to: Option<JournalState>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    learned: Option<&Wamid>,
    bit: i64,
) -> Result<(), StoreError> {
    let (rowid, at, now) = (entry.rowid, to_millis(at), to_millis(now));
    match (advanced_to, learned) {
        (Some(state), None) => conn
            .prepare_cached(
                "UPDATE journal SET state = ?2, status_at = ?3, next_attempt_at = NULL,
                     updated_at = ?4, statuses_seen = statuses_seen | ?5
                 WHERE rowid = ?1",
            )?
            .execute(params![rowid, state, at, now, bit])?,
        (Some(state), Some(wamid)) => conn
            .prepare_cached(
                "UPDATE journal SET wamid = ?6, state = ?2, status_at = ?3, next_attempt_at = NULL,
                     updated_at = ?4, statuses_seen = statuses_seen | ?5
                 WHERE rowid = ?1",
            )?
            .execute(params![rowid, state, at, now, bit, wamid])?,
        (None, Some(wamid)) => conn
            .prepare_cached(
                "UPDATE journal SET wamid = ?2, updated_at = ?3, statuses_seen = statuses_seen | ?4
                 WHERE rowid = ?1",
            )?
            .execute(params![rowid, wamid, now, bit])?,
        (None, None) if bit != 0 => conn
            .prepare_cached(
                "UPDATE journal SET statuses_seen = statuses_seen | ?2 WHERE rowid = ?1",
            )?
            .execute(params![rowid, bit])?,
        (None, None) => 0,
    };
    Ok(())
}

/// Work not finished, for the queue-depth gauge: rows `claimed` (waiting to be sent or retried)
/// and rows `sending` (sent or being sent, outcome not yet known).
///
/// Counted in the partial indexes that hold exactly those rows (the orphan, retry and
/// unknown-outcome scans'), so a scrape reads as many entries as there is unfinished work: the
/// journal keeps finished rows for the retention period (a million at 100 messages a
/// minute for a week), and counting them by state was a scan of every row, ≈ 150 ms per
/// `/metrics` scrape at 1 M rows (docs/performance.md, twenty-sixth measurement).
pub fn unfinished(conn: &Connection) -> Result<(u64, u64), StoreError> {
    let (claimed, sending): (i64, i64) = conn
        .prepare_cached(UNFINISHED_SQL)?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok((
        u64::try_from(claimed).unwrap_or(0),
        u64::try_from(sending).unwrap_or(0),
    ))
}

/// [`unfinished`]'s counts: claimed rows without a retry time (`journal_orphaned_claims`) and with
/// one (`journal_due_retries`), rows sending (`journal_stuck_sending`).
const UNFINISHED_SQL: &str = "SELECT
     (SELECT count(*) FROM journal WHERE state = 'claimed' AND next_attempt_at IS NULL)
     + (SELECT count(*) FROM journal WHERE state = 'claimed' AND next_attempt_at IS NOT NULL),
     (SELECT count(*) FROM journal WHERE state = 'sending')";

/// Retention: deletes rows past the send (`Sent` and later) not updated since `cutoff`. Keep the
/// cutoff well beyond any chance of Salesforce returning the record as `Queued` again (its status was
/// written back long before) and beyond Meta's late `read` receipts, which afterwards find `Unknown`.
/// Deletes at most `limit` rows (the retention job deletes in bounded writes); returns how many.
pub fn delete_finished_before(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    super::db::delete_before(conn, DELETE_FINISHED_SQL, cutoff, limit)
}

/// A row is never updated before it was created, so the rows created before the cutoff (the
/// index that does not move as a message advances, migration 11) hold every row to delete.
const DELETE_FINISHED_SQL: &str = "DELETE FROM journal WHERE record_id IN (
     SELECT record_id FROM journal
     WHERE created_at < ?1 AND updated_at < ?1
       AND state IN ('sent', 'failed', 'delivered', 'read')
     LIMIT ?2)";

fn require(conn: &Connection, record_id: &SfId) -> Result<JournalEntry, StoreError> {
    get(conn, record_id)?.ok_or_else(|| StoreError::NotJournaled {
        record_id: record_id.to_string(),
    })
}

/// `next` if it is progress from `current`, else `current`.
fn forward(current: JournalState, next: JournalState) -> JournalState {
    if current.advances_to(next) {
        next
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{from_millis, query_plan, test_connection};
    use chrono::Duration;
    use MessageStatus::{Delivered, Failed, Read, Sent};

    const RECORD: &str = "a015g00000AbCdEAAV";

    fn w(wamid: &str) -> Wamid {
        wamid.parse().unwrap()
    }

    fn id(record_id: &str) -> SfId {
        record_id.parse().unwrap()
    }

    fn sent_row(conn: &Connection, record_id: &SfId, wamid: &str, now: DateTime<Utc>) {
        claim(conn, record_id, now).unwrap();
        mark_sending(conn, record_id, "PN1", "15550001", now).unwrap();
        mark_sent(conn, record_id, &w(wamid), now).unwrap();
    }

    #[test]
    fn the_latest_message_to_a_customer_is_found_through_the_index_not_a_scan() {
        let conn = test_connection();

        let plan = query_plan(&conn, &latest_accepted_sql(3), ["1", "2", "3"]);

        assert!(plan.contains("journal_by_customer"), "{plan}");
        assert!(!plan.contains("SCAN journal"), "{plan}");
    }

    #[test]
    fn the_unfinished_work_is_counted_in_its_partial_indexes_not_by_a_scan_of_the_journal() {
        let conn = test_connection();

        let plan = query_plan(&conn, UNFINISHED_SQL, []);

        for index in [
            "journal_orphaned_claims",
            "journal_due_retries",
            "journal_stuck_sending",
        ] {
            assert!(plan.contains(index), "{plan}");
        }
        assert!(
            plan.lines().all(|step| !step.ends_with("SCAN journal")),
            "{plan}"
        );
    }

    #[test]
    fn claimed_rows_with_and_without_a_retry_time_and_sending_rows_are_the_unfinished_work() {
        let conn = test_connection();
        let now = Utc::now();
        let ids = ["a015g00000AbCd1", "a015g00000AbCd2", "a015g00000AbCd3"];
        for record in ids {
            claim(&conn, &id(record), now).unwrap();
        }
        schedule_retry(&conn, &id(ids[1]), 1, now + Duration::minutes(5), now).unwrap();
        mark_sending(&conn, &id(ids[2]), "PN1", "15550001", now).unwrap();
        sent_row(&conn, &id(RECORD), "wamid.A", now);

        assert_eq!(unfinished(&conn).unwrap(), (2, 1));
    }

    #[test]
    fn a_record_claimed_twice_is_existing_the_second_time() {
        let conn = test_connection();
        let now = Utc::now();

        assert_eq!(claim(&conn, &id(RECORD), now).unwrap(), Claim::New);
        let second = claim(&conn, &id(RECORD), now).unwrap();

        let Claim::Existing(entry) = second else {
            panic!("expected Existing, got {second:?}");
        };
        assert_eq!(entry.state, JournalState::Claimed);
        assert_eq!(entry.record_id, RECORD);
    }

    #[test]
    fn a_sent_record_polled_again_is_existing_with_its_wamid() {
        let conn = test_connection();
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.A", now);

        let Claim::Existing(entry) = claim(&conn, &id(RECORD), now).unwrap() else {
            panic!("expected Existing");
        };

        assert_eq!(entry.state, JournalState::Sent);
        assert_eq!(entry.wamid.as_deref(), Some("wamid.A"));
        assert_eq!(entry.business_number_id.as_deref(), Some("PN1"));
        assert_eq!(find_by_wamid(&conn, &w("wamid.A")).unwrap(), Some(*entry));
    }

    #[test]
    fn only_a_claimed_record_may_start_sending() {
        let conn = test_connection();
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.A", now);

        let error = mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap_err();

        assert!(matches!(error, StoreError::NotClaimed { .. }), "{error}");
        assert!(matches!(
            mark_sending(&conn, &id("a015g00000ZZZZZAAV"), "PN1", "1", now),
            Err(StoreError::NotJournaled { .. })
        ));
    }

    #[test]
    fn statuses_move_forward_late_ones_are_ignored_and_repeats_are_repeated() {
        let conn = test_connection();
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.A", now);
        let applied = |previous| StatusApplied::Applied {
            record_id: id(RECORD),
            previous,
        };
        let ignored = |current| StatusApplied::Ignored {
            record_id: id(RECORD),
            current,
        };

        let delivered = apply_status(&conn, &w("wamid.A"), None, Delivered, now, now).unwrap();
        let duplicate = apply_status(&conn, &w("wamid.A"), None, Delivered, now, now).unwrap();
        let late_failed = apply_status(&conn, &w("wamid.A"), None, Failed, now, now).unwrap();
        let read = apply_status(&conn, &w("wamid.A"), None, Read, now, now).unwrap();
        let late_delivered = apply_status(&conn, &w("wamid.A"), None, Delivered, now, now).unwrap();
        let late_sent = apply_status(&conn, &w("wamid.A"), None, Sent, now, now).unwrap();
        let late_failed_again = apply_status(&conn, &w("wamid.A"), None, Failed, now, now).unwrap();

        assert_eq!(delivered, applied(JournalState::Sent));
        assert_eq!(duplicate, StatusApplied::Repeated);
        assert_eq!(late_failed, ignored(JournalState::Delivered));
        assert_eq!(read, applied(JournalState::Delivered));
        assert_eq!(late_delivered, StatusApplied::Repeated);
        assert_eq!(
            late_sent,
            ignored(JournalState::Read),
            "the send, not a status, made it Sent"
        );
        assert_eq!(late_failed_again, StatusApplied::Repeated);
        assert_eq!(
            get(&conn, &id(RECORD)).unwrap().unwrap().state,
            JournalState::Read
        );
    }

    fn seen_keys(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM webhook_seen", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_repeated_status_of_a_rows_own_wamid_is_known_from_the_row_not_from_webhook_seen() {
        let conn = test_connection();
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.A", now);
        assert!(!status_seen(&conn, &w("wamid.A"), Delivered).unwrap());

        let first = apply_status(&conn, &w("wamid.A"), None, Delivered, now, now).unwrap();
        let again =
            apply_status(&conn, &w("wamid.A"), Some(&id(RECORD)), Delivered, now, now).unwrap();

        assert!(matches!(first, StatusApplied::Applied { .. }));
        assert_eq!(again, StatusApplied::Repeated);
        assert!(status_seen(&conn, &w("wamid.A"), Delivered).unwrap());
        assert!(!status_seen(&conn, &w("wamid.A"), Read).unwrap());
        assert_eq!(seen_keys(&conn), 0, "no key written for a row's own wamid");
    }

    #[test]
    fn a_status_learning_its_wamid_is_remembered_on_the_row_it_taught() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();

        let first = apply_status(&conn, &w("wamid.B"), Some(&id(RECORD)), Sent, now, now).unwrap();
        let again = apply_status(&conn, &w("wamid.B"), Some(&id(RECORD)), Sent, now, now).unwrap();

        assert!(matches!(first, StatusApplied::Applied { .. }));
        assert_eq!(again, StatusApplied::Repeated);
        assert_eq!(seen_keys(&conn), 0);
    }

    #[test]
    fn statuses_of_another_wamid_or_of_no_row_are_deduplicated_by_their_key() {
        let conn = test_connection();
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.OWN", now);
        let echo = Some(id(RECORD));
        let nobody = Some(id("a015g00000NoNeEAAV"));

        let other = apply_status(&conn, &w("wamid.D"), echo.as_ref(), Delivered, now, now).unwrap();
        let other_again =
            apply_status(&conn, &w("wamid.D"), echo.as_ref(), Delivered, now, now).unwrap();
        let unknown = apply_status(&conn, &w("wamid.X"), nobody.as_ref(), Read, now, now).unwrap();
        let unknown_again =
            apply_status(&conn, &w("wamid.X"), nobody.as_ref(), Read, now, now).unwrap();
        let own = apply_status(&conn, &w("wamid.OWN"), None, Delivered, now, now).unwrap();

        assert!(matches!(other, StatusApplied::Applied { .. }));
        assert_eq!(other_again, StatusApplied::Repeated);
        assert_eq!(unknown, StatusApplied::Unknown);
        assert_eq!(unknown_again, StatusApplied::Repeated);
        assert!(
            matches!(own, StatusApplied::Ignored { .. }),
            "the row's own wamid's delivered is news to its bits: {own:?}"
        );
        assert_eq!(seen_keys(&conn), 2);
        assert!(status_seen(&conn, &w("wamid.D"), Delivered).unwrap());
        assert!(status_seen(&conn, &w("wamid.X"), Read).unwrap());
    }

    #[test]
    fn delivered_after_failed_is_applied_because_the_customer_got_it() {
        let conn = test_connection();
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.A", now);
        apply_status(&conn, &w("wamid.A"), None, Failed, now, now).unwrap();

        let outcome = apply_status(&conn, &w("wamid.A"), None, Delivered, now, now).unwrap();

        assert!(matches!(
            outcome,
            StatusApplied::Applied {
                previous: JournalState::Failed,
                ..
            }
        ));
    }

    #[test]
    fn a_status_for_an_unknown_wamid_and_record_is_unknown() {
        let conn = test_connection();
        let now = Utc::now();

        let outcome = apply_status(
            &conn,
            &w("wamid.X"),
            Some(&id("a015g00000NoNeEAAV")),
            Read,
            now,
            now,
        )
        .unwrap();

        assert_eq!(outcome, StatusApplied::Unknown);
    }

    #[test]
    fn a_status_that_no_webhook_reports_is_refused() {
        let conn = test_connection();
        let now = Utc::now();
        let error = apply_status(
            &conn,
            &w("wamid.A"),
            None,
            MessageStatus::Received,
            now,
            now,
        )
        .unwrap_err();
        assert!(matches!(
            error,
            StoreError::NotAWebhookStatus(MessageStatus::Received)
        ));
    }

    #[test]
    fn the_record_id_echo_resolves_a_sending_row_without_a_wamid() {
        let conn = test_connection();
        let start = Utc::now();
        claim(&conn, &id(RECORD), start).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", start).unwrap();
        let later = start + Duration::minutes(15);
        assert_eq!(
            stuck_sending(&conn, later - Duration::minutes(10))
                .unwrap()
                .len(),
            1
        );

        let outcome =
            apply_status(&conn, &w("wamid.B"), Some(&id(RECORD)), Sent, start, later).unwrap();

        assert_eq!(
            outcome,
            StatusApplied::Applied {
                record_id: id(RECORD),
                previous: JournalState::Sending
            }
        );
        let entry = find_by_wamid(&conn, &w("wamid.B"))
            .unwrap()
            .expect("wamid recorded");
        assert_eq!(entry.state, JournalState::Sent);
        assert!(stuck_sending(&conn, later).unwrap().is_empty());
        assert!(!schedule_retry(&conn, &id(RECORD), 1, later, later).unwrap());
    }

    #[test]
    fn a_status_says_whether_the_row_learned_its_wamid_from_it() {
        let conn = test_connection();
        let start = Utc::now();
        claim(&conn, &id(RECORD), start).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", start).unwrap();
        let other = "a005g0000012346AAA";
        sent_row(&conn, &id(other), "wamid.OWN", start);

        let by_echo =
            apply_status_learning(&conn, &w("wamid.B"), Some(&id(RECORD)), Sent, start, start)
                .unwrap();
        let by_wamid =
            apply_status_learning(&conn, &w("wamid.B"), Some(&id(RECORD)), Read, start, start)
                .unwrap();
        let late_by_echo =
            apply_status_learning(&conn, &w("wamid.C"), Some(&id(RECORD)), Read, start, start)
                .unwrap();
        let echo_of_a_row_with_another_wamid =
            apply_status_learning(&conn, &w("wamid.D"), Some(&id(other)), Read, start, start)
                .unwrap();

        assert!(by_echo.wamid_learned);
        assert!(matches!(by_echo.applied, StatusApplied::Applied { .. }));
        assert!(!by_wamid.wamid_learned);
        assert!(matches!(by_wamid.applied, StatusApplied::Applied { .. }));
        assert!(!late_by_echo.wamid_learned, "the row has a wamid by then");
        assert!(matches!(
            late_by_echo.applied,
            StatusApplied::Ignored { .. }
        ));
        assert!(!echo_of_a_row_with_another_wamid.wamid_learned);
        let entry = get(&conn, &id(RECORD)).unwrap().unwrap();
        assert_eq!(entry.wamid.as_deref(), Some("wamid.B"));
        assert_eq!(entry.state, JournalState::Read);
        let own = get(&conn, &id(other)).unwrap().unwrap();
        assert_eq!(own.wamid.as_deref(), Some("wamid.OWN"));
        assert_eq!(own.state, JournalState::Read);
    }

    #[test]
    fn a_status_that_does_not_advance_still_teaches_a_row_found_by_the_echo_its_wamid() {
        let conn = test_connection();
        let start = Utc::now();
        claim(&conn, &id(RECORD), start).unwrap();
        // A failed row without a wamid (the send was refused, then an echo arrives).
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", start).unwrap();
        mark_failed(&conn, &id(RECORD), "E", start).unwrap();

        let outcome =
            apply_status_learning(&conn, &w("wamid.L"), Some(&id(RECORD)), Sent, start, start)
                .unwrap();

        assert!(outcome.wamid_learned);
        assert!(matches!(outcome.applied, StatusApplied::Ignored { .. }));
        let entry = find_by_wamid(&conn, &w("wamid.L"))
            .unwrap()
            .expect("learned");
        assert_eq!(entry.state, JournalState::Failed);
    }

    #[test]
    fn a_late_echo_after_a_scheduled_retry_stops_the_resend() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();
        assert!(schedule_retry(&conn, &id(RECORD), 1, now + Duration::minutes(1), now).unwrap());

        apply_status(&conn, &w("wamid.C"), Some(&id(RECORD)), Delivered, now, now).unwrap();

        assert!(due_retries(&conn, now + Duration::hours(1), 10)
            .unwrap()
            .is_empty());
        assert_eq!(
            get(&conn, &id(RECORD)).unwrap().unwrap().wamid.as_deref(),
            Some("wamid.C")
        );
    }

    #[test]
    fn a_sending_row_is_marked_sent_with_its_wamid_and_says_it_moved_once() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();

        let first = mark_sent(&conn, &id(RECORD), &w("wamid.S"), now).unwrap();
        let again = mark_sent(&conn, &id(RECORD), &w("wamid.other"), now).unwrap();

        assert!(first && !again);
        let entry = get(&conn, &id(RECORD)).unwrap().unwrap();
        assert_eq!(entry.state, JournalState::Sent);
        assert_eq!(entry.wamid.as_deref(), Some("wamid.S"));
        assert_eq!(
            (entry.business_number_id.as_deref(), entry.wa_id.as_deref()),
            (Some("PN1"), Some("15550001"))
        );
    }

    #[test]
    fn a_response_arriving_after_a_faster_webhook_never_moves_the_state_back() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();
        apply_status(&conn, &w("wamid.D"), Some(&id(RECORD)), Delivered, now, now).unwrap();

        let moved = mark_sent(&conn, &id(RECORD), &w("wamid.D"), now).unwrap();
        mark_failed(&conn, &id(RECORD), "WA_131026", now).unwrap();

        assert!(!moved, "the record is not told Sent after Delivered");

        let entry = get(&conn, &id(RECORD)).unwrap().unwrap();
        assert_eq!(entry.state, JournalState::Delivered);
        assert_eq!(entry.error_code, None);
    }

    #[test]
    fn a_retry_is_hidden_until_due_and_then_returned() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();
        let due_at = now + Duration::seconds(30);

        assert!(schedule_retry(&conn, &id(RECORD), 1, due_at, now).unwrap());

        assert!(due_retries(&conn, now, 10).unwrap().is_empty());
        let due = due_retries(&conn, due_at, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].state, JournalState::Claimed);
        assert_eq!(due[0].sending_since, None);
    }

    #[test]
    fn a_rate_limit_refusal_waits_without_counting_an_attempt() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();
        let later = now + Duration::seconds(2);

        let first = schedule_rate_limited(&conn, &id(RECORD), later, now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", later).unwrap();
        let second =
            schedule_rate_limited(&conn, &id(RECORD), later + Duration::seconds(2), later).unwrap();

        let stored_now = from_millis(to_millis(now)).unwrap();
        assert_eq!(
            first,
            Some(RateLimitedWait {
                since: stored_now,
                count: 1
            })
        );
        assert_eq!(
            second,
            Some(RateLimitedWait {
                since: stored_now,
                count: 2
            })
        );
        let entry = get(&conn, &id(RECORD)).unwrap().unwrap();
        assert_eq!(entry.attempts, 0);
        assert_eq!(entry.state, JournalState::Claimed);
    }

    #[test]
    fn a_claimed_row_waiting_for_its_retry_may_not_start_sending_early() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();
        schedule_retry(&conn, &id(RECORD), 1, now + Duration::seconds(30), now).unwrap();

        let early = mark_sending(
            &conn,
            &id(RECORD),
            "PN1",
            "15550001",
            now + Duration::seconds(1),
        );
        let due = mark_sending(
            &conn,
            &id(RECORD),
            "PN1",
            "15550001",
            now + Duration::seconds(30),
        );

        assert!(
            matches!(&early, Err(StoreError::NotClaimed { state, .. }) if state.starts_with("claimed until ")),
            "{early:?}"
        );
        assert!(due.is_ok(), "{due:?}");
    }

    #[test]
    fn a_claim_abandoned_before_sending_is_an_orphan_and_others_are_not() {
        let conn = test_connection();
        let then = Utc::now() - Duration::seconds(30);
        claim(&conn, &id(RECORD), then).unwrap();
        claim(&conn, &id("a015g00000ReTryAAV"), then).unwrap();
        mark_sending(&conn, &id("a015g00000ReTryAAV"), "PN1", "1555", then).unwrap();
        schedule_retry(
            &conn,
            &id("a015g00000ReTryAAV"),
            1,
            then + Duration::hours(1),
            then,
        )
        .unwrap();
        sent_row(&conn, &id("a015g00000SenTTAAV"), "wamid.S", then);
        claim(&conn, &id("a015g00000FresHAAV"), Utc::now()).unwrap();

        let orphans = orphaned_claims(&conn, Utc::now() - Duration::seconds(2), 10).unwrap();

        let ids: Vec<&str> = orphans.iter().map(|e| e.record_id.as_str()).collect();
        assert_eq!(ids, vec![RECORD]);
    }

    #[test]
    fn a_failed_row_without_a_wamid_is_rearmed_as_new() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();
        mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).unwrap();
        schedule_rate_limited(&conn, &id(RECORD), now, now).unwrap();
        schedule_retry(&conn, &id(RECORD), 2, now, now).unwrap();
        mark_failed(&conn, &id(RECORD), "OUTSIDE_SESSION_WINDOW", now).unwrap();

        let rearmed = rearm(&conn, &id(RECORD), now).unwrap();

        assert!(rearmed);
        let entry = get(&conn, &id(RECORD)).unwrap().unwrap();
        assert_eq!(entry.state, JournalState::Claimed);
        assert_eq!(entry.attempts, 0);
        assert_eq!(entry.rate_limited_count, 0);
        assert_eq!(entry.rate_limited_since, None);
        assert_eq!(entry.error_code, None);
        assert_eq!(entry.next_attempt_at, None);
        assert!(mark_sending(&conn, &id(RECORD), "PN1", "15550001", now).is_ok());
    }

    #[test]
    fn a_row_whatsapp_accepted_is_never_rearmed() {
        let conn = test_connection();
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.A", now);
        apply_status(&conn, &w("wamid.A"), None, Failed, now, now).unwrap();
        claim(&conn, &id("a015g00000ClaiMAAV"), now).unwrap();

        assert!(!rearm(&conn, &id(RECORD), now).unwrap());
        assert!(!rearm(&conn, &id("a015g00000ClaiMAAV"), now).unwrap());
        assert_eq!(
            get(&conn, &id(RECORD)).unwrap().unwrap().state,
            JournalState::Failed
        );
    }

    #[test]
    fn the_latest_accepted_message_to_a_customer_is_found_per_business_number() {
        let conn = test_connection();
        let then = Utc::now() - Duration::hours(2);
        sent_row(&conn, &id("a015g00000OlDddAAV"), "wamid.old", then);
        sent_row(&conn, &id(RECORD), "wamid.new", Utc::now());
        claim(&conn, &id("a015g00000UnSenAAF"), Utc::now()).unwrap();
        mark_sending(
            &conn,
            &id("a015g00000UnSenAAF"),
            "PN1",
            "15550001",
            Utc::now(),
        )
        .unwrap();

        let found = latest_accepted_to(
            &conn,
            &[
                ("PN1".to_string(), "15550001".to_string()),
                ("PN2".to_string(), "15550001".to_string()),
            ],
        )
        .unwrap();

        assert_eq!(found.len(), 1);
        let latest = &found[&("PN1".to_string(), "15550001".to_string())];
        assert_eq!(latest.record_id, RECORD);
        assert!(latest.sent_at.is_some_and(|at| at > then));
    }

    #[test]
    fn mark_failed_records_the_error_code() {
        let conn = test_connection();
        let now = Utc::now();
        claim(&conn, &id(RECORD), now).unwrap();

        mark_failed(&conn, &id(RECORD), "INVALID_PHONE", now).unwrap();

        let entry = get(&conn, &id(RECORD)).unwrap().unwrap();
        assert_eq!(entry.state, JournalState::Failed);
        assert_eq!(entry.error_code.as_deref(), Some("INVALID_PHONE"));
    }

    #[test]
    fn retention_deletes_only_finished_rows_older_than_the_cutoff() {
        let conn = test_connection();
        let old = Utc::now() - Duration::days(40);
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.old", old);
        claim(&conn, &id("a015g00000StuCkAAV"), old).unwrap();
        sent_row(&conn, &id("a015g00000NeWwwAAV"), "wamid.new", now);

        let deleted = delete_finished_before(&conn, now - Duration::days(30), usize::MAX).unwrap();

        assert_eq!(deleted, 1);
        assert_eq!(get(&conn, &id(RECORD)).unwrap(), None);
        assert!(get(&conn, &id("a015g00000StuCkAAV")).unwrap().is_some());
        assert!(get(&conn, &id("a015g00000NeWwwAAV")).unwrap().is_some());
    }

    #[test]
    fn retention_deletes_at_most_the_rows_it_is_given_and_the_rest_next_time() {
        let conn = test_connection();
        let old = Utc::now() - Duration::days(40);
        let cutoff = Utc::now() - Duration::days(30);
        for (record, wamid) in [
            (RECORD, "wamid.a"),
            ("a015g00000NeWwwAAV", "wamid.b"),
            ("a015g00000StuCkAAV", "wamid.c"),
        ] {
            sent_row(&conn, &id(record), wamid, old);
        }

        let first = delete_finished_before(&conn, cutoff, 2).unwrap();
        let second = delete_finished_before(&conn, cutoff, 2).unwrap();

        assert_eq!((first, second), (2, 1));
        assert_eq!(delete_finished_before(&conn, cutoff, 2).unwrap(), 0);
    }

    #[test]
    fn retention_keeps_an_old_row_updated_since_the_cutoff_and_finds_rows_by_creation() {
        let conn = test_connection();
        let old = Utc::now() - Duration::days(40);
        let now = Utc::now();
        sent_row(&conn, &id(RECORD), "wamid.old", old);
        // Meta's read receipt, long after the send.
        apply_status(&conn, &w("wamid.old"), None, MessageStatus::Read, now, now).unwrap();

        assert_eq!(
            delete_finished_before(&conn, now - Duration::days(30), usize::MAX).unwrap(),
            0
        );
        assert!(get(&conn, &id(RECORD)).unwrap().is_some());
        let plan = query_plan(&conn, DELETE_FINISHED_SQL, [0, 500]);
        assert!(plan.contains("journal_by_created_at"), "{plan}");
    }

    #[test]
    fn states_round_trip_and_map_onto_the_status_ladder() {
        for state in JournalState::ALL {
            assert_eq!(state.as_str().parse::<JournalState>(), Ok(state));
            assert_eq!(JournalState::from_status(state.as_status()), Some(state));
        }
        assert_eq!(JournalState::from_status(MessageStatus::Received), None);
        assert!("queued".parse::<JournalState>().is_err());
    }
}
