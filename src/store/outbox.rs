//! The write-back outbox: changes sfwa owes Salesforce, kept until Salesforce confirms them
//! (guarantee 2: an outage of hours only delays them).
//!
//! Items are coalesced per target record (guarantee 5): [`enqueue`] merges into the pending item,
//! later values winning per field and untouched fields kept, and bumps its `version`. A flush reads
//! [`due`] items (up to 200 fit one composite call), writes them, then [`ack`]s each with the version
//! it read. An enqueue that landed during the flush bumped the version, so the ack leaves that item
//! in place and the newer values go out next time; nothing is lost and nothing is written twice in
//! one flush. This assumes one flusher per store, which is how sfwa runs.
//!
//! Two kinds of item:
//! - [`Operation::Update`] — "set these fields on record X" (statuses, timestamps, errors): the main
//!   path. Its key is the record Id itself, so `ack(conn, record_id, version)` reads naturally.
//! - [`Operation::Upsert`] — "create or update the record whose external id field has this value",
//!   for inbound messages created in Salesforce (keyed by `WhatsApp_Message_Id__c`, so a retried
//!   create cannot duplicate). Its key is [`upsert_key`]; use [`OutboxItem::key`] for either kind.
//!
//! Items Salesforce refuses for good are moved by [`drop_item`] to a dead-letter table, capped at
//! [`DEAD_LETTER_CAP`] rows (oldest dropped first), for operators to inspect with [`dead_letters`].

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::db::{from_millis, time_column, to_millis};
use super::error::StoreError;
use super::journal::limit_param;

/// Dead letters kept; older ones are forgotten as new ones arrive.
pub const DEAD_LETTER_CAP: i64 = 10_000;

/// What the write-back does in Salesforce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// PATCH the record whose Id is the item's `record_id`.
    Update,
    /// Create or update the record whose `external_id_field` equals the item's `record_id`.
    Upsert { external_id_field: String },
}

/// A pending write-back.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxItem {
    pub operation: Operation,
    /// The sObject API name, e.g. `WhatsApp_Message__c`.
    pub object: String,
    /// The record Id (update) or the external id value (upsert).
    pub record_id: String,
    /// The merged field values to write.
    pub fields: Map<String, Value>,
    /// Bumped by every enqueue; pass it back to [`ack`] / [`retry_later`].
    pub version: i64,
    /// Failed flushes so far.
    pub attempts: u32,
    pub first_enqueued_at: DateTime<Utc>,
    /// Why the last flush failed, if it did.
    pub last_error: Option<String>,
}

impl OutboxItem {
    /// The key [`ack`], [`retry_later`] and [`drop_item`] take.
    pub fn key(&self) -> String {
        match &self.operation {
            Operation::Update => self.record_id.clone(),
            Operation::Upsert { external_id_field } => {
                upsert_key(&self.object, external_id_field, &self.record_id)
            }
        }
    }
}

/// The key of an upsert item. It cannot collide with a record Id (which has no `/`).
pub fn upsert_key(object: &str, external_id_field: &str, external_id: &str) -> String {
    format!("upsert/{object}/{external_id_field}/{external_id}")
}

/// Queues field updates for record `record_id`, merging into its pending item if there is one.
pub fn enqueue(
    conn: &Connection,
    object: &str,
    record_id: &str,
    fields: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    merge_or_insert(
        conn,
        record_id,
        &Operation::Update,
        object,
        record_id,
        fields,
        now,
    )
}

/// Queues a create-or-update keyed by `external_id_field = external_id`, merging like [`enqueue`].
pub fn enqueue_upsert(
    conn: &Connection,
    object: &str,
    external_id_field: &str,
    external_id: &str,
    fields: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let key = upsert_key(object, external_id_field, external_id);
    let operation = Operation::Upsert {
        external_id_field: external_id_field.to_string(),
    };
    merge_or_insert(conn, &key, &operation, object, external_id, fields, now)
}

