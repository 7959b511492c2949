//! What an inbound message is: Meta's `type` and its object read into an [`InboundKind`], and
//! the click-to-WhatsApp `referral` a message may carry. Called by [`super::payload`] for every
//! item of `messages` (or `standby`); pure.
//!
//! Every `type` Meta documents in 2026 has its kind (text, media, buttons, lists, reactions,
//! locations, contact cards, orders, WhatsApp Flows answers, `request_welcome`, `system`,
//! `unsupported`), and anything else becomes [`InboundKind::Other`] with its raw content
//! summarised — never a silent drop: the record is the only place a rep can see what a customer
//! sent to a Cloud API number. Only a message whose content cannot mean anything without a value
//! (a text without a body, a media item without its id, a location without coordinates) is
//! refused.

use serde_json::{Map, Value};

use crate::domain::ids::CustomerId;
use crate::domain::message::fit_salesforce;
use crate::domain::webhook_event::{
    echo, InboundKind, InboundMediaKind, OrderItem, Referral, SharedContact, SystemChange,
};

use super::read::{required, text, Refusal};

/// The raw content of a message sfwa has no words for is kept up to this many UTF-16 units (the
/// record's Body holds 4096, and the sentence around it needs room).
pub const SUMMARY_UNITS: usize = 1000;
/// Meta's reasons on an `unsupported` message are cut to this.
const REASON_UNITS: usize = 500;

/// The message's kind, from its `type` and the object under that key.
pub(super) fn inbound_kind(message: &Value) -> Result<InboundKind, Refusal> {
    let kind = required(message, "type")?;
    let object = message.get(kind.as_str()).unwrap_or(&Value::Null);
    let missing =
        |what: &str| Refusal::unreadable(format!("{} message without {what}", echo(&kind)));
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
        "interactive" => Ok(interactive(object)),
        "reaction" => Ok(InboundKind::Reaction {
            message_id: required(object, "message_id").map_err(|_| missing("message_id"))?,
            emoji: text(object, "emoji").filter(|e| !e.is_empty()),
        }),
        "location" => Ok(InboundKind::Location {
            latitude: number(object, "latitude").ok_or_else(|| missing("latitude"))?,
            longitude: number(object, "longitude").ok_or_else(|| missing("longitude"))?,
            name: text(object, "name"),
            address: text(object, "address"),
        }),
        "contacts" => Ok(contacts(message, object)),
        "order" => Ok(order(object)),
        "request_welcome" => Ok(InboundKind::RequestWelcome),
        "system" => Ok(InboundKind::System(system(object))),
        "unsupported" => Ok(unsupported(message, object)),
        other => Ok(InboundKind::Other {
            kind: echo(other),
            summary: summary(message, other),
        }),
    }
}

