//! The webhook receiver (axum): Meta's verification handshake and signed status and message POSTs,
//! on `webhook.path` alone — `/metrics`, `/healthz` and `/readyz` are on the observe listener
//! (`observe::routes`), so the public port exposes nothing else.
//!
//! HTTP concerns only: a POST is checked on its raw bytes (401 and no side effects when the
//! signature is wrong or missing), parsed (400 when it is not Meta's envelope), and handed to
//! [`webhook_apply::apply`], which stores it in ONE SQLite transaction; the 200 goes out only
//! after that commits, and a store error answers 500 so Meta retries (guarantee 2).
//!
//! Events refused by the parser or while being applied are dead-lettered by the pipeline; here
//! they are counted in `sfwa_webhook_events_rejected_total{reason}` and logged in one bounded WARN
//! line each, while the rest of the POST is answered 200. Parts knowingly ignored are counted in
//! `sfwa_webhook_parts_ignored_total{reason}`; parts for a business number this instance does not
//! serve (`whatsapp.default_phone_number_id` and `phone_number_ids`) change nothing, are counted
//! in `sfwa_webhook_foreign_number_parts_total` and logged once per number. Nothing echoed from the payload into an
//! answer or a log line is longer than [`ECHO_CHARS`].
//!
//! **Forwarding** (`[[webhook.forward]]`, for setups where one callback URL must serve several
//! shards; Meta's per-number callback override, one URL per shard, is the preferred way). A signed
//! POST with parts for a number another shard serves is forwarded to that shard **as received**
//! (the raw bytes and `X-Hub-Signature-256`, so the other shard checks Meta's signature itself)
//! before this one answers. Each target gets the whole POST once and keeps only its own numbers'
//! parts, as every shard does. If any target does not answer 200 (down, 5xx, timeout after
//! [`FORWARD_TIMEOUT`]), this shard answers 502 after applying its own parts, so Meta delivers
//! the POST again; every shard dedupes, so nothing is lost or applied twice. A forwarded POST
//! carries [`FORWARDED_HEADER`] and is never forwarded again (no loops, whatever the rules say).
//! Parts for numbers no rule names stay as above: counted, logged once, 200.
//!
//! [`ECHO_CHARS`]: crate::domain::webhook_event::ECHO_CHARS

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tracing::{info, warn};

use crate::config::ForwardRule;
use crate::domain::ids::BusinessNumberId;
use crate::domain::message::fit_salesforce;
use crate::domain::webhook_event::echo;
use crate::pipeline::report::WebhookResult;
use crate::pipeline::webhook_apply::{self, Applied};
use crate::pipeline::Core;
use crate::webhook::{parse_served, verify_signature};

/// At most this many "part ignored" lines are logged per POST (then one line with the rest's count).
const SKIPPED_LINES: usize = 10;
/// A reason or detail line is built from fixed words and at most two values cut to
/// [`ECHO_CHARS`](crate::domain::webhook_event::ECHO_CHARS); this cap only makes the bound
/// independent of how it was built.
const LINE_CHARS: usize = 600;

/// Set on a POST this shard forwards; a POST that carries it is applied but never forwarded.
pub const FORWARDED_HEADER: &str = "x-sfwa-forwarded";
/// How long a forward may take: Meta expects a prompt answer and retries a delivery that does
/// not get one, so a slow target is treated as down (502; Meta's retry finds it again).
pub const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The receiver's routes; its state is what applying a webhook needs ([`Core`]) and the
/// forwarding rules with their HTTP client.
pub fn router(core: Core) -> Router {
    let path = core.settings.webhook.path.clone();
    let limit = core.settings.webhook.max_body_bytes;
    let forward = Forwarder::new(core.settings.webhook.forward.clone());
    Router::new()
        .route(&path, get(verify).post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(Receiver {
            served: core.settings.business_numbers(),
            core,
            forward,
        }))
}

