//! `sfwa demo`: both simulators and the real daemon in one process, playing a scripted story, with
//! the records printed as a sales rep would see them. No configuration, no network beyond loopback.
//!
//! Part of the binary, not the library (the library cannot reach the simulators): built with the
//! `sim` feature, on by default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Utc};
use sfwa::app::App;
use sfwa::clock::{Clock, SharedClock};
use sfwa::config::{AuthMode, Secret, Settings};
use sfwa::domain::ids::{BusinessNumberId, CustomerId};
use sfwa_sim::clock::SimClock;
use sfwa_sim::sandbox::{Sandbox, SandboxOptions};

/// One scripted message and the state a rep should end up seeing.
struct Scene {
    who: &'static str,
    /// The number in `To_Phone__c`, or — with `to_user_id` — what the "To" column says instead.
    phone: &'static str,
    /// Addressed by `To_User_Id__c` (the username customer's BSUID), with no phone.
    to_user_id: bool,
    record: Value,
    expect_status: &'static str,
    expect_code: Option<&'static str>,
}

const NEW_CUSTOMER: &str = "+1 (415) 555-0101";
const WROTE_1H_AGO: &str = "+1 415 555 0102";
const WROTE_25H_AGO: &str = "+14155550103";
const REPLIES_FIRST: &str = "+44 20 7946 0104";
/// A customer who chose a WhatsApp username: Meta withholds their number in webhooks and gives
/// their business-scoped user id (BSUID) instead. The number only seeds the simulator.
const USERNAME_PHONE: &str = "+1 415 555 0105";
const USERNAME: &str = "sam.lee";
/// Stands in a scene's `Media_File_Id__c` for the Salesforce File the rep attaches to Priya's
/// Contact during the story (its ContentVersion Id is known only then).
const PRICE_LIST: &str = "(the rep's price list)";

fn scenes() -> Vec<Scene> {
    vec![
        Scene {
            who: "new customer, template",
            phone: NEW_CUSTOMER,
            to_user_id: false,
            record: json!({"Message_Type__c": "Template", "Template_Name__c": "appointment_reminder",
                           "Template_Parameters__c": "[\"Ana\", \"Tuesday 10:30\"]"}),
            expect_status: "Read",
            expect_code: None,
        },
        Scene {
            who: "wrote 1 h ago, text",
            phone: WROTE_1H_AGO,
            to_user_id: false,
            record: json!({"Message_Type__c": "Text", "Body__c": "Thanks for your message! Your order ships today."}),
            expect_status: "Delivered",
            expect_code: None,
        },
        Scene {
            who: "wrote 25 h ago, text",
            phone: WROTE_25H_AGO,
            to_user_id: false,
            record: json!({"Message_Type__c": "Text", "Body__c": "Following up on yesterday's question."}),
            expect_status: "Failed",
            expect_code: Some("OUTSIDE_SESSION_WINDOW"),
        },
        Scene {
            who: "bad phone number",
            phone: "555-CALL-NOW",
            to_user_id: false,
            record: json!({"Message_Type__c": "Text", "Body__c": "Hello!"}),
            expect_status: "Failed",
            expect_code: Some("INVALID_PHONE"),
        },
        Scene {
            who: "template, wrong parameter count",
            phone: NEW_CUSTOMER,
            to_user_id: false,
            record: json!({"Message_Type__c": "Template", "Template_Name__c": "appointment_reminder",
                           "Template_Parameters__c": "[\"Ana\"]"}),
            expect_status: "Failed",
            expect_code: Some("WA_132000"),
        },
        Scene {
            who: "replies, then gets a text",
            phone: REPLIES_FIRST,
            to_user_id: false,
            record: json!({"Message_Type__c": "Text", "Body__c": "Here is the price list you asked for."}),
            expect_status: "Read",
            expect_code: None,
        },
        Scene {
            who: "replies, then gets a File",
            phone: REPLIES_FIRST,
            to_user_id: false,
            record: json!({"Message_Type__c": "Document", "Body__c": "Our 2026 price list",
                           "Media_File_Id__c": PRICE_LIST}),
            expect_status: "Read",
            expect_code: None,
        },
        Scene {
            who: "username customer, text by BSUID",
            phone: "BSUID of @sam.lee",
            to_user_id: true,
            record: json!({"Message_Type__c": "Text", "Body__c": "Yes, we deliver on Saturdays."}),
            expect_status: "Read",
            expect_code: None,
        },
    ]
}

