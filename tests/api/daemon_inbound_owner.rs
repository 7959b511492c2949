//! Who owns an inbound record (Private sharing: only its owner's people see it): the owner of the
//! Case of the message the customer answered, else of the Contact, else of the Lead with the
//! number, else the configured queue; blank queue = the integration user, as before. The Case is
//! linked only while open and within `salesforce.case_link_window`; the record carries the Account
//! of its Contact, else of its Case.

use serde_json::{json, Value};
use sfwa::store::outbox;
use sfwa_sim::salesforce::org::{INTEGRATION_USER_ID, REP_USER_ID};
use sfwa_sim::whatsapp::WhatsAppSimConfig;

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp, MSG};

const CUSTOMER: &str = "14155550101";

/// A daemon whose sent messages stay `Sent` until a test delivers their later statuses: the
/// simulator's own `delivered`/`read` (50 ms by default, on real time) would otherwise race the
/// test's look at the record on a loaded machine.
async fn app_whose_messages_stay_sent() -> TestApp {
    spawn_app_with(Options {
        wa: WhatsAppSimConfig {
            delivered_after: std::time::Duration::from_secs(3600),
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    })
    .await
}

/// Like [`app_whose_messages_stay_sent`], for tests that move the clock hours or days on: the
/// org keeps the daemon's session that long (the daemon signs its JWT login on the wall clock, which
/// the org, on the shifted clock, would find expired), with `tune` applied to the settings.
async fn app_for_days(tune: impl FnOnce(&mut sfwa::config::Settings) + 'static) -> TestApp {
    let mut options = Options {
        wa: WhatsAppSimConfig {
            delivered_after: std::time::Duration::from_secs(3600),
            ..WhatsAppSimConfig::default()
        },
        tune: Box::new(tune),
        ..Options::default()
    };
    options.org.session_timeout = chrono::Duration::days(30);
    spawn_app_with(options).await
}

/// A customer writes (optionally replying to `context`); returns the record once flushed.
async fn customer_writes(app: &TestApp, context: Option<&str>) -> Value {
    let mut message = json!({"from": CUSTOMER, "type": "text", "text": "Is it ready?"});
    if let Some(context) = context {
        message["context_message_id"] = json!(context);
    }
    let wamid = app.wa_control("inbound", message).await["wamid"]
        .as_str()
        .unwrap()
        .to_string();
    app.deliver_webhooks().await;
    let key = outbox::upsert_key(MSG, "WhatsApp_Message_Id__c", &wamid);
    let stored = app
        .pipeline
        .core
        .store
        .read(move |c| outbox::is_pending(c, &key))
        .await
        .unwrap();
    assert!(stored, "the inbound message is stored");
    app.flush().await;
    let org = app.org.state().org();
    let record = org
        .rows(MSG)
        .find(|r| r["WhatsApp_Message_Id__c"] == wamid.as_str())
        .expect("the inbound record was created")
        .clone();
    Value::Object(record)
}

/// A user to own things, inserted into the org.
async fn user(app: &TestApp, name: &str) -> String {
    app.seed(
        "User",
        json!([{"Name": name, "Username": format!("{name}@example.com")}]),
    )
    .await
    .remove(0)
}

fn queue_id(app: &TestApp) -> String {
    let org = app.org.state().org();
    let queue = org
        .rows("Group")
        .find(|g| g["DeveloperName"] == "WhatsApp_Inbound")
        .unwrap();
    queue["Id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_reply_to_a_message_about_a_case_is_owned_by_the_case_owner_and_shows_on_the_case() {
    // Arrange: a Case owned by one rep; the customer is also a Contact owned by another.
    let app = app_whose_messages_stay_sent().await;
    let case_owner = user(&app, "Cora").await;
    let case = app
        .seed(
            "Case",
            json!([{"Subject": "Order late", "OwnerId": case_owner}]),
        )
        .await
        .remove(0);
    app.seed(
        "Contact",
        json!([{"LastName": "Buyer", "Phone": "+1 415 555 0101", "OwnerId": REP_USER_ID}]),
    )
    .await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+14155550101", "Message_Type__c": "Template", "Template_Name__c": "hello_world", "Case__c": case}]))
        .await;
    app.dispatch().await;
    let sent = app.status_after_flush(&ids[0], "Sent").await;
    let wamid = sent["WhatsApp_Message_Id__c"].as_str().unwrap().to_string();

    // Act
    let reply = customer_writes(&app, Some(&wamid)).await;

    // Assert
    assert_eq!(reply["OwnerId"], case_owner.as_str());
    assert_eq!(reply["Case__c"], case.as_str());
}

#[tokio::test]
async fn a_message_without_context_takes_the_case_of_the_latest_message_sent_to_that_customer() {
    let app = app_whose_messages_stay_sent().await;
    let case_owner = user(&app, "Cora").await;
    let case = app
        .seed(
            "Case",
            json!([{"Subject": "Order late", "OwnerId": case_owner}]),
        )
        .await
        .remove(0);
    let ids = app
        .queue(json!([{"To_Phone__c": "+14155550101", "Message_Type__c": "Template", "Template_Name__c": "hello_world", "Case__c": case}]))
        .await;
    app.dispatch().await;
    app.status_after_flush(&ids[0], "Sent").await;

    let message = customer_writes(&app, None).await;

    assert_eq!(message["OwnerId"], case_owner.as_str());
    assert_eq!(message["Case__c"], case.as_str());
}

#[tokio::test]
async fn a_message_from_a_contact_is_owned_by_the_contact_owner() {
    let app = spawn_app().await;
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Buyer", "Phone": "(415) 555-0101", "OwnerId": REP_USER_ID}]),
        )
        .await
        .remove(0);

    let message = customer_writes(&app, None).await;

    assert_eq!(message["OwnerId"], REP_USER_ID);
    assert_eq!(message["Contact__c"], contact.as_str());
}

#[tokio::test]
async fn a_message_from_a_lead_is_owned_by_the_lead_owner() {
    let app = spawn_app().await;
    let lead_owner = user(&app, "Leo").await;
    app.seed(
        "Lead",
        json!([{"LastName": "Prospect", "Company": "Acme", "MobilePhone": "+14155550101", "OwnerId": lead_owner}]),
    )
    .await;

    let message = customer_writes(&app, None).await;

    assert_eq!(message["OwnerId"], lead_owner.as_str());
}

#[tokio::test]
async fn a_message_from_nobody_known_goes_to_the_configured_queue_found_with_one_query() {
    let app = spawn_app().await;

    let first = customer_writes(&app, None).await;
    let queries_after_first = group_queries(&app).await;
    let second = customer_writes(&app, None).await;

    assert_eq!(first["OwnerId"], queue_id(&app).as_str());
    assert_eq!(second["OwnerId"], queue_id(&app).as_str());
    assert_eq!(queries_after_first, 1);
    assert_eq!(group_queries(&app).await, 1, "the queue's Id is remembered");
}

/// `SELECT … FROM Group` queries the org answered.
async fn group_queries(app: &TestApp) -> u64 {
    app.org_stats().await["soql_by_object"]["Group"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_missing_queue_leaves_the_record_with_the_integration_user_and_it_is_still_created() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.salesforce.inbound_queue = "No_Such_Queue".into()),
        ..Options::default()
    })
    .await;

    let message = customer_writes(&app, None).await;

    assert_eq!(message["OwnerId"], INTEGRATION_USER_ID);
    assert_eq!(message["Direction__c"], "Inbound");
}

