//! Meta's webhook POST body → domain events. Pure: the handler verifies the signature, calls
//! [`parse`], stores the events durably and answers 200.
//!
//! One POST holds an envelope of entries, each with changes, each with a value carrying up to 1000
//! status updates and/or inbound messages. Parsing is lenient per item: a status or message that
//! cannot be read is reported in [`ParsedWebhook::skipped`] and the rest still counts, because
//! answering non-200 makes Meta redeliver the whole POST for days (and the bad item with it).
//! Only a body that is not Meta's envelope at all is an error ([`PayloadError`], answer 400).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::sf_id::SfId;
use crate::domain::status::MessageStatus;
use crate::whatsapp::{classify, error_code, rep_message, Action};

/// A body that is not a WhatsApp Business Account webhook.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the webhook body is not JSON: {0}")]
    NotJson(String),
    #[error("the webhook body is not a WhatsApp Business Account envelope: {0}")]
    NotWhatsAppEnvelope(String),
}

/// Everything one POST said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedWebhook {
    pub events: Vec<WebhookEvent>,
    /// Human reasons for parts ignored (other fields, system errors, unreadable items).
    pub skipped: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WebhookEvent {
    Status(StatusUpdate),
    Inbound(InboundMessage),
}

impl WebhookEvent {
    /// Meta may deliver an update twice: `status:{wamid}:{status}` / `inbound:{wamid}`.
    pub fn dedupe_key(&self) -> String {
        match self {
            WebhookEvent::Status(s) => {
                format!(
                    "status:{}:{}",
                    s.wamid,
                    s.status.as_salesforce().to_ascii_lowercase()
                )
            }
            WebhookEvent::Inbound(m) => format!("inbound:{}", m.wamid),
        }
    }
}

/// A status of one of our messages.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub wamid: String,
    /// Sent, Delivered, Read or Failed.
    pub status: MessageStatus,
    /// Meta's time of the event (not our time of receipt).
    pub timestamp: DateTime<Utc>,
    pub recipient_id: String,
    /// `metadata.phone_number_id`.
    pub business_number_id: String,
    /// `biz_opaque_callback_data` read as a record Id; `None` if absent or not an Id (a message
    /// sent by another tool on the same number).
    pub record_id: Option<SfId>,
    /// Only on `failed`.
    pub errors: Vec<StatusError>,
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

impl StatusError {
    /// The same classification as synchronous errors.
    pub fn action(&self) -> Action {
        classify(self.code)
    }

    /// Error_Code__c (`WA_131026`, `OUTSIDE_SESSION_WINDOW`).
    pub fn error_code(&self) -> String {
        error_code(self.code)
    }

    /// Error_Message__c.
    pub fn rep_message(&self) -> String {
        rep_message(self.code, Some(&self.title), self.details.as_deref())
    }
}

/// A message a customer sent to one of our business numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    pub wamid: String,
    /// `metadata.phone_number_id`: which of our numbers (and so which window) it is for.
    pub business_number_id: String,
    pub display_phone_number: String,
    /// The customer's wa_id.
    pub from: String,
    pub profile_name: Option<String>,
    /// Meta's time of the message: the window is measured from it.
    pub timestamp: DateTime<Utc>,
    pub kind: InboundKind,
    /// The wamid this message replies to (`context.id`).
    pub context_id: Option<String>,
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
    /// Any other `type` (contacts, order, unsupported, system, …), kept by name.
    Other(String),
}

impl InboundMessage {
    /// Whether this message opens or refreshes the 24-hour window. Every customer message does,
    /// except: reactions — Meta does not document whether they count, so sfwa takes the strict
    /// reading (as the simulator does), since a wrong "open" costs a failed send and a wrong
    /// "closed" only costs a template; and `system` messages, which Meta writes, not the customer.
    pub fn opens_window(&self) -> bool {
        match &self.kind {
            InboundKind::Reaction { .. } => false,
            InboundKind::Other(kind) => kind != "system",
            _ => true,
        }
    }
}