/// Runs the story; with `keep_running`, leaves everything up until Ctrl-C.
pub async fn run(keep_running: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let work = tempfile_dir()?;
    let demo = Demo::start(&work).await?;
    println!("sfwa demo — a simulated Salesforce org ({}) and WhatsApp Cloud API ({}), and the real daemon.\n", demo.sf, demo.wa);
    let scenes = scenes();
    let story = demo.play(&scenes).await?;
    let ok = demo.report(&scenes, &story, started).await?;
    if keep_running {
        println!("\nStill running: Salesforce {}  WhatsApp {}  daemon webhook {}  daemon metrics {}/metrics.\nControl APIs under /__sim/ (docs/simulators.md). Ctrl-C to stop.",
            demo.sf, demo.wa, demo.sandbox.whatsapp.webhook_url().unwrap_or_default(), demo.observe);
        tokio::signal::ctrl_c().await?;
    }
    demo.stop().await?;
    let _ = std::fs::remove_dir_all(&work);
    anyhow::ensure!(ok, "some records did not end in the expected state");
    Ok(())
}

/// The sandbox's shiftable clock as the daemon's clock, so "25 h ago" is the same instant on both
/// sides. (The simulator crate knows nothing of the daemon's `Clock`; this adapter is the link.)
#[derive(Debug)]
struct SimTime(SimClock);

impl Clock for SimTime {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

/// Both simulators and the running daemon, wired together.
struct Demo {
    sandbox: Sandbox,
    pipeline: sfwa::pipeline::Pipeline,
    shutdown: CancellationToken,
    daemon: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
    /// The simulators' base URLs.
    sf: String,
    wa: String,
    /// The daemon's observe listener (`/metrics`, `/healthz`, `/readyz`).
    observe: String,
}

/// What the story left in the org: the outbound records in scene order, the inbound records, the
/// Id of Priya's Contact and the username customer.
struct Story {
    rows: Vec<Value>,
    inbound: Vec<Value>,
    priya: String,
    sam: UsernameCustomer,
}

/// Sam, who uses a WhatsApp username: the BSUID the simulator gave him and the Contact the org
/// holds it on (`WhatsApp_User_Id__c`; the Contact has no phone).
struct UsernameCustomer {
    user_id: String,
    contact: String,
}

impl UsernameCustomer {
    /// Whether `row` is Sam's inbound record, linked to his Contact.
    fn linked(&self, row: &Value) -> bool {
        row["From_User_Id__c"] == self.user_id.as_str()
            && row["From_Username__c"] == USERNAME
            && row["Contact__c"] == self.contact.as_str()
    }
}

impl Demo {
    /// Starts the sandbox in `work`, then the daemon on the sandbox's clock.
    async fn start(work: &std::path::Path) -> anyhow::Result<Demo> {
        let sandbox = Sandbox::start(&SandboxOptions {
            salesforce_addr: "127.0.0.1:0".parse()?,
            whatsapp_addr: "127.0.0.1:0".parse()?,
            webhook_url: None,
            state_dir: work.join("sim"),
        })
        .await?;
        let settings = settings_for(&sandbox, work)?;
        let clock: SharedClock = Arc::new(SimTime(sandbox.clock.clone()));
        let app = App::build(settings, clock).await?;
        sandbox.whatsapp.set_webhook_url(Some(app.webhook_url()));
        let observe = format!("http://{}", app.observe_addr());
        let pipeline = app.pipeline().clone();
        let shutdown = CancellationToken::new();
        let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let (sf, wa) = (sandbox.salesforce.url(), sandbox.whatsapp.url());
        Ok(Demo {
            sandbox,
            pipeline,
            shutdown,
            daemon,
            http: reqwest::Client::new(),
            sf,
            wa,
            observe,
        })
    }

