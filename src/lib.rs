//! # sfwa — Salesforce ↔ WhatsApp Business Cloud API
//!
//! Salesforce Flows create `WhatsApp_Message__c` records with Status `Queued`; sfwa picks them up,
//! checks WhatsApp's 24-hour customer-service window against a local mirror of inbound messages,
//! sends through the Cloud API and writes Sent / Delivered / Read / Failed back onto the record.
//! The contract is `shared/DESIGN.md`; the Salesforce side of it is the SFDX package in
//! `salesforce/`, whose object metadata the simulator's schema is compiled from (`sim/build.rs`).
//!
//! ## The flow, in code
//! 1. **Intake** — [`pipeline::stream`]: platform events over CometD ([`salesforce::cometd`]),
//!    records fetched by Id and converted once from the wire row ([`salesforce::rows::MessageRow`])
//!    into a [`domain::message::QueuedRecord`] (Id, dates and wamid parsed), claimed once in the
//!    journal ([`pipeline::claim`], [`store::journal::claim`]) in the same transaction that stores the replay id; or, in poll
//!    mode, [`pipeline::intake`]'s SOQL poll, claimed the same way.
//!    A finished record set back to Queued is re-read, then sent again only if WhatsApp never
//!    accepted it, else marked `ALREADY_SENT` ([`pipeline::intake::settle_requeued`]).
//!    Safety nets and housekeeping run on cron schedules ([`scheduler`], [`pipeline::jobs`]):
//!    reconcile poll, scheduled sends, the inbound mirror from Salesforce, retention; `sfwa sync`
//!    is one pass of the same ([`pipeline::jobs::sync_once`]).
//!    Every intake selects only the business numbers this instance serves
//!    ([`pipeline::intake::ServedNumbers`]); a lease per number in Salesforce ([`pipeline::lease`])
//!    keeps two instances from serving one number, and [`pipeline::unknown_numbers`] fails the
//!    records of a number nobody serves (`docs/sharding.md`).
//! 2. **The window rule** — [`window::decide`]: pure; templates always, free-form only within 24 h
//!    of the customer's last inbound message minus a margin. Asked at the moment of sending.
//!    The customer is a person, not a key: [`store::identity`] knows them per business number by
//!    phone, business-scoped user id (BSUID) and parent BSUID, merged and re-keyed as webhooks
//!    show ([`pipeline::identity`]); the window is theirs, and a send goes to their current key
//!    (a phone in `to`, a BSUID in `recipient`, [`whatsapp::request_body`]).
//! 3. **The send path** — intake hands claimed records to each business number's lane
//!    ([`pipeline::dispatch::lanes`]: sends in flight sized by Little's law from the number's pace
//!    and the Graph round trip; intake reads on while they are in flight), then
//!    [`pipeline::dispatch::dispatch_record`]: record → [`domain::message::OutboundMessage`]
//!    (or a precise error code) → pace ([`pipeline::pacing`]: per number, adapting to Meta's 130429;
//!    per customer for 131056) → template catalog ([`pipeline::catalog`]: exists, approved,
//!    parameters; a paused template waits) → marketing consent ([`pipeline::consent`]) → window
//!    → a Salesforce File the record names uploaded to WhatsApp and sent by media id, uploaded
//!    once per number in 29 days ([`pipeline::media_upload`], [`store::uploaded_media`])
//!    → journal `Sending` → [`whatsapp::WhatsAppClient::send`] (as HTTP/2 streams, many to a
//!    connection: [`whatsapp::connections`])
//!    → Sent, Failed, retry with back-off, wait out a rate limit (never counted as an attempt),
//!    hold (the token or app: every send; a blocked number: that number's), or unknown outcome
//!    — decided by [`pipeline::dispatch::decide`]
//!    (pure), written by one `apply`. Claims a crash orphaned before `Sending`
//!    are resumed by [`pipeline::worker::retry_step`] ([`store::journal::orphaned_claims`]).
//!    A free-form message meeting a closed window may re-engage the customer with a template and
//!    wait for the reply ([`pipeline::reengage`], [`store::waiting`]).
//! 4. **Webhooks** — [`webhook::server`]: signature on raw bytes, [`webhook::parse_served`] into
//!    [`domain::webhook_event`]s (every 2026 message kind, BSUID senders, the `standby` field;
//!    parts for numbers this instance does not serve are counted and left alone), then [`pipeline::webhook_apply`] in one SQLite transaction:
//!    dedupe (a status on its message's journal row), statuses only forward
//!    ([`store::journal::apply_status`]), the inbound mirror
//!    ([`store::inbound`]), write-backs and the inbound record to create in Salesforce
//!    ([`pipeline::inbound_records`]), template lifecycle changes ([`pipeline::catalog_sync`]),
//!    stop/start words and `user_preferences` ([`pipeline::consent`]), a reply waking the messages
//!    that wait for it, pricing onto the record, and a media message's file for the media worker
//!    ([`store::media`]) — all before the 200. The worker ([`pipeline::media::media_step`]) then
//!    downloads the file from Meta ([`whatsapp::media`]) and saves it as a Salesforce File on the
//!    record ([`salesforce::files`]). What Meta's codes mean (131047: the
//!    window was closed) is said once, in `whatsapp::error` ([`whatsapp::is_window_closed`]).
//! 5. **The write-back** — [`pipeline::writeback::flush_once`]: the coalescing outbox
//!    ([`store::outbox`]) → [`salesforce::SalesforceClient::update`] (statuses) and
//!    [`salesforce::SalesforceClient::upsert`] on the wamid (inbound records, linked first to their
//!    Contact / Lead by [`pipeline::inbound_links`] — the BSUID stored on them, else one SOSL
//!    phone search per flush; [`pipeline::relink`] links late matches — and owned by the Case, Contact or Lead owner or
//!    the inbound queue by [`pipeline::inbound_owner`]), ≤ 200 records per collection and up to five collections per
//!    Composite call ([`salesforce::composite`]), per-record failures
//!    retried, dropped or surfaced; a call refused for its data is split until the refused item is
//!    alone, which becomes a dead letter ([`pipeline::dead_letters`], `sfwa dead-letters`).
//!    Which fields each change writes: [`pipeline::record_update`] (a status's `pricing` too:
//!    what Meta bills, onto the record and into `sfwa_messages_priced_total`).
//!
//! ## Map of the crate
//! - [`app`] — wiring and ordered shutdown; [`config`] — TOML + `SFWA_*` environment layered
//!   with `figment`, secrets over `secrecy`, `validate()`;
//!   [`clock`] — injectable time; [`doctor`] — `sfwa doctor`, the
//!   setup check, one file per check in [`doctor::checks`] (config, store, login, the deployed
//!   package and its Flow, stream, the inbound queue, numbers, Graph version, Meta's webhook
//!   subscription, webhook port);
//!   [`progress`] — the spinner people see while `sfwa sync` or a backlog drain runs;
//!   `sfwa plan` — [`pipeline::plan`], the dry run: each Queued record's verdict from the send
//!   path's own pure checks, reading only (the store opened read-only).
//! - [`domain`] — newtypes parsed at the edge: WhatsApp's ids ([`domain::ids`]: wamid, business
//!   number, customer — the one type a non-phone customer identity changes), E.164 phones,
//!   Salesforce Ids, ranked statuses, template parameters, outbound messages, webhook events.
//! - [`salesforce`] — the Salesforce client: OAuth (JWT bearer, client credentials, refresh token)
//!   with one shared session, queries with pagination, collections (up to five in one Composite call, [`salesforce::composite`]), describe, API usage, and the
//!   Streaming API subscriber ([`salesforce::cometd`]) for platform events; the one field contract
//!   with the package ([`salesforce::contract`]) that the write-back, `doctor` and the package
//!   test read.
//! - [`whatsapp`] — the Cloud API client and the classification of Meta's error codes
//!   (retry / retry later / hold everything or the sending number / fail this message); Graph versions and their end
//!   dates ([`whatsapp::versions`]); the app's webhook subscription ([`whatsapp::subscriptions`]).
//! - [`observe`] — `/metrics` (Prometheus, one registry per daemon), `/healthz` and `/readyz`
//!   (ready = the store accepts writes; Salesforce session, intake and held numbers reported),
//!   served on their own listener (`observe.listen`) apart from Meta's webhook port; `sfwa
//!   healthcheck` is its client. Its `metrics` and
//!   `health` implement [`pipeline::report::Reporter`] and [`app`] passes them in, so nothing below
//!   `observe` imports it; no two files of the crate import each other in a circle beyond
//!   `scripts/import-cycles.known` (CI checks).
//! - [`store`] — SQLite (WAL, migrations): journal, outbox, inbound mirror, webhook dedupe, cursors;
//!   every write goes through one writer thread that group-commits concurrent writes (a savepoint
//!   each, one fsync per batch, each caller answered after the commit: [`store::db`]).
//! - Not in this library: the simulators of both services are the workspace's `sfwa-sim` crate
//!   (`sim/`: the org with OAuth, REST, SOQL, collections, Composite, CometD, usage, faults, the package's
//!   Flow and validation rules; the Cloud API with Meta's errors, the window as Meta enforces it,
//!   signed webhooks, simulated customers), used by `cargo test`, the examples and the binary's
//!   default `sim` feature: `sfwa sim`, `sfwa demo` (`src/demo.rs`) and `sfwa bench`
//!   (`src/bench/`: simulators, daemon and load generator as separate processes;
//!   `docs/performance.md`), modules of `main.rs`.
//!   This library cannot reach it (`cargo check --lib --no-default-features` in CI).

// A function longer than clippy.toml's threshold (80 lines) is split into named steps; any
// `#[allow(clippy::too_many_lines)]` carries a comment saying why.
#![warn(clippy::too_many_lines)]

pub mod app;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod domain;
pub mod observe;
pub mod pipeline;
pub mod progress;
pub mod salesforce;
pub mod scheduler;
pub mod store;
pub mod webhook;
pub mod whatsapp;
pub mod window;
