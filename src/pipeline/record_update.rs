//! The fields each state change writes onto `WhatsApp_Message__c`. One place, so the record a rep
//! sees always tells the same story: a status, its time, and for failures a code and a sentence.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::domain::message::format_salesforce_datetime as at;
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::Pricing;
use crate::salesforce::contract;
use crate::store::{outbox, StoreError};

pub type Fields = Map<String, Value>;

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn window(window_expires_at: Option<DateTime<Utc>>) -> Option<(&'static str, Value)> {
    window_expires_at.map(|w| (contract::WINDOW_EXPIRES_AT, json!(at(w))))
}

/// Journaled and about to be sent.
pub fn sending() -> Fields {
    fields(&[(
        contract::STATUS,
        json!(MessageStatus::Sending.as_salesforce()),
    )])
}

/// Back to Queued, waiting for a rate limit to pass, with the reason for the rep.
pub fn waiting(reason: &str) -> Fields {
    fields(&[
        (
            contract::STATUS,
            json!(MessageStatus::Queued.as_salesforce()),
        ),
        (contract::ERROR_MESSAGE, json!(truncate(reason, 1024))),
    ])
}

/// Queues [`waiting`] for record `id` in the caller's store transaction: the record stays
/// Queued and says why it waits (a rate limit, a paused template) and until when.
pub fn enqueue_waiting(
    tx: &rusqlite::Connection,
    (object, id): (&str, &str),
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    outbox::enqueue(tx, object, id, &waiting(reason), now)
}

/// Meta accepted the message.
pub fn accepted(wamid: &str, window_expires_at: Option<DateTime<Utc>>) -> Fields {
    let mut pairs = vec![
        (contract::STATUS, json!(MessageStatus::Sent.as_salesforce())),
        (contract::WHATSAPP_MESSAGE_ID, json!(wamid)),
        (contract::ERROR_CODE, Value::Null),
        (contract::ERROR_MESSAGE, Value::Null),
    ];
    pairs.extend(window(window_expires_at));
    fields(&pairs)
}

/// Meta's id for the message, learned after its status moved on (the `biz_opaque_callback_data`
/// echo resolved a send whose response was lost).
pub fn wamid_known(wamid: &str) -> Fields {
    fields(&[(contract::WHATSAPP_MESSAGE_ID, json!(wamid))])
}

/// Meta accepted the message, but a status webhook overtook the response and already moved the
/// record on: everything [`accepted`] says except the status (and the errors, which a `failed`
/// webhook may have just written).
///
/// `clear_errors`: the status it moved on to is not `Failed`, so an Error_Message__c left by an
/// earlier wait (a rate limit) is cleared.
pub fn accepted_after_status(
    wamid: &str,
    window_expires_at: Option<DateTime<Utc>>,
    clear_errors: bool,
) -> Fields {
    let mut pairs = vec![(contract::WHATSAPP_MESSAGE_ID, json!(wamid))];
    if clear_errors {
        pairs.push((contract::ERROR_CODE, Value::Null));
        pairs.push((contract::ERROR_MESSAGE, Value::Null));
    }
    pairs.extend(window(window_expires_at));
    fields(&pairs)
}

/// Refused or failed, with sfwa's or Meta's code and a sentence for the rep.
pub fn failed(
    code: &str,
    message: &str,
    failed_at: DateTime<Utc>,
    window_expires_at: Option<DateTime<Utc>>,
) -> Fields {
    let mut pairs = vec![
        (
            contract::STATUS,
            json!(MessageStatus::Failed.as_salesforce()),
        ),
        (contract::ERROR_CODE, json!(truncate(code, 32))),
        (contract::ERROR_MESSAGE, json!(truncate(message, 1024))),
        (contract::FAILED_AT, json!(at(failed_at))),
    ];
    pairs.extend(window(window_expires_at));
    fields(&pairs)
}

/// Error_Code__c for a record set back to Queued after WhatsApp had accepted it.
pub const ALREADY_SENT: &str = "ALREADY_SENT";

