//! The daemon's CometD client against the org simulator over real HTTP: subscribing with each replay
//! position, and recovering from every failure the Streaming API reports.

use std::time::Duration;

use serde_json::{json, Map, Value};
use sfwa::salesforce::{
    Auth, CometdClient, CometdError, ReplayFrom, SalesforceClient, SalesforceConfig, StreamEvent,
    OUTBOUND_EVENT_CHANNEL,
};
use sfwa_sim::salesforce::SalesforceSimConfig;

use crate::helpers::{spawn_org_with, Org};

/// Generous bound for anything that should happen "at once"; never reached when the code is right.
const PROMPTLY: Duration = Duration::from_secs(10);

/// An org whose long polls end after 200 ms, so a poll with nothing to deliver is quick.
async fn spawn_streaming_org() -> Org {
    spawn_org_with(quick_polls(SalesforceSimConfig::for_tests())).await
}

fn quick_polls(config: SalesforceSimConfig) -> SalesforceSimConfig {
    SalesforceSimConfig {
        connect_timeout: Duration::from_millis(200),
        ..config
    }
}

fn salesforce(org: &Org) -> SalesforceClient {
    let config = org.sim.config();
    SalesforceClient::new(
        reqwest::Client::new(),
        SalesforceConfig {
            login_url: org.sim.url(),
            api_version: "62.0".into(),
            auth: Auth::JwtBearer {
                client_id: config.client_id.clone(),
                username: config.username.clone(),
                private_key_pem: config.trusted_key.private_pem.clone(),
                audience: "https://login.salesforce.com".into(),
            },
            timeout: Duration::from_secs(10),
        },
    )
    .expect("the client builds")
}

fn stream(org: &Org) -> CometdClient {
    CometdClient::new(salesforce(org), OUTBOUND_EVENT_CHANNEL).expect("the stream client builds")
}

/// Publishes `WhatsApp_Outbound__e` as the Flow would; returns its replay id.
fn publish(org: &Org, message_id: &str) -> i64 {
    let mut fields = Map::new();
    fields.insert("Message_Id__c".into(), json!(message_id));
    org.sim.state().bus.publish(OUTBOUND_EVENT_CHANNEL, fields)
}

