//! `--journal-rows N`: the store a daemon has after months of work, written before it starts, so
//! a run shows what an old store costs (the RSS goal is "with 1 M journal rows").
//!
//! N finished messages (Read), spread evenly over the journal's 30-day retention, each to one of
//! N / 10 customers, with a WhatsApp message id of Meta's length, each having seen its sent,
//! delivered and read webhooks (the row's `statuses_seen`; since schema 12 a status of our own
//! message leaves no `webhook_seen` key) — the rows the daemon's own retention keeps. The store
//! is opened with the daemon's code (`Store::open`, migrations applied), and the rows are written
//! in one transaction by one `INSERT … SELECT` over a counter, so 1 M rows take seconds. Their record Ids (`a0Hist…`) and message ids
//! (`wamid.HIST…`) cannot meet the run's own.

use std::path::Path;

use anyhow::Context;

use sfwa::store::Store;

/// Days of history: the journal's default retention (`retention.journal`).
const JOURNAL_DAYS: i64 = 30;
/// Messages per customer in the history.
const MESSAGES_PER_CUSTOMER: i64 = 10;

/// Writes `rows` finished messages into the store at `path`,
/// as sent by `number` (a `phone_number_id`), the newest a minute before `now_ms`.
pub async fn seed(path: &Path, rows: u64, number: &str, now_ms: i64) -> anyhow::Result<()> {
    if rows == 0 {
        return Ok(());
    }
    let store = Store::open(path).with_context(|| format!("opening {}", path.display()))?;
    let history = History::new(rows, now_ms);
    let number = number.to_string();
    store
        .write(move |tx| {
            let (newest, step) = (history.newest, history.step);
            tx.execute(
                JOURNAL_ROWS,
                (history.rows, &number, newest, step, history.customers),
            )?;
            Ok(())
        })
        .await
        .context("writing the journal history")?;
    Ok(())
}

/// Where the history's rows fall in time.
struct History {
    rows: i64,
    /// The newest row's time (ms), a minute before now.
    newest: i64,
    /// Ms between two rows, so that the oldest is an hour short of `JOURNAL_DAYS` old (kept by
    /// the retention job).
    step: i64,
    customers: i64,
}

impl History {
    fn new(rows: u64, now_ms: i64) -> History {
        let rows = rows as i64;
        History {
            rows,
            newest: now_ms - 60_000,
            step: ((JOURNAL_DAYS * 86_400_000 - 3_600_000) / rows.max(1)).max(1),
            customers: (rows / MESSAGES_PER_CUSTOMER).max(1),
        }
    }
}

/// Row i (1-based; `?1` rows) of number `?2` was updated at `?3 - i * ?4`; its customer is
/// `1555…` + i mod `?5`; it saw its sent, delivered and read webhooks (`statuses_seen` 1 | 4 | 8).
const JOURNAL_ROWS: &str = "
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
INSERT INTO journal (record_id, state, business_number_id, wa_id, wamid, attempts,
                     sending_since, status_at, created_at, updated_at, statuses_seen)
SELECT printf('a0Hist%012d', i), 'read', ?2, printf('1555%07d', i % ?5),
       printf('wamid.HIST%050d', i), 1,
       ?3 - i * ?4 - 2000, (?3 - i * ?4) / 1000, ?3 - i * ?4 - 2000, ?3 - i * ?4, 13
FROM n";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_history_of_a_thousand_messages_is_a_thousand_read_journal_rows_that_saw_their_statuses(
    ) {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sfwa.db");
        let now_ms = 1_800_000_000_000;

        // Act
        seed(&path, 1000, "1234", now_ms).await.unwrap();

        // Assert
        let conn = rusqlite::Connection::open(&path).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert_eq!(
            count("SELECT COUNT(*) FROM journal WHERE state = 'read'"),
            1000
        );
        assert_eq!(count("SELECT COUNT(DISTINCT wa_id) FROM journal"), 100);
        let oldest: i64 = count("SELECT MIN(updated_at) FROM journal");
        assert!(now_ms - oldest <= JOURNAL_DAYS * 86_400_000);
        // Sent, delivered and read seen (journal::seen_bit), and no key left behind by them.
        assert_eq!(
            count("SELECT COUNT(*) FROM journal WHERE statuses_seen = 1 | 4 | 8"),
            1000
        );
        assert_eq!(count("SELECT COUNT(*) FROM webhook_seen"), 0);
    }
}