#[tokio::test]
async fn a_blank_queue_setting_keeps_the_integration_user_as_owner_without_asking() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| s.salesforce.inbound_queue = String::new()),
        ..Options::default()
    })
    .await;

    let message = customer_writes(&app, None).await;

    assert_eq!(message["OwnerId"], INTEGRATION_USER_ID);
    assert_eq!(group_queries(&app).await, 0);
}

#[tokio::test]
async fn the_org_takes_a_user_or_a_queue_as_owner_and_refuses_anything_else() {
    let org = crate::helpers::spawn_org().await;
    let token = org.login().await;
    let queue = {
        let state = org.sim.state().org();
        let queue = state.rows("Group").next().unwrap();
        queue["Id"].as_str().unwrap().to_string()
    };
    let contact = org
        .seed("Contact", json!([{"LastName": "Buyer"}]))
        .await
        .remove(0);
    let set_owner = |owner: String| {
        let (org, token, contact) = (&org, token.clone(), contact.clone());
        async move {
            org.call(
                reqwest::Method::PATCH,
                &token,
                &format!("sobjects/Contact/{contact}"),
                json!({"OwnerId": owner}),
            )
            .await
        }
    };

    let to_rep = set_owner(REP_USER_ID.into()).await;
    let to_queue = set_owner(queue.clone()).await;
    let to_nobody = set_owner("0055g00000NoBoDAAV".into()).await;
    let to_a_case = set_owner("5005g00000AbCdEAAV".into()).await;

    assert_eq!(to_rep.0, 204);
    assert_eq!(to_queue.0, 204);
    assert_eq!(to_nobody.0, 400);
    assert_eq!(to_nobody.1[0]["errorCode"], "INVALID_CROSS_REFERENCE_KEY");
    assert_eq!(to_nobody.1[0]["fields"], json!(["OwnerId"]));
    assert_eq!(to_a_case.1[0]["errorCode"], "FIELD_INTEGRITY_EXCEPTION");
    let (_, queried) = org
        .query(
            &token,
            &format!("SELECT OwnerId FROM Contact WHERE Id = '{contact}'"),
        )
        .await;
    assert_eq!(queried["records"][0]["OwnerId"], queue.as_str());
}

