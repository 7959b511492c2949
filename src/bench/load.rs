//! The webhook load generator, `sfwa bench load --spec FILE` (hidden): run by `bench webhooks` as
//! its own process so that the daemon's CPU is measured alone. It reads ready-made bodies (built
//! here by [`status_body`] / [`inbound_body`] in Meta's shapes), signs each once up front
//! (`X-Hub-Signature-256`: HMAC-SHA256 of the raw body under the app secret), then POSTs them, one
//! update per POST, over `connections` concurrent connections — as fast as answered, or paced to
//! `rate` POSTs/s — and prints one JSON line: rate, p50/p99 of the POSTs, non-200 answers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use super::report::quantile;

#[derive(clap::Args, Clone, Debug)]
pub struct LoadArgs {
    /// The JSON [`LoadSpec`] file `bench webhooks` wrote.
    #[arg(long)]
    pub spec: PathBuf,
}

/// What to post, where, how.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadSpec {
    pub url: String,
    pub app_secret: String,
    pub connections: usize,
    /// POSTs per second in all; `None`: as fast as the daemon answers.
    pub rate: Option<f64>,
    pub bodies: Vec<String>,
}

/// What the load generator saw.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LoadResult {
    pub posts: usize,
    /// Answers other than 200 (no answer at all included).
    pub non_200: usize,
    /// Indices into `bodies` of the POSTs not answered 200 (their events need not reach Salesforce).
    pub refused: Vec<usize>,
    pub elapsed_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The generator's own CPU time (user + system) while it posted, in ms.
    #[serde(default)]
    pub cpu_ms: f64,
}

/// Meta's `X-Hub-Signature-256` value for `body`.
pub fn sign(body: &[u8], app_secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `whatsapp_business_account` envelope around one `messages` change.
fn envelope(value: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    })
    .to_string()
}

/// Where a webhook is about: a business number's id and display digits.
pub struct Number<'a> {
    pub id: &'a str,
    pub display: &'a str,
}

/// One status update (`delivered`, `read`) of a message sent from `number` to `recipient`.
pub fn status_body(
    number: &Number,
    wamid: &str,
    recipient: &str,
    status: &str,
    timestamp: i64,
) -> String {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": number.display, "phone_number_id": number.id},
        "statuses": [{
            "id": wamid,
            "status": status,
            "timestamp": timestamp.to_string(),
            "recipient_id": recipient,
            "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"},
        }],
    }))
}

/// One text message from customer `from` (digits) with id `wamid` to `number`.
pub fn inbound_body(
    number: &Number,
    wamid: &str,
    from: &str,
    text: &str,
    timestamp: i64,
) -> String {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": number.display, "phone_number_id": number.id},
        "contacts": [{"profile": {"name": "Bench Customer"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": timestamp.to_string(), "type": "text", "text": {"body": text}}],
    }))
}

/// `sfwa bench load`: posts the spec's bodies and prints the [`LoadResult`] as one JSON line.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let spec: LoadSpec = serde_json::from_slice(&std::fs::read(&args.spec)?)?;
    let result = post_all(spec).await?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// One POST's outcome: its index, whether it was answered 200, how long it took.
type Outcome = (usize, bool, Duration);

