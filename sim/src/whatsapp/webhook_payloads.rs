//! Meta's webhook bodies: the `whatsapp_business_account` envelope, status objects, inbound-message
//! values, and the `X-Hub-Signature-256` header.

use hmac::{Hmac, Mac};
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

/// A status update waiting to be emitted. The timestamp is taken at emission, from the sim clock.
#[derive(Clone, Debug)]
pub struct StatusUpdate {
    pub wamid: String,
    /// The business number that sent the message (its `metadata` heads the webhook).
    pub phone_number_id: String,
    pub recipient: StatusRecipient,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: &'static str,
    pub biz_opaque_callback_data: Option<String>,
    /// `None` on `failed` (Meta does not price failed messages).
    pub pricing: Option<Value>,
    /// Only on `failed`.
    pub error: Option<GraphError>,
}

impl StatusUpdate {
    /// The element of `value.statuses`.
    pub fn to_json(&self, timestamp: i64) -> Value {
        let mut status = json!({
            "id": self.wamid,
            "status": self.status,
            "timestamp": timestamp.to_string(),
        });
        match &self.recipient {
            StatusRecipient::Phone(wa_id) => status["recipient_id"] = json!(wa_id),
            StatusRecipient::UserId {
                user_id,
                parent_user_id,
            } => {
                status["recipient_user_id"] = json!(user_id);
                if let Some(parent) = parent_user_id {
                    status["parent_recipient_user_id"] = json!(parent);
                }
            }
        }
        if let Some(data) = &self.biz_opaque_callback_data {
            status["biz_opaque_callback_data"] = json!(data);
        }
        // No `conversation` object: Meta dropped it from v24.0 on.
        if let Some(pricing) = &self.pricing {
            status["pricing"] = pricing.clone();
        }
        if let Some(error) = &self.error {
            status["errors"] = json!([error.webhook_error()]);
        }
        status
    }
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

/// `value` of a change carrying status updates of messages sent from `phone_number_id`.
pub fn statuses_value(numbers: &Numbers, phone_number_id: &str, statuses: Vec<Value>) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(numbers, phone_number_id),
        "statuses": statuses,
    })
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

/// The envelope every webhook POST carries; `field` is the subscription field of the change.
pub fn envelope(config: &WhatsAppSimConfig, field: &str, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": config.waba_id,
            "changes": [{"field": field, "value": value}],
        }],
    })
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
