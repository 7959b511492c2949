//! Re-engagement and the messages waiting for the customer's reply (schema 9), per business
//! number and customer. What they mean is [`crate::pipeline::reengage`]'s; this is their memory.
//!
//! - [`Reengagement`]: the template sent to wake the customer, at most one per pair. A newer one
//!   replaces it only once `reengage.period` has passed ([`reserve`]), so two texts to one
//!   customer send one template.
//! - [`Waiting`]: a free-form message waiting for the reply. Its journal row stays `claimed`, due
//!   at its expiry, so the retry scan finds it after a restart (and fails it then, if no reply
//!   came); [`wake`] makes the pair's waiting messages due now, in creation order, one pace apart.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::db::{time_column, to_millis};
use super::error::StoreError;
use crate::domain::sf_id::SfId;

/// The re-engagement template sent (or being sent) to one customer from one number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reengagement {
    pub business_number_id: String,
    pub customer: String,
    /// The template's own message record; `None` while Salesforce has not answered the create.
    pub record_id: Option<SfId>,
    pub template: String,
    pub language: String,
    pub started_at: DateTime<Utc>,
}

/// A message waiting for the customer's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub record_id: SfId,
    pub business_number_id: String,
    pub customer: String,
    /// The record's creation (the order they go out in).
    pub created_at: DateTime<Utc>,
    pub since: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn reengagement_from_row(row: &Row<'_>) -> rusqlite::Result<Reengagement> {
    Ok(Reengagement {
        business_number_id: row.get(0)?,
        customer: row.get(1)?,
        record_id: row.get(2)?,
        template: row.get(3)?,
        language: row.get(4)?,
        started_at: time_column(row, 5)?,
    })
}

fn waiting_from_row(row: &Row<'_>) -> rusqlite::Result<Waiting> {
    Ok(Waiting {
        record_id: row.get(0)?,
        business_number_id: row.get(1)?,
        customer: row.get(2)?,
        created_at: time_column(row, 3)?,
        since: time_column(row, 4)?,
        expires_at: time_column(row, 5)?,
    })
}

const REENGAGEMENT: &str = "SELECT business_number_id, customer, record_id, template, language, \
                            started_at FROM reengagement ";
const WAITING: &str = "SELECT record_id, business_number_id, customer, created_at, since, \
                       expires_at FROM waiting ";

/// The pair's re-engagement, if one was ever sent (however long ago: the caller compares).
pub fn reengagement(
    conn: &Connection,
    number: &str,
    customer: &str,
) -> Result<Option<Reengagement>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "{REENGAGEMENT} WHERE business_number_id = ?1 AND customer = ?2"
        ))?
        .query_row(params![number, customer], reengagement_from_row)
        .optional()?)
}

/// Takes the pair's re-engagement slot for `template`: `true` when this caller must send it (no
/// re-engagement yet, or the last one began `period` or more ago), `false` when one is already
/// under way (another message of the same customer reserved it first).
pub fn reserve(
    conn: &Connection,
    number: &str,
    customer: &str,
    (template, language): (&str, &str),
    period: Duration,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO reengagement
                 (business_number_id, customer, record_id, template, language, started_at)
             VALUES (?1, ?2, NULL, ?3, ?4, ?5)
             ON CONFLICT (business_number_id, customer) DO UPDATE SET
                 record_id = NULL, template = ?3, language = ?4, started_at = ?5
             WHERE started_at <= ?6",
        )?
        .execute(params![
            number,
            customer,
            template,
            language,
            to_millis(now),
            to_millis(now - period)
        ])?;
    Ok(changed == 1)
}

/// The template's message record, once Salesforce created it.
pub fn set_record(
    conn: &Connection,
    number: &str,
    customer: &str,
    record_id: &SfId,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE reengagement SET record_id = ?3 WHERE business_number_id = ?1 AND customer = ?2",
    )?
    .execute(params![number, customer, record_id])?;
    Ok(())
}