    /// The scripted story: earlier customers, five records from a Flow, then Priya and Sam (a
    /// username customer) write in and the rep answers both. Prints the records' table as it
    /// changes.
    async fn play(&self, scenes: &[Scene]) -> anyhow::Result<Story> {
        let (http, sf) = (&self.http, self.sf.as_str());
        self.customers_wrote_earlier().await?;
        println!(
            "· Two customers wrote earlier: one 1 h ago, one 25 h ago (their window has closed)."
        );
        let priya = create_contact(
            http,
            sf,
            json!({"FirstName": "Priya", "LastName": "Shah", "Phone": "+44 20 7946 0104"}),
        )
        .await?;
        let sam = self.username_customer().await?;
        let mut ids = Vec::new();
        let fill = Fill {
            user_id: &sam.user_id,
            price_list: PRICE_LIST,
        };
        for scene in &scenes[..5] {
            ids.push(create_record(http, sf, scene, &fill).await?);
        }
        println!("· A Flow created 5 Queued WhatsApp_Message__c records; its platform events reach sfwa over the Streaming API.");
        wait_for(http, sf, &ids, &scenes[..5], Duration::from_secs(30), true).await?;
        self.priya_writes_in().await?;
        self.sam_writes_in(&sam).await?;
        let fill = Fill {
            user_id: &sam.user_id,
            price_list: &self.rep_attaches_price_list(&priya).await?,
        };
        for scene in &scenes[5..] {
            ids.push(create_record(http, sf, scene, &fill).await?);
        }
        let rows = wait_for(http, sf, &ids, scenes, Duration::from_secs(40), true).await?;
        let inbound = wait_for_inbound(http, sf, &priya, &sam, Duration::from_secs(20)).await?;
        Ok(Story {
            rows,
            inbound,
            priya,
            sam,
        })
    }

    /// Sam uses the username @sam.lee, so WhatsApp will not show his number; the simulator gives
    /// his BSUID, which the org already holds on his Contact (from an earlier conversation, say).
    async fn username_customer(&self) -> anyhow::Result<UsernameCustomer> {
        let customer = post(
            &self.http,
            &format!("{}/__sim/customers", self.wa),
            json!({"wa_id": wa_id(USERNAME_PHONE), "username": USERNAME, "name": "Sam",
                   "last_inbound_at": null}),
        )
        .await?;
        let user_id = customer["user_id"]
            .as_str()
            .context("the simulator gave the customer no BSUID")?
            .to_string();
        let contact = create_contact(
            &self.http,
            &self.sf,
            json!({"FirstName": "Sam", "LastName": "Lee", "WhatsApp_User_Id__c": user_id}),
        )
        .await?;
        Ok(UsernameCustomer { user_id, contact })
    }

    /// Sam writes in, showing only his BSUID and username; returns once the daemon has mirrored
    /// his message under the BSUID.
    async fn sam_writes_in(&self, sam: &UsernameCustomer) -> anyhow::Result<()> {
        post(
            &self.http,
            &format!("{}/__sim/inbound", self.wa),
            json!({"from": wa_id(USERNAME_PHONE), "type": "text",
                   "text": "Do you deliver on Saturdays?", "name": "Sam"}),
        )
        .await?;
        println!(
            "· Sam, who uses the WhatsApp username @{USERNAME}, writes in: WhatsApp withholds his number and gives his BSUID, which his Contact holds; the rep's reply is addressed by that BSUID alone."
        );
        wait_for_mirror(&self.pipeline, &sam.user_id).await
    }

