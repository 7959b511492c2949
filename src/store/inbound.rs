//! The inbound mirror: for each (business phone_number_id, customer wa_id), the timestamp of the
//! customer's most recent inbound message, in Meta's own time. The window policy (`window.rs`)
//! decides from this, at the moment of sending.
//!
//! Webhooks arrive out of order and are redelivered, so the stored value is the maximum ever seen:
//! an older message arriving late never shortens the window.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::db::{time_column, to_millis};
use super::error::StoreError;
use crate::domain::ids::{BusinessNumberId, CustomerId};

/// Records an inbound message at `at` (Meta's timestamp); keeps the later of it and what is stored.
pub fn record_inbound(
    conn: &Connection,
    business_number_id: &BusinessNumberId,
    wa_id: &CustomerId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO inbound_last (business_number_id, wa_id, last_inbound_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (business_number_id, wa_id)
         DO UPDATE SET last_inbound_at = max(last_inbound_at, excluded.last_inbound_at)",
    )?
    .execute(rusqlite::params![business_number_id, wa_id, to_millis(at)])?;
    Ok(())
}

/// The customer's most recent inbound message to this business number, if any.
pub fn last_inbound(
    conn: &Connection,
    business_number_id: &BusinessNumberId,
    wa_id: &CustomerId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT last_inbound_at FROM inbound_last WHERE business_number_id = ?1 AND wa_id = ?2",
        )?
        .query_row(rusqlite::params![business_number_id, wa_id], |row| {
            time_column(row, 0)
        })
        .optional()?)
}

/// Meta failed a free-form message with 131047 at `at`: the window was closed then, whatever the
/// mirror believed (an inbound webhook we never got, a clock off by minutes). Move the pair's last
/// inbound back to at most `at` − 24 h so the next free-form message is refused locally. An inbound
/// message newer than `at` is left alone: it reopened the window after the failure.
pub fn close_window(
    conn: &Connection,
    business_number_id: &BusinessNumberId,
    wa_id: &CustomerId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Checked: `at` is Meta's timestamp; near chrono's limits plain `-` panics. There is no window
    // to close before the earliest representable time.
    let Some(closed) = at.checked_sub_signed(crate::window::WINDOW) else {
        return Ok(());
    };
    conn.prepare_cached(
        "UPDATE inbound_last SET last_inbound_at = ?3
         WHERE business_number_id = ?1 AND wa_id = ?2 AND last_inbound_at <= ?4 AND last_inbound_at > ?3",
    )?
    .execute(rusqlite::params![business_number_id, wa_id, to_millis(closed), to_millis(at)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
