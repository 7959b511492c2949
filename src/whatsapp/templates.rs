//! The account's message templates as Meta lists them: the whole catalog
//! ([`WhatsAppClient::catalog`], `GET /{version}/{waba_id}/message_templates?fields=name,language,
//! status,category,components,parameter_format,quality_score`, paged with `paging.cursors.after`;
//! `name=` for one template) read into [`CatalogTemplate`]s for `pipeline::catalog`; and the
//! categories alone, cached ([`TemplateCategories`]).
//!
//! Why: Meta refuses an authentication template to a customer known only by their business-scoped
//! user id (131062). Knowing the category lets the send path refuse it before sending, with a code
//! and sentence a rep can act on, or send it to the phone when the store knows one
//! (`pipeline::identity`). A failed listing never blocks sending: the category is then unknown, the
//! message goes, and Meta's 131062 decides (it reads the same on the record, `whatsapp::error`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::client::{SendError, WhatsAppClient};
use crate::domain::template_catalog::{
    placeholders, ButtonSpec, CatalogTemplate, HeaderSpec, ParameterFormat,
};

/// The fields of a catalog listing.
const CATALOG_FIELDS: &str =
    "id,name,language,status,category,components,parameter_format,quality_score";

/// How long a listing is trusted: templates are approved or re-categorised rarely, and a stale
/// answer costs at most a 131062 from Meta.
pub const CACHE_FOR: Duration = Duration::hours(1);
/// After a failed listing, how long sends go without asking again (no listing per send while
/// Meta is unreachable or the token lacks the permission).
pub const RETRY_FAILED_AFTER: Duration = Duration::minutes(5);
/// At most this many pages are read (Meta's pages hold 25 templates by default).
const MAX_PAGES: usize = 100;

/// A template's category, as Meta names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Category {
    Authentication,
    Marketing,
    Utility,
    Other(String),
}

impl Category {
    fn from_meta(text: &str) -> Category {
        match text.to_ascii_uppercase().as_str() {
            "AUTHENTICATION" => Category::Authentication,
            "MARKETING" => Category::Marketing,
            "UTILITY" => Category::Utility,
            _ => Category::Other(text.to_string()),
        }
    }
}

/// One template of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    pub name: String,
    pub language: String,
    pub category: Category,
}

#[derive(Deserialize)]
struct WireTemplate {
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    category: String,
}

impl WhatsAppClient {
    /// Every template of WhatsApp Business Account `waba_id`, with its language and category.
    #[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
    pub async fn message_templates(&self, waba_id: &str) -> Result<Vec<TemplateInfo>, SendError> {
        let path = format!("{waba_id}/message_templates");
        let templates: Vec<WireTemplate> = self
            .list_all(&path, "name,language,category", MAX_PAGES)
            .await?;
        Ok(templates
            .into_iter()
            .map(|t| TemplateInfo {
                category: Category::from_meta(&t.category),
                name: t.name,
                language: t.language,
            })
            .collect())
    }
}

/// A template as Meta lists it with [`CATALOG_FIELDS`].
#[derive(Deserialize)]
struct WireCatalogTemplate {
    #[serde(default)]
    id: String,
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    parameter_format: String,
    #[serde(default)]
    components: Vec<serde_json::Value>,
    #[serde(default)]
    quality_score: Option<WireQuality>,
}

#[derive(Deserialize)]
struct WireQuality {
    #[serde(default)]
    score: String,
}

