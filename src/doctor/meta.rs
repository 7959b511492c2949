//! The checks of Meta's side: each business number (and its throughput level), the Graph API version (against
//! [`crate::whatsapp::versions`] on the injected date, and against the version Meta says answered),
//! the apps subscribed to the WhatsApp Business Account, and the app's webhook fields.
//!
//! Which webhook fields are *required* is not a hand-kept list: a field is required when
//! `webhook::parse` handles it (asked by parsing a one-change envelope), so when a feature lands
//! its field turns from "needed once … lands" into a failure by itself.

use chrono::NaiveDate;

use super::http::http_client;
use super::report::{Check, Outcome};
use crate::config::Settings;
use crate::whatsapp::subscriptions::{AppSubscription, AppToken, WABA_OBJECT, WEBHOOK_FIELDS};
use crate::whatsapp::versions::{self, VersionState};
use crate::whatsapp::{SendError, WhatsAppClient, WhatsAppConfig};

pub(super) const VERSION: &str = "Graph API version";
pub(super) const SUBSCRIBED_APPS: &str = "WhatsApp subscribed apps";
pub(super) const SUBSCRIPTION: &str = "Webhook subscription";

pub(super) fn whatsapp_client(settings: &Settings) -> WhatsAppClient {
    let wa = &settings.whatsapp;
    WhatsAppClient::new(
        http_client(),
        WhatsAppConfig {
            api_base: wa.api_base.clone(),
            api_version: wa.api_version.clone(),
            access_token: wa.access_token.expose().to_string(),
            timeout: wa.timeout,
        },
    )
}

/// Each business number's details from the Cloud API: proves the token and the id. Also returns
/// the Graph version Meta says answered (`facebook-api-version`), for the version check.
pub(super) async fn check_numbers(settings: &Settings) -> (Vec<Check>, Option<String>) {
    let wa = &settings.whatsapp;
    let client = whatsapp_client(settings);
    let mut checks = Vec::new();
    let mut answered_by = None;
    for id in settings.business_numbers() {
        let name = format!("WhatsApp number {id}");
        let check = match client.phone_number(&id).await {
            Ok(info) => {
                if answered_by.is_none() {
                    answered_by = info.answered_by_version.clone();
                }
                let shown = |v: Option<String>| v.unwrap_or_else(|| "?".into());
                let quality = shown(info.quality_rating.clone());
                let mut detail = format!(
                    "{}, {}, quality {quality}",
                    shown(info.verified_name.clone()),
                    shown(info.display_phone_number.clone())
                );
                if let Some(level) = info.throughput_level() {
                    detail.push_str(&format!(", throughput {level}"));
                }
                if matches!(quality.as_str(), "YELLOW" | "RED") {
                    detail.push_str(
                        ": customers are blocking or reporting messages; Meta may lower this \
                        number's limits",
                    );
                }
                let configured = wa.throughput_per_second;
                let level_rate = info.throughput_per_second();
                checks.push(Check::pass(name.clone(), detail));
                if let Some(rate) = level_rate.filter(|rate| configured > *rate) {
                    checks.push(Check::new(
                        format!("{name} throughput"),
                        Outcome::Info(format!(
                            "whatsapp.throughput_per_second is {configured}, above the {rate} \
                            messages a second of level {}; sfwa paces this number at {rate}/s and \
                            slows down further on Meta's 130429 refusals. Set it to {rate} or less \
                            (coexistence numbers: 20)",
                            info.throughput_level().unwrap_or("?")
                        )),
                    ));
                }
                continue;
            }
            Err(SendError::Meta(error)) => {
                let fix = match error.code {
                    0 | 190 => {
                        "create a new system-user access token with whatsapp_business_messaging \
                        (Business Settings → System users) and set whatsapp.access_token"
                    }
                    10 | 200..=299 | 3 => {
                        "give the system user whatsapp_business_management and \
                        whatsapp_business_messaging on this WhatsApp account"
                    }
                    100 | 803 => {
                        "copy the phone number ID from WhatsApp Manager → API setup, and assign \
                        the WhatsApp account to the token's system user"
                    }
                    _ => {
                        "see Meta's message; check whatsapp.api_version and the account's state \
                        in WhatsApp Manager"
                    }
                };
                Check::fail(
                    name,
                    format!("WhatsApp refused ({}): {}", error.code, error.message),
                    fix,
                )
            }
            Err(error) => Check::fail(
                name,
                error.to_string(),
                "check whatsapp.api_base and that this host can reach it (proxy, firewall)",
            ),
        };
        checks.push(check);
    }
    (checks, answered_by)
}

