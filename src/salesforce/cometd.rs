//! The Streaming API client: platform events (`/event/WhatsApp_Outbound__e`) over CometD / Bayeux
//! long-polling, the intake path that costs no REST calls per message.
//!
//! # The protocol
//! Everything is `POST {instance_url}/cometd/{api_version}` with `Authorization: Bearer <token>` and
//! a JSON array of Bayeux messages in the body; the answer is a JSON array too.
//! 1. `/meta/handshake` with `ext: {replay: true}` → a `clientId`. Salesforce only honours replay
//!    positions if it echoes `ext.replay`; a server that does not is refused
//!    ([`CometdError::Protocol`]) because without replay a restart would silently lose events.
//!    The answer sets cookies (`BAYEUX_BROWSER`, and `sfdc-stream`, the load balancer's route to the
//!    app server that holds the client) which every later request must carry.
//! 2. `/meta/subscribe` to the channel with `ext: {replay: {channel: -1 | -2 | replayId}}`.
//! 3. `/meta/connect` — the long poll: Salesforce holds it up to `advice.timeout` (110 s) and answers
//!    as soon as events are there. Event messages and the connect reply share one response array, in
//!    either order.
//!
//! [`CometdClient::poll`] is one step of that: it handshakes and subscribes when not connected, then
//! runs exactly one connect and returns its events. The intake worker loops on it, storing each
//! event's replay id once the event is safely journaled, and must poll again within 40 s of
//! receiving events (Salesforce forgets idle clients).
//!
//! # Recovery rules
//! Every error forgets the connection, so the next `poll` handshakes and subscribes again from the
//! [`ReplayFrom`] it is given — normally the last replay id the caller stored, so nothing is lost
//! and nothing the caller has not seen is skipped. Events that arrived in the same response as a
//! failed connect reply are dropped for the same reason: they come again on re-subscribe.
//! - `403::Unknown client` (the server restarted, the client idled out, or the route cookie
//!   expired and the load balancer sent us to another app server), or any reply advising
//!   `reconnect: handshake` → [`CometdError::UnknownClient`]: just poll again.
//! - `401::Authentication invalid`, in the reply's `error` or Salesforce's
//!   `ext.sfdc.failureReason`, or HTTP 401 → [`CometdError::AuthInvalid`]; the stale token has
//!   already been passed to [`SalesforceClient::invalidate_session`], so the next poll logs in.
//! - `400::The replayId {N} you provided was invalid.` (older than the 72 h retention, or never
//!   issued), on subscribe or on connect → [`CometdError::StaleReplay`]: the caller must choose
//!   another position (`All` to recover what is retained, then reconcile by SOQL).
//! - `400::The channel you requested to subscribe to does not exist {…}` →
//!   [`CometdError::NoSuchChannel`], naming the channel and how to create it (a shard's custom
//!   channel `/event/X__chn` must be created with its filtered member first).
//! - Network failures, timeouts, HTTP 5xx → [`CometdError::Transport`]: back off, poll again.
//!
//! # Cookies
//! The client keeps its own `reqwest::Client` (one connection pool) with a cookie store that is
//! emptied at every handshake: a handshake starts a new Bayeux session, the server sets both cookies
//! again in its answer, and an old `sfdc-stream` route would only steer the new session towards
//! the app server that just forgot us (how `403::Unknown client` usually arises), while an old
//! `BAYEUX_BROWSER` would tie it to the abandoned client. The REST client's HTTP client is not used
//! because Salesforce's cookies have no business on REST calls.
//!
//! A `poll` future may be dropped (e.g. at shutdown) at any point: a connect whose answer was never
//! read leaves the client unconnected, and the next `poll` subscribes again from its `replay_from`,
//! because the server may already have handed the unread events to the abandoned request.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::SalesforceClient;
use super::error::SalesforceError;
pub use super::event_fields::EventFields;
use super::json_array::{ArrayPieces, NotAnArray};

/// The platform event sfwa's Flow publishes for every Queued outbound record.
pub const OUTBOUND_EVENT_CHANNEL: &str = "/event/WhatsApp_Outbound__e";

/// Salesforce's long-poll hold (`advice.timeout`) until the server advises otherwise.
const DEFAULT_CONNECT_HOLD: Duration = Duration::from_secs(110);
/// How much longer than the advised hold a connect may take before it counts as lost: the server
/// answers at the end of the hold, so this only has to cover the network.
const CONNECT_MARGIN: Duration = Duration::from_secs(10);
/// Handshake, subscribe and disconnect answer at once.
const META_TIMEOUT: Duration = Duration::from_secs(30);
/// A disconnect is a courtesy; shutdown must not wait long for it.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const HANDSHAKE: &str = "/meta/handshake";
const SUBSCRIBE: &str = "/meta/subscribe";
const CONNECT: &str = "/meta/connect";
const DISCONNECT: &str = "/meta/disconnect";

/// Where a (re)subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// `-1`: only events published after subscribing.
    New,
    /// `-2`: every event still retained (72 h for high-volume platform events).
    All,
    /// The events after this stored replay id. Replay ids are opaque: never compute with them.
    After(i64),
}

impl ReplayFrom {
    /// The value of `ext.replay` on the wire.
    pub fn wire_value(self) -> i64 {
        match self {
            ReplayFrom::New => -1,
            ReplayFrom::All => -2,
            ReplayFrom::After(replay_id) => replay_id,
        }
    }
}