// Case and Account context (issue 17): the Case only while it is open and the message came within
// `salesforce.case_link_window` of the message sfwa sent from the same business number; the
// Account of the linked Contact, else of the Case.

/// A Case owned by a new user "Cora", optionally under `account`; returns (Case, owner).
async fn case_owned_by_cora(app: &TestApp, account: Option<&str>) -> (String, String) {
    let owner = user(app, &format!("Cora{}", app.org.state().org().count("Case"))).await;
    let mut case = json!({"Subject": "Order late", "OwnerId": owner});
    if let Some(account) = account {
        case["AccountId"] = json!(account);
    }
    let case = app.seed("Case", json!([case])).await.remove(0);
    (case, owner)
}

/// sfwa sends the customer a template about `case` from `number` (`None`: the main number);
/// returns the sent message's wamid.
async fn sent_about(app: &TestApp, case: &str, number: Option<&str>) -> String {
    let mut record = json!({"To_Phone__c": "+14155550101", "Message_Type__c": "Template", "Template_Name__c": "hello_world", "Case__c": case});
    if let Some(number) = number {
        record["Business_Number_Id__c"] = json!(number);
    }
    let ids = app.queue(json!([record])).await;
    app.dispatch().await;
    let sent = app.status_after_flush(&ids[0], "Sent").await;
    sent["WhatsApp_Message_Id__c"].as_str().unwrap().to_string()
}

/// The customer as a Contact owned by the rep, under `account` if given; returns the Contact.
async fn customer_is_a_contact(app: &TestApp, account: Option<&str>) -> String {
    let mut contact =
        json!({"LastName": "Buyer", "Phone": "+1 415 555 0101", "OwnerId": REP_USER_ID});
    if let Some(account) = account {
        contact["AccountId"] = json!(account);
    }
    app.seed("Contact", json!([contact])).await.remove(0)
}

async fn account(app: &TestApp, name: &str) -> String {
    app.seed("Account", json!([{"Name": name}])).await.remove(0)
}

