//! The wire floor: the CPU this machine spends on a message's HTTP alone, through the daemon's
//! own HTTP stacks with no work behind them — what the daemon's CPU per message is read against
//! (docs/performance.md, twenty-fifth measurement).
//!
//! `cargo run --release --example wire_floor -- [COUNT]` (default 20,000). Each figure is the CPU
//! of this process alone (`getrusage`); the other side of the wire is a child process (this
//! binary again), as Meta is:
//! - **webhook, no work**: COUNT status webhooks, one per POST over 32 connections, served by
//!   `webhook::listener::serve` (the daemon's HTTP/1.1 server and limits) with a handler that
//!   answers 200 at once;
//! - **webhook, signed and parsed**: the same, the handler checking the signature
//!   (`webhook::verify_signature`) and parsing the payload (`webhook::parse`) first — what every
//!   webhook costs before the store;
//! - **send**: COUNT template sends, 200 in flight, by `whatsapp::WhatsAppClient` over
//!   `SendConnections` (HTTP/2, as the daemon sends), to a server answering as the Graph API.
//!
//! A message costs at least one send and three status webhooks (sent, delivered, read): the
//! last line adds them up. Loopback only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::json;
use sfwa::domain::ids::CustomerId;
use sfwa::domain::message::{MessageKind, OutboundMessage};
use sfwa::domain::phone::E164;
use sfwa::domain::sf_id::SfId;
use sfwa::domain::template::TemplateParameters;
use sfwa::whatsapp::{Http2, SendConnections, WhatsAppClient, WhatsAppConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[path = "support/posts.rs"]
mod posts;

const CONNECTIONS: usize = 32;
const SENDS_IN_FLIGHT: usize = 200;
const APP_SECRET: &str = "wire-floor-app-secret";
const NUMBER: &str = "106540352242922";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("post") => return post_all(&args[1], args[2].parse()?).await,
        Some("graph") => return serve_graph().await,
        _ => {}
    }
    let count: usize = args
        .first()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let bare = webhook_floor(count, Router::new().route("/webhook", post(answer_at_once))).await?;
    let parsed = webhook_floor(
        count,
        Router::new().route("/webhook", post(check_and_parse)),
    )
    .await?;
    let send = send_floor(count).await?;
    println!("webhook, no work:           {bare:.4} ms CPU per POST");
    println!("webhook, signed and parsed: {parsed:.4} ms CPU per POST");
    println!("send over HTTP/2:           {send:.4} ms CPU per send");
    println!(
        "a message's wire floor (1 send + 3 webhooks): {:.4} ms bare, {:.4} ms signed and parsed",
        send + 3.0 * bare,
        send + 3.0 * parsed
    );
    Ok(())
}

/// This process's CPU time (user + system) so far.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

async fn answer_at_once(_body: Bytes) -> StatusCode {
    StatusCode::OK
}

async fn check_and_parse(headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !sfwa::webhook::verify_signature(APP_SECRET, &body, signature) {
        return StatusCode::UNAUTHORIZED;
    }
    match sfwa::webhook::parse(&body) {
        Ok(parsed) if !parsed.events.is_empty() => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Serves `router` as the daemon serves webhooks while a child process posts `count` status
/// webhooks to it; this process's CPU per POST, in ms.
async fn webhook_floor(count: usize, router: Router) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let stop = CancellationToken::new();
    let server = tokio::spawn(sfwa::webhook::listener::serve(
        listener,
        router,
        sfwa::webhook::listener::LIMITS,
        stop.clone(),
    ));
    let before = cpu_time();
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .args(["post", &url, &count.to_string()])
        .status()
        .await?;
    let spent = cpu_time() - before;
    stop.cancel();
    let _ = server.await;
    anyhow::ensure!(status.success(), "the load generator failed");
    Ok(spent.as_secs_f64() * 1e3 / count as f64)
}

/// The child: `count` signed status webhooks to `url` over [`CONNECTIONS`] connections; fails
/// unless every one is answered 200.
async fn post_all(url: &str, count: usize) -> anyhow::Result<()> {
    let bodies: Arc<Vec<(String, String)>> = Arc::new(
        (0..count)
            .map(|i| {
                let body = status_body(i).to_string();
                (
                    sfwa_sim::whatsapp::signature(body.as_bytes(), APP_SECRET),
                    body,
                )
            })
            .collect(),
    );
    let started = Instant::now();
    let (_, refused) = posts::post_signed(url, bodies, CONNECTIONS).await?;
    anyhow::ensure!(
        refused == 0,
        "{refused} of {count} POSTs were not answered 200"
    );
    eprintln!("{count} POSTs in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A `delivered` status of its own message, as Meta posts one.
fn status_body(i: usize) -> serde_json::Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": NUMBER},
            "statuses": [{
                "id": format!("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI{i:020}"),
                "status": "delivered",
                "timestamp": "1764400000",
                "recipient_id": "16505551234",
                "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"},
            }],
        },
    }]}]})
}

/// Sends `count` templates, [`SENDS_IN_FLIGHT`] at a time, to a child process answering as the
/// Graph API; this process's CPU per send, in ms.
async fn send_floor(count: usize) -> anyhow::Result<f64> {
    let mut graph = tokio::process::Command::new(std::env::current_exe()?)
        .arg("graph")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut line = String::new();
    let stdout = graph.stdout.take().expect("piped");
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut line)
        .await?;
    let client = WhatsAppClient::new(
        reqwest::Client::new(),
        WhatsAppConfig {
            api_base: format!("http://{}", line.trim()),
            api_version: "v25.0".into(),
            access_token: "wire-floor-token".into(),
            timeout: Duration::from_secs(10),
        },
    )
    .with_send_connections(Arc::new(SendConnections::new(Http2::Always)?));
    let message = Arc::new(OutboundMessage {
        record_id: SfId::parse("a005g0000012345AAA")?,
        to: CustomerId::from_phone(&E164::parse("+16505551234", None)?),
        business_number_id: None,
        kind: MessageKind::Template {
            name: "order_update".into(),
            language: "en_US".into(),
            parameters: TemplateParameters::default(),
        },
        scheduled_at: None,
    });
    let in_flight = Arc::new(tokio::sync::Semaphore::new(SENDS_IN_FLIGHT));
    let before = cpu_time();
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..count {
        let permit = in_flight.clone().acquire_owned().await?;
        let (client, message) = (client.clone(), message.clone());
        sends.spawn(async move {
            let accepted = client.send(NUMBER, &message).await;
            drop(permit);
            accepted.is_ok()
        });
    }
    let mut failed = 0;
    while let Some(sent) = sends.join_next().await {
        failed += usize::from(!sent?);
    }
    let spent = cpu_time() - before;
    anyhow::ensure!(failed == 0, "{failed} of {count} sends failed");
    Ok(spent.as_secs_f64() * 1e3 / count as f64)
}

/// The child: answers every `POST /v25.0/{number}/messages` as the Graph API accepts a send, over
/// HTTP/2 in clear text; prints its address first.
async fn serve_graph() -> anyhow::Result<()> {
    let answer = json!({"messaging_product": "whatsapp",
        "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "message_status": "accepted"}]})
    .to_string();
    let router = Router::new().route(
        "/v25.0/{number}/messages",
        post(move |_body: Bytes| {
            let answer = answer.clone();
            async move { ([("content-type", "application/json")], answer) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}
