//! Who the customer is, per business number: one person known by any of the keys Meta gives for
//! them — the phone (`wa_id`), the business-scoped user id (BSUID), its parent form — merged when a
//! message shows two of them belong together, and re-keyed when Meta says the customer changed
//! number or user id. The window ([`super::inbound`]) is a column of the person, so it follows
//! them whichever key a message or a send uses.
//!
//! Placed between the webhook's apply step (`pipeline::identity` tells it what a message showed, in
//! the same transaction as the mirror) and the send path (`pipeline::dispatch` asks whom an
//! address reaches and when they last wrote).
//!
//! A key a person gave up (the old phone after `user_changed_number`) still finds them, so a rep's
//! record addressed to the old number reaches the new one; it is stamped with Meta's time of the
//! change, and a message *from* that key written after the change is someone else's (numbers are
//! reassigned): the key then leaves the person ([`find_live`]). Usernames are kept for people to
//! read, never as a key: they change and are released, and nothing can be sent to one.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::db::{from_millis, to_millis};
use super::error::StoreError;
use crate::domain::ids::{BusinessNumberId, CustomerId};

/// One person as the store knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The store's row id (stable until the person is merged into another).
    pub id: i64,
    /// The phone now, when known.
    pub wa_id: Option<CustomerId>,
    /// The BSUID now, when known.
    pub user_id: Option<CustomerId>,
    pub parent_user_id: Option<CustomerId>,
    pub username: Option<String>,
    /// The window: the customer's most recent inbound message, in Meta's time.
    pub last_inbound_at: Option<DateTime<Utc>>,
}

impl Customer {
    /// Whether `key` is this person's current key of `kind`.
    fn holds(&self, kind: KeyKind, key: &CustomerId) -> bool {
        let held = match kind {
            KeyKind::WaId => &self.wa_id,
            KeyKind::UserId => &self.user_id,
            KeyKind::ParentUserId => &self.parent_user_id,
        };
        held.as_ref() == Some(key)
    }
}

/// A person found by one key, and whether that key is one they gave up (and when).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub customer: Customer,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Which of a person's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    WaId,
    UserId,
    ParentUserId,
}

impl KeyKind {
    fn column(self) -> &'static str {
        match self {
            KeyKind::WaId => "wa_id",
            KeyKind::UserId => "user_id",
            KeyKind::ParentUserId => "parent_user_id",
        }
    }

    /// The kind of key `id` is: a phone, or a BSUID (`CC.ENT.…` being the parent form).
    pub fn of(id: &CustomerId) -> KeyKind {
        match id {
            CustomerId::WaId(_) => KeyKind::WaId,
            CustomerId::UserId(text) if is_parent(text) => KeyKind::ParentUserId,
            CustomerId::UserId(_) => KeyKind::UserId,
        }
    }
}

fn is_parent(user_id: &str) -> bool {
    user_id.get(2..7) == Some(".ENT.")
}

/// What one inbound message showed about its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub wa_id: Option<CustomerId>,
    pub user_id: Option<CustomerId>,
    pub parent_user_id: Option<CustomerId>,
    pub username: Option<String>,
    /// Meta's time of the message.
    pub at: DateTime<Utc>,
}

impl Seen {
    fn keys(&self) -> impl Iterator<Item = (KeyKind, &CustomerId)> {
        [
            (KeyKind::WaId, self.wa_id.as_ref()),
            (KeyKind::UserId, self.user_id.as_ref()),
            (KeyKind::ParentUserId, self.parent_user_id.as_ref()),
        ]
        .into_iter()
        .filter_map(|(kind, key)| key.map(|key| (kind, key)))
    }
}

/// The key's person and when they gave it up, as two primary-key probes rather than one JOIN:
/// SQLite recompiles that JOIN each time it is bound to another key (it runs for every inbound
/// message, several times), which cost more than the lookups themselves.
const FIND_KEY_SQL: &str = "SELECT customer, retired_at FROM customer_keys
     WHERE business_number_id = ?1 AND key = ?2";
