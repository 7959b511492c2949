//! The pipeline: Queued records in, WhatsApp sends out, statuses back onto the records.
//!
//! - [`stream`] — intake by platform event (CometD), with the replay id stored with the claims.
//! - [`intake`] — finds Queued records (SOQL poll; reads by Id for the stream and retries).
//! - [`claim`] — the journal claim every intake goes through (exactly once per record), and
//!   when a record is due (`Scheduled_At__c`).
//! - [`context`] — what the workers depend on: the shared [`Core`] (settings, clock, store, flush
//!   handle, reporter), and [`Intake`], [`Dispatcher`], [`WriteBack`] for each worker's own;
//!   [`Pipeline`] wires them once, for the steps that chain workers.
//! - [`dispatch`] — the send path: validate → rate limit → **window check** (at the moment of
//!   sending) → journal `Sending` → Cloud API → [`dispatch::decide`] (pure: what the result means)
//!   → one `apply` writes journal `Sent`/`Failed`/retry/wait and the write-back.
//! - [`catalog`] — the template catalog's check of a template send (exists, APPROVED, its
//!   parameters; a PAUSED template's messages wait), with the pure `judge` `sfwa plan` shares;
//!   [`catalog_sync`] fills the catalog (listing, fetch on a miss, lifecycle webhooks) and
//!   mirrors it into Salesforce `WhatsApp_Template__c` records.
//! - [`pacing`] — how fast sends go per business number, adapting to Meta's rate-limit refusals
//!   (130429 slows the number, 131056 only that customer).
//! - [`plan`] — `sfwa plan`: the dry run; every Queued record's verdict from the send path's own
//!   decisions, read-only (Salesforce queries, the store opened read-only, no send, no claim).
//! - [`record_update`] — which fields a state change writes onto `WhatsApp_Message__c`.
//! - [`webhook_apply`] — what a webhook POST said, applied in one transaction before its 200:
//!   statuses onto the journal and the outbox, inbound messages into the window mirror and
//!   [`inbound_records`], refused events dead-lettered.
//! - [`identity`] — who the customer is: what an inbound message shows (phone and BSUID merged,
//!   number and user-id changes) and where a send to an address goes now.
//! - [`inbound_records`] — the `WhatsApp_Message__c` record an inbound customer message becomes.
//! - [`media`] — customers' files (images, documents, audio, video) downloaded from Meta into
//!   Salesforce Files on their inbound record, by a worker of its own; [`media_body`] — what
//!   the record's Body says about the file.
//! - [`inbound_links`] — linking those records to the Contact / Lead holding the sender's
//!   WhatsApp user id (BSUID), else with the sender's number (one SOSL search per flush), and
//!   storing the BSUID on the record linked by phone; [`relink`] — the job that links, later,
//!   the records that matched nobody at first.
//! - [`inbound_owner`] — who owns them: the linked Case's owner (the Case of the message they
//!   follow, while open and within `salesforce.case_link_window`), the Contact's, the Lead's, or
//!   the configured queue; and their Account when no Contact gives one ([`owner_cache`]: what it
//!   remembers between flushes).
//! - [`flush`] — the one handle other workers reach the write-back worker by ("a batch is
//!   ready", "flush now and tell me when done").
//! - [`writeback`] — the outbox flush: coalesced updates and inbound upserts, ≤ 200 records per
//!   collections call.
//! - [`dead_letters`] — `sfwa dead-letters list|retry|drop`: the write-backs Salesforce refused
//!   for good, and what an operator does with them.
//! - [`jobs`] — scheduled work (reconcile poll, scheduled sends, inbound mirror, relink, retention) and
//!   the one-shot pass of `sfwa sync`.
//! - [`inbound_mirror`] — the job folding other tools' inbound records into the window mirror,
//!   reading only what Salesforce saved since its last run.
//! - [`report`] — what the pipeline reports (dispatched, flushed, stream connected, poll
//!   succeeded…) to whoever `app` passes in: the metrics and health of `observe`.
//! - [`worker`] — the loops that drive the one-step functions until shutdown.
//!
//! Every step is a function returning an outcome, so tests drive them directly without sleeping.

pub mod catalog;
pub mod catalog_cache;
pub mod catalog_sync;
pub mod claim;
pub mod consent;
pub mod context;
pub mod dead_letters;
pub mod dispatch;
pub mod flush;
pub mod identity;
pub mod inbound_links;
pub mod inbound_mirror;
pub mod inbound_owner;
pub mod inbound_records;
pub mod intake;
pub mod jobs;
pub mod lease;
pub mod media;
pub mod media_body;
pub mod media_upload;
pub mod owner_cache;
pub mod pacing;
pub mod plan;
pub mod record_update;
pub mod reengage;
pub mod relink;
pub mod report;
pub mod stream;
pub mod unknown_numbers;
pub mod webhook_apply;
pub mod worker;
pub mod writeback;

pub use context::{Core, Dispatcher, Intake, Pipeline, WriteBack};