/// One platform event as delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEvent {
    /// The position to store once the event is handled, and to resume [`ReplayFrom::After`].
    pub replay_id: i64,
    /// `data.payload`'s string fields: `CreatedDate`, `CreatedById` and the event's own
    /// (e.g. `Message_Id__c`), kept compactly ([`EventFields`]).
    pub fields: EventFields,
}

impl StreamEvent {
    /// A string field of the payload, e.g. `"Message_Id__c"`; `None` if absent, null or not a string.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name)
    }
}

/// What went wrong on the stream, by what the caller must do. Every error has already reset the
/// connection: the next [`CometdClient::poll`] handshakes again.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CometdError {
    /// `403::Unknown client`: Salesforce no longer knows this client (server restart, idle client,
    /// moved app server). Poll again; the client handshakes and re-subscribes.
    #[error("Salesforce streaming forgot this client (403::Unknown client); polling again re-subscribes from the stored replay id")]
    UnknownClient,
    /// `401::Authentication invalid`: the session expired. The token was already invalidated, so
    /// the next poll logs in again; if that login fails, the error says why.
    #[error("Salesforce streaming refused the session (401::Authentication invalid); the next poll logs in again")]
    AuthInvalid,
    /// The replay id is older than the event retention (72 h) or was never issued. Events may have
    /// been missed: subscribe from [`ReplayFrom::All`] and reconcile with a SOQL query.
    #[error("Salesforce refused replay id {replay_id} as too old or unknown ({message}); subscribe with replay -2 (all retained events) and reconcile Queued records by query")]
    StaleReplay { replay_id: i64, message: String },
    /// Network failure, timeout or 5xx: back off and poll again.
    #[error("Salesforce streaming is unreachable: {0}; retrying later")]
    Transport(String),
    /// The subscription was refused because the channel does not exist: the package is not
    /// deployed, or a shard's custom channel (`/event/…__chn`) was not created.
    #[error("Salesforce has no streaming channel {channel} (400::The channel you requested to subscribe to does not exist). For /event/WhatsApp_Outbound__e deploy the sfwa package (salesforce/); for a shard's custom channel /event/<Name>__chn create the channel and its filtered member first, by deploying salesforce/shards/ or with the Tooling API (PlatformEventChannel, then PlatformEventChannelMember), as salesforce/shards/README.md shows; or set intake.channel to a channel that exists")]
    NoSuchChannel { channel: String },
    /// An answer sfwa cannot work with: unexpected body, no replay support, a subscription refused
    /// (e.g. the platform event is not deployed, or the user lacks access to it). Retrying alone
    /// will not help; check the package deployment and the integration user's permissions.
    #[error("Salesforce streaming answered unexpectedly: {0}; check that the sfwa package is deployed and the integration user can read the platform event")]
    Protocol(String),
    /// Logging in failed.
    #[error(transparent)]
    Salesforce(SalesforceError),
}

impl CometdError {
    /// Whether polling again, without anyone changing anything, can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CometdError::UnknownClient | CometdError::AuthInvalid | CometdError::Transport(_) => {
                true
            }
            CometdError::StaleReplay { .. }
            | CometdError::NoSuchChannel { .. }
            | CometdError::Protocol(_) => false,
            CometdError::Salesforce(error) => error.is_transient(),
        }
    }
}

/// A long-polling Streaming API subscriber to one channel. See the module docs.
pub struct CometdClient {
    salesforce: SalesforceClient,
    channel: String,
    http: reqwest::Client,
    /// The cookie store behind `http`, emptied at every handshake.
    cookies: Arc<StreamCookies>,
    /// Bayeux message ids, increasing over the client's life (servers only echo them).
    next_message_id: u64,
    /// `None` until handshake and subscribe have both succeeded; any error resets it.
    connection: Option<Connection>,
    /// The payload fields events keep; `None`: every string field ([`Self::keeping_fields`]).
    kept_fields: Option<&'static [&'static str]>,
}

/// A handshaken and subscribed Bayeux session.
struct Connection {
    client_id: String,
    /// The access token the session was opened with: the one to invalidate on a 401.
    access_token: String,
    /// `{instance_url}/cometd/{version}`.
    endpoint: String,
    /// Where the subscription started, for a stale-replay error that does not name the id.
    subscribed_from: ReplayFrom,
    /// `advice.interval`: wait this long before the next connect.
    interval: Duration,
    /// `advice.timeout`: how long the server may hold a connect.
    hold: Duration,
}

impl std::fmt::Debug for CometdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("CometdClient")
            .field("channel", &self.channel)
            .field(
                "client_id",
                &self.connection.as_ref().map(|c| c.client_id.as_str()),
            )
            .finish()
    }
}

impl CometdClient {
    /// A client for `channel` (e.g. [`OUTBOUND_EVENT_CHANNEL`]) logging in through `salesforce`.
    /// Nothing is sent until the first [`poll`](Self::poll).
    pub fn new(
        salesforce: SalesforceClient,
        channel: impl Into<String>,
    ) -> Result<CometdClient, CometdError> {
        let channel = channel.into();
        if !channel.starts_with('/') || channel.starts_with("/meta/") {
            return Err(CometdError::Protocol(format!(
                "{channel:?} is not a channel one can subscribe to (expected e.g. {OUTBOUND_EVENT_CHANNEL})"
            )));
        }
        let cookies = Arc::new(StreamCookies::default());
        let http = reqwest::Client::builder()
            .cookie_provider(cookies.clone())
            // HTTP/1.1 as before HTTP/2 was built in for sends to Meta (`whatsapp::connections`).
            .http1_only()
            .build()
            .map_err(|e| CometdError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(CometdClient {
            salesforce,
            channel,
            http,
            cookies,
            next_message_id: 0,
            connection: None,
            kept_fields: None,
        })
    }

    /// Events keep only these payload fields (the others are read and dropped at once): one
    /// connect after a pause carries a whole backlog, every event held until it is handled.
    pub fn keeping_fields(mut self, names: &'static [&'static str]) -> Self {
        self.kept_fields = Some(names);
        self
    }

