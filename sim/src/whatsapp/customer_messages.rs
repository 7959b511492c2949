//! What simulated customers do on their own: write to the business (every `/__sim/inbound` ends
//! here), answer a `request_contact_info` by sharing their number, change their number or their
//! BSUID (Meta's `system` messages). Each becomes an inbound webhook shaped for who the customer is
//! (`webhook_payloads::sender_identity`), on the `messages` field — or `standby` for a customer
//! handed to Meta's business agent.
//!
//! Control routes: `POST /__sim/customers/share_phone`, `/__sim/customers/change_number`,
//! `/__sim/customers/change_user_id` (documented in `docs/simulators.md`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::customers::is_user_id;
use super::ids::{new_wamid, WamidDirection};
use super::send_request::parse_recipient;
use super::state::{Inner, SimState};
use super::webhook_payloads::{inbound_value, sender_identity};
use super::webhooks::WebhookEvent;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/__sim/customers/share_phone", post(share_phone))
        .route("/__sim/customers/change_number", post(change_number))
        .route("/__sim/customers/change_user_id", post(change_user_id))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// The number of the customer a control request names: a phone number (a customer registered on
/// first sight, as Meta knows every WhatsApp user) or the BSUID / parent BSUID of a known one.
pub fn resolve_customer(inner: &mut Inner, key: &str) -> Result<String, String> {
    if is_user_id(key) {
        return inner
            .customers
            .wa_id_of(key)
            .map(str::to_owned)
            .ok_or_else(|| format!("no customer has the business-scoped user id {key}"));
    }
    let wa_id = parse_recipient(key)
        .map_err(|_| format!("not a plausible phone number nor a BSUID: {key}"))?;
    inner.customers.register(&wa_id);
    Ok(wa_id)
}

/// A message a customer sends, before it is addressed.
pub struct CustomerMessage {
    pub phone_number_id: String,
    pub at: DateTime<Utc>,
    pub message_type: String,
    /// Fields of `messages[]` besides the sender's, `id`, `timestamp` and `type`.
    pub fields: Map<String, Value>,
    /// Overrides the customer's profile name for this message.
    pub profile_name: Option<String>,
    /// `false` for `system` messages: Meta sends them without `contacts[]`.
    pub with_contact: bool,
    /// Whether it opens (refreshes) the customer-service window.
    pub opens_window: bool,
}

/// Schedules the webhook of `message` from the customer with number `wa_id` (registered) and
/// returns what the control API answers: the wamid, the identity used and the field.
pub fn emit(state: &SimState, wa_id: &str, message: CustomerMessage) -> Value {
    let mut inner = state.lock();
    let customer = inner.customers.register(wa_id).clone();
    let shown = customer.phone_shown(&message.phone_number_id, message.at);
    let profile_name = message
        .profile_name
        .as_deref()
        .unwrap_or(customer.profile_name());
    let (sender, contact) = sender_identity(&customer, profile_name, shown);
    // Real wamids carry the sender's number; a withheld number must not leak through it.
    let wamid_key = if shown {
        &customer.wa_id
    } else {
        &customer.user_id
    };
    let wamid = new_wamid(wamid_key, WamidDirection::Inbound);
    let mut body = sender;
    body.insert("id".to_owned(), json!(wamid));
    body.insert(
        "timestamp".to_owned(),
        json!(message.at.timestamp().to_string()),
    );
    body.insert("type".to_owned(), json!(message.message_type));
    body.extend(message.fields);
    let value = inbound_value(
        &state.numbers,
        &message.phone_number_id,
        message.with_contact.then_some(contact),
        Value::Object(body),
    );
    inner.stats.inbound_messages += 1;
    if message.opens_window {
        inner.record_inbound(&message.phone_number_id, wa_id, message.at);
    }
    let field = if customer.standby {
        "standby"
    } else {
        "messages"
    };
    drop(inner);
    state
        .outbox
        .schedule(Duration::ZERO, WebhookEvent::Inbound { field, value });
    json!({
        "wamid": wamid,
        "wa_id": customer.wa_id,
        "user_id": customer.user_id,
        "phone_shown": shown,
        "field": field,
        "timestamp": message.at.timestamp().to_string(),
    })
}

