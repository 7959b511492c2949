//! Sharding by business number (issue 14): two daemons on one simulated org and one WhatsApp
//! account, each serving its own numbers, never claim the same record; overlapping sets are
//! refused at start by the number leases; a record for a number nobody serves fails
//! UNKNOWN_BUSINESS_NUMBER.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Value};
use sfwa::app::App;
use sfwa::config::{AuthMode, IntakeMode, Secret, Settings};
use sfwa::domain::ids::{BusinessNumberId, CustomerId};
use sfwa::domain::message::format_salesforce_datetime;
use sfwa::domain::sf_id::SfId;
use sfwa::pipeline::intake::{self, ById};
use sfwa::pipeline::lease::{self, LeaseRow};
use sfwa::pipeline::stream::StreamIntake;
use sfwa::pipeline::{jobs, unknown_numbers, worker, writeback, Pipeline};
use sfwa::store::{inbound, journal};
use sfwa_sim::salesforce::{self, SalesforceSim, SalesforceSimConfig};
use sfwa_sim::whatsapp::{self, WhatsAppSim, WhatsAppSimConfig};
use tokio_util::sync::CancellationToken;

use crate::daemon_support::{eventually, MSG};
use crate::helpers::{seed_records, SimTime};

/// One org, one account with two numbers, one clock: what two shards share.
struct Shared {
    org: SalesforceSim,
    wa: WhatsAppSim,
    clock: SimTime,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

/// One daemon: its pipeline (steps driven by the test) and its webhook server's address.
struct Daemon {
    pipeline: Pipeline,
    /// `/metrics` (the observe listener).
    observe: std::net::SocketAddr,
    _stop: tokio_util::sync::DropGuard,
}

async fn shared() -> Shared {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimTime::default();
    let mut org_config = SalesforceSimConfig::for_tests();
    org_config.clock = clock.0.clone();
    // A stream step with nothing to deliver comes back quickly.
    org_config.connect_timeout = std::time::Duration::from_millis(200);
    let mut key = org_config.trusted_key.clone();
    key.write_to(&dir.path().join("jwt.pem")).unwrap();
    org_config.trusted_key = key;
    let org = salesforce::start(org_config).await.unwrap();
    let wa_config = WhatsAppSimConfig {
        clock: clock.0.clone(),
        // Statuses play no part here: no webhook URL, nothing scheduled to deliver.
        delivered_after: std::time::Duration::from_secs(3600),
        ..WhatsAppSimConfig::default()
    };
    let wa = whatsapp::start(wa_config).await.unwrap();
    Shared {
        org,
        wa,
        clock,
        http: reqwest::Client::new(),
        dir,
    }
}

impl Shared {
    fn number_a(&self) -> String {
        self.wa.phone_number_id().to_string()
    }

    fn number_b(&self) -> String {
        self.wa.config().other_phone_numbers[0]
            .phone_number_id
            .clone()
    }

    /// A shard named `name` sending from `default` (and `others`), taking blank records or not.
    fn settings(&self, name: &str, default: &str, others: &[String], blank: bool) -> Settings {
        let (org, wa) = (&self.org, &self.wa);
        let mut s = Settings::default();
        s.salesforce.login_url = org.url();
        s.salesforce.auth = AuthMode::Jwt;
        s.salesforce.client_id = org.config().client_id.clone();
        s.salesforce.username = org.config().username.clone();
        s.salesforce.private_key_path = Some(self.dir.path().join("jwt.pem"));
        s.whatsapp.api_base = wa.url();
        s.whatsapp.access_token = Secret::new(wa.access_token());
        s.whatsapp.default_phone_number_id = default.to_string();
        s.whatsapp.phone_number_ids = others.to_vec();
        s.whatsapp.business_account_id = wa.waba_id().to_string();
        s.whatsapp.app_secret = Secret::new(wa.app_secret());
        s.whatsapp.verify_token = Secret::new(wa.verify_token());
        s.whatsapp.default_region = "US".into();
        s.whatsapp.timeout = std::time::Duration::from_secs(2);
        s.dispatch.initial_backoff = std::time::Duration::from_millis(10);
        s.intake.mode = IntakeMode::Poll;
        s.webhook.listen = "127.0.0.1:0".parse().unwrap();
        s.observe.listen = "127.0.0.1:0".parse().unwrap();
        s.store.path = self.dir.path().join(format!("{name}.db"));
        s.shard.name = name.to_string();
        s.shard.takes_blank_numbers = blank;
        s.validate().expect("test settings are valid");
        s
    }

