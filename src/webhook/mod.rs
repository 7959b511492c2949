//! Meta's webhook POSTs, turned into domain events — the inbound edge of the pipeline.
//!
//! The receiver (an axum handler) checks the signature on the raw bytes first, then parses, then
//! hands the events to [`crate::pipeline::webhook_apply`], which stores every one durably before
//! the receiver answers 200 (DESIGN.md guarantees 2 and 4). Nothing here touches the journal, the
//! mirror or the outbox:
//!
//! - `signature`: [`verify_signature`] — `X-Hub-Signature-256`, HMAC-SHA256 keyed by the app secret.
//! - `payload`: [`parse`] — the envelope into [`WebhookEvent`]s (domain types, see
//!   [`crate::domain::webhook_event`]): status updates of our messages (carrying the record Id
//!   echoed from `biz_opaque_callback_data`) and inbound customer messages (which feed the window
//!   mirror), each with a [`WebhookEvent::dedupe_key`] because Meta delivers some updates twice;
//!   and [`RejectedEvent`]s, items refused with a [`RejectReason`] (values Salesforce would refuse
//!   are stopped here), which the pipeline dead-letters.
//! - `kinds`: what each inbound message is (every type Meta documents in 2026, anything else
//!   kept as `Other` with its content summarised) and its click-to-WhatsApp `referral`;
//!   `read`: the key readers and the [`RejectReason`]-carrying refusal both share.
//! - `user_preferences`: Meta's marketing stop / resume items, as preference events.
//! - `lenient`: [`repair_body`] — lone UTF-16 surrogate escapes and non-UTF-8 bytes become U+FFFD
//!   instead of refusing the whole POST.
//! - `template_updates`: the template lifecycle fields (status, category, quality) for the catalog.
//! - `typed`: the common POSTs (status updates, customers' plain text messages) read into typed
//!   values borrowed from the body, without a JSON tree; anything else (or anything it is unsure
//!   of) goes to `payload`'s reader of every shape.
//! - [`server`]: the routes, the status codes and the HTTP layer's metrics; [`listener`]: the
//!   port's HTTP/1.1 connections (a header timeout that also ends idle keep-alive connections, and
//!   a soft cap on the connections kept open).
//!
//! [`WebhookEvent`]: crate::domain::webhook_event::WebhookEvent
//! [`WebhookEvent::dedupe_key`]: crate::domain::webhook_event::WebhookEvent::dedupe_key
//! [`RejectedEvent`]: crate::domain::webhook_event::RejectedEvent
//! [`RejectReason`]: crate::domain::webhook_event::RejectReason

mod kinds;
mod lenient;
mod payload;
mod read;
mod signature;
mod template_updates;
mod typed;
mod user_preferences;

pub use lenient::repair as repair_body;
pub use payload::{
    parse, parse_received, parse_served, PayloadError, MAX_AHEAD, MAX_BUSINESS_NUMBER_CHARS,
    MAX_WAMID_CHARS, MAX_WA_ID_CHARS, MILLISECONDS_FROM,
};
pub use signature::verify_signature;
pub mod listener;
pub mod server;
