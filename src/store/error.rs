//! The store's one error type: each variant says what failed and what the operator can do about it.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use crate::domain::status::MessageStatus;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the store directory {path}: {source}; check the path and its permissions"
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot open the store file {path}: {source}; check that it is an sfwa store and that the directory is writable")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("database is locked by another process: {0}; stop the other process or give this sfwa its own store file")]
    Locked(#[source] rusqlite::Error),

    #[error("store file was written by a newer sfwa (schema {found} > {supported}); run that version or a newer one, or point this one at another store file")]
    NewerSchema { found: i64, supported: i64 },

    #[error("store migration {version} ({name}) failed: {source}; the store is unchanged at schema {from}")]
    Migration {
        version: i64,
        name: &'static str,
        from: i64,
        #[source]
        source: rusqlite::Error,
    },

    #[error("no journal row for record {record_id}; claim it first")]
    NotJournaled { record_id: String },

    #[error("record {record_id} is {state}, not claimed; only a claimed record may start sending")]
    NotClaimed { record_id: String, state: String },

    #[error("'{0}' is not a status a webhook reports (expected sent, delivered, read or failed)")]
    NotAWebhookStatus(MessageStatus),

    #[error("outbox fields for {record_key} are not valid JSON: {source}")]
    Json {
        record_key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("store query failed: {0}")]
    Sqlite(#[source] rusqlite::Error),

    #[error("store worker thread failed: {0}")]
    Worker(String),
}

impl From<rusqlite::Error> for StoreError {
    /// Busy/locked errors surface only after `busy_timeout` expired: another process holds the file.
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked(error),
            _ => StoreError::Sqlite(error),
        }
    }
}
