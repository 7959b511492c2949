//! "Webhook subscription": the app's webhook callback and each webhook field sfwa needs.
//!
//! Which fields are *required* is not a hand-kept list: a field is required when
//! `webhook::parse` handles it (asked by parsing a one-change envelope), so when a feature lands
//! its field turns from "needed once … lands" into a failure by itself.

use crate::config::Settings;
use crate::doctor::clients::refused;
use crate::doctor::report::{Check, Outcome};
use crate::whatsapp::subscriptions::{AppSubscription, AppToken, WABA_OBJECT, WEBHOOK_FIELDS};
use crate::whatsapp::WhatsAppClient;

pub(in crate::doctor) const SUBSCRIPTION: &str = "Webhook subscription";

/// Whether `webhook::parse` handles changes of `field` (rather than skipping them as not handled).
pub fn handled_by_webhook(field: &str) -> bool {
    let envelope = serde_json::json!({"object": WABA_OBJECT, "entry": [
        {"id": "0", "changes": [{"field": field, "value": {}}]}]});
    let Ok(bytes) = serde_json::to_vec(&envelope) else {
        return false;
    };
    crate::webhook::parse(&bytes)
        .is_ok_and(|parsed| !parsed.skipped.iter().any(|s| s.contains("is not handled")))
}

/// Subscribing the app's webhook to `fields` (all the fields it should end up with), both ways.
fn subscribe_fields_fix(settings: &Settings, fields: &[&str], callback: Option<&str>) -> String {
    let wa = &settings.whatsapp;
    let callback = callback.unwrap_or("https://<your host><webhook.path>");
    format!(
        "App Dashboard → WhatsApp → Configuration → Webhook fields → Subscribe ({}); or curl -X \
         POST '{}/{}/{}/subscriptions' -d object={WABA_OBJECT} -d callback_url={callback} -d \
         fields={} -d verify_token=<whatsapp.verify_token> -d \"access_token={}|$APP_SECRET\"",
        fields.join(", "),
        wa.api_base.trim_end_matches('/'),
        wa.api_version,
        wa.app_id,
        fields.join(","),
        wa.app_id
    )
}

/// The app's webhook: its callback URL, and a line for each field sfwa needs that is missing.
pub(in crate::doctor) async fn check_webhook_fields(
    client: &WhatsAppClient,
    settings: &Settings,
) -> Vec<Check> {
    let wa = &settings.whatsapp;
    if wa.app_id.is_empty() {
        return vec![Check::skipped(
            SUBSCRIPTION,
            "set whatsapp.app_id (App Dashboard → App settings → Basic) to check the webhook \
             fields; with whatsapp.app_secret it makes the app token Meta wants for that",
        )];
    }
    let token = AppToken::new(&wa.app_id, wa.app_secret.expose());
    match client.app_subscriptions(&wa.app_id, &token).await {
        Ok(subscriptions) => {
            let waba = subscriptions.iter().find(|s| s.object == WABA_OBJECT);
            field_checks(waba, settings, handled_by_webhook)
        }
        Err(error) => vec![refused(
            SUBSCRIPTION,
            error,
            "check whatsapp.app_id and whatsapp.app_secret (App Dashboard → App settings → \
             Basic): the app token is {app_id}|{app_secret}",
            "copy the App ID from the App Dashboard → App settings → Basic into whatsapp.app_id",
        )],
    }
}

