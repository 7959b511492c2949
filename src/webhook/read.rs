//! The small readers the webhook parser and its message-kind reader share: a key as text, a key
//! that must be there, and why an item is refused ([`Refusal`]). Their own file so that
//! `payload` (the envelope) and `kinds` (each message type) both use them without importing
//! each other in a circle.

use serde_json::Value;

use crate::domain::webhook_event::RejectReason;

/// Why one item is refused, before it is placed in the POST (see [`RejectedEvent`]).
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) reason: RejectReason,
    pub(super) detail: String,
}

impl Refusal {
    pub(super) fn new(reason: RejectReason, detail: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            detail: detail.into(),
        }
    }

    pub(super) fn unreadable(detail: impl Into<String>) -> Refusal {
        Refusal::new(RejectReason::Unreadable, detail)
    }
}

pub(super) fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

pub(super) fn required(value: &Value, key: &str) -> Result<String, Refusal> {
    text(value, key)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Refusal::unreadable(format!("no \"{key}\"")))
}