    /// One customer wrote 1 h ago (and never opens messages), one 25 h ago.
    async fn customers_wrote_earlier(&self) -> anyhow::Result<()> {
        let (http, wa) = (&self.http, self.wa.as_str());
        let now = self.sandbox.clock.now().timestamp();
        for (phone, hours_ago, text) in [
            (WROTE_1H_AGO, 1, "Is my order on its way?"),
            (WROTE_25H_AGO, 25, "Do you have this in blue?"),
        ] {
            post(
                http,
                &format!("{wa}/__sim/inbound"),
                json!({"from": wa_id(phone), "type": "text", "text": text,
                "timestamp": now - hours_ago * 3600}),
            )
            .await?;
        }
        // This customer receives but never opens messages, so theirs stops at Delivered.
        post(
            http,
            &format!("{wa}/__sim/customers/reads"),
            json!({"wa_id": wa_id(WROTE_1H_AGO), "reads": false}),
        )
        .await?;
        Ok(())
    }

    /// The rep attaches the price list to Priya's Contact as a Salesforce File (what the composer's
    /// upload does: `POST sobjects/ContentVersion` linked by `FirstPublishLocationId`); returns
    /// its ContentVersion Id, which the rep's message names in `Media_File_Id__c`.
    async fn rep_attaches_price_list(&self, priya: &str) -> anyhow::Result<String> {
        use base64::Engine as _;
        let session = self.pipeline.write_back.salesforce.session().await?;
        let pdf = b"%PDF-1.4\n% sfwa demo price list: Basic 10, Plus 20, Pro 40\n%%EOF\n";
        let created: Value = self
            .http
            .post(format!(
                "{}/services/data/v{}/sobjects/ContentVersion",
                session.instance_url,
                sfwa::salesforce::API_VERSION
            ))
            .bearer_auth(&session.access_token)
            .json(
                &json!({"Title": "Price list 2026", "PathOnClient": "Price list 2026.pdf",
                          "VersionData": base64::engine::general_purpose::STANDARD.encode(pdf),
                          "FirstPublishLocationId": priya}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!("· The rep attaches the price list PDF to Priya's Contact (a Salesforce File) and sends it: sfwa uploads it to WhatsApp's media endpoint and sends it by media id, no public link.");
        created["id"]
            .as_str()
            .map(str::to_string)
            .context("no ContentVersion id returned")
    }

    /// Priya writes in; returns once the daemon has mirrored her message (the rep answers then).
    async fn priya_writes_in(&self) -> anyhow::Result<()> {
        post(
            &self.http,
            &format!("{}/__sim/inbound", self.wa),
            json!({"from": wa_id(REPLIES_FIRST), "type": "text",
            "text": "Hi! Could you send me the price list?", "name": "Priya"}),
        )
        .await?;
        println!(
            "· Priya, a Contact in the org, writes in; the rep answers with a text, which the window now allows."
        );
        wait_for_mirror(&self.pipeline, &wa_id(REPLIES_FIRST)).await
    }

    /// Prints the inbound table and the summary; whether every record ended as expected.
    async fn report(
        &self,
        scenes: &[Scene],
        story: &Story,
        started: Instant,
    ) -> anyhow::Result<bool> {
        let Story {
            rows,
            inbound,
            priya,
            sam,
        } = story;
        println!(
            "\nInbound messages, as Salesforce records (Direction Inbound, Status Received):\n"
        );
        println!("{}", render_inbound(inbound, priya, sam));
        let sf_stats = self.stats(&self.sf).await?;
        let wa_stats = self.stats(&self.wa).await?;
        let priya_linked = inbound
            .iter()
            .any(|r| r["Contact__c"] == priya.as_str() && r["Status__c"] == "Received");
        let sam_linked = inbound.iter().any(|r| sam.linked(r));
        let by_bsuid = self.sent_by_bsuid_alone(&sam.user_id).await?;
        let ok = priya_linked
            && sam_linked
            && by_bsuid
            && inbound.len() == 4
            && scenes
                .iter()
                .zip(rows)
                .all(|(scene, row)| matches_expectation(scene, row));
        let calls = sf_stats["rest_calls"]["total"].as_u64().unwrap_or(0);
        let accepted = wa_stats
            .pointer("/messages/accepted")
            .or_else(|| wa_stats.pointer("/messages_by_outcome/accepted"))
            .cloned()
            .unwrap_or(json!("?"));
        println!(
            "\n{} outbound records: {} as expected; 4 inbound records, Priya's linked to her Contact: {}. {:.1} s. WhatsApp sends accepted: {}.",
            scenes.len(),
            if ok { "all" } else { "NOT all" },
            yes(priya_linked),
            started.elapsed().as_secs_f64(),
            accepted,
        );
        println!(
            "Sam (@{USERNAME}, number withheld): his message recorded with his BSUID and username, linked to his Contact by the BSUID on it: {}; the rep's reply sent by BSUID with no phone number: {}.",
            yes(sam_linked),
            yes(by_bsuid),
        );
        let by_endpoint: Vec<String> = sf_stats["rest_calls"]["by_endpoint"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(endpoint, n)| format!("{n} {endpoint}"))
            .collect();
        println!(
            "Salesforce REST calls: {calls} ({}). Intake by platform event costs no polls: the queries fetch the records events name and look up Contacts/Leads by BSUID and phone.",
            by_endpoint.join(", "),
        );
        println!("The text 25 h after the customer's last message and the bad number never reached WhatsApp.");
        Ok(ok)
    }

    /// Whether WhatsApp received the reply to `user_id` as `recipient` (the BSUID), without `to`.
    async fn sent_by_bsuid_alone(&self, user_id: &str) -> anyhow::Result<bool> {
        let sent: Value = self
            .http
            .get(format!("{}/__sim/messages", self.wa))
            .query(&[("to", user_id)])
            .send()
            .await?
            .json()
            .await?;
        let messages = sent
            .as_array()
            .or_else(|| sent["messages"].as_array())
            .cloned()
            .unwrap_or_default();
        Ok(messages
            .iter()
            .any(|m| m["request"]["recipient"] == user_id && m["request"].get("to").is_none()))
    }

    /// A simulator's `/__sim/stats`.
    async fn stats(&self, base: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{base}/__sim/stats"))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Stops the daemon (it flushes what is pending), then the simulators.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.daemon.await.context("daemon task")??;
        self.sandbox.stop().await;
        Ok(())
    }
}

/// A phone number as WhatsApp's `wa_id`: its digits.
fn wa_id(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

async fn wait_for_mirror(pipeline: &sfwa::pipeline::Pipeline, wa_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (number, customer): (BusinessNumberId, CustomerId) = (
            pipeline
                .core
                .settings
                .whatsapp
                .default_phone_number_id
                .parse()?,
            wa_id.parse()?,
        );
        let seen = pipeline
            .core
            .store
            .read(move |conn| sfwa::store::inbound::last_inbound(conn, &number, &customer))
            .await?;
        if seen.is_some() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the customer's message never reached the daemon"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sfwa-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Daemon settings pointing at the sandbox, with demo-friendly intervals.
fn settings_for(sandbox: &Sandbox, work: &std::path::Path) -> anyhow::Result<Settings> {
    let info = sandbox.connection_info();
    let mut settings = Settings::default();
    settings.salesforce.login_url = sandbox.salesforce.url();
    settings.salesforce.auth = AuthMode::Jwt;
    settings.salesforce.client_id = info["salesforce"]["client_id"]
        .as_str()
        .unwrap_or_default()
        .into();
    settings.salesforce.username = info["salesforce"]["username"]
        .as_str()
        .unwrap_or_default()
        .into();
    settings.salesforce.private_key_path = info["salesforce"]["private_key_path"]
        .as_str()
        .map(PathBuf::from);
    settings.whatsapp.api_base = sandbox.whatsapp.url();
    settings.whatsapp.access_token = Secret::new(sandbox.whatsapp.access_token());
    settings.whatsapp.default_phone_number_id = sandbox.whatsapp.phone_number_id().into();
    settings.whatsapp.app_secret = Secret::new(sandbox.whatsapp.app_secret());
    settings.whatsapp.verify_token = Secret::new(sandbox.whatsapp.verify_token());
    settings.whatsapp.default_region = "US".into();
    // Sends as streams of one HTTP/2 connection, as to Meta (the simulator speaks it in clear text).
    settings.whatsapp.http2 = sfwa::whatsapp::Http2::Always;
    settings.intake.interval = Duration::from_millis(500);
    settings.intake.batch_window = Duration::from_millis(200);
    settings.writeback.flush_interval = Duration::from_millis(500);
    settings.webhook.listen = "127.0.0.1:0".parse()?;
    settings.observe.listen = "127.0.0.1:0".parse()?;
    settings.store.path = work.join("sfwa.db");
    settings
        .validate()
        .map_err(|problems| anyhow::anyhow!("demo settings invalid: {problems:?}"))?;
    Ok(settings)
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let response = http.post(url).json(&body).send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {body}");
    Ok(body)
}

/// "yes" or "NO", for the summary.
fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

/// A Contact in the simulated org; its Id.
async fn create_contact(
    http: &reqwest::Client,
    sf: &str,
    contact: Value,
) -> anyhow::Result<String> {
    post(http, &format!("{sf}/__sim/records/Contact"), contact).await?["ids"][0]
        .as_str()
        .map(str::to_string)
        .context("no Contact id returned")
}

/// What the story learns on the way and scenes' records name: the username customer's BSUID and
/// the rep's price-list File.
struct Fill<'a> {
    user_id: &'a str,
    price_list: &'a str,
}

/// The scene's record, Queued, addressed to its phone or — for the username customer — to
/// `fill.user_id` in `To_User_Id__c`; a `Media_File_Id__c` of [`PRICE_LIST`] names the rep's File.
async fn create_record(
    http: &reqwest::Client,
    sf: &str,
    scene: &Scene,
    fill: &Fill<'_>,
) -> anyhow::Result<String> {
    let mut record = scene.record.clone();
    if record["Media_File_Id__c"] == PRICE_LIST {
        record["Media_File_Id__c"] = json!(fill.price_list);
    }
    if scene.to_user_id {
        record["To_User_Id__c"] = json!(fill.user_id);
    } else {
        record["To_Phone__c"] = json!(scene.phone);
    }
    record["Status__c"] = json!("Queued");
    let created = post(
        http,
        &format!("{sf}/__sim/records/WhatsApp_Message__c"),
        record,
    )
    .await?;
    created["ids"][0]
        .as_str()
        .map(str::to_string)
        .context("no id returned")
}

fn matches_expectation(scene: &Scene, row: &Value) -> bool {
    row["Status__c"] == scene.expect_status && row["Error_Code__c"].as_str() == scene.expect_code
}

/// Prints the table whenever it changes, until every record is as expected or `limit` passes.
async fn wait_for(
    http: &reqwest::Client,
    sf: &str,
    ids: &[String],
    scenes: &[Scene],
    limit: Duration,
    print: bool,
) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + limit;
    let mut last_table = String::new();
    loop {
        let listed = message_records(http, sf).await?;
        let by_id: BTreeMap<&str, &Value> = listed["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r["Id"].as_str()?, r)))
            .collect();
        let rows: Vec<Value> = ids
            .iter()
            .map(|id| by_id.get(id.as_str()).map_or(Value::Null, |r| (*r).clone()))
            .collect();
        let table = render(scenes, &rows);
        if print && table != last_table {
            println!("\n{table}");
            last_table = table;
        }
        let done = scenes
            .iter()
            .zip(&rows)
            .all(|(scene, row)| matches_expectation(scene, row));
        if done || Instant::now() > deadline {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every WhatsApp_Message__c in the simulated org, as the control API lists them.
async fn message_records(http: &reqwest::Client, sf: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(format!("{sf}/__sim/records/WhatsApp_Message__c"))
        .send()
        .await?
        .json()
        .await?)
}

/// Waits until the four customers' messages are inbound records and Priya's and Sam's are linked.
async fn wait_for_inbound(
    http: &reqwest::Client,
    sf: &str,
    priya: &str,
    sam: &UsernameCustomer,
    limit: Duration,
) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + limit;
    loop {
        let listed = message_records(http, sf).await?;
        let mut inbound: Vec<Value> = listed["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["Direction__c"] == "Inbound")
            .cloned()
            .collect();
        inbound.sort_by_key(|r| r["Received_At__c"].as_str().unwrap_or("").to_string());
        let linked = inbound.iter().any(|r| r["Contact__c"] == priya)
            && inbound.iter().any(|r| sam.linked(r));
        if (inbound.len() == 4 && linked) || Instant::now() > deadline {
            return Ok(inbound);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn render_inbound(rows: &[Value], priya: &str, sam: &UsernameCustomer) -> String {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let mut out = format!(
        "{:<10} {:<20} {:<19} {:<40} {}\n",
        "Record", "From", "Received", "Body", "Linked to"
    );
    for row in rows {
        let linked = match row["Contact__c"].as_str() {
            Some(id) if id == priya => format!("Contact Priya Shah ({id})"),
            Some(id) if id == sam.contact => format!(
                "Contact Sam Lee ({id}), by the BSUID on it: {}",
                text(row, "From_User_Id__c")
            ),
            Some(id) => format!("Contact {id}"),
            None => "(no Contact or Lead has this number)".to_string(),
        };
        // A username customer's number is withheld: the record has their BSUID and username.
        let from = match (
            row["From_Phone__c"].as_str(),
            row["From_User_Id__c"].as_str(),
        ) {
            (Some(phone), _) => phone.to_string(),
            (None, Some(_)) => format!("@{} (no number)", text(row, "From_Username__c")),
            (None, None) => String::new(),
        };
        let received = text(row, "Received_At__c");
        out.push_str(&format!(
            "{:<10} {:<20} {:<19} {:<40} {}\n",
            text(row, "Name"),
            from,
            received.get(..19).unwrap_or(&received).replace('T', " "),
            text(row, "Body__c").chars().take(40).collect::<String>(),
            linked
        ));
    }
    out
}

fn render(scenes: &[Scene], rows: &[Value]) -> String {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let time = |v: &Value, k: &str| {
        v[k].as_str()
            .and_then(|t| t.get(11..19))
            .unwrap_or("")
            .to_string()
    };
    let mut out = format!(
        "{:<10} {:<32} {:<18} {:<9} {:<10} {:<8} {:<8} {:<8} {}\n",
        "Record", "Scene", "To", "Type", "Status", "Sent", "Deliv.", "Read", "Error"
    );
    for (scene, row) in scenes.iter().zip(rows) {
        let error = match (
            row["Error_Code__c"].as_str(),
            row["Error_Message__c"].as_str(),
        ) {
            (Some(code), Some(message)) => {
                format!("{code}: {}", message.chars().take(70).collect::<String>())
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<10} {:<32} {:<18} {:<9} {:<10} {:<8} {:<8} {:<8} {}\n",
            text(row, "Name"),
            scene.who,
            scene.phone,
            text(row, "Message_Type__c"),
            text(row, "Status__c"),
            time(row, "Sent_At__c"),
            time(row, "Delivered_At__c"),
            time(row, "Read_At__c"),
            error
        ));
    }
    out
}
