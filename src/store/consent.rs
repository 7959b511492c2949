//! Whether a customer takes marketing messages from a business number: the opt-outs sfwa learned
//! from WhatsApp (a STOP / START the customer wrote, Meta's `user_preferences` webhook, Meta's
//! 131050), per person ([`super::identity`]), so the choice follows the customer whichever key a
//! message or a send uses.
//!
//! A merge of two persons (`identity`) keeps the later of their choices: the key moves carry it
//! (a trigger of migration 0008), so `identity` needs to know nothing of consent.
//!
//! Written in the webhook's transaction (`pipeline::consent::apply_*`) and by the send path after
//! a 131050; read by the send path's consent check (`pipeline::consent::judge`, read-only, so
//! `sfwa plan` can ask it too). An opt-out set in Salesforce is not stored here: it is read from
//! the record's Contact / Lead on every send.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::db::{from_millis, to_millis};
use super::error::StoreError;
use super::identity;
use crate::domain::ids::{BusinessNumberId, CustomerId};

/// Where sfwa learned a customer's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The customer wrote a stop or start keyword.
    Keyword,
    /// Meta's `user_preferences` webhook (stopped / resumed marketing in WhatsApp).
    UserPreferences,
    /// Meta refused a marketing template with 131050.
    Meta131050,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Keyword => "keyword",
            Source::UserPreferences => "user_preferences",
            Source::Meta131050 => "meta_131050",
        }
    }

    fn parse(text: &str) -> Source {
        match text {
            "keyword" => Source::Keyword,
            "user_preferences" => Source::UserPreferences,
            _ => Source::Meta131050,
        }
    }
}

/// A customer's marketing choice as the store knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub opted_out: bool,
    pub source: Source,
    pub changed_at: DateTime<Utc>,
}

/// The choice of the person `customer` names for `number`, if sfwa learned one.
pub fn choice(
    conn: &Connection,
    number: &BusinessNumberId,
    customer: &CustomerId,
) -> Result<Option<Choice>, StoreError> {
    let Some(found) = identity::find(conn, number, customer)? else {
        return Ok(None);
    };
    choice_of(conn, found.customer.id)
}

fn choice_of(conn: &Connection, id: i64) -> Result<Option<Choice>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT opted_out, source, changed_at FROM marketing_consent WHERE customer = ?1",
        )?
        .query_row([id], |row| {
            Ok((
                row.get::<_, bool>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .optional()?
        .and_then(|(opted_out, source, at)| {
            Some(Choice {
                opted_out,
                source: Source::parse(&source),
                changed_at: from_millis(at)?,
            })
        }))
}

/// Records that the person `customer` names (created when unknown) stopped (`opted_out`) or
/// resumed marketing at `at`. A change older than the one stored is ignored (webhooks arrive out
/// of order); returns whether the stored choice changed.
pub fn set(
    conn: &Connection,
    number: &BusinessNumberId,
    customer: &CustomerId,
    opted_out: bool,
    source: Source,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id = identity::find_or_create(conn, number, customer, at)?;
    set_for(conn, id, opted_out, source, at)
}

fn set_for(
    conn: &Connection,
    id: i64,
    opted_out: bool,
    source: Source,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let before = choice_of(conn, id)?;
    if before.is_some_and(|b| b.changed_at > at) {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO marketing_consent (customer, opted_out, source, changed_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (customer) DO UPDATE SET
             opted_out = excluded.opted_out, source = excluded.source,
             changed_at = excluded.changed_at",
    )?
    .execute(rusqlite::params![
        id,
        opted_out,
        source.as_str(),
        to_millis(at)
    ])?;
    Ok(before.is_none_or(|b| b.opted_out != opted_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;
    use crate::store::identity::Seen;

    fn number() -> BusinessNumberId {
        "106540352242922".parse().unwrap()
    }

    fn id(text: &str) -> CustomerId {
        text.parse().unwrap()
    }

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + hours * 3600, 0).unwrap()
    }

    #[test]
    fn a_stop_is_the_persons_whichever_key_asks_and_a_later_start_lifts_it() {
        let conn = test_connection();
        let seen = Seen {
            wa_id: Some(id("16505551234")),
            user_id: Some(id("US.13491208655302741918")),
            parent_user_id: None,
            username: None,
            at: at(0),
        };
        identity::observe(&conn, &number(), &seen).unwrap();

        set(
            &conn,
            &number(),
            &id("16505551234"),
            true,
            Source::Keyword,
            at(1),
        )
        .unwrap();
        let by_bsuid = choice(&conn, &number(), &id("US.13491208655302741918")).unwrap();
        set(
            &conn,
            &number(),
            &id("16505551234"),
            false,
            Source::Keyword,
            at(2),
        )
        .unwrap();
        let after_start = choice(&conn, &number(), &id("16505551234")).unwrap();

        assert!(by_bsuid.is_some_and(|c| c.opted_out));
        assert!(after_start.is_some_and(|c| !c.opted_out));
    }

    #[test]
    fn an_older_change_arriving_late_does_not_override_a_newer_one() {
        let conn = test_connection();
        let customer = id("16505551234");
        set(
            &conn,
            &number(),
            &customer,
            true,
            Source::UserPreferences,
            at(5),
        )
        .unwrap();

        let changed = set(&conn, &number(), &customer, false, Source::Keyword, at(1)).unwrap();

        assert!(!changed);
        let choice = choice(&conn, &number(), &customer).unwrap().unwrap();
        assert!(choice.opted_out);
        assert_eq!(choice.source, Source::UserPreferences);
    }

    #[test]
    fn a_merge_keeps_the_stop_said_under_the_key_that_goes() {
        let conn = test_connection();
        let (phone, bsuid) = (id("16505551234"), id("US.13491208655302741918"));
        set(&conn, &number(), &bsuid, true, Source::Keyword, at(1)).unwrap();
        identity::find_or_create(&conn, &number(), &phone, at(0)).unwrap();

        let seen = Seen {
            wa_id: Some(phone.clone()),
            user_id: Some(bsuid),
            parent_user_id: None,
            username: None,
            at: at(2),
        };
        identity::observe(&conn, &number(), &seen).unwrap();

        assert!(choice(&conn, &number(), &phone)
            .unwrap()
            .is_some_and(|c| c.opted_out));
    }
}
