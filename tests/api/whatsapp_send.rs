//! The simulator's send endpoint: success bodies and every synchronous error Meta returns.

use std::collections::HashSet;

use serde_json::json;

use crate::whatsapp_support::{
    assert_meta_error, assert_whatsapp_error, spawn_sim, template_to, text_to, CUSTOMER,
};

#[tokio::test]
async fn text_inside_the_window_is_accepted_with_contacts_and_a_wamid() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.customer_writes(CUSTOMER, "hi").await;

    // Act
    let (status, body) = t.send(&text_to("+16505551234", "Hello")).await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(
        body["contacts"],
        json!([{"input": "+16505551234", "wa_id": CUSTOMER}])
    );
    let wamid = body["messages"][0]["id"].as_str().expect("wamid");
    assert!(wamid.starts_with("wamid.HBgL"), "{wamid}");
    assert!(body["messages"][0].get("message_status").is_none());
}

#[tokio::test]
async fn wamids_are_unique_across_sends() {
    let t = spawn_sim(|_| {}).await;
    let mut seen = HashSet::new();
    for _ in 0..5 {
        let wamid = t
            .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
            .await;
        assert!(seen.insert(wamid));
    }
}

#[tokio::test]
async fn missing_bearer_token_is_rejected_with_401_and_code_190() {
    let t = spawn_sim(|_| {}).await;

    let response = t
        .http
        .post(t.messages_url())
        .json(&text_to(CUSTOMER, "x"))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.json().await.expect("json");

    let error = assert_meta_error(status, &body, 401, 190);
    assert_eq!(error["type"], "OAuthException");
    assert_eq!(
        error["message"],
        "Invalid OAuth access token - Cannot parse access token"
    );
}

#[tokio::test]
async fn wrong_bearer_token_is_rejected_with_401_and_code_190() {
    let t = spawn_sim(|_| {}).await;

    let response = t
        .http
        .post(t.messages_url())
        .bearer_auth("EAAGnot-the-token")
        .json(&text_to(CUSTOMER, "x"))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.json().await.expect("json");

    assert_meta_error(status, &body, 401, 190);
}

