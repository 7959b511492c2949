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
//!     ([`checks::graph_version`]); 11. the apps subscribed to the WhatsApp Business Account;
//!     12. the app's webhook subscription and each webhook field sfwa needs (or will);
//!     13. the webhook listener; 14. Salesforce API usage.
//!
//! Files: `run` (the list, in order, and what skips what), [`checks`] (one file per check,
//! named for what it checks), `clients` (the HTTP and Cloud API clients the checks share),
//! `report` ([`Check`], [`render`]).
//!
//! A check that needs something an earlier one found broken is [`Outcome::Skipped`] with the
//! reason, so the first failure is the one to fix; so is one whose optional setting is unset
//! (`whatsapp.business_account_id`, `whatsapp.app_id`), naming the key. Nothing is changed
//! anywhere: the store is opened without migrating it, the stream subscription is dropped at once,
//! no record is written, Meta is only read. Dates are the injected clock's ([`check_at`]).
//!
//! The fields the message-object check expects are the field contract
//! ([`crate::salesforce::contract`]); a test in [`checks::fields`] makes sure it lists exactly what
//! the code reads ([`MessageRow::FIELDS`](crate::salesforce::rows::MessageRow::FIELDS)) and
//! writes (collected by calling [`record_update`](crate::pipeline::record_update) and
//! [`inbound_records`](crate::pipeline::inbound_records) themselves).

pub mod checks;
mod clients;
mod report;
mod run;

pub use checks::fields::{read_fields, written_fields};
pub use checks::flow;
pub use checks::graph_version::version_check;
pub use checks::webhook_fields::{field_checks, handled_by_webhook};
pub use report::{all_passed, render, Check, Outcome};
pub use run::{check, check_at, run};
