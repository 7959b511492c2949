//! `/__sim/numbers`: the account's business numbers for tests and humans (see `numbers`).
//! - `GET /__sim/numbers`: every number with its throughput, hold and webhook override.
//! - `POST /__sim/numbers` `{"phone_number_id"?, "display_phone_number"?, "verified_name"?,
//!   "throughput_per_second"?}` → 201 with the new number (ids left out are made up).
//! - `PATCH /__sim/numbers/{id}` `{"throughput_per_second"?: n|null, "hold_error"?:
//!   368|131031|133010|null}`: only what is given changes; `null` goes back to the account's
//!   throughput, or ends the hold.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::graph_error::GraphError;
use super::numbers::SimNumber;
use super::state::SimState;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/__sim/numbers", get(list).post(add))
        .route("/__sim/numbers/{phone_number_id}", patch(change))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// A number as the control API shows it: its effective throughput included.
fn view(state: &SimState, number: &SimNumber) -> Value {
    let mut view = json!(number);
    view["throughput_per_second"] =
        json!(state.lock().limits.throughput_of(&number.phone_number_id));
    view
}

async fn list(State(state): State<Arc<SimState>>) -> Response {
    let numbers: Vec<Value> = state
        .numbers
        .all()
        .iter()
        .map(|number| view(&state, number))
        .collect();
    Json(json!({ "numbers": numbers })).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNumber {
    phone_number_id: Option<String>,
    display_phone_number: Option<String>,
    verified_name: Option<String>,
    throughput_per_second: Option<u32>,
}

/// Adds a number to the account (the Rust side: [`super::WhatsAppSim::add_number`]).
pub fn add_number(state: &SimState, new: NewNumberSpec) -> Result<SimNumber, String> {
    if new.throughput_per_second == Some(0) {
        return Err("throughput_per_second must be at least 1".to_owned());
    }
    let digits_only = |v: &str| v.chars().all(|c| c.is_ascii_digit());
    if !digits_only(&new.phone_number_id) || !digits_only(&new.display_phone_number) {
        return Err("phone_number_id and display_phone_number are digits only".to_owned());
    }
    let number = state.numbers.add(SimNumber {
        phone_number_id: new.phone_number_id,
        display_phone_number: new.display_phone_number,
        verified_name: new
            .verified_name
            .unwrap_or_else(|| state.config.verified_name.clone()),
        throughput_per_second: new.throughput_per_second,
        hold_error: None,
        webhook_override: None,
    })?;
    if let Some(rate) = new.throughput_per_second {
        state
            .lock()
            .limits
            .set_number_throughput(&number.phone_number_id, Some(rate));
    }
    Ok(number)
}

/// What a new number is given (blank ids are made up).
#[derive(Debug, Default)]
pub struct NewNumberSpec {
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub verified_name: Option<String>,
    pub throughput_per_second: Option<u32>,
}

async fn add(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let new: NewNumber = if body.is_empty() {
        NewNumber::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(new) => new,
            Err(error) => return bad_request(format!("invalid JSON body: {error}")),
        }
    };
    let spec = NewNumberSpec {
        phone_number_id: new.phone_number_id.unwrap_or_default(),
        display_phone_number: new
            .display_phone_number
            .unwrap_or_default()
            .trim_start_matches('+')
            .to_owned(),
        verified_name: new.verified_name,
        throughput_per_second: new.throughput_per_second,
    };
    match add_number(&state, spec) {
        Ok(number) => (StatusCode::CREATED, Json(view(&state, &number))).into_response(),
        Err(problem) => bad_request(problem),
    }
}

/// Sets (`Some`) or ends (`None`) a number's hold: every send from it answered with `code`.
pub fn set_hold(state: &SimState, phone_number_id: &str, code: Option<u32>) -> Result<(), String> {
    if let Some(code) = code {
        if GraphError::number_hold(code).is_none() {
            return Err(format!(
                "hold_error must be one of {:?}",
                GraphError::NUMBER_HOLD_CODES
            ));
        }
    }
    state
        .numbers
        .update(phone_number_id, |n| n.hold_error = code)
        .ok_or_else(|| format!("unknown phone_number_id {phone_number_id}"))
}

/// Grants a number its own throughput (`None`: the account's again).
pub fn set_throughput(
    state: &SimState,
    phone_number_id: &str,
    per_second: Option<u32>,
) -> Result<(), String> {
    if per_second == Some(0) {
        return Err("throughput_per_second must be at least 1".to_owned());
    }
    state
        .numbers
        .update(phone_number_id, |n| n.throughput_per_second = per_second)
        .ok_or_else(|| format!("unknown phone_number_id {phone_number_id}"))?;
    state
        .lock()
        .limits
        .set_number_throughput(phone_number_id, per_second);
    Ok(())
}

/// `null` or a whole number; `Err` for anything else.
fn optional_u32(value: &Value, name: &str) -> Result<Option<u32>, String> {
    match value {
        Value::Null => Ok(None),
        other => other
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{name} must be a whole number or null")),
    }
}

async fn change(
    State(state): State<Arc<SimState>>,
    Path(phone_number_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body must be a JSON object");
    };
    for (name, value) in &fields {
        let changed = match name.as_str() {
            "throughput_per_second" => optional_u32(value, name)
                .and_then(|rate| set_throughput(&state, &phone_number_id, rate)),
            "hold_error" => {
                optional_u32(value, name).and_then(|code| set_hold(&state, &phone_number_id, code))
            }
            other => Err(format!(
                "unknown field {other}: throughput_per_second or hold_error"
            )),
        };
        if let Err(problem) = changed {
            return bad_request(problem);
        }
    }
    match state.numbers.get(&phone_number_id) {
        Some(number) => Json(view(&state, &number)).into_response(),
        None => bad_request(format!("unknown phone_number_id {phone_number_id}")),
    }
}
