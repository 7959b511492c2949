//! Meta's webhook bodies: the `whatsapp_business_account` envelope, status objects, inbound-message
//! values, and the `X-Hub-Signature-256` header.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::config::WhatsAppSimConfig;
use super::graph_error::GraphError;

/// A status update waiting to be emitted. The timestamp is taken at emission, from the sim clock.
#[derive(Clone, Debug)]
pub struct StatusUpdate {
    pub wamid: String,
    pub recipient_id: String,
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
            "recipient_id": self.recipient_id,
        });
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

fn metadata(config: &WhatsAppSimConfig) -> Value {
    json!({
        "display_phone_number": config.display_phone_number,
        "phone_number_id": config.phone_number_id,
    })
}

/// `value` of a change carrying status updates.
pub fn statuses_value(config: &WhatsAppSimConfig, statuses: Vec<Value>) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(config),
        "statuses": statuses,
    })
}

/// `value` of a change carrying one inbound message from a customer.
pub fn inbound_value(
    config: &WhatsAppSimConfig,
    profile_name: &str,
    wa_id: &str,
    message: Value,
) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(config),
        "contacts": [{"profile": {"name": profile_name}, "wa_id": wa_id}],
        "messages": [message],
    })
}

/// The envelope every webhook POST carries.
pub fn envelope(config: &WhatsAppSimConfig, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": config.waba_id,
            "changes": [{"field": "messages", "value": value}],
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