    /// The subscribed channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Whether a handshaken and subscribed session exists (the next poll goes straight to connect).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// One step. If not connected: handshake (with `ext.replay`; refused if the server does not
    /// echo it), then subscribe from `replay_from`. Then one `/meta/connect` long poll, after the
    /// server's `advice.interval`, with a timeout a little above its `advice.timeout`. Returns
    /// that connect's events, oldest first (possibly none). `replay_from` is only used when
    /// (re)subscribing. Any error forgets the connection.
    pub async fn poll(&mut self, replay_from: ReplayFrom) -> Result<Vec<StreamEvent>, CometdError> {
        self.poll_as(replay_from, std::convert::identity).await
    }

    /// [`poll`](Self::poll), each event turned by `keep` into what the caller holds as it is read
    /// from the answer: a connect after a pause carries a whole backlog, and a caller that keeps
    /// a few bytes of each never holds them all as [`StreamEvent`]s too.
    #[tracing::instrument(skip_all, fields(channel = %self.channel, events))]
    pub async fn poll_as<T>(
        &mut self,
        replay_from: ReplayFrom,
        keep: fn(StreamEvent) -> T,
    ) -> Result<Vec<T>, CometdError> {
        if let Some(interval) = self.connection.as_ref().map(|c| c.interval) {
            if !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
        }
        // Taken out for the length of the exchange: if this future is dropped mid-connect, the
        // client is left unconnected and the next poll re-subscribes from its `replay_from`,
        // because the server may have handed the unread events to the abandoned request.
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.open(replay_from).await?,
        };
        match self.connect(connection, keep).await {
            Ok((events, connection)) => {
                tracing::Span::current().record("events", events.len());
                self.connection = connection;
                Ok(events)
            }
            Err(error) => {
                tracing::info!(%error, "streaming connection reset");
                Err(error)
            }
        }
    }

    /// Handshakes and subscribes from `replay_from` without a long poll, unless already connected:
    /// proves the channel exists and the user may read it (`sfwa doctor`). The next
    /// [`poll`](Self::poll) goes straight to connect; [`disconnect`](Self::disconnect) ends it.
    #[tracing::instrument(skip_all, fields(channel = %self.channel))]
    pub async fn subscribe(&mut self, replay_from: ReplayFrom) -> Result<(), CometdError> {
        if self.connection.is_none() {
            self.connection = Some(self.open(replay_from).await?);
        }
        Ok(())
    }

    /// Best-effort `/meta/disconnect` (so Salesforce frees the client at once instead of after
    /// its idle timeout); forgets the client id whatever the answer.
    #[tracing::instrument(skip_all, fields(channel = %self.channel))]
    pub async fn disconnect(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let id = self.message_id();
        let body = json!([{"channel": DISCONNECT, "clientId": connection.client_id, "id": id}]);
        if let Err(error) = self
            .exchange(&connection, &body, DISCONNECT_TIMEOUT, DISCONNECT)
            .await
        {
            tracing::debug!(%error, "disconnect not confirmed");
        }
    }

    /// Logs in if needed, handshakes and subscribes.
    async fn open(&mut self, replay_from: ReplayFrom) -> Result<Connection, CometdError> {
        let session = self
            .salesforce
            .session()
            .await
            .map_err(CometdError::Salesforce)?;
        // A new Bayeux session: no route or browser cookie of an old one.
        self.cookies.clear();
        let mut connection = Connection {
            client_id: String::new(),
            access_token: session.access_token,
            endpoint: format!(
                "{}/cometd/{}",
                session.instance_url,
                self.salesforce.api_version()
            ),
            subscribed_from: replay_from,
            interval: Duration::ZERO,
            hold: DEFAULT_CONNECT_HOLD,
        };

        let id = self.message_id();
        let body = json!([{
            "channel": HANDSHAKE,
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
            "ext": {"replay": true},
            "id": id,
        }]);
        let answer = self
            .exchange(&connection, &body, META_TIMEOUT, HANDSHAKE)
            .await?;
        let reply = meta_reply(&answer.replies, HANDSHAKE)?;
        if !reply.successful {
            return Err(self.refusal(&connection, reply, "handshake"));
        }
        connection.client_id = reply
            .client_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| CometdError::Protocol("handshake answered without a clientId".into()))?;
        if !reply.replay_enabled() {
            return Err(CometdError::Protocol(
                "the handshake did not echo ext.replay, so replay ids would be ignored and events \
                 could be lost across restarts"
                    .into(),
            ));
        }
        tracing::debug!(client_id = %connection.client_id, "handshake");

        let id = self.message_id();
        let body = json!([{
            "channel": SUBSCRIBE,
            "clientId": connection.client_id,
            "subscription": self.channel,
            "ext": {"replay": {self.channel.as_str(): replay_from.wire_value()}},
            "id": id,
        }]);
        let answer = self
            .exchange(&connection, &body, META_TIMEOUT, SUBSCRIBE)
            .await?;
        let reply = meta_reply(&answer.replies, SUBSCRIBE)?;
        if !reply.successful {
            return Err(self.refusal(&connection, reply, "subscribe"));
        }
        tracing::info!(client_id = %connection.client_id, replay = replay_from.wire_value(), "subscribed");
        Ok(connection)
    }

    /// One `/meta/connect`. Gives the connection back unless the server advised a new handshake.
    async fn connect<T>(
        &mut self,
        mut connection: Connection,
        keep: fn(StreamEvent) -> T,
    ) -> Result<(Vec<T>, Option<Connection>), CometdError> {
        let id = self.message_id();
        let body = json!([{
            "channel": CONNECT,
            "clientId": connection.client_id,
            "connectionType": "long-polling",
            "id": id,
        }]);
        let timeout = connection.hold + CONNECT_MARGIN;
        let answer = self
            .exchange_as(&connection, &body, timeout, CONNECT, keep)
            .await?;
        let reply = meta_reply(&answer.replies, CONNECT)?;
        if !reply.successful {
            return Err(self.refusal(&connection, reply, "connect"));
        }
        let mut reconnect = None;
        if let Some(advice) = &reply.advice {
            if let Some(interval) = advice.interval {
                connection.interval = Duration::from_millis(interval);
            }
            if let Some(hold) = advice.timeout {
                connection.hold = Duration::from_millis(hold);
            }
            reconnect = advice.reconnect.clone();
        }
        let events = answer.events()?;
        if matches!(reconnect.as_deref(), Some("handshake" | "none")) {
            // The events are good; the session is not. The next poll starts a new one from
            // whatever the caller has stored by then.
            tracing::info!(advice = reconnect, "server asked for a new handshake");
            return Ok((events, None));
        }
        Ok((events, Some(connection)))
    }

    /// Sends one request and reads the Bayeux answer as it arrives ([`AnswerReader`]), classifying
    /// transport and HTTP failures.
    async fn exchange(
        &self,
        connection: &Connection,
        body: &Value,
        timeout: Duration,
        what: &str,
    ) -> Result<Answer, CometdError> {
        self.exchange_as(connection, body, timeout, what, std::convert::identity)
            .await
    }

    /// [`exchange`](Self::exchange), the answer's events turned by `keep` as they are read.
    async fn exchange_as<T>(
        &self,
        connection: &Connection,
        body: &Value,
        timeout: Duration,
        what: &str,
        keep: fn(StreamEvent) -> T,
    ) -> Result<Answer<T>, CometdError> {
        let mut response = self
            .http
            .post(&connection.endpoint)
            .bearer_auth(&connection.access_token)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| CometdError::Transport(format!("{what} failed: {e}")))?;
        let status = response.status();
        let mut reader = AnswerReader::keeping(&self.channel, keep);
        reader.answer.kept_fields = self.kept_fields;
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| CometdError::Transport(format!("{what} answer cut off ({status}): {e}")))?
        {
            reader.feed(&piece);
        }
        let answer = reader.finish(status, what);
        if answer
            .as_ref()
            .is_err_and(|e| *e == CometdError::AuthInvalid)
        {
            self.salesforce.invalidate_session(&connection.access_token);
        }
        answer
    }

    /// The error for an unsuccessful meta reply; invalidates the session on a 401.
    fn refusal(&self, connection: &Connection, reply: &Message, what: &str) -> CometdError {
        let error = classify_refusal(reply, what, connection.subscribed_from);
        if error == CometdError::AuthInvalid {
            self.salesforce.invalidate_session(&connection.access_token);
        }
        error
    }

    fn message_id(&mut self) -> String {
        self.next_message_id += 1;
        self.next_message_id.to_string()
    }
}

