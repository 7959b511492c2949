//! Where Meta sends webhooks, as the Graph API reports it: the apps subscribed to the WhatsApp
//! Business Account (`GET /{waba_id}/subscribed_apps`, system-user token) and the app's webhook
//! subscription — callback URL and fields (`GET /{app_id}/subscriptions`, app token). Read by
//! `sfwa doctor`; sfwa never changes them.
//!
//! Both must be right for a single webhook to arrive: Meta delivers a WABA's events only to apps
//! subscribed to it, and only for the fields the app subscribed to.

use std::fmt;

use serde::Deserialize;

/// The webhook fields sfwa needs or will need, each with the feature that needs it (for the doctor's
/// "needed once … lands" line). Whether a field is needed *now* is not kept here: the doctor asks
/// `webhook::parse` which fields it handles.
pub const WEBHOOK_FIELDS: &[(&str, &str)] = &[
    ("messages", "statuses and customer messages"),
    (
        "message_template_status_update",
        "template approval, pause and disable tracking",
    ),
    ("template_category_update", "template category changes"),
    (
        "message_template_quality_update",
        "template quality tracking",
    ),
    ("user_preferences", "marketing opt-out (stop / resume)"),
    (
        "standby",
        "customer messages answered by Meta's Business Agent",
    ),
];

/// The object an app subscribes to for WhatsApp webhooks.
pub const WABA_OBJECT: &str = "whatsapp_business_account";

/// An app access token: `{app_id}|{app_secret}`, which Meta accepts in place of one fetched from
/// `/oauth/access_token`. Secret: `Debug` prints only the app id.
#[derive(Clone)]
pub struct AppToken(String);

impl AppToken {
    pub fn new(app_id: &str, app_secret: &str) -> AppToken {
        AppToken(format!("{app_id}|{app_secret}"))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let app_id = self.0.split('|').next().unwrap_or_default();
        write!(f, "AppToken({app_id}|***)")
    }
}

/// One app subscribed to the WhatsApp Business Account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SubscribedApp {
    pub whatsapp_business_api_data: AppData,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AppData {
    pub id: String,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// One object an app receives webhooks for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AppSubscription {
    pub object: String,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub fields: Vec<SubscribedField>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SubscribedField {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

impl AppSubscription {
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }
}

/// Graph's `{"data": [...]}` list.
#[derive(Deserialize)]
pub(crate) struct DataList<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_token_is_id_bar_secret_and_debug_hides_the_secret() {
        let token = AppToken::new("1234", "s3cret");
        assert_eq!(token.expose(), "1234|s3cret");
        assert_eq!(format!("{token:?}"), "AppToken(1234|***)");
    }

    #[test]
    fn metas_documented_shapes_are_read() {
        let apps: DataList<SubscribedApp> = serde_json::from_str(
            r#"{"data":[{"whatsapp_business_api_data":{"id":"67084","link":"https://www.facebook.com/games/?app_id=67084","name":"sfwa"}}]}"#,
        )
        .expect("subscribed_apps");
        assert_eq!(apps.data[0].whatsapp_business_api_data.id, "67084");
        let subscriptions: DataList<AppSubscription> = serde_json::from_str(
            r#"{"data":[{"object":"whatsapp_business_account","callback_url":"https://x.test/webhook","active":true,
                "fields":[{"name":"messages","version":"v25.0"}]}]}"#,
        )
        .expect("subscriptions");
        assert!(subscriptions.data[0].has_field("messages"));
        assert!(!subscriptions.data[0].has_field("standby"));
    }
}
