//! The webhook subscription as Meta reports it, and the control endpoint that breaks it.
//!
//! - `GET /{version}/{waba_id}/subscribed_apps` (system-user token): the app, if it is subscribed
//!   to the account, as `{"data":[{"whatsapp_business_api_data":{"id","link","name"}}]}`;
//!   `POST` subscribes it (`{"success":true}`).
//! - `GET /{version}/{app_id}/subscriptions` (app token `{app_id}|{app_secret}`): the app's
//!   `whatsapp_business_account` subscription — callback URL (the simulator's webhook URL), `active`
//!   and fields with the version each was subscribed at; `[]` when it has no field or no URL.
//!   A system-user token there is Meta's 15 ("must be called with an app access_token"), a wrong
//!   secret 190. `POST` adds fields and sets the callback URL after verifying it (2200 when the
//!   handshake fails), as the doctor's fix says.
//! - `GET /__sim/subscriptions` shows it; `PUT /__sim/subscriptions {"app_subscribed": false,
//!   "fields": ["messages"]}` changes either part (fields replace the list).
//!
//! What the simulator answers comes from its own state, never from the client's list of fields.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::graph_auth::{check_version_and_token, presented_token};
use super::graph_error::GraphError;
use super::state::SimState;
use super::versions::answering_version;

type Params = Path<(String, String)>;

/// Checks the system-user token and that `waba_id` is the simulated account.
fn check_waba(
    state: &SimState,
    version: &str,
    waba_id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    method: &str,
) -> Result<(), GraphError> {
    check_version_and_token(state, version, headers, query)?;
    if waba_id != state.config.waba_id {
        return Err(GraphError::unknown_object(method, waba_id));
    }
    Ok(())
}

pub async fn subscribed_apps(
    State(state): State<Arc<SimState>>,
    Path((version, waba_id)): Params,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(error) = check_waba(&state, &version, &waba_id, &headers, &query, "get") {
        return error.into_response();
    }
    let config = &state.config;
    let data = if state.lock().subscription.app_subscribed {
        vec![json!({"whatsapp_business_api_data": {
            "id": config.app_id,
            "link": format!("https://www.facebook.com/games/?app_id={}", config.app_id),
            "name": config.app_name,
        }})]
    } else {
        Vec::new()
    };
    Json(json!({ "data": data })).into_response()
}

pub async fn subscribe_app(
    State(state): State<Arc<SimState>>,
    Path((version, waba_id)): Params,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(error) = check_waba(&state, &version, &waba_id, &headers, &query, "post") {
        return error.into_response();
    }
    state.lock().subscription.app_subscribed = true;
    Json(json!({"success": true})).into_response()
}

pub async fn app_subscriptions(
    State(state): State<Arc<SimState>>,
    Path((version, app_id)): Params,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(error) = check_app(&state, &version, &app_id, &headers, &query) {
        return error.into_response();
    }
    let inner = state.lock();
    let data = match &inner.webhook_url {
        Some(url) if !inner.subscription.fields.is_empty() => vec![json!({
            "object": "whatsapp_business_account",
            "callback_url": url,
            "active": true,
            "fields": inner.subscription.fields.iter()
                .map(|(name, version)| json!({"name": name, "version": version}))
                .collect::<Vec<Value>>(),
        })],
        _ => Vec::new(),
    };
    Json(json!({ "data": data })).into_response()
}

/// `POST /{version}/{app_id}/subscriptions` (form or query parameters `object`, `callback_url`,
/// `fields`, `verify_token`, `access_token` = the app token): Meta first verifies the callback —
/// `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` must answer 200 with the challenge,
/// else 2200 — then adds the fields (at this version) and makes the URL the webhook's.
pub async fn subscribe_fields(
    State(state): State<Arc<SimState>>,
    Path((version, app_id)): Params,
    headers: HeaderMap,
    Query(mut params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    params.extend(url::form_urlencoded::parse(&body).into_owned());
    if let Err(error) = check_app(&state, &version, &app_id, &headers, &params) {
        return error.into_response();
    }
    let param = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    if param("object") != Some("whatsapp_business_account") {
        return GraphError::invalid_parameter("object must be whatsapp_business_account")
            .into_response();
    }
    let (Some(callback), Some(fields), Some(verify_token)) = (
        param("callback_url"),
        param("fields"),
        param("verify_token"),
    ) else {
        return GraphError::invalid_parameter("callback_url, fields and verify_token are required")
            .into_response();
    };
    if let Err(reason) = verify_callback(&state, callback, verify_token).await {
        return GraphError::callback_verification_failed(&reason).into_response();
    }
    let mut inner = state.lock();
    inner.webhook_url = Some(callback.to_owned());
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        inner
            .subscription
            .fields
            .insert(field.to_owned(), version.clone());
    }
    Json(json!({"success": true})).into_response()
}

