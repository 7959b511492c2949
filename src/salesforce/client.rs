//! The shared Salesforce REST client: one cached session for every clone, the request loop
//! (re-authenticate once on `INVALID_SESSION_ID`, classify the answer, read `Sforce-Limit-Info`),
//! and SOQL queries with pagination. Collections live in [`super::collections`], describe in
//! [`super::describe`].

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{Auth, Login, Session};
use super::error::SalesforceError;
use super::usage::ApiUsage;

/// Where and how to reach the org.
#[derive(Clone, Debug)]
pub struct SalesforceConfig {
    /// `https://login.salesforce.com`, `https://test.salesforce.com` or the My Domain URL; only the
    /// token request goes here (REST goes to the `instance_url` the login returns).
    pub login_url: String,
    /// REST API version, e.g. `"62.0"` (a leading `v` is accepted).
    pub api_version: String,
    pub auth: Auth,
    /// Per HTTP request, login included.
    pub timeout: Duration,
}

/// The Salesforce REST client. Cheap to clone: clones share the session, the usage reading and the
/// call counter.
#[derive(Clone)]
pub struct SalesforceClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    login: Login,
    login_url: String,
    /// `62.0`, without the `v`.
    api_version: String,
    timeout: Duration,
    /// The cached session. A plain mutex: it is only held to copy or swap the value, never across
    /// an `.await`.
    session: Mutex<Option<Session>>,
    /// Held while logging in, so callers that find no session wait for one login instead of each
    /// starting their own (Salesforce rate-limits logins per user).
    login_gate: tokio::sync::Mutex<()>,
    /// The latest `Sforce-Limit-Info` reading.
    usage: Mutex<Option<ApiUsage>>,
    /// REST requests sent (each one is an API call as Salesforce counts them, unless it was refused
    /// before being charged, e.g. an expired session).
    calls: AtomicU64,
    /// [`AuthState`] as a number: what the last login or call said about the credentials.
    auth_state: AtomicU8,
}

/// Whether the credentials currently work, as the last login or REST call showed (readiness reads
/// this instead of spending an API call per probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthState {
    /// No login attempted yet, or none got an answer.
    NoSession,
    /// A session was obtained and the last call did not fail authentication.
    Valid,
    /// The last login was refused, or a fresh session was refused too ([`SalesforceError::Auth`]).
    Refused,
}

impl AuthState {
    fn from_u8(value: u8) -> AuthState {
        match value {
            1 => AuthState::Valid,
            2 => AuthState::Refused,
            _ => AuthState::NoSession,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            AuthState::NoSession => 0,
            AuthState::Valid => 1,
            AuthState::Refused => 2,
        }
    }
}

impl fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("SalesforceClient")
            .field("login_url", &inner.login_url)
            .field("api_version", &inner.api_version)
            .field("auth", inner.login.auth())
            .field("logged_in", &lock(&inner.session).is_some())
            .field("calls_made", &self.calls_made())
            .finish()
    }
}

/// A poisoned lock only means another thread panicked mid-copy of plain data; the data is still
/// usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Salesforce's error body: `[{"message":"…","errorCode":"…","fields":[…]}]`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_code: String,
}

/// One page of a query's answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryPage<T> {
    #[serde(default)]
    done: bool,
    next_records_url: Option<String>,
    records: Vec<T>,
}

impl SalesforceClient {
    /// Builds the client; a JWT bearer key that is not a PEM RSA private key is refused here, at
    /// start-up. Nothing is sent until the first call.
    pub fn new(
        http: reqwest::Client,
        config: SalesforceConfig,
    ) -> Result<SalesforceClient, SalesforceError> {
        let login = Login::prepare(&config.login_url, config.auth)?;
        Ok(SalesforceClient {
            inner: Arc::new(Inner {
                http,
                login,
                login_url: config.login_url.trim_end_matches('/').to_string(),
                api_version: config.api_version.trim_start_matches('v').to_string(),
                timeout: config.timeout,
                session: Mutex::new(None),
                login_gate: tokio::sync::Mutex::new(()),
                usage: Mutex::new(None),
                calls: AtomicU64::new(0),
                auth_state: AtomicU8::new(AuthState::NoSession.as_u8()),
            }),
        })
    }

