//! The Graph API surface the daemon talks to: `POST /{version}/{phone_number_id}/messages` and
//! `GET /{version}/{phone_number_id}`.
//!
//! Checks run in Meta's order: token, object id, request shape, sender limits, then delivery
//! decisions (reachability, customer-service window) — the latter mostly answered with 200 and a
//! later `failed` webhook, because that is what Meta does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header::AUTHORIZATION, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Value};

use super::graph_error::GraphError;
use super::ids::{new_wamid, WamidDirection};
use super::rate_limit::Refusal;
use super::send_request::validate_send;
use super::state::{Inner, SentMessage, SimState};
use super::webhook_payloads::{pricing, StatusUpdate};
use super::webhooks::{count_outcome, schedule_delivery, schedule_failure};

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/{version}/{phone_number_id}/messages", post(send_message))
        .route("/{version}/{phone_number_id}", get(phone_number))
}

async fn send_message(
    State(state): State<Arc<SimState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    apply_latency(&state).await;
    match accept_send(&state, &version, &phone_number_id, &headers, &query, &body) {
        Ok(response) => response,
        Err(error) => {
            let mut inner = state.lock();
            Inner::count(&mut inner.stats.rejected_by_code, &error.code.to_string());
            count_outcome(&mut inner, "rejected");
            error.into_response()
        }
    }
}

async fn phone_number(
    State(state): State<Arc<SimState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    apply_latency(&state).await;
    if let Err(error) = check_access(&state, &version, &phone_number_id, &headers, &query, "get") {
        return error.into_response();
    }
    let config = &state.config;
    Json(json!({
        "verified_name": config.verified_name,
        "code_verification_status": "VERIFIED",
        "display_phone_number": config.display_phone_number,
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "messaging_limit_tier": "TIER_1K",
        "id": config.phone_number_id,
    }))
    .into_response()
}

async fn apply_latency(state: &SimState) {
    let latency = state.lock().faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
}

fn is_graph_version(version: &str) -> bool {
    let Some(number) = version.strip_prefix('v') else {
        return false;
    };
    let mut parts = number.splitn(2, '.');
    let major = parts.next().unwrap_or("");
    let minor = parts.next().unwrap_or("");
    !major.is_empty()
        && !minor.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().all(|b| b.is_ascii_digit())
}

/// Version, token and object checks shared by every Graph endpoint.
fn check_access(
    state: &SimState,
    version: &str,
    phone_number_id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    method: &str,
) -> Result<(), GraphError> {
    if !is_graph_version(version) {
        return Err(GraphError::unknown_path(&format!("/{version}/")));
    }
    // Graph accepts the token as a bearer header or as an `access_token` query parameter.
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| query.get("access_token").map(String::as_str));
    let valid = token.is_some_and(|token| {
        subtle::ConstantTimeEq::ct_eq(token.as_bytes(), state.config.access_token.as_bytes()).into()
    });
    if !valid {
        return Err(GraphError::invalid_token());
    }
    if state.lock().faults.token_expired {
        return Err(GraphError::expired_token(state.clock.now()));
    }
    if phone_number_id != state.config.phone_number_id {
        return Err(GraphError::unknown_object(method, phone_number_id));
    }
    Ok(())
}

fn accept_send(
    state: &SimState,
    version: &str,
    phone_number_id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<Response, GraphError> {
    check_access(state, version, phone_number_id, headers, query, "post")?;
    let config = &state.config;
    let now = state.clock.now();
    let mut inner = state.lock();

    let faults = &inner.faults;
    if faults.error_rate > 0.0 && rand::thread_rng().gen::<f64>() < faults.error_rate {
        return Err(if faults.error_status == 503 {
            GraphError::service_unavailable()
        } else {
            GraphError::something_went_wrong()
        });
    }
    let (send, request) = validate_send(body, &inner.templates)?;
    if send.wa_id == config.display_phone_number {
        return Err(GraphError::recipient_is_sender());
    }
    match inner
        .limits
        .admit(phone_number_id, &send.wa_id, Instant::now())
    {
        Ok(()) => {}
        Err(Refusal::Throughput) => return Err(GraphError::throughput_reached()),
        Err(Refusal::PairRate) => return Err(GraphError::pair_rate_limit()),
    }
    let on_whatsapp = inner.is_on_whatsapp(&send.wa_id, config.not_on_whatsapp_suffix.as_deref());
    let window_open = inner.window_open(phone_number_id, &send.wa_id, now);
    // Templates may always be sent; anything else needs the customer-service window.
    let window_violation = !send.is_template() && !window_open;
    if on_whatsapp && window_violation && inner.faults.window_violation_sync {
        return Err(GraphError::reengagement());
    }

    let wamid = new_wamid(&send.wa_id, WamidDirection::Outbound);
    let template_category = send
        .template
        .as_ref()
        .map(|(_, _, category)| category.clone());
    let update = StatusUpdate {
        wamid: wamid.clone(),
        recipient_id: send.wa_id.clone(),
        status: "sent",
        biz_opaque_callback_data: send.biz_opaque_callback_data.clone(),
        pricing: Some(pricing(template_category.as_deref(), window_open)),
        error: None,
    };
    let failure = if !on_whatsapp {
        Some(GraphError::undeliverable())
    } else if window_violation {
        Some(GraphError::reengagement())
    } else {
        None
    };
    match failure {
        Some(error) => {
            count_outcome(&mut inner, "failed_async");
            schedule_failure(
                state,
                StatusUpdate {
                    error: Some(error),
                    ..update
                },
            );
        }
        None => {
            count_outcome(&mut inner, "accepted");
            let reads = !inner.non_readers.contains(&update.recipient_id);
            schedule_delivery(state, update, reads);
        }
    }
    Inner::count(&mut inner.stats.messages_by_type, &send.message_type);
    let record = SentMessage {
        wamid: wamid.clone(),
        phone_number_id: phone_number_id.to_owned(),
        to: send.input.clone(),
        wa_id: send.wa_id.clone(),
        message_type: send.message_type.clone(),
        template_name: send.template.as_ref().map(|(name, _, _)| name.clone()),
        template_language: send
            .template
            .as_ref()
            .map(|(_, language, _)| language.clone()),
        biz_opaque_callback_data: send.biz_opaque_callback_data.clone(),
        accepted_at: now.timestamp(),
        accepted_at_ms: now.timestamp_millis(),
        statuses: Vec::new(),
        request,
    };
    let index = inner.messages.len();
    inner.message_index.insert(wamid.clone(), index);
    inner.messages.push(record);
    drop(inner);

    let mut message = json!({ "id": wamid });
    if send.is_template() {
        message["message_status"] = json!("accepted");
    }
    let response: Value = json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": send.input, "wa_id": send.wa_id}],
        "messages": [message],
    });
    Ok(Json(response).into_response())
}
