//! `POST /services/data/vNN.N/composite`: up to [`MAX_SUBREQUESTS`] subrequests, of which at most
//! [`MAX_BATCH_OPERATIONS`] are sObject Collections or query operations, answered in one response
//! and charged as **one** API call (the composite request goes through `rest`'s gate like any
//! call: session, faults, usage under the endpoint `POST composite`; its subrequests do not).
//!
//! Each subrequest is dispatched to the same handler as the standalone endpoint
//! ([`rest::endpoints`]) and answered as
//! `{"body":…,"httpHeaders":{},"httpStatusCode":…,"referenceId":…}`, in order. With
//! `allOrNone: false` each subrequest succeeds or fails on its own. `allOrNone: true` (rolling back
//! every subrequest when one fails) is **not** simulated: it is refused with a 400 naming it, so a
//! client relying on it finds out at once rather than getting writes a real org would roll back.
//! Reference expressions (`@{ref.id}`) are not resolved either: sfwa never chains subrequests.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::rest::{self, api_error};
use super::OrgState;

/// Subrequests one composite request may carry.
pub const MAX_SUBREQUESTS: usize = 25;
/// Of those, sObject Collections or query operations.
pub const MAX_BATCH_OPERATIONS: usize = 5;

/// The composite route, to be put behind `rest`'s gate ([`rest::router`]). A composite request
/// carries up to 5 collections of 200 records, over axum's 2 MB default body limit; Salesforce's
/// REST request limit is the one that applies.
pub fn router() -> Router<Arc<OrgState>> {
    Router::new().route(
        "/services/data/{version}/composite",
        axum::routing::post(handle).layer(axum::extract::DefaultBodyLimit::max(
            super::files::MAX_REQUEST_BYTES + 1,
        )),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompositeBody {
    #[serde(default)]
    all_or_none: bool,
    composite_request: Vec<Subrequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subrequest {
    method: String,
    url: String,
    reference_id: String,
    #[serde(default)]
    body: Option<Value>,
}

impl Subrequest {
    /// Collections (`…/composite/sobjects…`) and queries count against the 5.
    fn is_batch_operation(&self) -> bool {
        let path = self.url.split('?').next().unwrap_or_default();
        let rest: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).skip(3).collect();
        matches!(
            rest.as_slice(),
            ["composite", "sobjects", ..] | ["query", ..] | ["queryAll", ..]
        )
    }
}

async fn handle(State(org): State<Arc<OrgState>>, body: Bytes) -> Response {
    let parsed: CompositeBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(error) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                &format!("Unexpected character: {error}"),
            )
        }
    };
    if let Err(refusal) = check(&parsed) {
        return *refusal;
    }
    let endpoints = rest::endpoints().with_state(org);
    let mut answers = Vec::with_capacity(parsed.composite_request.len());
    for sub in parsed.composite_request {
        let (status, body) = dispatch(&endpoints, &sub).await;
        answers.push(json!({
            "body": body,
            "httpHeaders": {},
            "httpStatusCode": status.as_u16(),
            "referenceId": sub.reference_id,
        }));
    }
    Json(json!({ "compositeResponse": answers })).into_response()
}

/// The request-level refusals: too many subrequests or batch operations, a reference id reused
/// or not starting with a letter, `allOrNone: true` (not simulated, see the module docs).
fn check(body: &CompositeBody) -> Result<(), Box<Response>> {
    let refuse = |code: &str, message: &str| {
        Err(Box::new(api_error(StatusCode::BAD_REQUEST, code, message)))
    };
    let subrequests = &body.composite_request;
    if subrequests.is_empty() {
        return refuse(
            "INVALID_REQUEST",
            "No subrequests were found in the composite request",
        );
    }
    if subrequests.len() > MAX_SUBREQUESTS {
        return refuse(
            "LIMIT_EXCEEDED",
            &format!("A composite request can contain at most {MAX_SUBREQUESTS} subrequests"),
        );
    }
    let batch = subrequests
        .iter()
        .filter(|s| s.is_batch_operation())
        .count();
    if batch > MAX_BATCH_OPERATIONS {
        return refuse(
            "LIMIT_EXCEEDED",
            &format!(
                "A composite request can contain at most {MAX_BATCH_OPERATIONS} sObject \
                 Collections or query operations; it has {batch}"
            ),
        );
    }
    let mut seen = HashSet::new();
    for sub in subrequests {
        let valid = sub
            .reference_id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && sub
                .reference_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || !seen.insert(sub.reference_id.as_str()) {
            return refuse(
                "INVALID_REQUEST",
                &format!("Invalid or duplicate referenceId: {}", sub.reference_id),
            );
        }
    }
    if body.all_or_none {
        return refuse(
            "INVALID_REQUEST",
            "allOrNone true is not supported by this simulator (only allOrNone false)",
        );
    }
    Ok(())
}

/// One subrequest through the standalone endpoint's handler: its status and its JSON body
/// (`null` when it has none, as a 204 has not).
async fn dispatch(endpoints: &Router, sub: &Subrequest) -> (StatusCode, Value) {
    let Ok(method) = Method::from_bytes(sub.method.as_bytes()) else {
        return error_answer(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "Unknown method");
    };
    if !sub.url.starts_with("/services/data/") {
        return error_answer(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The subrequest url must start with /services/data/",
        );
    }
    let body = sub
        .body
        .as_ref()
        .map(|b| Body::from(b.to_string()))
        .unwrap_or_else(Body::empty);
    let request = Request::builder()
        .method(method)
        .uri(&sub.url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    let Ok(request) = request else {
        return error_answer(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "Invalid url");
    };
    let Ok(response) = endpoints.clone().oneshot(request).await;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

fn error_answer(status: StatusCode, error_code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!([{"message": message, "errorCode": error_code}]),
    )
}
