//! Customers' files waiting to be copied into Salesforce Files: a durable queue, one row per
//! inbound media message (table `inbound_media`, migration 6).
//!
//! The webhook's apply step queues a row in the same transaction as the inbound record
//! ([`enqueue`]), so once Meta has its 200 the file cannot be forgotten; the media worker
//! (`pipeline::media`) takes the [`due`] rows, and each ends in one terminal state said on the
//! record: a File ([`MediaState::Done`]), over the size limit, given up, or copying switched off.
//! A duplicate webhook is a no-op (the wamid is the key).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::db::limit_param;
use super::db::{time_column, to_millis};
use super::error::StoreError;
use crate::domain::ids::Wamid;
use crate::domain::sf_id::SfId;
use crate::domain::webhook_event::InboundMediaKind;

/// Where a queued file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaState {
    /// Not copied yet: its turn has not come, its record is not in Salesforce yet, or a failed
    /// attempt is backing off.
    Waiting,
    /// Saved as a Salesforce File on its record.
    Done,
    /// Larger than `media.max_bytes`: not downloaded; the record says so.
    TooLarge,
    /// Given up (attempts spent, or Meta no longer has it); the record says so.
    Failed,
    /// `media.enabled = false`: not downloaded; the record says so.
    Disabled,
}

impl MediaState {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaState::Waiting => "waiting",
            MediaState::Done => "done",
            MediaState::TooLarge => "too_large",
            MediaState::Failed => "failed",
            MediaState::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Option<MediaState> {
        [
            MediaState::Waiting,
            MediaState::Done,
            MediaState::TooLarge,
            MediaState::Failed,
            MediaState::Disabled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Meta's `type` word for a media kind (how the kind is stored).
pub fn kind_label(kind: InboundMediaKind) -> &'static str {
    match kind {
        InboundMediaKind::Image => "image",
        InboundMediaKind::Document => "document",
        InboundMediaKind::Audio => "audio",
        InboundMediaKind::Video => "video",
        InboundMediaKind::Sticker => "sticker",
    }
}

fn parse_kind(label: &str) -> Option<InboundMediaKind> {
    [
        InboundMediaKind::Image,
        InboundMediaKind::Document,
        InboundMediaKind::Audio,
        InboundMediaKind::Video,
        InboundMediaKind::Sticker,
    ]
    .into_iter()
    .find(|k| kind_label(*k) == label)
}

/// One queued file, as the webhook described it and the worker has got it so far.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedMedia {
    pub wamid: Wamid,
    /// Meta's media id (`GET /{version}/{media_id}`); valid 7 days after `received_at`.
    pub media_id: String,
    pub kind: InboundMediaKind,
    pub mime_type: Option<String>,
    /// The customer's file name (documents only).
    pub filename: Option<String>,
    pub caption: Option<String>,
    /// Meta's time of the message.
    pub received_at: DateTime<Utc>,
    pub state: MediaState,
    /// Failed attempts so far (waiting for the record to exist is not one).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The message record's Id, once Salesforce has it.
    pub record_id: Option<SfId>,
    /// The ContentVersion's Id, once uploaded.
    pub file_id: Option<String>,
}

impl QueuedMedia {
    /// A new row for an inbound media message, due at once.
    pub fn new(
        wamid: Wamid,
        media_id: &str,
        kind: InboundMediaKind,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> QueuedMedia {
        QueuedMedia {
            wamid,
            media_id: media_id.to_string(),
            kind,
            mime_type: None,
            filename: None,
            caption: None,
            received_at,
            state: MediaState::Waiting,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            record_id: None,
            file_id: None,
        }
    }
}

const COLUMNS: &str = "wamid, media_id, kind, mime_type, filename, caption, received_at, state, \
     attempts, next_attempt_at, last_error, record_id, file_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<QueuedMedia> {
    let unknown = |index: usize, text: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown value {text:?}").into(),
        )
    };
    let kind: String = row.get(2)?;
    let state: String = row.get(7)?;
    Ok(QueuedMedia {
        wamid: row.get(0)?,
        media_id: row.get(1)?,
        kind: parse_kind(&kind).ok_or_else(|| unknown(2, kind.clone()))?,
        mime_type: row.get(3)?,
        filename: row.get(4)?,
        caption: row.get(5)?,
        received_at: time_column(row, 6)?,
        state: MediaState::parse(&state).ok_or_else(|| unknown(7, state.clone()))?,
        attempts: row.get(8)?,
        next_attempt_at: time_column(row, 9)?,
        last_error: row.get(10)?,
        record_id: row.get(11)?,
        file_id: row.get(12)?,
    })
}

