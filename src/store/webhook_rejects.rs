//! The dead letter of the webhook receiver: statuses and inbound messages that a correctly signed
//! POST carried but sfwa refused (see `domain::webhook_event::RejectReason`: unreadable, a
//! timestamp Salesforce cannot store, an over-long wamid, …).
//!
//! Why a table and not only a log line: the POST is still answered 200 — answering anything else
//! makes Meta redeliver the whole POST for days, and the good events in it with the bad — so after
//! the 200 this row is the only trace of the refused event. The receiver writes it in the same
//! transaction as the rest of the POST ([`record`]), so an event is always either applied or here.
//!
//! For operators (`sfwa doctor`, the dead-letter CLI): [`count`], [`counts_by_reason`], [`list`]
//! (newest first), [`get`], and [`delete`] / [`clear`] once looked at. Nothing is retried from
//! here: a refused event is wrong in itself, and sfwa has no way to make it right.
//!
//! Bounded on every axis, since the input is whatever reached the port with a valid signature:
//! one row per distinct event (redeliveries bump `times_seen`), the event JSON cut to
//! [`MAX_EVENT_BYTES`], the detail to [`MAX_DETAIL_CHARS`], and at most [`MAX_ROWS`] rows (the
//! least recently seen go first).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::db::{time_column, to_millis};
use super::error::StoreError;

/// The most of an event's JSON that is kept (8 KiB), cut on a character boundary.
pub const MAX_EVENT_BYTES: usize = 8 * 1024;
/// The most of a detail sentence that is kept.
pub const MAX_DETAIL_CHARS: usize = 1000;
/// The most rows kept; recording past it forgets the least recently seen.
pub const MAX_ROWS: u64 = 10_000;

/// One refused event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReject {
    pub id: i64,
    /// The stable label of `domain::webhook_event::RejectReason` (`bad_timestamp`,
    /// `value_too_long`, …).
    pub reason: String,
    /// Where in the POST and what was wrong.
    pub detail: String,
    /// The event's JSON as Meta sent it, or its first [`MAX_EVENT_BYTES`] when
    /// [`WebhookReject::is_cut`] (then it is not valid JSON).
    pub event: String,
    /// The full size of the event's JSON.
    pub event_bytes: usize,
    /// How often Meta delivered it (redeliveries of a POST answered 200 do happen).
    pub times_seen: u64,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl WebhookReject {
    /// Whether [`WebhookReject::event`] holds only the start of the event.
    pub fn is_cut(&self) -> bool {
        self.event.len() < self.event_bytes
    }
}

/// Stores a refused event: `reason` (a `RejectReason` label), a `detail` sentence and the event's
/// JSON text, seen at `now`. Returns `true` when the event is new, `false` when the same event
/// (same JSON) was already stored — then only its `times_seen` and `last_seen_at` change.
///
/// Call it inside the transaction that applies the rest of the POST.
pub fn record(
    conn: &Connection,
    reason: &str,
    detail: &str,
    event_json: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    record_within(conn, reason, detail, event_json, now, MAX_ROWS)
}

/// [`record`] keeping at most `max_rows`.
fn record_within(
    conn: &Connection,
    reason: &str,
    detail: &str,
    event_json: &str,
    now: DateTime<Utc>,
    max_rows: u64,
) -> Result<bool, StoreError> {
    let fingerprint = hex::encode(Sha256::digest(event_json.as_bytes()));
    let seen_again = conn
        .prepare_cached(
            "UPDATE webhook_rejects SET times_seen = times_seen + 1, last_seen_at = ?2
             WHERE fingerprint = ?1",
        )?
        .execute(rusqlite::params![fingerprint, to_millis(now)])?;
    if seen_again > 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO webhook_rejects
             (fingerprint, reason, detail, event, event_bytes, first_seen_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(rusqlite::params![
        fingerprint,
        reason,
        cut_chars(detail, MAX_DETAIL_CHARS),
        cut_bytes(event_json, MAX_EVENT_BYTES),
        i64::try_from(event_json.len()).unwrap_or(i64::MAX),
        to_millis(now),
    ])?;
    conn.prepare_cached(
        "DELETE FROM webhook_rejects WHERE id IN (
             SELECT id FROM webhook_rejects ORDER BY last_seen_at DESC, id DESC LIMIT -1 OFFSET ?1)",
    )?
    .execute([i64::try_from(max_rows).unwrap_or(i64::MAX)])?;
    Ok(true)
}

/// How many refused events are stored.
pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM webhook_rejects")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(non_negative)?)
}

fn non_negative(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Stored refused events per reason label, most frequent first.
pub fn counts_by_reason(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT reason, count(*) FROM webhook_rejects GROUP BY reason ORDER BY count(*) DESC, reason",
    )?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, non_negative(row.get(1)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The `limit` most recently seen refused events, newest first.
pub fn list(conn: &Connection, limit: usize) -> Result<Vec<WebhookReject>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, reason, detail, event, event_bytes, times_seen, first_seen_at, last_seen_at
         FROM webhook_rejects ORDER BY last_seen_at DESC, id DESC LIMIT ?1",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement.query_map([limit], reject_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One refused event by its id.
pub fn get(conn: &Connection, id: i64) -> Result<Option<WebhookReject>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, reason, detail, event, event_bytes, times_seen, first_seen_at, last_seen_at
             FROM webhook_rejects WHERE id = ?1",
        )?
        .query_row([id], reject_row)
        .optional()?)
}

/// Forgets one refused event; `true` if it was there.
pub fn delete(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM webhook_rejects WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Forgets every refused event; returns how many.
pub fn clear(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM webhook_rejects")?
        .execute([])?)
}

