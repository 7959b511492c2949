//! The categories of the account's message templates, learned from
//! `GET /{version}/{waba_id}/message_templates?fields=name,language,category` (paged with
//! `paging.cursors.after`) and cached ([`TemplateCategories`]).
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
