//! Meta's webhook POSTs, turned into domain events — the inbound edge of the pipeline.
//!
//! The receiver (an axum handler) checks the signature on the raw bytes first, then parses, then
//! stores every event durably before answering 200 (DESIGN.md guarantees 2 and 4):
//!
//! - `signature`: [`verify_signature`] — `X-Hub-Signature-256`, HMAC-SHA256 keyed by the app secret.
//! - `payload`: [`parse`] — the envelope into [`WebhookEvent`]s: status updates of our messages
//!   (carrying the record Id echoed from `biz_opaque_callback_data`) and inbound customer messages
//!   (which feed the window mirror), each with a [`WebhookEvent::dedupe_key`] because Meta delivers
//!   some updates twice.

mod payload;
mod signature;

pub use payload::{
    parse, InboundKind, InboundMediaKind, InboundMessage, ParsedWebhook, PayloadError, StatusError,
    StatusUpdate, WebhookEvent,
};
pub use signature::verify_signature;
pub mod server;
