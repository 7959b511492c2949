//! What a send's result means for its record, decided without I/O: [`decide`] turns (the send
//! result, the window, the attempt, the retry policy) into a [`Next`], which
//! `apply` writes to the journal and the outbox. What Meta's codes mean (131047 reads as
//! a closed window, which codes retry, slow down or hold everything) is said by `whatsapp::error`
//! alone; this only puts that verdict in the journal's terms.

use chrono::{DateTime, Duration, Utc};

use crate::domain::ids::Wamid;
use crate::whatsapp::{Accepted, Action, RateLimit, SendError};

/// How retries go (`[dispatch]`), with the jitter drawn by the caller so the decision is pure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub max_attempts: u32,
    pub initial_backoff: std::time::Duration,
    pub max_backoff: std::time::Duration,
    /// The back-off's factor, drawn from 0.8..1.2 so a burst of failures does not retry in
    /// lockstep (1.0: none).
    pub jitter: f64,
}

impl Policy {
    /// Back-off for attempt `n` (1-based): initial × 2^(n-1), capped, times the jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.initial_backoff.as_secs_f64()
            * 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
        let capped = base.min(self.max_backoff.as_secs_f64());
        Duration::milliseconds((capped * self.jitter * 1000.0) as i64)
    }
}

/// What happened to one record.
#[derive(Debug, PartialEq, Eq)]
pub enum DispatchOutcome {
    Sent {
        wamid: Wamid,
    },
    /// Refused before sending (bad record or closed window): Failed with this code.
    Refused {
        code: String,
    },
    /// Meta refused it for good: Failed with this code.
    Failed {
        code: String,
    },
    /// Will be tried again at this time; `code` says why (e.g. `WA_UNREACHABLE`, `WA_131000`).
    RetryScheduled {
        at: DateTime<Utc>,
        code: String,
    },
    /// Meta asked to slow down (or sfwa knows it would): waits until `at`, not counted as an
    /// attempt; `code` is Meta's (`WA_130429`, `WA_131056`, …).
    RateLimited {
        at: DateTime<Utc>,
        code: String,
    },
    /// Another worker or process had already started sending it (the journal let only one in).
    AlreadySending,
    /// Sending is on hold (auth / account problem); the message waits.
    Held,
    /// Meta may or may not have it; the status echo or the grace period will tell.
    OutcomeUnknown,
    /// Free-form outside the window: a re-engagement template went (or is going) to the
    /// customer and the message waits for the reply until `until` (see `pipeline::reengage`).
    WaitingForReply {
        until: DateTime<Utc>,
    },
}

/// What becomes of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// WhatsApp accepted it.
    Sent {
        wamid: Wamid,
        window_expires_at: Option<DateTime<Utc>>,
    },
    /// Refused before sending (a bad record, a closed window): Failed, nothing was sent.
    Refuse {
        code: String,
        message: String,
        window_expired_at: Option<DateTime<Utc>>,
    },
    /// Failed for good after trying (Meta's verdict, or attempts exhausted).
    Fail {
        code: String,
        message: String,
        window_expires_at: Option<DateTime<Utc>>,
    },
    /// Sent again at `at`, as attempt `attempts`.
    Retry {
        at: DateTime<Utc>,
        attempts: u32,
        code: String,
    },
    /// Waits until `until` without counting an attempt; `hold` when Meta's refusal starts a
    /// hold (every send, or every send from this number, waits), `None` when the record met one.
    Hold {
        until: DateTime<Utc>,
        hold: Option<NewHold>,
    },
    /// A rate limit: waits (see `apply`'s `rate_limited`); `meta` is Meta's words when Meta
    /// refused this very send, `held_until` set when sfwa held it back itself.
    Wait {
        limit: RateLimit,
        code: String,
        meta: Option<String>,
        held_until: Option<DateTime<Utc>>,
    },
    /// Meta may or may not have it: left in Sending for the status echo or the grace period.
    Unknown,
}

/// A hold Meta's refusal starts, with Meta's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewHold {
    /// The token or the app: every send waits.
    All { reason: String },
    /// The sending number (blocked, locked, not registered): its sends wait, others go on.
    Number { reason: String },
}

/// How long every send waits once Meta refuses the token or the app.
pub const HOLD_ALL_FOR: Duration = Duration::seconds(60);
/// How long sends from a number wait once Meta refuses that number (blocked, locked).
pub const HOLD_NUMBER_FOR: Duration = Duration::seconds(60);

