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
//! Items Salesforce refuses for good are moved by [`dead_letter`] (version-checked) or [`drop_item`]
//! to a dead-letter table, capped at [`DEAD_LETTER_CAP`] rows (oldest dropped first). Operators
//! see them with [`dead_letters`] and act on them with `sfwa dead-letters`: [`revive`] puts them
//! back into the outbox (merged with anything pending for the record), [`forget`] deletes them.
//! Those commands run beside a running daemon: they only ever bump an item's version, which the
//! flush's version-checked ack already copes with.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::db::limit_param;
use super::db::{from_millis, time_column, to_millis};
use super::error::StoreError;

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
    let (operation_name, external_id_field) = match operation {
        Operation::Update => ("update", None),
        Operation::Upsert { external_id_field } => ("upsert", Some(external_id_field)),
    };
    // The merge in Rust, for values `json_patch` would treat differently (a null deletes, an
    // object merges deeply); when nothing is pending the insert below serves both paths.
    if !merges_in_sql(fields) {
        let pending: Option<String> = conn
            .prepare_cached("SELECT fields FROM outbox WHERE item_key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?;
        if let Some(stored) = pending {
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
            return Ok(());
        }
    }
    // One statement for both cases (a status per webhook lands here): SQLite merges the
    // pending fields itself, which for these values is exactly the merge above.
    conn.prepare_cached(
        "INSERT INTO outbox (item_key, operation, object, external_id_field, record_key,
             fields, version, first_enqueued_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)
         ON CONFLICT (item_key) DO UPDATE SET
             fields = json_patch(outbox.fields, excluded.fields),
             version = outbox.version + 1,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        key,
        operation_name,
        object,
        external_id_field,
        record_key,
        fields_json(fields),
        to_millis(now)
    ])?;
    Ok(())
}

/// Whether SQLite's `json_patch` (RFC 7396) merges `fields` into a pending item exactly as
/// [`merge_or_insert`]'s own merge does (later values win per field, untouched fields kept, the
/// order of first appearance kept): it does unless a value is `null` (which `json_patch` reads as
/// "remove the field", where a write-back means "clear it") or an object (which it merges
/// recursively instead of replacing).
fn merges_in_sql(fields: &Map<String, Value>) -> bool {
    fields
        .values()
        .all(|value| !value.is_null() && !value.is_object())
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

/// Whether a write-back for `key` (a record Id, or an [`upsert_key`]) is still waiting to be
/// confirmed by Salesforce: until it is, what Salesforce shows of that record is out of date.
pub fn is_pending(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM outbox WHERE item_key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
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
    if !move_to_dead_letters(conn, key, reason, now)? {
        return Ok(false);
    }
    tracing::warn!(item_key = %key, reason = %reason, "write-back dropped to dead letters");
    Ok(true)
}

fn move_to_dead_letters(
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
    Ok(true)
}

/// The flush of `version` failed because Salesforce as a whole could not take it (an outage, the
/// daily API allowance spent, the org refusing the whole call): hides the item until
/// `next_attempt_at` without counting an attempt, since nothing is wrong with the item itself and
/// an outage of hours must only delay it (guarantee 2). Version-checked like [`retry_later`].
pub fn postpone(
    conn: &Connection,
    key: &str,
    version: i64,
    next_attempt_at: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE outbox SET next_attempt_at = ?3, last_error = ?4, updated_at = ?5
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

/// Salesforce refused the values of `version` for good: moves the item to the dead letters with
/// `reason`. If a newer enqueue changed the item meanwhile, nothing moves (`false`): the newer
/// values have not been tried yet and may well be accepted.
pub fn dead_letter(
    conn: &Connection,
    key: &str,
    version: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT version FROM outbox WHERE item_key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?;
    if current != Some(version) {
        return Ok(false);
    }
    move_to_dead_letters(conn, key, reason, now)
}

/// The record is gone from Salesforce: forgets the item, whatever its version (any later write to
/// the record fails the same way, and there is nothing for anyone to act on). `false` if there
/// was no such item.
pub fn discard(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM outbox WHERE item_key = ?1")?
        .execute([key])?;
    Ok(deleted == 1)
}

/// A write-back Salesforce refused for good.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// The dead letter's own row id (one item key can be dead-lettered more than once).
    pub id: i64,
    /// The outbox key it had, which `sfwa dead-letters retry|drop` takes.
    pub key: String,
    pub item: OutboxItem,
    pub reason: String,
    pub dropped_at: DateTime<Utc>,
}

/// Dead letters held.
pub fn dead_letter_count(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbox_dead")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The keys among `keys` that no dead letter has (an operator's typo, or already retried).
pub fn unknown_dead_letter_keys(
    conn: &Connection,
    keys: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut unknown = Vec::new();
    for key in keys {
        let found: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox_dead WHERE item_key = ?1)")?
            .query_row([key], |row| row.get(0))?;
        if !found {
            unknown.push(key.clone());
        }
    }
    Ok(unknown)
}

/// Which dead letters an operator's command acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Outbox keys (a record Id, or an `upsert/…` key), as `sfwa dead-letters list` shows them.
    Keys(Vec<String>),
}