/// A backing-off item keeps its due time when new values merge in: the failure was most likely
/// Salesforce being unavailable, and hammering it again would cost API calls for nothing.
fn merge_or_insert(
    conn: &Connection,
    key: &str,
    operation: &Operation,
    object: &str,
    record_key: &str,
    fields: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let pending: Option<String> = conn
        .prepare_cached("SELECT fields FROM outbox WHERE item_key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?;
    match pending {
        Some(stored) => {
            let mut merged = parse_fields(record_key, &stored)?;
            for (name, value) in fields {
                merged.insert(name.clone(), value.clone());
            }
            conn.prepare_cached(
                "UPDATE outbox SET fields = ?2, version = version + 1, updated_at = ?3
                 WHERE item_key = ?1",
            )?
            .execute(params![
                key,
                Value::Object(merged).to_string(),
                to_millis(now)
            ])?;
        }
        None => {
            let (operation_name, external_id_field) = match operation {
                Operation::Update => ("update", None),
                Operation::Upsert { external_id_field } => ("upsert", Some(external_id_field)),
            };
            conn.prepare_cached(
                "INSERT INTO outbox (item_key, operation, object, external_id_field, record_key,
                     fields, version, first_enqueued_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
            )?
            .execute(params![
                key,
                operation_name,
                object,
                external_id_field,
                record_key,
                Value::Object(fields.clone()).to_string(),
                to_millis(now)
            ])?;
        }
    }
    Ok(())
}

const ITEM_COLUMNS: &str = "operation, external_id_field, object, record_key, fields, version, \
     attempts, first_enqueued_at, last_error";

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<(OutboxItem, String)> {
    let operation: String = row.get(0)?;
    let operation = match (operation.as_str(), row.get::<_, Option<String>>(1)?) {
        ("upsert", Some(external_id_field)) => Operation::Upsert { external_id_field },
        _ => Operation::Update,
    };
    let item = OutboxItem {
        operation,
        object: row.get(2)?,
        record_id: row.get(3)?,
        fields: Map::new(),
        version: row.get(5)?,
        attempts: row.get(6)?,
        first_enqueued_at: time_column(row, 7)?,
        last_error: row.get(8)?,
    };
    Ok((item, row.get(4)?))
}

/// Up to `limit` items to flush, oldest first, skipping items backing off until later than `now`.
pub fn due(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM outbox
         WHERE next_attempt_at IS NULL OR next_attempt_at <= ?1
         ORDER BY first_enqueued_at, id LIMIT ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![to_millis(now), limit_param(limit)], item_from_row)?;
    let mut items = Vec::new();
    for row in rows {
        let (mut item, fields) = row?;
        item.fields = parse_fields(&item.record_id, &fields)?;
        items.push(item);
    }
    Ok(items)
}

/// Salesforce confirmed the write of `version`: removes the item, unless a newer enqueue changed it
/// meanwhile (then it stays, due, and `false` is returned).
pub fn ack(conn: &Connection, key: &str, version: i64) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM outbox WHERE item_key = ?1 AND version = ?2")?
        .execute(params![key, version])?;
    Ok(deleted == 1)
}

/// The flush of `version` failed for a reason that may pass: hides the item until
/// `next_attempt_at` and counts the attempt. If a newer enqueue changed the item meanwhile, nothing
/// changes (`false`): the newer values have not been tried yet and go out with the next flush.
pub fn retry_later(
    conn: &Connection,
    key: &str,
    version: i64,
    next_attempt_at: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?3, last_error = ?4,
                 updated_at = ?5
             WHERE item_key = ?1 AND version = ?2",
        )?
        .execute(params![
            key,
            version,
            to_millis(next_attempt_at),
            reason,
            to_millis(now)
        ])?;
    Ok(changed == 1)
}

/// Salesforce refused the item for good (record deleted, validation rule): moves it, whatever its
/// version, to the dead letters with `reason`. `false` if there was no such item.
pub fn drop_item(
    conn: &Connection,
    key: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let moved = conn
        .prepare_cached(
            "INSERT INTO outbox_dead (item_key, operation, object, external_id_field, record_key,
                 fields, version, attempts, first_enqueued_at, reason, dropped_at)
             SELECT item_key, operation, object, external_id_field, record_key,
                 fields, version, attempts, first_enqueued_at, ?2, ?3
             FROM outbox WHERE item_key = ?1",
        )?
        .execute(params![key, reason, to_millis(now)])?;
    if moved == 0 {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM outbox WHERE item_key = ?1")?
        .execute([key])?;
    conn.prepare_cached(
        "DELETE FROM outbox_dead WHERE id <= (SELECT max(id) FROM outbox_dead) - ?1",
    )?
    .execute([DEAD_LETTER_CAP])?;
    tracing::warn!(item_key = %key, reason = %reason, "write-back dropped to dead letters");
    Ok(true)
}