    /// A valid session, logging in if there is none: `(access_token, instance_url)` for REST and
    /// the CometD client. Concurrent callers share one login.
    pub async fn session(&self) -> Result<Session, SalesforceError> {
        if let Some(session) = lock(&self.inner.session).clone() {
            return Ok(session);
        }
        let _gate = self.inner.login_gate.lock().await;
        // Whoever held the gate before us may have logged in already.
        if let Some(session) = lock(&self.inner.session).clone() {
            return Ok(session);
        }
        let session = self
            .inner
            .login
            .request_token(&self.inner.http, self.inner.timeout)
            .await
            .inspect_err(|error| self.note_auth_failure(error))?;
        *lock(&self.inner.session) = Some(session.clone());
        self.set_auth_state(AuthState::Valid);
        Ok(session)
    }

    /// What the last login or REST call showed about the credentials.
    pub fn auth_state(&self) -> AuthState {
        AuthState::from_u8(self.inner.auth_state.load(Ordering::Acquire))
    }

    fn set_auth_state(&self, state: AuthState) {
        self.inner
            .auth_state
            .store(state.as_u8(), Ordering::Release);
    }

    /// Only an authentication refusal changes the state: an outage says nothing about credentials.
    fn note_auth_failure(&self, error: &SalesforceError) {
        if matches!(error, SalesforceError::Auth { .. }) {
            self.set_auth_state(AuthState::Refused);
        }
    }

    /// Forgets the cached session if it is still `token` (e.g. after CometD answered
    /// `401::Authentication invalid`), so the next call logs in again. A token that was already
    /// replaced is left alone: a late 401 must not throw away a fresh session.
    pub fn invalidate_session(&self, token: &str) {
        let mut session = lock(&self.inner.session);
        if session.as_ref().is_some_and(|s| s.access_token == token) {
            *session = None;
        }
    }

