//! "WhatsApp subscribed apps": Meta sends the account's webhooks only to subscribed apps.

use crate::config::Settings;
use crate::doctor::clients::refused;
use crate::doctor::report::{Check, Outcome};
use crate::whatsapp::WhatsAppClient;

pub(in crate::doctor) const SUBSCRIBED_APPS: &str = "WhatsApp subscribed apps";

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

/// Meta sends the account's webhooks only to subscribed apps: ours must be one of them.
pub(in crate::doctor) async fn check_subscribed_apps(
    client: &WhatsAppClient,
    settings: &Settings,
) -> Check {
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