/// A Bayeux answer as read: the meta replies, and the events on the subscribed channel, each
/// moved out of its message as it arrived.
#[derive(Debug)]
struct Answer<T = StreamEvent> {
    replies: Vec<Message>,
    /// Each event as `keep` turned it.
    events: Vec<T>,
    keep: fn(StreamEvent) -> T,
    /// The first message on the channel that is not a readable event. The caller returns it once
    /// the connect reply is known to be successful (a failed connect's events come again anyway).
    bad_event: Option<CometdError>,
    /// [`CometdClient::keeping_fields`].
    kept_fields: Option<&'static [&'static str]>,
}

impl<T> Answer<T> {
    fn new(keep: fn(StreamEvent) -> T) -> Self {
        Answer {
            replies: Vec::new(),
            events: Vec::new(),
            keep,
            bad_event: None,
            kept_fields: None,
        }
    }

    /// Keeps a meta reply, or the event a message on `channel` carries. Messages on channels this
    /// client did not subscribe to are ignored.
    fn take(&mut self, mut message: Message, channel: &str) {
        if message.channel.starts_with("/meta/") {
            self.replies.push(message);
            return;
        }
        if message.channel != channel {
            tracing::debug!(channel = %message.channel, "ignoring a message on another channel");
            return;
        }
        let data = message.data.take();
        let replay_id = data
            .as_ref()
            .and_then(|d| d.event.as_ref()?.replay_id.as_ref()?.as_i64());
        match (replay_id, data.and_then(|d| d.payload)) {
            (Some(replay_id), Some(fields)) => {
                let fields = match self.kept_fields {
                    Some(names) => fields.only(names),
                    None => fields,
                };
                self.events
                    .push((self.keep)(StreamEvent { replay_id, fields }));
            }
            // Without a replay id the event cannot be stored or resumed after: refuse rather
            // than hand the caller something it cannot checkpoint.
            _ => {
                self.bad_event.get_or_insert_with(|| {
                    CometdError::Protocol(format!(
                        "an event on {channel} without data.event.replayId or data.payload"
                    ))
                });
            }
        }
    }

