//! Bayeux messages as they cross the wire: requests parsed at the edge, replies and event deliveries
//! serialised with Salesforce's field order.
//!
//! Replies are structs, not `serde_json::Value`s, because without serde_json's `preserve_order` a `Value`
//! sorts its keys; the struct field order below reproduces the traces real clients have logged:
//! - handshake: `ext, minimumVersion, clientId, supportedConnectionTypes, channel, id, version, successful`
//! - refused handshake: `ext, advice, channel, id, error, successful`
//! - subscribe: `clientId, channel, id, subscription, [error,] successful`
//! - refused connect: `advice, channel, id, error, successful`

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bus::PublishedEvent;

pub const HANDSHAKE: &str = "/meta/handshake";
pub const CONNECT: &str = "/meta/connect";
pub const SUBSCRIBE: &str = "/meta/subscribe";
pub const UNSUBSCRIBE: &str = "/meta/unsubscribe";
pub const DISCONNECT: &str = "/meta/disconnect";

/// One message of a request body. Only the fields the simulator reads; the rest are ignored.
#[derive(Debug, Deserialize)]
pub struct Request {
    pub channel: String,
    #[serde(rename = "clientId")]
    pub client_id: Option<String>,
    /// Echoed verbatim: clients send strings ("3"), but Bayeux does not forbid numbers.
    pub id: Option<Value>,
    pub subscription: Option<Value>,
    pub ext: Option<Value>,
    pub advice: Option<Value>,
}

impl Request {
    /// The subscription channel, if it is a string (Bayeux also allows arrays; clients send strings).
    pub fn subscription(&self) -> Option<&str> {
        self.subscription.as_ref().and_then(Value::as_str)
    }

    /// `ext.replay` of a subscribe: the channel → replay position map, if the client sent one.
    pub fn replay_map(&self) -> Option<&Map<String, Value>> {
        self.ext.as_ref()?.get("replay")?.as_object()
    }

    /// `ext.replay: true` on a handshake.
    pub fn asks_for_replay(&self) -> bool {
        self.ext
            .as_ref()
            .and_then(|ext| ext.get("replay"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `advice.timeout` of a connect in ms. CometD clients send 0 on their first connect to get an
    /// immediate answer.
    pub fn advised_timeout_ms(&self) -> Option<u64> {
        self.advice.as_ref()?.get("timeout")?.as_u64()
    }
}

/// Parses a request body: a JSON array of messages (Bayeux also allows a single object).
pub fn parse_body(body: &[u8]) -> Result<Vec<Request>, serde_json::Error> {
    match serde_json::from_slice::<Value>(body)? {
        Value::Array(items) => items.into_iter().map(serde_json::from_value).collect(),
        single => Ok(vec![serde_json::from_value(single)?]),
    }
}

/// What goes into a response array, in order: event deliveries first, then the meta reply.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outgoing {
    Reply(Reply),
    Event(EventMessage),
}

/// A reply on a `/meta/*` channel. Absent fields are omitted, never `null`.
#[derive(Debug, Default, Serialize)]
pub struct Reply {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext: Option<ReplyExt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<Advice>,
    #[serde(rename = "minimumVersion", skip_serializing_if = "Option::is_none")]
    pub minimum_version: Option<&'static str>,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(
        rename = "supportedConnectionTypes",
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_connection_types: Option<[&'static str; 1]>,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub successful: bool,
}

impl Reply {
    /// A reply on the request's channel carrying its id.
    pub fn to(request: &Request) -> Self {
        Reply {
            channel: request.channel.clone(),
            id: request.id.clone(),
            ..Reply::default()
        }
    }

    /// `403::Unknown client` with advice to handshake again: the client id is not (or no longer) known.
    pub fn unknown_client(request: &Request) -> Self {
        Reply {
            advice: Some(Advice::Failure(FailureAdvice {
                reconnect: "handshake",
                interval: Some(0),
            })),
            subscription: request.subscription().map(str::to_owned),
            error: Some("403::Unknown client".into()),
            ..Reply::to(request)
        }
    }

    /// `401::Authentication invalid` with advice not to retry: the bearer token is not a valid session.
    pub fn authentication_invalid(request: &Request) -> Self {
        Reply {
            advice: Some(Advice::Failure(FailureAdvice {
                reconnect: "none",
                interval: Some(0),
            })),
            client_id: request.client_id.clone(),
            subscription: request.subscription().map(str::to_owned),
            error: Some("401::Authentication invalid".into()),
            ..Reply::to(request)
        }
    }
}

/// The `ext` of handshake replies. Field order as Salesforce: `sfdc`, `replay`, `payload.format`.
#[derive(Debug, Serialize)]
pub struct ReplyExt {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sfdc: Option<SfdcExt>,
    pub replay: bool,
    #[serde(rename = "payload.format")]
    pub payload_format: bool,
}

/// Salesforce's reason for a refused handshake (added in Spring '18).
#[derive(Debug, Serialize)]
pub struct SfdcExt {
    #[serde(rename = "failureReason")]
    pub failure_reason: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Advice {
    /// On the first connect: `{"interval":0,"timeout":110000,"reconnect":"retry"}`.
    Poll(PollAdvice),
    /// On failures: `{"reconnect":"handshake","interval":0}` or `{"reconnect":"none"}`.
    Failure(FailureAdvice),
}

#[derive(Debug, Serialize)]
pub struct PollAdvice {
    pub interval: u64,
    pub timeout: u64,
    pub reconnect: &'static str,
}

#[derive(Debug, Serialize)]
pub struct FailureAdvice {
    pub reconnect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

/// An event delivered on a connect:
/// `{"data":{"schema":…,"payload":{…},"event":{"EventUuid":…,"replayId":N}},"channel":…}`.
#[derive(Debug, Serialize)]
pub struct EventMessage {
    pub data: EventData,
    pub channel: String,
}

#[derive(Debug, Serialize)]
pub struct EventData {
    pub schema: String,
    pub payload: Payload,
    pub event: EventHeader,
}

#[derive(Debug, Serialize)]
pub struct EventHeader {
    #[serde(rename = "EventUuid")]
    pub event_uuid: String,
    #[serde(rename = "replayId")]
    pub replay_id: i64,
}

/// The event's fields: `CreatedDate`, `CreatedById`, then the publisher's fields.
#[derive(Debug)]
pub struct Payload(pub Vec<(String, Value)>);

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl EventMessage {
    pub fn new(channel: &str, schema: &str, event: &PublishedEvent) -> Self {
        EventMessage {
            data: EventData {
                schema: schema.to_owned(),
                payload: Payload(event.payload_fields()),
                event: EventHeader {
                    event_uuid: event.event_uuid.clone(),
                    replay_id: event.replay_id,
                },
            },
            channel: channel.to_owned(),
        }
    }
}
