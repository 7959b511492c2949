//! What a webhook POST says, as domain events: the statuses of our messages and the messages
//! customers sent, each with its dedupe key, and the items refused with a [`RejectReason`].
//!
//! `webhook::parse` reads them from Meta's JSON (the edge); `pipeline::webhook_apply` applies
//! them to the journal, the inbound mirror and the outbox. What a status error's code means for
//! sfwa (retry, fail, a closed window) is said in one place, `whatsapp::error`, which implements it
//! on [`StatusError`]; this module only carries the values.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ids::{BusinessNumberId, CustomerId, Wamid};
use super::sf_id::SfId;
use super::status::MessageStatus;
pub use super::text::{echo, ECHO_CHARS};

/// Everything one POST said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedWebhook {
    pub events: Vec<WebhookEvent>,
    /// `sources[i]` is the JSON item `events[i]` was read from, kept so that an event refused
    /// while being applied is dead-lettered as Meta sent it.
    pub sources: Vec<EventSource>,
    /// Statuses and messages refused, each with its reason and JSON (dead-lettered, not lost).
    pub rejected: Vec<RejectedEvent>,
    /// Human reasons for parts ignored that are not events of ours (other fields, system errors).
    pub skipped: Vec<String>,
    /// Why each part of [`skipped`](Self::skipped) was ignored, as a stable label (the same
    /// order and length): every acknowledged part that changes nothing is counted by reason.
    pub ignored: Vec<SkipReason>,
    /// The business number of each part (a change's value) for a `phone_number_id` this
    /// instance does not serve: acknowledged, counted, logged once per number, applied nowhere.
    pub foreign: Vec<BusinessNumberId>,
    /// Template lifecycle updates (status, category, quality) for the catalog.
    pub templates: Vec<super::template_catalog::TemplateUpdate>,
}

/// Where an event was read from ([`ParsedWebhook::sources`]): only needed when applying the
/// event fails, so the typed reader of the common case keeps a place instead of a JSON tree.
#[derive(Clone, Debug, PartialEq)]
pub enum EventSource {
    /// The item itself.
    Json(Value),
    /// Item `item` of the list `list` (`statuses` or `messages`) of change `change` of entry
    /// `entry` of `body` (the whole POST as received, shared by its events).
    Item {
        body: std::sync::Arc<[u8]>,
        entry: usize,
        change: usize,
        list: &'static str,
        item: usize,
    },
}

impl EventSource {
    /// The item as JSON (`null` if the body no longer reads, which the typed reader rules out:
    /// it only reads bodies that are strict JSON).
    pub fn to_json(&self) -> Value {
        match self {
            EventSource::Json(value) => value.clone(),
            EventSource::Item {
                body,
                entry,
                change,
                list,
                item,
            } => serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|whole| {
                    whole
                        .get("entry")?
                        .get(*entry)?
                        .get("changes")?
                        .get(*change)?
                        .get("value")?
                        .get(*list)?
                        .get(*item)
                        .cloned()
                })
                .unwrap_or(Value::Null),
        }
    }
}

/// Why a part of a signed POST was acknowledged and knowingly changed nothing. The labels are
/// stable: they are the `reason` of `sfwa_webhook_parts_ignored_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// A webhook field sfwa does not handle (template updates, `user_preferences`,
    /// `smb_message_echoes`, anything unknown), or a change without a field or value.
    FieldNotHandled,
    /// `messaging_handovers`: who holds the conversation (Meta's business agent or this app).
    Handover,
    /// A status sfwa does not track: `played` (voice messages), `deleted`.
    StatusNotTracked,
    /// One of Meta's system errors in a value (`value.errors[]`): nothing to apply.
    SystemError,
    /// A status of a message this instance did not send and whose callback names no record
    /// (another tool on the same number, a group message of the business app).
    UnknownMessage,
    /// A status whose callback looks like a record Id that is not one this instance sent (an Id
    /// of another object, or a message record missing from the journal): never written to.
    UntrustedCallback,
}

impl SkipReason {
    pub const ALL: [SkipReason; 6] = [
        SkipReason::FieldNotHandled,
        SkipReason::Handover,
        SkipReason::StatusNotTracked,
        SkipReason::SystemError,
        SkipReason::UnknownMessage,
        SkipReason::UntrustedCallback,
    ];

    /// The stable snake_case label.
    pub fn label(self) -> &'static str {
        match self {
            SkipReason::FieldNotHandled => "field_not_handled",
            SkipReason::Handover => "messaging_handover",
            SkipReason::StatusNotTracked => "status_not_tracked",
            SkipReason::SystemError => "system_error",
            SkipReason::UnknownMessage => "unknown_message",
            SkipReason::UntrustedCallback => "untrusted_callback",
        }
    }
}

