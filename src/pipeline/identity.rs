//! Who a customer is, applied on both sides of the conversation:
//!
//! - **inbound** ([`apply_inbound`]): what a webhook message shows about its sender — phone and
//!   BSUID together (merged into one person), a number or user-id change (`system`), the phone a
//!   customer shared in answer to our `request_contact_info` — is told to
//!   [`crate::store::identity`], in the webhook's transaction, before the window mirror is touched
//!   (`pipeline::webhook_apply`), so the window opened lands on the merged person.
//! - **outbound** ([`send_to`], [`resolve`]): whom a record's address reaches now, and that
//!   person's window, asked by `pipeline::dispatch` at the moment of sending.
//!
//! Where a send goes (decided here, once):
//! - a record addressed by phone goes to the person's current phone: after `user_changed_number`
//!   the old number still finds them, and the message goes to the new one (Meta tells us the
//!   customer moved; writing on to the old number is what the issue reported);
//! - a record addressed by BSUID goes to the person's current BSUID, in `recipient`, even when the
//!   store knows their phone: the rep chose that address, Meta accepts it for every message but
//!   authentication templates, a BSUID survives number changes, and the window is the person's
//!   either way, so nothing is gained by swapping it for a phone that may be stale;
//! - except an authentication template ([`Need::Phone`]): Meta refuses those to a BSUID (131062),
//!   so it goes to the phone when the store knows one, and is refused before sending when not.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::domain::ids::{BusinessNumberId, CustomerId};
use crate::domain::webhook_event::{InboundKind, InboundMessage, SharedContact, StatusUpdate};
use crate::store::identity::{self, Customer, KeyKind, Seen};
use crate::store::StoreError;

/// Tells the identity store what `message` shows about its sender. Group messages are skipped:
/// they say who wrote in a group, not who talks with us 1:1.
///
/// Returns the person `message.from` names now, when that is sure without asking the store
/// again: `from` was one of the keys the store was told, and nothing re-keyed the person after
/// (a `system` change or a shared contact card does: then `None`, and the caller looks `from` up).
/// The webhook opens that person's window with it instead of finding them a second time.
pub fn apply_inbound(
    conn: &Connection,
    message: &InboundMessage,
) -> Result<Option<i64>, StoreError> {
    if message.group_id.is_some() {
        return Ok(None);
    }
    let number = &message.business_number_id;
    let at = message.timestamp;
    let (wa_id, from_user_id) = match &message.from {
        CustomerId::WaId(_) => (Some(message.from.clone()), None),
        CustomerId::UserId(_) => (None, Some(message.from.clone())),
    };
    let seen = Seen {
        wa_id,
        user_id: message.user_id.clone().or(from_user_id),
        parent_user_id: message.parent_user_id.clone(),
        username: message.username.clone(),
        at,
    };
    let person = identity::observe(conn, number, &seen)?;
    let from_seen = [&seen.wa_id, &seen.user_id, &seen.parent_user_id]
        .into_iter()
        .any(|key| key.as_ref() == Some(&message.from));
    match &message.kind {
        InboundKind::System(change) => {
            if let Some(new_wa_id) = change.new_wa_id.as_ref().filter(|id| !id.is_user_id()) {
                identity::changed_number(conn, number, &message.from, new_wa_id, at)?;
            }
            if let Some(new_user_id) = change.new_user_id.as_ref().filter(|id| id.is_user_id()) {
                let previous = change.previous_user_id.as_ref();
                identity::changed_user_id(conn, number, &message.from, previous, new_user_id, at)?;
            }
        }
        InboundKind::Contacts {
            contacts,
            from_contact_request: true,
        } => {
            if let (Some(person), Some(phone)) = (person, shared_phone(contacts)) {
                identity::set_key(conn, number, person, KeyKind::WaId, &phone, at)?;
            }
        }
        _ => return Ok(person.filter(|_| from_seen)),
    }
    Ok(None)
}

/// A status of one of our messages naming its recipient by both phone (`recipient_id`) and BSUID
/// (`recipient_user_id`) is Meta saying they are one person: the identity store learns it, so a
/// window opened under either key serves sends to the other. No window is touched (a status is
/// not the customer writing), and a late status never makes a given-up key current again (see
/// [`identity::observe`]).
pub fn apply_status(conn: &Connection, update: &StatusUpdate) -> Result<(), StoreError> {
    let (Some(wa_id), Some(user_id)) = (&update.recipient_id, &update.recipient_user_id) else {
        return Ok(());
    };
    if wa_id.is_user_id() || !user_id.is_user_id() {
        return Ok(());
    }
    let seen = Seen {
        wa_id: Some(wa_id.clone()),
        user_id: Some(user_id.clone()),
        parent_user_id: None,
        username: None,
        at: update.timestamp,
    };
    identity::observe(conn, &update.business_number_id, &seen)?;
    Ok(())
}

