//! One template of the account's catalog, as sfwa keeps it: what a send of it must carry.
//!
//! Read from Meta's listing (`whatsapp::templates`, the edge), kept in the store
//! (`store::templates`, as JSON), changed by lifecycle webhooks (`webhook::template_updates`),
//! and judged against a record by `pipeline::catalog::judge`.

use serde::{Deserialize, Serialize};

/// Meta's words for a template's review status; sends go only when it is [`APPROVED`].
pub const APPROVED: &str = "APPROVED";
pub const PAUSED: &str = "PAUSED";

/// How the body's placeholders are written: `{{1}}` or `{{first_name}}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterFormat {
    #[default]
    Positional,
    Named,
}

/// The template's header: none, text (with its placeholder count) or a media kind each send
/// supplies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "format")]
pub enum HeaderSpec {
    #[default]
    None,
    Text {
        params: usize,
    },
    Image,
    Video,
    Document,
    /// A header sfwa cannot fill (location, …): not checked.
    Other {
        name: String,
    },
}

impl HeaderSpec {
    /// Meta's `format` word (`TEXT`, `IMAGE`, …), blank for none.
    pub fn as_meta(&self) -> String {
        match self {
            HeaderSpec::None => String::new(),
            HeaderSpec::Text { .. } => "TEXT".into(),
            HeaderSpec::Image => "IMAGE".into(),
            HeaderSpec::Video => "VIDEO".into(),
            HeaderSpec::Document => "DOCUMENT".into(),
            HeaderSpec::Other { name } => name.clone(),
        }
    }
}

/// A button: a URL with a dynamic suffix takes one parameter, the others none sfwa checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ButtonSpec {
    Url { params: usize },
    QuickReply,
    Other,
}

/// One template in one language.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogTemplate {
    /// Meta's template id (the webhooks name it too).
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub language: String,
    /// `APPROVED`, `PAUSED`, `DISABLED`, `PENDING`, `REJECTED`, … (upper case).
    pub status: String,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION` (upper case).
    pub category: String,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    #[serde(default)]
    pub quality: String,
    #[serde(default)]
    pub parameter_format: ParameterFormat,
    #[serde(default)]
    pub body_text: String,
    /// The body's placeholders in order of first appearance: `1`, `2`… or `first_name`, ….
    #[serde(default)]
    pub body_params: Vec<String>,
    #[serde(default)]
    pub header: HeaderSpec,
    #[serde(default)]
    pub buttons: Vec<ButtonSpec>,
}

impl CatalogTemplate {
    pub fn is_approved(&self) -> bool {
        self.status == APPROVED
    }
}

/// What one lifecycle webhook says of a template: its new status, category or quality.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateUpdate {
    pub name: String,
    pub language: String,
    pub status: Option<String>,
    pub category: Option<String>,
    pub quality: Option<String>,
}

/// The placeholders of a template text (`{{1}}`, `{{ first_name }}`), distinct, in order.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_string();
        if !name.is_empty() && !found.contains(&name) {
            found.push(name);
        }
        rest = &after[end + 2..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_read_in_order_once_each() {
        assert_eq!(
            placeholders("Hi {{1}}, order {{2}} ({{1}})"),
            vec!["1".to_string(), "2".to_string()]
        );
        assert_eq!(
            placeholders("Hello {{ first_name }} {{order_id}}"),
            vec!["first_name".to_string(), "order_id".to_string()]
        );
        assert!(placeholders("no placeholders {{").is_empty());
    }
}
