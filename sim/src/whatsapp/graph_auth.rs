//! The checks every Graph endpoint makes before anything else: the version, the system-user
//! token, and (for phone-number endpoints) that the number is the account's. Shared by
//! `graph_api`, `number_api`, `subscriptions` and the media and template endpoints.

use std::collections::HashMap;

use axum::http::{header::AUTHORIZATION, HeaderMap};

use super::graph_error::GraphError;
use super::state::SimState;
use super::versions::answering_version;

/// The token a Graph call presents: a bearer header or an `access_token` query parameter.
pub fn presented_token<'r>(
    headers: &'r HeaderMap,
    query: &'r HashMap<String, String>,
) -> Option<&'r str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| query.get("access_token").map(String::as_str))
}

/// Version and system-user token checks shared by every Graph endpoint but the app's own.
pub fn check_version_and_token(
    state: &SimState,
    version: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), GraphError> {
    answering_version(version, state.clock.now())?;
    let valid = presented_token(headers, query).is_some_and(|token| {
        subtle::ConstantTimeEq::ct_eq(token.as_bytes(), state.config.access_token.as_bytes()).into()
    });
    if !valid {
        return Err(GraphError::invalid_token());
    }
    if state.lock().faults.token_expired {
        return Err(GraphError::expired_token(state.clock.now()));
    }
    Ok(())
}

/// Version, token and object checks of the phone-number endpoints.
pub fn check_access(
    state: &SimState,
    version: &str,
    phone_number_id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    method: &str,
) -> Result<(), GraphError> {
    check_version_and_token(state, version, headers, query)?;
    if state.numbers.display_of(phone_number_id).is_none() {
        return Err(GraphError::unknown_object(method, phone_number_id));
    }
    Ok(())
}