const FIND_CUSTOMER_SQL: &str =
    "SELECT id, wa_id, user_id, parent_user_id, username, last_inbound_at FROM customers
     WHERE id = ?1";

/// The person `key` names for this business number (two primary-key probes).
pub fn find(
    conn: &Connection,
    number: &BusinessNumberId,
    key: &CustomerId,
) -> Result<Option<Found>, StoreError> {
    let Some((customer, retired_at)) = conn
        .prepare_cached(FIND_KEY_SQL)?
        .query_row(rusqlite::params![number, key], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    Ok(conn
        .prepare_cached(FIND_CUSTOMER_SQL)?
        .query_row([customer], |row| {
            Ok(Found {
                customer: Customer {
                    id: row.get(0)?,
                    wa_id: row.get(1)?,
                    user_id: row.get(2)?,
                    parent_user_id: row.get(3)?,
                    username: row.get(4)?,
                    last_inbound_at: row.get::<_, Option<i64>>(5)?.and_then(from_millis),
                },
                retired_at: retired_at.and_then(from_millis),
            })
        })
        .optional()?)
}

/// [`find`] for a message sent from `key` at `at`: a key the person gave up before `at` is no
/// longer theirs (someone else writes from that number now), so it is released and `None` is
/// returned.
pub fn find_live(
    conn: &Connection,
    number: &BusinessNumberId,
    key: &CustomerId,
    at: DateTime<Utc>,
) -> Result<Option<Found>, StoreError> {
    let found = find(conn, number, key)?;
    if found
        .as_ref()
        .and_then(|f| f.retired_at)
        .is_some_and(|retired| retired <= at)
    {
        conn.prepare_cached(
            "DELETE FROM customer_keys WHERE business_number_id = ?1 AND key = ?2",
        )?
        .execute(rusqlite::params![number, key])?;
        return Ok(None);
    }
    Ok(found)
}

/// A new person known by `key` alone. Only called for a key no person has (the callers looked
/// it up first), so this is [`set_key`] on an empty person without its lookups: the row is
/// inserted with the key in its column, and the key is pointed at it.
fn create(
    conn: &Connection,
    number: &BusinessNumberId,
    kind: KeyKind,
    key: &CustomerId,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let insert = match kind {
        KeyKind::WaId => {
            "INSERT INTO customers (business_number_id, wa_id, updated_at)
             VALUES (?1, ?2, ?3)"
        }
        KeyKind::UserId => {
            "INSERT INTO customers (business_number_id, user_id, updated_at)
             VALUES (?1, ?2, ?3)"
        }
        KeyKind::ParentUserId => {
            "INSERT INTO customers (business_number_id, parent_user_id, updated_at)
             VALUES (?1, ?2, ?3)"
        }
    };
    conn.prepare_cached(insert)?
        .execute(rusqlite::params![number, key, to_millis(at)])?;
    // `id` is the rowid. Not `RETURNING id`: SQLite gathers a RETURNING statement's rows in a
    // temporary table it opens and closes for every run (4 % of the writer thread's samples
    // under inbound webhooks from new customers, docs/performance.md, fourteenth measurement).
    let id = conn.last_insert_rowid();
    point_key(conn, number, key, id)?;
    Ok(id)
}

/// Makes `key` name person `id` (and no longer a given-up key).
fn point_key(
    conn: &Connection,
    number: &BusinessNumberId,
    key: &CustomerId,
    id: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO customer_keys (business_number_id, key, customer) VALUES (?1, ?2, ?3)
         ON CONFLICT (business_number_id, key)
         DO UPDATE SET customer = excluded.customer, retired_at = NULL",
    )?
    .execute(rusqlite::params![number, key, id])?;
    Ok(())
}

/// The person `key` names for a message from it at `at`, created when there is none.
pub fn find_or_create(
    conn: &Connection,
    number: &BusinessNumberId,
    key: &CustomerId,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    match find_live(conn, number, key, at)? {
        Some(found) => Ok(found.customer.id),
        None => create(conn, number, KeyKind::of(key), key, at),
    }
}

