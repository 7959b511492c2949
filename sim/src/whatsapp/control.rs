//! The control API under `/__sim/`: what tests, the demo and humans use to play the customer, move
//! time, inject faults and inspect what the simulated Meta saw. No auth, never rate limited.
//! Errors here are plain `{"error":"…"}` with HTTP 400 — they are not Meta's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use super::customer_messages::{emit, resolve_customer, CustomerMessage};
use super::customers::{is_user_id, Customer};
use super::send_request::parse_recipient;
use super::state::{Inner, LostMode, SimState, SERVICE_WINDOW};
use super::templates::TemplateDefinition;
use super::webhooks::{self, Take};

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/__sim/inbound", post(inbound))
        .route("/__sim/messages", get(messages))
        .route("/__sim/attempts", get(attempts))
        .route(
            "/__sim/templates",
            get(templates).put(replace_templates).post(upsert_template),
        )
        .route("/__sim/faults", get(faults).post(update_faults))
        .route("/__sim/clock", get(clock).post(shift_clock))
        .route("/__sim/stats", get(stats))
        .route("/__sim/customers", get(customers).post(set_customer))
        .route("/__sim/customers/reads", axum::routing::post(set_reads))
        .route("/__sim/webhook", get(webhook).put(set_webhook))
        .route("/__sim/webhook/verify", post(verify_webhook))
        .route("/__sim/webhooks/deliver", post(deliver_webhooks))
        .merge(super::customer_messages::routes())
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// A control-API request error: HTTP 400 with `{"error": "…"}`.
#[derive(Debug)]
struct ControlError(String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        bad_request(self.0)
    }
}

/// Parses a JSON body ourselves so a malformed one gets a readable 400 instead of axum's text.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body)
        .map_err(|error| ControlError(format!("invalid JSON body: {error}")))
}

fn from_unix(seconds: i64) -> Result<DateTime<Utc>, ControlError> {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .ok_or_else(|| ControlError(format!("timestamp {seconds} is out of range")))
}

/// A customer's message, flat so a test can write it in one line.
#[derive(Debug, Deserialize)]
struct InboundRequest {
    /// The customer: a phone number (registered on first sight) or a known customer's BSUID.
    from: String,
    #[serde(rename = "type", default = "default_inbound_type")]
    message_type: String,
    /// Any of the account's numbers (default: the main one).
    phone_number_id: Option<String>,
    timestamp: Option<i64>,
    /// Profile name for this message (default: the customer's, else "Sim Customer").
    name: Option<String>,
    /// `text` body, the visible text of a `button` reply, an `order`'s note, a Flow's `body`.
    text: Option<String>,
    /// `button` payload.
    payload: Option<String>,
    /// Media id (`image`, `audio`, `video`, `document`, `sticker`).
    id: Option<String>,
    mime_type: Option<String>,
    sha256: Option<String>,
    caption: Option<String>,
    /// `document` file name.
    filename: Option<String>,
    /// `reaction` target.
    message_id: Option<String>,
    emoji: Option<String>,
    /// Makes the message a reply to this wamid (`context`).
    context_message_id: Option<String>,
    /// `location`.
    latitude: Option<f64>,
    longitude: Option<f64>,
    location_name: Option<String>,
    address: Option<String>,
    /// `contacts`: the shared contacts, as Meta's array.
    contacts: Option<Value>,
    /// `order`: catalog and items (`[{product_retailer_id, quantity, item_price, currency}]`).
    catalog_id: Option<String>,
    product_items: Option<Value>,
    /// `interactive` Flow answer (`nfm_reply`): the response fields (an object, sent as a JSON
    /// string as Meta does) and the flow's name.
    response_json: Option<Value>,
    flow_name: Option<String>,
    /// The type's object verbatim (`messages[].<type>`): any type Meta documents, as is.
    content: Option<Value>,
    /// Further fields of `messages[]` verbatim (e.g. `errors`, `context`).
    extra: Option<serde_json::Map<String, Value>>,
    /// Click-to-WhatsApp `referral` (`source_url`, `source_id`, `source_type`, `headline`, `body`,
    /// `media_type`, `ctwa_clid`, …).
    referral: Option<Value>,
    /// A group message: it does not open the participant's 1:1 window.
    group_id: Option<String>,
}

