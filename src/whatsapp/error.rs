//! What a Cloud API error means for sfwa: retry, wait, hold everything, hold the sending number,
//! or fail the record.
//!
//! Meta puts the truth in `error.code` (and `error_data.details`), not in the HTTP status, and the
//! same codes come back synchronously and in `failed` status webhooks — so [`classify`] takes a code
//! alone and is shared by both paths. Every row of Meta's error table (`shared/reference/
//! whatsapp-cloud-api.md`) is listed in [`KNOWN_CODES`]; a code Meta adds later is treated by
//! [`MetaError::action`] as transient when the HTTP status is 5xx and as permanent otherwise, since a
//! 4xx with an unknown code repeated forever would never stop the line but never help it either.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::webhook_event::StatusError;

/// What the dispatcher must do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Transient (Meta unavailable, maintenance): back off and retry this message.
    Retry,
    /// A rate limit: Meta asks sfwa to slow down. Not a verdict on the message: it waits (not
    /// counted as an attempt, bounded by `dispatch.max_rate_limited_wait`) and the pace adapts
    /// (see `pipeline::pacing`).
    SlowDown(RateLimit),
    /// The token or the app cannot send at all (expired token, missing permission): every
    /// number fails alike, so stop sending everything and alert. The messages are not at fault,
    /// so they are never failed.
    HoldAll,
    /// The business number the message goes from cannot send (blocked for a policy violation,
    /// locked, not registered): hold that number only, the account's other numbers go on. The
    /// messages are not at fault, so they are never failed. Even when Meta blocked the whole
    /// account, holding per number costs one refused send per number, where holding everything
    /// on a one-number problem would stop numbers that can send.
    HoldNumber,
    /// This message can never succeed: fail the record with [`MetaError::rep_message`].
    Fail,
}

/// Which of Meta's rate limits refused a send; each slows a different thing down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateLimit {
    /// 130429: the business number's messages per second.
    Throughput,
    /// 131056: too many messages to the same customer (about one per 6 s, with bursts).
    Pair,
    /// 131048: spam rate limit on a number with poor quality.
    Spam,
    /// 4, 80007: the app's or the WhatsApp Business Account's call limits.
    App,
}

impl RateLimit {
    /// How long a number is paused after a refusal of this kind (throughput and pair rate are
    /// paced instead, see `pipeline::pacing`).
    pub fn pause(self) -> Duration {
        match self {
            RateLimit::Throughput => THROUGHPUT_BACKOFF,
            RateLimit::Pair => PAIR_RATE_BACKOFF,
            RateLimit::Spam => SPAM_LIMIT_BACKOFF,
            RateLimit::App => APP_RATE_LIMIT_BACKOFF,
        }
    }

    /// What a rep reads on the record while it waits.
    pub fn waiting_sentence(self) -> &'static str {
        match self {
            RateLimit::Throughput => {
                "WhatsApp asked sfwa to send more slowly from this business number"
            }
            RateLimit::Pair => {
                "WhatsApp limits how many messages one customer may get in a short time"
            }
            RateLimit::Spam => {
                "WhatsApp is limiting this business number because of its quality rating"
            }
            RateLimit::App => "WhatsApp's limit on API calls for this account was reached",
        }
    }
}

/// Throughput (130429, per business number): the bucket refills every second.
pub const THROUGHPUT_BACKOFF: Duration = Duration::from_secs(1);
/// Pair rate (131056): Meta allows about one message per 6 s to one customer; Meta suggests
/// 4^x seconds, see [`pair_rate_backoff`] for later attempts.
pub const PAIR_RATE_BACKOFF: Duration = Duration::from_secs(6);
/// Spam rate limit (131048): Meta throttles a number with poor quality for a long while.
pub const SPAM_LIMIT_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// App / account rate limits (4, 80007) are counted per hour window.
pub const APP_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// Meta's advice for the pair rate limit: wait 4^attempt seconds (attempt 0, 1, 2 …), capped at
/// about 17 minutes so a message does not disappear into a day-long sleep.
pub fn pair_rate_backoff(attempt: u32) -> Duration {
    Duration::from_secs(4u64.saturating_pow(attempt.min(5)))
}