/// Records what a message from a customer showed: finds the person by each key it carries, merges
/// the persons when the keys named two (a BSUID-only customer who now shows their phone), creates
/// one when none, and makes the message's keys the person's current ones. A key met through one
/// the person gave up *after* this message was written (a late webhook) changes nothing.
/// Returns the person's id.
pub fn observe(
    conn: &Connection,
    number: &BusinessNumberId,
    seen: &Seen,
) -> Result<Option<i64>, StoreError> {
    let mut person: Option<i64> = None;
    // The keys to make current, each with whether its person already holds it as theirs.
    let mut current = Vec::new();
    let mut merged = false;
    for (kind, key) in seen.keys() {
        match find_live(conn, number, key, seen.at)? {
            Some(found) if found.retired_at.is_some() => {
                person.get_or_insert(found.customer.id);
            }
            Some(found) => {
                let id = found.customer.id;
                match person {
                    Some(keep) if keep != id => {
                        merge(conn, keep, id, seen.at)?;
                        merged = true;
                    }
                    Some(_) => {}
                    None => person = Some(id),
                }
                current.push((kind, key, found.customer.holds(kind, key)));
            }
            None => current.push((kind, key, false)),
        }
    }
    if current.is_empty() {
        // Only keys given up: the person they name is the answer, unchanged.
        return Ok(person);
    }
    if !merged {
        // Setting a key its person already holds changes nothing (a status names the same
        // pair three times per message): skip its lookups and writes. After a merge the merged
        // person's keys may have been given up, so every key is set again.
        current.retain(|&(_, _, held)| !held);
    }
    let mut keys = current.into_iter().map(|(kind, key, _)| (kind, key));
    let person = match person {
        Some(id) => id,
        // A new person already has its first key: setting it again would change nothing.
        None => match keys.next() {
            Some((kind, key)) => create(conn, number, kind, key, seen.at)?,
            None => return Ok(None),
        },
    };
    for (kind, key) in keys {
        set_key(conn, number, person, kind, key, seen.at)?;
    }
    if let Some(username) = &seen.username {
        conn.prepare_cached("UPDATE customers SET username = ?2 WHERE id = ?1")?
            .execute(rusqlite::params![person, username])?;
    }
    Ok(Some(person))
}

/// Makes `key` person `id`'s current key of `kind`: the one it replaces is kept as given up at
/// `at` (it still finds the person, see the module docs), and a person `key` named until now is
/// merged into this one.
pub fn set_key(
    conn: &Connection,
    number: &BusinessNumberId,
    id: i64,
    kind: KeyKind,
    key: &CustomerId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(other) = find(conn, number, key)?.filter(|f| f.customer.id != id) {
        merge(conn, id, other.customer.id, at)?;
    }
    let column = kind.column();
    let old: Option<CustomerId> = conn
        .prepare_cached(&format!("SELECT {column} FROM customers WHERE id = ?1"))?
        .query_row([id], |row| row.get(0))?;
    if let Some(old) = old.filter(|old| old != key) {
        conn.prepare_cached(
            "UPDATE customer_keys SET retired_at = ?3
             WHERE business_number_id = ?1 AND key = ?2 AND retired_at IS NULL",
        )?
        .execute(rusqlite::params![number, old, to_millis(at)])?;
    }
    conn.prepare_cached(&format!(
        "UPDATE customers SET {column} = ?2, updated_at = ?3 WHERE id = ?1"
    ))?
    .execute(rusqlite::params![id, key, to_millis(at)])?;
    point_key(conn, number, key, id)
}

