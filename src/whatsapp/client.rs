//! [`WhatsAppClient`]: the HTTP calls to the Graph API, and what each failure means.
//!
//! A send ends in exactly one of: [`Accepted`] (Meta has the message), [`SendError::Meta`] (Meta said
//! no — see [`MetaError::action`]), [`SendError::NotSent`] (nothing left this machine, retry freely),
//! or an unknown outcome ([`SendError::OutcomeUnknown`], [`SendError::BadResponse`]), which the
//! dispatcher resolves from the `biz_opaque_callback_data` echo before re-sending (DESIGN.md
//! guarantee 1).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::connections::SendConnections;
use super::error::MetaError;
use super::request::request_body;
use super::subscriptions::{AppSubscription, AppToken, DataList, SubscribedApp};
use crate::domain::ids::{CustomerId, Wamid};
use crate::domain::message::OutboundMessage;

/// Where and how to reach the Cloud API.
#[derive(Clone)]
pub struct WhatsAppConfig {
    /// `https://graph.facebook.com`, or a simulator's URL.
    pub api_base: String,
    /// Graph API version, e.g. `v25.0` (see [`super::versions`]).
    pub api_version: String,
    /// System-user access token. Secret: never printed by `Debug`.
    pub access_token: String,
    /// Whole-request timeout. Past it the outcome of a send is unknown.
    pub timeout: Duration,
}

impl fmt::Debug for WhatsAppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppConfig")
            .field("api_base", &self.api_base)
            .field("api_version", &self.api_version)
            .field("access_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The Cloud API client. Cheap to clone (the `reqwest::Client` is a shared pool).
#[derive(Clone, Debug)]
pub struct WhatsAppClient {
    http: reqwest::Client,
    /// Where sends go, when set: several sends per connection over HTTP/2 (`connections`).
    /// Unset, sends use `http` like every other call.
    sends: Option<Arc<SendConnections>>,
    config: WhatsAppConfig,
    /// What every send repeats, made once: the versioned base URL and the `Authorization` header.
    send_parts: SendParts,
}

/// The parts of `POST /{version}/{phone_number_id}/messages` that are the same on every send,
/// built once (parsing the URL again on every send was 1.3 % of a backlog's CPU, docs/performance.md,
/// thirteenth measurement). `None` when the configuration cannot make them (a base that is not a
/// URL, a token that is not a header value): sends then build them each time and fail as they
/// always did.
#[derive(Clone, Debug)]
struct SendParts {
    /// `{api_base}/{api_version}/`, to which a send adds `{phone_number_id}/messages`.
    versioned: Option<reqwest::Url>,
    /// `Bearer {access_token}`, marked sensitive (never printed).
    authorization: Option<reqwest::header::HeaderValue>,
}

impl SendParts {
    fn new(config: &WhatsAppConfig) -> SendParts {
        let versioned = reqwest::Url::parse(&versioned_base(config))
            .ok()
            .filter(|url| !url.cannot_be_a_base());
        let authorization =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", config.access_token))
                .ok()
                .map(|mut value| {
                    value.set_sensitive(true);
                    value
                });
        SendParts {
            versioned,
            authorization,
        }
    }

    /// `{api_base}/{api_version}/{phone_number_id}/messages`, without parsing it again.
    fn messages_url(&self, phone_number_id: &str) -> Option<reqwest::Url> {
        let mut url = self.versioned.clone()?;
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .push(phone_number_id)
            .push("messages");
        Some(url)
    }
}

/// `{api_base}/{api_version}`: where every Graph path starts.
fn versioned_base(config: &WhatsAppConfig) -> String {
    format!(
        "{}/{}",
        config.api_base.trim_end_matches('/'),
        config.api_version
    )
}

/// Meta accepted the message (200): it is not delivered yet — statuses follow by webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub wamid: Wamid,
    /// The recipient's WhatsApp id as Meta resolved it (may differ from the number sent to);
    /// `None` if Meta did not say, or said something that is not one.
    pub wa_id: Option<CustomerId>,
}

/// The business number as Meta knows it, for `sfwa doctor`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PhoneNumberInfo {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub verified_name: Option<String>,
    #[serde(default)]
    pub display_phone_number: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    #[serde(default)]
    pub quality_rating: Option<String>,
    #[serde(default)]
    pub code_verification_status: Option<String>,
    #[serde(default)]
    pub messaging_limit_tier: Option<String>,
    /// `{"level": "STANDARD" | "HIGH"}`: Meta's throughput level for the number.
    #[serde(default)]
    pub throughput: Option<ThroughputLevel>,
    /// The Graph version that answered (the `facebook-api-version` header). Meta answers a call
    /// to a retired version as the oldest version still available, so this differs from the
    /// version asked for once that one has ended.
    #[serde(skip)]
    pub answered_by_version: Option<String>,
}

/// The `throughput` field of a phone number.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ThroughputLevel {
    #[serde(default)]
    pub level: Option<String>,
}

