//! Meta's webhook POST body → domain events. Pure: the handler verifies the signature, calls
//! [`parse_received`], stores the events durably and answers 200.
//!
//! One POST holds an envelope of entries, each with changes, each with a value carrying up to 1000
//! status updates and/or inbound messages. Parsing is lenient per item, because answering non-200
//! makes Meta redeliver the whole POST for days (and the bad item with it):
//! - an item that cannot be read, or carries a value Salesforce would refuse (a timestamp outside
//!   years 1700–4000, a wamid longer than WhatsApp_Message_Id__c), is **refused**: it lands in
//!   [`ParsedWebhook::rejected`] with a [`RejectReason`] and its JSON, which the receiver stores in
//!   the dead letter `store::webhook_rejects` in the same transaction as the rest of the POST. A
//!   bad value is stopped here, at the edge, so it never reaches the outbox (where one such value
//!   made Salesforce refuse every write-back batched with it);
//! - parts that are not events of ours (other webhook fields, `messaging_handovers`, statuses
//!   sfwa does not track such as `played` and `deleted`, Meta's system errors) are reported in
//!   [`ParsedWebhook::skipped`], each with its counted reason in [`ParsedWebhook::ignored`];
//! - parts for a business number this instance does not serve ([`parse_served`]) are left out
//!   whole and named in [`ParsedWebhook::foreign`] — not even refused, since they are another
//!   instance's to judge;
//! - only a body that is not Meta's envelope at all is an error ([`PayloadError`], answer 400).
//!   A body strict JSON refuses only for a lone surrogate escape or a non-UTF-8 byte is repaired
//!   first ([`super::lenient`]).
//!
//! Messages come on the `messages` field and, when Meta's business agent handles the
//! conversation, on `standby` (read alike, marked [`InboundChannel::Standby`]). The sender is
//! `from` (a phone) or, for a customer whose phone Meta withholds (a username user, 2026), the
//! business-scoped user id `from_user_id`; `contacts[]` adds the name, username and BSUID. What
//! each message is, is read by [`super::kinds`].
//!
//! Everything echoed from the payload into a reason or an error is cut to [`ECHO_CHARS`].
//!
//! [`ECHO_CHARS`]: crate::domain::webhook_event::ECHO_CHARS

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::read::{cut_chars, required, stamped, text, Refusal, PRICING_CHARS};
use crate::domain::ids::{BusinessNumberId, CustomerId, IdError, Wamid};
use crate::domain::message::fit_salesforce;
use crate::domain::sf_id::SfId;
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::{
    echo, EventSource, InboundChannel, InboundMessage, ParsedWebhook, Pricing, RejectReason,
    RejectedEvent, SkipReason, StatusError, StatusUpdate, WebhookEvent,
};

/// A body that is not a WhatsApp Business Account webhook.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the webhook body is not JSON: {0}")]
    NotJson(String),
    #[error("the webhook body is not a WhatsApp Business Account envelope: {0}")]
    NotWhatsAppEnvelope(String),
}

/// The longest wamid, phone_number_id and wa_id sfwa accepts (the Salesforce fields they are
/// written to whole): said with their types, in [`crate::domain::ids`].
pub use crate::domain::ids::{MAX_BUSINESS_NUMBER_CHARS, MAX_WAMID_CHARS, MAX_WA_ID_CHARS};

pub use super::read::MILLISECONDS_FROM;

/// How far after its receipt an event may be stamped. Meta's clock and ours differ by seconds;
/// a message "from" next year would keep the customer's window open in the mirror until then.
pub const MAX_AHEAD: chrono::Duration = chrono::Duration::days(1);

/// Meta's error title and details on a failed status are cut to these (UTF-16 units) so that
/// the sentence built from them stays within Error_Message__c (1024) however many emoji they hold.
const ERROR_TITLE_UNITS: usize = 200;
const ERROR_DETAILS_UNITS: usize = 400;

/// Parses a whole webhook POST body, with no clock and for any business number: timestamps are
/// checked against what Salesforce stores but not against the time of receipt (see
/// [`parse_received`]).
pub fn parse(body: &[u8]) -> Result<ParsedWebhook, PayloadError> {
    parse_with(body, Scope::default())
}

/// Parses a POST received at `received_at`: as [`parse`], and refuses events stamped more than
/// [`MAX_AHEAD`] later.
pub fn parse_received(
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<ParsedWebhook, PayloadError> {
    parse_with(body, Scope::received(received_at, None))
}

/// Parses a POST received at `received_at` by an instance serving the business numbers
/// `served` (`phone_number_id`s): as [`parse_received`], and every part for another number
/// (the same Meta app serves other numbers, another instance serves them) is left out whole —
/// no event, no refusal — and named in [`ParsedWebhook::foreign`].
pub fn parse_served(
    body: &[u8],
    received_at: DateTime<Utc>,
    served: &[String],
) -> Result<ParsedWebhook, PayloadError> {
    parse_with(body, Scope::received(received_at, Some(served)))
}

/// What a parse is checked against: the latest timestamp accepted, the numbers served.
#[derive(Clone, Copy, Default)]
struct Scope<'a> {
    latest: Option<DateTime<Utc>>,
    served: Option<&'a [String]>,
}

impl<'a> Scope<'a> {
    fn received(at: DateTime<Utc>, served: Option<&'a [String]>) -> Scope<'a> {
        Scope {
            latest: at.checked_add_signed(MAX_AHEAD),
            served,
        }
    }

    /// Whether a part for `number` is this instance's (always, when no served set is given).
    fn serves(&self, number: &BusinessNumberId) -> bool {
        self.served
            .is_none_or(|served| served.iter().any(|s| s == number.as_str()))
    }
}

/// Strict JSON first; only if that fails, the body repaired by [`super::lenient::repair`].
fn json_body(body: &[u8]) -> Result<Value, PayloadError> {
    let strict = match serde_json::from_slice(body) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    match super::lenient::repair(body) {
        std::borrow::Cow::Borrowed(_) => Err(PayloadError::NotJson(echo(&strict.to_string()))),
        std::borrow::Cow::Owned(repaired) => serde_json::from_slice(&repaired)
            .map_err(|e| PayloadError::NotJson(echo(&e.to_string()))),
    }
}

fn parse_with(body: &[u8], scope: Scope<'_>) -> Result<ParsedWebhook, PayloadError> {
    // Meta's most frequent POSTs (status updates, text messages) are read straight into typed
    // values; anything else, or anything that reader is unsure of, is read below.
    if let Some(parsed) = super::typed::read(body, scope.latest, scope.served) {
        return Ok(parsed);
    }
    parse_tree(body, scope)
}

/// The body read as a JSON tree: every shape, every refusal and every skipped part.
fn parse_tree(body: &[u8], scope: Scope<'_>) -> Result<ParsedWebhook, PayloadError> {
    // Owned, so that each item is moved (not copied) into the events' sources or the refusals.
    let mut envelope = json_body(body)?;
    let object = envelope.get("object").and_then(Value::as_str);
    if object != Some("whatsapp_business_account") {
        return Err(PayloadError::NotWhatsAppEnvelope(format!(
            "\"object\" is {}",
            object.map_or("missing".to_string(), |o| format!("\"{}\"", echo(o)))
        )));
    }
    let Some(entries) = envelope.get_mut("entry").and_then(Value::as_array_mut) else {
        return Err(PayloadError::NotWhatsAppEnvelope(
            "\"entry\" is not a list".into(),
        ));
    };
    let mut parsed = ParsedWebhook::default();
    for (e, entry) in entries.iter_mut().enumerate() {
        let Some(changes) = entry.get_mut("changes").and_then(Value::as_array_mut) else {
            skip(
                &mut parsed,
                SkipReason::FieldNotHandled,
                format!("entry {e}: no \"changes\" list"),
            );
            continue;
        };
        for (c, change) in changes.iter_mut().enumerate() {
            let at = format!("entry {e} change {c}");
            let channel = match change.get("field").and_then(Value::as_str) {
                Some("messages") => InboundChannel::Messages,
                // Meta's business agent answered: still the customer's messages, in the same
                // shape, and they open the window like any other.
                Some("standby") => InboundChannel::Standby,
                // Template lifecycle: account-wide, for the catalog.
                Some(field) if super::template_updates::FIELDS.contains(&field) => {
                    let value = change.get("value").unwrap_or(&Value::Null);
                    parsed
                        .templates
                        .extend(super::template_updates::read(field, value));
                    continue;
                }
                // Marketing stop / resume: its items are read with the value's other lists.
                Some("user_preferences") => InboundChannel::Messages,
                Some(other) => {
                    let (reason, why) = ignored_field(other);
                    skip(&mut parsed, reason, format!("{at}: {why}"));
                    continue;
                }
                None => {
                    skip(
                        &mut parsed,
                        SkipReason::FieldNotHandled,
                        format!("{at}: no \"field\""),
                    );
                    continue;
                }
            };
            match change.get_mut("value") {
                Some(value) if value.is_object() => {
                    let part = Part {
                        at: &at,
                        channel,
                        scope,
                    };
                    parse_value(value, &part, &mut parsed);
                }
                Some(_) => parsed.rejected.push(RejectedEvent {
                    reason: RejectReason::Unreadable,
                    detail: format!("{at}: \"value\" is not an object"),
                    event: change.clone(),
                }),
                None => skip(
                    &mut parsed,
                    SkipReason::FieldNotHandled,
                    format!("{at}: no \"value\""),
                ),
            }
        }
    }
    Ok(parsed)
}

/// A part acknowledged and knowingly ignored: its reason in words (logged) and as a label
/// (counted), kept side by side.
fn skip(parsed: &mut ParsedWebhook, reason: SkipReason, why: String) {
    parsed.skipped.push(why);
    parsed.ignored.push(reason);
}

/// Why changes of webhook `field` are not read. "is not handled" is the phrase `sfwa doctor`
/// looks for to tell the fields sfwa handles (which it then requires) from the others.
fn ignored_field(field: &str) -> (SkipReason, String) {
    match field {
        // The customer's messages come on `messages` or `standby` whoever holds the
        // conversation, and they are what opens the window and makes records; a handover only
        // says who answers now, which changes nothing sfwa writes. Counted, so an operator can
        // see Meta's business agent at work.
        "messaging_handovers" => (
            SkipReason::Handover,
            "field \"messaging_handovers\" is acknowledged and ignored: who holds the \
             conversation changes nothing sfwa records (the messages come on \"messages\" \
             or \"standby\")"
                .to_string(),
        ),
        // The template fields and `smb_message_echoes` are other issues' work; until then
        // they are acknowledged like any field sfwa does not read.
        other => (
            SkipReason::FieldNotHandled,
            format!("field \"{}\" is not handled", echo(other)),
        ),
    }
}

/// Where a change's value is in the POST, which field it came on, and what it is checked against.
struct Part<'a> {
    at: &'a str,
    channel: InboundChannel,
    scope: Scope<'a>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    display_phone_number: String,
    #[serde(default)]
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: Option<String>,
    /// The customer's BSUID (2026), beside or instead of `wa_id`.
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    parent_user_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
    /// The customer's WhatsApp username (2026).
    #[serde(default)]
    username: Option<String>,
}

fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A value's `statuses` or `messages`: the items (taken out of the value, each to be moved into
/// its event's source or its refusal), or the whole key refused when it is not a list.
fn listed(value: &mut Value, key: &str, at: &str, parsed: &mut ParsedWebhook) -> Vec<Value> {
    match value.get_mut(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => std::mem::take(items),
        Some(other) => {
            parsed.rejected.push(RejectedEvent {
                reason: RejectReason::Unreadable,
                detail: format!("{at}: \"{key}\" is not a list"),
                event: other.take(),
            });
            Vec::new()
        }
    }
}

fn parse_value(value: &mut Value, part: &Part<'_>, parsed: &mut ParsedWebhook) {
    let at = part.at;
    let metadata: Metadata = value
        .get("metadata")
        .and_then(|m| Metadata::deserialize(m).ok())
        .unwrap_or_default();
    // Every item of the value is for this number: without a usable one, all are refused; for a
    // number another instance serves, none is ours to apply (or to refuse).
    let number = business_number(&metadata);
    if let Ok(number) = &number {
        if !part.scope.serves(number) {
            parsed.foreign.push(number.clone());
            return;
        }
    }
    let number_problem = number.err();
    let contacts: Vec<Contact> = items(value, "contacts")
        .iter()
        .filter_map(|c| Contact::deserialize(c).ok())
        .collect();
    let statuses = listed(value, "statuses", at, parsed);
    let messages = listed(value, "messages", at, parsed);
    let place =
        |parsed: &mut ParsedWebhook, what: &str, i: usize, item: Value, result| match checked(
            number_problem.as_ref(),
            part.scope.latest,
            result,
        ) {
            Ok(event) => {
                parsed.events.push(event);
                parsed.sources.push(EventSource::Json(item));
            }
            Err(refusal) => parsed.rejected.push(RejectedEvent {
                reason: refusal.reason,
                detail: format!("{at} {what} {i}: {}", refusal.detail),
                event: item,
            }),
        };
    for (i, status) in statuses.into_iter().enumerate() {
        if let Some(untracked) = untracked_status(&status) {
            skip(
                parsed,
                SkipReason::StatusNotTracked,
                format!("{at} status {i}: status \"{untracked}\" is not tracked"),
            );
            continue;
        }
        let result = status_update(&status, &metadata).map(WebhookEvent::Status);
        place(parsed, "status", i, status, result);
    }
    for (i, message) in messages.into_iter().enumerate() {
        let result = inbound_message(&message, &metadata, &contacts, part.channel)
            .map(WebhookEvent::Inbound);
        place(parsed, "message", i, message, result);
    }
    let number = business_number(&metadata).ok();
    for (i, item) in listed(value, "user_preferences", at, parsed)
        .into_iter()
        .enumerate()
    {
        match super::user_preferences::preference(&item, number.as_ref(), timestamp(&item)) {
            Ok(None) => {}
            Ok(Some(event)) => place(parsed, "user preference", i, item, Ok(event)),
            Err(refusal) => place(parsed, "user preference", i, item, Err(refusal)),
        }
    }
    skip_system_errors(value, at, parsed);
}

/// Statuses Meta sends that sfwa knowingly does not track: `played` (a voice message was played:
/// the record already says Read) and `deleted` (the customer deleted it on their phone).
fn untracked_status(status: &Value) -> Option<&'static str> {
    match status.get("status").and_then(Value::as_str) {
        Some("played") => Some("played"),
        Some("deleted") => Some("deleted"),
        _ => None,
    }
}

/// An item's event as parsed, unless its value's number is unusable or it is stamped more than a
/// day after `latest`.
fn checked(
    number_problem: Option<&Refusal>,
    latest: Option<DateTime<Utc>>,
    result: Result<WebhookEvent, Refusal>,
) -> Result<WebhookEvent, Refusal> {
    let event = match (number_problem, result) {
        (Some(problem), _) => return Err(Refusal::new(problem.reason, problem.detail.clone())),
        (None, result) => result?,
    };
    match (latest, event.timestamp()) {
        (Some(latest), stamped) if stamped > latest => Err(Refusal::new(
            RejectReason::BadTimestamp,
            format!("timestamp {stamped} is more than a day after the webhook arrived"),
        )),
        _ => Ok(event),
    }
}

/// Meta's system `errors` in a value: nothing to apply, each noted as a skipped part.
fn skip_system_errors(value: &Value, at: &str, parsed: &mut ParsedWebhook) {
    for error in items(value, "errors") {
        let code = error
            .get("code")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        let title = text(error, "title").unwrap_or_default();
        let details = error
            .get("error_data")
            .and_then(|d| text(d, "details"))
            .unwrap_or_default();
        skip(
            parsed,
            SkipReason::SystemError,
            format!(
                "{at}: system error {code} {} {}",
                echo(&title),
                echo(&details)
            )
            .trim_end()
            .to_string(),
        );
    }
}

/// An id the item needs, parsed: a value too long for the Salesforce `field` it is written to
/// whole is [`RejectReason::ValueTooLong`] (cutting it would change what it names); one that is
/// not an id of its kind (a wa_id that is not digits) is unreadable.
fn id<T: std::str::FromStr<Err = IdError>>(
    value: &Value,
    key: &str,
    field: &str,
) -> Result<T, Refusal> {
    let text = required(value, key)?;
    text.parse().map_err(|error| match error {
        IdError::TooLong { value, max, .. } => Refusal::new(
            RejectReason::ValueTooLong,
            format!("{key} \"{value}\" is longer than {field} ({max})"),
        ),
        other => Refusal::unreadable(format!("{key}: {other}")),
    })
}

