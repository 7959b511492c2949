//! A stream per shard: custom platform-event channels whose members filter `WhatsApp_Outbound__e`
//! on `Business_Number_Id__c` (created through the Tooling API as an admin would, or the control
//! API as a stand-in for a metadata deploy), the org's `DailyDeliveredPlatformEvents` allocation
//! spent once per delivery after filtering, and the daemon on a shard's channel.

use std::time::Duration;

use serde_json::{json, Value};
use sfwa::pipeline::stream::StreamIntake;
use sfwa::salesforce::{CometdClient, CometdError, ReplayFrom, SalesforceClient, StreamEvent};
use sfwa_sim::salesforce::SalesforceSimConfig;

use crate::daemon_support::{spawn_app_with, Options, DEADLINE, MSG};
use crate::helpers::{spawn_org_with, Org};

const SHARD_A: &str = "/event/Sfwa_Shard_A__chn";
const SHARD_B: &str = "/event/Sfwa_Shard_B__chn";

async fn spawn_streaming_org() -> Org {
    spawn_org_with(SalesforceSimConfig {
        connect_timeout: Duration::from_millis(200),
        ..SalesforceSimConfig::for_tests()
    })
    .await
}

fn salesforce(org: &Org) -> SalesforceClient {
    org.salesforce_client()
}

/// Creates `name` and its member filtering on `filter`, the Tooling API way (two REST calls).
async fn create_shard_channel(org: &Org, token: &str, name: &str, filter: &str) {
    let (status, body) = org
        .call(
            reqwest::Method::POST,
            token,
            "tooling/sobjects/PlatformEventChannel",
            json!({"FullName": name, "Metadata": {"channelType": "event", "label": name}}),
        )
        .await;
    assert_eq!((status, &body["success"]), (201, &json!(true)), "{body}");
    let (status, body) = org
        .call(
            reqwest::Method::POST,
            token,
            "tooling/sobjects/PlatformEventChannelMember",
            json!({"FullName": format!("{}_WhatsApp_Outbound_e", name.replace("__", "_")),
                   "Metadata": {"eventChannel": name, "selectedEntity": "WhatsApp_Outbound__e",
                                "filterExpression": filter}}),
        )
        .await;
    assert_eq!((status, &body["success"]), (201, &json!(true)), "{body}");
}

/// Queued outbound records for `number` (None: blank, the default number); the Flow publishes
/// one event each.
fn records(number: Option<&str>, n: usize, first: usize) -> Value {
    json!((0..n)
        .map(|i| json!({"To_Phone__c": format!("+1650555{:04}", first + i), "Message_Type__c": "Template",
                        "Template_Name__c": "hello_world", "Status__c": "Queued", "Business_Number_Id__c": number}))
        .collect::<Vec<_>>())
}

/// Polls until `count` events have arrived, failing on an error or after DEADLINE.
async fn poll_for(client: &mut CometdClient, count: usize) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while events.len() < count {
            events.extend(
                client
                    .poll(ReplayFrom::All)
                    .await
                    .expect("the poll succeeds"),
            );
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} events arrived", events.len()));
    events
}