/// Parses a whole webhook POST body.
pub fn parse(body: &[u8]) -> Result<ParsedWebhook, PayloadError> {
    let envelope: Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    let object = envelope.get("object").and_then(Value::as_str);
    if object != Some("whatsapp_business_account") {
        return Err(PayloadError::NotWhatsAppEnvelope(format!(
            "\"object\" is {}",
            object.map_or("missing".to_string(), |o| format!("\"{o}\""))
        )));
    }
    let Some(entries) = envelope.get("entry").and_then(Value::as_array) else {
        return Err(PayloadError::NotWhatsAppEnvelope(
            "\"entry\" is not a list".into(),
        ));
    };
    let mut parsed = ParsedWebhook::default();
    for (e, entry) in entries.iter().enumerate() {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            parsed
                .skipped
                .push(format!("entry {e}: no \"changes\" list"));
            continue;
        };
        for (c, change) in changes.iter().enumerate() {
            let at = format!("entry {e} change {c}");
            match change.get("field").and_then(Value::as_str) {
                Some("messages") => {}
                Some(other) => {
                    parsed
                        .skipped
                        .push(format!("{at}: field \"{other}\" is not handled"));
                    continue;
                }
                None => {
                    parsed.skipped.push(format!("{at}: no \"field\""));
                    continue;
                }
            }
            match change.get("value") {
                Some(value) => parse_value(value, &at, &mut parsed),
                None => parsed.skipped.push(format!("{at}: no \"value\"")),
            }
        }
    }
    Ok(parsed)
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
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn parse_value(value: &Value, at: &str, parsed: &mut ParsedWebhook) {
    let metadata: Metadata = value
        .get("metadata")
        .and_then(|m| Metadata::deserialize(m).ok())
        .unwrap_or_default();
    if metadata.phone_number_id.is_empty() {
        parsed
            .skipped
            .push(format!("{at}: no metadata.phone_number_id; value ignored"));
        return;
    }
    let contacts: Vec<Contact> = items(value, "contacts")
        .iter()
        .filter_map(|c| Contact::deserialize(c).ok())
        .collect();
    for (i, status) in items(value, "statuses").iter().enumerate() {
        match status_update(status, &metadata) {
            Ok(update) => parsed.events.push(WebhookEvent::Status(update)),
            Err(reason) => parsed.skipped.push(format!("{at} status {i}: {reason}")),
        }
    }
    for (i, message) in items(value, "messages").iter().enumerate() {
        match inbound_message(message, &metadata, &contacts) {
            Ok(inbound) => parsed.events.push(WebhookEvent::Inbound(inbound)),
            Err(reason) => parsed.skipped.push(format!("{at} message {i}: {reason}")),
        }
    }
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
        parsed.skipped.push(
            format!("{at}: system error {code} {title} {details}")
                .trim_end()
                .to_string(),
        );
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

fn required(value: &Value, key: &str) -> Result<String, String> {
    text(value, key)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("no \"{key}\""))
}

/// Meta's timestamps are Unix seconds as a string; accept a number too.
fn timestamp(value: &Value) -> Result<DateTime<Utc>, String> {
    let raw = value.get("timestamp");
    let seconds = raw.and_then(|t| match t {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    });
    seconds
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| {
            format!(
                "timestamp {} is not Unix seconds",
                raw.unwrap_or(&Value::Null)
            )
        })
}

fn status_update(status: &Value, metadata: &Metadata) -> Result<StatusUpdate, String> {
    let wamid = required(status, "id")?;
    let meta_status = required(status, "status")?;
    let parsed_status = MessageStatus::from_meta(&meta_status)
        .ok_or_else(|| format!("status \"{meta_status}\" of {wamid} is not handled"))?;
    let errors = items(status, "errors")
        .iter()
        .map(|e| StatusError {
            code: e.get("code").and_then(Value::as_i64).unwrap_or_default(),
            title: text(e, "title").unwrap_or_default(),
            message: text(e, "message"),
            details: e.get("error_data").and_then(|d| text(d, "details")),
        })
        .collect();
    Ok(StatusUpdate {
        status: parsed_status,
        timestamp: timestamp(status)?,
        recipient_id: text(status, "recipient_id").unwrap_or_default(),
        business_number_id: metadata.phone_number_id.clone(),
        record_id: text(status, "biz_opaque_callback_data").and_then(|d| SfId::parse(&d).ok()),
        errors,
        wamid,
    })
}

