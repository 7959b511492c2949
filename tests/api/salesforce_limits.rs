//! Fixed platform limits the org simulator enforces whatever the package's metadata says: URL
//! fields hold 255 characters; the Streaming API answers only the versions it is documented for
//! (37.0–67.0).

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_org;

const MSG: &str = "WhatsApp_Message__c";

#[tokio::test]
async fn a_url_field_holds_255_characters_and_refuses_a_longer_presigned_link() {
    let org = spawn_org().await;
    let token = org.login().await;
    let base = "https://files.example.com/media/photo.jpg?X-Amz-Signature=";
    let fits = format!("{base}{}", "a".repeat(255 - base.len()));
    let too_long = format!("{base}{}", "a".repeat(256 - base.len()));

    let (ok, _) = org
        .call(
            Method::POST,
            &token,
            &format!("sobjects/{MSG}"),
            json!({"Media_URL__c": fits}),
        )
        .await;
    let (refused, body) = org
        .call(
            Method::POST,
            &token,
            &format!("sobjects/{MSG}"),
            json!({"Media_URL__c": too_long}),
        )
        .await;
    let (_, describe) = org
        .call(
            Method::GET,
            &token,
            &format!("sobjects/{MSG}/describe"),
            json!(null),
        )
        .await;

    assert_eq!(ok, 201);
    assert_eq!(refused, 400);
    assert_eq!(body[0]["errorCode"], "STRING_TOO_LONG");
    assert!(body[0]["message"]
        .as_str()
        .unwrap()
        .ends_with("(max length=255)"));
    let field = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Media_URL__c")
        .unwrap();
    assert_eq!(field["length"], 255);
}

#[tokio::test]
async fn cometd_answers_only_the_versions_the_streaming_api_is_documented_for() {
    let org = spawn_org().await;
    let token = org.login().await;
    let handshake = json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"], "ext": {"replay": true}, "id": "1"}]);
    let mut answers = Vec::new();

    for version in ["36.0", "37.0", "67.0", "68.0", "sixty"] {
        let response = org
            .http
            .post(org.url(&format!("/cometd/{version}")))
            .bearer_auth(&token)
            .json(&handshake)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        answers.push((version, status, body));
    }

    for (version, status, body) in &answers {
        match *version {
            "37.0" | "67.0" => {
                assert_eq!(*status, 200, "{version}");
                assert_eq!(body[0]["successful"], true, "{version}");
            }
            _ => {
                assert_eq!(*status, 404, "{version}");
                assert_eq!(body[0]["errorCode"], "NOT_FOUND", "{version}");
            }
        }
    }
}
