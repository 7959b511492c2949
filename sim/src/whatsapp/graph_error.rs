//! Graph API error responses, byte-for-byte in Meta's shape.
//!
//! `{"error":{"message":"(#CODE) Title","type":"OAuthException","code":CODE,
//! "error_data":{"messaging_product":"whatsapp","details":"…"},"fbtrace_id":"…"}}`.
//! Clients must classify by `code`, so every code the simulator can produce is a constructor here,
//! with Meta's title, its HTTP status and, where Meta has one, its standard details text.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::ids::new_fbtrace_id;

/// One synchronous error as Meta returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: u32,
    pub title: String,
    /// `error_data.details`; `None` for Graph-level errors (auth, unknown object) that carry none.
    pub details: Option<String>,
    /// `error_subcode` (deprecated by Meta but still sent for auth and unknown-object errors).
    pub subcode: Option<u32>,
    pub error_type: &'static str,
    /// Graph-level errors carry a sentence instead of `(#CODE) Title`.
    pub message: Option<String>,
}

/// Standard details texts, shared by synchronous errors and `failed` status webhooks.
pub const DETAILS_UNDELIVERABLE: &str = "Message Undeliverable.";
pub const DETAILS_REENGAGEMENT: &str = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.";
pub const DETAILS_THROUGHPUT: &str = "Message failed to send because there were too many messages sent from this phone number in a short period of time.";
pub const DETAILS_PAIR_RATE: &str = "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.";

impl GraphError {
    fn whatsapp(status: StatusCode, code: u32, title: &str, details: impl Into<String>) -> Self {
        Self {
            status,
            code,
            title: title.to_owned(),
            details: Some(details.into()),
            subcode: None,
            error_type: "OAuthException",
            message: None,
        }
    }