/// Person `gone` is person `keep` (a message at `at` showed it): `keep` takes every key of `gone`,
/// the keys it lacks, and the later of the two windows. Where both had a phone (or a BSUID),
/// `keep`'s stays current and `gone`'s is kept as given up at `at`, so every current key is one
/// of the person's columns.
fn merge(conn: &Connection, keep: i64, gone: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE customers SET
             last_inbound_at = (SELECT max(last_inbound_at) FROM customers WHERE id IN (?1, ?2)),
             wa_id = coalesce(wa_id, (SELECT wa_id FROM customers WHERE id = ?2)),
             user_id = coalesce(user_id, (SELECT user_id FROM customers WHERE id = ?2)),
             parent_user_id = coalesce(parent_user_id, (SELECT parent_user_id FROM customers WHERE id = ?2)),
             username = coalesce(username, (SELECT username FROM customers WHERE id = ?2))
         WHERE id = ?1",
    )?
    .execute([keep, gone])?;
    conn.prepare_cached("UPDATE customer_keys SET customer = ?1 WHERE customer = ?2")?
        .execute([keep, gone])?;
    conn.prepare_cached("DELETE FROM customers WHERE id = ?1")?
        .execute([gone])?;
    conn.prepare_cached(
        "UPDATE customer_keys SET retired_at = ?2
         WHERE customer = ?1 AND retired_at IS NULL AND key NOT IN (
             SELECT key FROM (
                 SELECT wa_id AS key FROM customers WHERE id = ?1
                 UNION ALL SELECT user_id FROM customers WHERE id = ?1
                 UNION ALL SELECT parent_user_id FROM customers WHERE id = ?1)
             WHERE key IS NOT NULL)",
    )?
    .execute(rusqlite::params![keep, to_millis(at)])?;
    Ok(())
}

/// `user_changed_number`: the customer who wrote from `from` now has the phone `new_wa_id`.
pub fn changed_number(
    conn: &Connection,
    number: &BusinessNumberId,
    from: &CustomerId,
    new_wa_id: &CustomerId,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let id = find_or_create(conn, number, from, at)?;
    set_key(conn, number, id, KeyKind::WaId, new_wa_id, at)?;
    Ok(id)
}

/// `user_changed_user_id`: the customer with BSUID `previous` (or, when Meta did not say, the one
/// who wrote from `from`) now has the BSUID `new_user_id`.
pub fn changed_user_id(
    conn: &Connection,
    number: &BusinessNumberId,
    from: &CustomerId,
    previous: Option<&CustomerId>,
    new_user_id: &CustomerId,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let known = match previous {
        Some(previous) => find(conn, number, previous)?.map(|f| f.customer.id),
        None => None,
    };
    let id = match known {
        Some(id) => id,
        None => find_or_create(conn, number, from, at)?,
    };
    set_key(conn, number, id, KeyKind::of(new_user_id), new_user_id, at)?;
    Ok(id)
}

/// Moves person `id`'s window to `at` if that is later (webhooks arrive out of order: an older
/// message never shortens the window).
pub fn touch_window(conn: &Connection, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE customers SET last_inbound_at = max(coalesce(last_inbound_at, ?2), ?2) WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, to_millis(at)])?;
    Ok(())
}