impl WhatsAppClient {
    /// The account's templates with what a send of each must carry; with `name`, only the
    /// templates of that name (Meta's `name` filter matches loosely: the exact name is kept).
    #[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
    pub async fn catalog(
        &self,
        waba_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<CatalogTemplate>, SendError> {
        let path = format!("{waba_id}/message_templates");
        let filters: Vec<(&str, &str)> = name.map(|n| ("name", n)).into_iter().collect();
        let templates: Vec<WireCatalogTemplate> = self
            .list_filtered(&path, CATALOG_FIELDS, &filters, MAX_PAGES)
            .await?;
        Ok(templates
            .into_iter()
            .filter(|t| name.is_none_or(|n| n == t.name))
            .map(catalog_template)
            .collect())
    }
}

/// Meta's template, read: placeholders from the body's text, the header's format, the buttons.
fn catalog_template(wire: WireCatalogTemplate) -> CatalogTemplate {
    let mut template = CatalogTemplate {
        id: wire.id,
        name: wire.name,
        language: wire.language,
        status: wire.status.to_ascii_uppercase(),
        category: wire.category.to_ascii_uppercase(),
        quality: wire
            .quality_score
            .map_or_else(|| "UNKNOWN".to_string(), |q| q.score.to_ascii_uppercase()),
        parameter_format: if wire.parameter_format.eq_ignore_ascii_case("NAMED") {
            ParameterFormat::Named
        } else {
            ParameterFormat::Positional
        },
        ..CatalogTemplate::default()
    };
    for component in &wire.components {
        let text = |key: &str| component.get(key).and_then(|v| v.as_str()).unwrap_or("");
        match text("type").to_ascii_uppercase().as_str() {
            "HEADER" => template.header = header_spec(text("format"), text("text")),
            "BODY" => {
                template.body_text = text("text").to_string();
                template.body_params = placeholders(&template.body_text);
            }
            "BUTTONS" => template.buttons = buttons(component),
            _ => {}
        }
    }
    template
}

fn header_spec(format: &str, text: &str) -> HeaderSpec {
    match format.to_ascii_uppercase().as_str() {
        "TEXT" => HeaderSpec::Text {
            params: placeholders(text).len(),
        },
        "IMAGE" => HeaderSpec::Image,
        "VIDEO" => HeaderSpec::Video,
        "DOCUMENT" => HeaderSpec::Document,
        other => HeaderSpec::Other {
            name: other.to_string(),
        },
    }
}

fn buttons(component: &serde_json::Value) -> Vec<ButtonSpec> {
    let Some(buttons) = component.get("buttons").and_then(|b| b.as_array()) else {
        return Vec::new();
    };
    buttons
        .iter()
        .map(|button| {
            let kind = button.get("type").and_then(|t| t.as_str()).unwrap_or("");
            match kind.to_ascii_uppercase().as_str() {
                "URL" => ButtonSpec::Url {
                    params: placeholders(button.get("url").and_then(|u| u.as_str()).unwrap_or(""))
                        .len(),
                },
                "QUICK_REPLY" => ButtonSpec::QuickReply,
                _ => ButtonSpec::Other,
            }
        })
        .collect()
}

/// What the cache holds: the categories by (name, language), or when a listing last failed.
#[derive(Default)]
struct Cached {
    categories: HashMap<(String, String), Category>,
    fetched_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
}

/// The template categories of one account, listed at most once per [`CACHE_FOR`].
#[derive(Default)]
pub struct TemplateCategories {
    cached: Mutex<Cached>,
}

impl TemplateCategories {
    /// The category of template `name` in `language`, listing the account's templates when the
    /// cache is older than [`CACHE_FOR`]; `None` when unknown (not listed, or the listing failed:
    /// then the send goes and Meta decides). Callers wait for one listing at a time.
    pub async fn category(
        &self,
        client: &WhatsAppClient,
        waba_id: &str,
        name: &str,
        language: &str,
        now: DateTime<Utc>,
    ) -> Option<Category> {
        if waba_id.is_empty() {
            return None;
        }
        let mut cached = self.cached.lock().await;
        let fresh = cached.fetched_at.is_some_and(|at| now - at < CACHE_FOR);
        let failed_lately = cached
            .failed_at
            .is_some_and(|at| now - at < RETRY_FAILED_AFTER);
        if !fresh && !failed_lately {
            match client.message_templates(waba_id).await {
                Ok(templates) => {
                    cached.categories = templates
                        .into_iter()
                        .map(|t| ((t.name, t.language), t.category))
                        .collect();
                    cached.fetched_at = Some(now);
                    cached.failed_at = None;
                }
                Err(error) => {
                    tracing::warn!(%error, "listing the message templates failed; authentication templates are sent without checking the recipient, and WhatsApp decides");
                    cached.failed_at = Some(now);
                }
            }
        }
        cached
            .categories
            .get(&(name.to_string(), language.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_template_is_read_with_its_placeholders_header_and_buttons() {
        let wire: WireCatalogTemplate = serde_json::from_value(serde_json::json!({
            "id": "9", "name": "order_update", "language": "en_US", "status": "APPROVED",
            "category": "UTILITY", "parameter_format": "POSITIONAL",
            "quality_score": {"score": "GREEN"},
            "components": [
                {"type": "HEADER", "format": "IMAGE"},
                {"type": "BODY", "text": "Hi {{1}}, your order is on its way."},
                {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://x.test/{{1}}"}]}
            ]
        }))
        .unwrap();

        let template = catalog_template(wire);

        assert_eq!(template.header, HeaderSpec::Image);
        assert_eq!(template.body_params, vec!["1".to_string()]);
        assert_eq!(template.buttons, vec![ButtonSpec::Url { params: 1 }]);
        assert_eq!(template.quality, "GREEN");
    }

    #[test]
    fn metas_category_names_are_read_whatever_their_case() {
        assert_eq!(
            Category::from_meta("AUTHENTICATION"),
            Category::Authentication
        );
        assert_eq!(Category::from_meta("utility"), Category::Utility);
        assert_eq!(
            Category::from_meta("SOMETHING_NEW"),
            Category::Other("SOMETHING_NEW".into())
        );
    }
}
