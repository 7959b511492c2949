//! The rule the product exists for: WhatsApp's 24-hour customer-service window.
//!
//! - A template may be sent at any time.
//! - Anything else may be sent only while the window is open: within 24 hours of the customer's most
//!   recent inbound message to that business number. Our own messages never open or extend it.
//! - sfwa decides *before* sending, at the moment of sending, with a safety margin (default 2 min):
//!   Meta would accept a late free-form message and fail it afterwards (131047), and the clocks of
//!   the two sides, network time and queueing all eat into the last minutes.
//! - A customer we have never heard from has no window: closed.
//!
//! Pure: the caller passes `now` and the last inbound time from the mirror.

use chrono::{DateTime, Duration, Utc};

/// How long a customer's message keeps the window open.
pub const WINDOW: Duration = Duration::hours(24);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send. `window_expires_at` is when the window closes (None for a template to a stranger).
    Allowed {
        window_expires_at: Option<DateTime<Utc>>,
    },
    /// Do not send: free-form outside the window. `window_expired_at` is when it closed, if it
    /// was ever open.
    Refused {
        window_expired_at: Option<DateTime<Utc>>,
    },
}

/// Whether a message may be sent now.
pub fn decide(
    is_template: bool,
    last_inbound: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    margin: Duration,
) -> Decision {
    // Checked: a mirror row near chrono's limits (written before webhooks were validated) must not
    // panic the send path; such a window counts as never opened.
    let expires = last_inbound.and_then(|at| at.checked_add_signed(WINDOW));
    if is_template {
        return Decision::Allowed {
            window_expires_at: expires.filter(|e| *e > now),
        };
    }
    match expires {
        Some(expires) if now.checked_add_signed(margin).is_some_and(|n| n < expires) => {
            Decision::Allowed {
                window_expires_at: Some(expires),
            }
        }
        _ => Decision::Refused {
            window_expired_at: expires,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_inbound_time_at_chronos_limit_refuses_instead_of_panicking() {
        let decision = decide(
            false,
            Some(DateTime::<Utc>::MAX_UTC),
            Utc::now(),
            Duration::minutes(2),
        );
        assert_eq!(
            decision,
            Decision::Refused {
                window_expired_at: None
            }
        );
    }

    fn at(hours_ago: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(now - Duration::hours(hours_ago))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    const MARGIN: Duration = Duration::minutes(2);

    #[test]
    fn a_template_is_allowed_to_a_customer_who_never_wrote() {
        assert_eq!(
            decide(true, None, now(), MARGIN),
            Decision::Allowed {
                window_expires_at: None
            }
        );
    }

    #[test]
    fn a_template_is_allowed_long_after_the_window_closed() {
        assert_eq!(
            decide(true, at(72, now()), now(), MARGIN),
            Decision::Allowed {
                window_expires_at: None
            }
        );
    }

    #[test]
    fn a_template_inside_the_window_reports_when_it_closes() {
        let last = at(1, now());
        assert_eq!(
            decide(true, last, now(), MARGIN),
            Decision::Allowed {
                window_expires_at: Some(last.unwrap() + WINDOW)
            }
        );
    }

    #[test]
    fn free_form_to_a_customer_who_never_wrote_is_refused() {
        assert_eq!(
            decide(false, None, now(), MARGIN),
            Decision::Refused {
                window_expired_at: None
            }
        );
    }

    #[test]
    fn free_form_to_a_customer_who_wrote_an_hour_ago_is_allowed() {
        let last = at(1, now());
        assert_eq!(
            decide(false, last, now(), MARGIN),
            Decision::Allowed {
                window_expires_at: Some(last.unwrap() + WINDOW)
            }
        );
    }

    #[test]
    fn free_form_25_hours_after_the_last_inbound_is_refused() {
        let last = at(25, now());
        assert_eq!(
            decide(false, last, now(), MARGIN),
            Decision::Refused {
                window_expired_at: Some(last.unwrap() + WINDOW)
            }
        );
    }

    #[test]
    fn the_margin_closes_the_window_early_at_the_boundary() {
        let closes = now() + MARGIN;
        let last = Some(closes - WINDOW);
        // Exactly `margin` before the close: refused.
        assert!(matches!(
            decide(false, last, now(), MARGIN),
            Decision::Refused { .. }
        ));
        // One second earlier: allowed.
        let last = Some(closes - WINDOW + Duration::seconds(1));
        assert!(matches!(
            decide(false, last, now(), MARGIN),
            Decision::Allowed { .. }
        ));
    }

    #[test]
    fn with_no_margin_the_window_is_open_until_the_last_instant() {
        let last = Some(now() - WINDOW + Duration::milliseconds(1));
        assert!(matches!(
            decide(false, last, now(), Duration::zero()),
            Decision::Allowed { .. }
        ));
        let last = Some(now() - WINDOW);
        assert!(matches!(
            decide(false, last, now(), Duration::zero()),
            Decision::Refused { .. }
        ));
    }
}
