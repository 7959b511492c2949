//! `POST /cometd/{version}`: the Bayeux meta channels as Salesforce answers them.
//!
//! Each request body is a JSON array of messages, handled in order; the response is one JSON array
//! with every message's reply (event deliveries before the connect reply that carries them).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::bus::{EventBus, ReplayFrom, SubscribeError};
use super::messages::{
    self, Advice, FailureAdvice, Outgoing, PollAdvice, Reply, ReplyExt, Request, SfdcExt,
};

/// Decides whether a request's `Authorization: Bearer …` is a valid session of the org.
pub type Authorize = Arc<dyn Fn(&HeaderMap) -> bool + Send + Sync>;

/// Tunables of the streaming endpoint; the defaults are Salesforce's.
#[derive(Clone, Debug)]
pub struct StreamingConfig {
    /// How long a connect is held when nothing arrives (Salesforce: 110 s). Also advised to clients.
    pub connect_timeout: Duration,
    /// Larger request bodies are refused with HTTP 413 (Salesforce: 32,768 bytes).
    pub max_body_bytes: usize,
    /// A client that has not connected for this long (sim-clock time) is forgotten and gets
    /// `403::Unknown client` (Salesforce asks clients to reconnect within 40 s).
    pub client_timeout: Duration,
    /// Refuse subscribe/connect/unsubscribe/disconnect requests that lack the `sfdc-stream` cookie
    /// from the handshake, as a real org's other app servers would (`403::Unknown client`).
    pub require_route_cookie: bool,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            connect_timeout: Duration::from_secs(110),
            max_body_bytes: 32_768,
            client_timeout: Duration::from_secs(40),
            require_route_cookie: true,
        }
    }
}

/// Everything a request handler needs.
struct Streaming {
    bus: Arc<EventBus>,
    config: StreamingConfig,
    /// `client_timeout` as the bus's (chrono) duration, converted once.
    idle_limit: chrono::Duration,
    authorize: Authorize,
    /// Cancelled at server shutdown: held connects answer at once instead of holding up to 110 s.
    shutdown: CancellationToken,
}

/// The routes for `POST /cometd/{version}` (e.g. `/cometd/62.0`).
///
/// `shutdown` must be cancelled when the server stops (pass the server's own token or a parent of
/// it): graceful shutdown waits for open requests, and a held connect only ends early on it.
/// After cancellation every connect answers at once with an empty successful reply.
///
/// Not simulated: several concurrent connects of one client (CometD would answer the older one
/// with `multiple-clients` advice; here both are held), websocket transport, and `/topic` PushTopic
/// or `/data` change-event payload shapes (channels carry platform-event payloads only).
pub fn router(
    bus: Arc<EventBus>,
    config: StreamingConfig,
    authorize: Authorize,
    shutdown: CancellationToken,
) -> Router {
    let body_limit = config.max_body_bytes;
    let idle_limit =
        chrono::Duration::from_std(config.client_timeout).unwrap_or(chrono::Duration::MAX);
    let state = Arc::new(Streaming {
        bus,
        config,
        idle_limit,
        authorize,
        shutdown,
    });
    Router::new()
        .route("/cometd/{version}", post(handle))
        // The `Bytes` extractor enforces this and answers 413 Payload Too Large, as Salesforce does.
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// The API versions the Streaming API (CometD) is documented for: 37.0 (replay, platform events)
/// to 67.0 (Summer '26; Salesforce's newer versions serve the REST API, while Pub/Sub API is the
/// successor for streaming).
pub const STREAMING_VERSIONS: std::ops::RangeInclusive<f64> = 37.0..=67.0;

/// Whether `/cometd/{segment}` names a version the Streaming API answers.
pub fn is_streaming_version(segment: &str) -> bool {
    let well_formed = segment.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major
                .chars()
                .chain(minor.chars())
                .all(|c| c.is_ascii_digit())
    });
    well_formed
        && segment
            .parse::<f64>()
            .is_ok_and(|v| STREAMING_VERSIONS.contains(&v))
}

