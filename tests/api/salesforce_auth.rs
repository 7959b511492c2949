//! OAuth 2.0 token endpoint of the Salesforce simulator, against the reference's wire shapes.

use serde_json::{json, Value};

use crate::helpers::{assertion, good_claims, spawn_org};

const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[tokio::test]
async fn jwt_bearer_with_good_claims_returns_the_reference_success_body_without_expires_in() {
    let org = spawn_org().await;
    let jwt = assertion(&org, good_claims(&org));

    let response = org
        .token_request(&[("grant_type", JWT_GRANT), ("assertion", &jwt)])
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        5,
        "exactly access_token, scope, instance_url, id, token_type: {body}"
    );
    assert!(body["access_token"].as_str().unwrap().starts_with("00D"));
    assert!(body["access_token"].as_str().unwrap().contains("!AR"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api");
    assert_eq!(body["instance_url"], org.sim.url());
    assert!(body.get("expires_in").is_none());
}

async fn jwt_error(claims: Value) -> (u16, Value) {
    let org = spawn_org().await;
    let mut merged = good_claims(&org);
    for (key, value) in claims.as_object().unwrap() {
        if value.is_null() {
            merged.as_object_mut().unwrap().remove(key);
        } else {
            merged[key] = value.clone();
        }
    }
    let jwt = assertion(&org, merged);
    let response = org
        .token_request(&[("grant_type", JWT_GRANT), ("assertion", &jwt)])
        .await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn jwt_with_a_foreign_audience_is_refused_as_audience_is_invalid() {
    let (status, body) = jwt_error(json!({"aud": "https://acme.force.com"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "audience is invalid"})
    );
}

#[tokio::test]
async fn jwt_expiring_more_than_three_minutes_ahead_or_in_the_past_is_refused() {
    let far = chrono::Utc::now().timestamp() + 600;
    let (status, body) = jwt_error(json!({"exp": far})).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("expired authorization code"))
    );
    let past = chrono::Utc::now().timestamp() - 10;
    let (status, body) = jwt_error(json!({"exp": past})).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("expired authorization code"))
    );
}

#[tokio::test]
async fn jwt_for_an_unknown_user_is_refused_as_not_approved() {
    let (status, body) = jwt_error(json!({"sub": "someone@else.example"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "user hasn't approved this consumer"})
    );
}

#[tokio::test]
async fn jwt_from_an_unknown_consumer_key_is_refused_as_invalid_client_id() {
    let (status, body) = jwt_error(json!({"iss": "3MVGnotours"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_client_id", "error_description": "client identifier invalid"})
    );
}

#[tokio::test]
async fn jwt_signed_with_an_untrusted_key_is_an_invalid_assertion() {
    let org = spawn_org().await;
    let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem =
        rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other, rsa::pkcs8::LineEnding::LF).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &good_claims(&org),
        &key,
    )
    .unwrap();

    let response = org
        .token_request(&[("grant_type", JWT_GRANT), ("assertion", &jwt)])
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "invalid assertion"})
    );
}

#[tokio::test]
async fn client_credentials_on_my_domain_succeed_with_signature_and_issued_at() {
    let org = spawn_org().await;
    let config = org.sim.config().clone();

    let response = org
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
        ])
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["signature"].as_str().is_some());
    let issued_at: i64 = body["issued_at"].as_str().unwrap().parse().unwrap();
    assert!(
        issued_at > 1_700_000_000_000,
        "issued_at is in milliseconds"
    );
}

#[tokio::test]
async fn client_credentials_through_http_basic_are_accepted() {
    let org = spawn_org().await;
    let config = org.sim.config().clone();

    let response = org
        .http
        .post(org.url("/services/oauth2/token"))
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn client_credentials_on_the_shared_login_host_are_not_supported() {
    let org = spawn_org().await;
    let config = org.sim.config().clone();

    let response = org
        .http
        .post(org.url("/services/oauth2/token"))
        .header("Host", "login.salesforce.com")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "request not supported on this domain"})
    );
}

#[tokio::test]
async fn client_credentials_with_a_wrong_secret_are_invalid_client_credentials() {
    let org = spawn_org().await;
    let config = org.sim.config().clone();

    let response = org
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &config.client_id),
            ("client_secret", "wrong"),
        ])
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"})
    );
}

#[tokio::test]
async fn refresh_token_grant_issues_an_access_token_but_no_new_refresh_token() {
    let org = spawn_org().await;
    let issued = org.control("refresh-tokens", json!({})).await;
    let refresh = issued["refresh_token"].as_str().unwrap();
    let config = org.sim.config().clone();

    let response = org
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
        ])
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn an_unknown_refresh_token_is_expired_access_refresh_token() {
    let org = spawn_org().await;
    let config = org.sim.config().clone();

    let response = org
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "5Aepbogus"),
            ("client_id", &config.client_id),
        ])
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_grant_type() {
    let org = spawn_org().await;

    let response = org.token_request(&[("grant_type", "password")]).await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn a_session_unused_past_the_timeout_answers_401_invalid_session_id() {
    let org = spawn_org().await;
    let token = org.login().await;
    org.sim
        .clock()
        .shift(chrono::Duration::hours(2) + chrono::Duration::minutes(1));

    let response = org
        .rest(reqwest::Method::GET, &token, "limits")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
}

#[tokio::test]
async fn forced_session_expiry_invalidates_every_current_token() {
    let org = spawn_org().await;
    let token = org.login().await;
    assert_eq!(
        org.rest(reqwest::Method::GET, &token, "limits")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    org.control("sessions/expire", json!({})).await;

    assert_eq!(
        org.rest(reqwest::Method::GET, &token, "limits")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let fresh = org.login().await;
    assert_eq!(
        org.rest(reqwest::Method::GET, &fresh, "limits")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn token_requests_are_not_counted_as_api_calls() {
    let org = spawn_org().await;

    org.login().await;
    org.login().await;

    let stats = org.stats().await;
    assert_eq!(stats["token_requests"], 2);
    assert_eq!(stats["rest_calls"]["total"], 0);
}
