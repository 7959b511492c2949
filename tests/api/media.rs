//! Customers' files kept: an inbound image, document, audio or video reaches Salesforce Files on
//! its message record (the daemon against both simulators), and the simulators serve media and
//! files as Meta and Salesforce do (ids that expire, signed URLs that need the token, the
//! ContentVersion's bytes).
//!
//! Each test posts the inbound webhook itself (signed with the app secret), with a media id the
//! WhatsApp simulator issued for bytes the test gave it, then drives the steps: the write-back
//! flush (the record is created), the media step (download and upload), the flush again (the
//! record's Body says where the file went). Time moves with the shared simulated clock.

use serde_json::{json, Value};
use sfwa::pipeline::media::{self, MediaStep};
use sfwa::store::media::{self as queue, MediaState};
use sfwa_sim::whatsapp::signature;
use sha2::{Digest, Sha256};

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp, MSG};

const CUSTOMER: &str = "16505551234";

/// A customer's file as the simulated Meta stores it: `(media id, sha256)`.
pub(crate) async fn upload(app: &TestApp, bytes: &[u8], mime: &str) -> (String, String) {
    let answer: Value = app
        .http
        .post(format!("{}/__sim/media", app.wa.url()))
        .header("content-type", mime)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        answer["id"].as_str().unwrap().to_string(),
        answer["sha256"].as_str().unwrap().to_string(),
    )
}

/// Posts a signed webhook with one inbound media message (`media` is the image/document object).
pub(crate) async fn customer_sends(app: &TestApp, wamid: &str, kind: &str, media: Value) {
    let message = json!({
        "from": CUSTOMER, "id": wamid, "timestamp": app.clock.now().timestamp().to_string(),
        "type": kind, kind: media,
    });
    post_messages(app, vec![message]).await;
}

/// Posts `messages` in one signed webhook, as Meta would.
async fn post_messages(app: &TestApp, messages: Vec<Value>) {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": app.wa.waba_id(), "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": app.wa.phone_number_id()},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": CUSTOMER}],
            "messages": messages,
        }}]}],
    }))
    .unwrap();
    let status = app
        .http
        .post(app.wa.webhook_url().unwrap())
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature(&body, app.wa.app_secret()))
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the daemon takes the webhook");
}

async fn step(app: &TestApp) -> MediaStep {
    media::media_step(&app.pipeline).await.expect("media step")
}

/// The inbound record of `wamid` as a rep sees it.
fn record_of(app: &TestApp, wamid: &str) -> Value {
    let state = app.org.state();
    let org = state.org();
    let record = org
        .rows(MSG)
        .find(|r| r["WhatsApp_Message_Id__c"] == wamid)
        .unwrap_or_else(|| panic!("no record for {wamid}"));
    Value::Object(record.clone())
}

/// The Files on `record_id`, read with SOQL as a client would.
async fn files_on(app: &TestApp, record_id: &str) -> Vec<Value> {
    app.pipeline
        .write_back
        .salesforce
        .query::<Value>(&format!(
            "SELECT Id, Title, PathOnClient, FirstPublishLocationId, ContentSize FROM ContentVersion \
             WHERE FirstPublishLocationId = '{record_id}'"
        ))
        .await
        .unwrap()
}