    /// Shard "a": the account's main number and the blank records.
    fn settings_a(&self) -> Settings {
        self.settings("a", &self.number_a(), &[], true)
    }

    /// Shard "b": the second number only.
    fn settings_b(&self) -> Settings {
        self.settings("b", &self.number_b(), &[], false)
    }

    async fn daemon(&self, settings: Settings) -> Daemon {
        let app = App::build(settings, Arc::new(self.clock.clone()))
            .await
            .unwrap();
        let observe = app.observe_addr();
        let stop = CancellationToken::new();
        let (pipeline, _server) = app.spawn_webhook_server(stop.clone());
        Daemon {
            pipeline,
            observe,
            _stop: stop.drop_guard(),
        }
    }

    async fn queue(&self, records: Vec<Value>) -> Vec<String> {
        let records: Vec<Value> = records
            .into_iter()
            .map(|mut r| {
                r["Status__c"] = json!("Queued");
                r
            })
            .collect();
        seed_records(&self.http, &self.org.url(), MSG, json!(records)).await
    }

    fn record(&self, id: &str) -> Value {
        Value::Object(self.org.state().org().get(MSG, id).unwrap().clone())
    }

    /// Every send the account received: (record Id, the number it went from).
    async fn sends(&self) -> Vec<(String, String)> {
        let body: Value = self
            .http
            .get(format!("{}/__sim/messages", self.wa.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                (
                    m["biz_opaque_callback_data"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    m["phone_number_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }
}

/// A template (allowed whatever the window) to `phone`, from `number` (None: blank).
fn template(phone: &str, number: Option<&str>) -> Value {
    let mut record = json!({"To_Phone__c": phone, "Message_Type__c": "Template",
                            "Template_Name__c": "hello_world"});
    if let Some(number) = number {
        record["Business_Number_Id__c"] = json!(number);
    }
    record
}

async fn journaled(daemon: &Daemon, ids: &[String]) -> BTreeSet<String> {
    let ids: Vec<SfId> = ids.iter().map(|id| id.parse().unwrap()).collect();
    daemon
        .pipeline
        .core
        .store
        .read(move |c| {
            let mut found = BTreeSet::new();
            for id in &ids {
                if journal::get(c, id)?.is_some() {
                    found.insert(id.to_string());
                }
            }
            Ok(found)
        })
        .await
        .unwrap()
}

async fn mirrored(daemon: &Daemon, number: &str, phone: &str) -> bool {
    let (number, customer): (BusinessNumberId, CustomerId) =
        (number.parse().unwrap(), phone.parse().unwrap());
    daemon
        .pipeline
        .core
        .store
        .read(move |c| inbound::last_inbound(c, &number, &customer))
        .await
        .unwrap()
        .is_some()
}

async fn metric(addr: std::net::SocketAddr, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn two_shards_on_one_org_send_every_record_exactly_once_from_the_number_that_serves_it() {
    // Arrange: records for both numbers and blank ones, waiting before either shard polls.
    let env = shared().await;
    let (a, b) = (
        env.daemon(env.settings_a()).await,
        env.daemon(env.settings_b()).await,
    );
    let (number_a, number_b) = (env.number_a(), env.number_b());
    let mut records = Vec::new();
    for i in 0..6 {
        records.push(template(
            &format!("+1650555{:04}", 1000 + i),
            Some(&number_a),
        ));
        records.push(template(
            &format!("+1650555{:04}", 2000 + i),
            Some(&number_b),
        ));
        records.push(template(&format!("+1650555{:04}", 3000 + i), None));
    }
    let ids = env.queue(records).await;
    let expected: BTreeMap<String, String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let number = if i % 3 == 1 { &number_b } else { &number_a };
            (id.clone(), number.clone())
        })
        .collect();

    // Act: both poll at once, then both reconcile and sync, then write back.
    let (step_a, step_b) = tokio::join!(
        worker::dispatch_step(&a.pipeline),
        worker::dispatch_step(&b.pipeline)
    );
    let (reconcile_a, reconcile_b) =
        tokio::join!(jobs::reconcile(&a.pipeline), jobs::reconcile(&b.pipeline));
    let (_, _) = tokio::join!(jobs::sync_once(&a.pipeline), jobs::sync_once(&b.pipeline));
    for daemon in [&a, &b] {
        writeback::flush_once(&daemon.pipeline.write_back)
            .await
            .unwrap();
    }

    // Assert: each record sent once, from its own number; each journal holds only its records.
    step_a.unwrap();
    step_b.unwrap();
    reconcile_a.unwrap();
    reconcile_b.unwrap();
    let sends = env.sends().await;
    assert_eq!(sends.len(), ids.len(), "{sends:?}");
    let sent: BTreeMap<String, String> = sends.into_iter().collect();
    assert_eq!(
        sent, expected,
        "every record once, from the number that serves it"
    );
    let of_b: Vec<String> = ids.iter().skip(1).step_by(3).cloned().collect();
    let of_a: Vec<String> = ids
        .iter()
        .filter(|id| !of_b.contains(id))
        .cloned()
        .collect();
    assert_eq!(journaled(&a, &ids).await, of_a.iter().cloned().collect());
    assert_eq!(journaled(&b, &ids).await, of_b.iter().cloned().collect());
    for id in &ids {
        assert_eq!(env.record(id)["Status__c"], "Sent", "{id}");
    }
}

#[tokio::test]
async fn each_shards_window_mirror_holds_only_its_own_numbers_conversations() {
    // Arrange: another tool recorded three customers writing: to number A, to B, and blank.
    let env = shared().await;
    let (a, b) = (
        env.daemon(env.settings_a()).await,
        env.daemon(env.settings_b()).await,
    );
    let (number_a, number_b) = (env.number_a(), env.number_b());
    let at = format_salesforce_datetime(env.clock.now() - Duration::hours(1));
    seed_records(
        &env.http,
        &env.org.url(),
        MSG,
        json!([
            {"Direction__c": "Inbound", "Status__c": "Received", "From_Phone__c": "+16505551111",
             "Business_Number_Id__c": number_a, "Received_At__c": at, "WhatsApp_Message_Id__c": "wamid.in-a"},
            {"Direction__c": "Inbound", "Status__c": "Received", "From_Phone__c": "+16505552222",
             "Business_Number_Id__c": number_b, "Received_At__c": at, "WhatsApp_Message_Id__c": "wamid.in-b"},
            {"Direction__c": "Inbound", "Status__c": "Received", "From_Phone__c": "+16505553333",
             "Received_At__c": at, "WhatsApp_Message_Id__c": "wamid.in-blank"},
        ]),
    )
    .await;

    // Act
    let summary_a = jobs::inbound_mirror(&a.pipeline.intake).await.unwrap();
    let summary_b = jobs::inbound_mirror(&b.pipeline.intake).await.unwrap();

    // Assert
    assert_eq!((summary_a.read, summary_b.read), (2, 1));
    assert!(mirrored(&a, &number_a, "16505551111").await);
    assert!(
        mirrored(&a, &number_a, "16505553333").await,
        "blank: A's default number"
    );
    assert!(!mirrored(&a, &number_b, "16505552222").await);
    assert!(mirrored(&b, &number_b, "16505552222").await);
    assert!(!mirrored(&b, &number_a, "16505551111").await);
    assert!(!mirrored(&b, &number_b, "16505553333").await);
}

#[tokio::test]
async fn a_fetch_by_id_for_platform_events_returns_only_the_served_numbers_records() {
    // Arrange: one shared channel names records of both numbers to both shards.
    let env = shared().await;
    let b = env.daemon(env.settings_b()).await;
    let ids = env
        .queue(vec![
            template("+16505554001", Some(&env.number_a())),
            template("+16505554002", Some(&env.number_b())),
            template("+16505554003", None),
        ])
        .await;
    let ids: Vec<SfId> = ids.iter().map(|id| id.parse().unwrap()).collect();

    // Act: the query the stream's fetch builds, through the intake's reader.
    let soql = intake::by_id_query(MSG, &ids, ById::QueuedOutbound);
    let records = intake::query_records(&b.pipeline.intake, &soql)
        .await
        .unwrap();

    // Assert
    let fetched: Vec<SfId> = records.into_iter().map(|r| r.id).collect();
    assert_eq!(fetched, vec![ids[1].clone()]);
}

#[tokio::test]
async fn an_overlapping_shard_is_refused_at_start_and_starts_once_the_first_has_stopped() {
    // Arrange: shard "a" runs, holding the lease on number A and on the blank records.
    let env = shared().await;
    let number_a = env.number_a();
    let app_a = App::build(env.settings_a(), Arc::new(env.clock.clone()))
        .await
        .unwrap();
    let reader = app_a.pipeline().clone();
    let stop_a = CancellationToken::new();
    let running_a = tokio::spawn(app_a.run_until_stopped(stop_a.clone()));
    let holder_of = |number: String| {
        let reader = reader.clone();
        async move {
            let rows: Vec<LeaseRow> = reader
                .intake
                .salesforce
                .query(&lease::leases_query(&[number]))
                .await
                .unwrap();
            rows.into_iter()
                .max_by_key(|r| r.generation.unwrap_or(0.0) as u64)
                .filter(|r| r.released != Some(true))
                .and_then(|r| r.holder)
                .unwrap_or_default()
        }
    };
    eventually("shard a holds number A", || {
        let held = holder_of(number_a.clone());
        async move { held.await.starts_with("a#") }
    })
    .await;
    // Shard "b" is (wrongly) also configured with number A.
    let overlapping = env.settings("b", &env.number_b(), std::slice::from_ref(&number_a), false);

    // Act
    let refused = App::build(overlapping.clone(), Arc::new(env.clock.clone()))
        .await
        .unwrap()
        .run_until_stopped(CancellationToken::new())
        .await;
    stop_a.cancel();
    running_a.await.unwrap().unwrap();
    let stop_b = CancellationToken::new();
    let app_b = App::build(overlapping, Arc::new(env.clock.clone()))
        .await
        .unwrap();
    let running_b = tokio::spawn(app_b.run_until_stopped(stop_b.clone()));
    eventually("shard b holds number A after a released it", || {
        let held = holder_of(number_a.clone());
        async move { held.await.starts_with("b#") }
    })
    .await;
    stop_b.cancel();
    running_b.await.unwrap().unwrap();

    // Assert: the refusal names the number, the holder, the record and the fix.
    let error = format!(
        "{:#}",
        refused.expect_err("the overlapping shard must not start")
    );
    assert!(error.contains(&number_a), "{error}");
    assert!(error.contains("a#"), "{error}");
    assert!(error.contains("WhatsApp_Number_Lease__c"), "{error}");
    assert!(error.contains("whatsapp.phone_number_ids"), "{error}");
}

#[tokio::test]
async fn a_shard_whose_lease_another_took_after_it_expired_holds_that_number() {
    // Arrange: shard "a" takes its leases, then cannot renew for longer than the lease.
    let env = shared().await;
    let a = env.daemon(env.settings_a()).await;
    let number_a = env.number_a();
    let leases = lease::acquire(&a.pipeline).await.unwrap();
    let taker = env
        .daemon(env.settings("c", &env.number_b(), std::slice::from_ref(&number_a), false))
        .await;
    // Logged in before the clock moves (the JWT's expiry is on the host's clock).
    taker.pipeline.intake.salesforce.session().await.unwrap();
    env.clock.shift(Duration::minutes(11) + lease::SKEW_GRACE);
    lease::acquire(&taker.pipeline)
        .await
        .expect("an expired lease is free");

    // Act
    let renewed = lease::renew_once(&leases, &a.pipeline.dispatcher).await;

    // Assert
    assert!(renewed.lost >= 1, "{renewed:?}");
    assert!(a.pipeline.dispatcher.current_hold(&number_a).is_some());
    assert_eq!(
        metric(
            a.observe,
            &format!("sfwa_business_number_lease{{number=\"{number_a}\"}}")
        )
        .await,
        Some(0.0)
    );
}

#[tokio::test]
async fn a_record_for_a_number_no_shard_serves_fails_unknown_business_number_in_one_sweep() {
    // Arrange: shard "a" (blank records) runs alone; shard "b"'s number is the account's but its
    // shard is down; number 555000111 is leased by a shard that is not the account's.
    let env = shared().await;
    let a = env.daemon(env.settings_a()).await;
    seed_records(
        &env.http,
        &env.org.url(),
        lease::OBJECT,
        json!([{"Lease_Key__c": "555000111/1", "Phone_Number_Id__c": "555000111",
                "Generation__c": 1, "Holder__c": "elsewhere#1"}]),
    )
    .await;
    let ids = env
        .queue(vec![
            template("+16505555001", Some("999000111")),
            template("+16505555002", Some(&env.number_b())),
            template("+16505555003", Some("555000111")),
        ])
        .await;
    env.clock
        .shift(unknown_numbers::GRACE + Duration::seconds(1));

    // Act
    let failed = unknown_numbers::unknown_numbers(&a.pipeline).await.unwrap();
    writeback::flush_once(&a.pipeline.write_back).await.unwrap();

    // Assert
    assert_eq!(failed, 1);
    let unknown = env.record(&ids[0]);
    assert_eq!(unknown["Status__c"], "Failed");
    assert_eq!(unknown["Error_Code__c"], "UNKNOWN_BUSINESS_NUMBER");
    let message = unknown["Error_Message__c"].as_str().unwrap();
    assert!(
        message.contains("999000111") && message.contains("Business_Number_Id__c"),
        "{message}"
    );
    assert_eq!(
        env.record(&ids[1])["Status__c"],
        "Queued",
        "the account's number waits for its shard"
    );
    assert_eq!(
        env.record(&ids[2])["Status__c"],
        "Queued",
        "a leased number waits for its shard"
    );
    assert_eq!(
        metric(a.observe, "sfwa_unknown_business_number_total").await,
        Some(1.0)
    );
    assert!(env.sends().await.is_empty());
}

#[tokio::test]
async fn of_two_shards_taking_one_number_at_once_the_one_salesforce_refuses_does_not_start() {
    // Arrange: the number's latest lease (generation 1) ended long ago, and another shard has
    // just created generation 2 (the record that exists already is what Salesforce sees first).
    let env = shared().await;
    let a = env.daemon(env.settings_a()).await;
    let number_a = env.number_a();
    let long_ago = format_salesforce_datetime(env.clock.now() - Duration::hours(1));
    seed_records(
        &env.http,
        &env.org.url(),
        lease::OBJECT,
        json!([
            {"Lease_Key__c": format!("{number_a}/1"), "Phone_Number_Id__c": number_a,
             "Generation__c": 1, "Holder__c": "old#1", "Expires_At__c": long_ago},
            {"Lease_Key__c": format!("{number_a}/2"), "Phone_Number_Id__c": "not-yet-visible",
             "Generation__c": 2, "Holder__c": "winner#1"},
        ]),
    )
    .await;

    // Act
    let error = lease::acquire(&a.pipeline)
        .await
        .expect_err("the unique Lease_Key__c lets one win");

    // Assert
    assert!(
        matches!(error, lease::LeaseError::Raced(ref n) if *n == number_a),
        "{error}"
    );
    assert!(error.to_string().contains("DUPLICATE_VALUE"), "{error}");
}

#[tokio::test]
async fn a_claimed_record_of_a_number_served_elsewhere_is_let_go_unsent_and_unwritten() {
    // Arrange: past the intake filter somehow (a claim from before a number moved), shard "b"
    // holds a claim on a record of number A.
    let env = shared().await;
    let b = env.daemon(env.settings_b()).await;
    let ids = env
        .queue(vec![template("+16505556001", Some(&env.number_a()))])
        .await;
    let id: SfId = ids[0].parse().unwrap();
    let soql = intake::by_id_query(MSG, std::slice::from_ref(&id), ById::Any);
    let rows: Vec<sfwa::salesforce::rows::MessageRow> =
        b.pipeline.intake.salesforce.query(&soql).await.unwrap();
    let record = rows.into_iter().next().unwrap().into_record().unwrap();
    let claimed = id.clone();
    let now = env.clock.now();
    b.pipeline
        .core
        .store
        .write(move |tx| journal::claim(tx, &claimed, now).map(|_| ()))
        .await
        .unwrap();

    // Act
    let outcome = sfwa::pipeline::dispatch::dispatch_record(&b.pipeline.dispatcher, record, 0)
        .await
        .unwrap();
    writeback::flush_once(&b.pipeline.write_back).await.unwrap();

    // Assert
    assert_eq!(
        outcome,
        sfwa::pipeline::dispatch::DispatchOutcome::AlreadySending
    );
    let entry = b
        .pipeline
        .core
        .store
        .read(move |c| journal::get(c, &id))
        .await
        .unwrap()
        .unwrap();
    assert!(entry.state.is_finished(), "{entry:?}");
    assert_eq!(env.record(&ids[0])["Status__c"], "Queued");
    assert!(env.sends().await.is_empty());
    assert_eq!(
        metric(b.observe, "sfwa_unserved_records_total").await,
        Some(1.0)
    );
}

#[tokio::test]
async fn the_doctor_says_who_holds_each_number_and_which_are_free() {
    // Arrange: shard "a" holds number A and the blank records; number B is nobody's.
    let env = shared().await;
    let a = env.daemon(env.settings_a()).await;
    lease::acquire(&a.pipeline).await.unwrap();

    // Act
    let for_a = sfwa::doctor::check_at(&env.settings_a(), &env.clock).await;
    let for_b = sfwa::doctor::check_at(&env.settings_b(), &env.clock).await;

    // Assert
    let detail = |checks: &[sfwa::doctor::Check]| {
        let check = checks
            .iter()
            .find(|c| c.name == "Number leases")
            .expect("a lease check");
        match &check.outcome {
            sfwa::doctor::Outcome::Pass(detail) => detail.clone(),
            other => panic!("{other:?}"),
        }
    };
    let (held, free) = (detail(&for_a), detail(&for_b));
    assert!(
        held.contains(&format!("{}: held by a#", env.number_a())),
        "{held}"
    );
    assert!(held.contains("BLANK: held by a#"), "{held}");
    assert_eq!(free, format!("{}: free", env.number_b()));
}

#[tokio::test]
async fn two_shards_on_one_event_channel_each_send_only_their_numbers_records_once() {
    // Arrange: both shards stream the org's one channel, which delivers every event to both.
    let env = shared().await;
    let stream = |mut s: Settings| {
        s.intake.mode = IntakeMode::Stream;
        s
    };
    let (a, b) = (
        env.daemon(stream(env.settings_a())).await,
        env.daemon(stream(env.settings_b())).await,
    );
    let mut intake_a = StreamIntake::open(&a.pipeline.intake).await.unwrap();
    let mut intake_b = StreamIntake::open(&b.pipeline.intake).await.unwrap();
    let (first_a, first_b) = tokio::join!(intake_a.step(&a.pipeline), intake_b.step(&b.pipeline));
    first_a.unwrap();
    first_b.unwrap();
    let (number_a, number_b) = (env.number_a(), env.number_b());
    let mut records = Vec::new();
    for i in 0..4 {
        records.push(template(
            &format!("+1650555{:04}", 7000 + i),
            Some(&number_a),
        ));
        records.push(template(
            &format!("+1650555{:04}", 7100 + i),
            Some(&number_b),
        ));
        records.push(template(&format!("+1650555{:04}", 7200 + i), None));
    }
    let ids = env.queue(records).await;

    // Act: both step (one long poll each) until every record went out; then both poll too.
    let deadline = tokio::time::Instant::now() + crate::daemon_support::DEADLINE;
    while env.sends().await.len() < ids.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            env.sends().await
        );
        let (step_a, step_b) = tokio::join!(intake_a.step(&a.pipeline), intake_b.step(&b.pipeline));
        step_a.unwrap();
        step_b.unwrap();
    }
    let (reconcile_a, reconcile_b) =
        tokio::join!(jobs::reconcile(&a.pipeline), jobs::reconcile(&b.pipeline));

    // Assert
    reconcile_a.unwrap();
    reconcile_b.unwrap();
    let sends = env.sends().await;
    assert_eq!(sends.len(), ids.len(), "{sends:?}");
    let sent: BTreeMap<String, String> = sends.into_iter().collect();
    for (i, id) in ids.iter().enumerate() {
        let from = if i % 3 == 1 { &number_b } else { &number_a };
        assert_eq!(sent.get(id), Some(from), "{id}");
    }
    let of_b: BTreeSet<String> = ids.iter().skip(1).step_by(3).cloned().collect();
    assert_eq!(
        journaled(&b, &ids).await,
        of_b,
        "shard b claimed only its records"
    );
    assert!(journaled(&a, &ids).await.is_disjoint(&of_b));
}

#[tokio::test]
async fn a_lease_that_ends_while_salesforce_is_down_holds_its_number_until_it_is_taken_again() {
    // Arrange: shard "a" holds its leases; Salesforce then answers 503 past their end.
    let env = shared().await;
    let a = env.daemon(env.settings_a()).await;
    let number_a = env.number_a();
    let leases = lease::acquire(&a.pipeline).await.unwrap();
    let faults = |body: Value| {
        let (http, url) = (env.http.clone(), env.org.url());
        async move {
            let answer = http
                .post(format!("{url}/__sim/faults"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success());
        }
    };
    faults(json!({"error_503_rate": 1.0})).await;
    env.clock.shift(Duration::minutes(11));

    // Act: one renewal while down, two after (each renewal holds on for a further lease_ttl).
    let down = lease::renew_once(&leases, &a.pipeline.dispatcher).await;
    let held_while_down = a.pipeline.dispatcher.current_hold(&number_a).is_some();
    env.clock.shift(Duration::minutes(11));
    let still_down = lease::renew_once(&leases, &a.pipeline.dispatcher).await;
    let held_still = a.pipeline.dispatcher.current_hold(&number_a).is_some();
    faults(json!({})).await;
    let back = lease::renew_once(&leases, &a.pipeline.dispatcher).await;

    // Assert
    assert_eq!((down.lost, still_down.lost), (2, 2), "number A and BLANK");
    assert!(held_while_down && held_still);
    assert_eq!((back.retaken, back.lost), (2, 0), "{back:?}");
    assert!(a.pipeline.dispatcher.current_hold(&number_a).is_none());
    assert_eq!(
        metric(
            a.observe,
            &format!("sfwa_business_number_lease{{number=\"{number_a}\"}}")
        )
        .await,
        Some(1.0)
    );
}
