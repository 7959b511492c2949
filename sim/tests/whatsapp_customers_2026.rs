//! What 2026 customers do, as webhooks: identity in inbound messages (the phone withheld from a
//! username customer), number and BSUID changes, sharing a number on request, the new message
//! types, the `standby` field, and a second business number on the same account.

mod support;

use serde_json::{json, Value};
use support::{text, Harness};

const PHONE: &str = "16505551234";

/// The one inbound message of the changes, with its change's field and value.
fn only_message(changes: &[support::Change]) -> (String, Value, Value) {
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    (
        change.field.clone(),
        change.value.clone(),
        change.value["messages"][0].clone(),
    )
}

#[tokio::test]
async fn a_username_customers_message_has_their_bsuid_and_username_but_no_phone() {
    // Arrange
    let h = Harness::start().await;
    let set = h
        .control(
            "/__sim/customers",
            &json!({"wa_id": PHONE, "username": "sheena", "parent_user_id": true,
                    "name": "Sheena Nelson", "last_inbound_at": null}),
        )
        .await;

    // Act
    let answer = h
        .control("/__sim/inbound", &json!({"from": PHONE, "text": "Hi"}))
        .await;
    let (field, value, message) = only_message(&h.webhooks().await);

    // Assert
    assert_eq!(field, "messages");
    assert_eq!(answer["phone_shown"], false);
    assert!(message.get("from").is_none(), "{message}");
    assert_eq!(message["from_user_id"], set["user_id"]);
    assert_eq!(message["from_parent_user_id"], set["parent_user_id"]);
    assert_eq!(
        value["contacts"],
        json!([{"profile": {"name": "Sheena Nelson", "username": "sheena"},
                "user_id": set["user_id"], "parent_user_id": set["parent_user_id"]}])
    );
    assert!(!message["id"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn a_username_customers_phone_shows_for_30_days_after_the_business_messaged_them() {
    // Arrange
    let h = Harness::start().await;
    let set = h
        .control(
            "/__sim/customers",
            &json!({"wa_id": PHONE, "username": "sheena"}),
        )
        .await;
    let user_id = set["user_id"].as_str().expect("user_id");
    h.send(&text("recipient", user_id, "How can we help?"))
        .await;
    h.webhooks().await;

    // Act
    h.control("/__sim/inbound", &json!({"from": user_id, "text": "Hi"}))
        .await;
    let (_, within_value, within) = only_message(&h.webhooks().await);
    h.control("/__sim/clock", &json!({"shift_seconds": 31 * 86_400}))
        .await;
    h.control("/__sim/inbound", &json!({"from": user_id, "text": "Hi"}))
        .await;
    let (_, _, after) = only_message(&h.webhooks().await);

    // Assert
    assert_eq!(within["from"], PHONE);
    assert_eq!(within["from_user_id"], user_id);
    assert_eq!(within_value["contacts"][0]["wa_id"], PHONE);
    assert_eq!(within_value["contacts"][0]["profile"]["username"], "sheena");
    assert!(after.get("from").is_none(), "{after}");
}

#[tokio::test]
async fn a_number_change_emits_the_system_messages_and_the_window_follows_to_the_new_number() {
    // Arrange
    let h = Harness::start().await;
    let before = h
        .control(
            "/__sim/customers",
            &json!({"wa_id": PHONE, "name": "Sheena"}),
        )
        .await;

    // Act
    let answer = h
        .control(
            "/__sim/customers/change_number",
            &json!({"customer": PHONE, "new_wa_id": "16505559999"}),
        )
        .await;
    let changes = h.webhooks().await;
    let (status, _) = h.send(&text("to", "16505559999", "Still there?")).await;
    let statuses = h.statuses().await;

    // Assert
    let systems: Vec<Value> = changes
        .iter()
        .map(|change| change.value["messages"][0].clone())
        .collect();
    assert_eq!(systems.len(), 2, "{systems:?}");
    assert!(changes
        .iter()
        .all(|change| change.value.get("contacts").is_none()));
    assert_eq!(systems[0]["type"], "system");
    assert_eq!(systems[0]["from"], PHONE);
    assert_eq!(
        systems[0]["system"],
        json!({"body": format!("User Sheena changed from {PHONE} to 16505559999"),
               "wa_id": "16505559999", "type": "user_changed_number"})
    );
    assert_eq!(systems[1]["system"]["type"], "user_changed_user_id");
    assert_eq!(systems[1]["system"]["previous_user_id"], before["user_id"]);
    assert_eq!(systems[1]["from_user_id"], before["user_id"]);
    let new_user_id = &answer["messages"][1]["user_id"];
    assert_eq!(&systems[1]["system"]["user_id"], new_user_id);
    assert_ne!(new_user_id, &before["user_id"]);
    assert_eq!(status, 200);
    assert!(
        statuses.iter().any(|s| s["status"] == "delivered"),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_bsuid_change_emits_user_changed_user_id_and_the_new_bsuid_reaches_the_customer() {
    // Arrange
    let h = Harness::start().await;
    let before = h
        .control("/__sim/customers", &json!({"wa_id": PHONE}))
        .await;

    // Act
    h.control(
        "/__sim/customers/change_user_id",
        &json!({"customer": before["user_id"], "new_user_id": "US.777"}),
    )
    .await;
    let (_, _, system) = only_message(&h.webhooks().await);
    h.send(&text("recipient", "US.777", "Hello")).await;
    let statuses = h.statuses().await;

    // Assert
    assert_eq!(system["system"]["previous_user_id"], before["user_id"]);
    assert_eq!(system["system"]["user_id"], "US.777");
    assert!(statuses
        .iter()
        .any(|s| s["status"] == "delivered" && s["recipient_user_id"] == "US.777"));
}

#[tokio::test]
async fn a_customer_answers_request_contact_info_with_a_contacts_message_sharing_their_phone() {
    // Arrange
    let h = Harness::start().await;
    let set = h
        .control(
            "/__sim/customers",
            &json!({"wa_id": PHONE, "username": "sheena", "name": "Sheena Nelson"}),
        )
        .await;
    let user_id = set["user_id"].as_str().expect("user_id");
    let request = json!({"messaging_product": "whatsapp", "recipient": user_id, "type": "interactive",
        "interactive": {"type": "request_contact_info", "body": {"text": "May we have your number?"},
                        "action": {"name": "request_contact_info"}}});
    let (status, sent) = h.send(&request).await;
    h.webhooks().await;

    // Act
    h.control(
        "/__sim/customers/share_phone",
        &json!({"customer": user_id, "context_message_id": sent["messages"][0]["id"]}),
    )
    .await;
    let (_, _, message) = only_message(&h.webhooks().await);

    // Assert
    assert_eq!(status, 200, "{sent}");
    assert_eq!(message["type"], "contacts");
    assert_eq!(message["origin"], "contact_request");
    assert_eq!(
        message["contacts"][0]["phones"][0],
        json!({"phone": format!("+{PHONE}"), "wa_id": PHONE, "type": "MOBILE"})
    );
    assert_eq!(message["context"]["id"], sent["messages"][0]["id"]);
}

#[tokio::test]
async fn the_2026_inbound_types_are_posted_in_metas_shapes() {
    // Arrange
    let h = Harness::start().await;
    let requests = [
        json!({"from": PHONE, "type": "location", "latitude": 52.5, "longitude": 13.4,
               "location_name": "Office", "address": "Main St 1"}),
        json!({"from": PHONE, "type": "contacts",
               "contacts": [{"name": {"formatted_name": "Ann Lee"}, "phones": [{"phone": "+1 650 555 0000"}]}]}),
        json!({"from": PHONE, "type": "order", "catalog_id": "cat1", "text": "asap",
               "product_items": [{"product_retailer_id": "sku1", "quantity": 2, "item_price": 9.5, "currency": "USD"}]}),
        json!({"from": PHONE, "type": "interactive", "response_json": {"size": "M"}, "flow_name": "survey"}),
        json!({"from": PHONE, "type": "request_welcome"}),
        json!({"from": PHONE, "type": "unsupported"}),
        json!({"from": PHONE, "type": "document", "id": "55", "filename": "quote.pdf"}),
        json!({"from": PHONE, "type": "sticker", "content": {"id": "66", "mime_type": "image/webp", "animated": false}}),
    ];

    // Act
    for request in &requests {
        h.control("/__sim/inbound", request).await;
    }
    let messages: Vec<Value> = h
        .webhooks()
        .await
        .iter()
        .map(|change| change.value["messages"][0].clone())
        .collect();

    // Assert
    assert_eq!(messages.len(), requests.len());
    assert_eq!(
        messages[0]["location"],
        json!({"latitude": 52.5, "longitude": 13.4, "name": "Office", "address": "Main St 1"})
    );
    assert_eq!(messages[1]["contacts"], requests[1]["contacts"]);
    assert_eq!(messages[2]["order"]["catalog_id"], "cat1");
    assert_eq!(messages[2]["order"]["text"], "asap");
    assert_eq!(
        messages[2]["order"]["product_items"],
        requests[2]["product_items"]
    );
    assert_eq!(messages[3]["interactive"]["type"], "nfm_reply");
    assert_eq!(
        messages[3]["interactive"]["nfm_reply"],
        json!({"response_json": "{\"size\":\"M\"}", "body": "Sent", "name": "survey"})
    );
    assert_eq!(messages[4]["type"], "request_welcome");
    assert!(messages[4].get("request_welcome").is_none());
    assert_eq!(messages[5]["errors"][0]["code"], 131051);
    assert_eq!(messages[6]["document"]["filename"], "quote.pdf");
    assert_eq!(messages[7]["sticker"], requests[7]["content"]);
}

#[tokio::test]
async fn a_referral_rides_on_the_message_and_a_group_message_does_not_open_the_window() {
    // Arrange
    let h = Harness::start().await;
    let referral = json!({"source_url": "https://fb.me/ad", "source_id": "123", "source_type": "ad",
                          "headline": "Spring sale", "body": "20% off", "media_type": "image",
                          "ctwa_clid": "ARAkLkA"});

    // Act
    h.control(
        "/__sim/inbound",
        &json!({"from": PHONE, "text": "In the group", "group_id": "GRP.1"}),
    )
    .await;
    h.send(&text("to", PHONE, "Hello")).await;
    let after_group = h.webhooks().await;
    h.control(
        "/__sim/inbound",
        &json!({"from": PHONE, "text": "Saw your ad", "referral": referral}),
    )
    .await;
    let (_, _, from_ad) = only_message(&h.webhooks().await);

    // Assert
    let group = &after_group[0].value["messages"][0];
    assert_eq!(group["group_id"], "GRP.1");
    let failed = after_group
        .iter()
        .flat_map(|change| {
            change.value["statuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|status| status["status"] == "failed")
        .expect("the 1:1 send fails: the group message opened no window");
    assert_eq!(failed["errors"][0]["code"], 131047);
    assert_eq!(from_ad["referral"], referral);
}

#[tokio::test]
async fn a_standby_customers_messages_arrive_on_the_standby_field_and_open_the_window() {
    // Arrange
    let h = Harness::start().await;
    h.control(
        "/__sim/customers",
        &json!({"wa_id": PHONE, "standby": true, "last_inbound_at": null}),
    )
    .await;

    // Act
    let answer = h
        .control(
            "/__sim/inbound",
            &json!({"from": PHONE, "text": "Hi agent"}),
        )
        .await;
    let (field, _, message) = only_message(&h.webhooks().await);
    h.send(&text("to", PHONE, "Hello from a human")).await;
    let statuses = h.statuses().await;

    // Assert
    assert_eq!(answer["field"], "standby");
    assert_eq!(field, "standby");
    assert_eq!(message["text"]["body"], "Hi agent");
    assert!(
        statuses.iter().any(|s| s["status"] == "delivered"),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn standby_messages_are_not_posted_to_an_app_not_subscribed_to_standby() {
    // Arrange
    let h = Harness::start().await;
    h.control(
        "/__sim/customers",
        &json!({"wa_id": PHONE, "standby": true}),
    )
    .await;
    let response = h
        .http
        .put(format!("{}/__sim/subscriptions", h.sim.url()))
        .json(&json!({"fields": ["messages"]}))
        .send()
        .await
        .expect("put subscriptions");
    assert!(response.status().is_success());

    // Act
    h.control(
        "/__sim/inbound",
        &json!({"from": PHONE, "text": "Hi agent"}),
    )
    .await;
    let changes = h.webhooks().await;
    let stats = h.control_get("/__sim/stats").await;

    // Assert
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(stats["webhooks"]["skipped_unsubscribed"], 1);
}

#[tokio::test]
async fn a_second_business_number_posts_its_webhooks_to_the_same_url_with_its_own_metadata() {
    // Arrange
    let h = Harness::start().await;
    let second = h.sim.config().other_phone_numbers[0].clone();

    // Act
    h.control(
        "/__sim/inbound",
        &json!({"from": PHONE, "text": "Hi second", "phone_number_id": second.phone_number_id}),
    )
    .await;
    let (status, _) = h
        .send_from(
            &second.phone_number_id,
            &text("to", PHONE, "Hello from the second number"),
        )
        .await;
    let (main_status, _) = h
        .send(&text("to", PHONE, "Hello from the main number"))
        .await;
    let changes = h.webhooks().await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(main_status, 200);
    let second_metadata = json!({"display_phone_number": second.display_phone_number,
                                 "phone_number_id": second.phone_number_id});
    assert_eq!(changes[0].value["metadata"], second_metadata);
    let statuses_of = |metadata: &Value| -> Vec<Value> {
        changes
            .iter()
            .filter(|change| change.value["metadata"] == *metadata)
            .flat_map(|change| {
                change.value["statuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    let main_metadata = json!({"display_phone_number": h.sim.config().display_phone_number,
                               "phone_number_id": h.sim.phone_number_id()});
    // The window is per business number: the second is open, the main one is not.
    assert!(statuses_of(&second_metadata)
        .iter()
        .any(|s| s["status"] == "delivered"));
    assert!(statuses_of(&main_metadata)
        .iter()
        .any(|s| s["status"] == "failed"));
}
