//! The inbound mirror: for each customer of each business number (phone_number_id), the timestamp
//! of the customer's most recent inbound message, in Meta's own time. The window policy
//! (`window.rs`) decides from this, at the moment of sending.
//!
//! The window belongs to the person, not to the key a message or a send uses: it is a column of
//! [`super::identity`]'s customer, found by the phone, the BSUID or a key they had before a change.
//! A window opened by a message from the BSUID is open for a send to the same person's phone.
//!
//! Webhooks arrive out of order and are redelivered, so the stored value is the maximum ever seen:
//! an older message arriving late never shortens the window.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::error::StoreError;
use super::identity;
use crate::domain::ids::{BusinessNumberId, CustomerId};

/// Records an inbound message from `customer` at `at` (Meta's timestamp); keeps the later of it
/// and what is stored. A customer the store does not know yet is created, known by this key.
pub fn record_inbound(
    conn: &Connection,
    business_number_id: &BusinessNumberId,
    customer: &CustomerId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let id = identity::find_or_create(conn, business_number_id, customer, at)?;
    identity::touch_window(conn, id, at)
}

/// The most recent inbound message to this business number of the person `customer` names (by
/// any key they have or had), if any.
pub fn last_inbound(
    conn: &Connection,
    business_number_id: &BusinessNumberId,
    customer: &CustomerId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(identity::find(conn, business_number_id, customer)?
        .and_then(|found| found.customer.last_inbound_at))
}

/// Meta failed a free-form message with 131047 at `at`: the window was closed then, whatever the
/// mirror believed (an inbound webhook we never got, a clock off by minutes). Move the person's
/// last inbound back to at most `at` − 24 h so the next free-form message is refused locally. An
/// inbound message newer than `at` is left alone: it reopened the window after the failure.
pub fn close_window(
    conn: &Connection,
    business_number_id: &BusinessNumberId,
    customer: &CustomerId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Checked: `at` is Meta's timestamp; near chrono's limits plain `-` panics. There is no window
    // to close before the earliest representable time.
    let Some(closed) = at.checked_sub_signed(crate::window::WINDOW) else {
        return Ok(());
    };
    match identity::find(conn, business_number_id, customer)? {
        Some(found) => identity::shut_window(conn, found.customer.id, closed, at),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::to_millis;

    fn number(id: &str) -> BusinessNumberId {
        id.parse().unwrap()
    }

    fn customer(wa_id: &str) -> CustomerId {
        wa_id.parse().unwrap()
    }
    use crate::store::db::test_connection;
    use chrono::Duration;

    #[test]
    fn an_older_inbound_message_arriving_late_never_moves_the_window_back() {
        let conn = test_connection();
        let newer = Utc::now();
        let older = newer - Duration::hours(3);

        record_inbound(&conn, &number("1"), &customer("15550001"), newer).unwrap();
        record_inbound(&conn, &number("1"), &customer("15550001"), older).unwrap();

        assert_eq!(
            last_inbound(&conn, &number("1"), &customer("15550001")).unwrap(),
            from_millis_exact(newer)
        );
    }

    #[test]
    fn a_newer_inbound_message_moves_the_window_forward_per_pair() {
        let conn = test_connection();
        let first = Utc::now() - Duration::hours(5);
        let second = first + Duration::hours(4);

        record_inbound(&conn, &number("1"), &customer("15550001"), first).unwrap();
        record_inbound(&conn, &number("1"), &customer("15550001"), second).unwrap();
        record_inbound(&conn, &number("2"), &customer("15550001"), first).unwrap();

        assert_eq!(
            last_inbound(&conn, &number("1"), &customer("15550001")).unwrap(),
            from_millis_exact(second)
        );
        assert_eq!(
            last_inbound(&conn, &number("2"), &customer("15550001")).unwrap(),
            from_millis_exact(first)
        );
        assert_eq!(
            last_inbound(&conn, &number("1"), &customer("15559999")).unwrap(),
            None
        );
    }

    /// What the store gives back: millisecond precision.
    fn from_millis_exact(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        crate::store::db::from_millis(to_millis(at))
    }

    #[test]
    fn a_131047_closes_a_window_the_mirror_thought_open_but_not_one_reopened_later() {
        let conn = test_connection();
        let failed_at = Utc::now();
        record_inbound(
            &conn,
            &number("1"),
            &customer("15550001"),
            failed_at - Duration::hours(2),
        )
        .unwrap();
        record_inbound(
            &conn,
            &number("1"),
            &customer("15550002"),
            failed_at + Duration::minutes(1),
        )
        .unwrap();

        close_window(&conn, &number("1"), &customer("15550001"), failed_at).unwrap();
        close_window(&conn, &number("1"), &customer("15550002"), failed_at).unwrap();

        let closed = last_inbound(&conn, &number("1"), &customer("15550001"))
            .unwrap()
            .unwrap();
        assert!(closed <= failed_at - crate::window::WINDOW);
        assert!(
            last_inbound(&conn, &number("1"), &customer("15550002"))
                .unwrap()
                .unwrap()
                > failed_at
        );
    }

    #[test]
    fn a_131047_stamped_at_chronos_earliest_time_closes_nothing_and_does_not_panic() {
        let conn = test_connection();
        record_inbound(&conn, &number("1"), &customer("15550001"), Utc::now()).unwrap();

        close_window(
            &conn,
            &number("1"),
            &customer("15550001"),
            DateTime::<Utc>::MIN_UTC,
        )
        .unwrap();

        assert!(last_inbound(&conn, &number("1"), &customer("15550001"))
            .unwrap()
            .is_some());
    }
}
