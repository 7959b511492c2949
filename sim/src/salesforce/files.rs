//! Salesforce Files, as far as an integration that saves files on records needs them:
//! `POST sobjects/ContentVersion` with the file as base64 `VersionData` (JSON, not multipart),
//! linked by `FirstPublishLocationId`, → 201 `{id, success, errors}`; `GET
//! sobjects/ContentVersion/{Id}/VersionData` → the bytes; the versions are queryable (`SELECT Id,
//! Title, PathOnClient, FirstPublishLocationId, ContentSize FROM ContentVersion WHERE …`), with
//! `VersionData` read as its URL, as Salesforce renders it.
//!
//! Limits as documented: a JSON (non-multipart) body carries at most 37.5 MB of base64 and a
//! REST request at most 50 MB. The refusals' wording is the simulator's best reading of
//! Salesforce's (error codes `STRING_TOO_LONG` and `JSON_PARSER_ERROR`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use super::flows::{after_commit, Written};
use super::org::Transaction;
use super::rest::{api_error, json_object, not_found, write_error_response};
use super::schema::ObjectDef;
use super::OrgState;

/// The most base64 a non-multipart request may carry for a blob field.
pub const MAX_BASE64_BYTES: usize = 37_500_000;

/// The most a REST request body may be (50 MB).
pub const MAX_REQUEST_BYTES: usize = 50 * 1024 * 1024;

/// `POST sobjects/ContentVersion` (JSON): checks the sizes and the record it goes on, stores the
/// version (with the platform's fields) and its bytes.
pub fn create_version(org: &OrgState, def: &ObjectDef, version: &str, body: &[u8]) -> Response {
    if body.len() > MAX_REQUEST_BYTES {
        return api_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Maximum size of request reached. Maximum size of request is {MAX_REQUEST_BYTES} bytes."),
        );
    }
    let mut input = match json_object(body) {
        Ok(input) => input,
        Err(response) => return *response,
    };
    let data = match input.remove("VersionData") {
        Some(Value::String(data)) => data,
        _ => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [VersionData]",
            )
        }
    };
    if data.len() > MAX_BASE64_BYTES {
        return api_error(
            StatusCode::BAD_REQUEST,
            "STRING_TOO_LONG",
            &format!("Version Data: data value too large: {} bytes of base64 (max length={MAX_BASE64_BYTES}); use a multipart request", data.len()),
        );
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of base64 from VALUE_STRING value: not valid base64",
        );
    };
    if let Some(response) = check_location(org, &input) {
        return response;
    }
    store(org, def, version, &input, bytes)
}

/// `FirstPublishLocationId` must name an existing record.
fn check_location(org: &OrgState, input: &serde_json::Map<String, Value>) -> Option<Response> {
    let location = input
        .get("FirstPublishLocationId")
        .and_then(Value::as_str)?;
    let guard = org.org();
    let exists = guard
        .object_of(location)
        .is_some_and(|object| guard.get(&object.name, location).is_ok());
    (!exists).then(|| {
        api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_CROSS_REFERENCE_KEY",
            &format!("invalid cross reference id: {location}"),
        )
    })
}

fn store(
    org: &OrgState,
    def: &ObjectDef,
    version: &str,
    input: &serde_json::Map<String, Value>,
    bytes: Vec<u8>,
) -> Response {
    let now = org.clock.now();
    let mut guard = org.org();
    let id = match guard.insert(def, input, now, &mut Transaction::default()) {
        Ok(id) => id,
        Err(error) => return write_error_response(error),
    };
    let mut record = match guard.get(&def.name, &id) {
        Ok(record) => record.clone(),
        Err(_) => return not_found(),
    };
    let extension = record
        .get("PathOnClient")
        .and_then(Value::as_str)
        .and_then(|path| path.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    record.insert("ContentSize".into(), json!(bytes.len()));
    record.insert("FileExtension".into(), json!(extension));
    record.insert("ContentDocumentId".into(), json!(guard.new_id("069")));
    record.insert(
        "VersionData".into(),
        json!(format!(
            "/services/data/{version}/sobjects/ContentVersion/{id}/VersionData"
        )),
    );
    guard.seed_system_record(&def.name, record);
    drop(guard);
    org.files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), bytes.into());
    after_commit(org, def, &[Written::created(id.clone())]);
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response()
}

/// `GET sobjects/ContentVersion/{Id}/VersionData`: the file's bytes (any other blob path: 404).
pub async fn version_data(
    State(org): State<Arc<OrgState>>,
    Path((_, object, id, field)): Path<(String, String, String, String)>,
) -> Response {
    if !object.eq_ignore_ascii_case("ContentVersion") || !field.eq_ignore_ascii_case("VersionData")
    {
        return not_found();
    }
    let bytes = org
        .files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned();
    match bytes {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        None => not_found(),
    }
}
