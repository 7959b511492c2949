//! Salesforce Files, as far as an integration that saves files on records needs them:
//! `POST sobjects/ContentVersion` with the file as base64 `VersionData` (JSON, not multipart),
//! linked by `FirstPublishLocationId`, → 201 `{id, success, errors}`; `GET
//! sobjects/ContentVersion/{Id}/VersionData` → the bytes; the versions are queryable (`SELECT Id,
//! Title, PathOnClient, FirstPublishLocationId, ContentSize, FileExtension, FileType,
//! ContentDocumentId, IsLatest FROM ContentVersion WHERE …`), with `VersionData` read as its URL,
//! as Salesforce renders it.
//!
//! A rep's upload is the same request (the tests post it as a rep would). A create naming an
//! existing `ContentDocumentId` adds a new version to that document: it becomes the document's
//! `IsLatest` version, the older ones no longer are.
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
    let document = match input.remove("ContentDocumentId") {
        None | Some(Value::Null) => None,
        Some(Value::String(document)) => Some(existing_document(org, &document)?),
        Some(_) => {
            return Err(refused(
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of id from a value that is not a string",
            ))
        }
    };
    store(org, def, version, &input, bytes, document)
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

/// The document a new version is added to: one some version already belongs to.
fn existing_document(org: &OrgState, document: &str) -> Result<String, Refused> {
    let guard = org.org();
    let known = guard.rows("ContentVersion").find_map(|row| {
        row.get("ContentDocumentId")
            .and_then(Value::as_str)
            .filter(|id| id.get(..15) == document.get(..15))
            .map(str::to_string)
    });
    known.ok_or_else(|| {
        refused(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: {document}"),
        )
    })
}

/// Salesforce's `FileType` for an extension (`PDF`, `PNG`, `WORD_X`, …; `UNKNOWN` otherwise).
pub fn file_type(extension: Option<&str>) -> &'static str {
    match extension.unwrap_or_default() {
        "pdf" => "PDF",
        "png" => "PNG",
        "jpg" | "jpeg" => "JPG",
        "gif" => "GIF",
        "webp" => "WEBP",
        "txt" => "TEXT",
        "csv" => "CSV",
        "doc" => "WORD",
        "docx" => "WORD_X",
        "xls" => "EXCEL",
        "xlsx" => "EXCEL_X",
        "ppt" => "POWER_POINT",
        "pptx" => "POWER_POINT_X",
        "mp4" => "MP4",
        "mp3" => "MP3",
        "zip" => "ZIP",
        _ => "UNKNOWN",
    }
}

fn store(
    org: &OrgState,
    def: &ObjectDef,
    version: &str,
    input: &Map<String, Value>,
    bytes: Vec<u8>,
    document: Option<String>,
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
    record.insert("FileType".into(), json!(file_type(extension.as_deref())));
    record.insert("FileExtension".into(), json!(extension));
    let document = match document {
        Some(document) => {
            // The document's other versions are no longer its latest.
            let older: Vec<_> = guard
                .rows(&def.name)
                .filter(|row| {
                    row.get("ContentDocumentId").and_then(Value::as_str) == Some(&document)
                })
                .cloned()
                .collect();
            for mut row in older {
                row.insert("IsLatest".into(), json!(false));
                guard.seed_system_record(&def.name, row);
            }
            document
        }
        None => guard.new_id("069"),
    };
    record.insert("ContentDocumentId".into(), json!(document));
    record.insert("IsLatest".into(), json!(true));
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
