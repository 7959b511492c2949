//! The Graph API surface the daemon talks to: `POST /{version}/{phone_number_id}/messages` and
//! `GET /{version}/{phone_number_id}` (the webhook subscription reads are in `subscriptions`).
//!
//! Checks run in Meta's order: token, object id, request shape, sender limits, then delivery
//! decisions (reachability, customer-service window) — the latter mostly answered with 200 and a
//! later `failed` webhook, because that is what Meta does.
//!
//! Every send attempt, whatever its outcome, is appended to the attempt log (`GET /__sim/attempts`),
//! the record a soak run judges by. An accepted send may have its answer lost on purpose
//! (`accepted_then_lost_*`): the message is recorded and its statuses follow, but the client
//! cannot read the answer — the case that forces a client to treat the outcome as unknown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Value};

use super::graph_auth::{check_access, check_version_and_token};
use super::graph_error::GraphError;
use super::ids::{new_wamid, WamidDirection};
use super::rate_limit::Refusal;
use super::send_request::{validate_send, Address, ValidSend};
use super::state::{Attempt, AttemptOutcome, Inner, LostMode, SentMessage, SimState};
use super::versions::answering_version;
use super::webhook_payloads::{pricing, StatusRecipient, StatusUpdate};
use super::webhooks::{count_outcome, schedule_delivery, schedule_failure, Lifecycle};

/// The Graph endpoints. Every answer names the version that answered in `facebook-api-version`
/// (see `versions`: a retired version is answered as the oldest available one).
pub fn routes(state: Arc<SimState>) -> Router<Arc<SimState>> {
    // One parameter name per position: the router refuses two names for the same segment.
    Router::new()
        .route("/{version}/{object_id}/messages", post(send_message))
        .route("/{version}/{object_id}/media", super::media_upload::route())
        .route(
            "/{version}/{object_id}",
            get(phone_number).post(super::number_api::configure_number),
        )
        .route(
            "/{version}/{object_id}/phone_numbers",
            get(super::number_api::phone_numbers),
        )
        .route(
            "/{version}/{object_id}/subscribed_apps",
            get(super::subscriptions::subscribed_apps).post(super::subscriptions::subscribe_app),
        )
        .route(
            "/{version}/{object_id}/subscriptions",
            get(super::subscriptions::app_subscriptions)
                .post(super::subscriptions::subscribe_fields),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            answering_version_header,
        ))
}

/// Adds `facebook-api-version` to every Graph answer whose version segment Meta would serve.
async fn answering_version_header(
    State(state): State<Arc<SimState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let asked = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut response = next.run(request).await;
    if let Ok(answering) = answering_version(&asked, state.clock.now()) {
        if let Ok(value) = header::HeaderValue::from_str(&answering) {
            response.headers_mut().insert("facebook-api-version", value);
        }
    }
    response
}

async fn send_message(
    State(state): State<Arc<SimState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    apply_latency(&state).await;
    let mut attempt = draft_attempt(&state, &phone_number_id, &body);
    match accept_send(
        &state,
        &version,
        &phone_number_id,
        &headers,
        &query,
        &body,
        &mut attempt,
    ) {
        Ok(answer) => {
            let lost = {
                let mut inner = state.lock();
                let faults = &inner.faults;
                let lost = (faults.accepted_then_lost_rate > 0.0
                    && rand::thread_rng().gen::<f64>() < faults.accepted_then_lost_rate)
                    .then_some((
                        faults.accepted_then_lost_mode,
                        faults.accepted_then_lost_hold_ms,
                    ));
                attempt.answer_lost = lost.is_some();
                inner.record_attempt(attempt, state.config.attempts_kept);
                lost
            };
            match lost {
                None => Json(answer).into_response(),
                Some((LostMode::Cut, _)) => cut_answer(&answer),
                Some((LostMode::Timeout, hold_ms)) => {
                    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                    Json(answer).into_response()
                }
            }
        }
        Err(error) => {
            let mut inner = state.lock();
            Inner::count(&mut inner.stats.rejected_by_code, &error.code.to_string());
            count_outcome(&mut inner, "rejected");
            attempt.outcome = AttemptOutcome::Rejected;
            attempt.code = Some(error.code);
            inner.record_attempt(attempt, state.config.attempts_kept);
            drop(inner);
            error.into_response()
        }
    }
}

