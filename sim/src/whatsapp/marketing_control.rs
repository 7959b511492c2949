//! The control API of the simulated marketing rules (`marketing`):
//! - `POST /__sim/customers/marketing` `{"customer","phone_number_id"?,"value":"stop"|"resume"}`:
//!   the customer stops or resumes marketing from that number; the `user_preferences` webhook goes
//!   out at once, as Meta sends it.
//! - `POST /__sim/customers/marketing_cap` `{"customer","hours"?}`: the customer reached Meta's
//!   marketing cap for `hours` (default 24) of simulator time.
//! - `POST /__sim/marketing/us_rule` `{"blocked":bool}`: whether marketing to +1 numbers is
//!   undelivered (default true, as Meta does since 2025-04-01).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::state::SimState;
use super::webhook_payloads::metadata;
use super::webhooks::WebhookEvent;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/__sim/customers/marketing", post(stop_or_resume))
        .route("/__sim/customers/marketing_cap", post(cap))
        .route("/__sim/marketing/us_rule", post(us_rule))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|error| format!("invalid JSON body: {error}"))
}

/// The customer's number (a phone, or the BSUID of a known customer).
fn customer_of(state: &SimState, key: &str) -> Result<String, String> {
    super::customer_messages::resolve_customer(&mut state.lock(), key)
}

async fn stop_or_resume(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct Request {
        customer: String,
        phone_number_id: Option<String>,
        value: String,
    }
    let request: Request = match read(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(error),
    };
    let stop = match request.value.as_str() {
        "stop" => true,
        "resume" => false,
        other => return bad_request(format!("value must be stop or resume, not {other}")),
    };
    let phone_number_id = request
        .phone_number_id
        .unwrap_or_else(|| state.config.phone_number_id.clone());
    if state.numbers.display_of(&phone_number_id).is_none() {
        return bad_request(format!("unknown phone_number_id {phone_number_id}"));
    }
    let wa_id = match customer_of(&state, &request.customer) {
        Ok(wa_id) => wa_id,
        Err(error) => return bad_request(error),
    };
    let now = state.clock.now();
    state
        .lock()
        .marketing
        .set_stopped(&phone_number_id, &wa_id, stop);
    let detail = if stop {
        "User requested to stop marketing messages"
    } else {
        "User requested to resume marketing messages"
    };
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(&state.numbers, &phone_number_id),
        "user_preferences": [{
            "wa_id": wa_id,
            "detail": detail,
            "category": "marketing_messages",
            "value": request.value,
            "timestamp": now.timestamp(),
        }],
    });
    state.outbox.schedule(
        Duration::ZERO,
        WebhookEvent::Inbound {
            field: "user_preferences",
            value,
        },
    );
    Json(json!({"wa_id": wa_id, "phone_number_id": phone_number_id, "value": request.value}))
        .into_response()
}

async fn cap(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct Request {
        customer: String,
        #[serde(default = "a_day")]
        hours: i64,
    }
    fn a_day() -> i64 {
        24
    }
    let request: Request = match read(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(error),
    };
    let wa_id = match customer_of(&state, &request.customer) {
        Ok(wa_id) => wa_id,
        Err(error) => return bad_request(error),
    };
    let until = state.clock.now() + chrono::Duration::hours(request.hours);
    state.lock().marketing.cap_until(&wa_id, until);
    Json(json!({"wa_id": wa_id, "capped_until": until.to_rfc3339()})).into_response()
}

async fn us_rule(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct Request {
        blocked: bool,
    }
    let request: Request = match read(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(error),
    };
    state.lock().marketing.us_blocked = request.blocked;
    Json(json!({"blocked": request.blocked})).into_response()
}