/// Who and where, shared by the customer-action requests.
#[derive(Debug, Deserialize)]
struct Who {
    /// The customer: phone number or BSUID.
    customer: String,
    /// Default: the account's main number.
    phone_number_id: Option<String>,
}

fn phone_number_id(state: &SimState, given: Option<String>) -> Result<String, String> {
    let id = given.unwrap_or_else(|| state.config.phone_number_id.clone());
    match state.numbers.display_of(&id) {
        Some(_) => Ok(id),
        None => Err(format!("unknown phone_number_id {id}")),
    }
}

fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|error| format!("invalid JSON body: {error}"))
}

/// `{"customer":"US.…"}`: the customer answers a `request_contact_info` message by sharing their
/// number — a `contacts` message with `origin: "contact_request"` carrying their phone.
async fn share_phone(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct SharePhone {
        #[serde(flatten)]
        who: Who,
        /// The wamid of the business's request (makes the answer a reply to it).
        context_message_id: Option<String>,
    }
    let request: SharePhone = match read(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(error),
    };
    let (wa_id, phone_number_id) = match who(&state, request.who) {
        Ok(found) => found,
        Err(error) => return bad_request(error),
    };
    let name = state
        .lock()
        .customers
        .get(&wa_id)
        .map(|customer| customer.profile_name().to_owned())
        .unwrap_or_default();
    let mut fields = Map::new();
    fields.insert("origin".to_owned(), json!("contact_request"));
    fields.insert(
        "contacts".to_owned(),
        json!([{
            "name": {"formatted_name": name, "first_name": name},
            "phones": [{"phone": format!("+{wa_id}"), "wa_id": wa_id, "type": "MOBILE"}],
        }]),
    );
    if let Some(context_id) = request.context_message_id {
        let display = state.numbers.display_of(&phone_number_id);
        fields.insert(
            "context".to_owned(),
            json!({"from": display, "id": context_id}),
        );
    }
    let message = CustomerMessage {
        phone_number_id,
        at: state.clock.now(),
        message_type: "contacts".to_owned(),
        fields,
        profile_name: None,
        with_contact: true,
        opens_window: true,
    };
    Json(emit(&state, &wa_id, message)).into_response()
}

fn who(state: &SimState, who: Who) -> Result<(String, String), String> {
    let phone_number_id = phone_number_id(state, who.phone_number_id)?;
    let wa_id = resolve_customer(&mut state.lock(), &who.customer)?;
    Ok((wa_id, phone_number_id))
}

/// A new BSUID to give: `true` (derived), a BSUID, or `false`/missing (keep).
fn new_user_id(given: &Value) -> Result<Option<Option<String>>, String> {
    match given {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some(None)),
        Value::String(id) if is_user_id(id) => Ok(Some(Some(id.clone()))),
        other => Err(format!(
            "new_user_id must be true, false or a BSUID, not {other}"
        )),
    }
}