/// Every code of Meta's error table, with what to do. Table-tested; keep in step with the reference.
pub const KNOWN_CODES: &[(i64, Action)] = &[
    (0, Action::HoldAll),
    (190, Action::HoldAll),
    (3, Action::HoldAll),
    (10, Action::HoldAll),
    (4, Action::SlowDown(RateLimit::App)),
    (80007, Action::SlowDown(RateLimit::App)),
    (130429, Action::SlowDown(RateLimit::Throughput)),
    (131056, Action::SlowDown(RateLimit::Pair)),
    (131048, Action::SlowDown(RateLimit::Spam)),
    // Meta's advice is "retry after ≥ 24 h or fail". A day-old marketing message is rarely still
    // wanted, and a rep can re-queue it; failing says so now instead of hiding it for a day.
    (131049, Action::Fail),
    // The customer stopped marketing messages from this number: no retry can change that
    // (`pipeline::consent` marks them opted out; the record reads OPTED_OUT).
    (131050, Action::Fail),
    (1, Action::Retry),
    (2, Action::Retry),
    (131000, Action::Retry),
    (131016, Action::Retry),
    (131057, Action::Retry),
    (100, Action::Fail),
    (131008, Action::Fail),
    (131009, Action::Fail),
    (135000, Action::Fail),
    (131021, Action::Fail),
    (131026, Action::Fail),
    (131047, Action::Fail),
    // An authentication template to a business-scoped user id: no retry can change that.
    (131062, Action::Fail),
    (131051, Action::Fail),
    (131052, Action::Fail),
    (131053, Action::Fail),
    (132000, Action::Fail),
    (132001, Action::Fail),
    (132005, Action::Fail),
    (132007, Action::Fail),
    (132012, Action::Fail),
    (132015, Action::Fail),
    (132016, Action::Fail),
    // "Account not registered": the reference's table says fail (the rep sees why, and the
    // admin registers the number, `POST /{phone_number_id}/register`).
    (133010, Action::Fail),
    // "Temporarily blocked for policies violations": Meta's block comes with the send from a
    // number and is lifted per number; the account's other numbers are asked on their own sends.
    (368, Action::HoldNumber),
    // "Account locked": the number's account is restricted (policy, or data that does not
    // match the number's, e.g. its two-step PIN); said on sends from that number.
    (131031, Action::HoldNumber),
];

fn known(code: i64) -> Option<Action> {
    match code {
        // Graph permission errors are a range: any of them means the token lacks a permission.
        200..=299 => Some(Action::HoldAll),
        _ => KNOWN_CODES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(_, action)| *action),
    }
}

/// Classification of a code alone (synchronous errors and `failed` status webhooks). Unknown codes
/// are [`Action::Fail`]; [`MetaError::action`] refines that with the HTTP status.
pub fn classify(code: i64) -> Action {
    known(code).unwrap_or(Action::Fail)
}

/// Meta's 131047, "Re-engagement message" (see [`is_window_closed`]).
const WINDOW_CLOSED: i64 = 131047;

/// Error_Code__c of a message not sent because the customer-service window was closed, whether
/// sfwa refused it before sending (`window::decide`) or Meta did (131047).
pub const OUTSIDE_WINDOW: &str = "OUTSIDE_SESSION_WINDOW";
/// Error_Message__c beside [`OUTSIDE_WINDOW`]: what the rep does about it.
pub const OUTSIDE_WINDOW_MESSAGE: &str = "Not sent: the customer has not written to this WhatsApp number in the last 24 hours, so WhatsApp only allows an approved template. Send a template (Message Type = Template) instead.";

/// Meta's 131062: an authentication template cannot be sent to a business-scoped user id.
const AUTH_TEMPLATE_TO_BSUID: i64 = 131062;

/// Error_Code__c of an authentication template addressed to a customer known only by their
/// business-scoped user id: sfwa refuses it before sending when it knows the template's category
/// (`pipeline::dispatch`), and Meta's 131062 reads the same when it did not.
pub const AUTH_TEMPLATE_TO_USER_ID: &str = "AUTH_TEMPLATE_TO_USER_ID";
/// Error_Message__c beside [`AUTH_TEMPLATE_TO_USER_ID`]: what the rep does about it.
pub const AUTH_TEMPLATE_TO_USER_ID_MESSAGE: &str = "Not sent: WhatsApp does not allow authentication (one-time code) templates to a customer known only by their WhatsApp user id. Enter the customer's phone number in To Phone, or send a Request Contact Info message first so the customer can share it.";

