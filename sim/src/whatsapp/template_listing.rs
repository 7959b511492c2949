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

pub fn routes() -> Router<Arc<SimState>> {
    Router::new().route(
        "/{version}/{waba_id}/message_templates",
        get(list_message_templates),
    )
}

/// How many templates a listing page holds when the request names no `limit` (Meta's default).
const DEFAULT_PAGE_SIZE: usize = 25;

/// `GET /{version}/{waba_id}/message_templates?fields=…&limit=…&after=…`: the registry as Meta
/// lists it, `{"data":[{"name","language","status","category","id"}],"paging":{"cursors":{"before",
/// "after"},"next"}}`, `next` only when another page follows. The cursor is opaque to clients
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
    let templates = state.lock().templates.clone();
    let end = (start + size).min(templates.len());
    let data: Vec<Value> = templates
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({
                "name": t.name, "language": t.language, "status": t.status,
                "category": t.category.to_ascii_uppercase(), "id": format!("{}", 9_000_000 + start + i),
            })
        })
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