/// Forgets at most `limit` refused events last seen before `cutoff` (retention, in bounded
/// writes); returns how many.
pub fn delete_seen_before(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    super::db::delete_before(
        conn,
        "DELETE FROM webhook_rejects WHERE id IN (
             SELECT id FROM webhook_rejects WHERE last_seen_at < ?1 LIMIT ?2)",
        cutoff,
        limit,
    )
}

fn reject_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookReject> {
    Ok(WebhookReject {
        id: row.get(0)?,
        reason: row.get(1)?,
        detail: row.get(2)?,
        event: row.get(3)?,
        event_bytes: usize::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
        times_seen: non_negative(row.get(5)?),
        first_seen_at: time_column(row, 6)?,
        last_seen_at: time_column(row, 7)?,
    })
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn cut_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        None => text,
        Some((end, _)) => &text[..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;
    use chrono::Duration;

    #[test]
    fn a_refused_event_is_stored_with_its_reason_detail_json_and_time() {
        let conn = test_connection();
        let now = crate::store::db::from_millis(to_millis(Utc::now())).unwrap();
        let event = r#"{"id":"wamid.X","status":"read","timestamp":"99999999999999999"}"#;

        let new = record(
            &conn,
            "bad_timestamp",
            "entry 0 change 0 status 0: …",
            event,
            now,
        )
        .unwrap();

        assert!(new);
        assert_eq!(count(&conn).unwrap(), 1);
        let stored = list(&conn, 10).unwrap().remove(0);
        assert_eq!(stored.reason, "bad_timestamp");
        assert_eq!(stored.detail, "entry 0 change 0 status 0: …");
        assert_eq!(stored.event, event);
        assert!(!stored.is_cut());
        assert_eq!(stored.times_seen, 1);
        assert_eq!(stored.first_seen_at, now);
        assert_eq!(get(&conn, stored.id).unwrap(), Some(stored));
    }

    #[test]
    fn the_same_event_delivered_again_is_one_row_seen_twice() {
        let conn = test_connection();
        let now = Utc::now();

        assert!(record(&conn, "unreadable", "d", "{}", now).unwrap());
        assert!(!record(&conn, "unreadable", "d", "{}", now + Duration::seconds(5)).unwrap());
        assert!(record(&conn, "unreadable", "d", "[]", now).unwrap());

        assert_eq!(count(&conn).unwrap(), 2);
        let seen_twice = list(&conn, 10)
            .unwrap()
            .into_iter()
            .find(|r| r.event == "{}")
            .unwrap();
        assert_eq!(seen_twice.times_seen, 2);
        assert!(seen_twice.last_seen_at > seen_twice.first_seen_at);
    }

    #[test]
    fn a_huge_event_is_kept_cut_to_8_kib_on_a_character_boundary() {
        let conn = test_connection();
        let event = format!("{{\"body\":\"{}\"}}", "é".repeat(10_000));

        record(
            &conn,
            "value_too_long",
            &"x".repeat(5000),
            &event,
            Utc::now(),
        )
        .unwrap();

        let stored = list(&conn, 1).unwrap().remove(0);
        assert!(stored.event.len() <= MAX_EVENT_BYTES);
        assert!(stored.event.len() >= MAX_EVENT_BYTES - 1);
        assert_eq!(stored.event_bytes, event.len());
        assert!(stored.is_cut());
        assert_eq!(stored.detail.chars().count(), MAX_DETAIL_CHARS);
    }

    #[test]
    fn counts_by_reason_delete_and_clear_are_what_an_operator_needs() {
        let conn = test_connection();
        let now = Utc::now();
        for (i, reason) in ["bad_timestamp", "bad_timestamp", "unreadable"]
            .iter()
            .enumerate()
        {
            record(&conn, reason, "d", &format!("{{\"n\":{i}}}"), now).unwrap();
        }

        assert_eq!(
            counts_by_reason(&conn).unwrap(),
            vec![
                ("bad_timestamp".to_string(), 2),
                ("unreadable".to_string(), 1)
            ]
        );
        let newest = list(&conn, 1).unwrap().remove(0);
        assert!(delete(&conn, newest.id).unwrap());
        assert!(!delete(&conn, newest.id).unwrap());
        assert_eq!(count(&conn).unwrap(), 2);
        assert_eq!(clear(&conn).unwrap(), 2);
        assert_eq!(count(&conn).unwrap(), 0);
    }

    #[test]
    fn the_table_keeps_at_most_max_rows_forgetting_the_least_recently_seen() {
        let conn = test_connection();
        let start = Utc::now();
        for i in 0..8 {
            let at = start + Duration::milliseconds(i);
            record_within(&conn, "unreadable", "d", &format!("{{\"n\":{i}}}"), at, 5).unwrap();
        }

        assert_eq!(count(&conn).unwrap(), 5);
        let oldest_kept = conn
            .query_row("SELECT min(last_seen_at) FROM webhook_rejects", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        assert_eq!(oldest_kept, to_millis(start + Duration::milliseconds(3)));
    }

    #[test]
    fn retention_forgets_rejects_last_seen_before_the_cutoff() {
        let conn = test_connection();
        let now = Utc::now();
        record(&conn, "unreadable", "d", "1", now - Duration::days(40)).unwrap();
        record(&conn, "unreadable", "d", "2", now).unwrap();

        assert_eq!(
            delete_seen_before(&conn, now - Duration::days(30), usize::MAX).unwrap(),
            1
        );
        assert_eq!(count(&conn).unwrap(), 1);
    }
}