/// A rep closes `case` (Status Closed; the org sets IsClosed).
async fn close(app: &TestApp, case: &str) {
    let response = app
        .http
        .patch(format!("{}/__sim/records/Case/{case}", app.org.url()))
        .json(&json!({"Status": "Closed"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        app.org.state().org().get("Case", case).unwrap()["IsClosed"],
        true
    );
}

#[tokio::test]
async fn a_reply_links_to_the_open_case_of_the_latest_message_sent_from_the_same_number() {
    // Arrange: two messages to the customer from the main number, about two open Cases.
    let app = app_for_days(|_| {}).await;
    let (older, _) = case_owned_by_cora(&app, None).await;
    let (latest, latest_owner) = case_owned_by_cora(&app, None).await;
    sent_about(&app, &older, None).await;
    app.clock.shift(chrono::Duration::minutes(5));
    sent_about(&app, &latest, None).await;
    app.clock.shift(chrono::Duration::hours(2));

    // Act
    let reply = customer_writes(&app, None).await;

    // Assert
    assert_eq!(reply["Case__c"], latest.as_str());
    assert_eq!(reply["OwnerId"], latest_owner.as_str());
}

#[tokio::test]
async fn a_reply_after_the_case_is_closed_is_not_linked_to_it_but_still_to_the_contact() {
    // Arrange: the customer answered while the Case was open; a rep then closed it.
    let app = app_whose_messages_stay_sent().await;
    let (case, case_owner) = case_owned_by_cora(&app, None).await;
    let contact = customer_is_a_contact(&app, None).await;
    sent_about(&app, &case, None).await;
    let while_open = customer_writes(&app, None).await;
    close(&app, &case).await;
    // The Case's state is remembered for inbound_owner::CACHE_FOR (15 min); past it, it is read
    // again.
    app.clock.shift(chrono::Duration::minutes(16));

    // Act
    let after_closing = customer_writes(&app, None).await;

    // Assert
    assert_eq!(while_open["Case__c"], case.as_str());
    assert_eq!(while_open["OwnerId"], case_owner.as_str());
    assert_eq!(after_closing["Case__c"], Value::Null);
    assert_eq!(after_closing["Contact__c"], contact.as_str());
    assert_eq!(
        after_closing["OwnerId"], REP_USER_ID,
        "owned as any Contact's message"
    );
}

#[tokio::test]
async fn a_reply_to_a_specific_message_whose_case_is_closed_is_not_linked_to_it() {
    let app = app_whose_messages_stay_sent().await;
    let (case, _) = case_owned_by_cora(&app, None).await;
    let contact = customer_is_a_contact(&app, None).await;
    let wamid = sent_about(&app, &case, None).await;
    close(&app, &case).await;

    let reply = customer_writes(&app, Some(&wamid)).await;

    assert_eq!(reply["Case__c"], Value::Null);
    assert_eq!(reply["Contact__c"], contact.as_str());
    assert_eq!(reply["OwnerId"], REP_USER_ID);
}

#[tokio::test]
async fn a_reply_does_not_take_the_case_of_a_later_message_sent_from_another_business_number() {
    // Arrange: the main number wrote about one Case; later, the second number about another.
    let mut options = Options {
        wa: WhatsAppSimConfig {
            delivered_after: std::time::Duration::from_secs(3600),
            ..WhatsAppSimConfig::default()
        },
        ..Options::default()
    };
    let second = options.wa.other_phone_numbers[0].phone_number_id.clone();
    let served = second.clone();
    options.tune = Box::new(move |s| s.whatsapp.phone_number_ids = vec![served]);
    let app = spawn_app_with(options).await;
    let (main_case, _) = case_owned_by_cora(&app, None).await;
    let (other_case, _) = case_owned_by_cora(&app, None).await;
    sent_about(&app, &main_case, None).await;
    app.clock.shift(chrono::Duration::minutes(5));
    sent_about(&app, &other_case, Some(&second)).await;

    // Act: the customer writes to the main number.
    let reply = customer_writes(&app, None).await;

    // Assert
    assert_eq!(reply["Business_Number_Id__c"], app.wa.phone_number_id());
    assert_eq!(reply["Case__c"], main_case.as_str());
}

#[tokio::test]
async fn a_message_later_than_the_case_link_window_is_not_linked_but_a_reply_to_the_message_is() {
    // Arrange: a one-day window; the customer writes two days after sfwa's message.
    let app = app_for_days(|s| {
        s.salesforce.case_link_window = std::time::Duration::from_secs(86_400);
    })
    .await;
    let (case, _) = case_owned_by_cora(&app, None).await;
    let contact = customer_is_a_contact(&app, None).await;
    let wamid = sent_about(&app, &case, None).await;
    app.clock.shift(chrono::Duration::days(2));

    // Act
    let new_conversation = customer_writes(&app, None).await;
    let quoted_reply = customer_writes(&app, Some(&wamid)).await;

    // Assert
    assert_eq!(new_conversation["Case__c"], Value::Null);
    assert_eq!(new_conversation["Contact__c"], contact.as_str());
    assert_eq!(new_conversation["OwnerId"], REP_USER_ID);
    assert_eq!(
        quoted_reply["Case__c"],
        case.as_str(),
        "a reply names its conversation"
    );
}

#[tokio::test]
async fn the_inbound_record_carries_the_account_of_the_linked_contact() {
    let app = spawn_app().await;
    let account = account(&app, "Acme").await;
    let contact = customer_is_a_contact(&app, Some(&account)).await;

    let message = customer_writes(&app, None).await;

    assert_eq!(message["Contact__c"], contact.as_str());
    assert_eq!(message["Account__c"], account.as_str());
}

#[tokio::test]
async fn the_contacts_account_wins_over_the_cases_and_without_a_contact_the_cases_account_is_linked(
) {
    // Arrange: a Case under one Account; first the customer is nobody known, then a Contact under
    // another Account.
    let app = app_whose_messages_stay_sent().await;
    let case_account = account(&app, "Case Corp").await;
    let contact_account = account(&app, "Contact Corp").await;
    let (case, _) = case_owned_by_cora(&app, Some(&case_account)).await;
    sent_about(&app, &case, None).await;

    // Act
    let from_nobody_known = customer_writes(&app, None).await;
    customer_is_a_contact(&app, Some(&contact_account)).await;
    // Past the link lookup's "nobody" cache (inbound_links::MISS_CACHE_FOR, 15 min).
    app.clock.shift(chrono::Duration::minutes(16));
    let from_the_contact = customer_writes(&app, None).await;

    // Assert
    assert_eq!(from_nobody_known["Case__c"], case.as_str());
    assert_eq!(from_nobody_known["Account__c"], case_account.as_str());
    assert_eq!(from_the_contact["Case__c"], case.as_str());
    assert_eq!(from_the_contact["Account__c"], contact_account.as_str());
}