#[tracing::instrument(skip_all)]
async fn handle(
    State(streaming): State<Arc<Streaming>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_streaming_version(&version) {
        // Not documented for a version out of range; answered like any resource that does not
        // exist on the platform (what the REST API says for a version it does not serve).
        return (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            r#"[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]"#,
        )
            .into_response();
    }
    let requests = match messages::parse_body(&body) {
        Ok(requests) => requests,
        Err(error) => {
            tracing::debug!(%error, "unparseable Bayeux request");
            return (StatusCode::BAD_REQUEST, "Malformed Bayeux message").into_response();
        }
    };
    let authorized = (streaming.authorize)(&headers);
    let cookies = RequestCookies::parse(&headers);
    let mut out: Vec<Outgoing> = Vec::new();
    let mut set_cookies: Vec<String> = Vec::new();
    for request in &requests {
        match request.channel.as_str() {
            messages::HANDSHAKE => {
                let reply = streaming.handshake(request, authorized);
                if reply.successful {
                    set_cookies.extend(streaming.handshake_cookies(&cookies));
                }
                out.push(Outgoing::Reply(reply));
            }
            messages::CONNECT => out.extend(streaming.connect(request, authorized, &cookies).await),
            messages::SUBSCRIBE => out.push(Outgoing::Reply(
                streaming.subscribe(request, authorized, &cookies),
            )),
            messages::UNSUBSCRIBE => out.push(Outgoing::Reply(
                streaming.unsubscribe(request, authorized, &cookies),
            )),
            messages::DISCONNECT => out.push(Outgoing::Reply(
                streaming.disconnect(request, authorized, &cookies),
            )),
            // Salesforce does not accept publishing over CometD (platform events are published via
            // REST/Apex); CometD's security policy refusal is the answer.
            other if !other.starts_with("/meta/") => out.push(Outgoing::Reply(Reply {
                client_id: request.client_id.clone(),
                error: Some("403::Publish denied".into()),
                ..Reply::to(request)
            })),
            _ => out.push(Outgoing::Reply(Reply {
                error: Some("400::Unknown meta channel".into()),
                ..Reply::to(request)
            })),
        }
    }
    let body = match serde_json::to_vec(&out) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot serialise Bayeux reply");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    for cookie in set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response_headers.append(SET_COOKIE, value);
        }
    }
    response
}

impl Streaming {
    fn handshake(&self, request: &Request, authorized: bool) -> Reply {
        // Salesforce echoes the replay extension whether or not the client asked; clients only enable
        // replay when they see it.
        let ext = |failure_reason: Option<&str>| ReplyExt {
            sfdc: failure_reason.map(|reason| SfdcExt {
                failure_reason: reason.to_owned(),
            }),
            replay: true,
            payload_format: true,
        };
        if !authorized {
            return Reply {
                ext: Some(ext(Some("401::Authentication invalid"))),
                advice: Some(Advice::Failure(FailureAdvice {
                    reconnect: "none",
                    interval: None,
                })),
                error: Some("403::Handshake denied".into()),
                ..Reply::to(request)
            };
        }
        let client_id = self.bus.open_client();
        tracing::debug!(client_id, replay = request.asks_for_replay(), "handshake");
        Reply {
            ext: Some(ext(None)),
            minimum_version: Some("1.0"),
            client_id: Some(client_id),
            supported_connection_types: Some(["long-polling"]),
            version: Some("1.0"),
            successful: true,
            ..Reply::to(request)
        }
    }

    /// `BAYEUX_BROWSER` (only if the client has none yet, as CometD does) and the route cookie.
    fn handshake_cookies(&self, cookies: &RequestCookies) -> Vec<String> {
        let mut out = Vec::new();
        if cookies.get("BAYEUX_BROWSER").is_none() {
            // CometD's browser id: 16 lower-case alphanumerics plus a random prefix, e.g. `1146t2o4cy7pnhl`.
            let browser: String = rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(16)
                .map(|b| (b as char).to_ascii_lowercase())
                .collect();
            out.push(format!("BAYEUX_BROWSER={browser}; Path=/; HttpOnly"));
        }
        out.push(format!("sfdc-stream={}; Path=/", self.bus.route_cookie()));
        out
    }

