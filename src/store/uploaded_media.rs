//! The WhatsApp media ids of Salesforce Files sfwa uploaded (schema 10), per business number and
//! ContentVersion: what [`crate::pipeline::media_upload`] sends instead of uploading the file
//! again. WhatsApp keeps an uploaded file 30 days; an id is used for [`REUSE_FOR`] (29 days), so
//! one taken from here has a day left at least.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::db::to_millis;
use super::error::StoreError;

/// How long an uploaded id is reused: a day short of WhatsApp's 30.
pub const REUSE_FOR: Duration = Duration::days(29);

/// The media id `number` got for ContentVersion `version` less than [`REUSE_FOR`] before `now`.
pub fn reusable(
    conn: &Connection,
    number: &str,
    version: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT media_id FROM uploaded_media \
             WHERE business_number_id = ?1 AND content_version_id = ?2 AND uploaded_at > ?3",
        )?
        .query_row(
            params![number, version, to_millis(now - REUSE_FOR)],
            |row| row.get(0),
        )
        .optional()?)
}

/// Remembers the id WhatsApp answered an upload with (replacing an older one), and forgets the
/// ids too old to reuse, so the table holds at most one row per file and number sent in 29 days.
pub fn remember(
    conn: &Connection,
    number: &str,
    version: &str,
    media_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM uploaded_media WHERE uploaded_at <= ?1")?
        .execute(params![to_millis(now - REUSE_FOR)])?;
    conn.prepare_cached(
        "INSERT INTO uploaded_media (business_number_id, content_version_id, media_id, uploaded_at) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (business_number_id, content_version_id) \
         DO UPDATE SET media_id = excluded.media_id, uploaded_at = excluded.uploaded_at",
    )?
    .execute(params![number, version, media_id, to_millis(now)])?;
    Ok(())
}

/// Forgets `media_id` (WhatsApp refused a send by it): the next send of the file uploads again.
pub fn forget(conn: &Connection, number: &str, media_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM uploaded_media WHERE business_number_id = ?1 AND media_id = ?2",
    )?
    .execute(params![number, media_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn an_uploaded_id_is_reused_by_its_number_for_29_days_and_not_after() {
        let conn = test_connection();
        let uploaded = at("2026-11-01T10:00:00Z");
        remember(&conn, "111", "068A", "9001", uploaded).unwrap();

        let same_number = reusable(&conn, "111", "068A", uploaded + Duration::days(28)).unwrap();
        let other_number = reusable(&conn, "222", "068A", uploaded).unwrap();
        let too_old = reusable(&conn, "111", "068A", uploaded + REUSE_FOR).unwrap();

        assert_eq!(same_number.as_deref(), Some("9001"));
        assert_eq!(other_number, None);
        assert_eq!(too_old, None);
    }

    #[test]
    fn a_new_upload_replaces_the_old_id_and_a_forgotten_id_is_not_reused() {
        let conn = test_connection();
        let now = at("2026-11-01T10:00:00Z");
        remember(&conn, "111", "068A", "9001", now).unwrap();
        remember(&conn, "111", "068A", "9002", now).unwrap();
        remember(&conn, "111", "068B", "9003", now).unwrap();

        let replaced = reusable(&conn, "111", "068A", now).unwrap();
        forget(&conn, "111", "9003").unwrap();
        let forgotten = reusable(&conn, "111", "068B", now).unwrap();

        assert_eq!(replaced.as_deref(), Some("9002"));
        assert_eq!(forgotten, None);
    }
}