#[tokio::test]
async fn expired_token_switch_makes_sends_fail_with_190_subcode_463() {
    let t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/faults", &json!({"token_expired": true}))
        .await;

    let (status, body) = t.send(&text_to(CUSTOMER, "x")).await;

    let error = assert_meta_error(status, &body, 401, 190);
    assert_eq!(error["error_subcode"], 463);
    let message = error["message"].as_str().expect("message");
    assert!(
        message.starts_with("Error validating access token: Session has expired on"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_phone_number_id_is_rejected_as_an_unsupported_post_request() {
    let t = spawn_sim(|_| {}).await;
    let url = format!("{}/v23.0/123456789012345/messages", t.sim.url());

    let response = t
        .http
        .post(url)
        .bearer_auth(t.sim.access_token())
        .json(&text_to(CUSTOMER, "x"))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.json().await.expect("json");

    let error = assert_meta_error(status, &body, 400, 100);
    assert_eq!(error["error_subcode"], 33);
    assert_eq!(error["type"], "GraphMethodException");
    assert_eq!(
        error["message"],
        "Unsupported post request. Object with ID '123456789012345' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    );
}

#[tokio::test]
async fn a_live_graph_version_other_than_the_clients_is_accepted() {
    let t = spawn_sim(|_| {}).await;
    let url = format!("{}/v26.0/{}/messages", t.sim.url(), t.sim.phone_number_id());

    let response = t
        .http
        .post(url)
        .bearer_auth(t.sim.access_token())
        .json(&template_to(CUSTOMER, "hello_world", json!([])))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn wrong_messaging_product_is_rejected_with_100() {
    let t = spawn_sim(|_| {}).await;
    let mut body = text_to(CUSTOMER, "x");
    body["messaging_product"] = json!("sms");

    let (status, answer) = t.send(&body).await;

    assert_whatsapp_error(status, &answer, 100, "Invalid parameter");
}

#[tokio::test]
async fn implausible_phone_numbers_are_rejected_with_100() {
    let t = spawn_sim(|_| {}).await;
    for to in ["12345", "1650555123x", "+", "1234567890123456"] {
        let (status, answer) = t.send(&text_to(to, "x")).await;
        assert_whatsapp_error(status, &answer, 100, "Invalid parameter");
    }
}

#[tokio::test]
async fn sending_to_the_business_number_itself_is_rejected_with_131021() {
    let t = spawn_sim(|_| {}).await;
    let own = t.sim.config().display_phone_number.clone();

    let (status, answer) = t.send(&text_to(&own, "x")).await;

    assert_whatsapp_error(status, &answer, 131021, "Recipient cannot be sender");
}

#[tokio::test]
async fn text_without_body_is_rejected_with_100() {
    let t = spawn_sim(|_| {}).await;
    let body = json!({"messaging_product":"whatsapp","to":CUSTOMER,"type":"text","text":{}});

    let (status, answer) = t.send(&body).await;

    assert_whatsapp_error(status, &answer, 100, "Invalid parameter");
}

#[tokio::test]
async fn text_body_of_4096_characters_passes_and_4097_is_rejected_with_100() {
    let t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/customers", &json!({"wa_id": CUSTOMER}))
        .await;

    let (ok, _) = t.send(&text_to(CUSTOMER, &"é".repeat(4096))).await;
    let (status, answer) = t.send(&text_to(CUSTOMER, &"é".repeat(4097))).await;

    assert_eq!(ok, 200);
    let error = assert_whatsapp_error(status, &answer, 100, "Invalid parameter");
    assert!(error["error_data"]["details"]
        .as_str()
        .is_some_and(|details| details.contains("4096")));
}

#[tokio::test]
async fn media_needs_exactly_one_of_link_and_id() {
    let t = spawn_sim(|_| {}).await;
    let media = |image: serde_json::Value| json!({"messaging_product":"whatsapp","to":CUSTOMER,"type":"image","image":image});

    let (both, both_body) = t
        .send(&media(json!({"link":"https://x/a.png","id":"123"})))
        .await;
    let (neither, neither_body) = t.send(&media(json!({"caption":"c"}))).await;
    // An id must be one this number uploaded (`POST /{phone_number_id}/media`).
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", "image/png")
        .part("file", reqwest::multipart::Part::bytes(b"\x89PNG".to_vec()));
    let uploaded: serde_json::Value = t
        .http
        .post(format!(
            "{}/v23.0/{}/media",
            t.sim.url(),
            t.sim.phone_number_id()
        ))
        .bearer_auth(t.sim.access_token())
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (one, _) = t
        .send(&media(json!({"id": uploaded["id"], "caption":"c"})))
        .await;

    assert_whatsapp_error(both, &both_body, 100, "Invalid parameter");
    assert_whatsapp_error(neither, &neither_body, 100, "Invalid parameter");
    assert_eq!(one, 200);
}

#[tokio::test]
async fn caption_over_1024_characters_is_rejected_and_documents_take_a_filename() {
    let t = spawn_sim(|_| {}).await;
    let long = json!({"messaging_product":"whatsapp","to":CUSTOMER,"type":"video",
        "video":{"link":"https://x/v.mp4","caption":"c".repeat(1025)}});
    let document = json!({"messaging_product":"whatsapp","to":CUSTOMER,"type":"document",
        "document":{"link":"https://x/d.pdf","caption":"Invoice","filename":"invoice.pdf"}});

    let (status, answer) = t.send(&long).await;
    let (document_status, _) = t.send(&document).await;

    assert_whatsapp_error(status, &answer, 100, "Invalid parameter");
    assert_eq!(document_status, 200);
}

#[tokio::test]
async fn unknown_message_type_is_rejected_with_131051() {
    let t = spawn_sim(|_| {}).await;
    let body =
        json!({"messaging_product":"whatsapp","to":CUSTOMER,"type":"hologram","hologram":{}});

    let (status, answer) = t.send(&body).await;

    assert_whatsapp_error(status, &answer, 131051, "Unsupported message type");
}

#[tokio::test]
async fn template_is_accepted_with_message_status_accepted() {
    let t = spawn_sim(|_| {}).await;

    let (status, body) = t
        .send(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    assert_eq!(body["contacts"][0]["wa_id"], CUSTOMER);
}

#[tokio::test]
async fn template_that_does_not_exist_in_the_language_is_rejected_with_132001() {
    let t = spawn_sim(|_| {}).await;
    let mut body = template_to(CUSTOMER, "hello_world", json!([]));
    body["template"]["language"]["code"] = json!("pt_BR");

    let (status, answer) = t.send(&body).await;

    let error = assert_whatsapp_error(
        status,
        &answer,
        132001,
        "Template name does not exist in the translation",
    );
    assert_eq!(
        error["error_data"]["details"],
        "template name (hello_world) does not exist in pt_BR"
    );
}

#[tokio::test]
async fn template_with_wrong_parameter_count_is_rejected_with_132000() {
    let t = spawn_sim(|_| {}).await;
    let components = json!([{"type":"body","parameters":[{"type":"text","text":"Ann"}]}]);

    let (status, answer) = t
        .send(&template_to(CUSTOMER, "appointment_reminder", components))
        .await;

    let error = assert_whatsapp_error(
        status,
        &answer,
        132000,
        "Number of parameters does not match the expected number of params",
    );
    assert_eq!(
        error["error_data"]["details"],
        "body: number of localizable_params (1) does not match the expected number of params (2)"
    );
}

#[tokio::test]
async fn template_with_matching_parameters_is_accepted() {
    let t = spawn_sim(|_| {}).await;
    let reminder = json!([{"type":"body","parameters":[
        {"type":"text","text":"Ann"},{"type":"text","text":"Monday 10:00"}]}]);
    let order = json!([
        {"type":"header","parameters":[{"type":"image","image":{"link":"https://x/p.png"}}]},
        {"type":"body","parameters":[{"type":"text","text":"Jessica"}]},
        {"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"ORD-1"}]}]);
    let named = json!([{"type":"body","parameters":[
        {"type":"text","parameter_name":"first_name","text":"Ann"},
        {"type":"text","parameter_name":"order_id","text":"42"}]}]);

    for (name, components) in [
        ("appointment_reminder", reminder),
        ("order_update", order),
        ("order_confirmation_named", named),
    ] {
        let (status, body) = t.send(&template_to(CUSTOMER, name, components)).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
}

#[tokio::test]
async fn template_with_image_header_but_no_media_is_rejected_with_132012() {
    let t = spawn_sim(|_| {}).await;
    let components = json!([
        {"type":"body","parameters":[{"type":"text","text":"Jessica"}]},
        {"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"ORD-1"}]}]);

    let (status, answer) = t
        .send(&template_to(CUSTOMER, "order_update", components))
        .await;

    assert_whatsapp_error(
        status,
        &answer,
        132012,
        "Parameter format does not match format in the created template",
    );
}

#[tokio::test]
async fn paused_template_is_rejected_with_132015_and_rejected_template_with_132001() {
    let t = spawn_sim(|_| {}).await;
    t.control_put(
        "/__sim/templates",
        &json!([
            {"name":"hello_world","language":"en_US","status":"PAUSED"},
            {"name":"promo","language":"en_US","status":"REJECTED","category":"MARKETING"}
        ]),
    )
    .await;

    let (paused, paused_body) = t
        .send(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let (rejected, rejected_body) = t.send(&template_to(CUSTOMER, "promo", json!([]))).await;

    assert_whatsapp_error(paused, &paused_body, 132015, "Template is Paused");
    assert_whatsapp_error(
        rejected,
        &rejected_body,
        132001,
        "Template name does not exist in the translation",
    );
}

#[tokio::test]
async fn throughput_over_the_per_number_rate_is_rejected_with_130429() {
    let t = spawn_sim(|config| config.throughput_per_second = 2).await;
    let hello = |to: &str| template_to(to, "hello_world", json!([]));

    t.send_ok(&hello("16505550001")).await;
    t.send_ok(&hello("16505550002")).await;
    let (status, answer) = t.send(&hello("16505550003")).await;

    assert_whatsapp_error(status, &answer, 130429, "Rate limit hit");
}

#[tokio::test]
async fn messages_to_one_customer_beyond_the_burst_are_rejected_with_131056() {
    let t = spawn_sim(|config| config.pair_rate.burst = 2).await;
    let hello = template_to(CUSTOMER, "hello_world", json!([]));

    t.send_ok(&hello).await;
    t.send_ok(&hello).await;
    let (status, answer) = t.send(&hello).await;
    let other = t
        .send(&template_to("16505559876", "hello_world", json!([])))
        .await;

    assert_whatsapp_error(
        status,
        &answer,
        131056,
        "(Business Account, Consumer Account) pair rate limit hit",
    );
    assert_eq!(other.0, 200, "another customer is not limited");
}

#[tokio::test]
async fn injected_errors_answer_500_with_131000_or_503_with_131016() {
    let t = spawn_sim(|_| {}).await;
    let hello = template_to(CUSTOMER, "hello_world", json!([]));

    t.control_post("/__sim/faults", &json!({"error_rate": 1.0}))
        .await;
    let (internal, internal_body) = t.send(&hello).await;
    t.control_post("/__sim/faults", &json!({"error_status": 503}))
        .await;
    let (unavailable, unavailable_body) = t.send(&hello).await;

    let error = assert_meta_error(internal, &internal_body, 500, 131000);
    assert_eq!(error["message"], "(#131000) Something went wrong");
    let error = assert_meta_error(unavailable, &unavailable_body, 503, 131016);
    assert_eq!(error["message"], "(#131016) Service unavailable");
}

#[tokio::test]
async fn phone_number_endpoint_reports_name_number_and_green_quality() {
    let t = spawn_sim(|_| {}).await;
    let url = format!("{}/v23.0/{}", t.sim.url(), t.sim.phone_number_id());

    let response = t
        .http
        .get(url)
        .bearer_auth(t.sim.access_token())
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("json");

    assert_eq!(status, 200);
    assert_eq!(body["id"], t.sim.phone_number_id());
    assert_eq!(body["quality_rating"], "GREEN");
    assert_eq!(
        body["display_phone_number"],
        t.sim.config().display_phone_number
    );
    assert!(body["verified_name"].is_string());
}

#[tokio::test]
async fn phone_number_endpoint_for_an_unknown_id_is_an_unsupported_get_request() {
    let t = spawn_sim(|_| {}).await;

    let response = t
        .http
        .get(format!("{}/v23.0/999999999999999", t.sim.url()))
        .bearer_auth(t.sim.access_token())
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.json().await.expect("json");

    let error = assert_meta_error(status, &body, 400, 100);
    assert!(error["message"]
        .as_str()
        .is_some_and(|message| message
            .starts_with("Unsupported get request. Object with ID '999999999999999'")));
}

#[tokio::test]
async fn added_latency_delays_graph_answers() {
    let t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/faults", &json!({"latency_ms": 150}))
        .await;
    let started = std::time::Instant::now();

    t.send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;

    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
}