/// The phone of a customer who answered `request_contact_info`: the first shared phone whose
/// wa_id WhatsApp gives (the number as written is the customer's own typing, not an address).
fn shared_phone(contacts: &[SharedContact]) -> Option<CustomerId> {
    contacts
        .iter()
        .flat_map(|contact| &contact.phones)
        .filter_map(|(_, wa_id)| wa_id.as_deref())
        .filter_map(|wa_id| wa_id.parse::<CustomerId>().ok())
        .find(|id| !id.is_user_id())
}

/// What the message needs of the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any address Meta accepts: a phone in `to` or a BSUID in `recipient`.
    Any,
    /// A phone: authentication templates cannot go to a BSUID (Meta's 131062).
    Phone,
}

/// Where a send to `addressed` goes, given the person the store knows by that address (see the
/// module docs for why).
pub fn send_to(addressed: &CustomerId, known: Option<&Customer>, need: Need) -> CustomerId {
    let Some(person) = known else {
        return addressed.clone();
    };
    let current = match (need, addressed) {
        (Need::Phone, _) => person.wa_id.as_ref(),
        (Need::Any, CustomerId::WaId(_)) => person.wa_id.as_ref().or(person.user_id.as_ref()),
        (Need::Any, CustomerId::UserId(_)) => person.user_id.as_ref().or(person.wa_id.as_ref()),
    };
    current.unwrap_or(addressed).clone()
}

