//! The daemon's Salesforce client against the org simulator over real HTTP: logins, the shared
//! session, pagination, collections and how every kind of failure is classified.

use std::time::Duration;

use serde_json::{json, Map, Value};
use sfwa::salesforce::{Auth, Disposition, SalesforceClient, SalesforceConfig, SalesforceError};
use sfwa_sim::salesforce::SalesforceSimConfig;

use crate::helpers::{spawn_org, spawn_org_with, Org};

const MSG: &str = "WhatsApp_Message__c";

fn jwt_auth(org: &Org) -> Auth {
    let config = org.sim.config();
    Auth::JwtBearer {
        client_id: config.client_id.clone(),
        username: config.username.clone(),
        private_key_pem: config.trusted_key.private_pem.clone(),
        audience: "https://login.salesforce.com".into(),
    }
}

fn client_with(org: &Org, auth: Auth) -> SalesforceClient {
    SalesforceClient::new(
        reqwest::Client::new(),
        SalesforceConfig {
            login_url: org.sim.url(),
            api_version: "62.0".into(),
            auth,
            timeout: Duration::from_secs(10),
        },
    )
    .expect("the client builds")
}

fn client(org: &Org) -> SalesforceClient {
    client_with(org, jwt_auth(org))
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

#[derive(Debug, serde::Deserialize)]
struct Message {
    #[serde(rename = "Id")]
    id: String,
    /// A Text field (Long Text Areas such as Body__c cannot be filtered or sorted in SOQL).
    #[serde(rename = "Template_Name__c")]
    name: Option<String>,
}

async fn expect_auth_error(client: SalesforceClient, expected_error: &str, expected: &str) {
    match client.session().await {
        Err(SalesforceError::Auth {
            error,
            description,
            hint,
        }) => {
            assert_eq!(error, expected_error);
            assert_eq!(description, expected);
            assert!(!hint.is_empty());
        }
        other => panic!("expected an Auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn jwt_bearer_login_succeeds_and_rest_goes_to_the_instance_url() {
    let org = spawn_org().await;
    let client = client(&org);

    let session = client.session().await.unwrap();
    let records: Vec<Message> = client
        .query("SELECT Id FROM WhatsApp_Message__c")
        .await
        .unwrap();

    assert_eq!(session.instance_url, org.sim.url());
    assert!(records.is_empty());
    assert_eq!(org.stats().await["rest_calls"]["total"], 1);
}

#[tokio::test]
async fn jwt_bearer_accepts_the_my_domain_url_as_audience() {
    let org = spawn_org().await;
    let mut auth = jwt_auth(&org);
    if let Auth::JwtBearer { audience, .. } = &mut auth {
        *audience = format!("{}/", org.sim.url());
    }

    assert!(client_with(&org, auth).session().await.is_ok());
}

#[tokio::test]
async fn client_credentials_login_succeeds() {
    let org = spawn_org().await;
    let client = client_with(
        &org,
        Auth::ClientCredentials {
            client_id: org.sim.config().client_id.clone(),
            client_secret: org.sim.config().client_secret.clone(),
        },
    );

    let records: Vec<Message> = client
        .query("SELECT Id FROM WhatsApp_Message__c")
        .await
        .unwrap();

    assert!(records.is_empty());
}

#[tokio::test]
async fn refresh_token_login_succeeds() {
    let org = spawn_org().await;
    let issued = org.control("refresh-tokens", json!({})).await;
    let client = client_with(
        &org,
        Auth::RefreshToken {
            client_id: org.sim.config().client_id.clone(),
            client_secret: Some(org.sim.config().client_secret.clone()),
            refresh_token: issued["refresh_token"].as_str().unwrap().to_string(),
        },
    );

    let records: Vec<Message> = client
        .query("SELECT Id FROM WhatsApp_Message__c")
        .await
        .unwrap();

    assert!(records.is_empty());
}

#[tokio::test]
async fn jwt_for_a_user_the_app_is_not_approved_for_is_an_auth_error_with_salesforces_words() {
    let org = spawn_org().await;
    let mut auth = jwt_auth(&org);
    if let Auth::JwtBearer { username, .. } = &mut auth {
        *username = "someone.else@sfwa.example".into();
    }

    expect_auth_error(
        client_with(&org, auth),
        "invalid_grant",
        "user hasn't approved this consumer",
    )
    .await;
}

#[tokio::test]
async fn jwt_with_a_wrong_audience_is_an_auth_error() {
    let org = spawn_org().await;
    let mut auth = jwt_auth(&org);
    if let Auth::JwtBearer { audience, .. } = &mut auth {
        *audience = "https://example.com".into();
    }

    expect_auth_error(
        client_with(&org, auth),
        "invalid_grant",
        "audience is invalid",
    )
    .await;
}

#[tokio::test]
async fn wrong_client_secret_is_an_auth_error_with_salesforces_words() {
    let org = spawn_org().await;
    let client = client_with(
        &org,
        Auth::ClientCredentials {
            client_id: org.sim.config().client_id.clone(),
            client_secret: "not-the-secret".into(),
        },
    );

    expect_auth_error(client, "invalid_client", "invalid client credentials").await;
}

#[tokio::test]
async fn unknown_refresh_token_is_an_auth_error_with_salesforces_words() {
    let org = spawn_org().await;
    let client = client_with(
        &org,
        Auth::RefreshToken {
            client_id: org.sim.config().client_id.clone(),
            client_secret: None,
            refresh_token: "5Aep861notissued".into(),
        },
    );

    expect_auth_error(client, "invalid_grant", "expired access/refresh token").await;
}

#[tokio::test]
async fn a_private_key_that_is_not_pem_is_refused_when_the_client_is_built() {
    let org = spawn_org().await;
    let mut auth = jwt_auth(&org);
    if let Auth::JwtBearer {
        private_key_pem, ..
    } = &mut auth
    {
        *private_key_pem = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----".into();
    }

    let built = SalesforceClient::new(
        reqwest::Client::new(),
        SalesforceConfig {
            login_url: org.sim.url(),
            api_version: "62.0".into(),
            auth,
            timeout: Duration::from_secs(10),
        },
    );

    assert!(
        matches!(built, Err(SalesforceError::Auth { error, .. }) if error == "invalid_private_key")
    );
    assert_eq!(org.stats().await["token_requests"], 0);
}

#[tokio::test]
async fn one_token_serves_many_calls_and_concurrent_callers_across_clones() {
    let org = spawn_org().await;
    let client = client(&org);

    let concurrent: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .query::<Message>("SELECT Id FROM WhatsApp_Message__c")
                    .await
            })
        })
        .collect();
    for task in concurrent {
        task.await.unwrap().unwrap();
    }
    for _ in 0..4 {
        client.describe(MSG).await.unwrap();
    }

    let stats = org.stats().await;
    assert_eq!(stats["token_requests"], 1);
    assert_eq!(stats["rest_calls"]["total"], 12);
    assert_eq!(client.calls_made(), 12);
}