/// Why one status or message of a signed POST was refused. The labels are stable: they are the
/// `reason` column of `store::webhook_rejects` and the label of
/// `sfwa_webhook_events_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not an object, or a required key (`id`, `status`, `from`, `type`, `text.body`, …) missing
    /// or of the wrong type, or a `from` that is not a wa_id (digits).
    Unreadable,
    /// A `status` value sfwa does not handle (it knows sent, delivered, read and failed).
    UnsupportedStatus,
    /// The timestamp is not Unix seconds (or milliseconds, see
    /// [`crate::webhook::MILLISECONDS_FROM`]), lies outside the years Salesforce stores
    /// (1700–4000), or more than [`crate::webhook::MAX_AHEAD`] after receipt.
    BadTimestamp,
    /// A key value longer than the Salesforce field it is written to, where cutting it would change
    /// what it names (a wamid, a phone_number_id, a wa_id; the limits are
    /// [`crate::webhook::MAX_WAMID_CHARS`] and its neighbours). Free text is cut instead.
    ValueTooLong,
    /// The change has no `metadata.phone_number_id`, or one that is not digits, so it is unknown
    /// which number it is for.
    NoBusinessNumber,
    /// Applying the event failed unexpectedly (a bug in sfwa); caught so the rest of the POST
    /// still applies. See the log for the details.
    Internal,
}

impl RejectReason {
    pub const ALL: [RejectReason; 6] = [
        RejectReason::Unreadable,
        RejectReason::UnsupportedStatus,
        RejectReason::BadTimestamp,
        RejectReason::ValueTooLong,
        RejectReason::NoBusinessNumber,
        RejectReason::Internal,
    ];

    /// The stable snake_case label.
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::Unreadable => "unreadable",
            RejectReason::UnsupportedStatus => "unsupported_status",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::ValueTooLong => "value_too_long",
            RejectReason::NoBusinessNumber => "no_business_number",
            RejectReason::Internal => "internal_error",
        }
    }

    /// The reason a label names.
    pub fn from_label(label: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.label() == label)
    }
}

/// A refused status or message: why, in a bounded sentence, and the item as Meta sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedEvent {
    pub reason: RejectReason,
    /// Where in the POST and what was wrong; payload values cut to [`ECHO_CHARS`].
    pub detail: String,
    /// The JSON item (the store keeps at most 8 KiB of it).
    pub event: Value,
}

// An inbound message is larger than a status; events live only while one POST is applied, so a
// box per message would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum WebhookEvent {
    Status(StatusUpdate),
    Inbound(InboundMessage),
    /// `user_preferences`: a customer stopped or resumed marketing messages from a number.
    Preference(PreferenceUpdate),
}

/// A status's dedupe key, `status:{wamid}:{status}` (the journal keeps most statuses' on the
/// message's row instead: `store::journal::apply_status`).
pub fn status_dedupe_key(wamid: &Wamid, status: MessageStatus) -> String {
    format!(
        "status:{}:{}",
        wamid,
        status.as_salesforce().to_ascii_lowercase()
    )
}

impl WebhookEvent {
    /// Meta may deliver an update twice: `status:{wamid}:{status}` ([`status_dedupe_key`]) /
    /// `inbound:{wamid}`.
    pub fn dedupe_key(&self) -> String {
        match self {
            WebhookEvent::Status(s) => status_dedupe_key(&s.wamid, s.status),
            WebhookEvent::Inbound(m) => format!("inbound:{}", m.wamid),
            WebhookEvent::Preference(p) => format!(
                "preference:{}:{}:{}:{}",
                p.business_number_id,
                p.customer,
                if p.opted_out { "stop" } else { "resume" },
                p.timestamp.timestamp()
            ),
        }
    }

    /// Meta's time of the event.
    pub fn timestamp(&self) -> DateTime<Utc> {
        match self {
            WebhookEvent::Status(s) => s.timestamp,
            WebhookEvent::Inbound(m) => m.timestamp,
            WebhookEvent::Preference(p) => p.timestamp,
        }
    }
}

/// A `user_preferences` item of category `marketing_messages`: the customer stopped
/// (`value: "stop"`) or resumed (`"resume"`) marketing messages from this business number in
/// WhatsApp. Other categories are not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreferenceUpdate {
    /// `metadata.phone_number_id`.
    pub business_number_id: BusinessNumberId,
    /// `wa_id` (or, for a username customer, `user_id`).
    pub customer: CustomerId,
    pub opted_out: bool,
    /// Meta's time of the change.
    pub timestamp: DateTime<Utc>,
}