fn default_inbound_type() -> String {
    "text".to_owned()
}

fn random_media_id() -> String {
    format!(
        "{}",
        rand::thread_rng().gen_range(1_000_000_000_000_000u64..9_999_999_999_999_999)
    )
}

fn random_sha256() -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        rand::thread_rng().gen::<[u8; 32]>(),
    )
}

/// `messages[].<type>` of a media message (`image` keeps its own arm below).
fn media_content(request: &InboundRequest, kind: &str) -> Value {
    let default_mime = match kind {
        "audio" => "audio/ogg; codecs=opus",
        "video" => "video/mp4",
        "document" => "application/pdf",
        _ => "image/webp",
    };
    let mut media = json!({
        "mime_type": request.mime_type.clone().unwrap_or_else(|| default_mime.to_owned()),
        "sha256": request.sha256.clone().unwrap_or_else(random_sha256),
        "id": request.id.clone().unwrap_or_else(random_media_id),
    });
    if let Some(caption) = &request.caption {
        media["caption"] = json!(caption);
    }
    if let Some(filename) = &request.filename {
        media["filename"] = json!(filename);
    }
    if kind == "audio" {
        media["voice"] = json!(true);
    }
    media
}

/// The type's object of an inbound message (`None`: the type has none, e.g. `request_welcome`).
fn inbound_content(request: &InboundRequest) -> Result<Option<Value>, String> {
    if let Some(content) = &request.content {
        return Ok(Some(content.clone()));
    }
    let content = match request.message_type.as_str() {
        "text" => match &request.text {
            Some(text) => json!({"body": text}),
            None => return Err("type text needs 'text'".to_owned()),
        },
        "button" => match (&request.payload, &request.text) {
            (Some(payload), Some(text)) => json!({"payload": payload, "text": text}),
            (Some(payload), None) => json!({"payload": payload, "text": payload}),
            _ => return Err("type button needs 'payload' (and usually 'text')".to_owned()),
        },
        "image" => {
            let mut rng = rand::thread_rng();
            let mut image = json!({
                "mime_type": request.mime_type.clone().unwrap_or_else(|| "image/jpeg".to_owned()),
                "sha256": request.sha256.clone().unwrap_or_else(|| {
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, rng.gen::<[u8; 32]>())
                }),
                "id": request.id.clone().unwrap_or_else(|| format!("{}", rng.gen_range(1_000_000_000_000_000u64..9_999_999_999_999_999))),
            });
            if let Some(caption) = &request.caption {
                image["caption"] = json!(caption);
            }
            image
        }
        kind @ ("audio" | "video" | "document" | "sticker") => media_content(request, kind),
        "reaction" => match (&request.message_id, &request.emoji) {
            (Some(message_id), Some(emoji)) => json!({"message_id": message_id, "emoji": emoji}),
            _ => return Err("type reaction needs 'message_id' and 'emoji'".to_owned()),
        },
        other => return other_content(request, other),
    };
    Ok(Some(content))
}