/// The webhook lines from the app's `whatsapp_business_account` subscription; pure but for
/// `handled`, which says whether sfwa handles a field today.
pub fn field_checks(
    subscription: Option<&AppSubscription>,
    settings: &Settings,
    handled: impl Fn(&str) -> bool,
) -> Vec<Check> {
    let all: Vec<&str> = WEBHOOK_FIELDS.iter().map(|(name, _)| *name).collect();
    let Some(subscription) = subscription.filter(|s| !s.fields.is_empty()) else {
        return vec![Check::fail(
            SUBSCRIPTION,
            "the app has no webhook for WhatsApp Business Accounts: Meta sends it no statuses \
             and no customer messages",
            subscribe_fields_fix(settings, &all, None),
        )];
    };
    let callback = subscription.callback_url.as_deref();
    let shown = callback.unwrap_or("(none)");
    let mut checks = Vec::new();
    let subscribed: Vec<&str> = subscription
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    if subscription.active {
        checks.push(Check::pass(
            SUBSCRIPTION,
            format!("callback {shown}; fields {}", subscribed.join(", ")),
        ));
    } else {
        checks.push(Check::fail(
            SUBSCRIPTION,
            format!("the webhook to {shown} is inactive: Meta sends nothing"),
            "App Dashboard → WhatsApp → Configuration → Webhook → Edit: verify and save the \
             callback URL again (Meta turns a webhook off when it keeps failing)",
        ));
    }
    // Fixing one field must not drop the others: the command names every field it should end up
    // with. It is spelled out once, on the first missing field; the others point back to it.
    let mut wanted: Vec<&str> = subscribed.clone();
    wanted.extend(all.iter().filter(|f| !subscribed.contains(f)));
    let mut command_shown = false;
    for (field, feature) in WEBHOOK_FIELDS {
        if subscription.has_field(field) {
            continue;
        }
        let name = format!("Webhook field {field}");
        let fix = if command_shown {
            format!(
                "App Dashboard → WhatsApp → Configuration → Webhook fields → {field} → Subscribe, \
                 or the command shown above (it subscribes every field sfwa needs)"
            )
        } else {
            command_shown = true;
            subscribe_fields_fix(settings, &wanted, callback)
        };
        checks.push(if handled(field) {
            Check::fail(
                name,
                format!("not subscribed: Meta sends no {feature} to {shown}"),
                fix,
            )
        } else {
            Check::new(
                name,
                Outcome::Info(format!(
                    "not subscribed; needed once sfwa handles {feature} (not yet). To subscribe: \
                     {fix}"
                )),
            )
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::subscriptions::SubscribedField;

    fn settings() -> Settings {
        let mut settings = Settings::default();
        settings.whatsapp.app_id = "67084".into();
        settings
    }

    fn subscription(fields: &[&str]) -> AppSubscription {
        AppSubscription {
            object: WABA_OBJECT.into(),
            callback_url: Some("https://sfwa.example.com/webhook".into()),
            active: true,
            fields: fields
                .iter()
                .map(|name| SubscribedField {
                    name: name.to_string(),
                    version: Some("v25.0".into()),
                })
                .collect(),
        }
    }

    #[test]
    fn the_message_template_user_preferences_and_standby_fields_are_handled_by_the_webhook_parser_today(
    ) {
        let handled: Vec<&str> = WEBHOOK_FIELDS
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| handled_by_webhook(f))
            .collect();
        assert_eq!(
            handled,
            vec![
                "messages",
                "message_template_status_update",
                "template_category_update",
                "message_template_quality_update",
                "user_preferences",
                "standby"
            ]
        );
    }

    #[test]
    fn a_missing_handled_field_fails_and_a_missing_future_field_is_info_both_with_the_fix() {
        let checks = field_checks(
            Some(&subscription(&["message_template_status_update"])),
            &settings(),
            |f| f == "messages",
        );
        let messages = checks
            .iter()
            .find(|c| c.name == "Webhook field messages")
            .expect("a messages line");
        let Outcome::Fail { problem, fix } = &messages.outcome else {
            panic!("{messages:?}");
        };
        assert!(
            problem.contains("https://sfwa.example.com/webhook"),
            "{problem}"
        );
        assert!(fix.contains("Webhook fields → Subscribe"), "{fix}");
        assert!(fix.contains("/67084/subscriptions"), "{fix}");
        assert!(
            fix.contains("fields=message_template_status_update,messages,"),
            "keeps the subscribed field: {fix}"
        );
        let standby = checks
            .iter()
            .find(|c| c.name == "Webhook field standby")
            .expect("a standby line");
        assert!(
            matches!(&standby.outcome, Outcome::Info(text) if text.contains("needed once sfwa handles")
                && text.contains("Webhook fields → standby → Subscribe")),
            "{standby:?}"
        );
        assert!(!checks
            .iter()
            .any(|c| c.name == "Webhook field message_template_status_update"));
    }

    #[test]
    fn no_webhook_for_the_account_fails_naming_every_field() {
        let checks = field_checks(None, &settings(), |_| true);
        assert_eq!(checks.len(), 1);
        let Outcome::Fail { fix, .. } = &checks[0].outcome else {
            panic!("{checks:?}");
        };
        assert!(
            fix.contains("messages, message_template_status_update"),
            "{fix}"
        );
    }
}