/// What the result of a send of attempt `attempt` means, at `now`.
pub fn decide(
    sent: &Result<Accepted, SendError>,
    window_expires_at: Option<DateTime<Utc>>,
    attempt: u32,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Next {
    let error = match sent {
        Ok(accepted) => {
            return Next::Sent {
                wamid: accepted.wamid.clone(),
                window_expires_at,
            }
        }
        Err(SendError::Meta(error)) => error,
        Err(SendError::NotSent(reason)) => {
            let message = format!("WhatsApp could not be reached: {reason}");
            return retry_or_fail("WA_UNREACHABLE", &message, attempt, policy, now);
        }
        Err(SendError::OutcomeUnknown(_) | SendError::BadResponse(_)) => return Next::Unknown,
    };
    let code = error.error_code();
    match error.action() {
        Action::Fail => Next::Fail {
            code,
            message: error.failure_message(),
            window_expires_at,
        },
        Action::HoldAll => Next::Hold {
            until: now + HOLD_ALL_FOR,
            hold: Some(NewHold::All {
                reason: error.rep_message(),
            }),
        },
        Action::HoldNumber => Next::Hold {
            until: now + HOLD_NUMBER_FOR,
            hold: Some(NewHold::Number {
                reason: error.rep_message(),
            }),
        },
        Action::Retry => retry_or_fail(&code, &error.rep_message(), attempt, policy, now),
        Action::SlowDown(limit) => Next::Wait {
            limit,
            code,
            meta: Some(error.rep_message()),
            held_until: None,
        },
    }
}

/// Another attempt after the back-off, or Failed once `dispatch.max_attempts` is reached.
pub fn retry_or_fail(
    code: &str,
    message: &str,
    attempt: u32,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Next {
    let attempts = attempt + 1;
    if attempts >= policy.max_attempts {
        return Next::Fail {
            code: code.to_string(),
            message: format!("{message} (gave up after {attempts} attempts)"),
            window_expires_at: None,
        };
    }
    Next::Retry {
        at: now + policy.backoff(attempts),
        attempts,
        code: code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::{MetaError, OUTSIDE_WINDOW};

    fn policy() -> Policy {
        Policy {
            max_attempts: 3,
            initial_backoff: std::time::Duration::from_secs(10),
            max_backoff: std::time::Duration::from_secs(3600),
            jitter: 1.0,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// Meta's answer with `code` (a result, as the client returns it).
    #[allow(clippy::result_large_err)] // SendError's own size, as `WhatsAppClient::send` returns it
    fn meta(http_status: u16, code: i64) -> Result<Accepted, SendError> {
        Err(SendError::Meta(MetaError {
            http_status,
            code,
            subcode: None,
            message: format!("(#{code}) something"),
            title: Some("Something".into()),
            details: None,
            fbtrace_id: None,
        }))
    }

    #[test]
    fn an_accepted_send_is_sent_with_its_wamid_and_window() {
        let window = Some(now() + Duration::hours(3));
        let sent = Ok(Accepted {
            wamid: "wamid.1".parse().unwrap(),
            wa_id: None,
        });

        let next = decide(&sent, window, 0, &policy(), now());

        assert_eq!(
            next,
            Next::Sent {
                wamid: "wamid.1".parse().unwrap(),
                window_expires_at: window
            }
        );
    }

    #[test]
    fn a_message_meta_refuses_for_good_fails_with_metas_code() {
        let next = decide(&meta(400, 131026), None, 0, &policy(), now());

        assert!(matches!(next, Next::Fail { code, .. } if code == "WA_131026"));
    }

    #[test]
    fn a_closed_window_reported_by_meta_fails_as_outside_the_window() {
        let next = decide(&meta(400, 131047), None, 0, &policy(), now());

        assert!(matches!(next, Next::Fail { code, .. } if code == OUTSIDE_WINDOW));
    }

    #[test]
    fn an_unreachable_whatsapp_is_retried_after_the_backoff() {
        let sent = Err(SendError::NotSent("connection refused".into()));

        let next = decide(&sent, None, 0, &policy(), now());

        assert_eq!(
            next,
            Next::Retry {
                at: now() + Duration::seconds(10),
                attempts: 1,
                code: "WA_UNREACHABLE".into()
            }
        );
    }

    #[test]
    fn the_last_allowed_attempt_fails_instead_of_retrying() {
        let next = decide(&meta(503, 131000), None, 2, &policy(), now());

        assert!(
            matches!(&next, Next::Fail { code, message, .. } if code == "WA_131000" && message.ends_with("(gave up after 3 attempts)")),
            "{next:?}"
        );
    }

    #[test]
    fn an_account_meta_refuses_holds_every_send_for_a_minute() {
        let next = decide(&meta(401, 190), None, 0, &policy(), now());

        assert!(
            matches!(&next, Next::Hold { until, hold: Some(NewHold::All { .. }) } if *until == now() + HOLD_ALL_FOR),
            "{next:?}"
        );
    }

    #[test]
    fn a_number_meta_blocked_holds_only_that_numbers_sends_with_metas_words() {
        for code in [368, 131031] {
            let next = decide(&meta(400, code), None, 0, &policy(), now());

            assert!(
                matches!(&next, Next::Hold { until, hold: Some(NewHold::Number { reason }) }
                    if *until == now() + HOLD_NUMBER_FOR && reason.contains("Something")),
                "code {code}: {next:?}"
            );
        }
    }

    #[test]
    fn a_token_or_permission_refusal_holds_every_number() {
        for code in [0, 190, 3, 10, 200, 299] {
            let next = decide(&meta(400, code), None, 0, &policy(), now());

            assert!(
                matches!(
                    &next,
                    Next::Hold {
                        hold: Some(NewHold::All { .. }),
                        ..
                    }
                ),
                "code {code}: {next:?}"
            );
        }
    }

    #[test]
    fn a_rate_limit_refusal_waits_with_metas_words() {
        let next = decide(&meta(400, 130429), None, 0, &policy(), now());

        assert!(
            matches!(&next, Next::Wait { limit: RateLimit::Throughput, code, meta: Some(_), held_until: None } if code == "WA_130429"),
            "{next:?}"
        );
    }

    #[test]
    fn a_send_without_an_answer_is_left_unknown() {
        let sent = Err(SendError::OutcomeUnknown("timed out".into()));

        let next = decide(&sent, None, 0, &policy(), now());

        assert_eq!(next, Next::Unknown);
    }

    #[test]
    fn the_backoff_doubles_per_attempt_up_to_its_cap() {
        let policy = Policy {
            max_backoff: std::time::Duration::from_secs(30),
            ..policy()
        };

        assert_eq!(policy.backoff(1), Duration::seconds(10));
        assert_eq!(policy.backoff(2), Duration::seconds(20));
        assert_eq!(policy.backoff(3), Duration::seconds(30));
    }
}