    /// The API version without the `v` (e.g. `62.0`), as the CometD endpoint `/cometd/62.0` wants it.
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The latest `Sforce-Limit-Info` reading; `None` before any REST call.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        *lock(&self.inner.usage)
    }

    /// REST requests this client (and its clones) has sent.
    pub fn calls_made(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Runs a SOQL query and follows every `nextRecordsUrl`, returning all records deserialised.
    /// Each page is one API call.
    #[tracing::instrument(skip_all, fields(records, pages))]
    pub async fn query<T: DeserializeOwned>(&self, soql: &str) -> Result<Vec<T>, SalesforceError> {
        let body = self
            .send(Method::GET, "query", &[("q", soql)], None)
            .await?;
        let page: QueryPage<T> = parse(&body, "query page")?;
        let (records, pages) = self.follow_pages(page).await?;
        let span = tracing::Span::current();
        span.record("records", records.len());
        span.record("pages", pages);
        Ok(records)
    }

    /// The records of `page` and of every page after it (each `nextRecordsUrl` one GET), and how
    /// many pages that was.
    pub(crate) async fn follow_pages<T: DeserializeOwned>(
        &self,
        mut page: QueryPage<T>,
    ) -> Result<(Vec<T>, usize), SalesforceError> {
        let mut records = Vec::new();
        let mut pages = 1;
        loop {
            records.append(&mut page.records);
            match page.next_records_url {
                Some(next) if !page.done => {
                    let body = self.send(Method::GET, &next, &[], None).await?;
                    page = parse(&body, "query page")?;
                    pages += 1;
                }
                _ => return Ok((records, pages)),
            }
        }
    }

    /// Runs a SOSL search (`GET search?q=`, the text URL-encoded): the `searchRecords` of every
    /// object in one list, each naming its object in `attributes.type`. One API call (SOSL has no
    /// pages; at most [`super::sosl::MAX_SEARCH_RESULTS`] records). Build the text with
    /// [`super::sosl`] so outside values are escaped.
    #[tracing::instrument(skip_all, fields(records))]
    pub async fn search(&self, sosl: &str) -> Result<Vec<Value>, SalesforceError> {
        #[derive(serde::Deserialize)]
        struct SearchAnswer {
            #[serde(rename = "searchRecords", default)]
            search_records: Vec<Value>,
        }
        let body = self
            .send(Method::GET, "search", &[("q", sosl)], None)
            .await?;
        let answer: SearchAnswer = parse(&body, "search result")?;
        tracing::Span::current().record("records", answer.search_records.len());
        Ok(answer.search_records)
    }

    /// One REST request with the session, re-authenticating once on `INVALID_SESSION_ID`.
    /// `path` is relative to `/services/data/vNN.N/`, or absolute when it starts with `/` (as
    /// `nextRecordsUrl` is). Returns the body of a 2xx answer.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Bytes, SalesforceError> {
        self.send_within(method, path, query, body, self.inner.timeout)
            .await
    }

    /// [`Self::send`] with its own per-request timeout (a file's bytes take longer than a query).
    pub(crate) async fn send_within(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Bytes, SalesforceError> {
        let body = body.map(json_bytes).transpose()?;
        self.exchange(method, path, query, body, timeout).await
    }

    /// [`Self::send`] with a body of any serialisable shape: a collections or composite write
    /// written straight from the records' JSON, with no `Value` tree built for it.
    pub(crate) async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Bytes, SalesforceError> {
        let body = json_bytes(body)?;
        self.exchange(method, path, &[], Some(body), self.inner.timeout)
            .await
    }

    /// The request loop behind every `send`: the body was serialised once, and a retry after a
    /// new login sends the same bytes (a cheap clone of `Bytes`).
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, SalesforceError> {
        let mut session = self.session().await?;
        let mut reauthenticated = false;
        loop {
            let request = (&method, path, query, body.as_ref(), timeout);
            match self.attempt(&session, request).await {
                Err(Attempt::SessionRefused(message)) => {
                    if reauthenticated {
                        let error = SalesforceError::auth("INVALID_SESSION_ID", &message);
                        self.note_auth_failure(&error);
                        return Err(error);
                    }
                    tracing::info!("session expired; logging in again");
                    self.invalidate_session(&session.access_token);
                    session = self.session().await?;
                    reauthenticated = true;
                }
                Err(Attempt::Failed(error)) => return Err(error),
                Ok(body) => {
                    self.set_auth_state(AuthState::Valid);
                    return Ok(body);
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(method = %request.0, endpoint = endpoint_label(request.1), status))]
    async fn attempt(&self, session: &Session, request: Request<'_>) -> Result<Bytes, Attempt> {
        let (method, path, query, body, timeout) = request;
        let url = if path.starts_with('/') {
            format!("{}{path}", session.instance_url)
        } else {
            format!(
                "{}/services/data/v{}/{path}",
                session.instance_url, self.inner.api_version
            )
        };
        let mut request = self
            .inner
            .http
            .request(method.clone(), url)
            .bearer_auth(&session.access_token)
            .timeout(timeout);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| {
            // A read cannot do harm twice, and a refused connection never reached Salesforce; any
            // other failure of a write leaves its outcome unknown.
            Attempt::Failed(if e.is_connect() || *method == Method::GET {
                SalesforceError::Unavailable(format!("request failed: {e}"))
            } else {
                SalesforceError::BadResponse(format!("no answer to the write: {e}"))
            })
        })?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        if let Some(usage) = response
            .headers()
            .get("Sforce-Limit-Info")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiUsage::parse)
        {
            *lock(&self.inner.usage) = Some(usage);
        }
        let bytes = response.bytes().await.map_err(|e| {
            Attempt::Failed(SalesforceError::BadResponse(format!(
                "answer cut off ({status}): {e}"
            )))
        })?;
        if status.is_success() {
            return Ok(bytes);
        }
        let (error_code, message) = error_parts(&bytes);
        tracing::debug!(%error_code, %message, "Salesforce refused the request");
        if status == StatusCode::UNAUTHORIZED {
            return Err(Attempt::SessionRefused(message));
        }
        Err(Attempt::Failed(refusal(status, error_code, message)))
    }
}