/// The value's business number: without a usable one, every item of the value is refused.
fn business_number(metadata: &Metadata) -> Result<BusinessNumberId, Refusal> {
    let raw = &metadata.phone_number_id;
    raw.parse().map_err(|error| match error {
        IdError::Empty { .. } => Refusal::new(
            RejectReason::NoBusinessNumber,
            "no metadata.phone_number_id",
        ),
        IdError::TooLong { value, max, .. } => Refusal::new(
            RejectReason::ValueTooLong,
            format!(
                "metadata.phone_number_id \"{value}\" is longer than Business_Number_Id__c ({max})"
            ),
        ),
        other => Refusal::new(
            RejectReason::NoBusinessNumber,
            format!("in metadata, {other}"),
        ),
    })
}

/// An item's `timestamp`: Unix seconds as a string (a number is accepted too); a value that can
/// only be milliseconds (see [`MILLISECONDS_FROM`]) is read as such. Refused when it is neither,
/// or when Salesforce could not store it (outside years 1700–4000): such a value must never reach
/// the outbox.
fn timestamp(value: &Value) -> Result<DateTime<Utc>, Refusal> {
    let raw = value.get("timestamp");
    let refused = |why: &str| {
        Refusal::new(
            RejectReason::BadTimestamp,
            format!(
                "timestamp {} {why}",
                echo(&raw.unwrap_or(&Value::Null).to_string())
            ),
        )
    };
    let number = raw
        .and_then(|t| match t {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        })
        .ok_or_else(|| refused("is not Unix seconds"))?;
    stamped(number).ok_or_else(|| refused("is outside the years Salesforce stores (1700-4000)"))
}

fn status_update(status: &Value, metadata: &Metadata) -> Result<StatusUpdate, Refusal> {
    if !status.is_object() {
        return Err(Refusal::unreadable("not an object"));
    }
    let wamid: Wamid = id(status, "id", "WhatsApp_Message_Id__c")?;
    let meta_status = required(status, "status")?;
    let parsed_status = MessageStatus::from_meta(&meta_status).ok_or_else(|| {
        Refusal::new(
            RejectReason::UnsupportedStatus,
            format!(
                "status \"{}\" of {} is not handled",
                echo(&meta_status),
                echo(wamid.as_str())
            ),
        )
    })?;
    let errors = items(status, "errors")
        .iter()
        .map(|e| StatusError {
            code: e.get("code").and_then(Value::as_i64).unwrap_or_default(),
            title: fit_salesforce(&text(e, "title").unwrap_or_default(), ERROR_TITLE_UNITS),
            message: text(e, "message").map(|m| fit_salesforce(&m, ERROR_DETAILS_UNITS)),
            details: e
                .get("error_data")
                .and_then(|d| text(d, "details"))
                .map(|d| fit_salesforce(&d, ERROR_DETAILS_UNITS)),
        })
        .collect();
    Ok(StatusUpdate {
        status: parsed_status,
        timestamp: timestamp(status)?,
        recipient_id: text(status, "recipient_id").and_then(|r| r.parse().ok()),
        recipient_user_id: text(status, "recipient_user_id")
            .and_then(|r| CustomerId::user_id(&r).ok()),
        business_number_id: business_number(metadata)?,
        // Anything but a well-formed Id (another tool's data, garbage) is no record of ours.
        record_id: text(status, "biz_opaque_callback_data").and_then(|d| SfId::parse(&d).ok()),
        errors,
        pricing: pricing(status),
        wamid,
    })
}

/// A status's `pricing` object, leniently: what cost a message is never a reason to refuse its
/// status, so a part that is not text (or a `billable` that is not a boolean) is left out, and
/// text is cut to its record field (`record_update::priced`).
fn pricing(status: &Value) -> Option<Pricing> {
    let pricing = status.get("pricing").filter(|p| p.is_object())?;
    let part = |key: &str| text(pricing, key).map(|t| cut_chars(&t, PRICING_CHARS));
    Some(Pricing {
        category: part("category"),
        pricing_type: part("type"),
        model: part("pricing_model"),
        billable: pricing.get("billable").and_then(Value::as_bool),
    })
}

fn inbound_message(
    message: &Value,
    metadata: &Metadata,
    contacts: &[Contact],
    channel: InboundChannel,
) -> Result<InboundMessage, Refusal> {
    if !message.is_object() {
        return Err(Refusal::unreadable("not an object"));
    }
    let wamid: Wamid = id(message, "id", "WhatsApp_Message_Id__c")?;
    let sender = sender(message, contacts)?;
    let mut inbound = InboundMessage::new(
        wamid,
        business_number(metadata)?,
        sender.from,
        timestamp(message)?,
        super::kinds::inbound_kind(message)?,
    );
    inbound.display_phone_number = metadata.display_phone_number.clone();
    inbound.user_id = sender.user_id;
    inbound.parent_user_id = sender.parent_user_id;
    inbound.username = sender.username;
    inbound.profile_name = sender.profile_name;
    inbound.context_id = message
        .get("context")
        .and_then(|c| text(c, "id"))
        .and_then(|id| id.parse().ok());
    inbound.group_id = text(message, "group_id").filter(|g| !g.trim().is_empty());
    inbound.referral = super::kinds::referral(message);
    inbound.channel = channel;
    Ok(inbound)
}

/// Who wrote, as Meta says it in 2026.
struct Sender {
    from: CustomerId,
    user_id: Option<CustomerId>,
    parent_user_id: Option<CustomerId>,
    username: Option<String>,
    profile_name: Option<String>,
}

/// The sender: `from` (a wa_id) when Meta gives it, else the BSUID `from_user_id` — a message
/// with neither cannot be keyed to anyone and is refused. The matching `contacts[]` entry (by
/// wa_id or BSUID; the only one if there is one) gives the name, the username and the BSUID when
/// the message itself does not. A BSUID that is malformed beside a usable `from` is left out
/// rather than costing the message.
fn sender(message: &Value, contacts: &[Contact]) -> Result<Sender, Refusal> {
    let phone: Option<CustomerId> = match text(message, "from").filter(|f| !f.is_empty()) {
        Some(_) => Some(id(message, "from", "From_Phone__c")?),
        None => None,
    };
    let own_user_id = match &phone {
        Some(_) => user_id(message, "from_user_id").ok().flatten(),
        None => user_id(message, "from_user_id")?,
    };
    let contact = contacts
        .iter()
        .find(|c| {
            let is = |key: &Option<String>, id: Option<&CustomerId>| {
                key.as_deref()
                    .is_some_and(|k| id.is_some_and(|id| id.as_str() == k))
            };
            is(&c.wa_id, phone.as_ref()) || is(&c.user_id, own_user_id.as_ref())
        })
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        });
    let from_contact = |read: fn(&Contact) -> Option<&String>| {
        contact
            .and_then(read)
            .and_then(|t| CustomerId::user_id(t).ok())
    };
    // The message's own key: `contacts[]` only describes the sender, it does not name them.
    let from = match (phone, &own_user_id) {
        (Some(phone), _) => phone,
        (None, Some(user_id)) => user_id.clone(),
        (None, None) => return Err(Refusal::unreadable("no \"from\" nor \"from_user_id\"")),
    };
    let user_id = own_user_id.or_else(|| from_contact(|c| c.user_id.as_ref()));
    let parent_user_id = user_id_ok(message, "from_parent_user_id")
        .or_else(|| from_contact(|c| c.parent_user_id.as_ref()));
    let profile = contact.and_then(|c| c.profile.as_ref());
    Ok(Sender {
        from,
        user_id,
        parent_user_id,
        username: profile
            .and_then(|p| p.username.clone())
            .filter(|u| !u.trim().is_empty()),
        profile_name: profile.and_then(|p| p.name.clone()),
    })
}

/// `key` read as a BSUID: `None` when absent, refused (like [`id`]) when it is not one.
fn user_id(value: &Value, key: &str) -> Result<Option<CustomerId>, Refusal> {
    let Some(raw) = text(value, key).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    CustomerId::user_id(&raw)
        .map(Some)
        .map_err(|error| match error {
            IdError::TooLong { value, max, .. } => Refusal::new(
                RejectReason::ValueTooLong,
                format!("{key} \"{value}\" is longer than From_User_Id__c ({max})"),
            ),
            other => Refusal::unreadable(format!("{key}: {other}")),
        })
}

