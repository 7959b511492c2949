//! Operating sfwa: `/metrics` counts what this daemon did (and only this one), `/readyz` routes on
//! the store alone and reports the Salesforce session, the intake and held numbers through
//! outages and recoveries, both on the observe listener while the webhook port serves the webhook
//! alone, and no secret reaches the logs on any path (logins, sends, webhooks, re-login, the
//! stream).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sfwa::config::{AuthMode, IntakeMode, Secret};
use sfwa::pipeline::stream::StreamIntake;
use sfwa::pipeline::worker;
use sfwa_sim::whatsapp::signature;

use crate::daemon_support::{spawn_app_with, Options, TestApp, DEADLINE};

// ---- helpers ---------------------------------------------------------------------------------

/// `http://127.0.0.1:port` of the daemon's webhook listener.
fn webhook_base(app: &TestApp) -> String {
    let webhook = app.wa.webhook_url().expect("the daemon is registered");
    let after_scheme = webhook.find("://").map_or(0, |i| i + 3);
    let end = webhook[after_scheme..]
        .find('/')
        .map_or(webhook.len(), |i| after_scheme + i);
    webhook[..end].to_string()
}

/// `GET path` on the observe listener.
async fn get(app: &TestApp, path: &str) -> (reqwest::StatusCode, String) {
    get_from(app, &app.observe_base, path).await
}

async fn get_from(app: &TestApp, base: &str, path: &str) -> (reqwest::StatusCode, String) {
    let response = app.http.get(format!("{base}{path}")).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The status and the JSON body of `/readyz`.
async fn readyz(app: &TestApp) -> (u16, Value) {
    let (status, body) = get(app, "/readyz").await;
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status.as_u16(), body)
}

/// The `problems` lines of a `/readyz` body.
fn problems(body: &Value) -> Vec<String> {
    body["problems"]
        .as_array()
        .expect("problems is a list")
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn mentions(body: &Value, text: &str) -> bool {
    problems(body).iter().any(|p| p.contains(text))
}

/// The value of one sample (`name{labels}` exactly as exposed), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

async fn metrics(app: &TestApp) -> String {
    let (status, body) = get(app, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

fn poll_mode() -> Options {
    Options {
        tune: Box::new(|s| s.intake.mode = IntakeMode::Poll),
        ..Options::default()
    }
}

fn stream_mode() -> Options {
    let mut options = Options::default();
    options.org.connect_timeout = Duration::from_millis(200);
    options
}

fn template(phone: &str) -> Value {
    json!({"To_Phone__c": phone, "Message_Type__c": "Template", "Template_Name__c": "hello_world"})
}

/// A signed inbound text message, as Meta would POST it.
fn signed_inbound(app: &TestApp, wamid: &str) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": app.wa.waba_id(), "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": app.wa.phone_number_id()},
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": "16505550101"}],
            "messages": [{"from": "16505550101", "id": wamid,
                          "timestamp": app.clock.now().timestamp().to_string(),
                          "type": "text", "text": {"body": "hi"}}],
        }}]}],
    }))
    .unwrap();
    let signed = signature(&body, app.wa.app_secret());
    (body, signed)
}

const ACCEPTED: &str = r#"sfwa_webhook_requests_total{result="accepted"}"#;