#[tokio::test]
async fn an_expired_session_mid_run_costs_one_login_and_the_call_succeeds() {
    let org = spawn_org().await;
    org.seed(MSG, json!([{"Template_Name__c": "hello"}])).await;
    let client = client(&org);
    let before = client.session().await.unwrap();

    org.control("sessions/expire", json!({})).await;
    let records: Vec<Message> = client
        .query("SELECT Id, Template_Name__c FROM WhatsApp_Message__c")
        .await
        .unwrap();

    assert_eq!(records[0].name.as_deref(), Some("hello"));
    assert_eq!(org.stats().await["token_requests"], 2);
    assert_ne!(
        client.session().await.unwrap().access_token,
        before.access_token
    );
}

#[tokio::test]
async fn invalidating_a_stale_token_keeps_the_fresh_session() {
    let org = spawn_org().await;
    let client = client(&org);
    let first = client.session().await.unwrap();
    client.invalidate_session(&first.access_token);
    let second = client.session().await.unwrap();

    client.invalidate_session(&first.access_token);

    assert_eq!(client.session().await.unwrap(), second);
    assert_eq!(org.stats().await["token_requests"], 2);
}

#[tokio::test]
async fn query_follows_next_records_url_until_every_page_is_read() {
    let org = spawn_org_with(SalesforceSimConfig {
        query_page_size: 3,
        ..SalesforceSimConfig::for_tests()
    })
    .await;
    let seeded: Vec<Value> = (0..10)
        .map(|i| json!({"Template_Name__c": format!("m{i}")}))
        .collect();
    org.seed(MSG, Value::Array(seeded)).await;
    let client = client(&org);

    let records: Vec<Message> = client
        .query(
            "SELECT Id, Template_Name__c FROM WhatsApp_Message__c WHERE Template_Name__c LIKE 'm%' ORDER BY Template_Name__c",
        )
        .await
        .unwrap();

    let bodies: Vec<String> = records.iter().filter_map(|r| r.name.clone()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected);
    let stats = org.stats().await;
    assert_eq!(stats["rest_calls"]["by_endpoint"]["GET query"], 1);
    assert_eq!(stats["rest_calls"]["by_endpoint"]["GET query/{locator}"], 3);
}