/// A status of one of our messages.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub wamid: Wamid,
    /// Sent, Delivered, Read or Failed.
    pub status: MessageStatus,
    /// Meta's time of the event (not our time of receipt).
    pub timestamp: DateTime<Utc>,
    /// `recipient_id`: the customer the message went to; `None` if absent or not a wa_id (sfwa
    /// does not rely on it: the journal knows whom it sent to).
    pub recipient_id: Option<CustomerId>,
    /// `recipient_user_id`: the customer's BSUID, given instead of (or beside) `recipient_id`
    /// when the message was sent to a BSUID.
    pub recipient_user_id: Option<CustomerId>,
    /// `metadata.phone_number_id`.
    pub business_number_id: BusinessNumberId,
    /// `biz_opaque_callback_data` read as a record Id; `None` if absent or not an Id (a message
    /// sent by another tool on the same number).
    pub record_id: Option<SfId>,
    /// Only on `failed`.
    pub errors: Vec<StatusError>,
    /// `pricing`: what Meta bills for the message (on `sent`, `delivered` and `read`; `None`
    /// when absent, as on `failed`).
    pub pricing: Option<Pricing>,
}

/// A status's `pricing` object: per-message pricing since 2025-07-01 (`pricing_model` "PMP").
/// Each part is kept as Meta wrote it, cut to its record field's length; a part that is absent
/// or not text is `None`. What is counted by label is bounded in [`Pricing::category_label`] and
/// [`Pricing::type_label`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pricing {
    /// `category`: marketing, utility, authentication, authentication_international, service…
    pub category: Option<String>,
    /// `type`: regular (billed), free_customer_service, free_entry_point.
    pub pricing_type: Option<String>,
    /// `pricing_model`: PMP (per message); CBP on statuses of older conversations.
    pub model: Option<String>,
    /// `billable`, when Meta says it.
    pub billable: Option<bool>,
}

/// The pricing categories Meta documents; any other is counted as `other`.
pub const PRICING_CATEGORIES: &[&str] = &[
    "marketing",
    "marketing_lite",
    "utility",
    "authentication",
    "authentication_international",
    "service",
    "referral_conversion",
];

/// The pricing types Meta documents; any other is counted as `other`.
pub const PRICING_TYPES: &[&str] = &["regular", "free_customer_service", "free_entry_point"];

impl Pricing {
    /// The category as a metric label: one of [`PRICING_CATEGORIES`], `other` or `unknown`
    /// (absent) — never Meta's raw text, so the label set stays bounded.
    pub fn category_label(&self) -> &'static str {
        bounded_label(self.category.as_deref(), PRICING_CATEGORIES)
    }

    /// The type as a metric label: one of [`PRICING_TYPES`], `other` or `unknown`.
    pub fn type_label(&self) -> &'static str {
        bounded_label(self.pricing_type.as_deref(), PRICING_TYPES)
    }
}

fn bounded_label(value: Option<&str>, known: &[&'static str]) -> &'static str {
    match value {
        None => "unknown",
        Some(value) => known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(value))
            .copied()
            .unwrap_or("other"),
    }
}

/// One entry of a failed status's `errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusError {
    pub code: i64,
    pub title: String,
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
}

/// A message a customer sent to one of our business numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    pub wamid: Wamid,
    /// `metadata.phone_number_id`: which of our numbers (and so which window) it is for.
    pub business_number_id: BusinessNumberId,
    pub display_phone_number: String,
    /// The customer as the window and the journal key them: the phone (`from`, a wa_id) when
    /// Meta gives it, else the BSUID (`from_user_id`).
    pub from: CustomerId,
    /// `from_user_id` (or `contacts[].user_id`): the customer's BSUID, when Meta gives one.
    pub user_id: Option<CustomerId>,
    /// `from_parent_user_id`: the parent BSUID spanning linked portfolios.
    pub parent_user_id: Option<CustomerId>,
    /// `contacts[].profile.username`: the customer's WhatsApp username.
    pub username: Option<String>,
    pub profile_name: Option<String>,
    /// Meta's time of the message: the window is measured from it.
    pub timestamp: DateTime<Utc>,
    pub kind: InboundKind,
    /// The wamid this message replies to (`context.id`); `None` if absent or not a wamid.
    pub context_id: Option<Wamid>,
    /// `group_id`: the message was written in a group, not to us 1:1. It is recorded as a group
    /// message and opens no one's 1:1 window.
    pub group_id: Option<String>,
    /// `referral`: the click-to-WhatsApp ad the customer came from (first message after it).
    pub referral: Option<Referral>,
    /// Which webhook field it came on: `messages`, or `standby` when Meta's business agent
    /// handled the conversation (still the customer's message; it opens the window).
    pub channel: InboundChannel,
}

