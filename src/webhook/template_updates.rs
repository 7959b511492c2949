//! The template lifecycle webhook fields, read into [`TemplateUpdate`]s for the catalog
//! (`pipeline::catalog_sync::apply_updates`):
//! - `message_template_status_update`: `event` APPROVED, REJECTED, PAUSED, DISABLED, ARCHIVED, …
//!   (FLAGGED, LOCKED and UNLOCKED change no send's fate: the template stays as it was);
//! - `template_category_update`: `new_category` (a pending `correct_category` changes nothing yet);
//! - `message_template_quality_update`: `new_quality_score`.
//!
//! Each names the template by `message_template_name` and `message_template_language`; a value
//! without them is skipped (the next sync lists the template anyway).

use serde_json::Value;

use crate::domain::template_catalog::TemplateUpdate;

/// The webhook fields read here.
pub const FIELDS: [&str; 3] = [
    "message_template_status_update",
    "template_category_update",
    "message_template_quality_update",
];

/// Status events that say nothing about whether the template can be sent.
const NOT_A_STATUS: [&str; 4] = ["FLAGGED", "LOCKED", "UNLOCKED", "NONE"];

fn upper(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_uppercase)
}

/// The update a change's `value` on `field` says, or `None` when it names no template or
/// changes nothing.
pub fn read(field: &str, value: &Value) -> Option<TemplateUpdate> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let mut update = TemplateUpdate {
        name: text("message_template_name").filter(|n| !n.is_empty())?,
        language: text("message_template_language").filter(|l| !l.is_empty())?,
        ..TemplateUpdate::default()
    };
    match field {
        "message_template_status_update" => {
            update.status = upper(value, "event").filter(|e| !NOT_A_STATUS.contains(&e.as_str()));
        }
        "template_category_update" => update.category = upper(value, "new_category"),
        "message_template_quality_update" => update.quality = upper(value, "new_quality_score"),
        _ => return None,
    }
    (update.status.is_some() || update.category.is_some() || update.quality.is_some())
        .then_some(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pause_a_recategorisation_and_a_quality_change_are_read() {
        let named = json!({"message_template_id": 9, "message_template_name": "promo",
                           "message_template_language": "en_US"});
        let mut paused = named.clone();
        paused["event"] = json!("PAUSED");
        let mut category = named.clone();
        category["previous_category"] = json!("UTILITY");
        category["new_category"] = json!("MARKETING");
        let mut quality = named.clone();
        quality["new_quality_score"] = json!("RED");

        let status = read("message_template_status_update", &paused).unwrap();
        let category = read("template_category_update", &category).unwrap();
        let quality = read("message_template_quality_update", &quality).unwrap();

        assert_eq!(status.status.as_deref(), Some("PAUSED"));
        assert_eq!(category.category.as_deref(), Some("MARKETING"));
        assert_eq!(quality.quality.as_deref(), Some("RED"));
    }

    #[test]
    fn a_flag_or_a_pending_category_changes_nothing() {
        let flagged = json!({"event": "FLAGGED", "message_template_name": "promo",
                             "message_template_language": "en_US"});
        let pending = json!({"correct_category": "MARKETING", "message_template_name": "promo",
                             "message_template_language": "en_US"});
        assert_eq!(read("message_template_status_update", &flagged), None);
        assert_eq!(read("template_category_update", &pending), None);
    }
}
