//! One file per check, named for what it checks; `doctor::run` runs them in order and says
//! which ones a failure earlier skips.
//!
//! - [`configuration`] — the settings (every problem, by key).
//! - [`store`], [`dead_letters`], [`webhook_rejects`] — the store file and what it holds.
//! - [`login`], [`fields`], [`channel`], [`flow`], [`inbound_queue`] — Salesforce: the login, the
//!   message object's fields against the field contract, the platform-event channel, the publish
//!   Flow, the queue that owns unmatched inbound records; [`user_id_fields`] — the WhatsApp user
//!   id field on Contact and Lead that linking uses, and the Lead conversion mapping to set;
//!   [`leases`] — the number lease object and who holds this instance's numbers.
//! - [`numbers`], [`graph_version`], [`subscribed_apps`], [`webhook_fields`] — Meta: each business
//!   number, the Graph API version, the apps subscribed to the account, the app's webhook fields;
//!   [`template_catalog`] — whether the account's templates can be read (template sends checked).
//! - [`webhook_listener`] — the webhook port and secrets.
//! - [`api_usage`] — Salesforce's daily API allowance, as the calls above were answered.

pub mod api_usage;
pub mod channel;
pub mod configuration;
pub mod dead_letters;
pub mod fields;
pub mod flow;
pub mod graph_version;
pub mod inbound_queue;
pub mod leases;
pub mod login;
pub mod numbers;
pub mod store;
pub mod subscribed_apps;
pub mod template_catalog;
pub mod user_id_fields;
pub mod webhook_fields;
pub mod webhook_listener;
pub mod webhook_rejects;

/// The fix when the package's metadata is missing or different (several checks give it).
pub(in crate::doctor) const DEPLOY_FIX: &str =
    "deploy the package in salesforce/ (sf project deploy start)";

/// The fix when the integration user may not see or write a field.
pub(in crate::doctor) const ACCESS_FIX: &str =
    "grant field access with the WhatsApp_Integration permission set \
     (assign it to the integration user)";