/// Moves person `id`'s window back to `closed` if it lies in (`closed`, `at`] (see
/// [`super::inbound::close_window`]).
pub fn shut_window(
    conn: &Connection,
    id: i64,
    closed: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE customers SET last_inbound_at = ?2
         WHERE id = ?1 AND last_inbound_at <= ?3 AND last_inbound_at > ?2",
    )?
    .execute(rusqlite::params![id, to_millis(closed), to_millis(at)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{query_plan, test_connection};
    use crate::store::inbound;

    const PHONE: &str = "16505551234";
    const NEW_PHONE: &str = "16505559876";
    const BSUID: &str = "US.13491208655302741918";
    const NEW_BSUID: &str = "US.99991208655302741918";

    fn number() -> BusinessNumberId {
        "106540352242922".parse().unwrap()
    }

    fn id(text: &str) -> CustomerId {
        text.parse().unwrap()
    }

    fn at(hours_ago: i64) -> DateTime<Utc> {
        // Whole seconds: the store keeps milliseconds.
        DateTime::from_timestamp(1_790_000_000 - hours_ago * 3600, 0).unwrap()
    }

    #[test]
    fn a_customer_lookup_is_compiled_once_not_for_every_key_it_is_asked() {
        let conn = test_connection();
        for phone in [PHONE, NEW_PHONE] {
            find_or_create(&conn, &number(), &id(phone), at(1)).unwrap();
        }

        for phone in [PHONE, NEW_PHONE, PHONE, "16505550000"] {
            find(&conn, &number(), &id(phone)).unwrap();
        }

        for sql in [FIND_KEY_SQL, FIND_CUSTOMER_SQL] {
            let statement = conn.prepare_cached(sql).unwrap();
            let recompiled = statement.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(recompiled, 0, "{sql}");
        }
    }

    fn seen(wa_id: Option<&str>, user_id: Option<&str>, when: DateTime<Utc>) -> Seen {
        Seen {
            wa_id: wa_id.map(id),
            user_id: user_id.map(id),
            parent_user_id: None,
            username: None,
            at: when,
        }
    }

    fn window(conn: &Connection, key: &str) -> Option<DateTime<Utc>> {
        inbound::last_inbound(conn, &number(), &id(key)).unwrap()
    }

    fn person(conn: &Connection, key: &str) -> Customer {
        find(conn, &number(), &id(key)).unwrap().unwrap().customer
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_window_opened_by_the_bsuid_is_open_for_the_phone_once_a_message_shows_both() {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(BSUID), at(3)).unwrap();

        observe(&conn, &number(), &seen(Some(PHONE), Some(BSUID), at(1))).unwrap();

        assert_eq!(window(&conn, PHONE), Some(at(3)));
        assert_eq!(person(&conn, PHONE), person(&conn, BSUID));
    }

    #[test]
    fn observing_a_pair_the_person_already_holds_writes_nothing_and_still_names_them() {
        let conn = test_connection();
        let first = observe(&conn, &number(), &seen(Some(PHONE), Some(BSUID), at(3))).unwrap();
        let writes_before = conn.total_changes();

        let again = observe(&conn, &number(), &seen(Some(PHONE), Some(BSUID), at(1))).unwrap();

        assert_eq!(again, first);
        assert_eq!(conn.total_changes(), writes_before);
        // A new key for the same person is still taken, and the old one given up.
        observe(&conn, &number(), &seen(Some(NEW_PHONE), Some(BSUID), at(0))).unwrap();
        assert_eq!(person(&conn, BSUID).wa_id, Some(id(NEW_PHONE)));
        assert_eq!(person(&conn, PHONE).id, first.unwrap());
    }

    #[test]
    fn a_bsuid_only_person_and_a_phone_only_person_are_merged_keeping_the_latest_window() {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(BSUID), at(2)).unwrap();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(20)).unwrap();
        assert_eq!(count(&conn), 2);

        observe(&conn, &number(), &seen(Some(PHONE), Some(BSUID), at(1))).unwrap();

        assert_eq!(count(&conn), 1);
        let merged = person(&conn, PHONE);
        assert_eq!(merged.wa_id, Some(id(PHONE)));
        assert_eq!(merged.user_id, Some(id(BSUID)));
        assert_eq!(merged.last_inbound_at, Some(at(2)));
    }

    #[test]
    fn after_a_number_change_the_new_number_has_the_window_and_the_old_one_still_finds_the_person()
    {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(2)).unwrap();

        changed_number(&conn, &number(), &id(PHONE), &id(NEW_PHONE), at(1)).unwrap();

        assert_eq!(window(&conn, NEW_PHONE), Some(at(2)));
        let found = find(&conn, &number(), &id(PHONE)).unwrap().unwrap();
        assert_eq!(found.customer.wa_id, Some(id(NEW_PHONE)));
        assert_eq!(found.retired_at, Some(at(1)));
    }

    #[test]
    fn someone_writing_from_a_number_given_up_earlier_is_a_new_person() {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(5)).unwrap();
        changed_number(&conn, &number(), &id(PHONE), &id(NEW_PHONE), at(4)).unwrap();

        inbound::record_inbound(&conn, &number(), &id(PHONE), at(1)).unwrap();

        assert_eq!(count(&conn), 2);
        assert_eq!(window(&conn, PHONE), Some(at(1)));
        assert_eq!(window(&conn, NEW_PHONE), Some(at(5)));
    }

    #[test]
    fn a_late_message_from_before_the_number_change_still_counts_for_the_person() {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(5)).unwrap();
        changed_number(&conn, &number(), &id(PHONE), &id(NEW_PHONE), at(2)).unwrap();

        observe(&conn, &number(), &seen(Some(PHONE), None, at(3))).unwrap();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(3)).unwrap();

        assert_eq!(count(&conn), 1);
        assert_eq!(person(&conn, PHONE).wa_id, Some(id(NEW_PHONE)));
        assert_eq!(window(&conn, NEW_PHONE), Some(at(3)));
    }

    #[test]
    fn a_user_id_change_re_keys_the_person_to_the_new_bsuid_with_its_window() {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(BSUID), at(2)).unwrap();

        changed_user_id(
            &conn,
            &number(),
            &id(BSUID),
            Some(&id(BSUID)),
            &id(NEW_BSUID),
            at(1),
        )
        .unwrap();

        assert_eq!(window(&conn, NEW_BSUID), Some(at(2)));
        assert_eq!(person(&conn, BSUID).user_id, Some(id(NEW_BSUID)));
        assert_eq!(count(&conn), 1);
    }

    #[test]
    fn a_number_change_to_a_number_the_store_knew_merges_the_two() {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(9)).unwrap();
        inbound::record_inbound(&conn, &number(), &id(NEW_PHONE), at(3)).unwrap();

        changed_number(&conn, &number(), &id(PHONE), &id(NEW_PHONE), at(1)).unwrap();

        assert_eq!(count(&conn), 1);
        assert_eq!(window(&conn, NEW_PHONE), Some(at(3)));
    }

    #[test]
    fn the_same_keys_on_another_business_number_are_another_person() {
        let conn = test_connection();
        let other: BusinessNumberId = "999".parse().unwrap();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(2)).unwrap();

        observe(&conn, &other, &seen(Some(PHONE), Some(BSUID), at(1))).unwrap();

        assert_eq!(window(&conn, BSUID), None);
        assert_eq!(
            inbound::last_inbound(&conn, &other, &id(PHONE)).unwrap(),
            None,
            "observing is not writing in: the window opens only with record_inbound"
        );
    }

    #[test]
    fn a_username_is_kept_on_the_person_and_the_parent_bsuid_finds_them() {
        let conn = test_connection();
        let parent = "US.ENT.11112222333344445555";
        let mut message = seen(None, Some(BSUID), at(1));
        message.parent_user_id = Some(id(parent));
        message.username = Some("ana.b".into());

        observe(&conn, &number(), &message).unwrap();

        let found = person(&conn, parent);
        assert_eq!(found.user_id, Some(id(BSUID)));
        assert_eq!(found.username.as_deref(), Some("ana.b"));
        assert_eq!(KeyKind::of(&id(parent)), KeyKind::ParentUserId);
    }

    #[test]
    fn finding_a_person_is_one_indexed_lookup_not_a_scan() {
        let conn = test_connection();
        let plan = [
            query_plan(&conn, FIND_KEY_SQL, ["1", PHONE]),
            query_plan(&conn, FIND_CUSTOMER_SQL, [1]),
        ]
        .join("\n");

        assert!(plan.lines().all(|step| !step.starts_with("SCAN")), "{plan}");
    }

    #[test]
    fn merging_two_phones_for_one_bsuid_keeps_the_messages_phone_and_gives_up_the_other() {
        let conn = test_connection();
        inbound::record_inbound(&conn, &number(), &id(NEW_PHONE), at(9)).unwrap();
        observe(&conn, &number(), &seen(Some(PHONE), Some(BSUID), at(8))).unwrap();
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(8)).unwrap();

        observe(&conn, &number(), &seen(Some(NEW_PHONE), Some(BSUID), at(2))).unwrap();

        assert_eq!(count(&conn), 1);
        assert_eq!(person(&conn, BSUID).wa_id, Some(id(NEW_PHONE)));
        let old = find(&conn, &number(), &id(PHONE)).unwrap().unwrap();
        assert_eq!(
            old.retired_at,
            Some(at(2)),
            "the phone the BSUID had before"
        );
        inbound::record_inbound(&conn, &number(), &id(PHONE), at(1)).unwrap();
        assert_eq!(
            count(&conn),
            2,
            "a message from it afterwards is someone else's"
        );
    }
}