#[tokio::test]
async fn soql_literals_survive_quotes_and_backslashes() {
    let org = spawn_org().await;
    let tricky = r"O'Brien \ it's";
    org.seed(
        MSG,
        json!([{"Template_Name__c": tricky}, {"Template_Name__c": "other"}]),
    )
    .await;
    let client = client(&org);

    let soql = format!(
        "SELECT Id, Template_Name__c FROM WhatsApp_Message__c WHERE Template_Name__c = {}",
        sfwa::salesforce::soql_string(tricky)
    );
    let records: Vec<Message> = client.query(&soql).await.unwrap();

    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name.as_deref(), Some(tricky));
}

#[tokio::test]
async fn update_of_450_records_takes_three_collection_calls_with_results_in_order() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, Value::Array(vec![json!({}); 450])).await;
    let client = client(&org);
    let updates: Vec<(String, Map<String, Value>)> = ids
        .iter()
        .map(|id| (id.clone(), fields(json!({"Status__c": "Sent"}))))
        .collect();

    let results = client.update(MSG, &updates).await.unwrap();

    assert_eq!(results.len(), 450);
    assert!(results.iter().all(|r| r.success));
    let returned: Vec<String> = results.iter().map(|r| r.id.clone().unwrap()).collect();
    assert_eq!(returned, ids);
    let stats = org.stats().await;
    assert_eq!(
        stats["rest_calls"]["by_endpoint"]["PATCH composite/sobjects"],
        3
    );
    let sent: Vec<Message> = client
        .query("SELECT Id FROM WhatsApp_Message__c WHERE Status__c = 'Sent'")
        .await
        .unwrap();
    assert_eq!(sent.len(), 450);
}

#[tokio::test]
async fn locked_rows_fail_with_a_retry_disposition() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}])).await;
    let client = client(&org);
    org.control("faults", json!({"lock_row_rate": 1.0})).await;

    let results = client
        .update(
            MSG,
            &[(ids[0].clone(), fields(json!({"Status__c": "Sent"})))],
        )
        .await
        .unwrap();

    assert_eq!(results[0].errors[0].status_code, "UNABLE_TO_LOCK_ROW");
    assert_eq!(results[0].disposition(), Some(Disposition::Retry));
}

