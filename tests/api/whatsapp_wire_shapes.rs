//! The simulator's webhooks have exactly the shape of Meta's documented payloads
//! (shared/reference/whatsapp-cloud-api.md): the same keys at every level, the same JSON types.

use serde_json::{json, Map, Value};

use crate::whatsapp_support::{spawn_sim, text_to};

/// A value's shape: every object key kept, every leaf replaced by its JSON type; arrays by their
/// first element (Meta's arrays are homogeneous).
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

fn envelope(value: Value) -> Value {
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]})
}

#[tokio::test]
async fn inbound_text_webhook_has_the_shape_of_metas_documented_example() {
    // Meta's example with the BSUIDs every message webhook carries since 2026 ("2026 platform
    // changes": `contacts[].user_id`, `messages[].from_user_id`).
    let documented = envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234",
                      "user_id": "US.13491208655302741918"}],
        "messages": [{"from": "16505551234", "from_user_id": "US.13491208655302741918",
                      "id": "wamid.HBgL", "timestamp": "1749416383", "type": "text",
                      "text": {"body": "Does it come in another color?"}}]
    }));
    let mut t = spawn_sim(|_| {}).await;

    t.control_post(
        "/__sim/inbound",
        &json!({"from": "16505551234", "type": "text", "text": "hi", "name": "Sheena Nelson"}),
    )
    .await;
    let delivery = t.hooks.next().await;

    assert_eq!(shape(&delivery.body), shape(&documented));
}

#[tokio::test]
async fn sent_and_failed_status_webhooks_have_the_shape_of_metas_documented_examples() {
    let status = |extra: Value| {
        let mut s = json!({"id": "wamid.x", "status": "sent", "timestamp": "1750030073", "recipient_id": "16505551234",
                           "biz_opaque_callback_data": "a01"});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        envelope(json!({"messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                        "statuses": [s]}))
    };
    let documented_sent = status(
        json!({"pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"}}),
    );
    let documented_failed = status(
        json!({"errors": [{"code": 131047, "title": "Re-engagement message",
        "message": "Re-engagement message", "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}),
    );
    let mut t = spawn_sim(|_| {}).await;
    t.customer_writes("16505551234", "hi").await;
    let mut ok = text_to("16505551234", "hello");
    ok["biz_opaque_callback_data"] = json!("a01");
    let mut outside = text_to("16505550001", "hello");
    outside["biz_opaque_callback_data"] = json!("a02");

    let ok_wamid = t.send_ok(&ok).await;
    let failing_wamid = t.send_ok(&outside).await;
    let (mut sent, mut failed) = (None, None);
    while sent.is_none() || failed.is_none() {
        let delivery = t.hooks.next().await;
        let status = &delivery.body["entry"][0]["changes"][0]["value"]["statuses"][0];
        if status["id"] == ok_wamid.as_str() && status["status"] == "sent" {
            sent = Some(delivery.body.clone());
        }
        if status["id"] == failing_wamid.as_str() && status["status"] == "failed" {
            failed = Some(delivery.body.clone());
        }
    }
    let (sent, failed) = (sent.unwrap(), failed.unwrap());

    assert_eq!(shape(&sent), shape(&documented_sent));
    assert_eq!(shape(&failed), shape(&documented_failed));
    assert_eq!(
        failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"],
        131047
    );
}