/// Queues `media` unless its wamid is queued already (Meta redelivers); returns whether it was new.
pub fn enqueue(
    conn: &Connection,
    media: &QueuedMedia,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO inbound_media (wamid, media_id, kind, mime_type, filename, caption,
                 received_at, state, attempts, next_attempt_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'waiting', 0, ?8, ?9)
             ON CONFLICT (wamid) DO NOTHING",
        )?
        .execute(params![
            media.wamid,
            media.media_id,
            kind_label(media.kind),
            media.mime_type,
            media.filename,
            media.caption,
            to_millis(media.received_at),
            to_millis(media.next_attempt_at),
            to_millis(now),
        ])?;
    Ok(inserted == 1)
}

/// Waiting rows due at `now`, soonest first, at most `limit`.
pub fn due(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<QueuedMedia>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM inbound_media
         WHERE state = 'waiting' AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, wamid LIMIT ?2"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![to_millis(now), limit_param(limit)], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The row of `wamid`, whatever its state.
pub fn get(conn: &Connection, wamid: &Wamid) -> Result<Option<QueuedMedia>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM inbound_media WHERE wamid = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([wamid], from_row)
        .optional()?)
}

/// Remembers the message record's Id (found in Salesforce by its wamid).
pub fn set_record(
    conn: &Connection,
    wamid: &Wamid,
    record_id: &SfId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE inbound_media SET record_id = ?2, updated_at = ?3 WHERE wamid = ?1",
    )?
    .execute(params![wamid, record_id, to_millis(now)])?;
    Ok(())
}

/// Looks again at `until` without counting an attempt (the record is not in Salesforce yet).
pub fn postpone(
    conn: &Connection,
    wamid: &Wamid,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE inbound_media SET next_attempt_at = ?2, updated_at = ?3
         WHERE wamid = ?1 AND state = 'waiting'",
    )?
    .execute(params![wamid, to_millis(until), to_millis(now)])?;
    Ok(())
}

/// Counts a failed attempt and tries again at `until`; returns the attempts made so far.
pub fn retry_later(
    conn: &Connection,
    wamid: &Wamid,
    until: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE inbound_media
             SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3, updated_at = ?4
             WHERE wamid = ?1 AND state = 'waiting' RETURNING attempts",
        )?
        .query_row(
            params![wamid, to_millis(until), error, to_millis(now)],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Ends the row in `state` (not [`MediaState::Waiting`]), with the File's Id or the reason.
pub fn finish(
    conn: &Connection,
    wamid: &Wamid,
    state: MediaState,
    file_id: Option<&str>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    debug_assert_ne!(state, MediaState::Waiting);
    conn.prepare_cached(
        "UPDATE inbound_media SET state = ?2, file_id = ?3,
             last_error = coalesce(?4, last_error), updated_at = ?5
         WHERE wamid = ?1",
    )?
    .execute(params![
        wamid,
        state.as_str(),
        file_id,
        error,
        to_millis(now)
    ])?;
    Ok(())
}

/// Forgets at most `limit` files that ended (saved, refused, given up) before `cutoff` (the
/// retention job, with the journal's horizon, in bounded writes); waiting ones are kept whatever
/// their age. Returns how many.
pub fn delete_finished_before(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    super::db::delete_before(
        conn,
        "DELETE FROM inbound_media WHERE wamid IN (
             SELECT wamid FROM inbound_media
             WHERE state != 'waiting' AND updated_at < ?1 LIMIT ?2)",
        cutoff,
        limit,
    )
}

