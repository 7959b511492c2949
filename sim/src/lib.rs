//! # sfwa-sim — wire-faithful simulators of a Salesforce org and of the WhatsApp Cloud API
//!
//! What sfwa is tested and demonstrated against: `cargo test` (`tests/api`), the examples, `sfwa
//! demo` and `sfwa sim` (the binary's `sim` feature). Each simulator is a real HTTP server on
//! loopback that answers in the service's exact wire shapes, from `shared/reference/` — as
//! Salesforce and Meta would — and exposes a control API under `/__sim/` (`docs/simulators.md`).
//!
//! This crate does not depend on the daemon (`sfwa`): it reads what the daemon sends with its own
//! code (record Ids, datetimes, SOQL, send bodies) and signs webhooks itself, so a parsing bug in
//! the client cannot hide behind a parser the two share. Nor can the daemon's library reach it:
//! only the binary's `sim` feature and the daemon's tests and examples use it.
//!
//! ## Map
//! - [`clock`] — [`clock::SimClock`], shiftable simulated time both simulators share (tests share
//!   it with the daemon through a small adapter to the daemon's `Clock`).
//! - [`salesforce`] — the org: OAuth (JWT bearer, client credentials, refresh token), REST (SOQL,
//!   sObject rows, describe, collections, limits), CometD streaming of platform events, API usage,
//!   faults, and the package's Flow and validation rules as Salesforce runs them; its schema is the
//!   package's SFDX metadata (`../salesforce`), compiled in by `build.rs`.
//! - [`whatsapp`] — the Cloud API: messages, Meta's errors, the window as Meta enforces it, signed
//!   webhooks, the app's webhook subscription, simulated customers.
//! - [`sandbox`] — both side by side with credentials kept in a state directory (`sfwa sim`).
//! - [`server`] — serving a simulator: bind (port 0 = any free port), serve, stop on demand.
pub mod clock;
pub mod salesforce;
pub mod sandbox;
pub mod server;
pub mod whatsapp;