/// Polls until `count` events have arrived (failing on any error or after [`PROMPTLY`]).
async fn poll_for(client: &mut CometdClient, from: ReplayFrom, count: usize) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    tokio::time::timeout(PROMPTLY, async {
        while events.len() < count {
            events.extend(client.poll(from).await.expect("the poll succeeds"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} events arrived", events.len()));
    events
}

/// `(replay id, Message_Id__c)` of each event.
fn delivered(events: &[StreamEvent]) -> Vec<(i64, &str)> {
    events
        .iter()
        .map(|e| (e.replay_id, e.field("Message_Id__c").unwrap_or("<none>")))
        .collect()
}

#[tokio::test]
async fn events_published_after_subscribing_with_new_arrive_with_their_replay_ids_and_message_ids()
{
    // Arrange
    let org = spawn_streaming_org().await;
    let before = publish(&org, "a01000000000000AAA");
    let mut client = stream(&org);
    let first = client.poll(ReplayFrom::New).await.expect("subscribed");
    assert!(
        first.is_empty(),
        "an event from before subscribing: {first:?}"
    );
    assert!(client.is_connected());

    // Act
    let one = publish(&org, "a01000000000001AAA");
    let two = publish(&org, "a01000000000002AAA");
    let events = poll_for(&mut client, ReplayFrom::New, 2).await;

    // Assert
    assert!(before < one);
    assert_eq!(
        delivered(&events),
        [(one, "a01000000000001AAA"), (two, "a01000000000002AAA")]
    );
    assert!(events[0].field("CreatedDate").is_some());
}

#[tokio::test]
async fn a_queued_outbound_record_reaches_the_stream_through_the_flow() {
    // Arrange
    let org = spawn_streaming_org().await;
    let mut client = stream(&org);
    client.poll(ReplayFrom::New).await.expect("subscribed");

    // Act
    let ids = org
        .seed(
            "WhatsApp_Message__c",
            json!([{"Direction__c": "Outbound", "Status__c": "Queued", "Template_Name__c": "hello"}]),
        )
        .await;
    let events = poll_for(&mut client, ReplayFrom::New, 1).await;

    // Assert
    assert_eq!(events[0].field("Message_Id__c"), Some(ids[0].as_str()));
}

#[tokio::test]
async fn a_held_long_poll_returns_as_soon_as_an_event_is_published() {
    // Arrange: a long poll that would hold for a minute.
    let org = spawn_org_with(SalesforceSimConfig {
        connect_timeout: Duration::from_secs(60),
        ..SalesforceSimConfig::for_tests()
    })
    .await;
    let mut client = stream(&org);
    let polling = tokio::spawn(async move {
        let events = client.poll(ReplayFrom::New).await;
        (client, events)
    });
    let bus = org.sim.state().bus.clone();
    tokio::time::timeout(PROMPTLY, async {
        while bus.held_connects() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the connect is held");

    // Act
    let replay_id = publish(&org, "a01000000000003AAA");

    // Assert
    let (_client, events) = tokio::time::timeout(PROMPTLY, polling)
        .await
        .expect("the poll returns before the hold ends")
        .unwrap();
    assert_eq!(
        delivered(&events.unwrap()),
        [(replay_id, "a01000000000003AAA")]
    );
}

#[tokio::test]
async fn replaying_all_returns_every_retained_event() {
    // Arrange
    let org = spawn_streaming_org().await;
    let one = publish(&org, "a01000000000001AAA");
    let two = publish(&org, "a01000000000002AAA");
    let mut client = stream(&org);

    // Act
    let events = poll_for(&mut client, ReplayFrom::All, 2).await;

    // Assert
    assert_eq!(
        delivered(&events),
        [(one, "a01000000000001AAA"), (two, "a01000000000002AAA")]
    );
}

#[tokio::test]
async fn replaying_after_a_stored_id_returns_only_the_events_after_it() {
    // Arrange
    let org = spawn_streaming_org().await;
    publish(&org, "a01000000000001AAA");
    let stored = publish(&org, "a01000000000002AAA");
    let three = publish(&org, "a01000000000003AAA");
    let mut client = stream(&org);

    // Act
    let events = poll_for(&mut client, ReplayFrom::After(stored), 1).await;

    // Assert
    assert_eq!(delivered(&events), [(three, "a01000000000003AAA")]);
}

#[tokio::test]
async fn a_forgotten_client_is_reported_then_the_next_poll_resubscribes_from_the_stored_id() {
    // Arrange
    let org = spawn_streaming_org().await;
    let mut client = stream(&org);
    let first = publish(&org, "a01000000000001AAA");
    let stored = poll_for(&mut client, ReplayFrom::All, 1).await[0].replay_id;
    assert_eq!(stored, first);
    org.control("streaming/drop-clients", json!({})).await;
    // Published while the client is unknown: a New subscription would miss it.
    let missed = publish(&org, "a01000000000002AAA");

    // Act
    let error = client.poll(ReplayFrom::After(stored)).await;
    let connected_after_error = client.is_connected();
    let events = poll_for(&mut client, ReplayFrom::After(stored), 1).await;

    // Assert
    assert_eq!(error, Err(CometdError::UnknownClient));
    assert!(error.unwrap_err().is_retryable());
    assert!(!connected_after_error);
    assert_eq!(delivered(&events), [(missed, "a01000000000002AAA")]);
}

#[tokio::test]
async fn an_expired_session_is_reported_then_the_next_poll_logs_in_again_and_delivers() {
    // Arrange
    let org = spawn_streaming_org().await;
    let salesforce = salesforce(&org);
    let mut client = CometdClient::new(salesforce.clone(), OUTBOUND_EVENT_CHANNEL).unwrap();
    let first = publish(&org, "a01000000000001AAA");
    let stored = poll_for(&mut client, ReplayFrom::All, 1).await[0].replay_id;
    assert_eq!(stored, first);
    let old_token = salesforce.session().await.unwrap().access_token;
    org.control("sessions/expire", json!({})).await;

    // Act
    let error = client.poll(ReplayFrom::After(stored)).await;
    let next = publish(&org, "a01000000000002AAA");
    let events = poll_for(&mut client, ReplayFrom::After(stored), 1).await;

    // Assert
    assert_eq!(error, Err(CometdError::AuthInvalid));
    assert_eq!(delivered(&events), [(next, "a01000000000002AAA")]);
    let new_token = salesforce.session().await.unwrap().access_token;
    assert_ne!(new_token, old_token, "the client logged in again");
    assert_eq!(org.stats().await["token_requests"], 2);
}

#[tokio::test]
async fn a_replay_id_older_than_the_retention_is_stale_and_replaying_all_recovers() {
    // Arrange: events are kept for 30 s of sim time.
    let org = spawn_org_with(SalesforceSimConfig {
        event_retention: chrono::Duration::seconds(30),
        ..quick_polls(SalesforceSimConfig::for_tests())
    })
    .await;
    let salesforce = salesforce(&org);
    salesforce.session().await.expect("logged in");
    let old = publish(&org, "a01000000000001AAA");
    org.sim.clock().shift(chrono::Duration::seconds(60));
    let recent = publish(&org, "a01000000000002AAA");
    let mut client = CometdClient::new(salesforce, OUTBOUND_EVENT_CHANNEL).unwrap();

    // Act
    let error = client.poll(ReplayFrom::After(old)).await.unwrap_err();
    let events = poll_for(&mut client, ReplayFrom::All, 1).await;

    // Assert
    let CometdError::StaleReplay { replay_id, message } = &error else {
        panic!("expected StaleReplay, got {error:?}");
    };
    assert_eq!(*replay_id, old);
    assert!(
        message.starts_with(&format!("400::The replayId {{{old}}}")),
        "{message}"
    );
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("-2"), "{error}");
    assert_eq!(delivered(&events), [(recent, "a01000000000002AAA")]);
}

#[tokio::test]
async fn the_stream_works_only_because_the_client_sends_the_handshake_cookies_back() {
    // Arrange: the simulator refuses a subscribe without the `sfdc-stream` route cookie.
    let org = spawn_streaming_org().await;
    let token = org.login().await;
    let cookieless = reqwest::Client::new();
    let endpoint = org.url("/cometd/62.0");
    let handshake: Vec<Value> = cookieless
        .post(&endpoint)
        .bearer_auth(&token)
        .json(&json!([{"channel":"/meta/handshake","version":"1.0",
            "supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let without_cookies: Vec<Value> = cookieless
        .post(&endpoint)
        .bearer_auth(&token)
        .json(
            &json!([{"channel":"/meta/subscribe","clientId":handshake[0]["clientId"],
            "subscription":OUTBOUND_EVENT_CHANNEL,"id":"2"}]),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(without_cookies[0]["error"], "403::Unknown client");
    let published = publish(&org, "a01000000000001AAA");
    let mut client = stream(&org);

    // Act
    let events = poll_for(&mut client, ReplayFrom::All, 1).await;

    // Assert
    assert_eq!(delivered(&events), [(published, "a01000000000001AAA")]);
}

#[tokio::test]
async fn subscribing_to_a_channel_the_org_does_not_have_is_refused_naming_it() {
    // Arrange
    let org = spawn_streaming_org().await;
    let mut client = CometdClient::new(salesforce(&org), "/event/Not_Deployed__e").unwrap();

    // Act
    let error = client.poll(ReplayFrom::New).await.unwrap_err();

    // Assert
    assert_eq!(
        error,
        CometdError::NoSuchChannel {
            channel: "/event/Not_Deployed__e".into()
        }
    );
    assert!(error.to_string().contains("deploy the sfwa package"));
    assert!(!error.is_retryable());
    assert!(!client.is_connected());
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    // Arrange
    let org = spawn_streaming_org().await;
    let mut client = stream(&org);
    client.poll(ReplayFrom::New).await.expect("subscribed");
    let Org { sim, .. } = org;
    sim.stop().await;

    // Act
    let error = client.poll(ReplayFrom::New).await.unwrap_err();

    // Assert
    assert!(matches!(error, CometdError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
    assert!(!client.is_connected());
}

#[tokio::test]
async fn disconnecting_frees_the_client_on_the_server() {
    // Arrange
    let org = spawn_streaming_org().await;
    let mut client = stream(&org);
    client.poll(ReplayFrom::New).await.expect("subscribed");
    assert_eq!(org.sim.state().bus.client_count(), 1);

    // Act
    client.disconnect().await;

    // Assert
    assert!(!client.is_connected());
    assert_eq!(org.sim.state().bus.client_count(), 0);
}