    /// The client id of a request that may act on a client: known to this "app server" (route cookie)
    /// and present. `None` means `403::Unknown client`.
    fn client_id<'r>(&self, request: &'r Request, cookies: &RequestCookies) -> Option<&'r str> {
        if self.config.require_route_cookie
            && cookies.get("sfdc-stream") != Some(self.bus.route_cookie())
        {
            return None;
        }
        request.client_id.as_deref()
    }

    fn subscribe(&self, request: &Request, authorized: bool, cookies: &RequestCookies) -> Reply {
        if !authorized {
            return Reply::authentication_invalid(request);
        }
        let Some(client_id) = self.client_id(request, cookies) else {
            return Reply::unknown_client(request);
        };
        let base = Reply {
            client_id: Some(client_id.to_owned()),
            subscription: request.subscription().map(str::to_owned),
            ..Reply::to(request)
        };
        let Some(channel) = request.subscription() else {
            return Reply {
                error: Some("403::subscription_missing".into()),
                ..base
            };
        };
        let from = match replay_from(request, channel) {
            Ok(from) => from,
            Err(error) => {
                return Reply {
                    error: Some(error),
                    ..base
                }
            }
        };
        match self
            .bus
            .subscribe(client_id, channel, from, self.idle_limit)
        {
            Ok(()) => Reply {
                successful: true,
                ..base
            },
            Err(SubscribeError::UnknownClient) => Reply::unknown_client(request),
            Err(SubscribeError::NoSuchChannel) => Reply {
                error: Some(format!(
                    "400::The channel you requested to subscribe to does not exist {{{channel}}}"
                )),
                ..base
            },
            Err(SubscribeError::InvalidReplayId(id)) => Reply {
                error: Some(invalid_replay_id(&id.to_string())),
                ..base
            },
        }
    }

    fn unsubscribe(&self, request: &Request, authorized: bool, cookies: &RequestCookies) -> Reply {
        if !authorized {
            return Reply::authentication_invalid(request);
        }
        let Some(client_id) = self.client_id(request, cookies) else {
            return Reply::unknown_client(request);
        };
        let channel = request.subscription().unwrap_or_default();
        match self.bus.unsubscribe(client_id, channel, self.idle_limit) {
            Ok(()) => Reply {
                client_id: Some(client_id.to_owned()),
                subscription: Some(channel.to_owned()),
                successful: true,
                ..Reply::to(request)
            },
            Err(_) => Reply::unknown_client(request),
        }
    }

    fn disconnect(&self, request: &Request, authorized: bool, cookies: &RequestCookies) -> Reply {
        if !authorized {
            return Reply::authentication_invalid(request);
        }
        let Some(client_id) = self.client_id(request, cookies) else {
            return Reply::unknown_client(request);
        };
        match self.bus.disconnect(client_id) {
            Ok(()) => Reply {
                client_id: Some(client_id.to_owned()),
                successful: true,
                ..Reply::to(request)
            },
            Err(_) => Reply::unknown_client(request),
        }
    }

    /// The long poll: answers at once with pending events, else holds until an event, the timeout,
    /// the client being dropped, or shutdown.
    async fn connect(
        &self,
        request: &Request,
        authorized: bool,
        cookies: &RequestCookies,
    ) -> Vec<Outgoing> {
        if !authorized {
            return vec![Outgoing::Reply(Reply {
                client_id: None,
                ..Reply::authentication_invalid(request)
            })];
        }
        let Some(client_id) = self.client_id(request, cookies) else {
            return vec![Outgoing::Reply(Reply::unknown_client(request))];
        };
        let first = match self.bus.begin_connect(client_id, self.idle_limit) {
            Ok(first) => first,
            Err(_) => return vec![Outgoing::Reply(Reply::unknown_client(request))],
        };
        // Ends the connect even if the HTTP client goes away and this future is dropped mid-hold;
        // otherwise the client would count as "in a connect" forever and never expire.
        let _in_flight = ConnectGuard {
            bus: &self.bus,
            client_id,
        };
        // A client may ask for a shorter hold (CometD's first connect sends `advice.timeout: 0`).
        let hold = request
            .advised_timeout_ms()
            .map(Duration::from_millis)
            .map_or(self.config.connect_timeout, |asked| {
                asked.min(self.config.connect_timeout)
            });
        let deadline = tokio::time::Instant::now() + hold;
        let delivered = loop {
            // Armed before looking, so a publish between the look and the wait still wakes us.
            let changed = self.bus.changed().notified();
            match self.bus.take_pending(client_id) {
                Err(_) => return vec![Outgoing::Reply(Reply::unknown_client(request))],
                Ok(events) if !events.is_empty() => break events,
                Ok(_) => {}
            }
            tokio::select! {
                _ = changed => continue,
                _ = tokio::time::sleep_until(deadline) => break Vec::new(),
                _ = self.shutdown.cancelled() => break Vec::new(),
            }
        };
        let advice = first.then(|| {
            Advice::Poll(PollAdvice {
                interval: 0,
                timeout: u64::try_from(self.config.connect_timeout.as_millis()).unwrap_or(u64::MAX),
                reconnect: "retry",
            })
        });
        let mut out: Vec<Outgoing> = delivered.into_iter().map(Outgoing::Event).collect();
        out.push(Outgoing::Reply(Reply {
            client_id: Some(client_id.to_owned()),
            advice,
            successful: true,
            ..Reply::to(request)
        }));
        out
    }
}

