//! Faults staged from outside through `POST /__sim/faults`, while traffic flows: duplicated,
//! reordered, delayed and retried webhooks; sends accepted whose answer is lost; and the attempt log
//! (`GET /__sim/attempts`) that lists every send attempt with its outcome.

use std::time::Duration;

use serde_json::{json, Value};
use sfwa::domain::message::{MessageKind, OutboundMessage};
use sfwa::domain::phone::E164;
use sfwa::domain::sf_id::SfId;
use sfwa::whatsapp::{WhatsAppClient, WhatsAppConfig};

use crate::whatsapp_support::{spawn_sim, template_to, text_to, TestSim, CUSTOMER, DEADLINE};

const RECORD_ID: &str = "a005g0000012345AAA";

/// The daemon's own Cloud API client, pointed at the simulator.
fn daemon_client(t: &TestSim, timeout: Duration) -> WhatsAppClient {
    WhatsAppClient::new(
        reqwest::Client::new(),
        WhatsAppConfig {
            api_base: t.sim.url(),
            api_version: "v23.0".to_owned(),
            access_token: t.sim.access_token().to_owned(),
            timeout,
        },
    )
}

fn hello_world() -> OutboundMessage {
    OutboundMessage {
        record_id: SfId::parse(RECORD_ID).expect("valid id"),
        to: sfwa::domain::ids::CustomerId::from_phone(
            &E164::from_wa_id(CUSTOMER).expect("valid phone"),
        ),
        business_number_id: None,
        kind: MessageKind::Template {
            name: "hello_world".into(),
            language: "en_US".into(),
            parameters: Default::default(),
        },
        scheduled_at: None,
    }
}

fn attempts_of(listed: &Value) -> Vec<Value> {
    listed["attempts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_duplicate_rate_switched_on_at_run_time_delivers_each_webhook_twice() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/faults", &json!({"webhook_duplicate_rate": 1.0}))
        .await;

    // Act
    t.control_post(
        "/__sim/inbound",
        &json!({"from": CUSTOMER, "type": "text", "text": "hi"}),
    )
    .await;
    let first = t.hooks.next().await;
    let second = t.hooks.next().await;
    let faults = t.control_get("/__sim/faults").await;

    // Assert
    assert_eq!(first.body, second.body);
    assert_eq!(faults["webhook_duplicate_rate"], 1.0);
}

#[tokio::test]
async fn out_of_order_switched_on_at_run_time_reports_read_before_delivered() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/customers", &json!({"wa_id": CUSTOMER}))
        .await;
    t.control_post("/__sim/faults", &json!({"webhook_out_of_order": true}))
        .await;

    // Act
    let wamid = t.send_ok(&text_to(CUSTOMER, "Hello")).await;
    let mut order = Vec::new();
    while order.len() < 3 {
        let status = t.hooks.next_status().await;
        assert_eq!(status["id"], wamid.as_str());
        order.push(status["status"].as_str().unwrap_or("").to_owned());
    }

    // Assert
    assert_eq!(order, ["sent", "read", "delivered"]);
}

