//! A business's media upload as the simulated Cloud API takes it: `POST /{phone_number_id}/media`
//! (multipart: `messaging_product`, `type`, `file`) → `{"id"}`, Meta's refusals of a bad form, a
//! bad type or a file too large, and sends by media id — only of ids the sending number uploaded,
//! within their 30 days, never with a link beside them.

mod support;

use chrono::Duration;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use support::Harness;

const PHONE: &str = "16505551234";

/// A form with the parts given: `messaging_product`, `type` and `file` when `Some`.
fn form(messaging_product: Option<&str>, mime: Option<&str>, file: Option<Vec<u8>>) -> Form {
    let mut form = Form::new();
    if let Some(product) = messaging_product {
        form = form.text("messaging_product", product.to_owned());
    }
    if let Some(mime) = mime {
        form = form.text("type", mime.to_owned());
    }
    if let Some(bytes) = file {
        form = form.part("file", Part::bytes(bytes).file_name("file.bin"));
    }
    form
}

/// `POST /v23.0/{phone_number_id}/media` with `form`: the status and the JSON answer.
async fn upload_from(h: &Harness, phone_number_id: &str, form: Form) -> (u16, Value) {
    let response = h
        .http
        .post(format!("{}/v23.0/{phone_number_id}/media", h.sim.url()))
        .bearer_auth(h.sim.access_token())
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn upload(h: &Harness, form: Form) -> (u16, Value) {
    upload_from(h, h.sim.phone_number_id(), form).await
}

/// A PDF uploaded from the main number: its media id.
async fn uploaded_pdf(h: &Harness) -> String {
    let (status, answer) = upload(
        h,
        form(
            Some("whatsapp"),
            Some("application/pdf"),
            Some(b"%PDF-1.7 quote".to_vec()),
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["id"].as_str().expect("id").to_owned()
}

fn document_by(media: Value) -> Value {
    json!({"messaging_product": "whatsapp", "to": PHONE, "type": "document", "document": media})
}

#[tokio::test]
async fn an_uploaded_file_gets_an_id_that_describes_it_and_a_send_by_that_id_is_accepted() {
    // Arrange
    let h = Harness::start().await;
    let bytes = b"%PDF-1.7 quote".to_vec();

    // Act
    let (status, answer) = upload(
        &h,
        form(
            Some("whatsapp"),
            Some("application/pdf"),
            Some(bytes.clone()),
        ),
    )
    .await;
    let id = answer["id"].as_str().expect("id").to_owned();
    let described: Value = h
        .http
        .get(format!("{}/v23.0/{id}", h.sim.url()))
        .bearer_auth(h.sim.access_token())
        .send()
        .await
        .expect("media info")
        .json()
        .await
        .expect("json");
    let (sent, send_answer) = h
        .send(&document_by(json!({"id": id, "filename": "quote.pdf"})))
        .await;
    let stats = h.control_get("/__sim/media").await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    assert_eq!(described["mime_type"], "application/pdf");
    assert_eq!(described["file_size"], bytes.len());
    assert_eq!(sent, 200, "{send_answer}");
    assert_eq!(stats["uploads"], 1);
}

#[tokio::test]
async fn an_upload_without_messaging_product_type_or_file_is_refused_with_code_100_naming_it() {
    // Arrange
    let h = Harness::start().await;
    let pdf = || Some(b"%PDF".to_vec());

    // Act
    let (no_product_status, no_product) =
        upload(&h, form(None, Some("application/pdf"), pdf())).await;
    let (_, no_type) = upload(&h, form(Some("whatsapp"), None, pdf())).await;
    let (_, no_file) = upload(&h, form(Some("whatsapp"), Some("application/pdf"), None)).await;

    // Assert
    assert_eq!(no_product_status, 400);
    for (answer, parameter) in [
        (&no_product, "messaging_product"),
        (&no_type, "type"),
        (&no_file, "file"),
    ] {
        assert_eq!(answer["error"]["code"], 100, "{answer}");
        assert_eq!(
            answer["error"]["error_data"]["details"],
            format!("The parameter {parameter} is required.")
        );
    }
}

#[tokio::test]
async fn a_type_whatsapp_does_not_send_and_an_image_over_5_mb_are_media_upload_errors() {
    // Arrange
    let h = Harness::start().await;
    let six_mb = vec![0xFF; 6 * 1024 * 1024];

    // Act
    let (_, zip) = upload(
        &h,
        form(
            Some("whatsapp"),
            Some("application/zip"),
            Some(b"PK".to_vec()),
        ),
    )
    .await;
    let (too_large_status, too_large) =
        upload(&h, form(Some("whatsapp"), Some("image/jpeg"), Some(six_mb))).await;
    let stats = h.control_get("/__sim/media").await;

    // Assert
    assert_eq!(zip["error"]["code"], 131053, "{zip}");
    assert!(zip["error"]["error_data"]["details"]
        .as_str()
        .is_some_and(|d| d.contains("application/zip")));
    assert_eq!(too_large_status, 400);
    assert_eq!(too_large["error"]["code"], 131053, "{too_large}");
    assert!(too_large["error"]["error_data"]["details"]
        .as_str()
        .is_some_and(|d| d.contains("at most 5242880 bytes")));
    assert_eq!(stats["uploads"], 0, "nothing was stored");
}

#[tokio::test]
async fn an_upload_with_a_wrong_token_is_refused_like_any_graph_call() {
    // Arrange
    let h = Harness::start().await;

    // Act
    let response = h
        .http
        .post(format!(
            "{}/v23.0/{}/media",
            h.sim.url(),
            h.sim.phone_number_id()
        ))
        .bearer_auth("EAAGnot-the-token")
        .multipart(form(
            Some("whatsapp"),
            Some("application/pdf"),
            Some(b"%PDF".to_vec()),
        ))
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("json");

    // Assert
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], 190);
}

#[tokio::test]
async fn a_media_id_another_number_uploaded_is_refused_as_an_invalid_media_id() {
    // Arrange
    let h = Harness::start().await;
    let other = h.sim.config().other_phone_numbers[0]
        .phone_number_id
        .clone();
    let (_, answer) = upload_from(
        &h,
        &other,
        form(
            Some("whatsapp"),
            Some("application/pdf"),
            Some(b"%PDF".to_vec()),
        ),
    )
    .await;
    let theirs = answer["id"].as_str().expect("id").to_owned();

    // Act
    let (status, refused) = h.send(&document_by(json!({"id": theirs}))).await;
    let (unknown_status, unknown) = h.send(&document_by(json!({"id": "1234567890"}))).await;

    // Assert
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], 100, "{refused}");
    assert!(refused["error"]["error_data"]["details"]
        .as_str()
        .is_some_and(|d| d.starts_with("Invalid media id")));
    assert_eq!(unknown_status, 400);
    assert_eq!(unknown["error"]["code"], 100, "{unknown}");
}

#[tokio::test]
async fn a_media_id_past_its_30_days_is_refused_and_no_longer_described() {
    // Arrange
    let h = Harness::start().await;
    let id = uploaded_pdf(&h).await;
    h.sim.clock().shift(Duration::days(30));

    // Act
    let (status, refused) = h.send(&document_by(json!({"id": id}))).await;
    let described: Value = h
        .http
        .get(format!("{}/v23.0/{id}", h.sim.url()))
        .bearer_auth(h.sim.access_token())
        .send()
        .await
        .expect("media info")
        .json()
        .await
        .expect("json");

    // Assert
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], 100, "{refused}");
    assert_eq!(described["error"]["code"], 100, "{described}");
}

#[tokio::test]
async fn a_media_object_with_both_id_and_link_is_refused() {
    // Arrange
    let h = Harness::start().await;
    let id = uploaded_pdf(&h).await;

    // Act
    let (status, refused) = h
        .send(&document_by(
            json!({"id": id, "link": "https://files.test/quote.pdf"}),
        ))
        .await;

    // Assert
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], 100, "{refused}");
    assert!(refused["error"]["error_data"]["details"]
        .as_str()
        .is_some_and(|d| d.contains("exactly one of document['link'] or document['id']")));
}
