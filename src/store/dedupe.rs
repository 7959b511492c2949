//! Webhook items already processed. Meta redelivers webhooks it did not see a 200 for (and sometimes
//! ones it did), so the receiver records a key per item (e.g. `inbound:{wamid}`) in the same
//! transaction as the item's effects; a redelivery finds the key and changes nothing. A status
//! (`status:{wamid}:{status}`) has a key here only when no journal row holds its wamid: the row
//! that does remembers its statuses itself (`journal::apply_status`, schema 12).
//!
//! Keys older than Meta's redelivery horizon (days) can be forgotten with [`delete_seen_before`].

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::db::to_millis;
use super::error::StoreError;

/// Records `key`; `true` the first time it is seen, `false` on every later call.
pub fn first_seen(conn: &Connection, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO webhook_seen (key, seen_at) VALUES (?1, ?2)")?
        .execute(rusqlite::params![key, to_millis(now)])?;
    Ok(inserted == 1)
}

/// Forgets keys first seen before `cutoff`; returns how many.
/// Whether `key` was recorded by [`first_seen`] (and not yet deleted by retention).
pub fn seen(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM webhook_seen WHERE key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Forgets at most `limit` keys seen before `cutoff` (the retention job deletes in bounded
/// writes); returns how many.
pub fn delete_seen_before(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    super::db::delete_before(
        conn,
        "DELETE FROM webhook_seen WHERE key IN (
             SELECT key FROM webhook_seen WHERE seen_at < ?1 LIMIT ?2)",
        cutoff,
        limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;
    use chrono::Duration;

    #[test]
    fn a_key_is_first_seen_once_and_a_duplicate_afterwards() {
        let conn = test_connection();
        let now = Utc::now();

        assert!(first_seen(&conn, "status:wamid.A:delivered", now).unwrap());
        assert!(!first_seen(&conn, "status:wamid.A:delivered", now).unwrap());
        assert!(first_seen(&conn, "status:wamid.A:read", now).unwrap());
    }

    #[test]
    fn retention_forgets_only_keys_older_than_the_cutoff() {
        let conn = test_connection();
        let now = Utc::now();
        first_seen(&conn, "old", now - Duration::days(10)).unwrap();
        first_seen(&conn, "recent", now).unwrap();

        let deleted = delete_seen_before(&conn, now - Duration::days(7), usize::MAX).unwrap();

        assert_eq!(deleted, 1);
        assert!(first_seen(&conn, "old", now).unwrap());
        assert!(!first_seen(&conn, "recent", now).unwrap());
    }
}