// ---- /metrics --------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_count_this_daemons_sends_refusals_webhooks_and_flushes_and_no_other_daemons() {
    let mut options = poll_mode();
    // Only the `sent` status webhook from the simulator: every count below is exact.
    options.wa.delivered_after = Duration::from_secs(3600);
    options.wa.read_after = Duration::from_secs(3600);
    let app = spawn_app_with(options).await;
    let bystander = spawn_app_with(poll_mode()).await;
    app.queue(json!([template("+16505551001"), template("not a phone")]))
        .await;

    app.dispatch().await;
    let (inbound, signed) = signed_inbound(&app, "wamid.METRICS1");
    let first = app.post_webhook(&inbound, &signed).await;
    let again = app.post_webhook(&inbound, &signed).await;
    let forged = app
        .post_webhook(&inbound, &signature(&inbound, "not-the-app-secret"))
        .await;
    let bad = app
        .post_webhook(b"{}", &signature(b"{}", app.wa.app_secret()))
        .await;
    // Ours and the simulator's `sent` status (delivered and read never come, see above).
    app.deliver_due_webhooks().await;
    let accepted = sample(&metrics(&app).await, ACCEPTED);
    assert_eq!(accepted, Some(2.0), "the simulator's sent status is stored");
    app.flush().await;
    let text = metrics(&app).await;
    let untouched = metrics(&bystander).await;

    assert_eq!((first, again, forged, bad), (200, 200, 401, 400));
    assert!(text.contains("# HELP sfwa_messages_total "), "{text}");
    let expect = [
        (r#"sfwa_messages_total{outcome="sent",code=""}"#, 1.0),
        (
            r#"sfwa_messages_total{outcome="refused",code="INVALID_PHONE"}"#,
            1.0,
        ),
        (ACCEPTED, 2.0),
        (r#"sfwa_webhook_requests_total{result="duplicate"}"#, 1.0),
        (r#"sfwa_webhook_requests_total{result="unauthorized"}"#, 1.0),
        (r#"sfwa_webhook_requests_total{result="bad_request"}"#, 1.0),
        ("sfwa_whatsapp_send_duration_seconds_count", 1.0),
        ("sfwa_queued_to_sent_seconds_count", 1.0),
        ("sfwa_salesforce_api_max", 15000.0),
        (r#"sfwa_queue_depth{state="claimed"}"#, 0.0),
        (r#"sfwa_queue_depth{state="sending"}"#, 0.0),
        ("sfwa_outbox_depth", 0.0),
        ("sfwa_outbox_oldest_age_seconds", 0.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    assert!(
        sample(&text, "sfwa_salesforce_api_used") > Some(0.0),
        "{text}"
    );
    assert!(sample(&text, "sfwa_writeback_flushes_total") >= Some(1.0));
    // Sent + refused records, and the inbound record: at least three written.
    assert!(sample(&text, r#"sfwa_writeback_records_total{result="written"}"#) >= Some(3.0));
    assert!(
        !text.contains("sfwa_stream_connected"),
        "poll mode has no stream"
    );

    assert_eq!(
        sample(&untouched, r#"sfwa_messages_total{outcome="sent",code=""}"#),
        None
    );
    assert_eq!(
        sample(&untouched, "sfwa_writeback_flushes_total"),
        Some(0.0)
    );
    assert_eq!(sample(&untouched, "sfwa_salesforce_api_max"), Some(0.0));
}

#[tokio::test]
async fn metrics_show_waiting_write_backs_and_their_age_while_salesforce_is_down() {
    let app = spawn_app_with(poll_mode()).await;
    app.queue(json!([template("+16505551002")])).await;
    app.dispatch().await;
    app.org_control("faults", json!({"error_503_rate": 1.0}))
        .await;

    let _ = sfwa::pipeline::writeback::flush_once(&app.pipeline.write_back).await;
    app.clock.shift(chrono::Duration::seconds(90));
    let text = metrics(&app).await;

    assert!(sample(&text, "sfwa_outbox_depth") >= Some(1.0), "{text}");
    assert!(
        sample(&text, "sfwa_outbox_oldest_age_seconds") >= Some(90.0),
        "{text}"
    );
    assert!(
        sample(&text, r#"sfwa_writeback_records_total{result="retried"}"#) >= Some(1.0),
        "{text}"
    );
}

// ---- /readyz ---------------------------------------------------------------------------------

#[tokio::test]
async fn poll_mode_stays_ready_through_three_intervals_of_salesforce_503s_and_reports_the_outage() {
    let app = spawn_app_with(poll_mode()).await;
    let interval = chrono::Duration::from_std(app.settings.intake.interval).unwrap();
    let (alive, _) = get(&app, "/healthz").await;
    let before = readyz(&app).await;

    app.dispatch().await;
    let after_poll = readyz(&app).await;

    app.org_control("faults", json!({"error_503_rate": 1.0}))
        .await;
    assert!(worker::dispatch_step(&app.pipeline).await.is_err());
    let after_one_failure = readyz(&app).await;
    app.clock.shift(interval * 3 + chrono::Duration::seconds(1));
    assert!(worker::dispatch_step(&app.pipeline).await.is_err());
    let during_outage = readyz(&app).await;
    let outage_metrics = metrics(&app).await;

    app.org_control("faults", json!({})).await;
    app.dispatch().await;
    let recovered = readyz(&app).await;

    assert_eq!(alive, 200);
    assert_eq!((before.0, &before.1["ready"]), (200, &json!(true)));
    assert_eq!(before.1["store"], "writable");
    assert!(
        mentions(&before.1, "intake: no successful poll yet"),
        "{}",
        before.1
    );
    assert!(
        mentions(&before.1, "salesforce: not logged in"),
        "{}",
        before.1
    );
    assert_eq!(after_poll.0, 200);
    assert_eq!(
        problems(&after_poll.1),
        Vec::<String>::new(),
        "{}",
        after_poll.1
    );
    assert_eq!(
        problems(&after_one_failure.1),
        Vec::<String>::new(),
        "one failed poll is a blip"
    );
    assert_eq!(
        during_outage.0, 200,
        "Salesforce down is an alert, not a reason to refuse Meta"
    );
    assert!(
        mentions(&during_outage.1, "intake: no successful poll for"),
        "{}",
        during_outage.1
    );
    assert!(
        !mentions(&during_outage.1, "salesforce:"),
        "an outage is not an auth problem"
    );
    assert_eq!(sample(&outage_metrics, "sfwa_ready"), Some(1.0));
    assert_eq!(
        problems(&recovered.1),
        Vec::<String>::new(),
        "{}",
        recovered.1
    );
}

#[tokio::test]
async fn stream_mode_reports_the_subscription_while_staying_ready() {
    let app = spawn_app_with(stream_mode()).await;
    let before = readyz(&app).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();

    intake.step(&app.pipeline).await.unwrap();
    let connected = readyz(&app).await;
    let connected_metrics = metrics(&app).await;

    app.org_control("streaming/drop-clients", json!({})).await;
    assert!(intake.step(&app.pipeline).await.is_err());
    let dropped = readyz(&app).await;
    let dropped_metrics = metrics(&app).await;

    intake.step(&app.pipeline).await.unwrap();
    let reconnected = readyz(&app).await;

    assert_eq!(before.0, 200);
    assert!(
        mentions(&before.1, "intake: stream not connected"),
        "{}",
        before.1
    );
    assert_eq!(connected.0, 200);
    assert_eq!(connected.1["intake"], "ok", "{}", connected.1);
    assert_eq!(
        sample(&connected_metrics, "sfwa_stream_connected"),
        Some(1.0)
    );
    assert_eq!(dropped.0, 200);
    assert!(
        mentions(&dropped.1, "intake: stream not connected"),
        "{}",
        dropped.1
    );
    assert_eq!(sample(&dropped_metrics, "sfwa_stream_connected"), Some(0.0));
    assert_eq!(reconnected.1["intake"], "ok", "{}", reconnected.1);
}

#[tokio::test]
async fn a_store_that_cannot_take_the_write_lock_makes_the_daemon_unready() {
    let app = spawn_app_with(poll_mode()).await;
    app.dispatch().await;
    let before = readyz(&app).await;
    // Another process holds the store's write lock (longer than the probe waits).
    let holder = rusqlite::Connection::open(&app.settings.store.path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let locked = readyz(&app).await;
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let released = loop {
        let now = readyz(&app).await;
        if now.0 == 200 || tokio::time::Instant::now() > deadline {
            break now;
        }
    };

    assert_eq!(before.0, 200, "{}", before.1);
    assert_eq!(locked.0, 503, "{}", locked.1);
    assert_eq!(locked.1["ready"], false);
    assert!(mentions(&locked.1, "store: "), "{}", locked.1);
    assert_eq!(released.0, 200, "{}", released.1);
}

#[tokio::test]
async fn a_held_number_is_listed_by_readyz_without_making_the_daemon_unready() {
    let app = spawn_app_with(poll_mode()).await;
    app.dispatch().await;
    let number = app.settings.whatsapp.default_phone_number_id.clone();
    let until = app.clock.now() + chrono::Duration::minutes(10);

    app.pipeline
        .dispatcher
        .hold_number(&number, until, "quality rating red".into());
    let (status, body) = readyz(&app).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["held"][0]["number"], json!(number), "{body}");
    assert_eq!(body["held"][0]["reason"], "quality rating red", "{body}");
    assert!(mentions(&body, &format!("held: {number}")), "{body}");
}

#[tokio::test]
async fn the_webhook_port_serves_only_the_webhook_and_the_observe_port_the_rest() {
    let app = spawn_app_with(poll_mode()).await;
    let webhook = webhook_base(&app);

    let mut on_webhook_port = Vec::new();
    let mut on_observe_port = Vec::new();
    for path in ["/metrics", "/healthz", "/readyz"] {
        on_webhook_port.push(get_from(&app, &webhook, path).await.0.as_u16());
        on_observe_port.push(get(&app, path).await.0.as_u16());
    }
    let (verify, challenge) = get_from(
        &app,
        &webhook,
        &format!(
            "{}?hub.mode=subscribe&hub.verify_token={}&hub.challenge=42",
            app.settings.webhook.path,
            app.wa.verify_token()
        ),
    )
    .await;

    assert_eq!(on_webhook_port, [404, 404, 404]);
    assert_eq!(on_observe_port, [200, 200, 200]);
    assert_eq!((verify.as_u16(), challenge.as_str()), (200, "42"));
}

#[tokio::test]
async fn stream_replay_lag_counts_from_the_last_handled_event() {
    let app = spawn_app_with(stream_mode()).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    intake.step(&app.pipeline).await.unwrap();
    let before_any_event = metrics(&app).await;
    app.queue(json!([template("+16505551003")])).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while intake.step(&app.pipeline).await.unwrap().events == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no event arrived");
    }

    app.clock.shift(chrono::Duration::seconds(120));
    let later = metrics(&app).await;

    assert_eq!(
        sample(&before_any_event, "sfwa_stream_replay_lag_seconds"),
        Some(0.0)
    );
    let lag = sample(&later, "sfwa_stream_replay_lag_seconds").unwrap();
    assert!((120.0..130.0).contains(&lag), "{lag}");
}

#[tokio::test]
async fn readiness_names_salesforce_credentials_that_are_refused() {
    let app = spawn_app_with(Options {
        tune: Box::new(|s| {
            s.intake.mode = IntakeMode::Poll;
            s.salesforce.auth = AuthMode::ClientCredentials;
            s.salesforce.client_secret = Secret::new("not-the-secret");
        }),
        ..Options::default()
    })
    .await;

    assert!(worker::dispatch_step(&app.pipeline).await.is_err());
    let (status, body) = readyz(&app).await;

    assert_eq!(status, 200, "the store still takes Meta's webhooks");
    assert!(
        mentions(&body, "salesforce: the last login or call was refused"),
        "{body}"
    );
}

// ---- secrets never logged --------------------------------------------------------------------

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The capturing subscriber is the process's (see below), so every thread's events are captured,
/// the store's blocking threads included. The simulators' own logs are filtered out: they are not
/// the daemon.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_the_logs_through_logins_sends_webhooks_relogins_and_the_stream() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,sfwa_sim=off"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Process-wide, not this thread's default: a thread-local default misses events whose
    // callsites other tests' threads registered first (tracing caches interest per callsite), which
    // made this test fail when run beside the rest of its module. No other test sets a subscriber,
    // and other tests' logs in the capture cannot hold this test's freshly generated secrets.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets a subscriber");

    // JWT bearer login, a send, status webhooks, a forged webhook, the verification handshake.
    let app = spawn_app_with(stream_mode()).await;
    let ids = app
        .queue(json!([template("+16505551004"), {"To_Phone__c": "+16505551005", "Message_Type__c": "Text", "Body__c": "hi"}]))
        .await;
    app.dispatch().await;
    app.status_after_webhooks(&ids[0], "Read").await;
    let (inbound, _) = signed_inbound(&app, "wamid.SECRETS1");
    let forged = app
        .post_webhook(&inbound, &signature(&inbound, "forged"))
        .await;
    // A customer's file: Meta's signed, token-bound URL is fetched, the bytes go to Salesforce.
    let (media_id, sha256) = crate::media::upload(&app, b"a photo, signed", "image/jpeg").await;
    let image = json!({"id": media_id, "mime_type": "image/jpeg", "sha256": sha256});
    crate::media::customer_sends(&app, "wamid.SECRETS2", "image", image).await;
    app.flush().await;
    let copied = sfwa::pipeline::media::media_step(&app.pipeline)
        .await
        .unwrap();
    let verify_url = app.wa.webhook_url().unwrap();
    let verified = app
        .http
        .get(&verify_url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", app.wa.verify_token()),
            ("hub.challenge", "42"),
        ])
        .send()
        .await
        .unwrap()
        .status();
    // A Salesforce 401: every session expires, the next call logs in again.
    app.org_control("sessions/expire", json!({})).await;
    app.dispatch().await;
    // The stream, with a fresh login after the expiry.
    app.org_control("sessions/expire", json!({})).await;
    let mut intake = StreamIntake::open(&app.pipeline.intake).await.unwrap();
    app.queue(json!([template("+16505551006")])).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no event arrived");
        match intake.step(&app.pipeline).await {
            Ok(step) if step.events > 0 => break,
            Ok(_) => {}
            // The expired session: 401 on the handshake, then a new login.
            Err(error) => {
                let _ = intake.recover(&app.pipeline, error).await;
            }
        }
    }
    intake.disconnect().await;
    // Client credentials, and a refresh token.
    let with_client_credentials = spawn_app_with(Options {
        tune: Box::new(|s| s.salesforce.auth = AuthMode::ClientCredentials),
        ..Options::default()
    })
    .await;
    with_client_credentials.dispatch().await;
    let refresh_token = app.org_control("refresh-tokens", json!({})).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (org_url, client_id, client_secret, token) = (
        app.org.url(),
        app.org.config().client_id.clone(),
        app.org.config().client_secret.clone(),
        refresh_token.clone(),
    );
    let with_refresh_token = spawn_app_with(Options {
        tune: Box::new(move |s| {
            s.salesforce.auth = AuthMode::RefreshToken;
            s.salesforce.login_url = org_url;
            s.salesforce.client_id = client_id;
            s.salesforce.client_secret = Secret::new(client_secret);
            s.salesforce.refresh_token = Secret::new(token);
        }),
        ..Options::default()
    })
    .await;
    with_refresh_token.dispatch().await;
    let logs = captured.text();

    assert_eq!((forged, verified.as_u16()), (401, 200));
    assert_eq!(copied.saved, 1, "{copied:?}");
    assert!(
        !logs.contains("whatsapp_business/attachments"),
        "a signed media URL reached the logs"
    );
    for expected in ["session expired; logging in again", "webhook refused"] {
        assert!(logs.contains(expected), "the capture missed {expected:?}");
    }
    let mut secrets: Vec<(String, String)> = Vec::new();
    for test_app in [&app, &with_client_credentials, &with_refresh_token] {
        secrets.push((
            "WhatsApp access token".into(),
            test_app.wa.access_token().to_string(),
        ));
        secrets.push(("app secret".into(), test_app.wa.app_secret().to_string()));
        secrets.push((
            "verify token".into(),
            test_app.wa.verify_token().to_string(),
        ));
        secrets.push((
            "Salesforce client secret".into(),
            test_app.org.config().client_secret.clone(),
        ));
        // The refresh-token daemon logs in to `app`'s org: its own org issues nothing.
        for token in test_app.org.state().sessions().issued_tokens() {
            secrets.push(("Salesforce access token".into(), token.clone()));
        }
        let pem = std::fs::read_to_string(
            test_app
                .settings
                .salesforce
                .private_key_path
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        {
            secrets.push(("private key PEM line".into(), line.to_string()));
        }
    }
    secrets.push(("refresh token".into(), refresh_token));
    let issued = |t: &TestApp| t.org.state().sessions().issued_tokens().len();
    // JWT, re-login after each expiry, the refresh-token daemon; and client credentials.
    assert!(issued(&app) >= 4, "{}", issued(&app));
    assert!(issued(&with_client_credentials) >= 1);
    assert!(logs.len() > 10_000, "suspiciously little was captured");
    for (what, secret) in secrets {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        assert!(!logs.contains(&secret), "the {what} reached the logs");
    }
}
