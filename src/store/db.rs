//! Opening the store file, migrating it, and the async wrapper the rest of sfwa uses.
//!
//! Why these settings:
//! - **WAL**: readers never block the writer and a commit is one append to the log, so the
//!   webhook receiver can commit a batch before answering 200 without stalling the dispatcher.
//! - **`synchronous = FULL`**: a commit is on disk when `write` returns. "Durable before 200"
//!   (guarantee 2) must hold through a power cut, not only a process crash; under WAL this costs one
//!   fsync per commit.
//! - **`busy_timeout`**: another process briefly holding the file (a backup, `sqlite3`) makes us wait
//!   instead of failing; past the timeout the error says the file is locked.
//! - **foreign keys on**: so any later schema that relies on them is enforced.
//!
//! Migrations are SQL files embedded at compile time and numbered; `PRAGMA user_version` records the
//! last one applied. Each runs in its own transaction together with the version bump, so a failed
//! migration leaves the file at the previous version. A file from a newer sfwa is refused rather than
//! guessed at.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, Transaction, TransactionBehavior};

use super::error::StoreError;

/// How long a statement waits for another process's lock before failing with
/// [`StoreError::Locked`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One embedded migration.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order; versions are 1, 2, 3, … with no gaps (a test checks).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "rate_limits_and_orphans",
        sql: include_str!("migrations/0002_rate_limits_and_orphans.sql"),
    },
    Migration {
        version: 3,
        name: "webhook_rejects",
        sql: include_str!("migrations/0003_webhook_rejects.sql"),
    },
    Migration {
        version: 4,
        name: "journal_by_customer",
        sql: include_str!("migrations/0004_journal_by_customer.sql"),
    },
    Migration {
        version: 5,
        name: "customer_identity",
        sql: include_str!("migrations/0005_customer_identity.sql"),
    },
    Migration {
        version: 6,
        name: "inbound_media",
        sql: include_str!("migrations/0006_inbound_media.sql"),
    },
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// A handle on the store, cheap to clone.
///
/// One connection behind a mutex: SQLite allows one writer at a time anyway, and every call runs on a
/// blocking thread (`spawn_blocking`) so waiting for the lock or the disk never stalls the async
/// workers.
#[derive(Clone)]
pub struct Store {
    /// The single connection; held only inside `spawn_blocking` closures.
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store file at `path` and its parent directory, switches it to
    /// WAL and applies pending migrations.
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        // The first statements to touch the file are where "not a database" or a lock shows up.
        let mode = configure(&conn)
            .and_then(|()| {
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                    row.get::<_, String>(0)
                })
            })
            .map_err(|e| match StoreError::from(e) {
                StoreError::Sqlite(source) => open_error(source),
                locked => locked,
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "store file system does not support WAL; continuing without it");
        }
        migrate(&mut conn)?;
        Ok(Store::from_connection(conn))
    }

    /// A private in-memory store (tests, `sfwa demo`).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(Store::from_connection(conn))
    }

    fn from_connection(conn: Connection) -> Store {
        Store {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Runs `f` in a transaction on a blocking thread; commits if it returns `Ok`, rolls back
    /// otherwise. The transaction is `IMMEDIATE`: it takes the write lock up front, so it cannot fail
    /// half-way with "busy" when upgrading from a read.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        run_blocking(move || {
            let mut guard = lock(&conn);
            let tx = guard.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // On Err (or a panic) `tx` is dropped, which rolls back.
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Runs `f` against the connection on a blocking thread, outside any explicit transaction.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        run_blocking(move || f(&lock(&conn))).await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|join| StoreError::Worker(join.to_string()))?
}

/// A panic inside a closure poisons the mutex, but the connection is still sound: the transaction
/// was rolled back when it was dropped during unwinding. So poisoning is ignored.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Brings the schema up to [`latest_version`]; a no-op on an up-to-date file.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    apply_migrations(conn, MIGRATIONS)
}