/// A number Meta may write as a JSON number or as a string.
fn number(value: &Value, key: &str) -> Option<f64> {
    let read = match value.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    read.filter(|n: &f64| n.is_finite())
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `interactive`: a button or list reply, a WhatsApp Flows answer (`nfm_reply`), or another
/// interactive reply kept by name.
fn interactive(object: &Value) -> InboundKind {
    let reply = ["button_reply", "list_reply"]
        .iter()
        .find_map(|key| object.get(*key));
    if let Some(reply) = reply {
        return InboundKind::Interactive {
            id: text(reply, "id").unwrap_or_default(),
            title: text(reply, "title").unwrap_or_default(),
        };
    }
    let kind = text(object, "type").unwrap_or_default();
    match object.get("nfm_reply") {
        Some(flow) => InboundKind::FlowReply {
            name: text(flow, "name").filter(|n| !n.is_empty()),
            body: text(flow, "body").filter(|b| !b.is_empty()),
            // Meta sends the answers as a JSON object written into a string; an object is taken too.
            response_json: match flow.get("response_json") {
                Some(Value::String(json)) => json.clone(),
                Some(Value::Null) | None => "{}".to_string(),
                Some(other) => other.to_string(),
            },
        },
        None => InboundKind::Other {
            kind: format!("interactive/{}", echo(&kind)),
            summary: fit_salesforce(&object.to_string(), SUMMARY_UNITS),
        },
    }
}

/// `contacts`: the cards shared. It answers our `request_contact_info` when it says
/// `origin: "contact_request"` (on the message or on a card; a string or `{"type": …}`).
fn contacts(message: &Value, cards: &Value) -> InboundKind {
    let cards: &[Value] = cards.as_array().map_or(&[], Vec::as_slice);
    let is_request = |value: &Value| {
        value.get("origin").is_some_and(|origin| {
            origin.as_str() == Some("contact_request")
                || text(origin, "type").as_deref() == Some("contact_request")
        })
    };
    InboundKind::Contacts {
        contacts: cards.iter().map(card).collect(),
        from_contact_request: is_request(message) || cards.iter().any(is_request),
    }
}

/// One contact card: its formatted name (or the parts of the name), phones and emails.
fn card(card: &Value) -> SharedContact {
    let name = card.get("name").unwrap_or(&Value::Null);
    let formatted = text(name, "formatted_name").filter(|n| !n.trim().is_empty());
    let name = formatted.unwrap_or_else(|| {
        ["prefix", "first_name", "middle_name", "last_name", "suffix"]
            .iter()
            .filter_map(|part| text(name, part))
            .filter(|part| !part.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    });
    SharedContact {
        name,
        phones: list(card, "phones")
            .iter()
            .filter_map(|p| {
                let wa_id = text(p, "wa_id").filter(|w| !w.is_empty());
                let phone = text(p, "phone").or_else(|| wa_id.as_ref().map(|w| format!("+{w}")));
                phone.map(|phone| (phone, wa_id))
            })
            .collect(),
        emails: list(card, "emails")
            .iter()
            .filter_map(|e| text(e, "email"))
            .collect(),
    }
}

/// `order`: the catalog, each product line, the customer's note.
fn order(object: &Value) -> InboundKind {
    InboundKind::Order {
        catalog_id: text(object, "catalog_id").unwrap_or_default(),
        items: list(object, "product_items")
            .iter()
            .map(|item| OrderItem {
                product_retailer_id: text(item, "product_retailer_id").unwrap_or_default(),
                quantity: number(item, "quantity").unwrap_or_default(),
                item_price: number(item, "item_price"),
                currency: text(item, "currency").filter(|c| !c.is_empty()),
            })
            .collect(),
        note: text(object, "text").filter(|t| !t.trim().is_empty()),
    }
}

/// `system`: what Meta says changed. On a number change the new phone is `system.wa_id` (or
/// `new_wa_id` in older payloads); on a user-id change, `previous_user_id` → `user_id`. Ids that
/// do not parse are left out (the sentence in `body` still says it).
fn system(object: &Value) -> SystemChange {
    let kind = text(object, "type").unwrap_or_else(|| "unknown".into());
    let wa_id = |key: &str| text(object, key).and_then(|w| w.parse::<CustomerId>().ok());
    let number_change = kind.contains("changed_number");
    let new_wa_id = wa_id("new_wa_id")
        .or_else(|| number_change.then(|| wa_id("wa_id")).flatten())
        .filter(|id| !id.is_user_id());
    let bsuid = |key: &str| text(object, key).and_then(|u| CustomerId::user_id(&u).ok());
    SystemChange {
        body: text(object, "body").unwrap_or_default(),
        new_wa_id,
        previous_user_id: bsuid("previous_user_id"),
        new_user_id: bsuid("user_id").or_else(|| bsuid("new_user_id")),
        kind,
    }
}

/// `unsupported`: Meta's `errors[]` in words (code, title, details), with the unsupported
/// `type` when Meta names it.
fn unsupported(message: &Value, object: &Value) -> InboundKind {
    let mut reasons: Vec<String> = list(message, "errors")
        .iter()
        .map(|error| {
            let code = error.get("code").and_then(Value::as_i64);
            let title = text(error, "title").or_else(|| text(error, "message"));
            let details = error.get("error_data").and_then(|d| text(d, "details"));
            [
                code.map(|c| c.to_string()),
                title,
                details.map(|d| format!("({d})")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
        })
        .filter(|reason| !reason.is_empty())
        .collect();
    if let Some(kind) = text(object, "type").filter(|t| !t.is_empty()) {
        reasons.insert(0, format!("type \"{}\"", echo(&kind)));
    }
    let reason = if reasons.is_empty() {
        "Meta gave no reason".to_string()
    } else {
        reasons.join("; ")
    };
    InboundKind::Unsupported {
        reason: fit_salesforce(&reason, REASON_UNITS),
    }
}

/// The raw content of a message of an unknown `kind`: the object under its type's key, or,
/// without one, the message without the keys every message has. Compact JSON, bounded.
fn summary(message: &Value, kind: &str) -> String {
    let content = match message.get(kind) {
        Some(object) if !object.is_null() => object.clone(),
        _ => {
            let mut rest: Map<String, Value> = message.as_object().cloned().unwrap_or_default();
            for key in [
                "from",
                "from_user_id",
                "from_parent_user_id",
                "id",
                "timestamp",
                "type",
                "context",
                "referral",
                "group_id",
            ] {
                rest.remove(key);
            }
            Value::Object(rest)
        }
    };
    match &content {
        Value::Object(map) if map.is_empty() => String::new(),
        other => fit_salesforce(&other.to_string(), SUMMARY_UNITS),
    }
}

/// `referral`: the click-to-WhatsApp ad or post the customer came from, on the first message
/// after the click. `None` when absent or empty.
pub(super) fn referral(message: &Value) -> Option<Referral> {
    let object = message.get("referral").filter(|r| r.is_object())?;
    let field = |key: &str| text(object, key).filter(|t| !t.trim().is_empty());
    let referral = Referral {
        source_url: field("source_url"),
        source_id: field("source_id"),
        source_type: field("source_type"),
        headline: field("headline"),
        body: field("body"),
        media_type: field("media_type"),
        ctwa_clid: field("ctwa_clid"),
    };
    (referral != Referral::default()).then_some(referral)
}

#[cfg(test)]
mod tests {
    //! Meta's documented shapes of each 2026 inbound type, read through the whole parser.

    use serde_json::json;

    use super::*;
    use crate::domain::webhook_event::WebhookEvent;

    /// The kind of the one message `message` (type `kind`, its object under `kind`).
    fn kind_of(message: Value) -> InboundKind {
        let mut message = message;
        message["from"] = json!("16505551234");
        message["id"] = json!("wamid.K");
        message["timestamp"] = json!("1749416383");
        let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [
            {"field": "messages", "value": {
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "messages": [message]}}]}]});
        let parsed = crate::webhook::parse(&serde_json::to_vec(&body).unwrap()).expect("envelope");
        match parsed.events.as_slice() {
            [WebhookEvent::Inbound(message)] => message.kind.clone(),
            other => panic!("{other:?} {:?}", parsed.rejected),
        }
    }

    #[test]
    fn a_contact_card_gives_its_name_phones_and_emails() {
        let kind = kind_of(json!({"type": "contacts", "contacts": [{
            "name": {"formatted_name": "Ana Lima", "first_name": "Ana", "last_name": "Lima"},
            "phones": [{"phone": "+55 11 98765-4321", "wa_id": "5511987654321", "type": "CELL"},
                       {"phone": "+55 11 3333-4444", "type": "WORK"}],
            "emails": [{"email": "ana@example.com", "type": "WORK"}],
            "org": {"company": "Lima Ltda"}}]}));

        assert_eq!(
            kind,
            InboundKind::Contacts {
                contacts: vec![SharedContact {
                    name: "Ana Lima".into(),
                    phones: vec![
                        ("+55 11 98765-4321".into(), Some("5511987654321".into())),
                        ("+55 11 3333-4444".into(), None)
                    ],
                    emails: vec!["ana@example.com".into()],
                }],
                from_contact_request: false
            }
        );
    }

    #[test]
    fn a_contact_card_answering_our_request_says_so_and_a_name_without_format_is_joined() {
        let on_card = kind_of(json!({"type": "contacts", "contacts": [{
            "name": {"first_name": "Bo", "last_name": "Chen"}, "origin": "contact_request",
            "phones": [{"wa_id": "16505551234"}]}]}));
        let on_message = kind_of(
            json!({"type": "contacts", "origin": {"type": "contact_request"},
            "contacts": [{"name": {"formatted_name": "Bo"}}]}),
        );

        let InboundKind::Contacts {
            contacts,
            from_contact_request: true,
        } = on_card
        else {
            panic!("{on_card:?}")
        };
        assert_eq!(contacts[0].name, "Bo Chen");
        assert_eq!(
            contacts[0].phones,
            vec![("+16505551234".into(), Some("16505551234".into()))]
        );
        assert!(matches!(
            on_message,
            InboundKind::Contacts {
                from_contact_request: true,
                ..
            }
        ));
    }

    #[test]
    fn an_order_gives_its_catalog_items_quantities_prices_and_note() {
        let kind = kind_of(
            json!({"type": "order", "order": {"catalog_id": "123", "text": "By Friday",
            "product_items": [
                {"product_retailer_id": "SKU-1", "quantity": 2, "item_price": 10, "currency": "BRL"},
                {"product_retailer_id": "SKU-2", "quantity": "1", "item_price": "5.5", "currency": "BRL"}]}}),
        );

        assert_eq!(
            kind,
            InboundKind::Order {
                catalog_id: "123".into(),
                items: vec![
                    OrderItem {
                        product_retailer_id: "SKU-1".into(),
                        quantity: 2.0,
                        item_price: Some(10.0),
                        currency: Some("BRL".into())
                    },
                    OrderItem {
                        product_retailer_id: "SKU-2".into(),
                        quantity: 1.0,
                        item_price: Some(5.5),
                        currency: Some("BRL".into())
                    },
                ],
                note: Some("By Friday".into())
            }
        );
    }

    #[test]
    fn a_flows_answer_keeps_name_body_and_response_json() {
        let kind = kind_of(
            json!({"type": "interactive", "interactive": {"type": "nfm_reply",
            "nfm_reply": {"name": "signup", "body": "Sent",
                "response_json": "{\"flow_token\": \"t1\", \"name\": \"Ana\", \"date\": \"2026-12-01\"}"}}}),
        );
        let other = kind_of(
            json!({"type": "interactive", "interactive": {"type": "call_permission_reply",
            "call_permission_reply": {"response": "accept"}}}),
        );

        assert_eq!(
            kind,
            InboundKind::FlowReply {
                name: Some("signup".into()),
                body: Some("Sent".into()),
                response_json: r#"{"flow_token": "t1", "name": "Ana", "date": "2026-12-01"}"#
                    .into()
            }
        );
        let InboundKind::Other { kind, summary } = other else {
            panic!("{other:?}")
        };
        assert_eq!(kind, "interactive/call_permission_reply");
        assert!(summary.contains("accept"), "{summary}");
    }

    #[test]
    fn request_welcome_and_both_system_changes_are_read() {
        let welcome = kind_of(json!({"type": "request_welcome"}));
        let number = kind_of(
            json!({"type": "system", "system": {"type": "user_changed_number",
            "body": "Ana changed their phone number from 16505551234 to 16505559999",
            "wa_id": "16505559999"}}),
        );
        let user_id = kind_of(
            json!({"type": "system", "system": {"type": "user_changed_user_id",
            "body": "User id changed", "previous_user_id": "US.111", "user_id": "US.222"}}),
        );

        assert_eq!(welcome, InboundKind::RequestWelcome);
        let InboundKind::System(number) = number else {
            panic!("{number:?}")
        };
        assert_eq!(number.kind, "user_changed_number");
        assert_eq!(
            number.new_wa_id.as_ref().map(CustomerId::as_str),
            Some("16505559999")
        );
        let InboundKind::System(user_id) = user_id else {
            panic!("{user_id:?}")
        };
        assert_eq!(
            (
                user_id.previous_user_id.as_ref().map(CustomerId::as_str),
                user_id.new_user_id.as_ref().map(CustomerId::as_str),
                user_id.new_wa_id
            ),
            (Some("US.111"), Some("US.222"), None)
        );
    }

    #[test]
    fn an_unsupported_message_says_metas_reasons_and_an_unknown_type_keeps_its_content_bounded() {
        let unsupported = kind_of(
            json!({"type": "unsupported", "unsupported": {"type": "edit"},
            "errors": [{"code": 131051, "title": "Message type unknown",
                        "error_data": {"details": "Message type is currently not supported."}}]}),
        );
        let unknown = kind_of(json!({"type": "hologram", "hologram": {"data": "x".repeat(5000)}}));
        let bare = kind_of(json!({"type": "ephemeral", "note": "gone"}));

        assert_eq!(
            unsupported,
            InboundKind::Unsupported {
                reason: "type \"edit\"; 131051 Message type unknown (Message type is currently not supported.)".into()
            }
        );
        let InboundKind::Other { kind, summary } = unknown else {
            panic!("{unknown:?}")
        };
        assert_eq!(kind, "hologram");
        assert!(summary.starts_with("{\"data\":\"xxx"), "{summary}");
        assert!(crate::domain::text::salesforce_length(&summary) <= SUMMARY_UNITS);
        assert_eq!(
            bare,
            InboundKind::Other {
                kind: "ephemeral".into(),
                summary: r#"{"note":"gone"}"#.into()
            }
        );
    }
}