fn message_ids(events: &[StreamEvent]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e.field("Message_Id__c").unwrap_or("<none>").to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn delivered_remaining(org: &Org, token: &str) -> (u64, u64) {
    let (status, limits) = org
        .call(reqwest::Method::GET, token, "limits", Value::Null)
        .await;
    assert_eq!(status, 200);
    let allocation = &limits["DailyDeliveredPlatformEvents"];
    (
        allocation["Max"].as_u64().expect("Max"),
        allocation["Remaining"].as_u64().expect("Remaining"),
    )
}

#[tokio::test]
async fn two_subscribers_on_two_filtered_channels_each_receive_only_their_numbers_events() {
    // Arrange: shard A takes 111 and the blank records, shard B takes 222.
    let org = spawn_streaming_org().await;
    let token = org.login().await;
    let filter_a = "Business_Number_Id__c = null OR Business_Number_Id__c = '111'";
    create_shard_channel(&org, &token, "Sfwa_Shard_A__chn", filter_a).await;
    create_shard_channel(
        &org,
        &token,
        "Sfwa_Shard_B__chn",
        "Business_Number_Id__c = '222'",
    )
    .await;
    let mut a = CometdClient::new(salesforce(&org), SHARD_A).unwrap();
    let mut b = CometdClient::new(salesforce(&org), SHARD_B).unwrap();
    a.subscribe(ReplayFrom::New).await.unwrap();
    b.subscribe(ReplayFrom::New).await.unwrap();

    // Act
    let mut for_a = org.seed(MSG, records(Some("111"), 2, 0)).await;
    let for_b = org.seed(MSG, records(Some("222"), 3, 10)).await;
    for_a.extend(org.seed(MSG, records(None, 1, 20)).await);
    let got_a = poll_for(&mut a, 3).await;
    let got_b = poll_for(&mut b, 3).await;
    // One more round each: nothing else is on its way.
    let more_a = a.poll(ReplayFrom::All).await.unwrap();
    let more_b = b.poll(ReplayFrom::All).await.unwrap();

    // Assert
    assert_eq!(message_ids(&got_a), sorted(for_a));
    assert_eq!(message_ids(&got_b), sorted(for_b));
    assert!(
        more_a.is_empty() && more_b.is_empty(),
        "{more_a:?} {more_b:?}"
    );
    assert!(got_b
        .iter()
        .all(|e| e.field("Business_Number_Id__c") == Some("222")));
}

#[tokio::test]
async fn the_delivery_allocation_counts_each_delivery_after_filtering_and_stops_at_its_max() {
    // Arrange: two shards and one subscriber to the whole event, 6 events published.
    let org = spawn_streaming_org().await;
    let token = org.login().await;
    create_shard_channel(
        &org,
        &token,
        "Sfwa_Shard_A__chn",
        "Business_Number_Id__c = '111'",
    )
    .await;
    create_shard_channel(
        &org,
        &token,
        "Sfwa_Shard_B__chn",
        "Business_Number_Id__c = '222'",
    )
    .await;
    let mut a = CometdClient::new(salesforce(&org), SHARD_A).unwrap();
    let mut b = CometdClient::new(salesforce(&org), SHARD_B).unwrap();
    a.subscribe(ReplayFrom::New).await.unwrap();
    b.subscribe(ReplayFrom::New).await.unwrap();
    let (max, before) = delivered_remaining(&org, &token).await;

    // Act: 2 events for A, 4 for B: 6 deliveries, not 12 as two unfiltered subscribers would cost.
    org.seed(MSG, records(Some("111"), 2, 0)).await;
    org.seed(MSG, records(Some("222"), 4, 10)).await;
    poll_for(&mut a, 2).await;
    poll_for(&mut b, 4).await;
    let (_, after) = delivered_remaining(&org, &token).await;
    // Then the allocation runs out: one delivery left, two events for A.
    org.control(
        "limits",
        json!({"daily_delivered_platform_events": max, "delivered_today": max - 1}),
    )
    .await;
    org.seed(MSG, records(Some("111"), 2, 20)).await;
    let first = poll_for(&mut a, 1).await;
    let held = a.poll(ReplayFrom::All).await.unwrap();
    let (_, spent) = delivered_remaining(&org, &token).await;

    // Assert
    assert_eq!(max, 10_000, "Developer Edition's allocation");
    assert_eq!(before - after, 6);
    assert_eq!(first.len(), 1);
    assert!(held.is_empty(), "delivered past the allocation: {held:?}");
    assert_eq!(spent, 0);
}

#[tokio::test]
async fn a_subscription_to_a_channel_nobody_created_is_refused_naming_it_and_how_to_create_it() {
    // Arrange
    let org = spawn_streaming_org().await;
    let mut client = CometdClient::new(salesforce(&org), SHARD_A).unwrap();

    // Act
    let error = client.poll(ReplayFrom::New).await.unwrap_err();

    // Assert
    assert_eq!(
        error,
        CometdError::NoSuchChannel {
            channel: SHARD_A.into()
        }
    );
    assert!(error.to_string().contains("salesforce/shards/README.md"));
}

#[tokio::test]
async fn a_channel_member_whose_filter_names_a_field_the_event_lacks_is_refused() {
    // Arrange
    let org = spawn_streaming_org().await;
    let token = org.login().await;
    org.call(
        reqwest::Method::POST,
        &token,
        "tooling/sobjects/PlatformEventChannel",
        json!({"FullName": "Sfwa_Shard_A__chn", "Metadata": {"channelType": "event", "label": "A"}}),
    )
    .await;

    // Act
    let (status, body) = org
        .call(
            reqwest::Method::POST,
            &token,
            "tooling/sobjects/PlatformEventChannelMember",
            json!({"FullName": "Sfwa_Shard_A_chn_WhatsApp_Outbound_e",
                   "Metadata": {"eventChannel": "Sfwa_Shard_A__chn", "selectedEntity": "WhatsApp_Outbound__e",
                                "filterExpression": "Status__c = 'Queued'"}}),
        )
        .await;

    // Assert
    assert_eq!(status, 400, "{body}");
    assert!(body[0]["message"].as_str().unwrap().contains("Status__c"));
}

#[tokio::test]
async fn the_daemon_on_a_shard_channel_sends_its_records_and_never_sees_the_other_shards() {
    // Arrange: this daemon is shard A (the default number, blank records); shard B has 222.
    let mut options = Options::default();
    options.org.connect_timeout = Duration::from_millis(200);
    options.tune = Box::new(|s| s.intake.channel = SHARD_A.into());
    let app = spawn_app_with(options).await;
    let default_number = app.wa.phone_number_id().to_string();
    app.org_control(
        "channels",
        json!({"name": "Sfwa_Shard_A__chn", "members": [{"selected_entity": "WhatsApp_Outbound__e",
               "filter_expression": format!("Business_Number_Id__c = null OR Business_Number_Id__c = '{default_number}'")}]}),
    )
    .await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap(); // subscribed; nothing yet

    // Act
    let mut ours = app.queue(records(None, 2, 0)).await;
    ours.extend(app.queue(records(Some(&default_number), 1, 5)).await);
    let theirs = app.queue(records(Some("222"), 3, 10)).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut events = 0;
    while app.wa_messages().await.len() < ours.len() {
        assert!(tokio::time::Instant::now() < deadline, "not all sent");
        events += intake
            .step(&app.pipeline)
            .await
            .expect("stream step")
            .events;
    }
    events += intake
        .step(&app.pipeline)
        .await
        .expect("stream step")
        .events;

    // Assert
    let sent: Vec<String> = app
        .wa_messages()
        .await
        .iter()
        .map(|m| m["biz_opaque_callback_data"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sorted(sent), sorted(ours));
    assert_eq!(events, 3, "only this shard's events were delivered");
    for id in &theirs {
        assert_eq!(
            app.record(id)["Status__c"],
            "Queued",
            "{id} left for shard B"
        );
        assert!(app.journal(id).await.is_none(), "{id} never claimed here");
    }
}

/// The `<filterExpression>` of an example member file in `salesforce/shards/`.
fn example_filter(shard: &str, member: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "salesforce/shards/{shard}/platformEventChannelMembers/{member}.platformEventChannelMember"
    ));
    let xml = std::fs::read_to_string(&path).unwrap();
    let start = xml.find("<filterExpression>").unwrap() + "<filterExpression>".len();
    let end = xml.find("</filterExpression>").unwrap();
    xml[start..end].to_string()
}