/// `GET sobjects/ContentVersion/{id}/VersionData`: the file's bytes.
async fn version_data(app: &TestApp, id: &str) -> Vec<u8> {
    let session = app.pipeline.write_back.salesforce.session().await.unwrap();
    let response = app
        .http
        .get(format!(
            "{}/services/data/v67.0/sobjects/ContentVersion/{id}/VersionData",
            session.instance_url
        ))
        .bearer_auth(&session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

async fn queued(app: &TestApp, wamid: &str) -> queue::QueuedMedia {
    let wamid = wamid.parse().unwrap();
    app.pipeline
        .core
        .store
        .read(move |c| queue::get(c, &wamid))
        .await
        .unwrap()
        .expect("the file is queued")
}

fn photo() -> Vec<u8> {
    (0..186_368_u32).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn an_inbound_image_arrives_as_a_salesforce_file_on_its_record() {
    let app = spawn_app().await;
    let bytes = photo();
    let (media_id, sha256) = upload(&app, &bytes, "image/jpeg").await;
    customer_sends(&app, "wamid.IMG1", "image", json!({"id": media_id, "mime_type": "image/jpeg", "sha256": sha256, "caption": "my receipt"})).await;
    app.flush().await;
    let first = record_of(&app, "wamid.IMG1");

    let done = step(&app).await;
    app.flush().await;

    assert_eq!(done.saved, 1, "{done:?}");
    assert!(
        first["Body__c"]
            .as_str()
            .unwrap()
            .contains("copying it into this record's Files"),
        "{first}"
    );
    let record = record_of(&app, "wamid.IMG1");
    let record_id = record["Id"].as_str().unwrap();
    let files = files_on(&app, record_id).await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["ContentSize"], json!(bytes.len()));
    let name = files[0]["PathOnClient"].as_str().unwrap();
    assert!(
        name.starts_with("whatsapp-image-") && name.ends_with(".jpg"),
        "{name}"
    );
    let stored = version_data(&app, files[0]["Id"].as_str().unwrap()).await;
    assert_eq!(stored, bytes);
    assert_eq!(hex::encode(Sha256::digest(&stored)), sha256);
    assert_eq!(
        record["Body__c"],
        format!(
            "my receipt\n\n(An image ({name}, image/jpeg, 182 KB) — saved to this record's Files.)"
        )
    );
    assert_eq!(record["Media_Filename__c"], name);
    assert_eq!(queued(&app, "wamid.IMG1").await.state, MediaState::Done);
}

#[tokio::test]
async fn a_document_over_the_limit_says_so_on_the_record_and_nothing_is_uploaded() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.media.max_bytes = 1024 * 1024),
        ..Options::default()
    })
    .await;
    let contract = vec![7_u8; 3 * 1024 * 1024];
    let (media_id, sha256) = upload(&app, &contract, "application/pdf").await;
    customer_sends(&app, "wamid.DOC1", "document", json!({"id": media_id, "mime_type": "application/pdf", "sha256": sha256, "filename": "contract.pdf"})).await;
    app.flush().await;

    let done = step(&app).await;
    app.flush().await;

    assert_eq!(done.too_large, 1, "{done:?}");
    let record = record_of(&app, "wamid.DOC1");
    let body = record["Body__c"].as_str().unwrap();
    assert!(
        body.starts_with("A document \"contract.pdf\" (3 MB) is over sfwa's 1 MB limit (media.max_bytes), so it was not copied into Salesforce."),
        "{body}"
    );
    assert!(body.contains(&format!("media id {media_id}")), "{body}");
    assert!(files_on(&app, record["Id"].as_str().unwrap())
        .await
        .is_empty());
    assert_eq!(
        app.sim_media_stat("downloads").await,
        0,
        "nothing was downloaded"
    );
    assert_eq!(queued(&app, "wamid.DOC1").await.state, MediaState::TooLarge);
}

#[tokio::test]
async fn a_download_failing_twice_then_succeeding_ends_as_a_file() {
    let app = spawn_app().await;
    let bytes = b"%PDF-1.7 quote".to_vec();
    let (media_id, sha256) = upload(&app, &bytes, "application/pdf").await;
    customer_sends(&app, "wamid.DOC2", "document", json!({"id": media_id, "mime_type": "application/pdf", "sha256": sha256, "filename": "quote.pdf"})).await;
    app.flush().await;
    app.wa_control("media/faults", json!({"download_failures": 2}))
        .await;

    let first = step(&app).await;
    let too_soon = step(&app).await;
    app.clock
        .shift(media::backoff(1) + chrono::Duration::seconds(1));
    let second = step(&app).await;
    app.clock
        .shift(media::backoff(2) + chrono::Duration::seconds(1));
    let third = step(&app).await;
    app.flush().await;

    assert_eq!(
        (first.retried, too_soon, second.retried, third.saved),
        (1, MediaStep::default(), 1, 1)
    );
    let record = record_of(&app, "wamid.DOC2");
    let files = files_on(&app, record["Id"].as_str().unwrap()).await;
    assert_eq!(files.len(), 1, "one File, not one per attempt");
    assert_eq!(files[0]["Title"], "quote.pdf");
    assert!(record["Body__c"]
        .as_str()
        .unwrap()
        .contains("saved to this record's Files"));
    assert_eq!(queued(&app, "wamid.DOC2").await.attempts, 2);
}

#[tokio::test]
async fn an_expired_whatsapp_token_holds_files_back_without_using_their_attempts() {
    let app = spawn_app().await;
    let (media_id, sha256) = upload(&app, b"PNG bytes", "image/png").await;
    customer_sends(
        &app,
        "wamid.TOK",
        "image",
        json!({"id": media_id, "mime_type": "image/png", "sha256": sha256}),
    )
    .await;
    app.flush().await;
    app.wa_control("faults", json!({"token_expired": true}))
        .await;

    let refused = step(&app).await;
    let held = queued(&app, "wamid.TOK").await;
    app.wa_control("faults", json!({"token_expired": false}))
        .await;
    app.clock
        .shift(chrono::Duration::minutes(15) + chrono::Duration::seconds(1));
    let renewed = step(&app).await;

    assert_eq!(refused.retried, 1, "{refused:?}");
    assert_eq!((held.state, held.attempts), (MediaState::Waiting, 0));
    assert_eq!(renewed.saved, 1, "{renewed:?}");
}