/// Where a send to `addressed` from `number` goes now, and when that person last wrote in.
pub fn resolve(
    conn: &Connection,
    number: &BusinessNumberId,
    addressed: &CustomerId,
    need: Need,
) -> Result<(CustomerId, Option<DateTime<Utc>>), StoreError> {
    let known = identity::find(conn, number, addressed)?.map(|found| found.customer);
    let to = send_to(addressed, known.as_ref(), need);
    Ok((to, known.and_then(|person| person.last_inbound_at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook_event::SystemChange;
    use crate::store::db::test_connection;
    use crate::store::inbound;

    const NUMBER: &str = "106540352242922";
    const PHONE: &str = "16505551234";
    const NEW_PHONE: &str = "16505559876";
    const BSUID: &str = "US.13491208655302741918";

    fn id(text: &str) -> CustomerId {
        text.parse().unwrap()
    }

    fn number() -> BusinessNumberId {
        NUMBER.parse().unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
    }

    fn message(wamid: &str, from: &str, when: i64, kind: InboundKind) -> InboundMessage {
        InboundMessage::new(wamid.parse().unwrap(), number(), id(from), at(when), kind)
    }

    fn text() -> InboundKind {
        InboundKind::Text { body: "hi".into() }
    }

    fn person(phone: Option<&str>, user: Option<&str>) -> Customer {
        Customer {
            id: 1,
            wa_id: phone.map(id),
            user_id: user.map(id),
            parent_user_id: None,
            username: None,
            last_inbound_at: None,
        }
    }

    #[test]
    fn a_bsuid_address_goes_to_the_bsuid_even_when_the_phone_is_known() {
        let both = person(Some(PHONE), Some(BSUID));

        assert_eq!(send_to(&id(BSUID), Some(&both), Need::Any), id(BSUID));
        assert_eq!(send_to(&id(PHONE), Some(&both), Need::Any), id(PHONE));
    }

    #[test]
    fn an_authentication_template_goes_to_the_phone_when_one_is_known_and_nowhere_else() {
        let both = person(Some(PHONE), Some(BSUID));
        let bsuid_only = person(None, Some(BSUID));

        assert_eq!(send_to(&id(BSUID), Some(&both), Need::Phone), id(PHONE));
        assert!(send_to(&id(BSUID), Some(&bsuid_only), Need::Phone).is_user_id());
        assert!(send_to(&id(BSUID), None, Need::Phone).is_user_id());
    }

    #[test]
    fn a_phone_the_customer_left_leads_to_their_current_number() {
        let moved = person(Some(NEW_PHONE), None);

        assert_eq!(send_to(&id(PHONE), Some(&moved), Need::Any), id(NEW_PHONE));
        assert_eq!(send_to(&id(PHONE), None, Need::Any), id(PHONE));
    }

    #[test]
    fn a_message_with_phone_and_bsuid_makes_the_bsuid_window_the_phones() {
        let conn = test_connection();
        let first = message("wamid.1", BSUID, 0, text());
        apply_inbound(&conn, &first).unwrap();
        inbound::record_inbound(&conn, &number(), &first.from, first.timestamp).unwrap();
        let mut both = message("wamid.2", PHONE, -60, InboundKind::RequestWelcome);
        both.user_id = Some(id(BSUID));

        apply_inbound(&conn, &both).unwrap();

        let (to, last) = resolve(&conn, &number(), &id(PHONE), Need::Any).unwrap();
        assert_eq!((to, last), (id(PHONE), Some(at(0))));
    }

    #[test]
    fn a_status_naming_phone_and_bsuid_joins_them_without_touching_the_window() {
        let conn = test_connection();
        let hello = message("wamid.1", BSUID, 0, text());
        apply_inbound(&conn, &hello).unwrap();
        inbound::record_inbound(&conn, &number(), &hello.from, hello.timestamp).unwrap();
        let status = StatusUpdate {
            wamid: "wamid.OURS".parse().unwrap(),
            status: crate::domain::status::MessageStatus::Delivered,
            timestamp: at(120),
            recipient_id: Some(id(PHONE)),
            recipient_user_id: Some(id(BSUID)),
            business_number_id: number(),
            record_id: None,
            errors: vec![],
            pricing: None,
        };

        apply_status(&conn, &status).unwrap();

        let (to, last) = resolve(&conn, &number(), &id(PHONE), Need::Any).unwrap();
        assert_eq!(
            (to, last),
            (id(PHONE), Some(at(0))),
            "the BSUID's window, unmoved"
        );
    }

    #[test]
    fn a_user_changed_number_message_moves_the_window_and_sends_to_the_new_number() {
        let conn = test_connection();
        let hello = message("wamid.1", PHONE, 0, text());
        apply_inbound(&conn, &hello).unwrap();
        inbound::record_inbound(&conn, &number(), &hello.from, hello.timestamp).unwrap();
        let change = message(
            "wamid.2",
            PHONE,
            60,
            InboundKind::System(SystemChange {
                kind: "user_changed_number".into(),
                body: "User A changed from +1 650 555 1234 to +1 650 555 9876".into(),
                new_wa_id: Some(id(NEW_PHONE)),
                previous_user_id: None,
                new_user_id: None,
            }),
        );

        apply_inbound(&conn, &change).unwrap();

        let old = resolve(&conn, &number(), &id(PHONE), Need::Any).unwrap();
        let new = resolve(&conn, &number(), &id(NEW_PHONE), Need::Any).unwrap();
        assert_eq!(old, (id(NEW_PHONE), Some(at(0))));
        assert_eq!(new, (id(NEW_PHONE), Some(at(0))));
    }

    #[test]
    fn the_answer_to_request_contact_info_gives_a_bsuid_customer_their_phone() {
        let conn = test_connection();
        let answer = message(
            "wamid.1",
            BSUID,
            0,
            InboundKind::Contacts {
                contacts: vec![SharedContact {
                    name: "Ana".into(),
                    phones: vec![
                        ("+1 650 555 0000".into(), None),
                        ("+1 650 555 1234".into(), Some(PHONE.into())),
                    ],
                    emails: vec![],
                }],
                from_contact_request: true,
            },
        );

        apply_inbound(&conn, &answer).unwrap();

        let (to, _) = resolve(&conn, &number(), &id(BSUID), Need::Phone).unwrap();
        assert_eq!(to, id(PHONE));
    }

    #[test]
    fn a_contact_card_shared_unasked_is_someone_elses_number_and_changes_nothing() {
        let conn = test_connection();
        let card = message(
            "wamid.1",
            BSUID,
            0,
            InboundKind::Contacts {
                contacts: vec![SharedContact {
                    name: "A friend".into(),
                    phones: vec![("+1 650 555 1234".into(), Some(PHONE.into()))],
                    emails: vec![],
                }],
                from_contact_request: false,
            },
        );

        apply_inbound(&conn, &card).unwrap();

        assert_eq!(
            crate::store::identity::find(&conn, &number(), &id(PHONE)).unwrap(),
            None
        );
    }

    #[test]
    fn a_group_message_teaches_the_store_nothing() {
        let conn = test_connection();
        let mut in_group = message("wamid.1", PHONE, 0, text());
        in_group.user_id = Some(id(BSUID));
        in_group.group_id = Some("120363000000000000".into());

        apply_inbound(&conn, &in_group).unwrap();

        assert_eq!(
            crate::store::identity::find(&conn, &number(), &id(BSUID)).unwrap(),
            None
        );
    }

    #[test]
    fn the_person_an_inbound_returns_is_the_one_its_sender_names_and_none_after_a_re_key() {
        let conn = test_connection();
        let named = |from: &str| {
            crate::store::identity::find(&conn, &number(), &id(from))
                .unwrap()
                .map(|found| found.customer.id)
        };
        let first = message("wamid.1", BSUID, 0, text());
        let mut both = message("wamid.2", PHONE, 60, text());
        both.user_id = Some(id(BSUID));
        let change = message(
            "wamid.3",
            PHONE,
            120,
            InboundKind::System(SystemChange {
                kind: "user_changed_number".into(),
                body: "changed".into(),
                new_wa_id: Some(id(NEW_PHONE)),
                previous_user_id: None,
                new_user_id: None,
            }),
        );
        let mut in_group = message("wamid.4", NEW_PHONE, 180, text());
        in_group.group_id = Some("120363000000000000".into());

        let bsuid_person = apply_inbound(&conn, &first).unwrap();
        let merged_person = apply_inbound(&conn, &both).unwrap();
        let after_change = apply_inbound(&conn, &change).unwrap();
        let group = apply_inbound(&conn, &in_group).unwrap();

        assert_eq!(bsuid_person, named(BSUID));
        assert!(bsuid_person.is_some());
        assert_eq!(merged_person, named(PHONE));
        assert_eq!(merged_person, named(BSUID), "one person, whichever key");
        assert_eq!(
            after_change, None,
            "re-keyed: the caller looks the sender up"
        );
        assert_eq!(group, None);
    }
}
