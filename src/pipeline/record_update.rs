//! The fields each state change writes onto `WhatsApp_Message__c`. One place, so the record a rep
//! sees always tells the same story: a status, its time, and for failures a code and a sentence.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::domain::message::format_salesforce_datetime as at;
use crate::domain::status::MessageStatus;

pub type Fields = Map<String, Value>;

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn window(window_expires_at: Option<DateTime<Utc>>) -> Option<(&'static str, Value)> {
    window_expires_at.map(|w| ("Window_Expires_At__c", json!(at(w))))
}

/// Journaled and about to be sent.
pub fn sending() -> Fields {
    fields(&[("Status__c", json!(MessageStatus::Sending.as_salesforce()))])
}

/// Back to Queued, waiting for a rate limit to pass, with the reason for the rep.
pub fn waiting(reason: &str) -> Fields {
    fields(&[
        ("Status__c", json!(MessageStatus::Queued.as_salesforce())),
        ("Error_Message__c", json!(truncate(reason, 1024))),
    ])
}

/// Meta accepted the message.
pub fn accepted(wamid: &str, window_expires_at: Option<DateTime<Utc>>) -> Fields {
    let mut pairs = vec![
        ("Status__c", json!(MessageStatus::Sent.as_salesforce())),
        ("WhatsApp_Message_Id__c", json!(wamid)),
        ("Error_Code__c", Value::Null),
        ("Error_Message__c", Value::Null),
    ];
    pairs.extend(window(window_expires_at));
    fields(&pairs)
}

/// Meta's id for the message, learned after its status moved on (the `biz_opaque_callback_data`
/// echo resolved a send whose response was lost).
pub fn wamid_known(wamid: &str) -> Fields {
    fields(&[("WhatsApp_Message_Id__c", json!(wamid))])
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
    let mut pairs = vec![("WhatsApp_Message_Id__c", json!(wamid))];
    if clear_errors {
        pairs.push(("Error_Code__c", Value::Null));
        pairs.push(("Error_Message__c", Value::Null));
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
        ("Status__c", json!(MessageStatus::Failed.as_salesforce())),
        ("Error_Code__c", json!(truncate(code, 32))),
        ("Error_Message__c", json!(truncate(message, 1024))),
        ("Failed_At__c", json!(at(failed_at))),
    ];
    pairs.extend(window(window_expires_at));
    fields(&pairs)
}

/// A status webhook: the timestamp field always (idempotent), the status only when it advanced.
pub fn status_reported(status: MessageStatus, timestamp: DateTime<Utc>, advanced: bool) -> Fields {
    let stamp_field = match status {
        MessageStatus::Sent => "Sent_At__c",
        MessageStatus::Delivered => "Delivered_At__c",
        MessageStatus::Read => "Read_At__c",
        MessageStatus::Failed => "Failed_At__c",
        _ => return Fields::new(),
    };
    let mut update = fields(&[(stamp_field, json!(at(timestamp)))]);
    if advanced {
        update.insert("Status__c".into(), json!(status.as_salesforce()));
    }
    update
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