async fn post_all(spec: LoadSpec) -> anyhow::Result<LoadResult> {
    let target = Target::from_url(&spec.url)?;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        spec.bodies
            .iter()
            .map(|body| target.request(body, &sign(body.as_bytes(), &spec.app_secret)))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = super::procs::cpu_ms(std::process::id())?;
    let started = tokio::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..spec.connections.max(1) {
        let (next, requests, target) = (next.clone(), requests.clone(), target.clone());
        let rate = spec.rate;
        workers.push(tokio::spawn(async move {
            let mut connection = None;
            let mut outcomes: Vec<Outcome> = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(index) else {
                    break;
                };
                if let Some(rate) = rate {
                    tokio::time::sleep_until(
                        started + Duration::from_secs_f64(index as f64 / rate),
                    )
                    .await;
                }
                let at = Instant::now();
                let ok = target
                    .post(&mut connection, request)
                    .await
                    .is_ok_and(|status| status == 200);
                outcomes.push((index, ok, at.elapsed()));
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::with_capacity(requests.len());
    for worker in workers {
        outcomes.extend(worker.await?);
    }
    let elapsed = started.elapsed();
    let mut result = summarise(&outcomes, elapsed);
    result.cpu_ms = super::procs::cpu_ms(std::process::id())? - cpu0;
    Ok(result)
}

/// Where the POSTs go. Each worker keeps one HTTP/1.1 keep-alive connection and opens a new one
/// after an error or an answer that closes it. The requests are written out whole before the
/// clock starts and each answer is read in the worker's own task, as `wrk` does: the generator
/// should cost little beside the daemon it loads, and every microsecond it spends per POST is in
/// the latency it reports. (On hyper's client connections, each driven by a task of its own, the
/// generator took 24–27 % of a core at 14,000–17,000 POSTs/s; this way 16–21 %.)
#[derive(Clone)]
struct Target {
    addr: String,
    authority: String,
    path: String,
}

/// What an answer's head says: enough to read its body and reuse its connection.
#[derive(Debug, PartialEq, Eq)]
struct AnswerHead {
    status: u16,
    /// Bytes of the head, up to and including its blank line.
    head_len: usize,
    /// `content-length`.
    body_len: usize,
    keep_alive: bool,
}

/// One keep-alive connection and the bytes of its answer read so far.
struct Connection {
    stream: tokio::net::TcpStream,
    read: Vec<u8>,
}

/// Longest answer head the generator reads (the daemon's are a few hundred bytes).
const MAX_ANSWER_HEAD: usize = 16 * 1024;

impl Target {
    fn from_url(url: &str) -> anyhow::Result<Target> {
        let url = url::Url::parse(url)?;
        anyhow::ensure!(
            url.scheme() == "http",
            "the load generator posts over http only"
        );
        let host = url.host_str().context("no host in the webhook URL")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        Ok(Target {
            addr: format!("{host}:{port}"),
            authority: format!("{host}:{port}"),
            path,
        })
    }

    /// The whole HTTP/1.1 request that POSTs `body` signed with `signature`.
    fn request(&self, body: &str, signature: &str) -> Vec<u8> {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             x-hub-signature-256: {signature}\r\ncontent-length: {}\r\n\r\n",
            self.path,
            self.authority,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body.as_bytes());
        request
    }

    async fn connect(&self) -> anyhow::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            read: Vec::with_capacity(1024),
        })
    }

    /// One POST on `connection` (opened first if there is none); the answer's status. The
    /// connection is dropped after an error or an answer that closes it.
    async fn post(
        &self,
        connection: &mut Option<Connection>,
        request: &[u8],
    ) -> anyhow::Result<u16> {
        let open = match connection {
            Some(open) if open.is_open() => open,
            _ => connection.insert(self.connect().await?),
        };
        let answered = open.exchange(request).await;
        if !answered.as_ref().is_ok_and(|head| head.keep_alive) {
            *connection = None;
        }
        answered.map(|head| head.status)
    }
}

impl Connection {
    /// Whether the daemon has not closed the connection while it was idle (a server may close a
    /// keep-alive connection between requests; a POST written to it would be lost).
    fn is_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Writes `request`, reads its whole answer; its head.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<AnswerHead> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await?;
        self.read.clear();
        let head = loop {
            if self.stream.read_buf(&mut self.read).await? == 0 {
                anyhow::bail!("the connection closed before the answer's head");
            }
            if let Some(head) = answer_head(&self.read)? {
                break head;
            }
            anyhow::ensure!(
                self.read.len() <= MAX_ANSWER_HEAD,
                "an answer head over {MAX_ANSWER_HEAD} bytes"
            );
        };
        while self.read.len() < head.head_len + head.body_len {
            if self.stream.read_buf(&mut self.read).await? == 0 {
                anyhow::bail!("the connection closed before the answer's body");
            }
        }
        Ok(head)
    }
}

/// An HTTP/1.1 answer's head in `read`, once it is all there. Answers without a length (chunked)
/// are refused: the daemon's never are.
fn answer_head(read: &[u8]) -> anyhow::Result<Option<AnswerHead>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = answer.parse(read)? else {
        return Ok(None);
    };
    let status = answer.code.context("an answer without a status")?;
    let mut length = None;
    let mut keep = answer.version == Some(1);
    for header in answer.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            length = Some(std::str::from_utf8(header.value)?.trim().parse::<usize>()?);
        } else if header.name.eq_ignore_ascii_case("connection") {
            keep = !header.value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok(Some(AnswerHead {
        status,
        head_len,
        body_len: length.context("an answer without a content-length")?,
        keep_alive: keep,
    }))
}