/// Dead letters with the selected keys (every one for [`Selection::All`]), newest first, at most
/// `limit`.
pub fn dead_letters_selected(
    conn: &Connection,
    selection: &Selection,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    match selection {
        Selection::All => dead_letters(conn, limit),
        Selection::Keys(keys) => {
            let mut letters = Vec::new();
            for key in keys {
                letters.extend(read_dead_letters(
                    conn,
                    "WHERE item_key = ?1",
                    params![key],
                    usize::MAX,
                )?);
            }
            letters.sort_by_key(|letter| std::cmp::Reverse(letter.id));
            letters.truncate(limit);
            Ok(letters)
        }
    }
}

/// What [`revive`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revived {
    /// Dead letters taken out of the dead-letter table.
    pub dead_letters: usize,
    /// Outbox items they became (one per key).
    pub items: usize,
    /// Of those, items merged into a write-back already pending for the same record.
    pub merged: usize,
}

/// Moves the selected dead letters back into the outbox, due at once. Several dead letters of one
/// key merge oldest first; a write-back already pending for the record keeps its values over the
/// dead letter's (they are newer), and its version is bumped so a flush running meanwhile does not
/// ack the item it read before the merge.
pub fn revive(
    conn: &Connection,
    selection: &Selection,
    now: DateTime<Utc>,
) -> Result<Revived, StoreError> {
    let mut letters = dead_letters_selected(conn, selection, usize::MAX)?;
    letters.reverse(); // oldest first: later dead letters' values win
    let mut revived = Revived::default();
    let mut keys: Vec<String> = Vec::new();
    for letter in &letters {
        if !keys.contains(&letter.key) {
            keys.push(letter.key.clone());
        }
    }
    for key in keys {
        let mut fields = Map::new();
        let mut first: Option<&DeadLetter> = None;
        for letter in letters.iter().filter(|l| l.key == key) {
            first.get_or_insert(letter);
            fields.extend(letter.item.fields.clone());
        }
        let Some(first) = first else { continue };
        let pending: Option<String> = conn
            .prepare_cached("SELECT fields FROM outbox WHERE item_key = ?1")?
            .query_row([&key], |row| row.get(0))
            .optional()?;
        match pending {
            Some(stored) => {
                fields.extend(parse_fields(&first.item.record_id, &stored)?);
                conn.prepare_cached(
                    "UPDATE outbox SET fields = ?2, version = version + 1, next_attempt_at = NULL,
                         updated_at = ?3
                     WHERE item_key = ?1",
                )?
                .execute(params![
                    key,
                    Value::Object(fields).to_string(),
                    to_millis(now)
                ])?;
                revived.merged += 1;
            }
            None => {
                let (operation, external_id_field) = match &first.item.operation {
                    Operation::Update => ("update", None),
                    Operation::Upsert { external_id_field } => {
                        ("upsert", Some(external_id_field.as_str()))
                    }
                };
                conn.prepare_cached(
                    "INSERT INTO outbox (item_key, operation, object, external_id_field,
                         record_key, fields, version, first_enqueued_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
                )?
                .execute(params![
                    key,
                    operation,
                    first.item.object,
                    external_id_field,
                    first.item.record_id,
                    Value::Object(fields).to_string(),
                    to_millis(first.item.first_enqueued_at),
                    to_millis(now)
                ])?;
            }
        }
        revived.items += 1;
        revived.dead_letters += conn
            .prepare_cached("DELETE FROM outbox_dead WHERE item_key = ?1")?
            .execute([&key])?;
    }
    Ok(revived)
}