    /// The channel's events in the order delivered, unless one of them could not be read.
    fn events(self) -> Result<Vec<T>, CometdError> {
        match self.bad_event {
            Some(error) => Err(error),
            None => Ok(self.events),
        }
    }
}

/// How much of a body's start an error message quotes, in bytes.
const SNIPPET_BYTES: usize = 800;

/// Reads an HTTP answer's body piece by piece into an [`Answer`]: each message of the array is
/// parsed as soon as it is in ([`ArrayPieces`]), so a backlog's answer is never held whole.
struct AnswerReader<'c, T = StreamEvent> {
    channel: &'c str,
    pieces: ArrayPieces,
    answer: Answer<T>,
    /// The body's first bytes, for error messages (5xx pages from a proxy are HTML).
    head: Vec<u8>,
    /// A body that is not an array (Bayeux allows a single message; error pages are neither),
    /// kept whole: such bodies are small.
    whole: Option<Vec<u8>>,
    /// Why the body is not a Bayeux answer, once known; the rest is not parsed.
    unreadable: Option<String>,
}

impl<'c> AnswerReader<'c> {
    #[cfg(test)]
    fn new(channel: &'c str) -> Self {
        AnswerReader::keeping(channel, std::convert::identity)
    }
}

impl<'c, T> AnswerReader<'c, T> {
    fn keeping(channel: &'c str, keep: fn(StreamEvent) -> T) -> Self {
        AnswerReader {
            channel,
            pieces: ArrayPieces::default(),
            answer: Answer::new(keep),
            head: Vec::new(),
            whole: None,
            unreadable: None,
        }
    }

    fn feed(&mut self, piece: &[u8]) {
        let room = SNIPPET_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&piece[..room.min(piece.len())]);
        if self.unreadable.is_some() {
            return;
        }
        if let Some(whole) = &mut self.whole {
            whole.extend_from_slice(piece);
            return;
        }
        let (answer, channel) = (&mut self.answer, self.channel);
        let fed = self.pieces.feed(piece, |element| {
            answer.take(serde_json::from_slice(element)?, channel);
            Ok::<(), serde_json::Error>(())
        });
        match fed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.unreadable = Some(error.to_string()),
            Err(NotAnArray::OtherDocument) => self.whole = Some(piece.to_vec()),
            Err(error) => self.unreadable = Some(error.to_string()),
        }
    }

    /// The answer, or what the body and the HTTP status mean for the caller.
    fn finish(mut self, status: StatusCode, what: &str) -> Result<Answer<T>, CometdError> {
        let snippet = || snippet(&self.head);
        if status == StatusCode::UNAUTHORIZED {
            return Err(CometdError::AuthInvalid);
        }
        if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            return Err(CometdError::Transport(format!(
                "{what} answered {status}: {}",
                snippet()
            )));
        }
        if let Some(whole) = self.whole.take() {
            match serde_json::from_slice(&whole) {
                Ok(message) => self.answer.take(message, self.channel),
                Err(error) => self.unreadable = Some(error.to_string()),
            }
        } else if self.unreadable.is_none() {
            self.unreadable = self.pieces.finish().err().map(|e| e.to_string());
        }
        match &self.unreadable {
            None => Ok(self.answer),
            // Some refusals come as 4xx with a Bayeux body; the body says more than the status.
            Some(_) if !status.is_success() => Err(CometdError::Protocol(format!(
                "{what} answered {status}: {}",
                snippet()
            ))),
            Some(error) => Err(CometdError::Protocol(format!(
                "unreadable {what} answer ({error}): {}",
                snippet()
            ))),
        }
    }
}

/// One message of a response array: a meta reply or an event delivery. Only what the client reads.
#[derive(Debug, Deserialize)]
struct Message {
    channel: String,
    #[serde(default)]
    successful: bool,
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    error: Option<String>,
    advice: Option<Advice>,
    ext: Option<Value>,
    /// An event delivery's `data`, read in place (no JSON tree of the whole answer): one connect
    /// after a pause can carry a whole backlog's events.
    data: Option<EventData>,
}

/// `data` of an event delivery: `event.replayId` and the `payload` (other members, e.g.
/// `schema`, are skipped).
#[derive(Debug, Deserialize)]
struct EventData {
    event: Option<EventHeader>,
    payload: Option<EventFields>,
}