#[tokio::test]
async fn a_restarted_daemon_resumes_a_pending_download() {
    let mut app = spawn_app().await;
    let bytes = b"OggS voice".to_vec();
    let (media_id, sha256) = upload(&app, &bytes, "audio/ogg").await;
    customer_sends(
        &app,
        "wamid.AUD1",
        "audio",
        json!({"id": media_id, "mime_type": "audio/ogg", "sha256": sha256}),
    )
    .await;
    app.flush().await;

    app.restart().await;
    let done = step(&app).await;
    app.flush().await;

    assert_eq!(done.saved, 1, "{done:?}");
    let record = record_of(&app, "wamid.AUD1");
    let files = files_on(&app, record["Id"].as_str().unwrap()).await;
    assert_eq!(
        version_data(&app, files[0]["Id"].as_str().unwrap()).await,
        bytes
    );
}

#[tokio::test]
async fn a_file_waits_for_its_record_before_it_is_downloaded() {
    let app = spawn_app().await;
    let (media_id, sha256) = upload(&app, b"GIF89a", "image/gif").await;
    customer_sends(
        &app,
        "wamid.IMG2",
        "image",
        json!({"id": media_id, "mime_type": "image/gif", "sha256": sha256}),
    )
    .await;

    let before_flush = step(&app).await;

    assert_eq!(before_flush.waiting_for_record, 1, "{before_flush:?}");
    assert_eq!(app.sim_media_stat("downloads").await, 0);
    let waiting = queued(&app, "wamid.IMG2").await;
    assert_eq!((waiting.state, waiting.attempts), (MediaState::Waiting, 0));
}

/// Posts a signed webhook with one inbound media message stamped `age` ago.
async fn customer_sent_earlier(app: &TestApp, wamid: &str, age: chrono::Duration, media: Value) {
    let at = (app.clock.now() - age).timestamp().to_string();
    let message =
        json!({"from": CUSTOMER, "id": wamid, "timestamp": at, "type": "video", "video": media});
    post_messages(app, vec![message]).await;
}

#[tokio::test]
async fn a_file_meta_no_longer_has_is_reported_on_the_record_in_words() {
    // (Salesforce's JWT login checks its `exp` by the org's clock, so the clock is not moved a
    // week here: one message is a week old, the other's media id is one Meta does not know.)
    let app = spawn_app().await;
    let (media_id, sha256) = upload(&app, b"video bytes", "video/mp4").await;
    let week = chrono::Duration::days(7) + chrono::Duration::minutes(1);
    customer_sent_earlier(
        &app,
        "wamid.OLD",
        week,
        json!({"id": media_id, "mime_type": "video/mp4", "sha256": sha256}),
    )
    .await;
    customer_sent_earlier(
        &app,
        "wamid.UNKNOWN",
        chrono::Duration::zero(),
        json!({"id": "4455667788990011", "mime_type": "video/mp4"}),
    )
    .await;
    app.flush().await;

    let done = step(&app).await;
    app.flush().await;

    assert_eq!(done.failed, 2, "{done:?}");
    for wamid in ["wamid.OLD", "wamid.UNKNOWN"] {
        let body = record_of(&app, wamid)["Body__c"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(body.starts_with("A video was sent on WhatsApp but could not be copied into Salesforce: WhatsApp no longer has it (files are kept 7 days)."), "{body}");
        assert_eq!(queued(&app, wamid).await.state, MediaState::Failed);
    }
    assert_eq!(app.sim_media_stat("downloads").await, 0);
}

#[tokio::test]
async fn with_copying_switched_off_the_record_says_so_and_nothing_is_downloaded() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.media.enabled = false),
        ..Options::default()
    })
    .await;
    let (media_id, sha256) = upload(&app, b"jpeg", "image/jpeg").await;
    customer_sends(
        &app,
        "wamid.OFF",
        "image",
        json!({"id": media_id, "mime_type": "image/jpeg", "sha256": sha256}),
    )
    .await;
    app.flush().await;

    let done = step(&app).await;
    app.flush().await;

    assert_eq!(done.disabled, 1, "{done:?}");
    let body = record_of(&app, "wamid.OFF")["Body__c"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.starts_with("An image was sent on WhatsApp; sfwa is set not to copy files (media.enabled = false). Meta keeps it until"),
        "{body}"
    );
    assert_eq!(app.sim_media_stat("downloads").await, 0);
}

/// `GET /metrics` on the daemon's observe listener.
async fn scrape(app: &TestApp) -> String {
    app.scrape().await
}