/// Deletes the selected dead letters for good; returns how many.
pub fn forget(conn: &Connection, selection: &Selection) -> Result<usize, StoreError> {
    match selection {
        Selection::All => Ok(conn
            .prepare_cached("DELETE FROM outbox_dead")?
            .execute([])?),
        Selection::Keys(keys) => {
            let mut deleted = 0;
            for key in keys {
                deleted += conn
                    .prepare_cached("DELETE FROM outbox_dead WHERE item_key = ?1")?
                    .execute([key])?;
            }
            Ok(deleted)
        }
    }
}

/// The most recent dead letters, newest first.
pub fn dead_letters(conn: &Connection, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
    read_dead_letters(conn, "", params![], limit)
}

fn read_dead_letters(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let sql = format!(
        "SELECT operation, external_id_field, object, record_key, fields, version, attempts,
             first_enqueued_at, NULL, reason, dropped_at, id, item_key
         FROM outbox_dead {filter} ORDER BY id DESC LIMIT {}",
        limit_param(limit)
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params, |row| {
        let (item, fields) = item_from_row(row)?;
        Ok((
            item,
            fields,
            row.get::<_, String>(9)?,
            time_column(row, 10)?,
            row.get::<_, i64>(11)?,
            row.get::<_, String>(12)?,
        ))
    })?;
    let mut letters = Vec::new();
    for row in rows {
        let (mut item, fields, reason, dropped_at, id, key) = row?;
        item.fields = parse_fields(&item.record_id, &fields)?;
        letters.push(DeadLetter {
            id,
            key,
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

/// The stored form of `fields`, written without copying the map first.
fn fields_json(fields: &Map<String, Value>) -> String {
    // A map of JSON values with text keys always serializes.
    serde_json::to_string(fields).unwrap_or_else(|_| "{}".to_string())
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

    /// The merge [`merge_or_insert`] did before it let SQLite merge: later values win per field,
    /// first appearance keeps its place.
    fn merged_in_rust(writes: &[Value]) -> Value {
        let mut merged = Map::new();
        for write in writes {
            for (name, value) in fields(write.clone()) {
                merged.insert(name, value);
            }
        }
        Value::Object(merged)
    }

    #[test]
    fn the_merge_sqlite_does_gives_the_same_fields_in_the_same_order_as_the_merge_in_rust() {
        let cases = [
            vec![
                json!({"Status__c": "Sent", "Sent_At__c": "2026-11-25T12:00:00.000Z"}),
                json!({"Status__c": "Delivered", "Delivered_At__c": "t2", "Billable__c": true}),
                json!({"Status__c": "Read", "Read_At__c": "t3", "Sent_At__c": "t1'"}),
            ],
            vec![
                json!({"A__c": 1, "B__c": 2.5, "C__c": -3, "D__c": 1e300}),
                json!({"B__c": "two", "E__c": [1, "x", null], "A__c": false}),
            ],
            vec![
                json!({"Text__c": "é \" \\ \n \u{1} 😀 \u{2028}", "Z__c": ""}),
                json!({"Text__c": "tab\there", "Y__c": "😀"}),
            ],
            vec![json!({}), json!({"Only__c": "x"}), json!({})],
            // Null and object values take the merge in Rust; mixed with the others they must
            // still agree.
            vec![
                json!({"Error_Code__c": "X", "Obj__c": {"a": 1, "b": 2}}),
                json!({"Error_Code__c": null, "Obj__c": {"a": 3}}),
                json!({"Status__c": "Read"}),
            ],
        ];
        for (i, writes) in cases.iter().enumerate() {
            let conn = test_connection();
            let now = Utc::now();

            for write in writes {
                enqueue(&conn, OBJECT, RECORD, &fields(write.clone()), now).unwrap();
            }

            let item = &due(&conn, now, 10).unwrap()[0];
            let got = Value::Object(item.fields.clone());
            let expected = merged_in_rust(writes);
            assert_eq!(got, expected, "case {i}");
            let order: Vec<&String> = item.fields.keys().collect();
            let expected_order: Vec<&String> = expected.as_object().unwrap().keys().collect();
            assert_eq!(order, expected_order, "case {i}");
            assert_eq!(item.version, writes.len() as i64, "case {i}");
        }
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
    fn a_dead_letter_is_made_only_of_the_version_that_was_refused() {
        let conn = test_connection();
        let now = Utc::now();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Sent_At__c": "bad"})),
            now,
        )
        .unwrap();
        let refused = due(&conn, now, 10).unwrap().remove(0);
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Sent_At__c": "good"})),
            now,
        )
        .unwrap();

        let moved_stale =
            dead_letter(&conn, RECORD, refused.version, "JSON_PARSER_ERROR", now).unwrap();
        let current = due(&conn, now, 10).unwrap().remove(0);
        let moved = dead_letter(&conn, RECORD, current.version, "JSON_PARSER_ERROR", now).unwrap();

        assert!(!moved_stale, "newer values are tried first");
        assert!(moved);
        assert_eq!(depth(&conn).unwrap(), 0);
        assert_eq!(dead_letter_count(&conn).unwrap(), 1);
        let letter = &dead_letters(&conn, 10).unwrap()[0];
        assert_eq!(letter.key, RECORD);
        assert_eq!(letter.item.fields["Sent_At__c"], json!("good"));
    }

    #[test]
    fn postponing_hides_an_item_without_counting_an_attempt() {
        let conn = test_connection();
        let now = DateTime::from_timestamp(1_770_000_000, 0).unwrap();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Sent"})),
            now,
        )
        .unwrap();
        let item = due(&conn, now, 10).unwrap().remove(0);

        assert!(postpone(
            &conn,
            RECORD,
            item.version,
            now + Duration::seconds(10),
            "503",
            now
        )
        .unwrap());

        assert!(due(&conn, now + Duration::seconds(9), 10)
            .unwrap()
            .is_empty());
        let later = due(&conn, now + Duration::seconds(10), 10).unwrap();
        assert_eq!(later[0].attempts, 0);
        assert_eq!(later[0].last_error.as_deref(), Some("503"));
    }

    #[test]
    fn a_revived_dead_letter_merges_under_the_pending_values_and_is_due_at_once() {
        let conn = test_connection();
        let now = DateTime::from_timestamp(1_770_000_000, 0).unwrap();
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Sent", "Sent_At__c": "bad", "Error_Code__c": null})),
            now,
        )
        .unwrap();
        assert!(drop_item(&conn, RECORD, "JSON_PARSER_ERROR", now).unwrap());
        enqueue(
            &conn,
            OBJECT,
            "a015g00000OtHeRAAV",
            &fields(json!({"Status__c": "Sent"})),
            now,
        )
        .unwrap();
        assert!(drop_item(&conn, "a015g00000OtHeRAAV", "JSON_PARSER_ERROR", now).unwrap());
        enqueue(
            &conn,
            OBJECT,
            RECORD,
            &fields(json!({"Status__c": "Delivered", "Sent_At__c": "good"})),
            now,
        )
        .unwrap();
        let pending = due(&conn, now, 10).unwrap().remove(0);
        assert!(retry_later(
            &conn,
            RECORD,
            pending.version,
            now + Duration::hours(1),
            "x",
            now
        )
        .unwrap());

        let revived = revive(&conn, &Selection::Keys(vec![RECORD.into()]), now).unwrap();

        assert_eq!(
            revived,
            Revived {
                dead_letters: 1,
                items: 1,
                merged: 1
            }
        );
        let items = due(&conn, now, 10).unwrap();
        assert_eq!(items.len(), 1, "due at once, not after the back-off");
        assert_eq!(
            Value::Object(items[0].fields.clone()),
            json!({"Status__c": "Delivered", "Sent_At__c": "good", "Error_Code__c": null})
        );
        assert!(
            items[0].version > pending.version,
            "a running flush's ack cannot remove it"
        );
        assert_eq!(dead_letter_count(&conn).unwrap(), 1);
        assert_eq!(forget(&conn, &Selection::All).unwrap(), 1);
        assert_eq!(dead_letter_count(&conn).unwrap(), 0);
    }

    #[test]
    fn a_revived_dead_letter_with_nothing_pending_becomes_its_own_item_again() {
        let conn = test_connection();
        let now = Utc::now();
        enqueue_upsert(
            &conn,
            OBJECT,
            "WhatsApp_Message_Id__c",
            "wamid.IN1",
            &fields(json!({"Body__c": "hi"})),
            now,
        )
        .unwrap();
        let key = upsert_key(OBJECT, "WhatsApp_Message_Id__c", "wamid.IN1");
        assert!(drop_item(&conn, &key, "STRING_TOO_LONG", now).unwrap());

        let revived = revive(&conn, &Selection::All, now).unwrap();

        assert_eq!((revived.items, revived.merged), (1, 0));
        let item = due(&conn, now, 10).unwrap().remove(0);
        assert_eq!(item.key(), key);
        assert_eq!(item.fields["Body__c"], json!("hi"));
        assert_eq!(dead_letter_count(&conn).unwrap(), 0);
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