/// The result of all POSTs.
fn summarise(outcomes: &[Outcome], elapsed: Duration) -> LoadResult {
    let mut millis: Vec<f64> = outcomes
        .iter()
        .map(|(_, _, took)| took.as_secs_f64() * 1000.0)
        .collect();
    millis.sort_by(f64::total_cmp);
    let mut refused: Vec<usize> = outcomes
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(index, _, _)| *index)
        .collect();
    refused.sort_unstable();
    LoadResult {
        posts: outcomes.len(),
        non_200: refused.len(),
        refused,
        elapsed_s: elapsed.as_secs_f64(),
        p50_ms: quantile(&millis, 0.50),
        p99_ms: quantile(&millis, 0.99),
        max_ms: millis.last().copied().unwrap_or(f64::NAN),
        cpu_ms: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NUMBER: Number = Number {
        id: "106540352242922",
        display: "15550001234",
    };

    #[test]
    fn a_status_body_is_signed_as_the_daemon_checks_it_and_parses_as_one_status() {
        // Arrange
        let body = status_body(
            &NUMBER,
            "wamid.HBgLMTY1MDU1NTAwMDEVAgARGBI",
            "16505550001",
            "delivered",
            1_700_000_000,
        );

        // Act
        let signature = sign(body.as_bytes(), SECRET);

        // Assert
        assert!(sfwa::webhook::verify_signature(
            SECRET,
            body.as_bytes(),
            Some(&signature)
        ));
        assert!(!sfwa::webhook::verify_signature(
            "another secret",
            body.as_bytes(),
            Some(&signature)
        ));
        let parsed: Value = serde_json::from_str(&body).unwrap();
        let value = &parsed["entry"][0]["changes"][0]["value"];
        assert_eq!(value["statuses"][0]["status"], "delivered");
        assert_eq!(value["metadata"]["phone_number_id"], NUMBER.id);
    }

    #[test]
    fn an_inbound_body_is_one_text_message_from_the_customer_signed_as_the_daemon_checks_it() {
        // Arrange
        let body = inbound_body(
            &NUMBER,
            "wamid.bench-1",
            "16505550001",
            "hello",
            1_700_000_000,
        );

        // Act
        let signature = sign(body.as_bytes(), SECRET);

        // Assert
        assert!(sfwa::webhook::verify_signature(
            SECRET,
            body.as_bytes(),
            Some(&signature)
        ));
        let parsed: Value = serde_json::from_str(&body).unwrap();
        let message = &parsed["entry"][0]["changes"][0]["value"]["messages"][0];
        assert_eq!(message["id"], "wamid.bench-1");
        assert_eq!(message["from"], "16505550001");
        assert_eq!(message["text"]["body"], "hello");
    }

    #[test]
    fn the_summary_counts_refused_posts_and_takes_quantiles_of_the_latencies() {
        // Arrange: 100 POSTs of 1..=100 ms, the 7th refused.
        let outcomes: Vec<Outcome> = (0..100)
            .map(|i| (i, i != 7, Duration::from_millis(i as u64 + 1)))
            .collect();

        // Act
        let result = summarise(&outcomes, Duration::from_secs(2));

        // Assert
        assert_eq!(
            (result.posts, result.non_200, result.refused),
            (100, 1, vec![7])
        );
        assert!((result.p50_ms - 50.0).abs() < 1e-9 && (result.p99_ms - 99.0).abs() < 1e-9);
    }

    #[test]
    fn an_answer_head_is_read_once_complete_with_its_length_and_whether_the_connection_stays() {
        let keep = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let close = b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

        assert_eq!(answer_head(&keep[..20]).unwrap(), None);
        let head = |status, head_len, body_len, keep_alive| AnswerHead {
            status,
            head_len,
            body_len,
            keep_alive,
        };
        assert_eq!(
            answer_head(keep).unwrap(),
            Some(head(200, keep.len() - 2, 2, true))
        );
        assert_eq!(
            answer_head(close).unwrap(),
            Some(head(401, close.len(), 0, false))
        );
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(answer_head(chunked).is_err());
    }

    #[tokio::test]
    async fn every_post_is_made_once_signed_and_the_ones_not_answered_200_are_named() {
        // Arrange: a receiver that checks each signature, refuses bodies that say "bad" and
        // closes the connection after every fifth answer.
        use axum::http::{HeaderMap, StatusCode};
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let app = {
            let seen = seen.clone();
            axum::Router::new().route(
                "/webhook",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let seen = seen.clone();
                    async move {
                        let signed = headers.get("x-hub-signature-256").is_some_and(|value| {
                            value.as_bytes() == sign(body.as_bytes(), SECRET).as_bytes()
                        });
                        let mut seen = seen.lock().unwrap();
                        seen.push(body.clone());
                        let status = if signed && !body.contains("bad") {
                            StatusCode::OK
                        } else {
                            StatusCode::UNAUTHORIZED
                        };
                        let mut answer = axum::response::IntoResponse::into_response(status);
                        if seen.len().is_multiple_of(5) {
                            answer.headers_mut().insert(
                                axum::http::header::CONNECTION,
                                axum::http::HeaderValue::from_static("close"),
                            );
                        }
                        answer
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let bodies: Vec<String> = (0..60)
            .map(|i| {
                format!(
                    "{{\"n\":{i},\"kind\":\"{}\"}}",
                    if i % 7 == 3 { "bad" } else { "good" }
                )
            })
            .collect();
        let spec = LoadSpec {
            url: format!("http://{addr}/webhook"),
            app_secret: SECRET.into(),
            connections: 4,
            rate: None,
            bodies: bodies.clone(),
        };

        // Act
        let result = post_all(spec).await.unwrap();

        // Assert
        let expected_refused: Vec<usize> = (0..60).filter(|i| i % 7 == 3).collect();
        assert_eq!(result.posts, 60);
        assert_eq!(result.refused, expected_refused);
        assert_eq!(result.non_200, expected_refused.len());
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let mut sent = bodies;
        sent.sort();
        assert_eq!(seen, sent, "each body posted exactly once");
    }
}
