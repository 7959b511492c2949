//! The clients every check that calls Salesforce or Meta uses (their own user agent), and what
//! Meta refusing a read means for the fix.

use crate::config::Settings;
use crate::doctor::report::Check;
use crate::whatsapp::{SendError, WhatsAppClient, WhatsAppConfig};

pub(in crate::doctor) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("sfwa-doctor/", env!("CARGO_PKG_VERSION")))
        .http1_only()
        .build()
        .unwrap_or_default()
}

pub(in crate::doctor) fn whatsapp_client(settings: &Settings) -> WhatsAppClient {
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

/// The fix for Meta refusing a read, by code.
pub(in crate::doctor) fn refused(
    name: &str,
    error: SendError,
    token_fix: &str,
    id_fix: &str,
) -> Check {
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
