//! A Salesforce File a rep picked, sent by media id: the daemon reads the File named in
//! `Media_File_Id__c` (a ContentVersion, or a ContentDocument's latest version), uploads it to the
//! simulated Cloud API's media endpoint and sends the message by the id it answers — no public
//! link. Both simulators run; the File is created through REST as a rep's upload would be.

use base64::Engine;
use serde_json::{json, Value};
use sfwa::pipeline::dispatch::DispatchOutcome;

use crate::daemon_support::{spawn_app, TestApp};

const CUSTOMER: &str = "16505551234";

/// Creates a Salesforce File as a rep's upload does (`POST sobjects/ContentVersion`, base64):
/// `(ContentVersion Id, ContentDocument Id)`. `document` adds a new version to that document.
async fn rep_uploads(
    app: &TestApp,
    path_on_client: &str,
    bytes: &[u8],
    document: Option<&str>,
) -> (String, String) {
    let session = app.pipeline.write_back.salesforce.session().await.unwrap();
    let title = path_on_client
        .rsplit_once('.')
        .map_or(path_on_client, |(t, _)| t);
    let mut body = json!({
        "Title": title,
        "PathOnClient": path_on_client,
        "VersionData": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    if let Some(document) = document {
        body["ContentDocumentId"] = json!(document);
    }
    let created: Value = app
        .http
        .post(format!(
            "{}/services/data/v67.0/sobjects/ContentVersion",
            session.instance_url
        ))
        .bearer_auth(&session.access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = created["id"].as_str().expect("created").to_string();
    let document = app
        .org
        .state()
        .org()
        .get("ContentVersion", &version)
        .unwrap()["ContentDocumentId"]
        .as_str()
        .unwrap()
        .to_string();
    (version, document)
}

/// A Queued media record of `message_type` naming the File `file_id`.
async fn queue_file(
    app: &TestApp,
    message_type: &str,
    file_id: &str,
    caption: Option<&str>,
) -> String {
    let mut record = json!({
        "To_Phone__c": "+1 650 555 1234",
        "Message_Type__c": message_type,
        "Media_File_Id__c": file_id,
    });
    if let Some(caption) = caption {
        record["Body__c"] = json!(caption);
    }
    app.queue(json!([record])).await.remove(0)
}

/// The bytes the simulated Meta keeps under `media_id`, read as any client would
/// (`GET /{media_id}`, then its URL with the token).
async fn bytes_at_meta(app: &TestApp, media_id: &str) -> (Vec<u8>, Option<String>) {
    let whatsapp = &app.pipeline.dispatcher.whatsapp;
    let info = whatsapp
        .media_info(media_id)
        .await
        .expect("Meta knows the id");
    let downloaded = whatsapp.download(&info, 200 * 1024 * 1024).await.unwrap();
    (downloaded.bytes, info.mime_type)
}

#[tokio::test]
async fn a_salesforce_file_a_rep_picked_is_uploaded_and_sent_by_media_id_and_the_record_ends_read()
{
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let pdf = b"%PDF-1.7 Quote Q-1001: 12 chairs".to_vec();
    let (version, _) = rep_uploads(&app, "Quote Q-1001.pdf", &pdf, None).await;
    let id = queue_file(&app, "Document", &version, Some("Your quote")).await;

    // Act
    app.dispatch().await;
    let record = app.status_after_webhooks(&id, "Read").await;

    // Assert
    let sent = app.wa_messages().await;
    assert_eq!(sent.len(), 1);
    let document = &sent[0]["request"]["document"];
    assert!(document.get("link").is_none(), "no public link: {document}");
    assert_eq!(document["filename"], "Quote Q-1001.pdf");
    assert_eq!(document["caption"], "Your quote");
    let media_id = document["id"].as_str().expect("sent by media id");
    let (at_meta, mime) = bytes_at_meta(&app, media_id).await;
    assert_eq!(at_meta, pdf, "the uploaded bytes are the File's");
    assert_eq!(mime.as_deref(), Some("application/pdf"));
    assert!(record["WhatsApp_Message_Id__c"].is_string());
}

#[tokio::test]
async fn a_content_document_id_sends_the_documents_latest_version() {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let (_, document) = rep_uploads(&app, "shelf.png", b"\x89PNG first", None).await;
    let latest = b"\x89PNG second, corrected".to_vec();
    rep_uploads(&app, "shelf.png", &latest, Some(&document)).await;
    let id = queue_file(&app, "Image", &document, None).await;

    // Act
    app.dispatch().await;
    app.status_after_webhooks(&id, "Read").await;

    // Assert
    let sent = app.wa_messages().await;
    let media_id = sent[0]["request"]["image"]["id"].as_str().expect("by id");
    let (at_meta, mime) = bytes_at_meta(&app, media_id).await;
    assert_eq!(at_meta, latest);
    assert_eq!(mime.as_deref(), Some("image/png"));
}

#[tokio::test]
async fn the_same_file_sent_twice_is_uploaded_once_and_both_messages_carry_its_id() {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let (version, _) = rep_uploads(&app, "Catalogue.pdf", b"%PDF catalogue", None).await;
    let first = queue_file(&app, "Document", &version, None).await;
    app.dispatch().await;
    let second = queue_file(&app, "Document", &version, None).await;

    // Act
    app.dispatch().await;
    app.status_after_webhooks(&first, "Read").await;
    app.status_after_webhooks(&second, "Read").await;

    // Assert
    assert_eq!(app.sim_media_stat("uploads").await, 1);
    let sent = app.wa_messages().await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0]["request"]["document"]["id"],
        sent[1]["request"]["document"]["id"]
    );
    let metrics = app.scrape().await;
    let number = app.wa.phone_number_id();
    for outcome in ["uploaded", "reused"] {
        assert!(
            metrics.contains(&format!(
                "sfwa_media_uploads_total{{number=\"{number}\",outcome=\"{outcome}\"}} 1"
            )),
            "{outcome} counted: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_send_retried_after_the_upload_reuses_the_uploaded_id_instead_of_uploading_again() {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let (version, _) = rep_uploads(&app, "Terms.pdf", b"%PDF terms", None).await;
    let id = queue_file(&app, "Document", &version, None).await;
    app.wa_control("faults", json!({"error_rate": 1.0, "error_status": 500}))
        .await;
    let failed_send = app.dispatch().await;
    app.wa_control("faults", json!({"error_rate": 0.0})).await;

    // Act
    app.clock.shift(chrono::Duration::hours(1));
    app.dispatch().await;
    app.status_after_webhooks(&id, "Read").await;

    // Assert
    assert!(
        matches!(
            failed_send.outcomes[..],
            [DispatchOutcome::RetryScheduled { .. }]
        ),
        "{failed_send:?}"
    );
    assert_eq!(
        app.sim_media_stat("uploads").await,
        1,
        "uploaded before the first send, once"
    );
}

#[tokio::test]
async fn an_image_over_whatsapps_5_mb_fails_before_any_upload_naming_the_file_its_size_and_the_limit(
) {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let six_mb = vec![0xAB; 6 * 1024 * 1024];
    let (version, _) = rep_uploads(&app, "Floor plan.png", &six_mb, None).await;
    let id = queue_file(&app, "Image", &version, None).await;

    // Act
    app.dispatch().await;
    let record = app.status_after_flush(&id, "Failed").await;

    // Assert
    assert_eq!(record["Error_Code__c"], "MEDIA_TOO_LARGE");
    assert_eq!(
        record["Error_Message__c"],
        format!("The file 'Floor plan.png' ({version}) is 6.0 MB; WhatsApp sends image files of at most 5.0 MB. Pick a smaller file, or send it as a Document (up to 100 MB) if it is a PDF or Office file.")
    );
    assert_eq!(app.sim_media_stat("uploads").await, 0);
    assert!(app.wa_messages().await.is_empty());
}

#[tokio::test]
async fn a_file_that_is_not_there_fails_media_file_not_found_naming_the_id_and_the_fix() {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let missing = "068000000000404AAA";
    let id = queue_file(&app, "Document", missing, None).await;

    // Act
    app.dispatch().await;
    let record = app.status_after_flush(&id, "Failed").await;

    // Assert
    assert_eq!(record["Error_Code__c"], "MEDIA_FILE_NOT_FOUND");
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(message.contains(missing), "{message}");
    assert!(
        message.contains("share the file with the integration user"),
        "{message}"
    );
    assert_eq!(app.sim_media_stat("uploads").await, 0);
}

#[tokio::test]
async fn a_file_of_a_type_whatsapp_does_not_send_fails_in_words_before_any_upload() {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let (version, _) = rep_uploads(&app, "Bundle.zip", b"PK\x03\x04", None).await;
    let id = queue_file(&app, "Document", &version, None).await;

    // Act
    app.dispatch().await;
    let record = app.status_after_flush(&id, "Failed").await;

    // Assert
    assert_eq!(record["Error_Code__c"], "MEDIA_TYPE_UNSUPPORTED");
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(message.contains("is a ZIP file"), "{message}");
    assert_eq!(app.sim_media_stat("uploads").await, 0);
}

#[tokio::test]
async fn sfwa_plan_shows_a_file_message_as_send_without_downloading_or_uploading_it() {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let (version, _) = rep_uploads(&app, "Quote.pdf", b"%PDF quote", None).await;
    queue_file(&app, "Document", &version, None).await;
    let planner = sfwa::pipeline::plan::Planner {
        settings: std::sync::Arc::new(app.settings.clone()),
        clock: std::sync::Arc::new(app.clock.clone()),
        salesforce: app.pipeline.intake.salesforce.clone(),
        whatsapp: app.pipeline.dispatcher.whatsapp.clone(),
    };

    // Act
    let planned = sfwa::pipeline::plan::plan(&planner, &Default::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(planned.entries.len(), 1, "{:?}", planned.entries);
    assert_eq!(planned.entries[0].verdict.action(), "send");
    assert_eq!(
        app.sim_media_stat("uploads").await,
        0,
        "the plan reads only"
    );
}

#[tokio::test]
async fn an_upload_whatsapp_refuses_fails_the_record_with_metas_code_and_words_and_sends_nothing() {
    // Arrange
    let app = spawn_app().await;
    app.customer_wrote(CUSTOMER, 1).await;
    let (version, _) = rep_uploads(&app, "Scan.pdf", b"%PDF scan", None).await;
    let id = queue_file(&app, "Document", &version, None).await;
    app.wa_control("media/faults", json!({"upload_failures": 1}))
        .await;

    // Act
    app.dispatch().await;
    let record = app.status_after_flush(&id, "Failed").await;

    // Assert
    assert_eq!(record["Error_Code__c"], "WA_131053");
    let message = record["Error_Message__c"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "WhatsApp refused the upload of the file 'Scan.pdf' ({version}), so nothing was sent (Meta: Media upload error: The file could not be processed"
        )),
        "{message}"
    );
    assert!(app.wa_messages().await.is_empty());
}