#[tokio::test]
async fn a_random_webhook_delay_lets_later_messages_overtake_earlier_ones() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/faults", &json!({"webhook_delay_ms": 400}))
        .await;
    let written: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();

    // Act
    for text in &written {
        t.control_post(
            "/__sim/inbound",
            &json!({"from": CUSTOMER, "type": "text", "text": text}),
        )
        .await;
    }
    let mut arrived = Vec::new();
    for _ in 0..written.len() {
        let value = t.hooks.next_value().await;
        arrived.push(
            value["messages"][0]["text"]["body"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    let faults = t.control_get("/__sim/faults").await;

    // Assert: all arrive, not in the order written (20 uniform delays in order: 1 in 20!).
    let mut sorted = arrived.clone();
    sorted.sort();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert_ne!(arrived, written);
    assert_eq!(faults["webhook_delay_ms"], 400);
}

#[tokio::test]
async fn raising_the_retry_attempts_at_run_time_gets_a_webhook_past_a_long_outage() {
    // Arrange: configured to give up after 2 POSTs; the receiver refuses the first 6.
    let mut t = spawn_sim(|config| config.webhook_retry.max_attempts = 2).await;
    t.control_post(
        "/__sim/faults",
        &json!({"webhook_retry_max_attempts": 50, "webhook_retry_horizon_ms": 60_000}),
    )
    .await;
    t.hooks.fail_next(6);

    // Act
    t.control_post(
        "/__sim/inbound",
        &json!({"from": CUSTOMER, "type": "text", "text": "still there?"}),
    )
    .await;
    let value = t.hooks.next_value().await;

    // Assert
    assert_eq!(value["messages"][0]["text"]["body"], "still there?");
    assert_eq!(t.hooks.attempts(), 7);
}

#[tokio::test]
async fn retries_stop_at_the_horizon_even_with_attempts_left() {
    // Arrange: back-off 10, 20, 40, 80, 160 ms…; a 100 ms horizon allows only the first few.
    let t = spawn_sim(|_| {}).await;
    t.control_post(
        "/__sim/faults",
        &json!({"webhook_retry_max_attempts": 1000, "webhook_retry_horizon_ms": 100}),
    )
    .await;
    t.hooks.fail_next(u32::MAX);

    // Act
    t.control_post(
        "/__sim/inbound",
        &json!({"from": CUSTOMER, "type": "text", "text": "anyone?"}),
    )
    .await;
    let stats = t
        .control_get_until("/__sim/stats", |stats| stats["webhooks"]["failed"] == 1)
        .await;

    // Assert
    let posts = t.hooks.attempts();
    assert!((1..=6).contains(&posts), "{posts} POSTs within 100 ms");
    assert_eq!(stats["webhooks"]["delivered"], 0);
}

#[tokio::test]
async fn an_accepted_send_whose_answer_is_cut_is_recorded_while_the_client_sees_an_unknown_outcome()
{
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.control_post(
        "/__sim/faults",
        &json!({"accepted_then_lost_rate": 1.0, "accepted_then_lost_mode": "cut"}),
    )
    .await;
    let client = daemon_client(&t, DEADLINE);

    // Act
    let outcome = client.send(t.sim.phone_number_id(), &hello_world()).await;
    let sent = t.hooks.next_status().await;
    let messages = t.control_get("/__sim/messages").await;
    let attempts = t.control_get("/__sim/attempts").await;

    // Assert
    let error = outcome.expect_err("the answer was cut");
    assert!(error.outcome_unknown(), "{error:?}");
    let message = &messages["messages"][0];
    assert_eq!(message["biz_opaque_callback_data"], RECORD_ID);
    assert_eq!(sent["id"], message["wamid"]);
    assert_eq!(sent["biz_opaque_callback_data"], RECORD_ID);
    let attempt = &attempts_of(&attempts)[0];
    assert_eq!(attempt["outcome"], "accepted");
    assert_eq!(attempt["answer_lost"], true);
    assert_eq!(attempt["wamid"], message["wamid"]);
}

#[tokio::test]
async fn an_accepted_send_held_past_the_client_timeout_is_an_unknown_outcome_but_was_sent() {
    // Arrange
    let t = spawn_sim(|_| {}).await;
    t.control_post(
        "/__sim/faults",
        &json!({
            "accepted_then_lost_rate": 1.0,
            "accepted_then_lost_mode": "timeout",
            "accepted_then_lost_hold_ms": 3_000,
        }),
    )
    .await;
    let client = daemon_client(&t, Duration::from_millis(300));

    // Act
    let outcome = client.send(t.sim.phone_number_id(), &hello_world()).await;
    let attempts = t.control_get("/__sim/attempts").await;
    let faults = t.control_get("/__sim/faults").await;

    // Assert
    let error = outcome.expect_err("the answer came too late");
    assert!(error.outcome_unknown(), "{error:?}");
    let attempt = &attempts_of(&attempts)[0];
    assert_eq!(attempt["outcome"], "accepted");
    assert_eq!(attempt["answer_lost"], true);
    assert!(attempt["wamid"].is_string());
    assert_eq!(faults["accepted_then_lost_mode"], "timeout");
}

#[tokio::test]
async fn throughput_refusals_are_listed_as_rejected_attempts_with_their_code() {
    // Arrange
    let t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/faults", &json!({"throughput_per_second": 1}))
        .await;
    let mut body = template_to(CUSTOMER, "hello_world", json!([]));
    body["biz_opaque_callback_data"] = json!(RECORD_ID);

    // Act
    let (first, _) = t.send(&body).await;
    let (second, _) = t.send(&body).await;
    let listed = t.control_get("/__sim/attempts").await;

    // Assert
    assert_eq!(first.as_u16(), 200);
    assert_eq!(second.as_u16(), 400);
    let attempts = attempts_of(&listed);
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["seq"], 1);
    assert_eq!(attempts[0]["outcome"], "accepted");
    assert_eq!(attempts[0]["code"], Value::Null);
    assert_eq!(attempts[1]["seq"], 2);
    assert_eq!(attempts[1]["outcome"], "rejected");
    assert_eq!(attempts[1]["code"], 130429);
    assert_eq!(attempts[1]["wamid"], Value::Null);
    assert_eq!(attempts[1]["biz_opaque_callback_data"], RECORD_ID);
    assert_eq!(attempts[1]["wa_id"], CUSTOMER);
}

#[tokio::test]
async fn attempts_say_whether_the_window_was_open_for_free_form_sends_only() {
    // Arrange
    let t = spawn_sim(|_| {}).await;
    let stranger = "16505559876";
    t.control_post("/__sim/customers", &json!({"wa_id": CUSTOMER}))
        .await;

    // Act
    t.send_ok(&text_to(CUSTOMER, "inside")).await;
    t.send_ok(&text_to(stranger, "outside")).await;
    t.send_ok(&template_to(stranger, "hello_world", json!([])))
        .await;
    let listed = t.control_get("/__sim/attempts").await;

    // Assert
    let windows: Vec<Value> = attempts_of(&listed)
        .iter()
        .map(|attempt| attempt["window_open"].clone())
        .collect();
    assert_eq!(windows, [json!(true), json!(false), Value::Null]);
}

#[tokio::test]
async fn attempts_page_by_sequence_number() {
    // Arrange
    let t = spawn_sim(|_| {}).await;
    for _ in 0..3 {
        t.send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
            .await;
    }

    // Act
    let page = t.control_get("/__sim/attempts?since=1&limit=1").await;
    let rest = t
        .control_get(&format!(
            "/__sim/attempts?since={}",
            page["next_since"].as_u64().unwrap_or(0)
        ))
        .await;

    // Assert
    let seqs = |listed: &Value| -> Vec<Value> {
        attempts_of(listed)
            .iter()
            .map(|attempt| attempt["seq"].clone())
            .collect()
    };
    assert_eq!(seqs(&page), [json!(2)]);
    assert_eq!(page["more"], true);
    assert_eq!(seqs(&rest), [json!(3)]);
    assert_eq!(rest["more"], false);
}

#[tokio::test]
async fn a_fault_value_out_of_range_is_refused_and_changes_nothing() {
    // Arrange
    let t = spawn_sim(|_| {}).await;

    // Act
    let response = t
        .http
        .post(format!("{}/__sim/faults", t.sim.url()))
        .json(&json!({"accepted_then_lost_rate": 1.5, "webhook_delay_ms": 100}))
        .send()
        .await
        .expect("control request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON body");
    let faults = t.control_get("/__sim/faults").await;

    // Assert
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("accepted_then_lost_rate"),
        "{body}"
    );
    assert_eq!(faults["accepted_then_lost_rate"], 0.0);
    assert_eq!(faults["webhook_delay_ms"], 0);
}