/// Meta's 131050: the customer stopped marketing messages from this number.
const STOPPED_MARKETING: i64 = 131050;
/// Error_Code__c of a marketing template not sent because the customer opted out, whether sfwa
/// refused it before sending (`pipeline::consent`) or Meta did (131050).
pub const OPTED_OUT: &str = "OPTED_OUT";

/// Whether Meta's `code` is 131047, "Re-engagement message": a free-form message reached Meta
/// after the customer's 24-hour window had closed. The one code whose meaning is sfwa's own, and
/// this file is the one place that says it:
/// - the record reads exactly as if sfwa had refused the send itself ([`OUTSIDE_WINDOW`],
///   [`OUTSIDE_WINDOW_MESSAGE`]; DESIGN.md: a window closed under us reads the same as one sfwa
///   refused), see [`error_code`] and [`failure_message`];
/// - the inbound mirror thought the window open, so the webhook's apply step closes it for that
///   customer.
pub fn is_window_closed(code: i64) -> bool {
    code == WINDOW_CLOSED
}

/// The Error_Code__c value for a Meta code: `WA_131026`, except 131047, which is sfwa's own
/// [`OUTSIDE_WINDOW`] (see [`is_window_closed`]), and 131062, [`AUTH_TEMPLATE_TO_USER_ID`].
pub fn error_code(code: i64) -> String {
    if is_window_closed(code) {
        OUTSIDE_WINDOW.to_string()
    } else if code == AUTH_TEMPLATE_TO_BSUID {
        AUTH_TEMPLATE_TO_USER_ID.to_string()
    } else if code == STOPPED_MARKETING {
        OPTED_OUT.to_string()
    } else {
        format!("WA_{code}")
    }
}

/// Error_Message__c of a record Meta failed with `code`: [`rep_message`], except 131047, which
/// reads as sfwa's own [`OUTSIDE_WINDOW_MESSAGE`] (see [`is_window_closed`]).
pub fn failure_message(code: i64, title: Option<&str>, details: Option<&str>) -> String {
    if is_window_closed(code) {
        OUTSIDE_WINDOW_MESSAGE.to_string()
    } else if code == AUTH_TEMPLATE_TO_BSUID {
        AUTH_TEMPLATE_TO_USER_ID_MESSAGE.to_string()
    } else {
        rep_message(code, title, details)
    }
}

/// A sentence a sales rep understands, for the codes that fail a record (and a generic one else).
pub fn rep_sentence(code: i64) -> &'static str {
    match code {
        100 => "WhatsApp rejected the message because a value in it is invalid or missing.",
        131008 => "WhatsApp rejected the message because a required value is missing.",
        131009 => "WhatsApp rejected the message because a value in it is not valid.",
        135000 => "WhatsApp rejected the message because of an invalid parameter.",
        131021 => "The recipient is the business's own WhatsApp number; send to the customer's number instead.",
        131026 => "WhatsApp could not deliver to this number: it may not be on WhatsApp or may use an old app version.",
        131047 => "More than 24 hours have passed since the customer last wrote, so only an approved template can be sent.",
        131062 => "WhatsApp does not allow authentication templates to a customer known only by their WhatsApp user id; send to their phone number.",
        131050 => "The customer turned off marketing messages from this business in WhatsApp; only service and utility messages reach them.",
        131049 => "WhatsApp held back this marketing message to limit how many the customer receives; try again in a day or more.",
        131051 => "WhatsApp does not support this type of message.",
        131052 => "WhatsApp could not download the media file the customer sent.",
        131053 => "WhatsApp could not download the media file: check that the Media URL is public and the file type and size are allowed.",
        132000 => "The number of template parameters does not match the approved template.",
        132001 => "The template does not exist in this language or is not approved yet.",
        132005 => "The template text is too long once the parameters are filled in.",
        132007 => "The template content breaks WhatsApp's policies.",
        132012 => "A template parameter has the wrong format (for example a missing or wrong header media).",
        132015 => "The template is paused by WhatsApp because of low quality.",
        132016 => "The template is disabled by WhatsApp because of low quality.",
        133010 => "The business phone number is not registered with WhatsApp; an admin must register it.",
        0 | 190 => "WhatsApp refused sfwa's access token; an admin must renew it.",
        3 | 10 | 200..=299 => "sfwa's WhatsApp access lacks a permission; an admin must fix it.",
        368 | 131031 => "WhatsApp blocked or locked this business number.",
        4 | 80007 | 130429 | 131056 | 131048 => "WhatsApp is limiting how fast messages can be sent.",
        1 | 2 | 131000 | 131016 | 131057 => "WhatsApp is temporarily unavailable.",
        _ => "WhatsApp refused the message.",
    }
}

