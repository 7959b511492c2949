//! The small readers the webhook parser and its message-kind reader share: a key as text, a key
//! that must be there, why an item is refused ([`Refusal`]), and what a timestamp or a pricing
//! part reads as. Their own file so that `payload` (the envelope), `kinds` (each message type)
//! and `typed` (the common POSTs) all use them without importing each other in a circle.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::message::is_salesforce_datetime;
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

/// Unix times at or past this are read as milliseconds. Meta documents seconds, but a value this
/// large cannot be seconds for anything Salesforce stores (10^11 s is the year 5138), while as
/// milliseconds it is any time after March 1973 — so it is taken as milliseconds and converted.
pub const MILLISECONDS_FROM: i64 = 100_000_000_000;

/// A timestamp's Unix number as a time (seconds, or milliseconds from [`MILLISECONDS_FROM`]),
/// if Salesforce can store it.
pub(super) fn stamped(number: i64) -> Option<DateTime<Utc>> {
    let at = if number >= MILLISECONDS_FROM {
        DateTime::from_timestamp_millis(number)
    } else {
        DateTime::from_timestamp(number, 0)
    };
    at.filter(|at| is_salesforce_datetime(*at))
}

/// The length of the pricing fields on the record (`Pricing_Category__c` and its neighbours).
pub(super) const PRICING_CHARS: usize = crate::salesforce::contract::PRICING_CHARS;

pub(super) fn cut_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