/// Meta's handshake against a callback URL before it accepts it.
pub(super) async fn verify_callback(
    state: &SimState,
    url: &str,
    verify_token: &str,
) -> Result<(), String> {
    let challenge =
        rand::Rng::gen_range(&mut rand::thread_rng(), 1_000_000_000u64..2_000_000_000).to_string();
    let response = state
        .http
        .get(url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", verify_token),
            ("hub.challenge", challenge.as_str()),
        ])
        .send()
        .await
        .map_err(|error| format!("Couldn't connect to server ({})", error.without_url()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "HTTP Status Code = {}; HTTP Message = {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        ));
    }
    if body.trim() != challenge {
        return Err(format!(
            "The URL couldn't be validated. Response does not match challenge, expected value = \
             '{challenge}', received = '{}'",
            body.chars().take(100).collect::<String>()
        ));
    }
    Ok(())
}

/// The app-token checks of `/{app_id}/subscriptions`.
fn check_app(
    state: &SimState,
    version: &str,
    app_id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), GraphError> {
    answering_version(version, state.clock.now())?;
    let config = &state.config;
    let Some(token) = presented_token(headers, query) else {
        return Err(GraphError::invalid_token());
    };
    let equal = |a: &str, b: &str| -> bool {
        subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
    };
    if equal(token, &config.access_token) {
        return Err(GraphError::app_token_required());
    }
    let Some((token_app, secret)) = token.split_once('|') else {
        return Err(GraphError::invalid_token());
    };
    if token_app != config.app_id {
        // Another app's token: this app is not an object it may read.
        return Err(GraphError::unknown_object("get", app_id));
    }
    if !equal(secret, &config.app_secret) {
        return Err(GraphError::invalid_token_signature());
    }
    if app_id != config.app_id {
        return Err(GraphError::unknown_object("get", app_id));
    }
    Ok(())
}

pub fn control_routes() -> Router<Arc<SimState>> {
    Router::new().route(
        "/__sim/subscriptions",
        get(show_subscription).put(change_subscription),
    )
}

fn view(state: &SimState) -> Value {
    let inner = state.lock();
    json!({
        "app_id": state.config.app_id,
        "waba_id": state.config.waba_id,
        "app_subscribed": inner.subscription.app_subscribed,
        "callback_url": inner.webhook_url,
        "fields": inner.subscription.fields.keys().collect::<Vec<_>>(),
    })
}

async fn show_subscription(State(state): State<Arc<SimState>>) -> Response {
    Json(view(&state)).into_response()
}

async fn change_subscription(
    State(state): State<Arc<SimState>>,
    body: axum::body::Bytes,
) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Change {
        app_subscribed: Option<bool>,
        fields: Option<Vec<String>>,
    }
    let change: Change = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("invalid JSON body: {error}")})),
            )
                .into_response()
        }
    };
    {
        let mut inner = state.lock();
        if let Some(subscribed) = change.app_subscribed {
            inner.subscription.app_subscribed = subscribed;
        }
        if let Some(fields) = change.fields {
            let previous = std::mem::take(&mut inner.subscription.fields);
            inner.subscription.fields = fields
                .into_iter()
                .map(|name| {
                    let version = previous
                        .get(&name)
                        .cloned()
                        .unwrap_or_else(|| "v23.0".to_owned());
                    (name, version)
                })
                .collect();
        }
    }
    Json(view(&state)).into_response()
}