/// Kills `sfwa sim` when the test ends, passed or not.
struct SimProcess(std::process::Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn faults_are_staged_from_outside_through_sfwa_sim_and_its_attempt_log_lists_every_send() {
    // Arrange: the real binary, as an operator or the soak suite runs it.
    use std::io::BufRead;
    let state = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .args(["sim", "--salesforce-addr", "127.0.0.1:0"])
        .args(["--whatsapp-addr", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sfwa starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let _sim = SimProcess(child);
    let info: Value = serde_json::from_str(&line).expect("JSON line");
    let url = info["whatsapp_url"].as_str().expect("whatsapp_url");
    let token = info["whatsapp"]["access_token"].as_str().expect("token");
    let phone = info["whatsapp"]["phone_number_id"]
        .as_str()
        .expect("phone id");
    let http = reqwest::Client::new();
    let staged: Value = http
        .post(format!("{url}/__sim/faults"))
        .json(&json!({"throughput_per_second": 1, "webhook_delay_ms": 50}))
        .send()
        .await
        .expect("faults")
        .json()
        .await
        .expect("JSON");

    // Act
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = http
            .post(format!("{url}/v23.0/{phone}/messages"))
            .bearer_auth(token)
            .json(&template_to(CUSTOMER, "hello_world", json!([])))
            .send()
            .await
            .expect("send");
        statuses.push(response.status().as_u16());
    }
    let listed: Value = http
        .get(format!("{url}/__sim/attempts"))
        .send()
        .await
        .expect("attempts")
        .json()
        .await
        .expect("JSON");

    // Assert
    assert_eq!(staged["webhook_delay_ms"], 50);
    assert_eq!(statuses, [200, 400]);
    let outcomes: Vec<(Value, Value)> = attempts_of(&listed)
        .iter()
        .map(|attempt| (attempt["outcome"].clone(), attempt["code"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (json!("accepted"), Value::Null),
            (json!("rejected"), json!(130429))
        ]
    );
}

// ---- The known limit, staged with these faults ------------------------------------------------

#[tokio::test]
async fn a_status_echo_delayed_past_the_grace_after_a_lost_answer_leads_to_a_resend() {
    // Arrange: the daemon, client credentials (the tests shift the org's clock), a 10-minute
    // grace; every answer is cut and every webhook held back up to an hour of real time.
    use crate::daemon_support::{spawn_app_with, Options};
    use sfwa::config::AuthMode;
    use sfwa::pipeline::dispatch::DispatchOutcome;
    let app = spawn_app_with(Options {
        tune: Box::new(|s| {
            s.salesforce.auth = AuthMode::ClientCredentials;
            s.dispatch.unknown_outcome_grace = Duration::from_secs(600);
        }),
        ..Options::default()
    })
    .await;
    app.wa_control(
        "faults",
        json!({"accepted_then_lost_rate": 1.0, "webhook_delay_ms": 3_600_000}),
    )
    .await;
    let ids = app
        .queue(
            json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template",
                        "Template_Name__c": "hello_world"}]),
        )
        .await;

    // Act: the send's outcome is unknown; no echo comes within the grace, so it is sent again.
    let first = app.dispatch().await;
    app.clock.shift(chrono::Duration::minutes(13));
    let second = app.dispatch().await;
    let listed = app.wa_sim_get("attempts").await;

    // Assert: Meta accepted the message twice — a real duplicate. Size the grace above the
    // longest echo delay you expect (README, "Soak").
    assert_eq!(first.outcomes, vec![DispatchOutcome::OutcomeUnknown]);
    assert_eq!(second.resolved_unknown, 1, "{second:?}");
    let accepted: Vec<Value> = attempts_of(&listed)
        .into_iter()
        .filter(|attempt| attempt["outcome"] == "accepted")
        .collect();
    assert_eq!(accepted.len(), 2, "{listed}");
    assert!(accepted.iter().all(
        |attempt| attempt["biz_opaque_callback_data"] == ids[0].as_str()
            && attempt["answer_lost"] == true
    ));
}