/// The 2026 types' objects: location, contacts, order, Flows answers; none for request_welcome
/// and unsupported.
fn other_content(request: &InboundRequest, kind: &str) -> Result<Option<Value>, String> {
    let content = match kind {
        "location" => {
            let (Some(latitude), Some(longitude)) = (request.latitude, request.longitude) else {
                return Err("type location needs 'latitude' and 'longitude'".to_owned());
            };
            let mut location = json!({"latitude": latitude, "longitude": longitude});
            if let Some(name) = &request.location_name {
                location["name"] = json!(name);
            }
            if let Some(address) = &request.address {
                location["address"] = json!(address);
            }
            location
        }
        "contacts" => match &request.contacts {
            Some(contacts) if contacts.is_array() => return Ok(Some(contacts.clone())),
            _ => return Err("type contacts needs 'contacts' (an array)".to_owned()),
        },
        "order" => {
            let (Some(catalog_id), Some(items)) = (&request.catalog_id, &request.product_items)
            else {
                return Err("type order needs 'catalog_id' and 'product_items'".to_owned());
            };
            let mut order = json!({"catalog_id": catalog_id, "product_items": items});
            if let Some(text) = &request.text {
                order["text"] = json!(text);
            }
            order
        }
        "interactive" => {
            let Some(response) = &request.response_json else {
                return Err(
                    "type interactive needs 'response_json' (a Flow answer) or 'content'"
                        .to_owned(),
                );
            };
            let response_json = match response {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            json!({
                "type": "nfm_reply",
                "nfm_reply": {
                    "response_json": response_json,
                    "body": request.text.clone().unwrap_or_else(|| "Sent".to_owned()),
                    "name": request.flow_name.clone().unwrap_or_else(|| "flow".to_owned()),
                },
            })
        }
        "request_welcome" | "unsupported" => return Ok(None),
        other => {
            return Err(format!(
                "inbound type {other} needs 'content' (its object as Meta sends it)"
            ))
        }
    };
    Ok(Some(content))
}

/// The fields of `messages[]` besides the sender, id, timestamp and type.
fn inbound_fields(
    request: &InboundRequest,
    display_number: &str,
) -> Result<serde_json::Map<String, Value>, String> {
    let mut fields = serde_json::Map::new();
    if let Some(content) = inbound_content(request)? {
        fields.insert(request.message_type.clone(), content);
    }
    if request.message_type == "unsupported" && request.extra.is_none() {
        fields.insert(
            "errors".to_owned(),
            json!([{
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }]),
        );
    }
    if let Some(context_id) = &request.context_message_id {
        fields.insert(
            "context".to_owned(),
            json!({"from": display_number, "id": context_id}),
        );
    }
    if let Some(referral) = &request.referral {
        fields.insert("referral".to_owned(), referral.clone());
    }
    if let Some(group_id) = &request.group_id {
        fields.insert("group_id".to_owned(), json!(group_id));
    }
    if let Some(extra) = &request.extra {
        fields.extend(extra.clone());
    }
    Ok(fields)
}

async fn inbound(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let request: InboundRequest = match parse(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let config = &state.config;
    let phone_number_id = request
        .phone_number_id
        .clone()
        .unwrap_or_else(|| config.phone_number_id.clone());
    let Some(display_number) = state.numbers.display_of(&phone_number_id) else {
        return bad_request(format!(
            "unknown phone_number_id {phone_number_id}; this simulator owns {}",
            config.phone_number_id
        ));
    };
    let at = match request.timestamp {
        Some(seconds) => match from_unix(seconds) {
            Ok(at) => at,
            Err(error) => return error.into_response(),
        },
        None => state.clock.now(),
    };
    let fields = match inbound_fields(&request, &display_number) {
        Ok(fields) => fields,
        Err(error) => return bad_request(error),
    };
    let wa_id = match resolve_customer(&mut state.lock(), &request.from) {
        Ok(wa_id) => wa_id,
        Err(_) => {
            return bad_request(format!(
                "'from' is neither a plausible phone number nor a known customer's BSUID: {}",
                request.from
            ))
        }
    };
    // Whether a reaction opens the window is undocumented. The simulator takes the strict reading
    // (it does not), so a daemon that counts reactions is caught by 131047 here, not in production.
    // A group message is no 1:1 conversation: it leaves the participant's window as it was.
    let opens_window = request.message_type != "reaction" && request.group_id.is_none();
    let message = CustomerMessage {
        phone_number_id,
        at,
        message_type: request.message_type.clone(),
        fields,
        profile_name: request.name.clone(),
        with_contact: true,
        opens_window,
    };
    Json(emit(&state, &wa_id, message)).into_response()
}

#[derive(Debug, Deserialize)]
struct MessagesQuery {
    to: Option<String>,
    wamid: Option<String>,
}

async fn messages(
    State(state): State<Arc<SimState>>,
    Query(query): Query<MessagesQuery>,
) -> Response {
    let inner = state.lock();
    let wanted_to = query
        .to
        .as_deref()
        .map(|to| to.trim_start_matches('+').to_owned());
    let list: Vec<_> = inner
        .messages
        .iter()
        .filter(|message| {
            wanted_to.as_deref().is_none_or(|to| {
                message.wa_id == to || message.recipient_user_id.as_deref() == Some(to)
            })
        })
        .filter(|message| {
            query
                .wamid
                .as_deref()
                .is_none_or(|wamid| message.wamid == wamid)
        })
        .collect();
    Json(json!({ "messages": list })).into_response()
}

#[derive(Debug, Deserialize)]
struct AttemptsQuery {
    /// Only attempts with a larger `seq`.
    since: Option<u64>,
    /// At most this many (default and ceiling [`ATTEMPTS_PAGE`]).
    limit: Option<usize>,
}

/// The largest page `GET /__sim/attempts` returns; `next_since` continues from there.
const ATTEMPTS_PAGE: usize = 10_000;

/// Every send attempt in order, paged by `seq`: `{"attempts":[…],"next_since":N,"more":bool,
/// "oldest_kept":N}` — `oldest_kept` tells a reader that fell behind the bounded log what it missed.
async fn attempts(
    State(state): State<Arc<SimState>>,
    Query(query): Query<AttemptsQuery>,
) -> Response {
    let since = query.since.unwrap_or(0);
    let limit = query.limit.unwrap_or(ATTEMPTS_PAGE).clamp(1, ATTEMPTS_PAGE);
    let inner = state.lock();
    let oldest_kept = inner.attempts.front().map(|attempt| attempt.seq);
    // Sequence numbers are consecutive in the deque, so the first wanted one is found by index.
    let skip = oldest_kept.map_or(0, |oldest| {
        usize::try_from((since + 1).saturating_sub(oldest)).unwrap_or(usize::MAX)
    });
    let page: Vec<_> = inner.attempts.iter().skip(skip).take(limit).collect();
    let next_since = page.last().map_or(since, |attempt| attempt.seq);
    let more = inner
        .attempts
        .back()
        .is_some_and(|attempt| attempt.seq > next_since);
    Json(json!({
        "attempts": page,
        "next_since": next_since,
        "more": more,
        "oldest_kept": oldest_kept,
    }))
    .into_response()
}

async fn templates(State(state): State<Arc<SimState>>) -> Response {
    Json(json!({ "templates": state.lock().templates })).into_response()
}

/// `PUT`: replaces the whole registry with a JSON array (or `{"templates":[…]}`).
async fn replace_templates(
    State(state): State<Arc<SimState>>,
    body: axum::body::Bytes,
) -> Response {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Replacement {
        List(Vec<TemplateDefinition>),
        Wrapped { templates: Vec<TemplateDefinition> },
    }
    let templates = match parse::<Replacement>(&body) {
        Ok(Replacement::List(templates)) | Ok(Replacement::Wrapped { templates }) => templates,
        Err(error) => return error.into_response(),
    };
    let before = std::mem::replace(&mut state.lock().templates, templates.clone());
    for after in &templates {
        let known = before
            .iter()
            .find(|b| b.name == after.name && b.language == after.language);
        super::template_webhooks::announce(&state, known, after);
    }
    Json(json!({ "templates": templates })).into_response()
}

/// `POST`: adds one template or replaces the one with the same name and language.
async fn upsert_template(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let template: TemplateDefinition = match parse(&body) {
        Ok(template) => template,
        Err(error) => return error.into_response(),
    };
    let mut inner = state.lock();
    let before = inner
        .templates
        .iter()
        .position(|known| known.name == template.name && known.language == template.language)
        .map(|at| inner.templates.remove(at));
    inner.templates.push(template.clone());
    drop(inner);
    // Meta tells the business of the change (the template webhooks).
    super::template_webhooks::announce(&state, before.as_ref(), &template);
    Json(json!(template)).into_response()
}

/// Every field optional: only what is given changes.
#[derive(Debug, Deserialize)]
struct FaultsUpdate {
    token_expired: Option<bool>,
    error_rate: Option<f64>,
    error_status: Option<u16>,
    latency_ms: Option<u64>,
    /// Replaces the set of numbers that are not on WhatsApp.
    not_on_whatsapp: Option<HashSet<String>>,
    window_violation_sync: Option<bool>,
    throughput_per_second: Option<u32>,
    pair_burst: Option<u32>,
    pair_refill_ms: Option<u64>,
    webhook_duplicate_rate: Option<f64>,
    webhook_out_of_order: Option<bool>,
    webhook_delay_ms: Option<u64>,
    webhook_retry_max_attempts: Option<u32>,
    webhook_retry_horizon_ms: Option<u64>,
    accepted_then_lost_rate: Option<f64>,
    accepted_then_lost_mode: Option<LostMode>,
    accepted_then_lost_hold_ms: Option<u64>,
    delivered_after_ms: Option<u64>,
    read_after_ms: Option<u64>,
    status_webhooks_off: Option<bool>,
}

impl FaultsUpdate {
    /// The first value out of range, in words.
    fn problem(&self) -> Option<String> {
        let rates = [
            ("error_rate", self.error_rate),
            ("webhook_duplicate_rate", self.webhook_duplicate_rate),
            ("accepted_then_lost_rate", self.accepted_then_lost_rate),
        ];
        for (name, rate) in rates {
            if rate.is_some_and(|rate| !(0.0..=1.0).contains(&rate)) {
                return Some(format!("{name} must be between 0.0 and 1.0"));
            }
        }
        if self
            .error_status
            .is_some_and(|status| status != 500 && status != 503)
        {
            return Some("error_status must be 500 or 503".to_owned());
        }
        if self.webhook_retry_max_attempts == Some(0) {
            return Some("webhook_retry_max_attempts must be at least 1".to_owned());
        }
        None
    }
}

/// The customers' timing and whether status webhooks are sent at all.
fn apply_lifecycle(faults: &mut super::state::Faults, update: &FaultsUpdate) {
    if let Some(value) = update.delivered_after_ms {
        faults.delivered_after_ms = value;
    }
    if let Some(value) = update.read_after_ms {
        faults.read_after_ms = value;
    }
    if let Some(value) = update.status_webhooks_off {
        faults.status_webhooks_off = value;
    }
}

fn faults_view(state: &SimState) -> Value {
    let inner = state.lock();
    let mut view = json!(inner.faults);
    view["webhook_delay_ms"] = json!(state.outbox.max_extra_delay_ms());
    view["throughput_per_second"] = json!(inner.limits.throughput_per_second());
    view["pair_burst"] = json!(inner.limits.pair_burst());
    view["pair_refill_ms"] = json!(inner.limits.pair_refill_every().as_millis() as u64);
    view
}

async fn faults(State(state): State<Arc<SimState>>) -> Response {
    Json(faults_view(&state)).into_response()
}

async fn update_faults(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let update: FaultsUpdate = match parse(&body) {
        Ok(update) => update,
        Err(error) => return error.into_response(),
    };
    if let Some(problem) = update.problem() {
        return bad_request(problem);
    }
    if let Some(millis) = update.webhook_delay_ms {
        state.outbox.set_max_extra_delay(millis);
    }
    {
        let mut inner = state.lock();
        let faults = &mut inner.faults;
        if let Some(value) = update.token_expired {
            faults.token_expired = value;
        }
        if let Some(value) = update.error_rate {
            faults.error_rate = value;
        }
        if let Some(value) = update.error_status {
            faults.error_status = value;
        }
        if let Some(value) = update.latency_ms {
            faults.latency_ms = value;
        }
        if let Some(numbers) = update.not_on_whatsapp.clone() {
            faults.not_on_whatsapp = numbers
                .into_iter()
                .map(|number| number.trim_start_matches('+').to_owned())
                .collect();
        }
        if let Some(value) = update.window_violation_sync {
            faults.window_violation_sync = value;
        }
        if let Some(value) = update.webhook_duplicate_rate {
            faults.webhook_duplicate_rate = value;
        }
        if let Some(value) = update.webhook_out_of_order {
            faults.webhook_out_of_order = value;
        }
        if let Some(value) = update.webhook_retry_max_attempts {
            faults.webhook_retry_max_attempts = value;
        }
        if let Some(value) = update.webhook_retry_horizon_ms {
            faults.webhook_retry_horizon_ms = value;
        }
        if let Some(value) = update.accepted_then_lost_rate {
            faults.accepted_then_lost_rate = value;
        }
        if let Some(value) = update.accepted_then_lost_mode {
            faults.accepted_then_lost_mode = value;
        }
        if let Some(value) = update.accepted_then_lost_hold_ms {
            faults.accepted_then_lost_hold_ms = value;
        }
        apply_lifecycle(faults, &update);
        if update.throughput_per_second.is_some()
            || update.pair_burst.is_some()
            || update.pair_refill_ms.is_some()
        {
            let throughput = update
                .throughput_per_second
                .unwrap_or(inner.limits.throughput_per_second());
            let burst = update.pair_burst.unwrap_or(inner.limits.pair_burst());
            let refill = update
                .pair_refill_ms
                .map(Duration::from_millis)
                .unwrap_or(inner.limits.pair_refill_every());
            inner.limits.reconfigure(throughput, burst, refill);
        }
    }
    Json(faults_view(&state)).into_response()
}

fn clock_view(state: &SimState) -> Value {
    json!({
        "now": state.clock.now().timestamp(),
        "now_rfc3339": state.clock.now().to_rfc3339(),
        "offset_seconds": state.clock.offset().num_seconds(),
    })
}

async fn clock(State(state): State<Arc<SimState>>) -> Response {
    Json(clock_view(&state)).into_response()
}

async fn shift_clock(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct Shift {
        shift_seconds: i64,
    }
    let shift: Shift = match parse(&body) {
        Ok(shift) => shift,
        Err(error) => return error.into_response(),
    };
    state
        .clock
        .shift(chrono::Duration::seconds(shift.shift_seconds));
    Json(clock_view(&state)).into_response()
}

async fn stats(State(state): State<Arc<SimState>>) -> Response {
    Json(json!(state.lock().stats)).into_response()
}

/// A customer's identity as the control API shows it.
fn identity_view(customer: Option<&Customer>) -> Value {
    match customer {
        Some(customer) => json!({
            "user_id": customer.user_id,
            "parent_user_id": customer.parent_user_id,
            "username": customer.username,
            "name": customer.name,
            "standby": customer.standby,
        }),
        None => json!({}),
    }
}

fn merge(mut view: Value, extra: Value) -> Value {
    if let (Some(view), Value::Object(extra)) = (view.as_object_mut(), extra) {
        view.extend(extra);
    }
    view
}

/// Every customer: one entry per (business number, customer) with a window, then one per known
/// customer without any (`phone_number_id` null, window closed) — each with their identity.
async fn customers(State(state): State<Arc<SimState>>) -> Response {
    let now = state.clock.now();
    let inner = state.lock();
    let mut list: Vec<Value> = inner
        .last_inbound
        .iter()
        .map(|((phone_number_id, wa_id), last)| {
            let window = json!({
                "phone_number_id": phone_number_id,
                "wa_id": wa_id,
                "last_inbound_at": last.timestamp(),
                "window_open": now - *last < SERVICE_WINDOW,
                "window_expires_at": (*last + SERVICE_WINDOW).timestamp(),
            });
            merge(window, identity_view(inner.customers.get(wa_id)))
        })
        .collect();
    for customer in inner.customers.all() {
        let has_window = inner
            .last_inbound
            .keys()
            .any(|(_, wa_id)| *wa_id == customer.wa_id);
        if !has_window {
            let entry = json!({
                "phone_number_id": null,
                "wa_id": customer.wa_id,
                "last_inbound_at": null,
                "window_open": false,
            });
            list.push(merge(entry, identity_view(Some(customer))));
        }
    }
    Json(json!({ "customers": list })).into_response()
}

/// `POST /__sim/customers`: what the control API may set about a customer. Only what is given
/// changes, except the window: a missing `last_inbound_at` means "now", as it always has.
#[derive(Deserialize)]
struct SetCustomer {
    wa_id: String,
    phone_number_id: Option<String>,
    /// Unix seconds; missing = sim now; `null` = never wrote.
    #[serde(default = "now_marker")]
    last_inbound_at: Option<i64>,
    /// A WhatsApp username (`null` removes it): their number is then withheld from webhooks
    /// unless the business messaged them in the last 30 days.
    #[serde(default, deserialize_with = "present")]
    username: Option<Option<String>>,
    /// Profile name in webhooks.
    name: Option<String>,
    /// A specific BSUID instead of the derived one.
    user_id: Option<String>,
    /// A parent BSUID: a BSUID string, `true` (a derived one) or `null` (none).
    #[serde(default, deserialize_with = "present")]
    parent_user_id: Option<Option<Value>>,
    /// Their messages arrive on the `standby` field (Meta's business agent handles them).
    standby: Option<bool>,
}

fn now_marker() -> Option<i64> {
    Some(i64::MIN)
}

/// Tells a field given as `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Applies the identity fields of a `SetCustomer` (registering the customer).
fn set_identity(inner: &mut Inner, wa_id: &str, request: &SetCustomer) -> Result<(), String> {
    let parent = match &request.parent_user_id {
        None => None,
        Some(None) => Some(None),
        Some(Some(Value::Bool(true))) => Some(Some(String::new())),
        Some(Some(Value::String(id))) if is_user_id(id) => Some(Some(id.clone())),
        Some(Some(other)) => {
            return Err(format!(
                "parent_user_id must be a BSUID, true or null, not {other}"
            ))
        }
    };
    if let Some(user_id) = &request.user_id {
        if !is_user_id(user_id) {
            return Err(format!("user_id is not a BSUID: {user_id}"));
        }
        if inner
            .customers
            .wa_id_of(user_id)
            .is_some_and(|owner| owner != wa_id)
        {
            return Err(format!("{user_id} already belongs to another customer"));
        }
        if inner.customers.register(wa_id).user_id != *user_id {
            inner.customers.change_user_id(wa_id, Some(user_id.clone()));
        }
    }
    if let Some(parent) = parent {
        inner.customers.set_parent(wa_id, parent);
    }
    let customer = inner.customers.register(wa_id);
    if let Some(username) = &request.username {
        customer.username = username.clone();
    }
    if let Some(name) = &request.name {
        customer.name = Some(name.clone());
    }
    if let Some(standby) = request.standby {
        customer.standby = standby;
    }
    Ok(())
}

/// Sets (or with `"last_inbound_at": null` clears) a customer's last inbound time, silently, and
/// any identity fields given.
async fn set_customer(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let request: SetCustomer = match parse(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let Ok(wa_id) = parse_recipient(&request.wa_id) else {
        return bad_request(format!(
            "'wa_id' is not a plausible phone number: {}",
            request.wa_id
        ));
    };
    let phone_number_id = request
        .phone_number_id
        .clone()
        .unwrap_or_else(|| state.config.phone_number_id.clone());
    let key = (phone_number_id.clone(), wa_id.clone());
    let at = match request.last_inbound_at {
        None => None,
        Some(i64::MIN) => Some(state.clock.now()),
        Some(seconds) => match from_unix(seconds) {
            Ok(at) => Some(at),
            Err(error) => return error.into_response(),
        },
    };
    let mut inner = state.lock();
    if let Err(error) = set_identity(&mut inner, &wa_id, &request) {
        return bad_request(error);
    }
    match at {
        Some(at) => {
            inner.last_inbound.insert(key, at);
        }
        None => {
            inner.last_inbound.remove(&key);
        }
    }
    let answer = json!({
        "phone_number_id": phone_number_id,
        "wa_id": wa_id,
        "last_inbound_at": at.map(|at| at.timestamp()),
    });
    Json(merge(answer, identity_view(inner.customers.get(&wa_id)))).into_response()
}

async fn webhook(State(state): State<Arc<SimState>>) -> Response {
    Json(json!({ "url": state.lock().webhook_url })).into_response()
}

async fn set_webhook(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct SetWebhook {
        url: Option<String>,
    }
    let request: SetWebhook = match parse(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    state.lock().webhook_url = request.url.clone();
    Json(json!({ "url": request.url })).into_response()
}

/// Performs Meta's subscription handshake against the webhook URL:
/// `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`, expecting the challenge back.
async fn verify_webhook(State(state): State<Arc<SimState>>) -> Response {
    let Some(url) = state.lock().webhook_url.clone() else {
        return bad_request("no webhook URL is set");
    };
    let challenge = rand::thread_rng()
        .gen_range(1_000_000_000u64..2_000_000_000)
        .to_string();
    let response = state
        .http
        .get(&url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", state.config.verify_token.as_str()),
            ("hub.challenge", challenge.as_str()),
        ])
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Json(json!({
                "verified": status == 200 && body == challenge,
                "status": status,
                "body": body,
            }))
            .into_response()
        }
        Err(error) => Json(json!({"verified": false, "error": error.to_string()})).into_response(),
    }
}

/// `{"wa_id":"16505551234","reads":false}`: that customer receives messages but never opens them
/// (their messages stop at `delivered`).
async fn set_reads(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct SetReads {
        wa_id: String,
        reads: bool,
    }
    let request: SetReads = match parse(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let Ok(wa_id) = parse_recipient(&request.wa_id) else {
        return bad_request(format!(
            "'wa_id' is not a plausible phone number: {}",
            request.wa_id
        ));
    };
    let mut inner = state.lock();
    if request.reads {
        inner.non_readers.remove(&wa_id);
    } else {
        inner.non_readers.insert(wa_id.clone());
    }
    Json(json!({"wa_id": wa_id, "reads": request.reads})).into_response()
}

/// Delivers scheduled webhooks now instead of at their due time (see [`webhooks::deliver_now`]):
/// every one by default, or with `{"due_only":true}` only those already due. Answers once every
/// POST has been answered: `{"events":N,"posts":N,"statuses":[200,…]}` (`null`: never answered).
async fn deliver_webhooks(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Deliver {
        #[serde(default)]
        due_only: bool,
    }
    let request: Deliver = if body.iter().all(u8::is_ascii_whitespace) {
        Deliver::default()
    } else {
        match parse(&body) {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        }
    };
    let which = if request.due_only {
        Take::Due
    } else {
        Take::Everything
    };
    Json(webhooks::deliver_now(&state, which).await).into_response()
}
