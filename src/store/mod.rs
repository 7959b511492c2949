//! The local SQLite store: what sfwa must not forget across a crash.
//!
//! Every guarantee in `DESIGN.md` that survives a restart lives here:
//! - [`journal`] — one row per outbound record, committed *before* the HTTP send, so a message is never
//!   sent twice (guarantee 1); statuses from webhooks only move it forward (guarantee 3).
//! - [`outbox`] — write-backs to Salesforce, coalesced per record until Salesforce confirms them
//!   (guarantees 2 and 5); also inbound creates, as upserts keyed by an external id.
//! - [`inbound`] — the inbound mirror, the session window's source of truth.
//! - [`identity`] — who the customer is per business number (phone, BSUID, parent BSUID), merged
//!   and re-keyed; the window is a column of the person.
//! - [`consent`] — whether a customer takes marketing messages from a number (STOP / START,
//!   Meta's `user_preferences`, 131050), per person.
//! - [`media`] — customers' files waiting to be copied into Salesforce Files (a durable queue).
//! - [`templates`] — the account's template catalog, and the messages waiting for a paused template.
//! - [`uploaded_media`] — the WhatsApp media ids of Salesforce Files sfwa uploaded, per business
//!   number, so a file is uploaded once in 29 days (`pipeline::media_upload`).
//! - [`waiting`] — re-engagement templates sent per customer and the messages waiting for the
//!   customer's reply (`pipeline::reengage`).
//! - [`dedupe`] — webhook items already processed, so Meta's redeliveries are no-ops (a status of
//!   a message in the journal is remembered on its row instead: [`journal::apply_status`]).
//! - [`webhook_rejects`] — webhook events refused at the edge (the dead letter of the receiver).
//! - [`cursors`] — named positions in remote streams (a CometD replay id).
//! - [`checkpoint`] — copying the write-ahead log into the file on a thread of its own, so no
//!   commit waits for it.
//! - [`db`] — opening the file (WAL, `busy_timeout`, foreign keys), embedded versioned migrations, and
//!   [`Store`], the async wrapper: one writer thread group-committing concurrent writes (one fsync
//!   per batch, each caller answered after the commit; lingering a few ms for more while a send
//!   backlog drains, [`db::Linger`]), reads on their own connections — a read by key right on the
//!   caller's thread when one is free ([`Store::lookup`]), others on blocking threads.
//!
//! The functions in each module take a `&rusqlite::Connection` rather than a [`Store`], so a caller
//! composes several in one transaction: a webhook batch is journal status (deduplicated on the row) + outbox
//! enqueue + dedupe + inbound mirror, durable together before the HTTP 200.
//!
//! Timestamps are stored as unix milliseconds (UTC) in INTEGER columns everywhere: they compare and
//! index as numbers, and the conversion lives in one place ([`db::to_millis`] / [`db::from_millis`]).

pub mod checkpoint;
pub mod consent;
pub mod cursors;
pub mod db;
pub mod dedupe;
pub mod error;
pub mod identity;
pub mod inbound;
pub mod journal;
pub mod media;
pub mod outbox;
pub mod templates;
pub mod uploaded_media;
pub mod waiting;
pub mod webhook_rejects;

pub use db::{Linger, Store};
pub use error::StoreError;
