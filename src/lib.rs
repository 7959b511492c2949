//! # sfwa — Salesforce ↔ WhatsApp Business Cloud API
//!
//! Salesforce Flows create `WhatsApp_Message__c` records with Status `Queued`; sfwa picks them up,
//! checks WhatsApp's 24-hour customer-service window against a local mirror of inbound messages,
//! sends through the Cloud API and writes Sent / Delivered / Read / Failed back onto the record.
//! The contract is `shared/DESIGN.md`; the Salesforce side of it is the SFDX package in
//! `salesforce/`, whose object metadata is compiled into this crate (see `build.rs`).
//!
//! ## Map of the crate
//! - [`sim`] — wire-faithful simulators of both remote services, used by `cargo test`, the demo and
//!   `sfwa sim` (a local sandbox):
//!   - [`sim::salesforce`] — an org: OAuth token endpoint ([`sim::salesforce::auth`]), REST rows,
//!     describe, collections and limits ([`sim::salesforce::rest`]), SOQL ([`sim::salesforce::soql`]),
//!     CometD streaming ([`sim::salesforce::streaming`]), typed DML ([`sim::salesforce::org`]),
//!     schema from the package metadata ([`sim::salesforce::schema`]).
//!   - [`sim::whatsapp`] — the Cloud API: `/messages` with Meta's validation and error codes, the
//!     window as Meta enforces it, rate limits, signed status and inbound webhooks, simulated
//!     customers.
//!   - [`sim::sandbox`] — both side by side with one clock (`sfwa sim`).
//! - [`salesforce`] — the daemon's Salesforce client: OAuth (JWT bearer, client credentials,
//!   refresh token) with one shared cached session, SOQL queries with pagination, sObject
//!   Collections (≤ 200 records per call) with per-record dispositions, describe, API usage.
//! - [`store`] — local SQLite (WAL): the outbound journal (never sent twice, statuses only forward),
//!   the coalescing write-back outbox, the inbound mirror the window decides from, webhook dedupe
//!   and stream cursors. Functions take a connection so one webhook batch commits as one
//!   transaction before the 200.
//!
//! - [`whatsapp`] — the Cloud API client: Meta's request JSON, sends, and error classification
//!   (retry / retry later / hold everything / fail the record).
//! - [`webhook`] — Meta's webhook POSTs: signature check and parsing into status and inbound events.
//!
//! The daemon itself (config, clients, store, window policy, dispatch, webhook receiver, write-back)
//! is being built on top of these; `shared/DESIGN.md` shows where each piece goes.

pub mod app;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod pipeline;
pub mod salesforce;
pub mod sim;
pub mod store;
pub mod webhook;
pub mod whatsapp;
pub mod window;