/// What can be read from a send request before any check, so refused attempts are listed with
/// their recipient and callback data too. Lenient on purpose: a malformed body still is an attempt.
fn draft_attempt(state: &SimState, phone_number_id: &str, body: &[u8]) -> Attempt {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let message_type = text(&request["type"]).or_else(|| {
        // Meta's default type is text.
        request.is_object().then(|| "text".to_owned())
    });
    Attempt {
        seq: 0,
        at_ms: state.clock.now().timestamp_millis(),
        phone_number_id: phone_number_id.to_owned(),
        wa_id: request["to"]
            .as_str()
            .and_then(|to| super::send_request::parse_recipient(to).ok()),
        user_id: request["to"]
            .is_null()
            .then(|| text(&request["recipient"]))
            .flatten(),
        template_name: text(&request["template"]["name"]),
        biz_opaque_callback_data: text(&request["biz_opaque_callback_data"]),
        message_type,
        outcome: AttemptOutcome::Accepted,
        code: None,
        wamid: None,
        answer_lost: false,
        window_open: None,
    }
}

/// A 200 whose body never arrives whole: the status line, the headers (with the full
/// `Content-Length`) and the first half of the JSON go out, then the body stream fails and hyper
/// drops the connection. The client knows Meta answered but cannot read the wamid.
fn cut_answer(answer: &Value) -> Response {
    let bytes = answer.to_string().into_bytes();
    let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated: answer lost after acceptance",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(bytes.len()),
    );
    response
}

async fn phone_number(
    State(state): State<Arc<SimState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    apply_latency(&state).await;
    if state.media.knows(&phone_number_id) {
        return match check_version_and_token(&state, &version, &headers, &query) {
            Ok(()) => super::media::media_info(&state, &phone_number_id, &headers),
            Err(error) => error.into_response(),
        };
    }
    if let Err(error) = check_access(&state, &version, &phone_number_id, &headers, &query, "get") {
        return error.into_response();
    }
    let fields = query.get("fields").map(String::as_str).unwrap_or_default();
    if fields
        .split(',')
        .any(|f| f.trim() == "webhook_configuration")
    {
        return super::number_api::webhook_configuration(&state, &phone_number_id);
    }
    match super::number_api::number_json(&state, &phone_number_id) {
        Some(mut number) => {
            number["messaging_limit_tier"] = json!("TIER_1K");
            Json(number).into_response()
        }
        None => GraphError::unknown_object("get", &phone_number_id).into_response(),
    }
}

async fn apply_latency(state: &SimState) {
    let latency = state.lock().faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
}

/// Whom an accepted send reaches, once its address is resolved against the customers Meta knows.
struct Target {
    /// The customer's number when the message can reach someone; `None`: never delivered (a
    /// BSUID in `to`, or a BSUID no customer of this portfolio has).
    wa_id: Option<String>,
    /// How statuses name the recipient.
    recipient: StatusRecipient,
    /// The key of the pair-rate bucket and of the wamid: the number, else what was given.
    key: String,
    /// `contacts[0]` of the answer.
    contact: Value,
}