/// `key` read as a BSUID when it is one; an optional extra, so anything else is left out.
fn user_id_ok(value: &Value, key: &str) -> Option<CustomerId> {
    user_id(value, key).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text::salesforce_length;
    use crate::domain::webhook_event::ECHO_CHARS;
    use crate::domain::webhook_event::{InboundKind, InboundMediaKind};
    use crate::whatsapp::Action;
    use serde_json::json;

    fn envelope(values: Vec<Value>) -> Vec<u8> {
        let changes: Vec<Value> = values
            .into_iter()
            .map(|value| json!({"field": "messages", "value": value}))
            .collect();
        serde_json::to_vec(&json!({"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": changes}]}))
        .expect("json")
    }

    fn metadata() -> Value {
        json!({"display_phone_number": "15550783881", "phone_number_id": "106540352242922"})
    }

    /// Meta's documented inbound text payload.
    fn documented_text() -> Value {
        json!({"messaging_product": "whatsapp", "metadata": metadata(),
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{"from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
                "timestamp": "1749416383", "type": "text", "text": {"body": "Does it come in another color?"}}]})
    }

    fn only(parsed: ParsedWebhook) -> WebhookEvent {
        assert_eq!(parsed.events.len(), 1, "{parsed:?}");
        parsed.events.into_iter().next().expect("one event")
    }

    #[test]
    fn metas_documented_inbound_text_becomes_an_inbound_event_that_opens_the_window() {
        let parsed = parse(&envelope(vec![documented_text()])).expect("envelope");

        let WebhookEvent::Inbound(message) = only(parsed) else {
            panic!("inbound expected")
        };
        assert_eq!(message.from, "16505551234");
        assert_eq!(message.business_number_id, "106540352242922");
        assert_eq!(message.display_phone_number, "15550783881");
        assert_eq!(message.profile_name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(message.timestamp.timestamp(), 1_749_416_383);
        assert_eq!(
            message.kind,
            InboundKind::Text {
                body: "Does it come in another color?".into()
            }
        );
        assert!(message.opens_window());
        assert!(message.context_id.is_none());
    }

    #[test]
    fn metas_documented_failed_status_carries_the_record_id_and_the_error() {
        let value = json!({"messaging_product": "whatsapp", "metadata": metadata(),
            "statuses": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI4", "status": "failed",
                "timestamp": "1750030073", "recipient_id": "16505551234",
                "biz_opaque_callback_data": "a005g0000012345AAA",
                "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                    "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}]});

        let event = only(parse(&envelope(vec![value])).expect("envelope"));

        assert_eq!(
            event.dedupe_key(),
            "status:wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI4:failed"
        );
        let WebhookEvent::Status(status) = event else {
            panic!("status expected")
        };
        assert_eq!(status.status, MessageStatus::Failed);
        assert_eq!(status.timestamp.timestamp(), 1_750_030_073);
        assert_eq!(status.recipient_id.unwrap(), "16505551234");
        assert_eq!(status.business_number_id, "106540352242922");
        assert_eq!(
            status.record_id.as_ref().map(SfId::as_str),
            Some("a005g0000012345AAA")
        );
        let error = &status.errors[0];
        assert_eq!(error.code, 131047);
        assert_eq!(error.action(), Action::Fail);
        assert_eq!(error.error_code(), "OUTSIDE_SESSION_WINDOW");
        assert!(error
            .rep_message()
            .contains("Re-engagement message: Message failed to send"));
    }

    #[test]
    fn a_status_without_callback_data_or_with_a_foreign_one_has_no_record_id() {
        let status = |data: Option<&str>| {
            let mut s = json!({"id": "wamid.A", "status": "sent", "timestamp": "1750030073",
                "recipient_id": "16505551234",
                "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"}});
            if let Some(d) = data {
                s["biz_opaque_callback_data"] = json!(d);
            }
            json!({"metadata": metadata(), "statuses": [s]})
        };
        for data in [None, Some("order-42 from another tool")] {
            let WebhookEvent::Status(s) =
                only(parse(&envelope(vec![status(data)])).expect("envelope"))
            else {
                panic!("status expected")
            };
            assert_eq!(s.record_id, None);
            assert_eq!(s.status, MessageStatus::Sent);
        }
    }

    #[test]
    fn every_inbound_type_is_read_into_its_kind() {
        let message = |kind: &str, object: Value| {
            let mut m = json!({"from": "16505551234", "id": format!("wamid.{kind}"), "timestamp": "1749416383", "type": kind});
            m[kind] = object;
            m
        };
        let value = json!({"metadata": metadata(), "messages": [
            message("image", json!({"id": "1", "mime_type": "image/jpeg", "sha256": "x", "caption": "receipt"})),
            message("document", json!({"id": "2", "mime_type": "application/pdf", "filename": "q.pdf"})),
            message("sticker", json!({"id": "3", "mime_type": "image/webp"})),
            message("button", json!({"payload": "CONFIRM", "text": "Yes"})),
            message("interactive", json!({"type": "list_reply", "list_reply": {"id": "opt-2", "title": "Tuesday", "description": "10:00"}})),
            message("reaction", json!({"message_id": "wamid.ours", "emoji": "👍"})),
            message("location", json!({"latitude": 52.52, "longitude": 13.405, "name": "Office"})),
            message("contacts", json!([])),
            message("poll", json!({"question": "Lunch?"})),
        ]});

        let kinds: Vec<InboundKind> = parse(&envelope(vec![value]))
            .expect("envelope")
            .events
            .into_iter()
            .map(|e| match e {
                WebhookEvent::Inbound(m) => m.kind,
                other => panic!("{other:?}"),
            })
            .collect();

        assert_eq!(
            kinds,
            vec![
                InboundKind::Media {
                    kind: InboundMediaKind::Image,
                    media_id: "1".into(),
                    mime_type: Some("image/jpeg".into()),
                    caption: Some("receipt".into()),
                    filename: None
                },
                InboundKind::Media {
                    kind: InboundMediaKind::Document,
                    media_id: "2".into(),
                    mime_type: Some("application/pdf".into()),
                    caption: None,
                    filename: Some("q.pdf".into())
                },
                InboundKind::Media {
                    kind: InboundMediaKind::Sticker,
                    media_id: "3".into(),
                    mime_type: Some("image/webp".into()),
                    caption: None,
                    filename: None
                },
                InboundKind::Button {
                    text: "Yes".into(),
                    payload: "CONFIRM".into()
                },
                InboundKind::Interactive {
                    id: "opt-2".into(),
                    title: "Tuesday".into()
                },
                InboundKind::Reaction {
                    message_id: "wamid.ours".into(),
                    emoji: Some("👍".into())
                },
                InboundKind::Location {
                    latitude: 52.52,
                    longitude: 13.405,
                    name: Some("Office".into()),
                    address: None
                },
                InboundKind::Contacts {
                    contacts: vec![],
                    from_contact_request: false
                },
                InboundKind::Other {
                    kind: "poll".into(),
                    summary: r#"{"question":"Lunch?"}"#.into()
                },
            ]
        );
    }

    /// Meta's 2026 payload of a customer who uses a username: no `from`, a BSUID instead.
    fn username_text() -> Value {
        json!({"messaging_product": "whatsapp", "metadata": metadata(),
            "contacts": [{"profile": {"name": "Ana Lima", "username": "ana.lima"},
                          "user_id": "US.13491208655302741918"}],
            "messages": [{"from_user_id": "US.13491208655302741918",
                "from_parent_user_id": "US.ENT.99887766554433221100",
                "id": "wamid.BSUID1", "timestamp": "1749416383", "type": "text",
                "text": {"body": "Hi, is my order ready?"}}]})
    }

    #[test]
    fn a_username_customer_without_from_is_keyed_by_the_bsuid_with_username_and_name() {
        let parsed = parse(&envelope(vec![username_text()])).expect("envelope");

        let WebhookEvent::Inbound(message) = only(parsed) else {
            panic!("inbound expected")
        };
        assert!(message.from.is_user_id());
        assert_eq!(message.from, "US.13491208655302741918");
        assert_eq!(message.user_id, Some(message.from.clone()));
        assert_eq!(
            message.parent_user_id.as_ref().map(CustomerId::as_str),
            Some("US.ENT.99887766554433221100")
        );
        assert_eq!(message.username.as_deref(), Some("ana.lima"));
        assert_eq!(message.profile_name.as_deref(), Some("Ana Lima"));
        assert!(message.opens_window());
    }

    #[test]
    fn a_customer_with_phone_and_bsuid_is_keyed_by_the_phone_and_keeps_the_bsuid() {
        let mut value = username_text();
        value["contacts"] = json!([
            {"profile": {"name": "Someone else"}, "wa_id": "15550000001"},
            {"profile": {"name": "Ana Lima", "username": "ana.lima"},
             "wa_id": "16505551234", "user_id": "US.13491208655302741918"}]);
        value["messages"][0]["from"] = json!("16505551234");
        value["messages"][0]["from_user_id"] = json!("not a bsuid");

        let WebhookEvent::Inbound(message) = only(parse(&envelope(vec![value])).expect("envelope"))
        else {
            panic!("inbound expected")
        };

        assert_eq!(message.from, "16505551234");
        assert_eq!(
            message.user_id.as_ref().map(CustomerId::as_str),
            Some("US.13491208655302741918"),
            "the malformed from_user_id is left out; the matching contact's BSUID is kept"
        );
        assert_eq!(message.profile_name.as_deref(), Some("Ana Lima"));
    }

    #[test]
    fn a_message_with_neither_from_nor_a_bsuid_is_refused_and_a_bad_lone_bsuid_too() {
        let mut none = username_text();
        none["messages"][0]
            .as_object_mut()
            .unwrap()
            .remove("from_user_id");
        let mut bad = username_text();
        bad["messages"][0]["from_user_id"] = json!("13491208655302741918");

        let parsed = parse(&envelope(vec![none, bad])).expect("envelope");

        assert!(parsed.events.is_empty());
        assert_eq!(parsed.rejected.len(), 2);
        assert!(parsed
            .rejected
            .iter()
            .all(|r| r.reason == RejectReason::Unreadable));
        assert!(parsed.rejected[0]
            .detail
            .contains("no \"from\" nor \"from_user_id\""));
        assert!(parsed.rejected[1].detail.contains("from_user_id"));
    }

    #[test]
    fn the_pricing_of_a_status_is_read_and_an_odd_one_never_refuses_the_status() {
        let value = json!({"metadata": metadata(), "statuses": [
            {"id": "wamid.P", "status": "delivered", "timestamp": "1750030073", "recipient_id": "1",
             "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"}},
            {"id": "wamid.Q", "status": "delivered", "timestamp": "1750030073", "recipient_id": "1",
             "pricing": {"billable": "yes", "type": 7, "category": "x".repeat(100)}},
            {"id": "wamid.R", "status": "delivered", "timestamp": "1750030073", "recipient_id": "1",
             "pricing": "free"}]});

        let events = parse(&envelope(vec![value])).expect("envelope").events;

        let pricing: Vec<Option<Pricing>> = events
            .iter()
            .map(|e| match e {
                WebhookEvent::Status(s) => s.pricing.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            pricing[0],
            Some(Pricing {
                category: Some("utility".into()),
                pricing_type: Some("regular".into()),
                model: Some("PMP".into()),
                billable: Some(true),
            })
        );
        let odd = pricing[1].clone().expect("an object is read");
        assert_eq!((odd.billable, odd.pricing_type), (None, None));
        assert_eq!(odd.category.map(|c| c.chars().count()), Some(PRICING_CHARS));
        assert_eq!(pricing[2], None);
        assert_eq!(pricing[0].as_ref().unwrap().category_label(), "utility");
        assert_eq!(pricing[1].as_ref().unwrap().category_label(), "other");
    }

    #[test]
    fn a_status_sent_to_a_bsuid_carries_the_recipient_user_id() {
        let value = json!({"metadata": metadata(), "statuses": [{"id": "wamid.B", "status": "delivered",
            "timestamp": "1750030073", "recipient_user_id": "US.13491208655302741918",
            "parent_recipient_user_id": "US.ENT.1", "recipient_type": "individual"}]});

        let WebhookEvent::Status(status) = only(parse(&envelope(vec![value])).expect("envelope"))
        else {
            panic!("status expected")
        };

        assert_eq!(status.recipient_id, None);
        assert_eq!(
            status.recipient_user_id.as_ref().map(CustomerId::as_str),
            Some("US.13491208655302741918")
        );
    }

    #[test]
    fn played_and_deleted_statuses_are_acknowledged_and_counted_as_not_tracked() {
        let value = json!({"metadata": metadata(), "statuses": [
            {"id": "wamid.V", "status": "played", "timestamp": "1750030073", "recipient_id": "1"},
            {"id": "wamid.D", "status": "deleted", "timestamp": "1750030073", "recipient_id": "1"}]});

        let parsed = parse(&envelope(vec![value])).expect("envelope");

        assert!(parsed.events.is_empty());
        assert!(parsed.rejected.is_empty());
        assert_eq!(
            parsed.ignored,
            vec![SkipReason::StatusNotTracked, SkipReason::StatusNotTracked]
        );
        assert!(parsed.skipped[0].contains("\"played\" is not tracked"));
    }

    #[test]
    fn standby_messages_are_read_like_messages_on_the_standby_channel_and_open_the_window() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "standby", "value": documented_text()},
            {"field": "messaging_handovers", "value": {"metadata": metadata(),
                "messaging_handovers": [{"sender": {"phone_number": "16505551234"}}]}}]}]});

        let parsed = parse(&serde_json::to_vec(&body).unwrap()).expect("envelope");

        let [WebhookEvent::Inbound(message)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(message.channel, InboundChannel::Standby);
        assert!(message.opens_window());
        assert_eq!(parsed.ignored, vec![SkipReason::Handover]);
        assert!(parsed.skipped[0].contains("messaging_handovers"));
        assert!(
            !parsed.skipped[0].contains("is not handled"),
            "not asked of doctor"
        );
    }

    #[test]
    fn every_skipped_part_has_its_counted_reason() {
        let body = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1"},
            {"id": "2", "changes": [
                {"field": "flows", "value": {}},
                {"field": "smb_message_echoes", "value": {}},
                {"value": {}},
                {"field": "messages"},
                {"field": "messages", "value": {"metadata": metadata(), "errors": [{"code": 1}]}}]}]});

        let parsed = parse(&serde_json::to_vec(&body).unwrap()).expect("envelope");

        assert_eq!(parsed.skipped.len(), parsed.ignored.len());
        assert_eq!(
            parsed.ignored,
            vec![
                SkipReason::FieldNotHandled,
                SkipReason::FieldNotHandled,
                SkipReason::FieldNotHandled,
                SkipReason::FieldNotHandled,
                SkipReason::FieldNotHandled,
                SkipReason::SystemError
            ]
        );
    }

    #[test]
    fn parts_for_a_number_not_served_are_left_out_whole_and_named() {
        let mut foreign = documented_text();
        foreign["metadata"]["phone_number_id"] = json!("999000111");
        foreign["statuses"] = json!([{"id": "wamid.F", "status": "sent", "timestamp": "bad"}]);
        let served = vec!["106540352242922".to_string()];
        let received = DateTime::from_timestamp(1_749_416_400, 0).unwrap();

        let parsed = parse_served(
            &envelope(vec![foreign, documented_text()]),
            received,
            &served,
        )
        .expect("envelope");
        let unfiltered = parse(&envelope(vec![documented_text()])).expect("envelope");

        assert_eq!(
            parsed.events, unfiltered.events,
            "only the served number's message"
        );
        assert!(
            parsed.rejected.is_empty(),
            "a foreign part is not ours to refuse"
        );
        assert!(parsed.skipped.is_empty());
        assert_eq!(
            parsed.foreign,
            vec!["999000111".parse::<BusinessNumberId>().unwrap()]
        );
    }

    #[test]
    fn a_group_message_and_an_ad_referral_are_kept_on_the_message() {
        let mut value = documented_text();
        value["messages"][0]["group_id"] = json!("120363025246125486");
        value["messages"][0]["referral"] = json!({"source_url": "https://fb.me/ad1",
            "source_id": "2381", "source_type": "ad", "headline": "Spring sale", "body": "20% off",
            "media_type": "image", "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ"});

        let WebhookEvent::Inbound(message) = only(parse(&envelope(vec![value])).expect("envelope"))
        else {
            panic!("inbound expected")
        };

        assert_eq!(message.group_id.as_deref(), Some("120363025246125486"));
        assert!(
            !message.opens_window(),
            "a group message opens no 1:1 window"
        );
        let referral = message.referral.expect("referral");
        assert_eq!(referral.headline.as_deref(), Some("Spring sale"));
        assert_eq!(referral.ctwa_clid.as_deref(), Some("ARAkLkA8rmlFeiCktEJQ"));
        assert_eq!(referral.source_type.as_deref(), Some("ad"));
    }

    #[test]
    fn a_reaction_does_not_open_the_window_but_a_reply_with_context_does() {
        let value = json!({"metadata": metadata(), "messages": [
            {"from": "16505551234", "id": "wamid.R", "timestamp": "1749416383", "type": "reaction",
             "reaction": {"message_id": "wamid.ours", "emoji": "❤️"}},
            {"from": "16505551234", "id": "wamid.T", "timestamp": "1749416384", "type": "text",
             "text": {"body": "yes"}, "context": {"from": "15550783881", "id": "wamid.ours"}}]});

        let events = parse(&envelope(vec![value])).expect("envelope").events;

        let [WebhookEvent::Inbound(reaction), WebhookEvent::Inbound(reply)] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert!(!reaction.opens_window());
        assert!(reply.opens_window());
        assert_eq!(
            reply.context_id.as_ref().map(Wamid::as_str),
            Some("wamid.ours")
        );
        assert_eq!(events[1].dedupe_key(), "inbound:wamid.T");
    }

    #[test]
    fn several_entries_and_changes_are_all_read_and_other_fields_are_skipped_with_a_reason() {
        let statuses: Vec<Value> = (0..1000)
            .map(|i| json!({"id": format!("wamid.{i}"), "status": "delivered", "timestamp": "1750030073", "recipient_id": "16505551234"}))
            .collect();
        let body = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [
                {"field": "messages", "value": {"metadata": metadata(), "statuses": statuses}},
                {"field": "smb_message_echoes", "value": {"message_echoes": []}}]},
            {"id": "2", "changes": [{"field": "messages", "value": documented_text()}]}]});

        let parsed = parse(&serde_json::to_vec(&body).expect("json")).expect("envelope");

        assert_eq!(parsed.events.len(), 1001);
        assert!(matches!(parsed.events[1000], WebhookEvent::Inbound(_)));
        assert_eq!(
            parsed.skipped,
            vec!["entry 0 change 1: field \"smb_message_echoes\" is not handled".to_string()]
        );
    }

    #[test]
    fn unreadable_items_are_refused_with_a_reason_and_system_errors_skipped_while_the_rest_is_kept()
    {
        let value = json!({"metadata": metadata(),
            "statuses": [
                {"id": "wamid.ok", "status": "read", "timestamp": "1750030073", "recipient_id": "1"},
                {"id": "wamid.bad", "status": "read", "timestamp": "yesterday"},
                {"id": "wamid.odd", "status": "warning", "timestamp": "1750030073"},
                "not an object",
                {"status": "read", "timestamp": "1750030073"}],
            "errors": [{"code": 131000, "title": "Something went wrong", "error_data": {"details": "try later"}}]});

        let parsed = parse(&envelope(vec![value])).expect("envelope");

        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.sources.len(), 1);
        assert_eq!(parsed.sources[0].to_json()["id"], "wamid.ok");
        let reasons: Vec<RejectReason> = parsed.rejected.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            vec![
                RejectReason::BadTimestamp,
                RejectReason::UnsupportedStatus,
                RejectReason::Unreadable,
                RejectReason::Unreadable
            ]
        );
        assert!(parsed.rejected[0]
            .detail
            .starts_with("entry 0 change 0 status 1: timestamp \"yesterday\""));
        assert_eq!(parsed.rejected[1].event["id"], "wamid.odd");
        assert!(parsed.rejected[3].detail.contains("no \"id\""));
        assert_eq!(parsed.skipped.len(), 1, "{:?}", parsed.skipped);
        assert!(parsed.skipped[0].contains("system error 131000 Something went wrong try later"));
    }

    fn status_at(timestamp: Value) -> Value {
        json!({"metadata": metadata(), "statuses": [
            {"id": "wamid.T", "status": "delivered", "timestamp": timestamp, "recipient_id": "1"}]})
    }

    fn parsed_timestamp(timestamp: Value) -> Result<DateTime<Utc>, RejectedEvent> {
        let parsed = parse(&envelope(vec![status_at(timestamp)])).expect("envelope");
        match (parsed.events.first(), parsed.rejected.first()) {
            (Some(event), None) => Ok(event.timestamp()),
            (None, Some(rejected)) => Err(rejected.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_millisecond_timestamp_is_read_as_milliseconds() {
        let seconds = parsed_timestamp(json!("1749416383")).expect("seconds");
        let millis = parsed_timestamp(json!("1749416383123")).expect("milliseconds");
        let number = parsed_timestamp(json!(1_749_416_383_123_i64)).expect("a JSON number");

        assert_eq!(seconds.timestamp(), 1_749_416_383);
        assert_eq!(millis.timestamp_millis(), 1_749_416_383_123);
        assert_eq!(number, millis);
    }

    #[test]
    fn a_timestamp_salesforce_cannot_store_is_refused_for_that_event_only() {
        for bad in [
            json!("99999999999"),          // seconds: the year 5138
            json!("-9000000000"),          // seconds: the year 1684
            json!("-9223372036854775808"), // i64::MIN
            json!("9223372036854775807"),  // i64::MAX, even as milliseconds
            json!("99999999999999999"),    // milliseconds: the year 3170843
            json!("1.5e9"),
            json!(1.5),
            json!(true),
            json!(null),
            json!(""),
        ] {
            let refused = parsed_timestamp(bad.clone()).expect_err(&bad.to_string());

            assert_eq!(refused.reason, RejectReason::BadTimestamp, "{bad}");
            assert!(refused.detail.contains("timestamp"), "{}", refused.detail);
            assert_eq!(refused.event["id"], "wamid.T");
        }
        assert_eq!(
            parsed_timestamp(json!("-8520336000"))
                .expect("1700-01-01")
                .to_rfc3339(),
            "1700-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn a_message_stamped_at_chronos_limit_is_refused_not_panicked_on() {
        // chrono's last representable second: read as milliseconds it is the year 2230, which
        // only the time of receipt can tell apart from a real (if odd) timestamp.
        let limit = DateTime::<Utc>::MAX_UTC.timestamp().to_string();
        let mut message = documented_text();
        message["messages"][0]["timestamp"] = json!(limit);
        let received = DateTime::from_timestamp(1_749_416_400, 0).unwrap();

        let parsed = parse_received(&envelope(vec![message]), received).expect("envelope");

        assert!(parsed.events.is_empty());
        assert_eq!(parsed.rejected[0].reason, RejectReason::BadTimestamp);
        assert!(parsed.rejected[0].detail.contains("more than a day after"));
    }

    #[test]
    fn an_event_stamped_within_a_day_of_receipt_is_kept_and_later_ones_refused() {
        let received = DateTime::from_timestamp(1_749_416_383, 0).unwrap();
        let value = json!({"metadata": metadata(), "statuses": [
            {"id": "wamid.skew", "status": "sent", "timestamp": "1749420000"},
            {"id": "wamid.late", "status": "sent", "timestamp": "1749516383"}]});

        let parsed = parse_received(&envelope(vec![value]), received).expect("envelope");

        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].event["id"], "wamid.late");
    }

    #[test]
    fn an_over_long_wamid_or_wa_id_is_refused_and_a_foreign_callback_is_no_record_id() {
        let long = "w".repeat(MAX_WAMID_CHARS + 1);
        let value = json!({"metadata": metadata(),
            "statuses": [
                {"id": long, "status": "read", "timestamp": "1750030073"},
                {"id": "w".repeat(MAX_WAMID_CHARS), "status": "read", "timestamp": "1750030073",
                 "biz_opaque_callback_data": "a005g0000012345AAB"}],
            "messages": [{"from": "1".repeat(MAX_WA_ID_CHARS + 1), "id": "wamid.M", "timestamp": "1749416383",
                          "type": "text", "text": {"body": "hi"}}]});

        let parsed = parse(&envelope(vec![value])).expect("envelope");

        assert_eq!(parsed.events.len(), 1);
        let WebhookEvent::Status(kept) = &parsed.events[0] else {
            panic!("status expected")
        };
        assert_eq!(kept.record_id, None, "a bad checksum is not an Id");
        assert_eq!(parsed.rejected.len(), 2);
        assert!(parsed
            .rejected
            .iter()
            .all(|r| r.reason == RejectReason::ValueTooLong));
        assert!(parsed.rejected[0]
            .detail
            .contains("WhatsApp_Message_Id__c (128)"));
        assert!(parsed.rejected[0].detail.chars().count() < 400);
        assert!(parsed.rejected[1].detail.contains("From_Phone__c"));
    }

    #[test]
    fn a_value_without_a_usable_business_number_refuses_each_of_its_items() {
        let mut long_number = documented_text();
        long_number["metadata"]["phone_number_id"] = json!("9".repeat(33));
        let mut no_number = documented_text();
        no_number["metadata"] = json!({});

        let parsed = parse(&envelope(vec![long_number, no_number])).expect("envelope");

        assert!(parsed.events.is_empty());
        let reasons: Vec<RejectReason> = parsed.rejected.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            vec![RejectReason::ValueTooLong, RejectReason::NoBusinessNumber]
        );
    }

    #[test]
    fn a_business_number_or_sender_that_is_not_digits_is_refused_with_the_value_named() {
        let mut odd_number = documented_text();
        odd_number["metadata"]["phone_number_id"] = json!("PN-1");
        let mut odd_sender = documented_text();
        odd_sender["messages"][0]["from"] = json!("not-a-number");

        let parsed = parse(&envelope(vec![odd_number, odd_sender])).expect("envelope");

        assert!(parsed.events.is_empty());
        let refused: Vec<(RejectReason, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.reason, r.detail.as_str()))
            .collect();
        assert_eq!(
            refused,
            vec![
                (
                    RejectReason::NoBusinessNumber,
                    "entry 0 change 0 message 0: in metadata, the phone_number_id \"PN-1\" is not digits"
                ),
                (
                    RejectReason::Unreadable,
                    "entry 0 change 1 message 0: from: the wa_id \"not-a-number\" is not digits"
                ),
            ]
        );
    }

    #[test]
    fn a_statuses_or_value_of_the_wrong_type_is_refused_whole() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [
            {"field": "messages", "value": {"metadata": metadata(), "statuses": "all read", "messages": null}},
            {"field": "messages", "value": [1, 2]}]}]});

        let parsed = parse(&serde_json::to_vec(&body).unwrap()).expect("envelope");

        assert!(parsed.events.is_empty());
        assert_eq!(parsed.rejected.len(), 2);
        assert_eq!(parsed.rejected[0].event, json!("all read"));
        assert!(parsed.rejected[1].detail.contains("not an object"));
    }

    #[test]
    fn a_lone_surrogate_in_a_text_becomes_a_replacement_character_instead_of_refusing_the_post() {
        let body = String::from_utf8(envelope(vec![documented_text()]))
            .unwrap()
            .replace("another color?", "another color \\ud83d");

        let parsed = parse(body.as_bytes()).expect("repaired, not refused");

        let WebhookEvent::Inbound(message) = only(parsed) else {
            panic!("inbound expected")
        };
        assert_eq!(
            message.kind,
            InboundKind::Text {
                body: "Does it come in another color \u{fffd}".into()
            }
        );
    }

    #[test]
    fn what_an_error_or_reason_echoes_from_the_payload_is_at_most_200_characters() {
        let object = "é".repeat(100_000);
        let body = serde_json::to_vec(&json!({"object": object, "entry": []})).unwrap();
        let field = serde_json::to_vec(&json!({"object": "whatsapp_business_account",
            "entry": [{"changes": [{"field": "x".repeat(100_000)}]}]}))
        .unwrap();

        let error = parse(&body).expect_err("not WhatsApp").to_string();
        let skipped = parse(&field).expect("envelope").skipped;

        assert!(error.chars().count() < 300, "{}", error.len());
        assert!(error.contains('…'));
        assert!(skipped[0].chars().count() < 300);
        assert_eq!(echo(&"ü".repeat(ECHO_CHARS)), "ü".repeat(ECHO_CHARS));
        assert_eq!(
            echo(&"ü".repeat(ECHO_CHARS + 1)).chars().count(),
            ECHO_CHARS + 1
        );
    }

    #[test]
    fn a_body_that_is_not_metas_envelope_is_an_error() {
        assert!(matches!(parse(b"not json"), Err(PayloadError::NotJson(_))));
        assert!(matches!(
            parse(br#"{"object":"page","entry":[]}"#),
            Err(PayloadError::NotWhatsAppEnvelope(_))
        ));
        assert!(matches!(
            parse(br#"{"object":"whatsapp_business_account"}"#),
            Err(PayloadError::NotWhatsAppEnvelope(_))
        ));
        assert_eq!(
            parse(br#"{"object":"whatsapp_business_account","entry":[]}"#),
            Ok(ParsedWebhook::default())
        );
    }

    #[test]
    fn metas_error_text_on_a_failed_status_is_cut_so_the_rep_message_fits_its_field() {
        let value = json!({"metadata": metadata(), "statuses": [{"id": "wamid.F", "status": "failed",
            "timestamp": "1750030073", "errors": [{"code": 131026, "title": "😀".repeat(5000),
            "error_data": {"details": "💥".repeat(5000)}}]}]});

        let WebhookEvent::Status(status) = only(parse(&envelope(vec![value])).expect("envelope"))
        else {
            panic!("status expected")
        };

        let message = status.errors[0].rep_message();
        assert!(
            salesforce_length(&message) <= 1024,
            "{}",
            salesforce_length(&message)
        );
        assert!(message.contains("😀…"));
    }
}

#[cfg(test)]
mod typed_reader_tests {
    //! The typed reader (`super::typed`) against the tree: equal where it reads, silent where
    //! it is unsure.
    use super::*;
    use crate::webhook::typed::read as typed_read;
    use serde_json::{json, Value as Json};

    fn body(value: Json) -> Vec<u8> {
        serde_json::to_vec(&json!({"object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}))
        .unwrap()
    }

    fn status(extra: Json) -> Json {
        let mut status = json!({"id": "wamid.HBgL", "status": "delivered",
            "timestamp": "1750030073", "recipient_id": "16505551234",
            "biz_opaque_callback_data": "a005g0000012345AAA",
            "conversation": {"id": "c1", "origin": {"type": "utility"}},
            "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility",
                        "type": "regular"}});
        for (key, value) in extra.as_object().unwrap() {
            status[key] = value.clone();
        }
        status
    }

    fn value(statuses: Json) -> Json {
        json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": statuses})
    }

    /// Both readers on `body`: the typed one's answer and the tree's.
    fn both(body: &[u8]) -> (Option<ParsedWebhook>, Result<ParsedWebhook, PayloadError>) {
        let received = DateTime::from_timestamp(1_750_030_100, 0).unwrap();
        let served = vec!["106540352242922".to_string()];
        let latest = received.checked_add_signed(crate::webhook::MAX_AHEAD);
        let typed = typed_read(body, latest, Some(served.as_slice()));
        let tree = parse_tree(body, Scope::received(received, Some(&served)));
        (typed, tree)
    }

    fn sources_as_json(parsed: &ParsedWebhook) -> Vec<Json> {
        parsed.sources.iter().map(EventSource::to_json).collect()
    }

    #[test]
    fn a_post_of_statuses_reads_typed_exactly_as_the_tree_reads_it_sources_included() {
        let bodies = [
            body(value(json!([status(json!({}))]))),
            body(value(json!([
                status(json!({"status": "sent", "pricing": null})),
                status(json!({"id": "wamid.2", "status": "read", "timestamp": 1_750_030_073})),
                status(json!({"id": "wamid.3", "timestamp": "1750030073123"})),
                status(json!({"id": "wamid.4", "timestamp": " 1750030073 ",
                    "biz_opaque_callback_data": "not an id", "recipient_id": "not digits",
                    "recipient_user_id": "US.13491208655302741918"})),
                status(
                    json!({"id": "wamid.5", "pricing": {"category": "ü".repeat(300),
                    "billable": null}})
                ),
                status(json!({"id": "wamid.\u{e9}\\\"x"})),
            ]))),
            body(value(json!(null))),
            body(value(json!([]))),
        ];
        for (n, body) in bodies.iter().enumerate() {
            let (typed, tree) = both(body);

            let tree = tree.expect("an envelope");
            let typed = typed.unwrap_or_else(|| panic!("body {n} read typed"));
            assert_eq!(typed.events, tree.events, "body {n}");
            assert_eq!(sources_as_json(&typed), sources_as_json(&tree), "body {n}");
            assert!(typed.rejected.is_empty() && typed.skipped.is_empty());
        }
    }

    /// A plain text message from a phone, with `extra` keys set (`null` removes one).
    fn text_message(extra: Json) -> Json {
        let mut message = json!({"from": "16505551234", "id": "wamid.M1",
            "timestamp": "1750030073", "type": "text", "text": {"body": "Hello"}});
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                message.as_object_mut().unwrap().remove(key);
            } else {
                message[key] = value.clone();
            }
        }
        message
    }

    fn message_value(message: Json) -> Json {
        json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "16505551234"}],
            "messages": [message]})
    }

    fn with_contacts(contacts: Json) -> Json {
        let mut value = message_value(text_message(json!({})));
        value["contacts"] = contacts;
        value
    }

    #[test]
    fn a_post_of_text_messages_reads_typed_exactly_as_the_tree_reads_it_sources_included() {
        let mut no_contacts = message_value(text_message(json!({})));
        no_contacts.as_object_mut().unwrap().remove("contacts");
        let mut mixed = value(json!([status(json!({}))]));
        mixed["messages"] = json!([text_message(json!({"id": "wamid.M2"}))]);
        let bodies = [
            body(message_value(text_message(json!({})))),
            body(message_value(text_message(json!({"from": "+16505551234",
                "timestamp": 1_750_030_073, "text": {"body": "caf\u{e9} \"quoted\" \u{1f600} back\\slash"}})))),
            body(message_value(text_message(
                json!({"timestamp": "1750030073123",
                "text": {"body": "", "extra": true}}),
            ))),
            body(no_contacts),
            body(with_contacts(json!(null))),
            body(with_contacts(json!([]))),
            body(with_contacts(
                json!([{"wa_id": "16505550000", "profile": {"name": "Other"}},
                {"wa_id": "16505551234", "profile": {"name": "Ana"}}]),
            )),
            body(with_contacts(
                json!([{"wa_id": "16505550000", "profile": {"name": "Other"}}]),
            )),
            body(with_contacts(
                json!([{"wa_id": "16505550000"}, {"profile": null}]),
            )),
            body(with_contacts(json!([{"profile": {"name": null}}]))),
            body(json!({"metadata": {"phone_number_id": "106540352242922"},
                "messages": [text_message(json!({})), text_message(json!({"id": "wamid.M2",
                    "from": "442079460958"}))]})),
            body(mixed),
        ];
        for (n, body) in bodies.iter().enumerate() {
            let (typed, tree) = both(body);

            let tree = tree.expect("an envelope");
            let typed = typed.unwrap_or_else(|| {
                panic!("body {n} read typed: {}", String::from_utf8_lossy(body))
            });
            assert!(!typed.events.is_empty(), "body {n}");
            assert_eq!(typed.events, tree.events, "body {n}");
            assert_eq!(sources_as_json(&typed), sources_as_json(&tree), "body {n}");
            assert!(typed.rejected.is_empty() && typed.skipped.is_empty());
            assert!(
                tree.rejected.is_empty() && tree.skipped.is_empty(),
                "body {n}"
            );
        }
    }

    #[test]
    fn every_message_body_of_these_tests_that_the_typed_reader_accepts_reads_as_the_tree_reads_it()
    {
        let kinds = [
            json!({}),
            json!({"context": {"id": "wamid.Q"}}),
            json!({"type": "image", "text": null, "image": {"id": "m1"}}),
            json!({"type": "button", "text": null, "button": {"text": "Yes", "payload": "y"}}),
            json!({"type": "unsupported", "text": null}),
            json!({"from": "", "from_user_id": "US.13491208655302741918"}),
            json!({"from_parent_user_id": "US.ENT.13491208655302741918"}),
            json!({"timestamp": "-99999999999"}),
            json!({"timestamp": "99999999999999"}),
            json!({"id": "w".repeat(300)}),
        ];
        let mut accepted = 0;
        for (n, extra) in kinds.into_iter().enumerate() {
            let body = body(message_value(text_message(extra)));
            let (typed, tree) = both(&body);

            if let Some(typed) = typed {
                accepted += 1;
                let tree = tree.expect("an envelope");
                assert_eq!(typed.events, tree.events, "body {n}");
                assert_eq!(sources_as_json(&typed), sources_as_json(&tree), "body {n}");
                assert!(
                    tree.rejected.is_empty(),
                    "body {n}: the tree refused what typed read"
                );
            }
        }
        assert_eq!(accepted, 1, "only the plain text is read typed");
    }

    #[test]
    fn a_part_for_another_number_is_named_as_the_tree_names_it() {
        let mut other = value(json!([status(json!({}))]));
        other["metadata"]["phone_number_id"] = json!("999");
        let body = body(other);

        let (typed, tree) = both(&body);

        let typed = typed.expect("read typed");
        assert!(typed.events.is_empty());
        assert_eq!(typed.foreign, tree.expect("an envelope").foreign);
    }

    #[test]
    fn anything_the_typed_reader_is_unsure_of_is_left_to_the_tree() {
        let envelope = |whole: Json| serde_json::to_vec(&whole).unwrap();
        let odd_status = |extra: Json| body(value(json!([status(extra)])));
        let mut no_number = value(json!([status(json!({}))]));
        no_number["metadata"] = json!({"display_phone_number": null, "phone_number_id": "1"});
        let mut metadata_list = value(json!([status(json!({}))]));
        metadata_list["metadata"] = json!(["15550783881", "106540352242922"]);
        let bodies = [
            // Refused or skipped statuses.
            odd_status(json!({"status": "played"})),
            odd_status(json!({"status": "warning"})),
            odd_status(json!({"status": 3})),
            odd_status(json!({"id": ""})),
            odd_status(json!({"id": "w".repeat(200)})),
            odd_status(json!({"timestamp": "yesterday"})),
            odd_status(json!({"timestamp": 1.5})),
            odd_status(json!({"timestamp": "99999999999"})),
            odd_status(json!({"timestamp": "1760000000"})), // more than a day after receipt
            odd_status(json!({"timestamp": null})),
            odd_status(json!({"status": "failed", "errors": [{"code": 131026}]})),
            // Types the tree reads leniently.
            odd_status(json!({"recipient_id": 16505551234_i64})),
            odd_status(json!({"pricing": "PMP"})),
            odd_status(json!({"pricing": {"category": 7}})),
            odd_status(json!({"pricing": {"billable": "yes"}})),
            odd_status(json!({"pricing": ["utility"]})),
            body(value(json!([["wamid.X", "read"]]))),
            body(value(json!("all read"))),
            body(no_number),
            body(metadata_list),
            // Other parts of a value, other fields, other envelopes.
            body(json!({"metadata": {"phone_number_id": "106540352242922"},
                "statuses": [status(json!({}))], "errors": [{"code": 131000}]})),
            // Messages other than a plain text from a phone, and texts to refuse.
            body(message_value(text_message(json!({"context": {"id": "wamid.Q"}})))),
            body(message_value(text_message(json!({"referral": {"source_url": "https://x"}})))),
            body(message_value(text_message(json!({"group_id": "120363000000000000"})))),
            body(message_value(text_message(json!({"from_user_id": "US.13491208655302741918"})))),
            body(message_value(text_message(json!({"from": "", "from_user_id": "US.1"})))),
            body(message_value(text_message(json!({"from": "not a phone"})))),
            body(message_value(text_message(json!({"from": null})))),
            body(message_value(text_message(json!({"id": ""})))),
            body(message_value(text_message(json!({"timestamp": "1760000000"})))),
            body(message_value(text_message(json!({"timestamp": "soon"})))),
            body(message_value(text_message(json!({"type": "image", "text": null,
                "image": {"id": "m1", "mime_type": "image/jpeg"}})))),
            body(message_value(text_message(json!({"type": "reaction"})))),
            body(message_value(text_message(json!({"text": {"body": 7}})))),
            body(message_value(text_message(json!({"text": {}})))),
            body(message_value(text_message(json!({"text": "hi"})))),
            body(message_value(text_message(json!({"type": null})))),
            body(with_contacts(json!([{"wa_id": "16505551234", "user_id": "US.13491208655302741918",
                "profile": {"name": "Ana"}}]))),
            body(with_contacts(json!([{"wa_id": "16505551234",
                "profile": {"name": "Ana", "username": "@ana"}}]))),
            body(with_contacts(json!([{"wa_id": 16505551234_i64}]))),
            body(with_contacts(json!({"wa_id": "16505551234"}))),
            body(json!({"metadata": {"phone_number_id": "106540352242922"},
                "messages": [text_message(json!({}))], "user_preferences": []})),
            envelope(json!({"object": "whatsapp_business_account",
                "entry": [{"changes": [{"field": "standby",
                    "value": message_value(text_message(json!({})))}]}]})),
            envelope(json!({"object": "whatsapp_business_account",
                "entry": [{"changes": [{"field": "standby", "value": value(json!([]))}]}]})),
            envelope(json!({"object": "whatsapp_business_account", "entry": [{"id": "1"}]})),
            envelope(json!({"object": "whatsapp_business_account", "entry": [{"changes": [
                {"field": "messages", "value": [1, 2]}]}]})),
            envelope(json!(["whatsapp_business_account", []])),
            br#"{"object":"whatsapp_business_account","entry":[],"entry":[]}"#.to_vec(),
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.A","id":"wamid.B","status":"read","timestamp":"1750030073"}]}}]}]}"#.to_vec(),
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.\ud83d","status":"read","timestamp":"1750030073"}]}}]}]}"#.to_vec(),
        ];
        for (n, body) in bodies.iter().enumerate() {
            let (typed, _) = both(body);

            assert!(
                typed.is_none(),
                "body {n} read typed: {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
