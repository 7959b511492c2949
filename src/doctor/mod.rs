//! `sfwa doctor`: checks a setup end to end before (or beside) `sfwa run`, and says for every
//! problem what to do about it.
//!
//! The checks run in order, each a small async function returning one or more [`Check`]s:
//! 1. configuration; 2. the store; 3. write-back dead letters (and webhook events refused);
//! 4. Salesforce login; 5. the message object's fields; 6. the platform-event channel (stream
//!    mode); 7. the publish Flow is active ([`flow`], `FlowDefinitionView`); 8. the queue that
//!    owns unmatched inbound records (`salesforce.inbound_queue`);
//! 9. each WhatsApp number, with its throughput level against `whatsapp.throughput_per_second`;
//! 10. the Graph API version, against Meta's end dates and the version Meta says answered
//!     (`meta`); 11. the apps subscribed to the WhatsApp Business Account; 12. the app's webhook
//!     subscription and each webhook field sfwa needs (or will); 13. the webhook listener;
//! 14. Salesforce API usage.
//!
//! Files: `run` (the order), `http` (the client), `report` ([`Check`], [`render`]), `local` (store, webhook listener),
//! `salesforce` (login, fields, channel, inbound queue), [`flow`], `meta` (numbers, version, subscriptions).
//!
//! A check that needs something an earlier one found broken is [`Outcome::Skipped`] with the
//! reason, so the first failure is the one to fix; so is one whose optional setting is unset
//! (`whatsapp.business_account_id`, `whatsapp.app_id`), naming the key. Nothing is changed
//! anywhere: the store is opened without migrating it, the stream subscription is dropped at once,
//! no record is written, Meta is only read. Dates are the injected clock's ([`check_at`]).
//!
//! The fields the message-object check expects are not a hand-kept list: they are what the code
//! reads ([`MessageRecord::FIELDS`](crate::domain::message::MessageRecord::FIELDS)) and writes
//! (collected by calling [`record_update`](crate::pipeline::record_update) and
//! [`inbound_records`](crate::pipeline::inbound_records) themselves), so a new field in the
//! pipeline is checked without anyone remembering to. Only the type each needs is a table
//! (`salesforce::field_need`); a test makes sure every field the code uses has an entry.

mod http;
mod local;
mod meta;
mod report;
mod run;
mod salesforce;

pub mod flow;

pub use meta::{field_checks, handled_by_webhook, version_check};
pub use report::{all_passed, render, Check, Outcome};
pub use run::{check, check_at, run};
pub use salesforce::{read_fields, written_fields};
