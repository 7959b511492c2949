//! The WhatsApp Business Cloud API client: the `send` step of the pipeline and the `doctor` check.
//!
//! - `request`: an [`OutboundMessage`](crate::domain::message::OutboundMessage) as Meta's exact
//!   JSON ([`request_body`]), always carrying the record Id as `biz_opaque_callback_data`.
//! - `client`: [`WhatsAppClient`] — `send` and `phone_number` over HTTP, with transport failures
//!   split by whether the message may have left ([`SendError`]); the webhook subscription reads
//!   `sfwa doctor` makes (`subscribed_apps`, `app_subscriptions`).
//! - [`connections`]: the connections sends go over — HTTP/2 streams where the Graph API speaks
//!   it, several sends per connection ([`SendConnections`], `whatsapp.http2`).
//! - [`media`]: customers' files — `GET /{media_id}` ([`WhatsAppClient::media_info`]) and the
//!   download from its short-lived URL ([`WhatsAppClient::download`]), size-capped and sha256-checked.
//! - [`media_upload`]: a business's file uploaded to `POST /{phone_number_id}/media`
//!   ([`WhatsAppClient::upload_media`]), to send it by media id (`pipeline::media_upload`).
//! - `phone_numbers`: the account's numbers ([`WhatsAppClient::account_numbers`]), for the
//!   UNKNOWN_BUSINESS_NUMBER sweep.
//! - `subscriptions`: what those reads answer, the app token, and the webhook fields sfwa needs.
//! - `templates`: the categories of the account's templates, listed and cached, so an
//!   authentication template to a customer known only by BSUID is refused before sending.
//! - `versions`: Meta's Graph API versions and their end dates ([`versions::assess`]), for the
//!   doctor and the start-up warning.
//! - `error`: Meta's error body ([`MetaError`]) and what each code means for sfwa ([`classify`],
//!   [`Action`]); shared with `failed` status webhooks, which carry the same codes. The one place
//!   that says what 131047 (a closed window) means: [`OUTSIDE_WINDOW`], [`is_window_closed`].

mod client;
pub mod connections;
mod error;
mod listing;
pub mod media;
pub mod media_upload;
mod phone_numbers;
mod request;
pub mod subscriptions;
pub mod templates;
pub mod versions;

pub use client::{
    Accepted, PhoneNumberInfo, SendError, ThroughputLevel, WhatsAppClient, WhatsAppConfig,
};
pub use connections::{Http2, SendConnections};
pub use error::{
    classify, error_code, failure_message, is_window_closed, pair_rate_backoff, rep_message,
    rep_sentence, Action, MetaError, RateLimit, APP_RATE_LIMIT_BACKOFF, AUTH_TEMPLATE_TO_USER_ID,
    AUTH_TEMPLATE_TO_USER_ID_MESSAGE, KNOWN_CODES, OPTED_OUT, OUTSIDE_WINDOW,
    OUTSIDE_WINDOW_MESSAGE, PAIR_RATE_BACKOFF, SPAM_LIMIT_BACKOFF, THROUGHPUT_BACKOFF,
};
pub use request::request_body;