#[derive(Debug, Deserialize)]
struct EventHeader {
    /// Read as any JSON value so an odd one is the event's protocol error, not the answer's.
    #[serde(rename = "replayId")]
    replay_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Advice {
    reconnect: Option<String>,
    interval: Option<u64>,
    timeout: Option<u64>,
}

impl Message {
    fn replay_enabled(&self) -> bool {
        self.ext
            .as_ref()
            .and_then(|ext| ext.get("replay"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Salesforce's own reason for a refusal (`ext.sfdc.failureReason`), which is more precise
    /// than the Bayeux error (a 401 shows up as `403::Handshake denied` there).
    fn failure_reason(&self) -> Option<&str> {
        self.ext
            .as_ref()?
            .get("sfdc")?
            .get("failureReason")?
            .as_str()
    }
}

/// The reply on `channel` among the response's messages.
fn meta_reply<'m>(messages: &'m [Message], channel: &str) -> Result<&'m Message, CometdError> {
    messages
        .iter()
        .find(|m| m.channel == channel)
        .ok_or_else(|| CometdError::Protocol(format!("the answer carries no {channel} reply")))
}

/// What an unsuccessful `/meta/*` reply means for the caller.
fn classify_refusal(reply: &Message, what: &str, subscribed_from: ReplayFrom) -> CometdError {
    let error = reply.error.as_deref().unwrap_or("");
    let reason = reply.failure_reason().unwrap_or("");
    let reconnect = reply.advice.as_ref().and_then(|a| a.reconnect.as_deref());
    if error.starts_with("401::") || reason.starts_with("401::") {
        return CometdError::AuthInvalid;
    }
    if error.starts_with("400::The replayId") {
        let replay_id = braced_number(error).unwrap_or(match subscribed_from {
            ReplayFrom::After(id) => id,
            other => other.wire_value(),
        });
        return CometdError::StaleReplay {
            replay_id,
            message: error.to_owned(),
        };
    }
    if error.starts_with("400::The channel you requested to subscribe to") {
        return CometdError::NoSuchChannel {
            channel: braced_text(error).unwrap_or_default().to_owned(),
        };
    }
    if error.starts_with("403::Unknown client") || reconnect == Some("handshake") {
        return CometdError::UnknownClient;
    }
    let detail = if reason.is_empty() {
        error.to_owned()
    } else {
        format!("{error} ({reason})")
    };
    if reconnect == Some("retry") {
        return CometdError::Transport(format!("{what} refused for now: {detail}"));
    }
    CometdError::Protocol(format!("{what} refused: {detail}"))
}

/// The number in the first `{…}` of Salesforce's replay error, e.g. `{82}`.
fn braced_number(text: &str) -> Option<i64> {
    braced_text(text)?.parse().ok()
}

/// The text in the first `{…}` of a Salesforce error, e.g. the channel of "does not exist {…}".
fn braced_text(text: &str) -> Option<&str> {
    let start = text.find('{')? + 1;
    let end = start + text[start..].find('}')?;
    Some(text[start..end].trim())
}

/// The start of an unexpected body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(200).collect()
}

/// A cookie store that can be emptied: reqwest's [`Jar`] only grows.
#[derive(Debug, Default)]
struct StreamCookies {
    jar: RwLock<Arc<Jar>>,
}

impl StreamCookies {
    fn clear(&self) {
        *self.jar.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Jar::default());
    }

    fn current(&self) -> Arc<Jar> {
        self.jar.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl CookieStore for StreamCookies {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &url::Url) {
        self.current().set_cookies(cookie_headers, url);
    }

    fn cookies(&self, url: &url::Url) -> Option<HeaderValue> {
        self.current().cookies(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `body` answered with `status`, read as it would arrive: in pieces of 7 bytes.
    fn read(status: StatusCode, body: &[u8], what: &str) -> Result<Answer, CometdError> {
        let mut reader = AnswerReader::new("/event/E__e");
        for piece in body.chunks(7) {
            reader.feed(piece);
        }
        reader.finish(status, what)
    }

    fn answer(body: &str) -> Answer {
        read(StatusCode::OK, body.as_bytes(), "connect").expect("a Bayeux body")
    }

    fn messages(body: &str) -> Vec<Message> {
        answer(body).replies
    }

    fn refusal(body: &str, from: ReplayFrom) -> CometdError {
        let messages = messages(body);
        classify_refusal(&messages[0], "connect", from)
    }

    #[test]
    fn events_before_the_connect_reply_are_returned_in_order() {
        let body = r#"[
            {"data":{"schema":"s","payload":{"CreatedDate":"2026-11-24T18:31:40.517Z","Message_Id__c":"a01A"},"event":{"EventUuid":"u1","replayId":2}},"channel":"/event/E__e"},
            {"data":{"schema":"s","payload":{"Message_Id__c":"a01B"},"event":{"EventUuid":"u2","replayId":7}},"channel":"/event/E__e"},
            {"clientId":"c","channel":"/meta/connect","id":"3","successful":true}]"#;

        let answer = answer(body);

        assert!(meta_reply(&answer.replies, CONNECT).unwrap().successful);
        let events = answer.events().unwrap();
        let ids: Vec<_> = events
            .iter()
            .map(|e| (e.replay_id, e.field("Message_Id__c")))
            .collect();
        assert_eq!(ids, [(2, Some("a01A")), (7, Some("a01B"))]);
    }

    #[test]
    fn events_are_held_as_the_caller_turns_them_while_the_answer_is_read() {
        let body = br#"[{"data":{"payload":{"Message_Id__c":"a01A"},"event":{"replayId":2}},"channel":"/event/E__e"},
            {"data":{"payload":{"Message_Id__c":"a01B"},"event":{"replayId":7}},"channel":"/event/E__e"},
            {"channel":"/meta/connect","successful":true}]"#;
        let mut reader = AnswerReader::keeping("/event/E__e", |event| event.replay_id);
        for piece in body.chunks(5) {
            reader.feed(piece);
        }

        let answer = reader.finish(StatusCode::OK, "connect").unwrap();

        assert_eq!(answer.replies.len(), 1);
        assert_eq!(answer.events().unwrap(), [2, 7]);
    }

    #[test]
    fn events_keep_only_the_payload_fields_the_client_was_told_to_keep() {
        let body = br#"[{"data":{"payload":{"CreatedDate":"2026-11-24T18:31:40.517Z","Message_Id__c":"a01A","Business_Number_Id__c":"1065"},"event":{"replayId":2}},"channel":"/event/E__e"},
            {"channel":"/meta/connect","successful":true}]"#;
        let mut reader = AnswerReader::new("/event/E__e");
        reader.answer.kept_fields = Some(&["Message_Id__c"]);
        reader.feed(body);

        let events = reader
            .finish(StatusCode::OK, "connect")
            .unwrap()
            .events()
            .unwrap();

        let fields: Vec<_> = events[0].fields.iter().collect();
        assert_eq!(fields, [("Message_Id__c", "a01A")]);
    }

