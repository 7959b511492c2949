//! Meta's webhook POSTs, turned into domain events — the inbound edge of the pipeline.
//!
//! The receiver (an axum handler) checks the signature on the raw bytes first, then parses, then
//! stores every event durably before answering 200 (DESIGN.md guarantees 2 and 4):
//!
//! - `signature`: [`verify_signature`] — `X-Hub-Signature-256`, HMAC-SHA256 keyed by the app secret.
//! - `payload`: [`parse`] — the envelope into [`WebhookEvent`]s: status updates of our messages
//!   (carrying the record Id echoed from `biz_opaque_callback_data`) and inbound customer messages
//!   (which feed the window mirror), each with a [`WebhookEvent::dedupe_key`] because Meta delivers
//!   some updates twice; and [`RejectedEvent`]s, items refused with a [`RejectReason`] (values
//!   Salesforce would refuse are stopped here), which the receiver dead-letters.
//! - `lenient`: [`repair_body`] — lone UTF-16 surrogate escapes and non-UTF-8 bytes become U+FFFD
//!   instead of refusing the whole POST.

mod lenient;
mod payload;
mod signature;

pub use lenient::repair as repair_body;
pub use payload::{
    echo, fit_salesforce, parse, parse_received, salesforce_length, InboundKind, InboundMediaKind,
    InboundMessage, ParsedWebhook, PayloadError, RejectReason, RejectedEvent, StatusError,
    StatusUpdate, WebhookEvent, ECHO_CHARS, MAX_AHEAD, MAX_BUSINESS_NUMBER_CHARS, MAX_WAMID_CHARS,
    MAX_WA_ID_CHARS, MILLISECONDS_FROM,
};
pub use signature::verify_signature;
pub mod server;