#[tokio::test]
async fn customers_timing_set_at_run_time_has_a_message_read_without_the_default_three_seconds() {
    // Arrange: the default customers take 1 s to receive and 2 s more to read.
    let mut t = spawn_sim(|_| {}).await;
    let faults = t
        .control_post(
            "/__sim/faults",
            &json!({"delivered_after_ms": 0, "read_after_ms": 0}),
        )
        .await;
    let started = std::time::Instant::now();

    // Act
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let read = t.hooks.status_of(&wamid, "read").await;

    // Assert
    assert_eq!(
        (&faults["delivered_after_ms"], &faults["read_after_ms"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(read["id"], wamid.as_str());
    // Generous against a loaded machine, yet short of the default's 3 s.
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn status_webhooks_switched_off_leave_an_accepted_send_without_any_status() {
    // Arrange
    let t = spawn_sim(|_| {}).await;
    let faults = t
        .control_post("/__sim/faults", &json!({"status_webhooks_off": true}))
        .await;

    // Act
    let wamid = t
        .send_ok(&template_to(CUSTOMER, "hello_world", json!([])))
        .await;
    let everything = t.control_post("/__sim/webhooks/deliver", &json!({})).await;

    // Assert
    assert_eq!(faults["status_webhooks_off"], true);
    assert!(wamid.starts_with("wamid."), "{wamid}");
    assert_eq!(everything["events"], 0, "{everything}");
}
