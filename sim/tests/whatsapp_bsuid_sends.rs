//! Sending in the 2026 world: `recipient` (a BSUID) instead of `to`, the answer's `contacts[]`,
//! statuses naming the recipient by BSUID, 131062, and the window following the person.

mod support;

use serde_json::json;
use support::{text, Harness};

const PHONE: &str = "16505551234";

/// Registers a customer with a username and a parent BSUID; returns (BSUID, parent BSUID).
async fn username_customer(h: &Harness) -> (String, String) {
    let answer = h
        .control(
            "/__sim/customers",
            &json!({"wa_id": PHONE, "username": "sheena.nelson", "parent_user_id": true}),
        )
        .await;
    (
        answer["user_id"].as_str().expect("user_id").to_owned(),
        answer["parent_user_id"]
            .as_str()
            .expect("parent")
            .to_owned(),
    )
}

#[tokio::test]
async fn a_text_sent_by_recipient_bsuid_is_accepted_and_the_answer_echoes_the_bsuid_without_wa_id()
{
    // Arrange
    let h = Harness::start().await;
    let (user_id, _) = username_customer(&h).await;

    // Act
    let (status, answer) = h.send(&text("recipient", &user_id, "Hello")).await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["contacts"],
        json!([{"input": user_id, "user_id": user_id}])
    );
    assert!(answer["messages"][0]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("wamid.")));
}

#[tokio::test]
async fn statuses_of_a_bsuid_send_carry_recipient_user_id_and_parent_instead_of_recipient_id() {
    // Arrange
    let h = Harness::start().await;
    let (user_id, parent) = username_customer(&h).await;

    // Act
    let (_, answer) = h.send(&text("recipient", &user_id, "Hello")).await;
    let statuses = h.statuses().await;

    // Assert
    let wamid = &answer["messages"][0]["id"];
    let kinds: Vec<_> = statuses.iter().map(|s| s["status"].clone()).collect();
    assert_eq!(kinds, [json!("sent"), json!("delivered"), json!("read")]);
    for status in &statuses {
        assert_eq!(&status["id"], wamid);
        assert_eq!(status["recipient_user_id"], user_id.as_str());
        assert_eq!(status["parent_recipient_user_id"], parent.as_str());
        assert!(status.get("recipient_id").is_none(), "{status}");
    }
}

#[tokio::test]
async fn a_phone_send_keeps_recipient_id_and_its_answer_keeps_wa_id() {
    // Arrange
    let h = Harness::start().await;
    username_customer(&h).await;

    // Act
    let (_, answer) = h.send(&text("to", &format!("+{PHONE}"), "Hello")).await;
    let statuses = h.statuses().await;

    // Assert
    assert_eq!(
        answer["contacts"],
        json!([{"input": format!("+{PHONE}"), "wa_id": PHONE}])
    );
    assert_eq!(statuses[0]["recipient_id"], PHONE);
    assert!(statuses[0].get("recipient_user_id").is_none());
}

#[tokio::test]
async fn a_bsuid_put_in_to_is_accepted_on_the_phone_path_then_never_delivered() {
    // Arrange
    let h = Harness::start().await;
    let (user_id, _) = username_customer(&h).await;

    // Act
    let (status, answer) = h.send(&text("to", &user_id, "Hello")).await;
    let statuses = h.statuses().await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["contacts"][0]["input"], user_id.as_str());
    assert!(answer["contacts"][0].get("user_id").is_none());
    let kinds: Vec<_> = statuses.iter().map(|s| s["status"].clone()).collect();
    assert_eq!(kinds, [json!("failed")]);
    assert_eq!(statuses[0]["errors"][0]["code"], 131026);
}

#[tokio::test]
async fn when_to_and_recipient_are_both_given_the_send_follows_to() {
    // Arrange
    let h = Harness::start().await;
    let (user_id, _) = username_customer(&h).await;
    let mut body = text("to", PHONE, "Hello");
    body["recipient"] = json!(user_id);

    // Act
    let (_, answer) = h.send(&body).await;
    let statuses = h.statuses().await;

    // Assert
    assert_eq!(
        answer["contacts"],
        json!([{"input": PHONE, "wa_id": PHONE}])
    );
    assert_eq!(statuses[0]["recipient_id"], PHONE);
}

