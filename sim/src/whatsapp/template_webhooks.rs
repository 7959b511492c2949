//! The template lifecycle webhooks Meta sends when a template changes: a test changes a template
//! through the control API (`POST`/`PUT /__sim/templates`) and the business hears of it as it
//! would from Meta — `message_template_status_update` (`event` APPROVED, PAUSED, DISABLED, …,
//! `reason`; `disable_info.disable_date` when disabled), `template_category_update`
//! (`previous_category`/`new_category`) and `message_template_quality_update`
//! (`previous_quality_score`/`new_quality_score`), each naming the template by
//! `message_template_id`, `_name` and `_language`, in the account's envelope (entry id = the
//! WABA id). Only the fields the app is subscribed to are delivered (see `webhooks`).

use std::time::Duration;

use serde_json::{json, Value};

use super::state::SimState;
use super::template_listing::template_id;
use super::templates::{TemplateDefinition, TemplateStatus};
use super::webhooks::WebhookEvent;

fn status_word(status: TemplateStatus) -> Value {
    serde_json::to_value(status).unwrap_or(Value::Null)
}

/// The webhooks a change of one template from `before` (absent: a new template) to `after` makes.
pub fn changes(
    before: Option<&TemplateDefinition>,
    after: &TemplateDefinition,
    now: i64,
) -> Vec<(&'static str, Value)> {
    let named = || {
        json!({
            "message_template_id": template_id(after).parse::<u64>().unwrap_or(0),
            "message_template_name": after.name,
            "message_template_language": after.language,
        })
    };
    let mut out = Vec::new();
    if before.is_none_or(|b| b.status != after.status) {
        let mut value = named();
        value["event"] = status_word(after.status);
        value["reason"] = json!(match after.status {
            TemplateStatus::Paused | TemplateStatus::Disabled => "LOW_QUALITY",
            _ => "NONE",
        });
        if after.status == TemplateStatus::Disabled {
            value["disable_info"] = json!({"disable_date": now});
        }
        out.push(("message_template_status_update", value));
    }
    if let Some(before) = before.filter(|b| !b.category.eq_ignore_ascii_case(&after.category)) {
        let mut value = named();
        value["previous_category"] = json!(before.category.to_ascii_uppercase());
        value["new_category"] = json!(after.category.to_ascii_uppercase());
        out.push(("template_category_update", value));
    }
    if let Some(before) = before.filter(|b| b.quality != after.quality) {
        let mut value = named();
        value["previous_quality_score"] = json!(before.quality);
        value["new_quality_score"] = json!(after.quality);
        out.push(("message_template_quality_update", value));
    }
    out
}

/// Schedules the webhooks of a template change (at once, like Meta's near-real-time updates).
pub fn announce(state: &SimState, before: Option<&TemplateDefinition>, after: &TemplateDefinition) {
    let now = state.config.clock.now().timestamp();
    for (field, value) in changes(before, after, now) {
        state
            .outbox
            .schedule(Duration::ZERO, WebhookEvent::Inbound { field, value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::templates::default_templates;

    #[test]
    fn a_pause_says_paused_and_a_recategorisation_says_both_categories() {
        let before = default_templates().remove(0);
        let mut after = before.clone();
        after.status = TemplateStatus::Paused;
        after.category = "MARKETING".into();

        let changes = changes(Some(&before), &after, 1_750_000_000);

        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].0, "message_template_status_update");
        assert_eq!(changes[0].1["event"], "PAUSED");
        assert_eq!(changes[0].1["message_template_name"], before.name.as_str());
        assert_eq!(changes[1].1["previous_category"], "UTILITY");
        assert_eq!(changes[1].1["new_category"], "MARKETING");
    }
}
