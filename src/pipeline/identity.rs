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
use crate::domain::webhook_event::{InboundKind, InboundMessage, SharedContact};
use crate::store::identity::{self, Customer, KeyKind, Seen};
use crate::store::StoreError;

/// Tells the identity store what `message` shows about its sender. Group messages are skipped:
/// they say who wrote in a group, not who talks with us 1:1.
pub fn apply_inbound(conn: &Connection, message: &InboundMessage) -> Result<(), StoreError> {
    if message.group_id.is_some() {
        return Ok(());
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
        _ => {}
    }
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
