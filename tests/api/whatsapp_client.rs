//! sfwa's Cloud API client against the WhatsApp simulator over real HTTP: what arrives at "Meta",
//! how Meta's refusals are classified, and how transport failures are told apart.

use std::time::Duration;

use serde_json::{json, Value};
use sfwa::domain::ids::CustomerId;
use sfwa::domain::message::{MediaKind, MediaSource, MessageKind, OutboundMessage};
use sfwa::domain::phone::E164;
use sfwa::domain::sf_id::SfId;
use sfwa::domain::template::TemplateParameters;
use sfwa::whatsapp::{Action, Http2, SendConnections, SendError, WhatsAppClient, WhatsAppConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::whatsapp_support::{spawn_sim, TestSim, CUSTOMER, DEADLINE};

const RECORD_ID: &str = "a005g0000012345AAA";

fn client_for(api_base: &str, token: &str, timeout: Duration) -> WhatsAppClient {
    WhatsAppClient::new(
        reqwest::Client::new(),
        WhatsAppConfig {
            api_base: api_base.to_owned(),
            api_version: "v23.0".to_owned(),
            access_token: token.to_owned(),
            timeout,
        },
    )
}

fn client(t: &TestSim) -> WhatsAppClient {
    client_for(&t.sim.url(), t.sim.access_token(), DEADLINE)
}

fn message(kind: MessageKind) -> OutboundMessage {
    OutboundMessage {
        record_id: SfId::parse(RECORD_ID).expect("valid id"),
        to: sfwa::domain::ids::CustomerId::from_phone(
            &E164::from_wa_id(CUSTOMER).expect("valid phone"),
        ),
        business_number_id: None,
        kind,
        scheduled_at: None,
    }
}

fn template(name: &str, parameters: &str) -> OutboundMessage {
    message(MessageKind::Template {
        name: name.into(),
        language: "en_US".into(),
        parameters: TemplateParameters::parse(Some(parameters)).expect("parameters"),
    })
}

/// The simulator's record of the message with this wamid.
async fn recorded(t: &TestSim, wamid: &str) -> Value {
    let listed = t
        .control_get(&format!("/__sim/messages?wamid={wamid}"))
        .await;
    listed["messages"][0].clone()
}

fn meta_error(result: Result<sfwa::whatsapp::Accepted, SendError>) -> sfwa::whatsapp::MetaError {
    match result {
        Err(SendError::Meta(error)) => error,
        other => panic!("expected Meta's error, got {other:?}"),
    }
}

#[tokio::test]
async fn text_is_accepted_and_meta_records_it_with_the_record_id_as_callback_data() {
    // Arrange
    let mut t = spawn_sim(|_| {}).await;
    t.customer_writes(CUSTOMER, "hi").await;

    // Act
    let accepted = client(&t)
        .send(
            t.sim.phone_number_id(),
            &message(MessageKind::Text {
                body: "Hello".into(),
            }),
        )
        .await
        .expect("accepted");

    // Assert
    assert!(accepted.wamid.as_str().starts_with("wamid."));
    assert_eq!(
        accepted.wa_id.as_ref().map(CustomerId::as_str),
        Some(CUSTOMER)
    );
    let record = recorded(&t, accepted.wamid.as_str()).await;
    assert_eq!(record["type"], "text");
    assert_eq!(record["wa_id"], CUSTOMER);
    assert_eq!(record["biz_opaque_callback_data"], RECORD_ID);
    assert_eq!(
        record["request"]["text"],
        json!({"preview_url": false, "body": "Hello"})
    );
    let sent = t.hooks.status_of(accepted.wamid.as_str(), "sent").await;
    assert_eq!(sent["biz_opaque_callback_data"], RECORD_ID);
}

/// Sends at once over `http2`'s connections; every one must be accepted.
async fn sends_at_once(t: &TestSim, http2: Http2, count: usize) -> Vec<usize> {
    let connections = std::sync::Arc::new(SendConnections::new(http2).expect("the clients build"));
    let client = client(t).with_send_connections(connections.clone());
    let phone = t.sim.phone_number_id();
    let hello = template("hello_world", "");
    let sends = (0..count).map(|_| client.send(phone, &hello));
    for accepted in futures_util::future::join_all(sends).await {
        accepted.expect("accepted");
    }
    connections.in_flight()
}

#[tokio::test]
async fn sends_go_as_http2_streams_many_at_once_on_one_connection() {
    let t = spawn_sim(|_| {}).await;

    // Prior knowledge: a server that did not speak HTTP/2 in clear text would refuse every send.
    let opened = sends_at_once(&t, Http2::Always, 40).await;

    assert_eq!(opened, [0], "40 sends fit in one connection's 100 streams");
}

#[tokio::test]
async fn sends_go_over_http1_when_http2_is_off_or_not_offered() {
    let t = spawn_sim(|_| {}).await;

    assert_eq!(sends_at_once(&t, Http2::Off, 10).await, [0]);
    // `auto` over plain http: no TLS, so no ALPN offer of HTTP/2.
    assert_eq!(sends_at_once(&t, Http2::Auto, 10).await, [0]);
}

#[tokio::test]
async fn templates_with_body_header_and_button_parameters_pass_metas_validation() {
    let t = spawn_sim(|_| {}).await;
    let client = client(&t);
    let phone = t.sim.phone_number_id();

    let hello = client
        .send(phone, &template("hello_world", ""))
        .await
        .expect("hello_world");
    let reminder = client
        .send(
            phone,
            &template("appointment_reminder", r#"["Ana", "10:30"]"#),
        )
        .await
        .expect("appointment_reminder");
    let order = client
        .send(
            phone,
            &template(
                "order_update",
                r#"{"header":{"type":"image","link":"https://x.test/box.png"},"body":["Jessica"],
                    "buttons":[{"sub_type":"url","index":0,"text":"ORD-1"}]}"#,
            ),
        )
        .await
        .expect("order_update");

    assert_eq!(
        recorded(&t, hello.wamid.as_str()).await["template_name"],
        "hello_world"
    );
    assert_eq!(
        recorded(&t, reminder.wamid.as_str()).await["template_name"],
        "appointment_reminder"
    );
    let order = recorded(&t, order.wamid.as_str()).await;
    assert_eq!(order["template_name"], "order_update");
    assert_eq!(order["template_language"], "en_US");
    assert_eq!(order["biz_opaque_callback_data"], RECORD_ID);
    assert_eq!(order["request"]["template"]["components"][2]["index"], "0");
}

#[tokio::test]
async fn media_is_sent_by_link_with_caption_and_filename() {
    let mut t = spawn_sim(|_| {}).await;
    t.customer_writes(CUSTOMER, "send me the quote").await;

    let accepted = client(&t)
        .send(
            t.sim.phone_number_id(),
            &message(MessageKind::Media {
                kind: MediaKind::Document,
                source: MediaSource::Link("https://files.test/quote.pdf".into()),
                caption: Some("Your quote".into()),
                filename: Some("quote.pdf".into()),
            }),
        )
        .await
        .expect("accepted");

    let record = recorded(&t, accepted.wamid.as_str()).await;
    assert_eq!(record["type"], "document");
    assert_eq!(
        record["request"]["document"],
        json!({"link": "https://files.test/quote.pdf", "caption": "Your quote", "filename": "quote.pdf"})
    );
    assert_eq!(record["biz_opaque_callback_data"], RECORD_ID);
}

#[tokio::test]
async fn wrong_template_parameter_count_is_132000_and_fails_the_record() {
    let t = spawn_sim(|_| {}).await;

    let error = meta_error(
        client(&t)
            .send(
                t.sim.phone_number_id(),
                &template("appointment_reminder", r#"["Ana"]"#),
            )
            .await,
    );

    assert_eq!(error.code, 132000);
    assert_eq!(error.http_status, 400);
    assert_eq!(error.action(), Action::Fail);
    assert_eq!(error.error_code(), "WA_132000");
    assert!(error.details.is_some());
    assert!(error
        .rep_message()
        .starts_with("The number of template parameters does not match"));
}

#[tokio::test]
async fn unknown_template_is_132001_and_fails_the_record() {
    let t = spawn_sim(|_| {}).await;

    let error = meta_error(
        client(&t)
            .send(t.sim.phone_number_id(), &template("no_such_template", ""))
            .await,
    );

    assert_eq!(error.code, 132001);
    assert_eq!(error.action(), Action::Fail);
}

#[tokio::test]
async fn an_expired_token_is_190_and_holds_all_sending() {
    let t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/faults", &json!({"token_expired": true}))
        .await;

    let error = meta_error(
        client(&t)
            .send(t.sim.phone_number_id(), &template("hello_world", ""))
            .await,
    );

    assert_eq!(error.code, 190);
    assert_eq!(error.subcode, Some(463));
    assert_eq!(error.http_status, 401);
    assert_eq!(error.action(), Action::HoldAll);
}

#[tokio::test]
async fn metas_injected_server_errors_are_retried() {
    let t = spawn_sim(|_| {}).await;
    t.control_post("/__sim/faults", &json!({"error_rate": 1.0}))
        .await;

    let error = meta_error(
        client(&t)
            .send(t.sim.phone_number_id(), &template("hello_world", ""))
            .await,
    );

    assert!([131000, 131016].contains(&error.code), "{error:?}");
    assert_eq!(error.action(), Action::Retry);
}

#[tokio::test]
async fn the_phone_number_endpoint_reports_name_number_and_quality() {
    let t = spawn_sim(|_| {}).await;

    let info = client(&t)
        .phone_number(t.sim.phone_number_id())
        .await
        .expect("info");

    assert_eq!(
        info.verified_name.as_deref(),
        Some(t.sim.config().verified_name.as_str())
    );
    assert_eq!(
        info.display_phone_number
            .as_deref()
            .map(|n| n.chars().filter(char::is_ascii_digit).collect::<String>()),
        Some(t.sim.config().display_phone_number.clone())
    );
    assert_eq!(info.quality_rating.as_deref(), Some("GREEN"));
}

#[tokio::test]
async fn a_closed_port_means_the_message_was_not_sent() {
    // Arrange: a port that was free a moment ago and has no listener now.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = client_for(&format!("http://{addr}"), "token", DEADLINE);

    // Act
    let result = client.send("123", &template("hello_world", "")).await;

    // Assert
    assert!(matches!(result, Err(SendError::NotSent(_))), "{result:?}");
}

#[tokio::test]
async fn a_server_that_reads_the_request_and_never_answers_leaves_the_outcome_unknown() {
    // Arrange: accepts, reads whatever arrives, never answers (Meta got it, the answer was lost).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (read_tx, mut read_rx) = tokio::sync::mpsc::unbounded_channel();
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 16 * 1024];
            let n = socket.read(&mut buffer).await.unwrap_or(0);
            let _ = read_tx.send(n);
            open.push(socket); // keep it open: no answer, no close
        }
    });
    let client = client_for(
        &format!("http://{addr}"),
        "token",
        Duration::from_millis(300),
    );

    // Act
    let result = client.send("123", &template("hello_world", "")).await;

    // Assert
    let read = tokio::time::timeout(DEADLINE, read_rx.recv())
        .await
        .expect("request arrived");
    assert!(read.unwrap_or(0) > 0, "the request was written");
    assert!(
        matches!(result, Err(SendError::OutcomeUnknown(_))),
        "{result:?}"
    );
    assert!(result.as_ref().is_err_and(SendError::outcome_unknown));
    silent.abort();
}

#[tokio::test]
async fn a_server_that_closes_the_connection_after_reading_leaves_the_outcome_unknown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let dropper = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 16 * 1024];
            let _ = socket.read(&mut buffer).await;
            drop(socket);
        }
    });
    let client = client_for(&format!("http://{addr}"), "token", DEADLINE);

    let result = client.send("123", &template("hello_world", "")).await;

    assert!(
        matches!(result, Err(SendError::OutcomeUnknown(_))),
        "{result:?}"
    );
    dropper.abort();
}

#[test]
fn the_access_token_never_appears_in_debug_output() {
    let client = client_for(
        "https://graph.facebook.com",
        "EAAGsecret-token-value",
        DEADLINE,
    );

    let printed = format!("{client:?} {client:#?}");

    assert!(!printed.contains("EAAGsecret-token-value"), "{printed}");
    assert!(printed.contains("<redacted>"));
}