fn inbound_message(
    message: &Value,
    metadata: &Metadata,
    contacts: &[Contact],
) -> Result<InboundMessage, String> {
    let wamid = required(message, "id")?;
    let from = required(message, "from")?;
    let profile_name = contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(from.as_str()))
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        })
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.clone());
    Ok(InboundMessage {
        kind: inbound_kind(message)?,
        timestamp: timestamp(message)?,
        context_id: message.get("context").and_then(|c| text(c, "id")),
        business_number_id: metadata.phone_number_id.clone(),
        display_phone_number: metadata.display_phone_number.clone(),
        profile_name,
        from,
        wamid,
    })
}

fn inbound_kind(message: &Value) -> Result<InboundKind, String> {
    let kind = required(message, "type")?;
    let object = message.get(kind.as_str()).unwrap_or(&Value::Null);
    let missing = |what: &str| format!("{kind} message without {what}");
    let media = |media_kind| {
        Ok(InboundKind::Media {
            kind: media_kind,
            media_id: required(object, "id").map_err(|_| missing("a media id"))?,
            mime_type: text(object, "mime_type"),
            caption: text(object, "caption"),
            filename: text(object, "filename"),
        })
    };
    match kind.as_str() {
        "text" => Ok(InboundKind::Text {
            body: text(object, "body").ok_or_else(|| missing("text.body"))?,
        }),
        "image" => media(InboundMediaKind::Image),
        "document" => media(InboundMediaKind::Document),
        "audio" => media(InboundMediaKind::Audio),
        "video" => media(InboundMediaKind::Video),
        "sticker" => media(InboundMediaKind::Sticker),
        "button" => Ok(InboundKind::Button {
            text: text(object, "text").unwrap_or_default(),
            payload: text(object, "payload").unwrap_or_default(),
        }),
        "interactive" => {
            let reply = ["button_reply", "list_reply"]
                .iter()
                .find_map(|key| object.get(*key));
            Ok(match reply {
                Some(reply) => InboundKind::Interactive {
                    id: text(reply, "id").unwrap_or_default(),
                    title: text(reply, "title").unwrap_or_default(),
                },
                None => InboundKind::Other(format!(
                    "interactive/{}",
                    text(object, "type").unwrap_or_default()
                )),
            })
        }
        "reaction" => Ok(InboundKind::Reaction {
            message_id: required(object, "message_id").map_err(|_| missing("message_id"))?,
            emoji: text(object, "emoji").filter(|e| !e.is_empty()),
        }),
        "location" => Ok(InboundKind::Location {
            latitude: object
                .get("latitude")
                .and_then(Value::as_f64)
                .ok_or_else(|| missing("latitude"))?,
            longitude: object
                .get("longitude")
                .and_then(Value::as_f64)
                .ok_or_else(|| missing("longitude"))?,
            name: text(object, "name"),
            address: text(object, "address"),
        }),
        other => Ok(InboundKind::Other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(status.recipient_id, "16505551234");
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
                InboundKind::Other("contacts".into()),
            ]
        );
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
        assert_eq!(reply.context_id.as_deref(), Some("wamid.ours"));
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
                {"field": "message_template_status_update", "value": {"event": "APPROVED"}}]},
            {"id": "2", "changes": [{"field": "messages", "value": documented_text()}]}]});

        let parsed = parse(&serde_json::to_vec(&body).expect("json")).expect("envelope");

        assert_eq!(parsed.events.len(), 1001);
        assert!(matches!(parsed.events[1000], WebhookEvent::Inbound(_)));
        assert_eq!(
            parsed.skipped,
            vec![
                "entry 0 change 1: field \"message_template_status_update\" is not handled"
                    .to_string()
            ]
        );
    }

    #[test]
    fn unreadable_items_and_system_errors_are_skipped_while_the_rest_is_kept() {
        let value = json!({"metadata": metadata(),
            "statuses": [
                {"id": "wamid.ok", "status": "read", "timestamp": "1750030073", "recipient_id": "1"},
                {"id": "wamid.bad", "status": "read", "timestamp": "yesterday"},
                {"id": "wamid.odd", "status": "deleted", "timestamp": "1750030073"}],
            "errors": [{"code": 131000, "title": "Something went wrong", "error_data": {"details": "try later"}}]});

        let parsed = parse(&envelope(vec![value])).expect("envelope");

        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.skipped.len(), 3, "{:?}", parsed.skipped);
        assert!(parsed.skipped[0].contains("timestamp"));
        assert!(parsed.skipped[1].contains("\"deleted\""));
        assert!(parsed.skipped[2].contains("system error 131000 Something went wrong try later"));
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
}