    #[test]
    fn events_after_the_connect_reply_are_returned_too() {
        let body = r#"[{"channel":"/meta/connect","successful":true,"advice":{"interval":0,"timeout":110000,"reconnect":"retry"}},
            {"data":{"payload":{"Message_Id__c":"a01A"},"event":{"replayId":5}},"channel":"/event/E__e"}]"#;

        let events = answer(body).events().unwrap();

        assert_eq!(events.len(), 1);
        assert_eq!(events[0].replay_id, 5);
    }

    #[test]
    fn a_single_object_body_is_read_as_one_message() {
        let messages = messages(r#" {"channel":"/meta/connect","successful":true}"#);

        assert_eq!(messages.len(), 1);
        assert!(messages[0].successful);
    }

    #[test]
    fn an_event_without_a_replay_id_is_a_protocol_error() {
        let body =
            r#"[{"data":{"payload":{"Message_Id__c":"a01A"},"event":{}},"channel":"/event/E__e"}]"#;

        let result = answer(body).events();

        assert!(
            matches!(result, Err(CometdError::Protocol(_))),
            "{result:?}"
        );
    }

    #[test]
    fn an_event_whose_replay_id_is_not_a_number_is_a_protocol_error_not_an_unreadable_answer() {
        let body = r#"[{"data":{"payload":{"Message_Id__c":"a01A"},"event":{"replayId":"7"}},"channel":"/event/E__e"},
            {"channel":"/meta/connect","successful":true}]"#;

        let result = answer(body).events();

        assert!(
            matches!(result, Err(CometdError::Protocol(_))),
            "{result:?}"
        );
    }

    #[test]
    fn a_missing_or_non_string_field_reads_as_none() {
        let body = r#"[{"data":{"payload":{"Message_Id__c":null,"Count__c":3},"event":{"replayId":1}},"channel":"/event/E__e"}]"#;
        let event = answer(body).events().unwrap().remove(0);

        assert_eq!(event.field("Message_Id__c"), None);
        assert_eq!(event.field("Count__c"), None);
        assert_eq!(event.field("Other__c"), None);
    }

    #[test]
    fn unknown_client_is_recognised_by_error_or_by_handshake_advice() {
        let by_error = refusal(
            r#"[{"advice":{"reconnect":"handshake","interval":0},"channel":"/meta/connect","error":"403::Unknown client","successful":false}]"#,
            ReplayFrom::New,
        );
        let by_advice = refusal(
            r#"[{"advice":{"reconnect":"handshake"},"channel":"/meta/connect","error":"402::Something else","successful":false}]"#,
            ReplayFrom::New,
        );

        assert_eq!(by_error, CometdError::UnknownClient);
        assert_eq!(by_advice, CometdError::UnknownClient);
    }

    #[test]
    fn authentication_invalid_wins_even_when_only_salesforces_failure_reason_says_so() {
        let connect = refusal(
            r#"[{"advice":{"reconnect":"none","interval":0},"channel":"/meta/connect","error":"401::Authentication invalid","successful":false}]"#,
            ReplayFrom::New,
        );
        let handshake = refusal(
            r#"[{"ext":{"sfdc":{"failureReason":"401::Authentication invalid"},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"1","error":"403::Handshake denied","successful":false}]"#,
            ReplayFrom::New,
        );

        assert_eq!(connect, CometdError::AuthInvalid);
        assert_eq!(handshake, CometdError::AuthInvalid);
    }

    #[test]
    fn stale_replay_carries_the_id_salesforce_names() {
        let message = "400::The replayId {82} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.";
        let body =
            json!([{"channel":"/meta/subscribe","error":message,"successful":false}]).to_string();

        let error = refusal(&body, ReplayFrom::After(82));

        assert_eq!(
            error,
            CometdError::StaleReplay {
                replay_id: 82,
                message: message.into()
            }
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_refusal_for_another_reason_is_a_protocol_error_naming_it() {
        let error = refusal(
            r#"[{"channel":"/meta/subscribe","error":"403::Subscription denied","successful":false}]"#,
            ReplayFrom::New,
        );

        let CometdError::Protocol(detail) = &error else {
            panic!("expected Protocol, got {error:?}");
        };
        assert!(detail.contains("Subscription denied"), "{detail}");
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_channel_that_does_not_exist_is_named_with_how_to_create_it() {
        let error = refusal(
            r#"[{"channel":"/meta/subscribe","error":"400::The channel you requested to subscribe to does not exist {/event/Sfwa_Shard_A__chn}","successful":false}]"#,
            ReplayFrom::New,
        );

        assert_eq!(
            error,
            CometdError::NoSuchChannel {
                channel: "/event/Sfwa_Shard_A__chn".into()
            }
        );
        let text = error.to_string();
        assert!(text.contains("/event/Sfwa_Shard_A__chn"), "{text}");
        assert!(text.contains("PlatformEventChannelMember"), "{text}");
        assert!(text.contains("salesforce/shards/README.md"), "{text}");
        assert!(!error.is_retryable());
    }

    #[test]
    fn http_answers_are_classified_by_what_the_caller_must_do() {
        let html = b"<html>Service Unavailable</html>";

        let unavailable = read(StatusCode::SERVICE_UNAVAILABLE, html, "connect");
        let unauthorized = read(StatusCode::UNAUTHORIZED, b"", "connect");
        let too_large = read(StatusCode::PAYLOAD_TOO_LARGE, b"", "subscribe");
        let not_bayeux = read(StatusCode::OK, html, "handshake");
        let cut_off = read(
            StatusCode::OK,
            br#"[{"channel":"/meta/connect","#,
            "connect",
        );

        assert!(
            matches!(unavailable, Err(CometdError::Transport(_))),
            "{unavailable:?}"
        );
        assert_eq!(unauthorized.unwrap_err(), CometdError::AuthInvalid);
        assert!(
            matches!(too_large, Err(CometdError::Protocol(_))),
            "{too_large:?}"
        );
        assert!(
            matches!(not_bayeux, Err(CometdError::Protocol(_))),
            "{not_bayeux:?}"
        );
        assert!(
            matches!(&cut_off, Err(CometdError::Protocol(e)) if e.contains("/meta/connect")),
            "{cut_off:?}"
        );
    }

    #[test]
    fn a_large_answer_is_read_message_by_message_into_the_same_events_and_reply() {
        let event = |n: usize| {
            format!(
                r#"{{"data":{{"schema":"s","payload":{{"CreatedDate":"2026-11-24T18:31:40.517Z","Message_Id__c":"a01{n:015}"}},"event":{{"EventUuid":"u{n}","replayId":{n}}}}},"channel":"/event/E__e"}}"#
            )
        };
        let mut body = String::from("[");
        for n in 1..=5_000 {
            body.push_str(&event(n));
            body.push(',');
        }
        body.push_str(r#"{"channel":"/meta/connect","successful":true}]"#);

        let mut reader = AnswerReader::new("/event/E__e");
        // Pieces as a network delivers them: uneven, and most cut a message in two.
        let mut rest = body.as_bytes();
        for size in [1, 5_000, 16_384, 3, 65_536].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at((*size).min(rest.len()));
            reader.feed(piece);
            rest = after;
        }
        let answer = reader.finish(StatusCode::OK, "connect").unwrap();

        assert!(meta_reply(&answer.replies, CONNECT).unwrap().successful);
        let events = answer.events().unwrap();
        assert_eq!(events.len(), 5_000);
        for (n, event) in (1..).zip(&events) {
            assert_eq!(event.replay_id, n as i64);
            assert_eq!(
                event.field("Message_Id__c"),
                Some(format!("a01{n:015}").as_str())
            );
        }
    }

    #[test]
    fn a_stale_replay_reported_on_connect_is_recognised_too() {
        let error = refusal(
            r#"[{"advice":{"reconnect":"handshake","interval":0},"channel":"/meta/connect","error":"400::The replayId {9} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.","successful":false}]"#,
            ReplayFrom::After(9),
        );

        assert!(
            matches!(error, CometdError::StaleReplay { replay_id: 9, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn replay_counts_as_enabled_only_when_the_handshake_echoes_it() {
        let echoed = messages(
            r#"[{"ext":{"replay":true,"payload.format":true},"clientId":"c","channel":"/meta/handshake","successful":true}]"#,
        );
        let absent =
            messages(r#"[{"clientId":"c","channel":"/meta/handshake","successful":true}]"#);
        let refused = messages(
            r#"[{"ext":{"replay":false},"clientId":"c","channel":"/meta/handshake","successful":true}]"#,
        );

        assert!(echoed[0].replay_enabled());
        assert!(!absent[0].replay_enabled());
        assert!(!refused[0].replay_enabled());
    }

    #[test]
    fn replay_positions_have_salesforces_wire_values() {
        assert_eq!(ReplayFrom::New.wire_value(), -1);
        assert_eq!(ReplayFrom::All.wire_value(), -2);
        assert_eq!(ReplayFrom::After(1234).wire_value(), 1234);
    }

    #[test]
    fn a_meta_channel_is_not_a_subscription_target() {
        let client = SalesforceClient::new(
            reqwest::Client::new(),
            super::super::SalesforceConfig {
                login_url: "https://login.salesforce.com".into(),
                api_version: "62.0".into(),
                auth: super::super::Auth::ClientCredentials {
                    client_id: "id".into(),
                    client_secret: "secret".into(),
                },
                timeout: Duration::from_secs(1),
            },
        )
        .unwrap();

        assert!(matches!(
            CometdClient::new(client, "/meta/connect"),
            Err(CometdError::Protocol(_))
        ));
    }
}
