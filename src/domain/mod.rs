//! Domain types, parsed at the edge: once a value is one of these, it is valid.
//!
//! - [`ids::Wamid`], [`ids::BusinessNumberId`], [`ids::CustomerId`] — WhatsApp's ids of a message,
//!   of one of our numbers and of a customer (the one type a customer identity beyond phone
//!   numbers changes); with [`sf_id::SfId`], bound to SQLite columns directly.
//! - [`phone::E164`] — a customer's number, normalised (`+16505551234`) with its WhatsApp `wa_id`.
//!   libphonenumber's rules are loaded per country calling code as numbers need them
//!   (`phone_rules`, from the split `build.rs` makes of the `phonenumber` crate's own).
//! - [`sf_id::SfId`] — an 18-character Salesforce record Id.
//! - [`status::MessageStatus`] — the ranked status picklist (statuses only move forward).
//! - [`message::OutboundMessage`] — a Queued record turned into something WhatsApp can send, or the
//!   precise reason it cannot be ([`message::RecordProblem`]).
//! - [`template::TemplateParameters`] — `Template_Parameters__c` parsed.
//! - [`webhook_event::WebhookEvent`] — what a webhook POST says: statuses of our messages and
//!   inbound customer messages ([`webhook_event::ParsedWebhook`], with the items refused).
//! - [`template_catalog::CatalogTemplate`] — one template of the account's catalog: status, category,
//!   the parameters a send of it must carry.
//! - [`text`] — Salesforce's length of a text and the cut of an outside value echoed back.

pub mod ids;
pub mod message;
pub mod phone;
mod phone_rules;
pub mod sf_id;
pub mod status;
pub mod template;
pub mod template_catalog;
pub mod text;
pub mod webhook_event;
