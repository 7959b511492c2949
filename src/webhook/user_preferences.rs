//! Meta's `user_preferences` webhook field: a customer stopped or resumed marketing messages from
//! one of our numbers in WhatsApp (2026 reference, "Marketing consent"). Each item of category
//! `marketing_messages` becomes a [`PreferenceUpdate`] that `pipeline::consent` stores for the
//! person; items of another category are acknowledged and not read (there is nothing else Meta
//! documents for it today).
//!
//! `{"user_preferences":[{"wa_id","detail","category":"marketing_messages","value":"stop"|"resume","timestamp"}]}`

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::read::{text, Refusal};
use crate::domain::ids::{BusinessNumberId, CustomerId};
use crate::domain::webhook_event::{PreferenceUpdate, WebhookEvent};

/// The category sfwa reads.
const MARKETING: &str = "marketing_messages";

/// One `user_preferences` item of `number`'s value, with its `timestamp` as the parser read it:
/// `Ok(None)` for a category sfwa does not read.
pub(super) fn preference(
    item: &Value,
    number: Option<&BusinessNumberId>,
    timestamp: Result<DateTime<Utc>, Refusal>,
) -> Result<Option<WebhookEvent>, Refusal> {
    match text(item, "category").as_deref() {
        Some(MARKETING) => {}
        _ => return Ok(None),
    }
    let opted_out = match text(item, "value").as_deref() {
        Some("stop") => true,
        Some("resume") => false,
        other => {
            return Err(Refusal::unreadable(format!(
                "value {:?} is neither \"stop\" nor \"resume\"",
                other.map(crate::domain::webhook_event::echo)
            )))
        }
    };
    let customer = customer(item)?;
    let timestamp = timestamp?;
    // A missing number refuses the item in `checked`, with the value's reason.
    let Some(number) = number else {
        return Err(Refusal::unreadable("no usable metadata.phone_number_id"));
    };
    Ok(Some(WebhookEvent::Preference(PreferenceUpdate {
        business_number_id: number.clone(),
        customer,
        opted_out,
        timestamp,
    })))
}

/// `wa_id`, else (a customer whose phone Meta withholds) `user_id`.
fn customer(item: &Value) -> Result<CustomerId, Refusal> {
    let key = if item.get("wa_id").is_some_and(|v| !v.is_null()) {
        "wa_id"
    } else {
        "user_id"
    };
    let raw = text(item, key).unwrap_or_default();
    raw.parse()
        .map_err(|error| Refusal::unreadable(format!("{key}: {error}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::domain::webhook_event::WebhookEvent;

    fn parsed(items: serde_json::Value) -> crate::domain::webhook_event::ParsedWebhook {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "user_preferences", "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "user_preferences": items}}]}]});
        crate::webhook::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[test]
    fn a_marketing_stop_and_resume_become_preference_events_of_the_customer() {
        let parsed = parsed(json!([
            {"wa_id": "16505551234", "detail": "User requested to stop marketing messages",
             "category": "marketing_messages", "value": "stop", "timestamp": "1750030073"},
            {"wa_id": "16505551234", "category": "marketing_messages", "value": "resume",
             "timestamp": "1750030080"}]));

        let stops: Vec<bool> = parsed
            .events
            .iter()
            .map(|e| match e {
                WebhookEvent::Preference(p) => {
                    assert_eq!(p.customer.as_str(), "16505551234");
                    assert_eq!(p.business_number_id.as_str(), "106540352242922");
                    p.opted_out
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(stops, vec![true, false]);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    }

    #[test]
    fn an_unknown_value_is_refused_and_another_category_is_left_alone() {
        let parsed = parsed(json!([
            {"wa_id": "16505551234", "category": "marketing_messages", "value": "maybe", "timestamp": "1750030073"},
            {"wa_id": "16505551234", "category": "something_else", "value": "stop", "timestamp": "1750030073"}]));

        assert!(parsed.events.is_empty(), "{:?}", parsed.events);
        assert_eq!(parsed.rejected.len(), 1);
    }
}