#[tokio::test]
async fn an_authentication_template_to_a_bsuid_is_refused_with_131062_but_goes_to_the_phone() {
    // Arrange
    let h = Harness::start().await;
    let (user_id, _) = username_customer(&h).await;
    h.control(
        "/__sim/templates",
        &json!({"name": "login_code", "language": "en_US", "status": "APPROVED",
                "category": "AUTHENTICATION", "body_params": 1}),
    )
    .await;
    let template = |field: &str, address: &str| {
        json!({
            "messaging_product": "whatsapp", field: address, "type": "template",
            "template": {"name": "login_code", "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "123456"}]}]},
        })
    };

    // Act
    let (by_bsuid, refusal) = h.send(&template("recipient", &user_id)).await;
    let (by_phone, _) = h.send(&template("to", PHONE)).await;

    // Assert
    assert_eq!(by_bsuid, 400);
    assert_eq!(refusal["error"]["code"], 131062);
    assert_eq!(
        refusal["error"]["error_data"]["details"],
        "Business-scoped User ID recipients are not supported for this message."
    );
    assert_eq!(by_phone, 200);
}

#[tokio::test]
async fn the_window_opened_by_a_message_under_the_phone_lets_a_bsuid_send_through_and_vice_versa() {
    // Arrange
    let h = Harness::start().await;
    let (user_id, _) = username_customer(&h).await;
    h.control(
        "/__sim/customers",
        &json!({"wa_id": PHONE, "last_inbound_at": null}),
    )
    .await;
    h.control("/__sim/inbound", &json!({"from": PHONE, "text": "Hi"}))
        .await;

    // Act
    let (_, by_bsuid) = h.send(&text("recipient", &user_id, "Reply")).await;
    let first = h.statuses().await;
    h.control(
        "/__sim/customers",
        &json!({"wa_id": PHONE, "last_inbound_at": null}),
    )
    .await;
    h.control(
        "/__sim/inbound",
        &json!({"from": user_id, "text": "Hi again"}),
    )
    .await;
    let (_, by_phone) = h.send(&text("to", PHONE, "Reply")).await;
    let second = h.statuses().await;

    // Assert
    let reached = |statuses: &[serde_json::Value], answer: &serde_json::Value| {
        statuses
            .iter()
            .any(|s| s["id"] == answer["messages"][0]["id"] && s["status"] == "delivered")
    };
    assert!(reached(&first, &by_bsuid), "{first:?}");
    assert!(reached(&second, &by_phone), "{second:?}");
}

#[tokio::test]
async fn a_free_form_bsuid_send_outside_the_window_fails_with_131047() {
    // Arrange
    let h = Harness::start().await;
    let (user_id, _) = username_customer(&h).await;
    h.control(
        "/__sim/customers",
        &json!({"wa_id": PHONE, "last_inbound_at": null}),
    )
    .await;

    // Act
    h.send(&text("recipient", &user_id, "Hello?")).await;
    let statuses = h.statuses().await;

    // Assert
    assert_eq!(statuses[0]["status"], "failed");
    assert_eq!(statuses[0]["errors"][0]["code"], 131047);
    assert_eq!(statuses[0]["recipient_user_id"], user_id.as_str());
}

#[tokio::test]
async fn a_bsuid_no_customer_has_is_accepted_then_fails_as_undeliverable() {
    // Arrange
    let h = Harness::start().await;

    // Act
    let (status, _) = h
        .send(&text("recipient", "US.99999999999999999999", "Hello"))
        .await;
    let statuses = h.statuses().await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0]["errors"][0]["code"], 131026);
    assert_eq!(statuses[0]["recipient_user_id"], "US.99999999999999999999");
}

#[tokio::test]
async fn a_recipient_that_is_not_a_bsuid_is_refused_with_100() {
    // Arrange
    let h = Harness::start().await;

    // Act
    let (status, answer) = h.send(&text("recipient", PHONE, "Hello")).await;

    // Assert
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], 100);
}

#[tokio::test]
async fn customers_control_sets_and_lists_username_bsuid_and_parent_compatibly() {
    // Arrange
    let h = Harness::start().await;

    // Act
    let plain = h
        .control("/__sim/customers", &json!({"wa_id": "447700900123"}))
        .await;
    let named = h
        .control(
            "/__sim/customers",
            &json!({"wa_id": PHONE, "username": "sheena", "user_id": "US.1234567890",
                    "parent_user_id": "US.ENT.42", "last_inbound_at": null}),
        )
        .await;
    let listed = h.control_get("/__sim/customers").await;

    // Assert
    assert!(plain["user_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("GB.")));
    assert_eq!(named["user_id"], "US.1234567890");
    assert_eq!(named["parent_user_id"], "US.ENT.42");
    let customers = listed["customers"].as_array().expect("customers");
    let sheena = customers
        .iter()
        .find(|c| c["wa_id"] == PHONE)
        .expect("listed");
    assert_eq!(sheena["username"], "sheena");
    assert_eq!(sheena["window_open"], false);
    let other = customers
        .iter()
        .find(|c| c["wa_id"] == "447700900123")
        .expect("listed");
    assert_eq!(other["window_open"], true);
}