/// Salesforce's error code and message from an error answer's body (the first of its
/// `[{"message","errorCode"}]`), or a little of a body that is not one.
pub(crate) fn error_parts(bytes: &[u8]) -> (String, String) {
    match serde_json::from_slice::<Vec<ApiErrorBody>>(bytes) {
        Ok(errors) if !errors.is_empty() => {
            (errors[0].error_code.clone(), errors[0].message.clone())
        }
        // 5xx pages from a load balancer are HTML; show a little of them.
        _ => (
            String::new(),
            String::from_utf8_lossy(bytes).chars().take(200).collect(),
        ),
    }
}

/// What an error answer other than a 401 means for the caller. The same for a whole request and
/// for one subrequest of a composite call ([`super::composite`]).
pub(crate) fn refusal(status: StatusCode, error_code: String, message: String) -> SalesforceError {
    match status {
        StatusCode::FORBIDDEN if error_code == "REQUEST_LIMIT_EXCEEDED" => {
            SalesforceError::LimitExceeded
        }
        s if s.is_server_error() => {
            SalesforceError::Unavailable(format!("{status} {error_code}: {message}"))
        }
        _ => SalesforceError::Api {
            status: status.as_u16(),
            error_code,
            message,
        },
    }
}

/// One REST request: method, path, query, JSON body, timeout.
type Request<'a> = (
    &'a Method,
    &'a str,
    &'a [(&'a str, &'a str)],
    Option<&'a Bytes>,
    Duration,
);

/// A request body as JSON bytes.
pub(crate) fn json_bytes(body: &impl Serialize) -> Result<Bytes, SalesforceError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(unwritable_body)
}

/// Serialising JSON values and records into memory has no way to fail; were one to, it is
/// refused as Salesforce refuses a body it cannot read (400 `JSON_PARSER_ERROR`), so a write-back
/// treats it as bad data in the call, not as an outage.
pub(crate) fn unwritable_body(error: serde_json::Error) -> SalesforceError {
    SalesforceError::Api {
        status: 400,
        error_code: "JSON_PARSER_ERROR".into(),
        message: format!("the request body could not be written as JSON: {error}"),
    }
}

/// How one attempt ended when it did not succeed.
enum Attempt {
    /// 401: the session is no longer valid (Salesforce's message).
    SessionRefused(String),
    Failed(SalesforceError),
}

/// Deserialises a 2xx body; a body of the wrong shape is an unreadable answer.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, SalesforceError> {
    serde_json::from_slice(body)
        .map_err(|e| SalesforceError::BadResponse(format!("unexpected {what}: {e}")))
}

/// The endpoint without Ids or query locators, for spans (`query`, `composite/sobjects`, …).
fn endpoint_label(path: &str) -> &str {
    let path = path
        .strip_prefix("/services/data/")
        .map(|rest| rest.split_once('/').map_or(rest, |(_, p)| p))
        .unwrap_or(path);
    match path.split_once('/') {
        Some(("query", _)) => "query",
        Some(("sobjects", rest)) if rest.ends_with("/describe") => "sobjects/describe",
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint_label;

    #[test]
    fn endpoint_labels_hide_locators() {
        assert_eq!(endpoint_label("query"), "query");
        assert_eq!(
            endpoint_label("/services/data/v62.0/query/01gD0000002HU6KIAW-2000"),
            "query"
        );
        assert_eq!(endpoint_label("composite/sobjects"), "composite/sobjects");
    }
}