/// The version check; pure. `answered_by` is the `facebook-api-version` Meta sent with a number's
/// details (the version that actually answered).
pub fn version_check(version: &str, today: NaiveDate, answered_by: Option<&str>) -> Check {
    let fix = versions::upgrade_fix();
    let replaced = answered_by
        .filter(|answered| {
            versions::find(answered).map(|r| r.version)
                != versions::find(version).map(|r| r.version)
        })
        .filter(|answered| *answered != version);
    let meta_says = replaced
        .map(|answered| format!("; Meta answered it as {answered}"))
        .unwrap_or_default();
    match versions::assess(version, today) {
        VersionState::Ended { ended } => Check::fail(
            VERSION,
            format!(
                "{version} ended on {ended}{meta_says}: Meta answers calls to a retired version as \
                 the oldest one still available, whose behaviour may differ"
            ),
            fix,
        ),
        _ if replaced.is_some() => Check::fail(
            VERSION,
            format!(
                "Meta answered {version} as {}: it no longer serves {version}",
                replaced.unwrap_or_default()
            ),
            fix,
        ),
        VersionState::EndingSoon { ends, days_left } => Check::new(
            VERSION,
            Outcome::Info(format!(
                "{version} ends on {ends}, in {days_left} days; {fix}"
            )),
        ),
        VersionState::Current { ends: Some(ends) } => {
            Check::pass(VERSION, format!("{version}, available until {ends}"))
        }
        VersionState::Current { ends: None } => Check::pass(
            VERSION,
            format!("{version}; Meta has not announced its end yet"),
        ),
        VersionState::Unknown => Check::new(
            VERSION,
            Outcome::Info(format!(
                "{version} is not among the Graph versions this sfwa knows (the newest it knows is \
                 {}); fine if Meta released it since, else {fix}",
                versions::newest_known()
            )),
        ),
    }
}

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