/// The router's state.
struct Receiver {
    core: Core,
    forward: Forwarder,
    /// The business numbers this instance serves, listed once rather than per POST.
    served: Vec<String>,
}

/// The `[[webhook.forward]]` rules and the client that posts to other shards.
struct Forwarder {
    rules: Vec<ForwardRule>,
    http: reqwest::Client,
}

impl Forwarder {
    fn new(rules: Vec<ForwardRule>) -> Forwarder {
        // Other shards are reached inside the cluster; no cookies, no redirects (a redirect would
        // turn the POST into a GET).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FORWARD_TIMEOUT)
            .build()
            .unwrap_or_default();
        Forwarder { rules, http }
    }

    /// The distinct URLs serving some of `numbers`, in rule order, and the numbers no rule names.
    fn split<'n>(&self, numbers: &'n [BusinessNumberId]) -> (Vec<&str>, Vec<&'n BusinessNumberId>) {
        let mut urls: Vec<&str> = Vec::new();
        let mut unrouted = Vec::new();
        for number in numbers {
            let rule = self
                .rules
                .iter()
                .find(|rule| rule.numbers.iter().any(|n| n == number.as_str()));
            match rule {
                Some(rule) if !urls.contains(&rule.url.as_str()) => urls.push(&rule.url),
                Some(_) => {}
                None => unrouted.push(number),
            }
        }
        (urls, unrouted)
    }

    /// Posts the body as received to each URL at once; the URLs that did not answer 200.
    async fn send(&self, urls: &[&str], body: &Bytes, signature: Option<&str>) -> Vec<String> {
        let posts = urls.iter().map(|url| async move {
            let mut request = self
                .http
                .post(*url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(FORWARDED_HEADER, "1")
                .body(body.clone());
            if let Some(signature) = signature {
                request = request.header("x-hub-signature-256", signature);
            }
            match request.send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => None,
                Ok(response) => Some(format!("{url} answered {}", response.status())),
                Err(error) => Some(format!("{url}: {error}")),
            }
        });
        futures_util::future::join_all(posts)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

#[derive(Deserialize)]
struct Verification {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` → the challenge, or 403.
async fn verify(
    State(receiver): State<Arc<Receiver>>,
    Query(query): Query<Verification>,
) -> Response {
    let core = &receiver.core;
    let expected = core.settings.whatsapp.verify_token.expose();
    let token_ok = query
        .verify_token
        .as_deref()
        .is_some_and(|t| subtle::ConstantTimeEq::ct_eq(t.as_bytes(), expected.as_bytes()).into());
    match (query.mode.as_deref(), token_ok, query.challenge) {
        (Some("subscribe"), true, Some(challenge)) => (StatusCode::OK, challenge).into_response(),
        _ => {
            warn!("webhook verification refused: wrong hub.verify_token or hub.mode");
            StatusCode::FORBIDDEN.into_response()
        }
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let core = &receiver.core;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !verify_signature(core.settings.whatsapp.app_secret.expose(), &body, signature) {
        warn!(
            bytes = body.len(),
            "webhook refused: missing or wrong X-Hub-Signature-256 (check whatsapp.app_secret)"
        );
        core.reporter.webhook(WebhookResult::Unauthorized);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut parsed = match parse_served(&body, core.now(), &receiver.served) {
        Ok(parsed) => parsed,
        Err(error) => {
            // Already bounded by the parser; cut again so no future message can echo unbounded.
            let error = echo(&error.to_string());
            warn!(%error, "webhook refused: not a WhatsApp Business Account envelope");
            core.reporter.webhook(WebhookResult::BadRequest);
            return (StatusCode::BAD_REQUEST, error).into_response();
        }
    };
    log_skipped(&parsed.skipped);
    let ignored = std::mem::take(&mut parsed.ignored);
    let foreign = std::mem::take(&mut parsed.foreign);
    let forwarded = headers.contains_key(FORWARDED_HEADER);
    let (urls, unrouted) = if forwarded {
        (Vec::new(), foreign.iter().collect())
    } else {
        receiver.forward.split(&foreign)
    };
    let (failed, applied) = if urls.is_empty() {
        // The body and the header values are slices of the connection's read buffer. Held while
        // the store is awaited, they would make the connection, which reads on meanwhile, take a
        // new buffer: every webhook in flight would hold two (8 KB each).
        drop((headers, body));
        (Vec::new(), webhook_apply::apply(core, parsed).await)
    } else {
        // The other shards' parts and this shard's own are stored at the same time.
        tokio::join!(
            receiver.forward.send(&urls, &body, signature),
            webhook_apply::apply(core, parsed)
        )
    };
    match applied {
        Ok(applied) => {
            for reason in ignored.iter().chain(&applied.ignored) {
                core.reporter.webhook_part_ignored(reason.label());
            }
            report_foreign(core, &unrouted);
            report(core, &applied, failed.is_empty());
            if failed.is_empty() {
                return StatusCode::OK.into_response();
            }
            // This shard's parts are stored; the other shard's are not. Meta retries the POST,
            // which this shard then dedupes.
            warn!(failed = %failed.join("; "), "webhook forward to another shard failed; answering 502 so Meta retries");
            StatusCode::BAD_GATEWAY.into_response()
        }
        Err(error) => {
            // Not durable, so not acknowledged: Meta will deliver it again.
            warn!(%error, "webhook not stored; answering 500 so Meta retries");
            core.reporter.webhook(WebhookResult::Error);
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// One bounded INFO line per part of the POST that is not an event of ours, at most
/// [`SKIPPED_LINES`] of them.
fn log_skipped(skipped: &[String]) {
    for reason in skipped.iter().take(SKIPPED_LINES) {
        info!(
            "webhook part ignored: {}",
            fit_salesforce(reason, LINE_CHARS)
        );
    }
    if skipped.len() > SKIPPED_LINES {
        info!(
            "webhook parts ignored: {} more",
            skipped.len() - SKIPPED_LINES
        );
    }
}

/// The business numbers already logged as not served, in this process: each is logged once (Meta
/// sends every number's webhooks to every app on the account; a line per POST would drown the
/// log). Bounded: past [`FOREIGN_LOGGED`] numbers, further ones are counted but not logged.
static FOREIGN_NUMBERS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
const FOREIGN_LOGGED: usize = 1000;

/// Counts each part for a number this instance does not serve, and logs each such number the
/// first time it is seen.
fn report_foreign(core: &Core, foreign: &[&BusinessNumberId]) {
    for number in foreign {
        core.reporter.webhook_foreign_number_part();
        // A poisoned lock only means another thread panicked while logging: the set is still a set.
        let mut logged = FOREIGN_NUMBERS.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() < FOREIGN_LOGGED && logged.insert(number.as_str().to_string()) {
            info!(
                phone_number_id = %number,
                "webhooks for a business number this instance does not serve are acknowledged and ignored (add it to whatsapp.phone_number_ids to serve it); logged once per number"
            );
        }
    }
}

/// The HTTP layer's account of a stored POST: a bounded WARN line and a count per refused event,
/// and the POST's result (an error when a forward failed, `forwarded` false).
fn report(core: &Core, applied: &Applied, forwarded: bool) {
    for rejected in &applied.rejected {
        warn!(
            reason = rejected.reason.label(),
            detail = %fit_salesforce(&rejected.detail, LINE_CHARS),
            "webhook event refused and dead-lettered (store table webhook_rejects); the rest of the POST applies"
        );
        core.reporter
            .webhook_event_rejected(rejected.reason.label());
    }
    let result = if !forwarded {
        WebhookResult::Error
    } else if applied.queued_any() {
        WebhookResult::Accepted
    } else if applied.duplicates > 0 {
        WebhookResult::Duplicate
    } else {
        // Signed and well-formed, with nothing sfwa acts on (e.g. only skipped parts).
        WebhookResult::Accepted
    };
    core.reporter.webhook(result);
}
