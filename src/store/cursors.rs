//! Named cursors: where sfwa is in a remote stream, e.g. the last CometD replay id processed on a
//! channel, so a restart resumes instead of replaying everything or missing events.
//!
//! A cursor should be set in the same transaction as the work it covers (the journal claims for the
//! events up to that replay id), so the two can never disagree after a crash.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::db::{from_millis, to_millis};
use super::error::StoreError;

/// The cursor's value, or `None` if it was never set.
pub fn get(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM cursors WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?)
}

/// When the cursor was last set, or `None` if it never was.
pub fn updated_at(conn: &Connection, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let millis: Option<i64> = conn
        .prepare_cached("SELECT updated_at FROM cursors WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?;
    Ok(millis.and_then(from_millis))
}

/// Sets (or replaces) the cursor's value.
pub fn set(
    conn: &Connection,
    name: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(rusqlite::params![name, value, to_millis(now)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;

    #[test]
    fn an_unset_cursor_is_none_and_a_set_cursor_keeps_its_latest_value() {
        let conn = test_connection();
        let now = Utc::now();
        assert_eq!(get(&conn, "/event/WhatsApp_Outbound__e").unwrap(), None);

        set(&conn, "/event/WhatsApp_Outbound__e", "17", now).unwrap();
        set(&conn, "/event/WhatsApp_Outbound__e", "23", now).unwrap();
        set(&conn, "other", "1", now).unwrap();

        assert_eq!(
            get(&conn, "/event/WhatsApp_Outbound__e")
                .unwrap()
                .as_deref(),
            Some("23")
        );
        assert_eq!(get(&conn, "other").unwrap().as_deref(), Some("1"));
        assert_eq!(
            updated_at(&conn, "other")
                .unwrap()
                .map(|t| t.timestamp_millis()),
            Some(now.timestamp_millis())
        );
        assert_eq!(updated_at(&conn, "never set").unwrap(), None);
    }
}