impl PhoneNumberInfo {
    /// Messages per second the number's throughput level stands for (STANDARD = 80, HIGH = 1,000),
    /// if Meta said. Only a hint: Meta's 130429 refusals are the truth (coexistence numbers, used
    /// in the WhatsApp Business app too, are held to 20/s whatever the level).
    pub fn throughput_per_second(&self) -> Option<u32> {
        match self.throughput.as_ref()?.level.as_deref()? {
            "STANDARD" => Some(80),
            "HIGH" => Some(1000),
            _ => None,
        }
    }

    /// The level's name, e.g. `STANDARD`.
    pub fn throughput_level(&self) -> Option<&str> {
        self.throughput.as_ref()?.level.as_deref()
    }
}

/// Why a call did not end in an answer we can use. Variants say what the caller may do.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Meta answered with an error body (classify by code, not HTTP status).
    #[error("WhatsApp refused the request: {0}")]
    Meta(MetaError),
    /// The request never reached Meta (connect/DNS failure): safe to retry, nothing was sent.
    #[error("the request did not reach WhatsApp: {0}")]
    NotSent(String),
    /// Timeout or connection reset after the request was written: Meta may or may not have
    /// accepted it (SEND_OUTCOME_UNKNOWN). Resolved by the callback echo (DESIGN.md guarantee 1).
    #[error("no answer from WhatsApp; the message may or may not have been sent: {0}")]
    OutcomeUnknown(String),
    /// An answer we cannot read (a 200 without a wamid, or a non-JSON error page from a proxy).
    /// Meta may well have accepted the message, so for a send this is an unknown outcome too.
    #[error("unreadable answer from WhatsApp: {0}")]
    BadResponse(String),
}

impl SendError {
    /// Whether Meta may have accepted the message (resolve by the echo before re-sending).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            SendError::OutcomeUnknown(_) | SendError::BadResponse(_)
        )
    }
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    contacts: Vec<SendContact>,
    #[serde(default)]
    messages: Vec<SendMessage>,
}

#[derive(Deserialize)]
struct SendContact {
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct SendMessage {
    id: String,
}

/// Splits transport failures by whether the request can have reached Meta.
/// The status and body of a 2xx answer; Meta's error for any other. The request was written and
/// answered: from here on a failure to read the body is an unknown outcome.
pub(super) async fn successful_body(
    response: reqwest::Response,
) -> Result<(u16, bytes::Bytes), SendError> {
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| SendError::OutcomeUnknown(describe(e)))?;
    if !(200..300).contains(&status) {
        return Err(meta_error(status, &body));
    }
    Ok((status, body))
}

pub(super) fn transport_error(error: reqwest::Error) -> SendError {
    // A connect that failed (refused, DNS) wrote nothing; a connect that timed out is treated as
    // unknown too, conservatively, since reqwest's overall timeout does not say which phase it hit.
    let not_sent = error.is_builder() || (error.is_connect() && !error.is_timeout());
    let text = describe(error);
    if not_sent {
        SendError::NotSent(text)
    } else {
        SendError::OutcomeUnknown(text)
    }
}