/// Gives the pair's slot back (the template's record could not be created, or it failed), so the
/// next message tries again.
pub fn release(conn: &Connection, number: &str, customer: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM reengagement WHERE business_number_id = ?1 AND customer = ?2",
    )?
    .execute(params![number, customer])?;
    Ok(())
}

/// The re-engagement whose template record is `record_id`, if it is one.
pub fn reengagement_of_record(
    conn: &Connection,
    record_id: &SfId,
) -> Result<Option<Reengagement>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{REENGAGEMENT} WHERE record_id = ?1"))?
        .query_row([record_id], reengagement_from_row)
        .optional()?)
}

/// Whether `record_id` waits for a reply, and since when.
pub fn waiting(conn: &Connection, record_id: &SfId) -> Result<Option<Waiting>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{WAITING} WHERE record_id = ?1"))?
        .query_row([record_id], waiting_from_row)
        .optional()?)
}

/// The pair's waiting messages, oldest record first.
pub fn waiting_for(
    conn: &Connection,
    number: &str,
    customer: &str,
) -> Result<Vec<Waiting>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "{WAITING} WHERE business_number_id = ?1 AND customer = ?2 ORDER BY created_at, record_id"
    ))?;
    let rows = statement.query_map(params![number, customer], waiting_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Puts a message to wait (a second call keeps the first wait's start and expiry) and makes its
/// journal row due at the expiry. `false` when the journal row is no longer `claimed` without a
/// wamid (it moved on meanwhile): then nothing waits.
pub fn wait(conn: &Connection, waiting: &Waiting, now: DateTime<Utc>) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "INSERT INTO waiting
             (record_id, business_number_id, customer, created_at, since, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (record_id) DO NOTHING",
    )?
    .execute(params![
        waiting.record_id,
        waiting.business_number_id,
        waiting.customer,
        to_millis(waiting.created_at),
        to_millis(waiting.since),
        to_millis(waiting.expires_at)
    ])?;
    let expires_at =
        self::waiting(conn, &waiting.record_id)?.map_or(waiting.expires_at, |w| w.expires_at);
    let due = due_at(conn, &waiting.record_id, expires_at, now)?;
    if !due {
        remove(conn, &waiting.record_id)?;
    }
    Ok(due)
}

/// Sets a claimed, never-accepted journal row due at `at` (attempts unchanged).
fn due_at(
    conn: &Connection,
    record_id: &SfId,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE journal SET next_attempt_at = ?2, updated_at = ?3
             WHERE record_id = ?1 AND state = 'claimed' AND wamid IS NULL",
        )?
        .execute(params![record_id, to_millis(at), to_millis(now)])?;
    Ok(changed == 1)
}

/// The message no longer waits (sent, failed, canceled).
pub fn remove(conn: &Connection, record_id: &SfId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM waiting WHERE record_id = ?1")?
        .execute([record_id])?;
    Ok(())
}

/// The customer answered: the pair's waiting messages become due — the oldest now, each next one
/// `pace` later (Meta's per-recipient rate) — and stop waiting. Returns them, in that order.
///
/// Asked for every inbound message, while almost always nothing waits at all: so the table is
/// first asked whether it holds any row, a statement without parameters that SQLite compiles
/// once (the pair's query, bound to each new customer, was compiled again for every message and
/// cost more than the rest of the inbound's identity work). The table itself answers, so the
/// answer holds across restarts and whichever connection put a message to wait.
pub fn wake(
    conn: &Connection,
    number: &str,
    customer: &str,
    pace: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<SfId>, StoreError> {
    if !any_waiting(conn)? {
        return Ok(Vec::new());
    }
    let mut woken = Vec::new();
    for waiting in waiting_for(conn, number, customer)? {
        remove(conn, &waiting.record_id)?;
        let at = now + pace * i32::try_from(woken.len()).unwrap_or(i32::MAX);
        if due_at(conn, &waiting.record_id, at, now)? {
            woken.push(waiting.record_id);
        }
    }
    Ok(woken)
}

/// Whether any message waits for a reply, from any customer (one step into the table).
fn any_waiting(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM waiting)")?
        .query_row([], |row| row.get(0))?)
}