#[tokio::test]
async fn media_metrics_count_saved_and_over_limit_files() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.media.max_bytes = 10),
        ..Options::default()
    })
    .await;
    let (small, small_sha) = upload(&app, b"tiny", "image/png").await;
    let (big, big_sha) = upload(&app, b"much too large", "image/png").await;
    customer_sends(
        &app,
        "wamid.S",
        "image",
        json!({"id": small, "mime_type": "image/png", "sha256": small_sha}),
    )
    .await;
    customer_sends(
        &app,
        "wamid.B",
        "image",
        json!({"id": big, "mime_type": "image/png", "sha256": big_sha}),
    )
    .await;
    app.flush().await;
    let before = scrape(&app).await;

    step(&app).await;

    let text = scrape(&app).await;
    assert!(before.contains("sfwa_media_waiting 2"), "{before}");
    assert!(text.contains("sfwa_media_waiting 0"), "{text}");
    assert!(
        text.contains("sfwa_media_files_total{outcome=\"saved\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sfwa_media_files_total{outcome=\"too_large\"} 1"),
        "{text}"
    );
}

// The simulators, as the daemon meets them.

#[tokio::test]
async fn the_simulator_serves_media_like_meta_to_the_token_only_and_for_five_minutes() {
    let app = spawn_app().await;
    let (media_id, sha256) = upload(&app, b"hello", "text/plain").await;
    let info_url = format!(
        "{}/{}/{media_id}",
        app.wa.url(),
        app.settings.whatsapp.api_version
    );

    let info: Value = app
        .http
        .get(&info_url)
        .bearer_auth(app.wa.access_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = info["url"].as_str().unwrap().to_string();
    let with_token = app
        .http
        .get(&url)
        .bearer_auth(app.wa.access_token())
        .send()
        .await
        .unwrap();
    let wrong_token = app
        .http
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    app.clock.shift(chrono::Duration::minutes(6));
    let expired = app
        .http
        .get(&url)
        .bearer_auth(app.wa.access_token())
        .send()
        .await
        .unwrap();

    assert_eq!(
        (
            info["messaging_product"].clone(),
            info["mime_type"].clone(),
            info["sha256"].clone(),
            info["file_size"].clone(),
            info["id"].clone()
        ),
        (
            json!("whatsapp"),
            json!("text/plain"),
            json!(sha256),
            json!(5),
            json!(media_id)
        )
    );
    assert_eq!(with_token.status(), 200);
    assert_eq!(with_token.bytes().await.unwrap().as_ref(), b"hello");
    assert_eq!(wrong_token.status(), 401);
    assert_eq!(expired.status(), 403, "the URL expired");
}

#[tokio::test]
async fn an_expired_media_id_is_answered_as_metas_unknown_object() {
    let app = spawn_app().await;
    let (media_id, _) = upload(&app, b"hello", "text/plain").await;
    let info_url = format!(
        "{}/{}/{media_id}",
        app.wa.url(),
        app.settings.whatsapp.api_version
    );
    let wrong_token = app
        .http
        .get(&info_url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();

    app.clock
        .shift(chrono::Duration::days(7) + chrono::Duration::seconds(1));
    let answer = app
        .http
        .get(&info_url)
        .bearer_auth(app.wa.access_token())
        .send()
        .await
        .unwrap();

    assert_eq!(wrong_token.status(), 401);
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["error_subcode"], 33);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("Object with ID '{media_id}' does not exist")),
        "{message}"
    );
}

#[tokio::test]
async fn the_org_refuses_a_content_version_over_37_5_mb_of_base64_and_one_on_no_record() {
    let app = spawn_app().await;
    let session = app.pipeline.write_back.salesforce.session().await.unwrap();
    let url = format!(
        "{}/services/data/v67.0/sobjects/ContentVersion",
        session.instance_url
    );
    let post = |body: Value| {
        app.http
            .post(&url)
            .bearer_auth(&session.access_token)
            .json(&body)
            .send()
    };

    let too_big = post(
        json!({"Title": "big", "PathOnClient": "big.bin", "VersionData": "A".repeat(37_500_004)}),
    )
    .await
    .unwrap();
    let nowhere = post(json!({"Title": "x", "PathOnClient": "x.txt", "VersionData": "eA==", "FirstPublishLocationId": "a00000000000000AAA"})).await.unwrap();

    assert_eq!(too_big.status(), 400);
    let too_big: Value = too_big.json().await.unwrap();
    assert_eq!(too_big[0]["errorCode"], "STRING_TOO_LONG");
    assert_eq!(nowhere.status(), 400);
    let nowhere: Value = nowhere.json().await.unwrap();
    assert_eq!(nowhere[0]["errorCode"], "INVALID_CROSS_REFERENCE_KEY");
}
