//! The Salesforce side of sfwa: OAuth (JWT bearer, client credentials, refresh token) and the REST
//! calls the pipeline needs — SOQL queries with pagination, SOSL searches, sObject Collections for batched
//! write-backs and inbound creates (≤ 200 records per collection, up to 5 collections per
//! composite call), and describe for `sfwa doctor`.
//!
//! Every call goes through one [`SalesforceClient`]: it logs in lazily, caches the access token for
//! all clones (Salesforce tokens carry no expiry; a 401 `INVALID_SESSION_ID` is the only signal, so
//! the client re-authenticates once and retries once), reads `Sforce-Limit-Info` on every response
//! and counts its calls — the daily API allowance is what an org runs out of first.
//!
//! Errors come back classified by what the caller must do ([`SalesforceError`]); a collection call
//! that succeeds as a whole still carries per-record failures, each with a [`Disposition`]
//! (retry, drop, or surface to an admin).
//!
//! - [`auth`] — the three OAuth grants against `{login_url}/services/oauth2/token`.
//! - [`client`] — the shared client: session cache, request/retry loop, query, describe.
//! - [`cometd`] — the Streaming API subscriber (CometD long-polling, replay ids, recovery rules):
//!   platform-event intake without REST calls; [`event_fields`] keeps each event's payload
//!   compactly (a backlog's events arrive in one answer), and [`json_array`] reads that answer
//!   element by element as it arrives.
//! - [`contract`] — the fields of `WhatsApp_Message__c` sfwa reads and writes, said once.
//! - [`describe`] — object describe, for checking the deployed package.
//! - [`collections`] — create / update / upsert in chunks of 200 and per-record results.
//! - [`composite`] — up to 5 collections or queries in one `POST composite`, one API call.
//! - [`files`] — Salesforce Files: a customer's file as a ContentVersion on its message record.
//! - [`content_versions`] — a File a rep picked to send: its latest version and its bytes.
//! - [`error`] — [`SalesforceError`] and the hints given for refused credentials.
//! - [`rows`] — the message rows intake reads, converted once into the domain's
//!   [`QueuedRecord`](crate::domain::message::QueuedRecord).
//! - [`soql`] — safe SOQL literals (strings, datetimes, Id lists).
//! - [`sosl`] — safe SOSL search terms and SOSL's limits, for [`SalesforceClient::search`].
//! - [`usage`] — the `Sforce-Limit-Info` header.
//! - [`limits`] — `GET limits`, for allocations that header does not carry
//!   (`DailyDeliveredPlatformEvents`).

/// The one Salesforce API version sfwa speaks, and the package's `sourceApiVersion` and metadata
/// `apiVersion`s (a contract test keeps them equal): the newest release the Streaming API (CometD)
/// is documented for — 67.0, Summer '26; 68.0 (Winter '27) documents only the Pub/Sub API for
/// events. `salesforce.api_version` overrides it for the REST calls and the CometD path.
pub const API_VERSION: &str = "67.0";

pub mod auth;
pub mod client;
pub mod collections;
pub mod cometd;
pub mod composite;
pub mod content_versions;
pub mod contract;
pub mod describe;
pub mod error;
pub mod event_fields;
pub mod files;
pub mod json_array;
pub mod limits;
pub mod rows;
pub mod soql;
pub mod sosl;
pub mod usage;

pub use auth::{Auth, Session};
pub use client::{AuthState, SalesforceClient, SalesforceConfig};
pub use collections::{
    CollectionWrite, Disposition, RecordError, RecordResult, MAX_COLLECTION_RECORDS,
};
pub use cometd::{CometdClient, CometdError, ReplayFrom, StreamEvent, OUTBOUND_EVENT_CHANNEL};
pub use composite::MAX_COMPOSITE_BATCHES;
pub use describe::{FieldDescribe, ObjectDescribe, PicklistValue};
pub use error::SalesforceError;
pub use limits::Limit;
pub use soql::{soql_datetime, soql_id_list, soql_string};
pub use usage::ApiUsage;