/// The template of re-engagement `record_id` failed: its slot is released and the pair's waiting
/// messages stop waiting. Returns them (for the caller to fail); empty when `record_id` is no
/// re-engagement.
pub fn reengagement_failed(
    conn: &Connection,
    record_id: &SfId,
) -> Result<Vec<Waiting>, StoreError> {
    let Some(reengagement) = reengagement_of_record(conn, record_id)? else {
        return Ok(Vec::new());
    };
    let (number, customer) = (&reengagement.business_number_id, &reengagement.customer);
    release(conn, number, customer)?;
    let waiting = waiting_for(conn, number, customer)?;
    for row in &waiting {
        remove(conn, &row.record_id)?;
    }
    Ok(waiting)
}

/// Messages waiting for a reply now (for `/metrics` and `sfwa plan`).
pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row("SELECT count(*) FROM waiting", [], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;
    use crate::store::journal;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn id(n: u8) -> SfId {
        format!("a00000000000{n:03}AAA").parse().unwrap()
    }

    fn waiting_row(n: u8, created_minutes: i64) -> Waiting {
        Waiting {
            record_id: id(n),
            business_number_id: "111".into(),
            customer: "16505551234".into(),
            created_at: now() + Duration::minutes(created_minutes),
            since: now(),
            expires_at: now() + Duration::days(7),
        }
    }

    #[test]
    fn one_reengagement_per_customer_per_period() {
        let conn = test_connection();
        let hello = ("hello_world", "en_US");

        let first = reserve(&conn, "111", "1650", hello, Duration::hours(24), now()).unwrap();
        let second = reserve(&conn, "111", "1650", hello, Duration::hours(24), now()).unwrap();
        let later = now() + Duration::hours(25);
        let third = reserve(&conn, "111", "1650", hello, Duration::hours(24), later).unwrap();

        assert!(first);
        assert!(!second);
        assert!(third);
    }

    #[test]
    fn a_reply_wakes_the_waiting_messages_in_creation_order_one_pace_apart() {
        let conn = test_connection();
        for (n, created) in [(2, 5), (1, 0)] {
            journal::claim(&conn, &id(n), now()).unwrap();
            assert!(wait(&conn, &waiting_row(n, created), now()).unwrap());
        }
        let due_now = journal::due_retries(&conn, now(), 10).unwrap();

        let woken = wake(&conn, "111", "16505551234", Duration::seconds(6), now()).unwrap();

        assert!(due_now.is_empty(), "waiting rows are due at their expiry");
        assert_eq!(woken, vec![id(1), id(2)]);
        let due = journal::due_retries(&conn, now() + Duration::seconds(6), 10).unwrap();
        let order: Vec<_> = due.iter().map(|e| e.record_id.clone()).collect();
        assert_eq!(order, vec![id(1), id(2)]);
        assert_eq!(journal::due_retries(&conn, now(), 10).unwrap().len(), 1);
        assert_eq!(count(&conn).unwrap(), 0);
    }

    #[test]
    fn a_reply_wakes_nothing_when_nothing_waits_and_only_its_own_pair_when_others_wait() {
        let conn = test_connection();
        let pace = Duration::seconds(6);

        assert!(!any_waiting(&conn).unwrap());
        assert!(wake(&conn, "111", "16505551234", pace, now())
            .unwrap()
            .is_empty());

        journal::claim(&conn, &id(1), now()).unwrap();
        assert!(wait(&conn, &waiting_row(1, 0), now()).unwrap());
        assert!(any_waiting(&conn).unwrap());
        let other = wake(&conn, "111", "16505559999", pace, now()).unwrap();
        let own = wake(&conn, "111", "16505551234", pace, now()).unwrap();

        assert!(other.is_empty(), "another customer's reply wakes nothing");
        assert_eq!(own, vec![id(1)]);
        assert!(!any_waiting(&conn).unwrap());
    }
}
