//! The common webhook POSTs — status updates of our messages, and customers' text messages — read
//! straight into typed values borrowed from the body, without building a JSON tree: Meta sends
//! three status POSTs per message sent (sent, delivered, read) and one POST per message received,
//! so this is most of the receiver's parsing.
//!
//! It answers only when it is sure to give exactly what [`super::payload`]'s reader of every
//! shape gives: a body that is strict JSON in the documented shape, every change a `messages`
//! change with statuses and text messages only, every status one that is applied as it is (no
//! refusal, no skipped part), every message a `text` from a phone with nothing beside its
//! `from`, `id`, `timestamp`, `type` and `text` (no reply context, referral, group, BSUID), every
//! contact a `wa_id` and a profile name. Anything else — another field, another message type or
//! key, a system error, a value of an unexpected type, a repeated key, an item to refuse or skip —
//! makes it answer `None`, and the body is read by the other reader, which keeps every lenient
//! rule. The tests of `payload` run through here whenever their body is of this kind, and
//! `payload::typed_reader_tests` compares both readers on the edges.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::read::{cut_chars, stamped, PRICING_CHARS};
use crate::domain::ids::{BusinessNumberId, CustomerId, Wamid};
use crate::domain::sf_id::SfId;
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::{
    EventSource, InboundKind, InboundMessage, ParsedWebhook, Pricing, StatusUpdate, WebhookEvent,
};

/// Reads `body` if it is a POST of status updates and text messages only, each to apply as it
/// is: the events (and the business numbers of parts for numbers not `served`, as the other
/// reader names them). `None` when the other reader must read it.
pub(super) fn read(
    body: &[u8],
    latest: Option<DateTime<Utc>>,
    served: Option<&[String]>,
) -> Option<ParsedWebhook> {
    let envelope: Object<Envelope<'_>> = serde_json::from_slice(body).ok()?;
    let envelope = envelope.0;
    if envelope.object != "whatsapp_business_account" {
        return None;
    }
    let mut parsed = ParsedWebhook::default();
    // Shared by the events' sources: read back only if applying one fails.
    let mut shared: Option<Arc<[u8]>> = None;
    for (e, entry) in envelope.entry.into_iter().enumerate() {
        for (c, change) in entry.0.changes.into_iter().enumerate() {
            let change = change.0;
            if change.field != "messages" {
                return None;
            }
            let value = change.value.0;
            if value.user_preferences.is_some() || value.errors.is_some() {
                return None;
            }
            let metadata = value.metadata?.0;
            let number: BusinessNumberId = metadata.phone_number_id.parse().ok()?;
            if !served.is_none_or(|served| served.iter().any(|s| s == number.as_str())) {
                parsed.foreign.push(number);
                continue;
            }
            let mut place = |event: WebhookEvent, list: &'static str, item: usize| {
                if latest.is_some_and(|latest| event.timestamp() > latest) {
                    return None;
                }
                parsed.events.push(event);
                let body = shared.get_or_insert_with(|| Arc::from(body)).clone();
                parsed.sources.push(EventSource::Item {
                    body,
                    entry: e,
                    change: c,
                    list,
                    item,
                });
                Some(())
            };
            for (i, status) in value.statuses.unwrap_or_default().into_iter().enumerate() {
                let update = status_update(status.0, &number)?;
                place(WebhookEvent::Status(update), "statuses", i)?;
            }
            let contacts = value.contacts.unwrap_or_default();
            for (i, message) in value.messages.unwrap_or_default().into_iter().enumerate() {
                let message = text_message(message.0, &metadata, &number, &contacts)?;
                place(WebhookEvent::Inbound(message), "messages", i)?;
            }
        }
    }
    Some(parsed)
}

/// One text message as `payload::inbound_message` reads it, when that reading refuses nothing:
/// the sender is the phone in `from` (the shape has no BSUID), described by the contact with
/// that `wa_id`, else by the only contact.
fn text_message(
    message: Message<'_>,
    metadata: &Metadata<'_>,
    number: &BusinessNumberId,
    contacts: &[Object<Contact<'_>>],
) -> Option<InboundMessage> {
    if &*message.message_type? != "text" {
        return None;
    }
    let body = message.text?.0.body?;
    let wamid: Wamid = message.id.filter(|id| !id.is_empty())?.parse().ok()?;
    let from: CustomerId = message.from.filter(|from| !from.is_empty())?.parse().ok()?;
    let timestamp = stamped(message.timestamp?.0)?;
    let contact = contacts
        .iter()
        .find(|c| c.0.wa_id.as_deref() == Some(from.as_str()))
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        });
    let profile_name = contact
        .and_then(|c| c.0.profile.as_ref())
        .and_then(|p| p.0.name.as_deref())
        .map(str::to_string);
    let mut inbound = InboundMessage::new(
        wamid,
        number.clone(),
        from,
        timestamp,
        InboundKind::Text {
            body: body.to_string(),
        },
    );
    inbound.display_phone_number = metadata.display_phone_number.to_string();
    inbound.profile_name = profile_name;
    Some(inbound)
}