/// `POST /{version}/{waba_id}/subscribed_apps`, as a command with the token left out.
fn subscribe_app_fix(settings: &Settings) -> String {
    let wa = &settings.whatsapp;
    format!(
        "subscribe the app to the account: curl -X POST '{}/{}/{}/subscribed_apps' -H \
         \"Authorization: Bearer $WHATSAPP_ACCESS_TOKEN\" (the system-user token of \
         whatsapp.access_token); connecting the account to the app in the App Dashboard \
         (WhatsApp → API Setup) does the same",
        wa.api_base.trim_end_matches('/'),
        wa.api_version,
        wa.business_account_id
    )
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

/// The fix for Meta refusing a read, by code.
fn refused(name: &str, error: SendError, token_fix: &str, id_fix: &str) -> Check {
    match error {
        SendError::Meta(error) => {
            let fix = match error.code {
                0 | 15 | 190 => token_fix,
                100 | 803 => id_fix,
                10 | 200..=299 | 3 => {
                    "give the system user whatsapp_business_management on this WhatsApp account \
                     (Business Settings → System users → Assign assets)"
                }
                _ => "see Meta's message; check the account's state in WhatsApp Manager",
            };
            Check::fail(
                name,
                format!("WhatsApp refused ({}): {}", error.code, error.message),
                fix,
            )
        }
        error => Check::fail(
            name,
            error.to_string(),
            "check whatsapp.api_base and that this host can reach it (proxy, firewall)",
        ),
    }
}

/// Meta sends the account's webhooks only to subscribed apps: ours must be one of them.
pub(super) async fn check_subscribed_apps(client: &WhatsAppClient, settings: &Settings) -> Check {
    let wa = &settings.whatsapp;
    if wa.business_account_id.is_empty() {
        return Check::skipped(
            SUBSCRIBED_APPS,
            "set whatsapp.business_account_id (the WhatsApp Business Account ID, WhatsApp \
             Manager → API setup) to check that Meta sends this account's webhooks to the app",
        );
    }
    let waba = &wa.business_account_id;
    match client.subscribed_apps(waba).await {
        Ok(apps) => {
            let names: Vec<String> = apps
                .iter()
                .map(|app| {
                    let data = &app.whatsapp_business_api_data;
                    match &data.name {
                        Some(name) => format!("{name} ({})", data.id),
                        None => data.id.clone(),
                    }
                })
                .collect();
            let ours = apps
                .iter()
                .any(|app| app.whatsapp_business_api_data.id == wa.app_id);
            match (ours, wa.app_id.is_empty(), names.is_empty()) {
                (true, _, _) => Check::pass(
                    SUBSCRIBED_APPS,
                    format!("account {waba} sends its webhooks to {}", names.join(", ")),
                ),
                (false, _, true) => Check::fail(
                    SUBSCRIBED_APPS,
                    format!(
                        "no app is subscribed to WhatsApp Business Account {waba}: Meta sends \
                         none of its webhooks (statuses, customer messages)"
                    ),
                    subscribe_app_fix(settings),
                ),
                (false, true, false) => Check::new(
                    SUBSCRIBED_APPS,
                    Outcome::Info(format!(
                        "account {waba} sends its webhooks to {}; set whatsapp.app_id to check \
                         that sfwa's app is one of them",
                        names.join(", ")
                    )),
                ),
                (false, false, false) => Check::fail(
                    SUBSCRIBED_APPS,
                    format!(
                        "app {} is not subscribed to WhatsApp Business Account {waba} (only {} \
                         is): Meta sends it none of the account's webhooks",
                        wa.app_id,
                        names.join(", ")
                    ),
                    subscribe_app_fix(settings),
                ),
            }
        }
        Err(error) => refused(
            SUBSCRIBED_APPS,
            error,
            "create a new system-user access token with whatsapp_business_management and set \
             whatsapp.access_token",
            "copy the WhatsApp Business Account ID from WhatsApp Manager → API setup into \
             whatsapp.business_account_id, and assign the account to the token's system user",
        ),
    }
}

/// The app's webhook: its callback URL, and a line for each field sfwa needs that is missing.
pub(super) async fn check_webhook_fields(
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

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

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
    fn only_the_messages_field_is_handled_by_the_webhook_parser_today() {
        let handled: Vec<&str> = WEBHOOK_FIELDS
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| handled_by_webhook(f))
            .collect();
        assert_eq!(handled, vec!["messages"]);
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

    #[test]
    fn a_version_past_its_end_fails_and_one_near_it_is_pointed_out_with_the_fix() {
        let ended = version_check("v20.0", date(2026, 12, 1), Some("v21.0"));
        let Outcome::Fail { problem, fix } = &ended.outcome else {
            panic!("{ended:?}");
        };
        assert!(
            problem.contains("ended on 2026-09-24; Meta answered it as v21.0"),
            "{problem}"
        );
        assert!(fix.contains("whatsapp.api_version = \"v26.0\""), "{fix}");
        let soon = version_check("v21.0", date(2026, 12, 1), Some("v21.0"));
        assert!(
            matches!(&soon.outcome, Outcome::Info(text) if text.contains("ends on 2027-01-21, in 51 days")),
            "{soon:?}"
        );
        let fine = version_check("v25.0", date(2026, 12, 1), Some("v25.0"));
        assert_eq!(
            fine.outcome,
            Outcome::Pass("v25.0, available until 2028-07-29".into())
        );
    }

    #[test]
    fn meta_answering_as_another_version_fails_even_when_the_table_thinks_it_current() {
        let check = version_check("v23.0", date(2026, 12, 1), Some("v24.0"));
        assert!(
            matches!(&check.outcome, Outcome::Fail { problem, .. } if problem.contains("Meta answered v23.0 as v24.0")),
            "{check:?}"
        );
    }
}
