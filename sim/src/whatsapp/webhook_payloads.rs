//! Meta's webhook bodies: the `whatsapp_business_account` envelope, status objects, inbound-message
//! values, and the `X-Hub-Signature-256` header.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::config::WhatsAppSimConfig;
use super::customers::Customer;
use super::graph_error::GraphError;
use super::numbers::Numbers;

/// Whom a status is about, named the way the message was addressed: Meta reports a message
/// sent to a phone number with `recipient_id`, one sent to a BSUID with `recipient_user_id` (and
/// `parent_recipient_user_id` when the customer has a parent BSUID) instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusRecipient {
    Phone(String),
    UserId {
        user_id: String,
        parent_user_id: Option<String>,
    },
}

/// What a message's status updates say besides the status itself: the `sent`, `delivered` and
/// `read` of one message share one (`Arc`) while they wait in the outbox. The timestamp is taken
/// at emission, from the sim clock.
#[derive(Clone, Debug)]
pub struct StatusUpdate {
    pub wamid: String,
    /// The business number that sent the message (its `metadata` heads the webhook).
    pub phone_number_id: String,
    pub recipient: StatusRecipient,
    pub biz_opaque_callback_data: Option<String>,
    /// `None` on `failed` (Meta does not price failed messages).
    pub pricing: Option<Value>,
    /// Only on `failed`.
    pub error: Option<GraphError>,
}

impl StatusUpdate {
    /// The element of `value.statuses` saying `status` (`sent`, `delivered`, `read` or `failed`).
    pub fn to_json<'a>(&'a self, status: &'a str, timestamp: i64) -> StatusJson<'a> {
        let (recipient_id, recipient_user_id, parent_recipient_user_id) = match &self.recipient {
            StatusRecipient::Phone(wa_id) => (Some(wa_id.as_str()), None, None),
            StatusRecipient::UserId {
                user_id,
                parent_user_id,
            } => (None, Some(user_id.as_str()), parent_user_id.as_deref()),
        };
        StatusJson {
            id: &self.wamid,
            status,
            timestamp: timestamp.to_string(),
            recipient_id,
            recipient_user_id,
            parent_recipient_user_id,
            biz_opaque_callback_data: self.biz_opaque_callback_data.as_deref(),
            // No `conversation` object: Meta dropped it from v24.0 on.
            pricing: self.pricing.as_ref(),
            errors: self.error.as_ref().map(|error| [error.webhook_error()]),
        }
    }
}

/// One element of `value.statuses`, in Meta's key order, written straight into the POST body
/// (no `serde_json::Value` tree in between: the simulator emits three per message).
#[derive(Debug, Serialize)]
pub struct StatusJson<'a> {
    id: &'a str,
    status: &'a str,
    timestamp: String,
    /// A message sent to a phone number…
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_id: Option<&'a str>,
    /// …or to a BSUID, with the parent BSUID when the customer has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_recipient_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    biz_opaque_callback_data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pricing: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<[Value; 1]>,
}

/// Per-message pricing under per-message pricing (PMP, since 2025-07-01): templates are billed
/// except utility templates inside an open window; session messages are free.
pub fn pricing(template_category: Option<&str>, window_open: bool) -> Value {
    match template_category {
        Some("utility") if window_open => json!({
            "billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "utility"
        }),
        Some(category) => json!({
            "billable": true, "pricing_model": "PMP", "type": "regular", "category": category
        }),
        None => json!({
            "billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"
        }),
    }
}

/// `metadata` of a webhook about `phone_number_id` (one of the account's numbers).
pub fn metadata(numbers: &Numbers, phone_number_id: &str) -> Value {
    json!({
        "display_phone_number": numbers.display_of(phone_number_id).unwrap_or_default(),
        "phone_number_id": phone_number_id,
    })
}

/// `value` of a change carrying status updates of messages sent from `phone_number_id`: the
/// fields of [`metadata`], written straight into the body.
#[derive(Debug, Serialize)]
pub struct StatusesValue<'a> {
    messaging_product: &'static str,
    metadata: Metadata<'a>,
    statuses: Vec<StatusJson<'a>>,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    display_phone_number: String,
    phone_number_id: &'a str,
}

impl<'a> StatusesValue<'a> {
    pub fn new(numbers: &Numbers, phone_number_id: &'a str, statuses: Vec<StatusJson<'a>>) -> Self {
        StatusesValue {
            messaging_product: "whatsapp",
            metadata: Metadata {
                display_phone_number: numbers.display_of(phone_number_id).unwrap_or_default(),
                phone_number_id,
            },
            statuses,
        }
    }
}

/// `value` of a change carrying one message from a customer to `phone_number_id`. `contact` is the
/// `contacts[]` entry (Meta sends none with `system` messages).
pub fn inbound_value(
    numbers: &Numbers,
    phone_number_id: &str,
    contact: Option<Value>,
    message: Value,
) -> Value {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(numbers, phone_number_id),
    });
    if let Some(contact) = contact {
        value["contacts"] = json!([contact]);
    }
    value["messages"] = json!([message]);
    value
}