/// One status as `payload::status_update` reads it, when that reading refuses nothing.
fn status_update(status: Status<'_>, number: &BusinessNumberId) -> Option<StatusUpdate> {
    if status.errors.is_some() {
        return None;
    }
    let id = status.id.filter(|id| !id.is_empty())?;
    let wamid: Wamid = id.parse().ok()?;
    let meta_status = status.status.filter(|s| !s.is_empty())?;
    // `played` and `deleted` are skipped parts, unknown ones refused: both the other reader's.
    if matches!(&*meta_status, "played" | "deleted") {
        return None;
    }
    let parsed_status = MessageStatus::from_meta(&meta_status)?;
    let timestamp = stamped(status.timestamp?.0)?;
    Some(StatusUpdate {
        status: parsed_status,
        timestamp,
        recipient_id: status.recipient_id.and_then(|r| r.parse().ok()),
        recipient_user_id: status
            .recipient_user_id
            .and_then(|r| CustomerId::user_id(&r).ok()),
        business_number_id: number.clone(),
        record_id: status
            .biz_opaque_callback_data
            .and_then(|d| SfId::parse(&d).ok()),
        errors: Vec::new(),
        pricing: status.pricing.map(|pricing| {
            let pricing = pricing.0;
            let part = |text: Option<Text<'_>>| text.map(|t| cut_chars(&t, PRICING_CHARS));
            Pricing {
                category: part(pricing.category),
                pricing_type: part(pricing.pricing_type),
                model: part(pricing.pricing_model),
                billable: pricing.billable,
            }
        }),
        wamid,
    })
}

// The shape. Every struct is read through [`Object`] (a JSON object only, as the other reader
// asks with `is_object`/`get`); a key given twice fails the derive (the tree would keep the last
// one), and a value of another type fails its field: both send the body to the other reader.
// Unknown keys are ignored, as there. A text the other reader takes with `as_str` is an
// `Option<Cow<str>>`: `null` and absent are both `None` there too.

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    object: Cow<'a, str>,
    #[serde(borrow)]
    entry: Vec<Object<Entry<'a>>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    changes: Vec<Object<Change<'a>>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(borrow)]
    field: Cow<'a, str>,
    #[serde(borrow)]
    value: Object<ChangeValue<'a>>,
}

#[derive(Deserialize)]
struct ChangeValue<'a> {
    #[serde(borrow)]
    metadata: Option<Object<Metadata<'a>>>,
    #[serde(borrow)]
    statuses: Option<Vec<Object<Status<'a>>>>,
    #[serde(borrow)]
    contacts: Option<Vec<Object<Contact<'a>>>>,
    #[serde(borrow)]
    messages: Option<Vec<Object<Message<'a>>>>,
    user_preferences: Option<IgnoredAny>,
    errors: Option<IgnoredAny>,
}

/// `payload::Metadata`: its fields are `String`s with a default, so absent is empty and `null`
/// (not text) fails — as [`Text`] does.
#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(default, borrow)]
    display_phone_number: Text<'a>,
    #[serde(default, borrow)]
    phone_number_id: Text<'a>,
}

/// A `contacts[]` entry of the plain kind: a `wa_id` and a profile name. A BSUID, a username or
/// anything else is for the other reader (`deny_unknown_fields` fails the body).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contact<'a> {
    #[serde(borrow)]
    wa_id: Option<Text<'a>>,
    #[serde(borrow)]
    profile: Option<Object<Profile<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

/// A message with only the keys a plain text from a phone has; any other key (a reply's
/// `context`, a `referral`, a `group_id`, a BSUID, another type's object) fails the body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    #[serde(borrow)]
    from: Option<Text<'a>>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    timestamp: Option<Stamp>,
    #[serde(borrow, rename = "type")]
    message_type: Option<Text<'a>>,
    #[serde(borrow)]
    text: Option<Object<TextPart<'a>>>,
}

#[derive(Deserialize)]
struct TextPart<'a> {
    #[serde(borrow)]
    body: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Status<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    status: Option<Text<'a>>,
    timestamp: Option<Stamp>,
    #[serde(borrow)]
    recipient_id: Option<Text<'a>>,
    #[serde(borrow)]
    recipient_user_id: Option<Text<'a>>,
    #[serde(borrow)]
    biz_opaque_callback_data: Option<Text<'a>>,
    errors: Option<IgnoredAny>,
    #[serde(borrow)]
    pricing: Option<Object<PricingPart<'a>>>,
}

#[derive(Deserialize)]
struct PricingPart<'a> {
    #[serde(borrow)]
    category: Option<Text<'a>>,
    #[serde(borrow, rename = "type")]
    pricing_type: Option<Text<'a>>,
    #[serde(borrow)]
    pricing_model: Option<Text<'a>>,
    billable: Option<bool>,
}

/// A JSON text, borrowed from the body unless it holds escapes (serde's own `Cow<str>` always
/// copies). Anything but text fails; inside an `Option`, `null` is `None`.
#[derive(Default)]
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text<'a>, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Cow<'de, str>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(text))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(text.to_string()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(text))
            }
        }
        deserializer.deserialize_str(TextVisitor).map(Text)
    }
}

/// An item's `timestamp` as `payload::timestamp` reads it, when it reads: Unix seconds (or
/// milliseconds) as text, trimmed, or as a whole JSON number that fits an i64. Anything else
/// fails, for the other reader to refuse.
struct Stamp(i64);

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Stamp, D::Error> {
        struct StampVisitor;
        impl Visitor<'_> for StampVisitor {
            type Value = Stamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Unix seconds as text or a whole number")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Stamp, E> {
                text.trim()
                    .parse()
                    .map(Stamp)
                    .map_err(|_| E::custom("not Unix seconds"))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Stamp, E> {
                Ok(Stamp(number))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Stamp, E> {
                i64::try_from(number)
                    .map(Stamp)
                    .map_err(|_| E::custom("too large"))
            }
        }
        deserializer.deserialize_any(StampVisitor)
    }
}

/// `T` read from a JSON object only (serde's derive also reads a struct from an array, by
/// position, where the other reader sees no keys at all).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Object<T>, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}
