//! "WhatsApp number …": each business number's details from the Cloud API (proves the token
//! and the id), with its throughput level against `whatsapp.throughput_per_second`.

use crate::config::Settings;
use crate::doctor::clients::whatsapp_client;
use crate::doctor::report::{Check, Outcome};
use crate::whatsapp::{PhoneNumberInfo, SendError};

/// Each business number's details from the Cloud API: proves the token and the id. Also returns
/// the Graph version Meta says answered (`facebook-api-version`), for the version check.
pub(in crate::doctor) async fn check_numbers(settings: &Settings) -> (Vec<Check>, Option<String>) {
    let client = whatsapp_client(settings);
    let mut checks = Vec::new();
    let mut answered_by = None;
    for id in settings.business_numbers() {
        let name = format!("WhatsApp number {id}");
        match client.phone_number(&id).await {
            Ok(info) => {
                if answered_by.is_none() {
                    answered_by = info.answered_by_version.clone();
                }
                let configured = settings.whatsapp.throughput_per_second;
                checks.extend(answered(name, &info, configured));
            }
            Err(error) => checks.push(refused(name, error)),
        }
    }
    (checks, answered_by)
}

/// A pass with the number's name, quality and level; and a line when `configured` is above the
/// rate of the number's throughput level.
fn answered(name: String, info: &PhoneNumberInfo, configured: u32) -> Vec<Check> {
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
    let mut checks = vec![Check::pass(name.clone(), detail)];
    if let Some(rate) = info
        .throughput_per_second()
        .filter(|rate| configured > *rate)
    {
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
    checks
}

/// The failure and its fix, by Meta's code.
fn refused(name: String, error: SendError) -> Check {
    let SendError::Meta(error) = error else {
        return Check::fail(
            name,
            error.to_string(),
            "check whatsapp.api_base and that this host can reach it (proxy, firewall)",
        );
    };
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