/// How a customer is named in a message webhook since BSUIDs (2026): the BSUID always
/// (`from_user_id`, `contacts[].user_id`), the parent BSUID when they have one, the username when
/// they have one, and the phone number (`from`, `contacts[].wa_id`) only when `phone_shown`.
/// Returns the sender fields of `messages[]` and the `contacts[]` entry.
pub fn sender_identity(
    customer: &Customer,
    profile_name: &str,
    phone_shown: bool,
) -> (Map<String, Value>, Value) {
    let mut sender = Map::new();
    let mut profile = json!({"name": profile_name});
    if let Some(username) = &customer.username {
        profile["username"] = json!(username);
    }
    let mut contact = json!({"profile": profile});
    if phone_shown {
        sender.insert("from".to_owned(), json!(customer.wa_id));
        contact["wa_id"] = json!(customer.wa_id);
    }
    sender.insert("from_user_id".to_owned(), json!(customer.user_id));
    contact["user_id"] = json!(customer.user_id);
    if let Some(parent) = &customer.parent_user_id {
        sender.insert("from_parent_user_id".to_owned(), json!(parent));
        contact["parent_user_id"] = json!(parent);
    }
    (sender, contact)
}

/// The body of a webhook POST: the envelope every one carries around one change, `field` its
/// subscription field. Serialized once; the same bytes are signed, posted and re-posted.
pub fn envelope_body(config: &WhatsAppSimConfig, field: &str, value: impl Serialize) -> Bytes {
    let envelope = Envelope {
        object: "whatsapp_business_account",
        entry: [Entry {
            id: &config.waba_id,
            changes: [Change { field, value }],
        }],
    };
    // Plain structs, strings and JSON values: serializing them into memory cannot fail.
    Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
}

#[derive(Serialize)]
struct Envelope<'a, V> {
    object: &'static str,
    entry: [Entry<'a, V>; 1],
}

#[derive(Serialize)]
struct Entry<'a, V> {
    id: &'a str,
    changes: [Change<'a, V>; 1],
}

#[derive(Serialize)]
struct Change<'a, V> {
    field: &'a str,
    value: V,
}

/// `sha256=<hex HMAC-SHA256(body, app_secret)>`.
pub fn signature(body: &[u8], app_secret: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC regardless.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return "sha256=".to_owned();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(recipient: StatusRecipient) -> StatusUpdate {
        StatusUpdate {
            wamid: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI=".to_owned(),
            phone_number_id: String::new(),
            recipient,
            biz_opaque_callback_data: Some("a005g00002BLnMZAA1 \"quoted\" é".to_owned()),
            pricing: Some(pricing(Some("utility"), false)),
            error: None,
        }
    }

    #[test]
    fn a_status_body_is_byte_for_byte_the_envelope_meta_sends() {
        let config = WhatsAppSimConfig::default();
        let numbers = Numbers::from_config(&config);
        let number = config.phone_number_id.clone();
        let by_phone = update(StatusRecipient::Phone("16505551234".to_owned()));
        let by_user_id = StatusUpdate {
            biz_opaque_callback_data: None,
            ..update(StatusRecipient::UserId {
                user_id: "US.13491208655302741918".to_owned(),
                parent_user_id: Some("US.ENT.11815799212886844830".to_owned()),
            })
        };
        let failed = StatusUpdate {
            pricing: None,
            error: Some(GraphError::reengagement()),
            ..update(StatusRecipient::UserId {
                user_id: "US.13491208655302741918".to_owned(),
                parent_user_id: None,
            })
        };

        let body = envelope_body(
            &config,
            "messages",
            StatusesValue::new(
                &numbers,
                &number,
                vec![
                    by_phone.to_json("delivered", 1_764_000_000),
                    by_user_id.to_json("read", 1_764_000_001),
                    failed.to_json("failed", 1_764_000_002),
                ],
            ),
        );

        // The body as a `serde_json::Value` tree in Meta's key order, as the simulator built it before.
        let expected = json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": config.waba_id,
                "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": config.display_phone_number,
                        "phone_number_id": number,
                    },
                    "statuses": [
                        {
                            "id": by_phone.wamid, "status": "delivered", "timestamp": "1764000000",
                            "recipient_id": "16505551234",
                            "biz_opaque_callback_data": "a005g00002BLnMZAA1 \"quoted\" é",
                            "pricing": pricing(Some("utility"), false),
                        },
                        {
                            "id": by_user_id.wamid, "status": "read", "timestamp": "1764000001",
                            "recipient_user_id": "US.13491208655302741918",
                            "parent_recipient_user_id": "US.ENT.11815799212886844830",
                            "pricing": pricing(Some("utility"), false),
                        },
                        {
                            "id": failed.wamid, "status": "failed", "timestamp": "1764000002",
                            "recipient_user_id": "US.13491208655302741918",
                            "biz_opaque_callback_data": "a005g00002BLnMZAA1 \"quoted\" é",
                            "errors": [GraphError::reengagement().webhook_error()],
                        },
                    ],
                }}],
            }],
        });
        assert_eq!(
            String::from_utf8_lossy(&body),
            expected.to_string(),
            "same bytes, so the same signature"
        );
    }

    #[test]
    fn a_ready_made_value_is_enveloped_byte_for_byte() {
        let config = WhatsAppSimConfig::default();
        let value = json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.1", "text": {"body": "Hi ☺"}}]});

        let body = envelope_body(&config, "standby", &value);

        let expected = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": config.waba_id, "changes": [{"field": "standby", "value": value}]}],
        });
        assert_eq!(String::from_utf8_lossy(&body), expected.to_string());
    }
}