/// Error_Message__c is a Text(1024) field.
const MAX_REP_MESSAGE_CHARS: usize = 1024;

/// The rep sentence followed by Meta's own words: `… (Meta: Title: details)`, at most 1024 characters.
pub fn rep_message(code: i64, title: Option<&str>, details: Option<&str>) -> String {
    let title = title.map(str::trim).filter(|t| !t.is_empty());
    let details = details
        .map(str::trim)
        .filter(|d| !d.is_empty())
        // Meta often repeats the title as the details ("Message undeliverable" / "Message Undeliverable.").
        .filter(|d| title.is_none_or(|t| !d.trim_end_matches('.').eq_ignore_ascii_case(t)));
    let meta = match (title, details) {
        (Some(t), Some(d)) => format!(" (Meta: {t}: {d})"),
        (Some(t), None) => format!(" (Meta: {t})"),
        (None, Some(d)) => format!(" (Meta: {d})"),
        (None, None) => String::new(),
    };
    let full = format!("{}{meta}", rep_sentence(code));
    if full.chars().count() <= MAX_REP_MESSAGE_CHARS {
        full
    } else {
        let mut cut: String = full.chars().take(MAX_REP_MESSAGE_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// An error body from the Graph API, read at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaError {
    pub http_status: u16,
    pub code: i64,
    /// `error_subcode`: deprecated by Meta, still sent for auth (463 = expired) and unknown objects.
    pub subcode: Option<i64>,
    /// `error.message`, e.g. `(#131026) Message undeliverable`.
    pub message: String,
    /// The title: `error_user_title`, or `message` without its `(#CODE) ` prefix.
    pub title: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} code {}: {}",
            self.http_status, self.code, self.message
        )?;
        if let Some(details) = &self.details {
            write!(f, " ({details})")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    code: i64,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_user_title: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

impl MetaError {
    /// Reads Meta's `{"error":{…}}` body; `None` when the body is not one.
    pub fn from_body(http_status: u16, body: &[u8]) -> Option<MetaError> {
        let ErrorEnvelope { error } = serde_json::from_slice(body).ok()?;
        let prefix = format!("(#{}) ", error.code);
        let title = error
            .error_user_title
            .filter(|t| !t.trim().is_empty())
            .or_else(|| error.message.strip_prefix(&prefix).map(str::to_string));
        Some(MetaError {
            http_status,
            code: error.code,
            subcode: error.error_subcode,
            title,
            details: error.error_data.and_then(|d| d.details),
            message: error.message,
            fbtrace_id: error.fbtrace_id,
        })
    }

    /// What to do: [`classify`] for known codes; unknown codes retry on 5xx and fail otherwise.
    pub fn action(&self) -> Action {
        known(self.code).unwrap_or(if self.http_status >= 500 {
            Action::Retry
        } else {
            Action::Fail
        })
    }

    /// Error_Code__c: `WA_131026`, or `OUTSIDE_SESSION_WINDOW` for 131047.
    pub fn error_code(&self) -> String {
        error_code(self.code)
    }

    /// Error_Message__c: a sentence for a rep plus Meta's title and details.
    pub fn rep_message(&self) -> String {
        // Graph-level errors (auth, unknown object) have a sentence instead of a title.
        let title = self.title.as_deref().or(Some(self.message.as_str()));
        rep_message(self.code, title, self.details.as_deref())
    }

    /// Error_Message__c of a record this error fails (see [`failure_message`]).
    pub fn failure_message(&self) -> String {
        let title = self.title.as_deref().or(Some(self.message.as_str()));
        failure_message(self.code, title, self.details.as_deref())
    }

    /// 131047: the customer-service window had closed (correct the inbound mirror).
    pub fn is_window_closed(&self) -> bool {
        is_window_closed(self.code)
    }
}

/// A `failed` status webhook carries the same codes as a refused send, so its error is read here
/// too: the domain type only carries Meta's values, this is the one place that says what they
/// mean. (An inherent impl outside the type's module, so `domain` needs nothing from `whatsapp`.)
impl StatusError {
    /// The same classification as synchronous errors.
    pub fn action(&self) -> Action {
        classify(self.code)
    }

    /// Error_Code__c (`WA_131026`, `OUTSIDE_SESSION_WINDOW`).
    pub fn error_code(&self) -> String {
        error_code(self.code)
    }

    /// A sentence for a rep plus Meta's title and details (see [`rep_message`]).
    pub fn rep_message(&self) -> String {
        rep_message(self.code, Some(&self.title), self.details.as_deref())
    }

    /// Error_Message__c of the record this status fails (see [`failure_message`]).
    pub fn failure_message(&self) -> String {
        failure_message(self.code, Some(&self.title), self.details.as_deref())
    }

    /// 131047: the window had closed after all (correct the inbound mirror).
    pub fn is_window_closed(&self) -> bool {
        is_window_closed(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's table, row by row: (codes, expected action).
    fn reference_table() -> Vec<(Vec<i64>, Action)> {
        vec![
            (vec![0, 190], Action::HoldAll),
            (vec![10, 200, 250, 299, 3], Action::HoldAll),
            (vec![4, 80007], Action::SlowDown(RateLimit::App)),
            (vec![130429], Action::SlowDown(RateLimit::Throughput)),
            (vec![131056], Action::SlowDown(RateLimit::Pair)),
            (vec![131048], Action::SlowDown(RateLimit::Spam)),
            (vec![131049, 131050], Action::Fail),
            (vec![1, 2, 131000, 131016, 131057], Action::Retry),
            (vec![100, 131008, 131009, 135000], Action::Fail),
            (vec![131021], Action::Fail),
            (vec![131026], Action::Fail),
            (vec![131047], Action::Fail),
            (vec![131062], Action::Fail),
            (vec![131051], Action::Fail),
            (vec![131052, 131053], Action::Fail),
            (vec![132000], Action::Fail),
            (vec![132001], Action::Fail),
            (vec![132005, 132007, 132012], Action::Fail),
            (vec![132015, 132016], Action::Fail),
            (vec![133010], Action::Fail),
            (vec![368, 131031], Action::HoldNumber),
        ]
    }

    #[test]
    fn every_row_of_metas_error_table_is_classified_as_the_reference_says() {
        for (codes, expected) in reference_table() {
            for code in codes {
                assert_eq!(classify(code), expected, "code {code}");
                assert!(known(code).is_some(), "code {code} must be known");
            }
        }
    }

    #[test]
    fn every_code_that_fails_a_record_has_its_own_rep_sentence() {
        let generic = rep_sentence(999_999);
        for (code, action) in KNOWN_CODES {
            if *action == Action::Fail {
                assert_ne!(rep_sentence(*code), generic, "code {code}");
            }
        }
    }

    #[test]
    fn rate_limits_wait_at_least_as_long_as_meta_asks() {
        assert_eq!(pair_rate_backoff(0), Duration::from_secs(1));
        assert_eq!(pair_rate_backoff(2), Duration::from_secs(16));
        assert_eq!(pair_rate_backoff(60), Duration::from_secs(1024));
        assert!(PAIR_RATE_BACKOFF >= Duration::from_secs(6));
    }

    fn meta_error(http_status: u16, code: i64) -> MetaError {
        MetaError {
            http_status,
            code,
            subcode: None,
            message: format!("(#{code}) Something"),
            title: Some("Something".into()),
            details: None,
            fbtrace_id: None,
        }
    }

    #[test]
    fn an_unknown_code_is_retried_on_5xx_and_failed_otherwise() {
        assert_eq!(meta_error(500, 987_654).action(), Action::Retry);
        assert_eq!(meta_error(503, 987_654).action(), Action::Retry);
        assert_eq!(meta_error(400, 987_654).action(), Action::Fail);
        assert_eq!(classify(987_654), Action::Fail);
    }

    #[test]
    fn a_known_code_is_classified_by_code_not_by_http_status() {
        assert_eq!(meta_error(400, 131000).action(), Action::Retry);
        assert_eq!(meta_error(500, 132001).action(), Action::Fail);
    }

    #[test]
    fn metas_error_body_is_read_with_title_details_and_trace() {
        let body = br#"{"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,
            "error_data":{"messaging_product":"whatsapp","details":"Message Undeliverable."},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
        let error = MetaError::from_body(400, body).expect("Meta's error body");
        assert_eq!(error.code, 131026);
        assert_eq!(error.title.as_deref(), Some("Message undeliverable"));
        assert_eq!(error.details.as_deref(), Some("Message Undeliverable."));
        assert_eq!(error.fbtrace_id.as_deref(), Some("Az8or2yhqkZfEZ-_4Qn_Bam"));
        assert_eq!(error.error_code(), "WA_131026");
        assert_eq!(
            error.rep_message(),
            "WhatsApp could not deliver to this number: it may not be on WhatsApp or may use an old app version. (Meta: Message undeliverable)"
        );
    }

    #[test]
    fn a_closed_window_reads_as_sfwas_own_outside_session_window_code() {
        let error = meta_error(400, 131047);
        assert!(error.is_window_closed());
        assert_eq!(error.error_code(), "OUTSIDE_SESSION_WINDOW");
        assert!(!meta_error(400, 131026).is_window_closed());
    }

    #[test]
    fn a_closed_window_reads_the_same_whether_meta_said_it_on_the_send_or_in_a_status() {
        let refused = meta_error(400, 131047);
        let status = StatusError {
            code: 131047,
            title: "Re-engagement message".into(),
            message: None,
            details: Some("More than 24 hours have passed.".into()),
        };

        let read = [
            (refused.error_code(), refused.failure_message()),
            (status.error_code(), status.failure_message()),
        ];

        for (code, message) in read {
            assert_eq!(code, OUTSIDE_WINDOW);
            assert_eq!(message, OUTSIDE_WINDOW_MESSAGE);
        }
        assert!(status.is_window_closed());
        assert_eq!(
            meta_error(400, 131026).failure_message(),
            meta_error(400, 131026).rep_message(),
            "every other code fails with Meta's words"
        );
    }

    #[test]
    fn rep_message_carries_metas_details_and_fits_the_salesforce_field() {
        let message = rep_message(
            132000,
            Some("Number of parameters does not match"),
            Some("body: expected 2, got 1"),
        );
        assert!(message
            .ends_with("(Meta: Number of parameters does not match: body: expected 2, got 1)"));
        let long = rep_message(100, Some("Invalid parameter"), Some(&"x".repeat(5000)));
        assert_eq!(long.chars().count(), 1024);
    }

    #[test]
    fn a_body_that_is_not_metas_error_is_not_a_meta_error() {
        assert!(MetaError::from_body(502, b"<html>Bad gateway</html>").is_none());
        assert!(MetaError::from_body(400, br#"{"error":"nope"}"#).is_none());
    }

    #[test]
    fn an_authentication_template_refused_for_a_user_id_reads_as_sfwas_own_code_on_send_and_status()
    {
        let refused = meta_error(400, 131062);
        let status = StatusError {
            code: 131062,
            title: "Authentication template not allowed".into(),
            message: None,
            details: None,
        };

        assert_eq!(refused.action(), Action::Fail);
        assert_eq!(refused.error_code(), AUTH_TEMPLATE_TO_USER_ID);
        assert_eq!(status.error_code(), AUTH_TEMPLATE_TO_USER_ID);
        assert_eq!(refused.failure_message(), AUTH_TEMPLATE_TO_USER_ID_MESSAGE);
        assert_eq!(status.failure_message(), AUTH_TEMPLATE_TO_USER_ID_MESSAGE);
        assert!(AUTH_TEMPLATE_TO_USER_ID_MESSAGE.contains("To Phone"));
    }
}
