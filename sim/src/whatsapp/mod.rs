//! A wire-faithful simulator of the WhatsApp Business Cloud API (Meta's Graph API), for tests, the
//! demo and sandboxes: same paths, same JSON bodies, same error codes, signed webhooks.
//!
//! - `config`: credentials and behaviour knobs ([`WhatsAppSimConfig`]).
//! - `sim`: [`start`] / [`WhatsAppSim`], the server and the webhook worker.
//! - `graph_api`: `POST /{version}/{phone_number_id}/messages`, `GET /{version}/{phone_number_id}`;
//!   `graph_auth`: the version, token and object checks every Graph endpoint makes first.
//! - `subscriptions`: the webhook subscription as Meta reports it (`GET`/`POST
//!   /{version}/{waba_id}/subscribed_apps`, `GET /{version}/{app_id}/subscriptions`) and
//!   `/__sim/subscriptions` to break it.
//! - `versions`: which Graph version answers a call (a retired one is answered as the oldest
//!   available; the `facebook-api-version` header says so).
//! - `send_request` and `templates`: Meta's validation of send bodies and template parameters;
//!   `template_listing`: `GET /{waba_id}/message_templates` over the same registry (with its
//!   components, quality and `name` filter); `template_webhooks`: the status, category and
//!   quality webhooks a template change through the control API makes.
//! - `rate_limit`: throughput (130429, per number) and pair-rate (131056) token buckets.
//! - `numbers`: the account's business numbers, each a peer with its own throughput, hold and
//!   webhook callback override (`/__sim/numbers`, `GET /{waba_id}/phone_numbers`,
//!   `POST /{phone_number_id}` `webhook_configuration`).
//! - `graph_error`: Meta's error bodies; `ids`: wamids and trace ids.
//! - `customer_messages`: what customers do on their own (write, share their number, change
//!   number or BSUID), as webhooks on `messages` or `standby`.
//! - `customers`: who the customers are in 2026 (numbers, BSUIDs, parent BSUIDs, usernames, the
//!   phone withheld from webhooks).
//! - `state`: what the simulated Meta knows (messages, every send attempt, windows, faults, stats).
//! - `webhooks` and `webhook_payloads`: status and inbound webhooks, signed, batched, retried up to
//!   a horizon, duplicated, reordered or delayed on demand — or delivered at once on request
//!   ([`WhatsAppSim::deliver_webhooks_now`], `POST /__sim/webhooks/deliver`).
//! - `media`: customers' media like Meta serves it (ids valid 7 days, signed URLs valid 5 minutes,
//!   the same token) and `/__sim/media` to add a file or make downloads fail.
//! - `media_upload`: a business's upload (`POST /{phone_number_id}/media`, multipart; ids valid 30
//!   days), and the check that a send by media id names one uploaded from the same number.
//! - `control`: the `/__sim/` control API (documented in `docs/simulators.md`).
mod config;
mod control;
mod customer_messages;
mod customers;
mod graph_api;
mod graph_auth;
mod graph_error;
mod ids;
mod marketing;
mod marketing_control;
mod media;
mod media_store;
mod media_upload;
mod number_api;
mod number_control;
mod numbers;
mod rate_limit;
mod send_request;
mod sim;
mod state;
mod subscriptions;
mod template_listing;
mod template_webhooks;
mod templates;
mod versions;
mod webhook_payloads;
mod webhooks;

pub use config::{BusinessNumber, PairRate, WebhookBatch, WebhookRetry, WhatsAppSimConfig};
pub use customers::{derived_user_id, is_user_id};
pub use numbers::{SimNumber, WebhookOverride};
pub use sim::{start, WhatsAppSim};
pub use templates::{
    default_templates, TemplateButton, TemplateDefinition, TemplateHeader, TemplateStatus,
};
pub use webhook_payloads::signature;
pub use webhooks::Delivered;