fn apply_migrations(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let supported = migrations.last().map_or(0, |m| m.version);
    if current > supported {
        return Err(StoreError::NewerSchema {
            found: current,
            supported,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        let from = migration.version - 1;
        let failed = |source| StoreError::Migration {
            version: migration.version,
            name: migration.name,
            from,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        tx.execute_batch(migration.sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", migration.version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "store migrated"
        );
    }
    Ok(())
}

/// The stored form of a timestamp: unix milliseconds, UTC.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The inverse of [`to_millis`].
pub fn from_millis(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

/// Reads a timestamp column inside a row-mapping closure.
pub(crate) fn time_column(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let millis: i64 = row.get(index)?;
    from_millis(millis).ok_or(rusqlite::Error::IntegralValueOutOfRange(index, millis))
}

/// Reads a nullable timestamp column inside a row-mapping closure.
pub(crate) fn optional_time_column(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(millis) => from_millis(millis)
            .map(Some)
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(index, millis)),
    }
}

/// A migrated in-memory connection for the unit tests of the store's modules.
#[cfg(test)]
pub(crate) fn test_connection() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
    configure(&conn).expect("configure");
    migrate(&mut conn).expect("migrate");
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_are_contiguous_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1, "{}", migration.name);
        }
    }

    #[test]
    fn reopening_a_file_store_is_idempotent_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sfwa.db");
        let first = Store::open(&path).unwrap();
        let conn = lock(&first.conn);
        super::super::cursors::set(&conn, "replay", "42", Utc::now()).unwrap();
        drop(conn);
        drop(first);

        let second = Store::open(&path).unwrap();
        let conn = lock(&second.conn);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, latest_version());
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(
            super::super::cursors::get(&conn, "replay").unwrap(),
            Some("42".to_string())
        );
    }

    #[test]
    fn a_store_written_by_a_newer_sfwa_is_refused_with_both_versions_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sfwa.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 7)
            .unwrap();
        drop(conn);

        let error = Store::open(&path).unwrap_err();

        assert!(
            matches!(error, StoreError::NewerSchema { found, supported } if found == latest_version() + 7 && supported == latest_version())
        );
        assert!(error.to_string().contains("newer sfwa"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "this is not sqlite, just some text long enough to have a header",
        )
        .unwrap();

        let error = Store::open(&path).unwrap_err();

        assert!(error.to_string().contains("notes.txt"), "{error}");
    }

    #[test]
    fn a_failing_migration_leaves_the_store_at_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = [
            Migration {
                version: 1,
                name: "good",
                sql: "CREATE TABLE a (x INTEGER);",
            },
            Migration {
                version: 2,
                name: "bad",
                sql: "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);",
            },
        ];

        let error = apply_migrations(&mut conn, &migrations).unwrap_err();

        assert!(
            matches!(
                error,
                StoreError::Migration {
                    version: 2,
                    from: 1,
                    ..
                }
            ),
            "{error}"
        );
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 1);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            tables, 0,
            "the failed migration's first statement was rolled back"
        );
    }

    #[test]
    fn a_file_held_by_another_process_is_reported_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sfwa.db");
        drop(Store::open(&path).unwrap());
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();

        let error = StoreError::from(
            other
                .execute_batch("BEGIN IMMEDIATE")
                .expect_err("the file is locked"),
        );

        assert!(matches!(error, StoreError::Locked(_)));
        assert!(
            error
                .to_string()
                .starts_with("database is locked by another process"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_webhook_batch_commits_dedupe_status_mirror_and_write_back_together() {
        use crate::domain::status::MessageStatus;
        use crate::store::{dedupe, inbound, journal, outbox};
        use std::str::FromStr;
        let store = Store::open_in_memory().unwrap();
        let now = Utc::now();
        let wamid = || crate::domain::ids::Wamid::from_str("wamid.A").unwrap();
        store
            .write(move |tx| {
                journal::claim(tx, &"a015g00000AbCdEAAV".parse().unwrap(), now)?;
                journal::mark_sending(
                    tx,
                    &"a015g00000AbCdEAAV".parse().unwrap(),
                    "PN1",
                    "15550001",
                    now,
                )?;
                journal::mark_sent(tx, &"a015g00000AbCdEAAV".parse().unwrap(), &wamid(), now)
            })
            .await
            .unwrap();

        let batch = move |tx: &Transaction| -> Result<bool, StoreError> {
            if !dedupe::first_seen(tx, "status:wamid.A:delivered", now)? {
                return Ok(false);
            }
            let applied =
                journal::apply_status(tx, &wamid(), None, MessageStatus::Delivered, now, now)?;
            if let journal::StatusApplied::Applied { record_id, .. } = applied {
                let mut fields = serde_json::Map::new();
                fields.insert("Status__c".into(), "Delivered".into());
                outbox::enqueue(tx, "WhatsApp_Message__c", record_id.as_str(), &fields, now)?;
            }
            let (number, customer) = ("1".parse().unwrap(), "15550001".parse().unwrap());
            inbound::record_inbound(tx, &number, &customer, now)?;
            Ok(true)
        };
        let first = store.write(batch).await.unwrap();
        let redelivery = store.write(batch).await.unwrap();

        assert!(first);
        assert!(!redelivery);
        let depth = store.read(outbox::depth).await.unwrap();
        assert_eq!(depth, 1);
    }

    #[tokio::test]
    async fn write_rolls_back_everything_when_the_closure_fails() {
        let store = Store::open_in_memory().unwrap();
        let now = Utc::now();

        let result = store
            .write(move |tx| {
                super::super::cursors::set(tx, "replay", "1", now)?;
                Err::<(), _>(StoreError::Worker("simulated failure".into()))
            })
            .await;

        assert!(result.is_err());
        let value = store
            .read(|conn| super::super::cursors::get(conn, "replay"))
            .await
            .unwrap();
        assert_eq!(value, None);
    }

    #[tokio::test]
    async fn write_commits_when_the_closure_succeeds() {
        let store = Store::open_in_memory().unwrap();
        let now = Utc::now();

        store
            .write(move |tx| super::super::cursors::set(tx, "replay", "7", now))
            .await
            .unwrap();

        let value = store
            .read(|conn| super::super::cursors::get(conn, "replay"))
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("7"));
    }

    #[test]
    fn timestamps_round_trip_through_millis() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T12:34:56.789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_millis(to_millis(at)), Some(at));
    }
}
