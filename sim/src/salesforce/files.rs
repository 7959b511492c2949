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

use axum::http::StatusCode;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::org::{Transaction, WriteError};
use super::schema::ObjectDef;
use super::OrgState;

/// The most base64 a non-multipart request may carry for a blob field.
pub const MAX_BASE64_BYTES: usize = 37_500_000;

/// The most a REST request body may be (50 MB).
pub const MAX_REQUEST_BYTES: usize = 50 * 1024 * 1024;

/// Why a ContentVersion was refused: a top-level REST error, or the org's DML refusal.
#[derive(Debug)]
pub enum Refused {
    Api {
        status: StatusCode,
        error_code: &'static str,
        message: String,
    },
    Write(WriteError),
}

fn refused(error_code: &'static str, message: impl Into<String>) -> Refused {
    Refused::Api {
        status: StatusCode::BAD_REQUEST,
        error_code,
        message: message.into(),
    }
}

/// `POST sobjects/ContentVersion` (JSON, already read as `input`; `body_len` is the request's
/// size): checks the sizes and the record it goes on, stores the version (with the platform's
/// fields) and its bytes; returns the new Id (the caller answers 201 and runs the after-commit).
pub fn create_version(
    org: &OrgState,
    def: &ObjectDef,
    version: &str,
    body_len: usize,
    mut input: Map<String, Value>,
) -> Result<String, Refused> {
    if body_len > MAX_REQUEST_BYTES {
        return Err(refused(
            "JSON_PARSER_ERROR",
            format!("Maximum size of request reached. Maximum size of request is {MAX_REQUEST_BYTES} bytes."),
        ));
    }
    let Some(Value::String(data)) = input.remove("VersionData") else {
        return Err(refused(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [VersionData]",
        ));
    };
    if data.len() > MAX_BASE64_BYTES {
        return Err(refused(
            "STRING_TOO_LONG",
            format!("Version Data: data value too large: {} bytes of base64 (max length={MAX_BASE64_BYTES}); use a multipart request", data.len()),
        ));
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) else {
        return Err(refused(
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of base64 from VALUE_STRING value: not valid base64",
        ));
    };
    check_location(org, &input)?;
    store(org, def, version, &input, bytes)
}

/// `FirstPublishLocationId` must name an existing record.
fn check_location(org: &OrgState, input: &Map<String, Value>) -> Result<(), Refused> {
    let Some(location) = input.get("FirstPublishLocationId").and_then(Value::as_str) else {
        return Ok(());
    };
    let guard = org.org();
    let exists = guard
        .object_of(location)
        .is_some_and(|object| guard.get(&object.name, location).is_ok());
    if exists {
        Ok(())
    } else {
        Err(refused(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: {location}"),
        ))
    }
}

fn store(
    org: &OrgState,
    def: &ObjectDef,
    version: &str,
    input: &Map<String, Value>,
    bytes: Vec<u8>,
) -> Result<String, Refused> {
    let now = org.clock.now();
    let mut guard = org.org();
    let id = guard
        .insert(def, input, now, &mut Transaction::default())
        .map_err(Refused::Write)?;
    let Ok(record) = guard.get(&def.name, &id) else {
        return Err(refused("NOT_FOUND", "the new version vanished"));
    };
    let mut record = record.clone();
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
    Ok(id)
}

/// The bytes of ContentVersion `id`, if it exists.
pub fn version_bytes(org: &OrgState, id: &str) -> Option<bytes::Bytes> {
    org.files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
}