/// The error and its causes on one line, without the URL (which never holds the token, but keeps
/// logs short).
pub(super) fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl WhatsAppClient {
    pub fn new(http: reqwest::Client, config: WhatsAppConfig) -> Self {
        Self {
            http,
            sends: None,
            send_parts: SendParts::new(&config),
            config,
        }
    }

    /// Sends go over `connections` (the other, occasional calls keep the shared client).
    pub fn with_send_connections(mut self, connections: Arc<SendConnections>) -> Self {
        self.sends = Some(connections);
        self
    }

    /// The pool and the settings, for the Graph calls kept in sibling modules (`media`).
    pub(super) fn parts(&self) -> (&reqwest::Client, &WhatsAppConfig) {
        (&self.http, &self.config)
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}/{path}", versioned_base(&self.config))
    }

    /// `POST /{version}/{phone_number_id}/messages`; always sets `biz_opaque_callback_data` to the
    /// record Id.
    #[tracing::instrument(skip_all, fields(record_id = %message.record_id, wamid))]
    pub async fn send(
        &self,
        phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<Accepted, SendError> {
        let lease = self.sends.as_deref().map(SendConnections::lease);
        let http = lease.as_ref().map_or(&self.http, |lease| lease.http());
        let request = match self.send_parts.messages_url(phone_number_id) {
            Some(url) => http.post(url),
            None => http.post(self.url(&format!("{phone_number_id}/messages"))),
        };
        let request = match &self.send_parts.authorization {
            Some(authorization) => request.header(reqwest::header::AUTHORIZATION, authorization),
            None => request.bearer_auth(&self.config.access_token),
        };
        let response = request
            .timeout(self.config.timeout)
            .json(&request_body(message))
            .send()
            .await
            .map_err(transport_error)?;
        let (status, body) = successful_body(response).await?;
        let answer: SendResponse = serde_json::from_slice(&body)
            .map_err(|e| SendError::BadResponse(format!("HTTP {status}: {e}")))?;
        let wamid = answer
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| SendError::BadResponse(format!("HTTP {status} without messages[0].id")))?
            .parse::<Wamid>()
            .map_err(|e| SendError::BadResponse(format!("HTTP {status}: messages[0].id: {e}")))?;
        tracing::Span::current().record("wamid", wamid.as_str());
        Ok(Accepted {
            wamid,
            wa_id: answer
                .contacts
                .into_iter()
                .next()
                .and_then(|c| c.wa_id)
                .and_then(|wa_id| wa_id.parse().ok()),
        })
    }

    /// `GET /{version}/{phone_number_id}`: name, number, quality rating and throughput level (for
    /// `sfwa doctor`, and the pace at start-up).
    #[tracing::instrument(skip_all, fields(phone_number_id = %phone_number_id))]
    pub async fn phone_number(&self, phone_number_id: &str) -> Result<PhoneNumberInfo, SendError> {
        let response = self
            .http
            .get(self.url(phone_number_id))
            .query(&[(
                "fields",
                "id,verified_name,display_phone_number,quality_rating,code_verification_status,messaging_limit_tier,throughput",
            )])
            .bearer_auth(&self.config.access_token)
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let answered_by = answered_by_version(&response);
        let (status, body) = successful_body(response).await?;
        let mut info: PhoneNumberInfo = serde_json::from_slice(&body)
            .map_err(|e| SendError::BadResponse(format!("HTTP {status}: {e}")))?;
        info.answered_by_version = answered_by;
        Ok(info)
    }

    /// `GET /{version}/{waba_id}/subscribed_apps` with the system-user token: the apps Meta
    /// delivers this WhatsApp Business Account's webhooks to.
    #[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
    pub async fn subscribed_apps(&self, waba_id: &str) -> Result<Vec<SubscribedApp>, SendError> {
        self.get_list(
            &format!("{waba_id}/subscribed_apps"),
            &self.config.access_token,
        )
        .await
    }

    /// `GET /{version}/{app_id}/subscriptions` with an app token: the objects, callback URL and
    /// fields the app receives webhooks for.
    #[tracing::instrument(skip_all, fields(app_id = %app_id))]
    pub async fn app_subscriptions(
        &self,
        app_id: &str,
        token: &AppToken,
    ) -> Result<Vec<AppSubscription>, SendError> {
        self.get_list(&format!("{app_id}/subscriptions"), token.expose())
            .await
    }

    /// `GET /{version}/{path}?{query}` with the system-user token, answered 200: the body and
    /// its status. The token goes in the Authorization header, never the URL.
    pub(super) async fn get_body(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(u16, bytes::Bytes), SendError> {
        let response = self
            .http
            .get(self.url(path))
            .query(query)
            .bearer_auth(&self.config.access_token)
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(transport_error)?;
        successful_body(response).await
    }

    /// A Graph `{"data": [...]}` read. The token goes in the Authorization header, never the URL.
    async fn get_list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
    ) -> Result<Vec<T>, SendError> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let (status, body) = successful_body(response).await?;
        let list: DataList<T> = serde_json::from_slice(&body)
            .map_err(|e| SendError::BadResponse(format!("HTTP {status}: {e}")))?;
        Ok(list.data)
    }
}

/// The `facebook-api-version` header: the Graph version that actually answered.
fn answered_by_version(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("facebook-api-version")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn meta_error(status: u16, body: &[u8]) -> SendError {
    match MetaError::from_body(status, body) {
        Some(error) => SendError::Meta(error),
        None => SendError::BadResponse(format!(
            "HTTP {status} with a body that is not Meta's error: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(api_base: &str, access_token: &str) -> WhatsAppConfig {
        WhatsAppConfig {
            api_base: api_base.into(),
            api_version: "v25.0".into(),
            access_token: access_token.into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_send_url_made_once_is_the_url_the_path_would_have_named() {
        for base in [
            "https://graph.facebook.com",
            "https://graph.facebook.com/",
            "http://127.0.0.1:8080/graph",
            "http://127.0.0.1:8080/graph/",
        ] {
            let parts = SendParts::new(&config(base, "t"));
            let expected = format!(
                "{}/v25.0/106540352242922/messages",
                base.trim_end_matches('/')
            );
            assert_eq!(
                parts.messages_url("106540352242922").map(String::from),
                Some(expected),
                "{base}"
            );
        }
    }

    #[test]
    fn a_base_or_token_that_cannot_be_made_once_is_left_to_each_send() {
        let parts = SendParts::new(&config("not a url", "line\nbreak"));
        assert_eq!(parts.messages_url("1"), None);
        assert!(parts.authorization.is_none());
    }

    #[test]
    fn the_authorization_made_once_is_sensitive_and_never_printed() {
        let client = WhatsAppClient::new(
            reqwest::Client::new(),
            config("https://graph.facebook.com", "EAAG-secret"),
        );
        let authorization = client.send_parts.authorization.as_ref().unwrap();
        assert!(authorization.is_sensitive());
        assert_eq!(authorization.as_bytes(), b"Bearer EAAG-secret");
        assert!(!format!("{client:?}").contains("EAAG-secret"));
    }
}
