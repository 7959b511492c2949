//! Graph endpoints about the account's business numbers (`numbers`):
//! - `GET /{version}/{waba_id}/phone_numbers`: every number, in Meta's shape, paged with `limit`
//!   and `after` (opaque cursors, as Meta's are).
//! - `POST /{version}/{phone_number_id}` with `webhook_configuration`: the number's alternate
//!   callback URL. Meta verifies it first (a `GET` with `hub.challenge`, as for the app's own
//!   callback), then answers `{"success":true}`; from then on the number's `messages` (and
//!   `standby`) webhooks go there instead of the app's callback URL. An empty
//!   `override_callback_uri` removes it.
//! - `GET /{version}/{phone_number_id}?fields=webhook_configuration`: which callback applies,
//!   `{"webhook_configuration":{"phone_number":…,"application":…},"id":…}`.
//!
//! Shapes from Meta's "Webhook overrides" page
//! (developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/override/): the
//! override applies to `messages`, `standby` and other message fields only; template and
//! account-level fields always go to the app's callback URL.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::graph_auth::{check_access, check_version_and_token};
use super::graph_error::GraphError;
use super::numbers::{throughput_level, WebhookOverride};
use super::state::SimState;

/// Meta's limit on an alternate callback URL.
const MAX_CALLBACK_CHARS: usize = 200;

/// A number as `GET /{phone_number_id}` and the listing show it; `None` if not the account's.
pub fn number_json(state: &SimState, phone_number_id: &str) -> Option<Value> {
    let number = state.numbers.get(phone_number_id)?;
    let per_second = state.lock().limits.throughput_of(phone_number_id);
    Some(json!({
        "verified_name": number.verified_name,
        "code_verification_status": "VERIFIED",
        "display_phone_number": number.display_phone_number,
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": {"level": throughput_level(per_second)},
        "id": number.phone_number_id,
    }))
}

/// `GET /{phone_number_id}?fields=webhook_configuration`.
pub fn webhook_configuration(state: &SimState, phone_number_id: &str) -> Response {
    let mut configuration = serde_json::Map::new();
    if let Some(found) = state
        .numbers
        .get(phone_number_id)
        .and_then(|n| n.webhook_override)
    {
        configuration.insert("phone_number".into(), json!(found.uri));
    }
    if let Some(application) = state.lock().webhook_url.clone() {
        configuration.insert("application".into(), json!(application));
    }
    Json(json!({"webhook_configuration": configuration, "id": phone_number_id})).into_response()
}

#[derive(Debug, Deserialize)]
struct ConfigureNumber {
    webhook_configuration: Option<WebhookConfiguration>,
}

#[derive(Debug, Deserialize)]
struct WebhookConfiguration {
    #[serde(default)]
    override_callback_uri: String,
    #[serde(default)]
    verify_token: String,
}

/// `POST /{version}/{phone_number_id}` `{"webhook_configuration":{"override_callback_uri":…,
/// "verify_token":…}}`.
pub async fn configure_number(
    State(state): State<Arc<SimState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(error) = check_access(&state, &version, &phone_number_id, &headers, &query, "post") {
        return error.into_response();
    }
    let Ok(ConfigureNumber {
        webhook_configuration: Some(configuration),
    }) = serde_json::from_slice::<ConfigureNumber>(&body)
    else {
        return GraphError::invalid_parameter("webhook_configuration is required").into_response();
    };
    let uri = configuration.override_callback_uri.trim().to_owned();
    if uri.is_empty() {
        state
            .numbers
            .update(&phone_number_id, |n| n.webhook_override = None);
        return Json(json!({"success": true})).into_response();
    }
    if uri.chars().count() > MAX_CALLBACK_CHARS || url::Url::parse(&uri).is_err() {
        return GraphError::invalid_parameter(
            "override_callback_uri must be a URL of at most 200 characters",
        )
        .into_response();
    }
    let token = configuration.verify_token;
    if let Err(reason) = super::subscriptions::verify_callback(&state, &uri, &token).await {
        return GraphError::callback_verification_failed(&reason).into_response();
    }
    state.numbers.update(&phone_number_id, |n| {
        n.webhook_override = Some(WebhookOverride {
            uri,
            verify_token: token,
        })
    });
    Json(json!({"success": true})).into_response()
}

/// Meta's default page size for edges.
const DEFAULT_LIMIT: usize = 25;

fn cursor(phone_number_id: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(phone_number_id)
}

fn from_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// `GET /{version}/{waba_id}/phone_numbers?limit=&after=`.
pub async fn phone_numbers(
    State(state): State<Arc<SimState>>,
    Path((version, waba_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(error) = check_version_and_token(&state, &version, &headers, &query) {
        return error.into_response();
    }
    if waba_id != state.config.waba_id {
        return GraphError::unknown_object("get", &waba_id).into_response();
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .max(1);
    let ids: Vec<String> = state
        .numbers
        .all()
        .into_iter()
        .map(|n| n.phone_number_id)
        .collect();
    let start = match query.get("after") {
        Some(after) => match from_cursor(after).and_then(|id| ids.iter().position(|i| *i == id)) {
            Some(index) => index + 1,
            None => {
                return GraphError::invalid_parameter("after is not a cursor of this edge")
                    .into_response()
            }
        },
        None => 0,
    };
    let page: Vec<&String> = ids.iter().skip(start).take(limit).collect();
    let data: Vec<Value> = page
        .iter()
        .filter_map(|id| number_json(&state, id))
        .collect();
    let mut paging = json!({"cursors": {
        "before": page.first().map(|id| cursor(id)).unwrap_or_default(),
        "after": page.last().map(|id| cursor(id)).unwrap_or_default(),
    }});
    if start + page.len() < ids.len() {
        let after = page.last().map(|id| cursor(id)).unwrap_or_default();
        let after: String = url::form_urlencoded::byte_serialize(after.as_bytes()).collect();
        // Meta's `next` is absolute; the simulator does not know the address it is reached at,
        // so its `next` is the path and query to call on it.
        paging["next"] = json!(format!(
            "/{version}/{waba_id}/phone_numbers?limit={limit}&after={after}"
        ));
    }
    Json(json!({"data": data, "paging": paging})).into_response()
}
