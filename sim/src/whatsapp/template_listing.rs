//! `GET /{version}/{waba_id}/message_templates`: the template registry ([`super::templates`]) as
//! Meta lists it, paged. Its own file, routed from `sim.rs`, so the registry (which the state and
//! the send check use) does not import the Graph API's handlers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use super::graph_error::GraphError;
use super::state::SimState;
use super::templates::{TemplateButton, TemplateDefinition, TemplateHeader};

pub fn routes() -> Router<Arc<SimState>> {
    Router::new().route(
        "/{version}/{waba_id}/message_templates",
        get(list_message_templates),
    )
}

/// How many templates a listing page holds when the request names no `limit` (Meta's default).
const DEFAULT_PAGE_SIZE: usize = 25;

/// `GET /{version}/{waba_id}/message_templates?fields=…&name=…&limit=…&after=…`: the registry as
/// Meta lists it, `{"data":[{"name","language","status","category","id","parameter_format",
/// "quality_score","components"}],"paging":{"cursors":{"before","after"},"next"}}`, `next` only
/// when another page follows; `name` keeps the templates whose name contains it. The cursor is opaque to clients
/// (here: the position of the page's end). System-user token; an unknown account is Meta's 100.
async fn list_message_templates(
    State(state): State<Arc<SimState>>,
    Path((version, waba_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(error) =
        super::graph_auth::check_version_and_token(&state, &version, &headers, &query)
    {
        return error.into_response();
    }
    if waba_id != state.config.waba_id {
        return GraphError::unknown_object("get", &waba_id).into_response();
    }
    let size = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let start = query
        .get("after")
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0);
    // Meta's `name` filter narrows the listing to the templates whose name contains it.
    let templates: Vec<TemplateDefinition> = state
        .lock()
        .templates
        .iter()
        .filter(|t| {
            query
                .get("name")
                .is_none_or(|name| t.name.contains(name.as_str()))
        })
        .cloned()
        .collect();
    let end = (start + size).min(templates.len());
    let data: Vec<Value> = templates
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(listed)
        .collect();
    let mut paging =
        serde_json::json!({"cursors": {"before": start.to_string(), "after": end.to_string()}});
    if end < templates.len() {
        paging["next"] = Value::String(format!(
            "/{version}/{waba_id}/message_templates?limit={size}&after={end}"
        ));
    }
    axum::Json(serde_json::json!({"data": data, "paging": paging})).into_response()
}

/// A template as the listing shows it, with its components written as Meta writes them
/// (`{{1}}` or `{{first_name}}` placeholders in the texts).
fn listed(t: &TemplateDefinition) -> Value {
    let placeholders = |names: Vec<String>| -> String {
        names
            .iter()
            .map(|n| format!("{{{{{n}}}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut components = Vec::new();
    match &t.header {
        None => {}
        Some(TemplateHeader::Text { params }) => components.push(serde_json::json!({
            "type": "HEADER", "format": "TEXT",
            "text": format!("Header {}", placeholders((1..=*params).map(|i| i.to_string()).collect())),
        })),
        Some(media) => {
            let format = match media {
                TemplateHeader::Image => "IMAGE",
                TemplateHeader::Video => "VIDEO",
                _ => "DOCUMENT",
            };
            components.push(serde_json::json!({"type": "HEADER", "format": format}));
        }
    }
    components.push(serde_json::json!({
        "type": "BODY", "text": format!("Message {}", placeholders(t.body_placeholders())),
    }));
    if !t.buttons.is_empty() {
        let buttons: Vec<Value> = t
            .buttons
            .iter()
            .map(|b| match b {
                TemplateButton::Url { params } => serde_json::json!({
                    "type": "URL", "text": "Open",
                    "url": format!("https://example.test/{}", if *params > 0 { "{{1}}" } else { "" }),
                }),
                TemplateButton::QuickReply => serde_json::json!({"type": "QUICK_REPLY", "text": "OK"}),
            })
            .collect();
        components.push(serde_json::json!({"type": "BUTTONS", "buttons": buttons}));
    }
    serde_json::json!({
        "name": t.name, "language": t.language, "status": t.status,
        "category": t.category.to_ascii_uppercase(), "id": template_id(t),
        "parameter_format": if t.body_param_names.is_empty() { "POSITIONAL" } else { "NAMED" },
        "quality_score": {"score": t.quality},
        "components": components,
    })
}

/// A stable id per name and language (Meta's ids are numbers).
pub fn template_id(t: &TemplateDefinition) -> String {
    let digest = t
        .name
        .bytes()
        .chain(t.language.bytes())
        .fold(1_469_598_103_934_665_603u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
        });
    (digest % 9_000_000_000_000 + 1_000_000_000_000).to_string()
}