/// Files still to copy (for `/metrics` and `doctor`).
pub fn waiting_count(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM inbound_media WHERE state = 'waiting'")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;
    use chrono::Duration;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + seconds, 0).unwrap()
    }

    fn image(wamid: &str) -> QueuedMedia {
        let mut media = QueuedMedia::new(
            wamid.parse().unwrap(),
            "1234567890",
            InboundMediaKind::Image,
            at(0),
            at(0),
        );
        media.mime_type = Some("image/jpeg".into());
        media.caption = Some("my receipt".into());
        media
    }

    #[test]
    fn a_queued_file_is_due_at_once_with_what_the_webhook_said() {
        let conn = test_connection();
        let media = image("wamid.A");

        let new = enqueue(&conn, &media, at(0)).unwrap();
        let due = due(&conn, at(0), 10).unwrap();

        assert!(new);
        assert_eq!(due, vec![media]);
    }

    #[test]
    fn a_redelivered_webhook_queues_the_file_once_and_keeps_its_progress() {
        let conn = test_connection();
        let media = image("wamid.A");
        enqueue(&conn, &media, at(0)).unwrap();
        retry_later(&conn, &media.wamid, at(60), "timeout", at(1)).unwrap();

        let again = enqueue(&conn, &media, at(2)).unwrap();

        assert!(!again);
        let stored = get(&conn, &media.wamid).unwrap().unwrap();
        assert_eq!(stored.attempts, 1);
        assert_eq!(stored.next_attempt_at, at(60));
    }

    #[test]
    fn a_failed_attempt_counts_and_backs_off_while_a_postponement_does_not_count() {
        let conn = test_connection();
        let media = image("wamid.A");
        enqueue(&conn, &media, at(0)).unwrap();

        postpone(&conn, &media.wamid, at(30), at(0)).unwrap();
        let attempts = retry_later(&conn, &media.wamid, at(90), "HTTP 500", at(30)).unwrap();

        assert_eq!(attempts, 1);
        assert!(due(&conn, at(89), 10).unwrap().is_empty());
        let due = due(&conn, at(90), 10).unwrap();
        assert_eq!(due[0].last_error.as_deref(), Some("HTTP 500"));
    }

    #[test]
    fn a_finished_file_is_no_longer_due_and_keeps_its_file_id() {
        let conn = test_connection();
        let media = image("wamid.A");
        enqueue(&conn, &media, at(0)).unwrap();
        let record: SfId = "a00000000000001AAA".parse().unwrap();
        set_record(&conn, &media.wamid, &record, at(1)).unwrap();

        finish(
            &conn,
            &media.wamid,
            MediaState::Done,
            Some("068000000000001AAA"),
            None,
            at(2),
        )
        .unwrap();

        assert!(due(&conn, at(0) + Duration::days(1), 10)
            .unwrap()
            .is_empty());
        assert_eq!(waiting_count(&conn).unwrap(), 0);
        let stored = get(&conn, &media.wamid).unwrap().unwrap();
        assert_eq!(stored.state, MediaState::Done);
        assert_eq!(stored.record_id, Some(record));
        assert_eq!(stored.file_id.as_deref(), Some("068000000000001AAA"));
    }

    #[test]
    fn retention_forgets_finished_files_and_keeps_waiting_ones() {
        let conn = test_connection();
        let (done, waiting) = (image("wamid.DONE"), image("wamid.WAIT"));
        enqueue(&conn, &done, at(0)).unwrap();
        enqueue(&conn, &waiting, at(0)).unwrap();
        finish(&conn, &done.wamid, MediaState::TooLarge, None, None, at(10)).unwrap();

        let deleted = delete_finished_before(&conn, at(11), usize::MAX).unwrap();

        assert_eq!(deleted, 1);
        assert!(get(&conn, &done.wamid).unwrap().is_none());
        assert!(get(&conn, &waiting.wamid).unwrap().is_some());
    }

    #[test]
    fn due_files_come_soonest_first_and_at_most_the_limit() {
        let conn = test_connection();
        for (wamid, due_at) in [("wamid.B", 20), ("wamid.A", 10), ("wamid.C", 30)] {
            let mut media = image(wamid);
            media.next_attempt_at = at(due_at);
            enqueue(&conn, &media, at(0)).unwrap();
        }

        let due = due(&conn, at(100), 2).unwrap();

        let wamids: Vec<&str> = due.iter().map(|m| m.wamid.as_str()).collect();
        assert_eq!(wamids, ["wamid.A", "wamid.B"]);
    }
}