/// A write-back Salesforce refused for good.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub item: OutboxItem,
    pub reason: String,
    pub dropped_at: DateTime<Utc>,
}

/// The most recent dead letters, newest first.
pub fn dead_letters(conn: &Connection, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
    let sql = "SELECT operation, external_id_field, object, record_key, fields, version, attempts,
                   first_enqueued_at, NULL, reason, dropped_at
               FROM outbox_dead ORDER BY id DESC LIMIT ?1";
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map([limit_param(limit)], |row| {
        let (item, fields) = item_from_row(row)?;
        Ok((
            item,
            fields,
            row.get::<_, String>(9)?,
            time_column(row, 10)?,
        ))
    })?;
    let mut letters = Vec::new();
    for row in rows {
        let (mut item, fields, reason, dropped_at) = row?;
        item.fields = parse_fields(&item.record_id, &fields)?;
        letters.push(DeadLetter {
            item,
            reason,
            dropped_at,
        });
    }
    Ok(letters)
}

/// Items waiting (due or backing off).
pub fn depth(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbox")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// How long the oldest waiting item has waited; `None` when the outbox is empty.
pub fn oldest_age(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<Option<chrono::Duration>, StoreError> {
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT min(first_enqueued_at) FROM outbox")?
        .query_row([], |row| row.get(0))?;
    Ok(oldest.and_then(from_millis).map(|at| now - at))
}

fn parse_fields(record_key: &str, stored: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(stored).map_err(|source| StoreError::Json {
        record_key: record_key.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;
    use chrono::Duration;
    use serde_json::json;

    const OBJECT: &str = "WhatsApp_Message__c";
    const RECORD: &str = "a015g00000AbCdEAAV";

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    #[test]
    fn two_enqueues_for_one_record_coalesce_into_one_item_with_the_latest_values() {
        let conn = test_connection();
        let now = Utc::now();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Sent", "Sent_At__c": "t1"})),
            now,
        )
        .unwrap();

        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Delivered", "Delivered_At__c": "t2"})),
            now + Duration::seconds(1),
        )
        .unwrap();

        let items = due(&conn, now + Duration::seconds(1), 200).unwrap();
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(item.version, 2);
        assert_eq!(item.first_enqueued_at, from_millis(to_millis(now)).unwrap());
        assert_eq!(
            Value::Object(item.fields.clone()),
            json!({"Status__c": "Delivered", "Sent_At__c": "t1", "Delivered_At__c": "t2"})
        );
        assert_eq!(depth(&conn).unwrap(), 1);
    }

    #[test]
    fn a_null_value_is_written_not_treated_as_a_deletion() {
        let conn = test_connection();
        let now = Utc::now();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Error_Code__c": "X"})),
            now,
        )
        .unwrap();

        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Error_Code__c": null})),
            now,
        )
        .unwrap();

        let item = &due(&conn, now, 10).unwrap()[0];
        assert_eq!(item.fields.get("Error_Code__c"), Some(&Value::Null));
    }

    #[test]
    fn an_ack_with_a_stale_version_keeps_the_newer_values_for_the_next_flush() {
        let conn = test_connection();
        let now = Utc::now();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Sent"})),
            now,
        )
        .unwrap();
        let flushed = due(&conn, now, 200).unwrap().remove(0);
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Read"})),
            now,
        )
        .unwrap();

        let acked = ack(&conn, &flushed.key(), flushed.version).unwrap();

        assert!(!acked);
        let next = due(&conn, now, 200).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].fields.get("Status__c"), Some(&json!("Read")));
        assert!(ack(&conn, RECORD, next[0].version).unwrap());
        assert_eq!(depth(&conn).unwrap(), 0);
        assert_eq!(oldest_age(&conn, now).unwrap(), None);
    }

    #[test]
    fn an_item_retried_later_is_hidden_until_it_is_due() {
        let conn = test_connection();
        // Whole milliseconds: the store's precision.
        let now = DateTime::from_timestamp(1_770_000_000, 0).unwrap();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Sent"})),
            now,
        )
        .unwrap();
        enqueue(
            &conn,
            OBJECT,
            "a015g00000OtHeRAAV",
            &fields(json!({"Status__c": "Sent"})),
            now + Duration::seconds(1),
        )
        .unwrap();
        let item = due(&conn, now, 1).unwrap().remove(0);
        let retry_at = now + Duration::minutes(5);

        assert!(retry_later(
            &conn,
            &item.key(),
            item.version,
            retry_at,
            "REQUEST_LIMIT_EXCEEDED",
            now
        )
        .unwrap());

        let before = due(&conn, now + Duration::minutes(4), 200).unwrap();
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].record_id, "a015g00000OtHeRAAV");
        let after = due(&conn, retry_at, 200).unwrap();
        assert_eq!(after.len(), 2);
        assert_eq!(after[0].record_id, RECORD, "oldest first");
        assert_eq!(after[0].attempts, 1);
        assert_eq!(
            after[0].last_error.as_deref(),
            Some("REQUEST_LIMIT_EXCEEDED")
        );
        assert_eq!(depth(&conn).unwrap(), 2);
        assert_eq!(
            oldest_age(&conn, retry_at).unwrap(),
            Some(Duration::minutes(5))
        );
    }

    #[test]
    fn a_dropped_item_moves_to_the_dead_letters_with_its_reason() {
        let conn = test_connection();
        let now = Utc::now();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Sent"})),
            now,
        )
        .unwrap();

        assert!(drop_item(&conn, RECORD, "ENTITY_IS_DELETED: record deleted", now).unwrap());

        assert_eq!(depth(&conn).unwrap(), 0);
        assert!(due(&conn, now, 200).unwrap().is_empty());
        let letters = dead_letters(&conn, 10).unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].reason, "ENTITY_IS_DELETED: record deleted");
        assert_eq!(letters[0].item.record_id, RECORD);
        assert_eq!(
            letters[0].item.fields.get("Status__c"),
            Some(&json!("Sent"))
        );
        assert!(!drop_item(&conn, RECORD, "again", now).unwrap());
    }

    #[test]
    fn upserts_are_keyed_by_external_id_and_coalesce_separately_from_updates() {
        let conn = test_connection();
        let now = Utc::now();
        let inbound = fields(json!({"Direction__c": "Inbound", "Body__c": "hi"}));
        enqueue_upsert(
            &conn,
            OBJECT,
            "WhatsApp_Message_Id__c",
            "wamid.IN1",
            &inbound,
            now,
        )
        .unwrap();
        enqueue_upsert(
            &conn,
            OBJECT,
            "WhatsApp_Message_Id__c",
            "wamid.IN1",
            &fields(json!({"Contact__c": "003000000000001AAA"})),
            now,
        )
        .unwrap();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Sent"})),
            now,
        )
        .unwrap();

        let items = due(&conn, now, 200).unwrap();

        assert_eq!(items.len(), 2);
        let upsert = &items[0];
        assert_eq!(
            upsert.operation,
            Operation::Upsert {
                external_id_field: "WhatsApp_Message_Id__c".into()
            }
        );
        assert_eq!(upsert.record_id, "wamid.IN1");
        assert_eq!(upsert.fields.len(), 3);
        assert_eq!(
            upsert.key(),
            upsert_key(OBJECT, "WhatsApp_Message_Id__c", "wamid.IN1")
        );
        assert_eq!(items[1].operation, Operation::Update);
        assert!(ack(&conn, &upsert.key(), upsert.version).unwrap());
        assert_eq!(depth(&conn).unwrap(), 1);
    }

    #[test]
    fn ten_thousand_enqueues_in_one_transaction_complete() {
        let mut conn = test_connection();
        let now = Utc::now();
        let tx = conn.transaction().unwrap();
        for n in 0..10_000 {
            let record = format!("a015g0000{n:06}AAA");
            enqueue(
                &tx,
                OBJECT,
                &record,
                &fields(json!({"Status__c": "Sent", "n": n})),
                now,
            )
            .unwrap();
            if n % 2 == 0 {
                enqueue(
                    &tx,
                    OBJECT,
                    &record,
                    &fields(json!({"Status__c": "Delivered"})),
                    now,
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();

        assert_eq!(depth(&conn).unwrap(), 10_000);
        assert_eq!(due(&conn, now, 200).unwrap().len(), 200);
    }
}