/// Resolves a validated send's address (Meta's order: the recipient checks come before limits).
fn resolve_target(
    inner: &mut Inner,
    numbers: &super::numbers::Numbers,
    send: &ValidSend,
) -> Result<Target, GraphError> {
    match &send.address {
        Address::Phone(wa_id) => {
            if numbers.is_own_number(wa_id) {
                return Err(GraphError::recipient_is_sender());
            }
            inner.customers.register(wa_id);
            Ok(Target {
                wa_id: Some(wa_id.clone()),
                recipient: StatusRecipient::Phone(wa_id.clone()),
                key: wa_id.clone(),
                contact: json!({"input": send.input, "wa_id": wa_id}),
            })
        }
        Address::MisplacedUserId { digits } => Ok(Target {
            wa_id: None,
            recipient: StatusRecipient::Phone(digits.clone()),
            key: digits.clone(),
            contact: json!({"input": send.input, "wa_id": digits}),
        }),
        Address::UserId(user_id) => {
            // Authentication templates (one-tap, zero-tap, copy-code) still need a phone number.
            let authentication = send
                .template
                .as_ref()
                .is_some_and(|(_, _, category)| category == "authentication");
            if authentication {
                return Err(GraphError::user_id_recipient_unsupported());
            }
            let customer = inner
                .customers
                .wa_id_of(user_id)
                .and_then(|wa_id| inner.customers.get(wa_id));
            let recipient = StatusRecipient::UserId {
                user_id: customer.map_or_else(|| user_id.clone(), |c| c.user_id.clone()),
                parent_user_id: customer.and_then(|c| c.parent_user_id.clone()),
            };
            Ok(Target {
                wa_id: customer.map(|c| c.wa_id.clone()),
                recipient,
                key: customer.map_or_else(|| user_id.clone(), |c| c.wa_id.clone()),
                contact: json!({"input": send.input, "user_id": user_id}),
            })
        }
    }
}