struct ConnectGuard<'a> {
    bus: &'a EventBus,
    client_id: &'a str,
}

impl Drop for ConnectGuard<'_> {
    fn drop(&mut self) {
        self.bus.end_connect(self.client_id);
    }
}

/// The subscription's start from `ext.replay`, or Salesforce's error text.
fn replay_from(request: &Request, channel: &str) -> Result<ReplayFrom, String> {
    let Some(map) = request.replay_map() else {
        // No replay extension on the subscribe: Salesforce's default is new events only.
        return Ok(ReplayFrom::New);
    };
    let Some(value) = map.get(channel) else {
        // What EMP-Connector users hit when the map did not name the subscribed channel.
        return Err(format!(
            "400::The replayId for channel {{{channel}}} wasn't found using the provided replay ID map \
             {{{}}}. Ensure that the channel name you provided in the replay map is valid and matches \
             the channel name used for subscribing.",
            java_map(map)
        ));
    };
    match value.as_i64() {
        Some(-1) => Ok(ReplayFrom::New),
        Some(-2) => Ok(ReplayFrom::AllRetained),
        Some(id) if id >= 0 => Ok(ReplayFrom::After(id)),
        _ => Err(invalid_replay_id(&display_value(value))),
    }
}

/// Salesforce's stale/unknown replay id error (two spaces after "invalid." as the platform sends it).
fn invalid_replay_id(id: &str) -> String {
    format!(
        "400::The replayId {{{id}}} you provided was invalid.  Please provide a valid ID, -2 to replay \
         all events, or -1 to replay only new events."
    )
}

/// A JSON map as Java's `Map.toString()` prints it (`{a=1, b=2}`, without the braces here), which is
/// how Salesforce's error texts render the replay map.
fn java_map(map: &serde_json::Map<String, Value>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", display_value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The request's `Cookie` header(s) as name/value pairs.
struct RequestCookies(Vec<(String, String)>);

impl RequestCookies {
    fn parse(headers: &HeaderMap) -> Self {
        let pairs = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        RequestCookies(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