/// `{"customer":"16505551234","new_wa_id":"16505559999","new_user_id":true}`: the customer moves
/// to a new number. Their window, username and history follow them; Meta issues a new BSUID with
/// a new number (`new_user_id`, default `true`; `false` keeps it). Emits `user_changed_number`
/// (and `user_changed_user_id` when the BSUID changes) to `phone_number_id`.
async fn change_number(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct ChangeNumber {
        #[serde(flatten)]
        who: Who,
        new_wa_id: String,
        #[serde(default = "yes")]
        new_user_id: Value,
    }
    fn yes() -> Value {
        Value::Bool(true)
    }
    let request: ChangeNumber = match read(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(error),
    };
    let changes = new_user_id(&request.new_user_id).and_then(|user_id| {
        let new = parse_recipient(&request.new_wa_id)
            .map_err(|_| format!("new_wa_id is not a plausible number: {}", request.new_wa_id))?;
        let (old, phone_number_id) = who(&state, request.who)?;
        Ok((old, new, user_id, phone_number_id))
    });
    let (old, new, user_id, phone_number_id) = match changes {
        Ok(changes) => changes,
        Err(error) => return bad_request(error),
    };
    let name = {
        let mut inner = state.lock();
        let Some(customer) = inner.customers.change_number(&old, &new) else {
            return bad_request(format!("{new} already belongs to another customer"));
        };
        let name = customer.profile_name().to_owned();
        inner.move_windows(&old, &new);
        name
    };
    let at = state.clock.now();
    let mut fields = Map::new();
    fields.insert(
        "system".to_owned(),
        json!({
            "body": format!("User {name} changed from {old} to {new}"),
            "wa_id": new,
            "type": "user_changed_number",
        }),
    );
    let mut answers = vec![emit_system(
        &state,
        &new,
        &phone_number_id,
        at,
        fields,
        ("from", &old),
    )];
    if let Some(user_id) = user_id {
        let (previous, current) = state.lock().customers.change_user_id(&new, user_id);
        answers.push(user_id_changed(
            &state,
            &new,
            &phone_number_id,
            at,
            &previous,
            &current,
        ));
    }
    Json(json!({"messages": answers})).into_response()
}

/// A `system` message: no `contacts[]`; `sender` is the key and value naming who the change is
/// about (`("from", old number)`, or `("from_user_id", previous BSUID)`).
fn emit_system(
    state: &SimState,
    wa_id: &str,
    phone_number_id: &str,
    at: DateTime<Utc>,
    mut fields: Map<String, Value>,
    sender: (&str, &str),
) -> Value {
    fields.insert(sender.0.to_owned(), json!(sender.1));
    let message = CustomerMessage {
        phone_number_id: phone_number_id.to_owned(),
        at,
        message_type: "system".to_owned(),
        fields,
        profile_name: None,
        with_contact: false,
        // A change of number is no message from the customer: the window stays as it was.
        opens_window: false,
    };
    emit(state, wa_id, message)
}

fn user_id_changed(
    state: &SimState,
    wa_id: &str,
    phone_number_id: &str,
    at: DateTime<Utc>,
    previous: &str,
    current: &str,
) -> Value {
    let name = state
        .lock()
        .customers
        .get(wa_id)
        .map(|customer| customer.profile_name().to_owned())
        .unwrap_or_default();
    let mut fields = Map::new();
    fields.insert(
        "system".to_owned(),
        json!({
            "body": format!("User {name} changed their business-scoped user ID"),
            "previous_user_id": previous,
            "user_id": current,
            "type": "user_changed_user_id",
        }),
    );
    // Sent under the id the business knew them by.
    emit_system(
        state,
        wa_id,
        phone_number_id,
        at,
        fields,
        ("from_user_id", previous),
    )
}

/// `{"customer":"US.…","new_user_id":"US.…"}` (or `true`/missing: a fresh derived one): the
/// customer's BSUID changes; emits `user_changed_user_id`.
async fn change_user_id(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct ChangeUserId {
        #[serde(flatten)]
        who: Who,
        #[serde(default)]
        new_user_id: Option<String>,
    }
    let request: ChangeUserId = match read(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(error),
    };
    if let Some(id) = request.new_user_id.as_deref().filter(|id| !is_user_id(id)) {
        return bad_request(format!("new_user_id is not a BSUID: {id}"));
    }
    let (wa_id, phone_number_id) = match who(&state, request.who) {
        Ok(found) => found,
        Err(error) => return bad_request(error),
    };
    let (previous, current) = state
        .lock()
        .customers
        .change_user_id(&wa_id, request.new_user_id);
    let at = state.clock.now();
    Json(user_id_changed(
        &state,
        &wa_id,
        &phone_number_id,
        at,
        &previous,
        &current,
    ))
    .into_response()
}