    /// 190 for a missing or unparsable token.
    pub fn invalid_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 190,
            title: "Invalid OAuth access token".to_owned(),
            details: None,
            subcode: None,
            error_type: "OAuthException",
            message: Some("Invalid OAuth access token - Cannot parse access token".to_owned()),
        }
    }

    /// 190 for an app token (`{app_id}|{secret}`) whose secret is wrong.
    pub fn invalid_token_signature() -> Self {
        Self {
            message: Some("Invalid OAuth access token signature.".to_owned()),
            ..Self::invalid_token()
        }
    }

    /// 2200: Meta could not verify a webhook callback URL (`reason` as Meta words it).
    pub fn callback_verification_failed(reason: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 2200,
            title: "Callback verification failed".to_owned(),
            details: None,
            subcode: None,
            error_type: "OAuthException",
            message: Some(format!(
                "(#2200) Callback verification failed with the following errors: {reason}"
            )),
        }
    }

    /// 15: an app-only edge (`/{app_id}/subscriptions`) called with a user or system-user token.
    pub fn app_token_required() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 15,
            title: "This method must be called with an app access_token.".to_owned(),
            details: None,
            subcode: None,
            error_type: "OAuthException",
            message: None,
        }
    }

    /// 190 / subcode 463 once the control API has expired the token.
    pub fn expired_token(now: chrono::DateTime<chrono::Utc>) -> Self {
        let expired_at = now - chrono::Duration::hours(1);
        let format = "%A, %d-%b-%y %H:%M:%S UTC";
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 190,
            title: "Session has expired".to_owned(),
            details: None,
            subcode: Some(463),
            error_type: "OAuthException",
            message: Some(format!(
                "Error validating access token: Session has expired on {}. The current time is {}.",
                expired_at.format(format),
                now.format(format)
            )),
        }
    }

    /// 100 / subcode 33: the phone number id (or any object id) is not ours.
    pub fn unknown_object(method: &str, id: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 100,
            title: "Unsupported request".to_owned(),
            details: None,
            subcode: Some(33),
            error_type: "GraphMethodException",
            message: Some(format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            )),
        }
    }

    /// 2500: the path is not a Graph path (e.g. a malformed version segment).
    pub fn unknown_path(path: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 2500,
            title: "Unknown path components".to_owned(),
            details: None,
            subcode: None,
            error_type: "OAuthException",
            message: Some(format!("Unknown path components: {path}")),
        }
    }

    /// 100: a parameter is missing, malformed or out of range.
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::whatsapp(StatusCode::BAD_REQUEST, 100, "Invalid parameter", details)
    }

    pub fn recipient_is_sender() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131021,
            "Recipient cannot be sender",
            "Sender and recipient phone number is the same.",
        )
    }

    /// 131026: the number is not on WhatsApp (or cannot receive this message); a webhook error.
    pub fn undeliverable() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131026,
            "Message undeliverable",
            DETAILS_UNDELIVERABLE,
        )
    }

    /// 131062: this message cannot go to a BSUID (authentication templates need a phone number).
    pub fn user_id_recipient_unsupported() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131062,
            "Business-scoped User ID recipients not supported",
            "Business-scoped User ID recipients are not supported for this message.",
        )
    }

    pub fn unsupported_message_type(got: &str) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131051,
            "Unsupported message type",
            format!("Message type is not currently supported: '{got}'."),
        )
    }

    pub fn reengagement() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131047,
            "Re-engagement message",
            DETAILS_REENGAGEMENT,
        )
    }

    /// 131050: the user stopped marketing messages from this business.
    pub fn marketing_stopped() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131050,
            "Unable to deliver message",
            "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
        )
    }

    /// 131049: not delivered to maintain healthy ecosystem engagement (the per-user marketing
    /// limit, or a marketing template to a US number).
    pub fn ecosystem_engagement() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        )
    }

    pub fn throughput_reached() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            130429,
            "Rate limit hit",
            DETAILS_THROUGHPUT,
        )
    }

    pub fn pair_rate_limit() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            DETAILS_PAIR_RATE,
        )
    }

    pub fn parameter_count_mismatch(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132000,
            "Number of parameters does not match the expected number of params",
            details,
        )
    }

    pub fn template_missing(name: &str, language: &str) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132001,
            "Template name does not exist in the translation",
            format!("template name ({name}) does not exist in {language}"),
        )
    }

    pub fn template_parameter_format(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132012,
            "Parameter format does not match format in the created template",
            details,
        )
    }

    pub fn template_paused(name: &str) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132015,
            "Template is Paused",
            format!("Template ({name}) is paused due to low quality so it cannot be sent."),
        )
    }

    pub fn template_disabled(name: &str) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132016,
            "Template is disabled",
            format!("Template ({name}) has been paused too many times due to low quality and is now permanently disabled."),
        )
    }

    /// 131000 / HTTP 500: an injected internal failure.
    pub fn something_went_wrong() -> Self {
        Self::whatsapp(
            StatusCode::INTERNAL_SERVER_ERROR,
            131000,
            "Something went wrong",
            "Message failed to send due to an unknown error.",
        )
    }

    /// 131016 / HTTP 503: an injected outage.
    pub fn service_unavailable() -> Self {
        Self::whatsapp(
            StatusCode::SERVICE_UNAVAILABLE,
            131016,
            "Service unavailable",
            "A service is temporarily unavailable.",
        )
    }

    /// The codes a number Meta stopped answers every send with (`PATCH /__sim/numbers/{id}`
    /// `hold_error`): 368 blocked for a policy violation, 131031 locked, 133010 not registered.
    pub const NUMBER_HOLD_CODES: [u32; 3] = [368, 131031, 133010];

    /// One of [`Self::NUMBER_HOLD_CODES`], in Meta's words; `None` for any other code.
    pub fn number_hold(code: u32) -> Option<Self> {
        Some(match code {
            368 => Self::whatsapp(
                StatusCode::FORBIDDEN,
                368,
                "Temporarily blocked for policies violations",
                "This phone number has been temporarily blocked for violating WhatsApp Business policies.",
            ),
            131031 => Self::whatsapp(
                StatusCode::FORBIDDEN,
                131031,
                "Account has been locked",
                "The WhatsApp Business Account associated with this phone number has been restricted or disabled for violating a platform policy.",
            ),
            133010 => Self::whatsapp(
                StatusCode::BAD_REQUEST,
                133010,
                "Account not registered",
                "This phone number is not registered on the WhatsApp Business Platform.",
            ),
            _ => return None,
        })
    }

    /// The `{"error":{…}}` body.
    pub fn body(&self) -> Value {
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| format!("(#{}) {}", self.code, self.title));
        let mut error = json!({
            "message": message,
            "type": self.error_type,
            "code": self.code,
        });
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        if let Some(details) = &self.details {
            error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
        }
        error["fbtrace_id"] = json!(new_fbtrace_id());
        json!({ "error": error })
    }

    /// The same error as an element of a `failed` status webhook's `errors` array.
    pub fn webhook_error(&self) -> Value {
        json!({
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details.clone().unwrap_or_else(|| self.title.clone())},
        })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        // Meta also names the error in WWW-Authenticate; some clients log it.
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| format!("(#{}) {}", self.code, self.title));
        let header = format!("OAuth \"Facebook Platform\" \"invalid_request\" \"{message}\"");
        let mut response = (self.status, Json(self.body())).into_response();
        if let Ok(value) = header.parse() {
            response.headers_mut().insert("www-authenticate", value);
        }
        response
    }
}