#[tokio::test]
async fn a_deleted_record_is_dropped_and_a_bad_picklist_value_is_surfaced_while_others_are_written()
{
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}, {}])).await;
    let token = org.login().await;
    let deleted = org
        .rest(
            reqwest::Method::DELETE,
            &token,
            &format!("sobjects/{MSG}/{}", ids[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let client = client(&org);

    let results = client
        .update(
            MSG,
            &[
                (ids[0].clone(), fields(json!({"Status__c": "Sent"}))),
                (ids[1].clone(), fields(json!({"Status__c": "Bogus"}))),
                (ids[2].clone(), fields(json!({"Status__c": "Sent"}))),
            ],
        )
        .await
        .unwrap();

    assert_eq!(results[0].errors[0].status_code, "ENTITY_IS_DELETED");
    assert_eq!(results[0].disposition(), Some(Disposition::Drop));
    assert_eq!(
        results[1].errors[0].status_code,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert_eq!(results[1].disposition(), Some(Disposition::Surface));
    assert!(results[2].success);
    assert_eq!(results[2].disposition(), None);
}

#[tokio::test]
async fn create_returns_one_id_per_record_in_order() {
    let org = spawn_org().await;
    let client = client(&org);
    let records: Vec<Map<String, Value>> = (0..3)
        .map(|i| fields(json!({"Direction__c": "Inbound", "Status__c": "Received", "Template_Name__c": format!("in{i}")})))
        .collect();

    let results = client.create(MSG, &records).await.unwrap();

    let ids: Vec<String> = results.iter().map(|r| r.id.clone().unwrap()).collect();
    let stored: Vec<Message> = client
        .query("SELECT Id, Template_Name__c FROM WhatsApp_Message__c ORDER BY Template_Name__c")
        .await
        .unwrap();
    assert_eq!(stored.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
}

#[tokio::test]
async fn upsert_by_external_id_says_created_then_updated() {
    let org = spawn_org().await;
    let client = client(&org);
    let record = |body: &str| {
        vec![fields(
            json!({"WhatsApp_Message_Id__c": "wamid.UPSERT1", "Body__c": body}),
        )]
    };

    let first = client
        .upsert(MSG, "WhatsApp_Message_Id__c", &record("first"))
        .await
        .unwrap();
    let second = client
        .upsert(MSG, "WhatsApp_Message_Id__c", &record("second"))
        .await
        .unwrap();

    assert_eq!(first[0].created, Some(true));
    assert_eq!(second[0].created, Some(false));
    assert_eq!(first[0].id, second[0].id);
}

#[tokio::test]
async fn a_503_is_unavailable() {
    let org = spawn_org().await;
    let client = client(&org);
    client.session().await.unwrap();
    org.control("faults", json!({"error_503_rate": 1.0})).await;

    let outcome = client
        .query::<Message>("SELECT Id FROM WhatsApp_Message__c")
        .await;

    assert!(
        matches!(outcome, Err(SalesforceError::Unavailable(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_connection_dropped_after_a_write_is_a_bad_response() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}])).await;
    let client = client(&org);
    client.session().await.unwrap();
    org.control("faults", json!({"drop_connection_rate": 1.0}))
        .await;

    let outcome = client
        .update(
            MSG,
            &[(ids[0].clone(), fields(json!({"Status__c": "Sent"})))],
        )
        .await;

    assert!(
        matches!(outcome, Err(SalesforceError::BadResponse(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_spent_allowance_is_limit_exceeded() {
    let org = spawn_org().await;
    let client = client(&org);
    org.control(
        "limits",
        json!({"daily_api_allowance": 100, "used_today": 100}),
    )
    .await;

    let outcome = client
        .query::<Message>("SELECT Id FROM WhatsApp_Message__c")
        .await;

    assert_eq!(outcome.err(), Some(SalesforceError::LimitExceeded));
}

#[tokio::test]
async fn api_usage_is_read_from_the_latest_response() {
    let org = spawn_org().await;
    let client = client(&org);
    org.control(
        "limits",
        json!({"daily_api_allowance": 1000, "used_today": 40}),
    )
    .await;
    assert_eq!(client.api_usage(), None);

    client.describe(MSG).await.unwrap();
    client.describe(MSG).await.unwrap();

    let usage = client.api_usage().unwrap();
    assert_eq!((usage.used, usage.max, usage.remaining()), (42, 1000, 958));
}

#[tokio::test]
async fn a_malformed_query_is_an_api_error_with_salesforces_code() {
    let org = spawn_org().await;
    let client = client(&org);

    let outcome = client.query::<Message>("SELECT Id FROM").await;

    assert!(
        matches!(&outcome, Err(SalesforceError::Api { status: 400, error_code, .. }) if error_code == "MALFORMED_QUERY"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn describe_lists_fields_with_picklists_lengths_and_external_ids() {
    let org = spawn_org().await;
    let client = client(&org);

    let describe = client.describe(MSG).await.unwrap();

    assert_eq!(describe.name, MSG);
    let status = describe.field("Status__c").unwrap();
    assert_eq!(status.field_type, "picklist");
    assert!(status
        .picklist_values
        .iter()
        .any(|v| v.value == "Delivered"));
    assert!(
        describe
            .field("WhatsApp_Message_Id__c")
            .unwrap()
            .external_id
    );
    assert_eq!(describe.field("Business_Number_Id__c").unwrap().length, 32);
}

#[tokio::test]
async fn debug_output_never_shows_keys_secrets_or_tokens() {
    let org = spawn_org().await;
    let refresh = org.control("refresh-tokens", json!({})).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let jwt = client(&org);
    let session = jwt.session().await.unwrap();
    let refreshing = client_with(
        &org,
        Auth::RefreshToken {
            client_id: org.sim.config().client_id.clone(),
            client_secret: Some(org.sim.config().client_secret.clone()),
            refresh_token: refresh.clone(),
        },
    );

    let printed = format!("{jwt:?} {session:?} {refreshing:?}");

    assert!(!printed.contains(&session.access_token));
    assert!(!printed.contains("PRIVATE KEY"));
    assert!(!printed.contains(&org.sim.config().client_secret));
    assert!(!printed.contains(&refresh));
    assert!(printed.contains(&org.sim.config().username));
}

/// A stand-in org whose logins always work but whose sessions are always refused (e.g. the
/// integration user lost "API Enabled"); returns its URL and a login counter.
async fn spawn_org_refusing_every_session() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>)
{
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let logins = Arc::new(AtomicU64::new(0));
    let counter = logins.clone();
    let instance_url = url.clone();
    let app = axum::Router::new()
        .route(
            "/services/oauth2/token",
            axum::routing::post(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let instance_url = instance_url.clone();
                async move {
                    axum::Json(json!({
                        "access_token": format!("00Dstub!AR{n}"), "scope": "api",
                        "instance_url": instance_url, "id": "https://login.salesforce.com/id/00D/005",
                        "token_type": "Bearer", "issued_at": "1764000000000", "signature": "sig"
                    }))
                }
            }),
        )
        .fallback(|| async {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(
                    json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
                ),
            )
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, logins)
}

#[tokio::test]
async fn a_session_refused_again_right_after_a_fresh_login_is_an_auth_error() {
    let (url, logins) = spawn_org_refusing_every_session().await;
    let client = SalesforceClient::new(
        reqwest::Client::new(),
        SalesforceConfig {
            login_url: url,
            api_version: "v62.0".into(),
            auth: Auth::ClientCredentials {
                client_id: "3MVGstub".into(),
                client_secret: "secret".into(),
            },
            timeout: Duration::from_secs(5),
        },
    )
    .unwrap();

    let outcome = client
        .query::<Message>("SELECT Id FROM WhatsApp_Message__c")
        .await;

    assert!(
        matches!(&outcome, Err(SalesforceError::Auth { error, .. }) if error == "INVALID_SESSION_ID"),
        "{outcome:?}"
    );
    assert_eq!(logins.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(client.calls_made(), 2);
}

#[tokio::test]
async fn an_unreachable_login_url_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = SalesforceClient::new(
        reqwest::Client::new(),
        SalesforceConfig {
            login_url: url,
            api_version: "62.0".into(),
            auth: Auth::ClientCredentials {
                client_id: "3MVGstub".into(),
                client_secret: "secret".into(),
            },
            timeout: Duration::from_secs(5),
        },
    )
    .unwrap();

    let outcome = client.describe(MSG).await;

    assert!(
        matches!(outcome, Err(SalesforceError::Unavailable(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_read_that_times_out_is_unavailable() {
    let org = spawn_org().await;
    let client = SalesforceClient::new(
        reqwest::Client::new(),
        SalesforceConfig {
            login_url: org.sim.url(),
            api_version: "62.0".into(),
            auth: jwt_auth(&org),
            timeout: Duration::from_millis(300),
        },
    )
    .unwrap();
    client.session().await.unwrap();
    org.control("faults", json!({"latency_ms": 2000})).await;

    let outcome = client.describe(MSG).await;

    assert!(
        matches!(outcome, Err(SalesforceError::Unavailable(_))),
        "{outcome:?}"
    );
}