/// The webhook field an inbound message arrived on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InboundChannel {
    #[default]
    Messages,
    Standby,
}

/// A click-to-WhatsApp ad's `referral` on an inbound message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referral {
    pub source_url: Option<String>,
    pub source_id: Option<String>,
    /// `ad` or `post`.
    pub source_type: Option<String>,
    pub headline: Option<String>,
    pub body: Option<String>,
    pub media_type: Option<String>,
    /// The click id, for the ad's conversion reporting.
    pub ctwa_clid: Option<String>,
}

/// One contact card of a `contacts` message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedContact {
    /// `name.formatted_name` (or the parts joined).
    pub name: String,
    /// `phones[]`: (the number as written, its wa_id when the card says one).
    pub phones: Vec<(String, Option<String>)>,
    pub emails: Vec<String>,
}

/// What a `system` message says changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemChange {
    /// `system.type`: `user_changed_number`, `user_changed_user_id`, or another Meta writes.
    pub kind: String,
    /// `system.body`, Meta's own sentence.
    pub body: String,
    /// The customer's new phone (`system.wa_id` / `new_wa_id`), on a number change.
    pub new_wa_id: Option<CustomerId>,
    /// `system.previous_user_id`: the BSUID before a user-id change.
    pub previous_user_id: Option<CustomerId>,
    /// `system.user_id`: the BSUID after a user-id change.
    pub new_user_id: Option<CustomerId>,
}

/// One product line of an `order` message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderItem {
    pub product_retailer_id: String,
    pub quantity: f64,
    pub item_price: Option<f64>,
    pub currency: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundMediaKind {
    Image,
    Document,
    Audio,
    Video,
    Sticker,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InboundKind {
    Text {
        body: String,
    },
    Media {
        kind: InboundMediaKind,
        media_id: String,
        mime_type: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
    },
    /// A template quick-reply button.
    Button {
        text: String,
        payload: String,
    },
    /// `interactive.button_reply` or `interactive.list_reply`.
    Interactive {
        id: String,
        title: String,
    },
    Reaction {
        message_id: String,
        /// `None` when the customer removed a reaction.
        emoji: Option<String>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// `contacts`: contact cards; `from_contact_request` when it answers our
    /// `request_contact_info` (`origin: "contact_request"`), which tells the customer's phone.
    Contacts {
        contacts: Vec<SharedContact>,
        from_contact_request: bool,
    },
    /// `order`: a cart from the catalog.
    Order {
        catalog_id: String,
        items: Vec<OrderItem>,
        note: Option<String>,
    },
    /// `interactive.nfm_reply`: the answer to a WhatsApp Flow.
    FlowReply {
        name: Option<String>,
        body: Option<String>,
        /// `response_json` as Meta sent it (a JSON object as text).
        response_json: String,
    },
    /// `request_welcome`: the customer opened the chat for the first time (no content).
    RequestWelcome,
    /// `system`: Meta telling us the customer changed number or user id (not the customer's words).
    System(SystemChange),
    /// `unsupported`: a message Meta cannot pass on, with its `errors[]` summarised.
    Unsupported {
        reason: String,
    },
    /// Any other `type`, kept by name with its content summarised (never a silent drop).
    Other {
        kind: String,
        summary: String,
    },
}

impl InboundMessage {
    /// A 1:1 message on the `messages` field from a customer known only by `from`; the optional
    /// parts (identity, group, referral, reply context) are set by the caller.
    pub fn new(
        wamid: Wamid,
        business_number_id: BusinessNumberId,
        from: CustomerId,
        timestamp: DateTime<Utc>,
        kind: InboundKind,
    ) -> InboundMessage {
        InboundMessage {
            wamid,
            business_number_id,
            display_phone_number: String::new(),
            from,
            user_id: None,
            parent_user_id: None,
            username: None,
            profile_name: None,
            timestamp,
            kind,
            context_id: None,
            group_id: None,
            referral: None,
            channel: InboundChannel::Messages,
        }
    }

    /// Whether this message opens or refreshes the 24-hour window. Every customer message does,
    /// except: reactions — Meta does not document whether they count, so sfwa takes the strict
    /// reading (as the simulator does), since a wrong "open" costs a failed send and a wrong
    /// "closed" only costs a template; and `system` messages, which Meta writes, not the customer.
    pub fn opens_window(&self) -> bool {
        if self.group_id.is_some() {
            return false;
        }
        !matches!(
            &self.kind,
            InboundKind::Reaction { .. } | InboundKind::System(_)
        )
    }
}