#[tokio::test]
async fn the_packages_example_shard_channels_split_the_events_as_their_readme_says() {
    // Arrange: the two examples, deployed as they are (the control API standing in for a deploy).
    let org = spawn_streaming_org().await;
    for (name, shard, member) in [
        (
            "Sfwa_Shard_A__chn",
            "shard-a",
            "Sfwa_Shard_A_chn_WhatsApp_Outbound_e",
        ),
        (
            "Sfwa_Shard_B__chn",
            "shard-b",
            "Sfwa_Shard_B_chn_WhatsApp_Outbound_e",
        ),
    ] {
        org.control(
            "channels",
            json!({"name": name, "members": [{"selected_entity": "WhatsApp_Outbound__e",
                   "filter_expression": example_filter(shard, member)}]}),
        )
        .await;
    }
    let mut a = CometdClient::new(salesforce(&org), SHARD_A).unwrap();
    let mut b = CometdClient::new(salesforce(&org), SHARD_B).unwrap();
    a.subscribe(ReplayFrom::New).await.unwrap();
    b.subscribe(ReplayFrom::New).await.unwrap();

    // Act
    let mut for_a = org.seed(MSG, records(None, 1, 0)).await;
    for_a.extend(org.seed(MSG, records(Some("111"), 1, 1)).await);
    let for_b = org.seed(MSG, records(Some("222"), 1, 2)).await;
    let nobodys = org.seed(MSG, records(Some("999"), 1, 3)).await;
    let got_a = poll_for(&mut a, 2).await;
    let got_b = poll_for(&mut b, 1).await;
    let more = (
        a.poll(ReplayFrom::All).await.unwrap(),
        b.poll(ReplayFrom::All).await.unwrap(),
    );

    // Assert
    assert_eq!(message_ids(&got_a), sorted(for_a));
    assert_eq!(message_ids(&got_b), sorted(for_b));
    assert!(
        more.0.is_empty() && more.1.is_empty(),
        "{nobodys:?} went to a shard: {more:?}"
    );
}