/// A record set back to Queued after WhatsApp accepted it: it is never sent again (guarantee 1).
/// The record gets the status the journal knows (`known`) back with Error_Code__c `ALREADY_SENT`
/// and a sentence saying what to do.
///
/// Why the known status and not always `Failed`: statuses only move forward (guarantee 3). A
/// message Sent, Delivered or Read reached WhatsApp or the customer; writing `Failed` would tell
/// the rep it did not, and a later `read` receipt would then be the only thing correcting it.
/// Restoring the status keeps the record truthful and the code says why it is not Queued. A
/// message that failed after acceptance (`Failed` with a wamid) stays `Failed`, now as
/// `ALREADY_SENT`. The wamid is written again in case the person cleared it.
pub fn already_sent(
    known: MessageStatus,
    wamid: &str,
    accepted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Fields {
    let message = match accepted_at {
        Some(when) => format!(
            "WhatsApp accepted this message at {} UTC; create a new message to send it again.",
            when.format("%Y-%m-%d %H:%M")
        ),
        None => "WhatsApp already accepted this message; create a new message to send it again."
            .to_string(),
    };
    let status = match known {
        MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read => known,
        _ => MessageStatus::Failed,
    };
    let mut pairs = vec![
        (contract::STATUS, json!(status.as_salesforce())),
        (contract::WHATSAPP_MESSAGE_ID, json!(wamid)),
        (contract::ERROR_CODE, json!(ALREADY_SENT)),
        (contract::ERROR_MESSAGE, json!(message)),
    ];
    if status == MessageStatus::Failed {
        pairs.push((contract::FAILED_AT, json!(at(now))));
    }
    fields(&pairs)
}

/// A status webhook: the timestamp field always (idempotent), the status only when it advanced.
pub fn status_reported(status: MessageStatus, timestamp: DateTime<Utc>, advanced: bool) -> Fields {
    let stamp_field = match status {
        MessageStatus::Sent => contract::SENT_AT,
        MessageStatus::Delivered => contract::DELIVERED_AT,
        MessageStatus::Read => contract::READ_AT,
        MessageStatus::Failed => contract::FAILED_AT,
        _ => return Fields::new(),
    };
    let mut update = fields(&[(stamp_field, json!(at(timestamp)))]);
    if advanced {
        update.insert(contract::STATUS.into(), json!(status.as_salesforce()));
    }
    update
}

/// What Meta bills for the message (a status's `pricing`): category, type, model and, when
/// Meta says it, whether it is billable. A part Meta left out is not written (an earlier
/// status's value stays).
pub fn priced(pricing: &Pricing) -> Fields {
    let text = |field: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| (field, json!(truncate(v, contract::PRICING_CHARS))))
    };
    let pairs: Vec<(&str, Value)> = [
        text(contract::PRICING_CATEGORY, &pricing.category),
        text(contract::PRICING_TYPE, &pricing.pricing_type),
        text(contract::PRICING_MODEL, &pricing.model),
        pricing
            .billable
            .map(|b| (contract::PRICING_BILLABLE, json!(b))),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields(&pairs)
}

/// Salesforce refuses over-long text (STRING_TOO_LONG); cut at a character boundary instead.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max_chars - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_status_writes_its_timestamp_but_not_the_status() {
        let now = Utc::now();
        let update = status_reported(MessageStatus::Delivered, now, false);
        assert!(update.contains_key("Delivered_At__c"));
        assert!(!update.contains_key("Status__c"));
    }

    #[test]
    fn a_requeued_accepted_message_keeps_a_forward_status_and_says_why() {
        let accepted = DateTime::parse_from_rfc3339("2026-11-24T15:04:05Z")
            .unwrap()
            .to_utc();

        let delivered = already_sent(
            MessageStatus::Delivered,
            "wamid.A",
            Some(accepted),
            accepted,
        );
        let failed = already_sent(MessageStatus::Failed, "wamid.B", None, accepted);

        assert_eq!(delivered["Status__c"], "Delivered");
        assert_eq!(delivered["Error_Code__c"], ALREADY_SENT);
        assert_eq!(
            delivered["Error_Message__c"],
            "WhatsApp accepted this message at 2026-11-24 15:04 UTC; create a new message to send it again."
        );
        assert!(!delivered.contains_key("Failed_At__c"));
        assert_eq!(failed["Status__c"], "Failed");
        assert_eq!(failed["WhatsApp_Message_Id__c"], "wamid.B");
        assert!(failed.contains_key("Failed_At__c"));
    }

    #[test]
    fn pricing_writes_what_meta_said_and_leaves_out_what_it_did_not() {
        let full = Pricing {
            category: Some("marketing".into()),
            pricing_type: Some("regular".into()),
            model: Some("PMP".into()),
            billable: Some(true),
        };
        let partial = Pricing {
            category: Some("x".repeat(60)),
            ..Pricing::default()
        };

        let written = priced(&full);
        let cut = priced(&partial);

        assert_eq!(written["Pricing_Category__c"], "marketing");
        assert_eq!(written["Pricing_Type__c"], "regular");
        assert_eq!(written["Pricing_Model__c"], "PMP");
        assert_eq!(written["Pricing_Billable__c"], true);
        assert_eq!(cut.len(), 1, "{cut:?}");
        assert_eq!(
            cut["Pricing_Category__c"].as_str().unwrap().chars().count(),
            contract::PRICING_CHARS
        );
    }

    #[test]
    fn failure_texts_are_cut_to_the_field_lengths() {
        let update = failed(&"X".repeat(40), &"y".repeat(2000), Utc::now(), None);
        assert_eq!(
            update["Error_Code__c"].as_str().unwrap().chars().count(),
            32
        );
        assert_eq!(
            update["Error_Message__c"].as_str().unwrap().chars().count(),
            1024
        );
    }
}