/// Decides a send and returns the 200 answer's body; fills in `attempt` as it learns (the window
/// is looked up as soon as the recipient and type are known, so refused free-form attempts say
/// whether the window was open too).
fn accept_send(
    state: &SimState,
    version: &str,
    phone_number_id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
    attempt: &mut Attempt,
) -> Result<Value, GraphError> {
    let config = &state.config;
    let now = state.clock.now();
    let addressed = attempt.wa_id.is_some() || attempt.user_id.is_some();
    if let (true, Some(kind)) = (addressed, &attempt.message_type) {
        if kind != "template" {
            let inner = state.lock();
            let wa_id = attempt.wa_id.clone().or_else(|| {
                let user_id = attempt.user_id.as_deref()?;
                inner.customers.wa_id_of(user_id).map(str::to_owned)
            });
            attempt.window_open =
                Some(wa_id.is_some_and(|wa_id| inner.window_open(phone_number_id, &wa_id, now)));
        }
    }
    check_access(state, version, phone_number_id, headers, query, "post")?;
    // A number Meta blocked, locked or never registered: every send from it is refused, the
    // account's other numbers send on.
    if let Some(error) = state
        .numbers
        .get(phone_number_id)
        .and_then(|number| number.hold_error)
        .and_then(GraphError::number_hold)
    {
        return Err(error);
    }
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
    super::media_upload::check_sent_media(state, phone_number_id, &request, now)?;
    let target = resolve_target(&mut inner, &state.numbers, &send)?;
    match inner
        .limits
        .admit(phone_number_id, &target.key, Instant::now())
    {
        Ok(()) => {}
        Err(Refusal::Throughput) => return Err(GraphError::throughput_reached()),
        Err(Refusal::PairRate) => return Err(GraphError::pair_rate_limit()),
    }
    // Marketing templates: a customer who stopped them (131050), or over Meta's cap (131049).
    let marketing = send
        .template
        .as_ref()
        .is_some_and(|(_, _, category)| super::marketing::is_marketing(category));
    if let (true, Some(wa_id)) = (marketing, target.wa_id.as_deref()) {
        if let Some(error) = inner.marketing.refusal(phone_number_id, wa_id, now) {
            return Err(error);
        }
    }
    let on_whatsapp = target
        .wa_id
        .as_deref()
        .is_some_and(|wa_id| inner.is_on_whatsapp(wa_id, config.not_on_whatsapp_suffix.as_deref()));
    let window_open = target
        .wa_id
        .as_deref()
        .is_some_and(|wa_id| inner.window_open(phone_number_id, wa_id, now));
    // Templates may always be sent; anything else needs the customer-service window.
    let window_violation = !send.is_template() && !window_open;
    if on_whatsapp && window_violation && inner.faults.window_violation_sync {
        return Err(GraphError::reengagement());
    }

    let wamid = new_wamid(&target.key, WamidDirection::Outbound);
    let template_category = send
        .template
        .as_ref()
        .map(|(_, _, category)| category.clone());
    let update = StatusUpdate {
        wamid: wamid.clone(),
        phone_number_id: phone_number_id.to_owned(),
        recipient: target.recipient.clone(),
        biz_opaque_callback_data: send.biz_opaque_callback_data.clone(),
        pricing: Some(pricing(template_category.as_deref(), window_open)),
        error: None,
    };
    let failure = if !on_whatsapp {
        Some(GraphError::undeliverable())
    } else if window_violation {
        Some(GraphError::reengagement())
    } else if marketing
        && target
            .wa_id
            .as_deref()
            .is_some_and(|wa_id| inner.marketing.undelivered(wa_id))
    {
        // Marketing to a +1 number: accepted, never delivered.
        Some(GraphError::ecosystem_engagement())
    } else {
        None
    };
    match (failure, target.wa_id.as_deref()) {
        (None, Some(wa_id)) => {
            count_outcome(&mut inner, "accepted");
            // A message that reaches them is an exchange: a username user's number shows in
            // this number's webhooks for 30 days.
            if let Some(customer) = inner.customers.get_mut(wa_id) {
                customer
                    .last_business_message
                    .insert(phone_number_id.to_owned(), now);
            }
            let reads = !inner.non_readers.contains(wa_id);
            let lifecycle = Lifecycle::of(&inner.faults, reads);
            schedule_delivery(state, update, lifecycle);
        }
        (failure, _) => {
            count_outcome(&mut inner, "failed_async");
            // A send that reaches nobody fails as an undeliverable number does.
            let error = failure.unwrap_or_else(GraphError::undeliverable);
            schedule_failure(
                state,
                StatusUpdate {
                    error: Some(error),
                    ..update
                },
            );
        }
    }
    Inner::count(&mut inner.stats.messages_by_type, &send.message_type);
    let recipient_user_id = match &target.recipient {
        StatusRecipient::UserId { user_id, .. } => Some(user_id.clone()),
        StatusRecipient::Phone(_) => None,
    };
    let record = SentMessage {
        wamid: wamid.clone(),
        phone_number_id: phone_number_id.to_owned(),
        to: send.input.clone(),
        wa_id: target.wa_id.clone().unwrap_or_else(|| target.key.clone()),
        recipient_user_id: recipient_user_id.clone(),
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
    // Template pacing: a paced template's sends are held while Meta assesses it.
    let paced = send.template.as_ref().is_some_and(|(name, language, _)| {
        inner
            .templates
            .iter()
            .any(|t| t.paced && t.name == *name && t.language == *language)
    });
    drop(inner);
    // The validated view wins over the lenient draft.
    attempt.wa_id = target.wa_id.clone();
    attempt.user_id = recipient_user_id;
    attempt.message_type = Some(send.message_type.clone());
    attempt.template_name = send.template.as_ref().map(|(name, _, _)| name.clone());
    attempt.biz_opaque_callback_data = send.biz_opaque_callback_data.clone();
    attempt.window_open = (!send.is_template()).then_some(window_open);
    attempt.wamid = Some(wamid.clone());

    let mut message = json!({ "id": wamid });
    if send.is_template() {
        message["message_status"] = json!(if paced {
            "held_for_quality_assessment"
        } else {
            "accepted"
        });
    }
    Ok(json!({
        "messaging_product": "whatsapp",
        "contacts": [target.contact],
        "messages": [message],
    }))
}
