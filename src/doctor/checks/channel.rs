//! "Platform event channel": a handshake and subscribe on the stream's channel (replay -1, so
//! nothing is consumed), then the event's fields.

use crate::doctor::report::Check;
use crate::salesforce::{CometdClient, CometdError, ReplayFrom, SalesforceClient};

pub(in crate::doctor) const CHANNEL: &str = "Platform event channel";

/// The field of the platform event the stream reads (see `pipeline::stream`).
const EVENT_MESSAGE_ID_FIELD: &str = "Message_Id__c";

/// Handshake and subscribe (replay -1: nothing is consumed), disconnect; then the event's fields.
pub(in crate::doctor) async fn check_channel(client: &SalesforceClient, channel: &str) -> Check {
    let name = CHANNEL;
    let event_fix = "deploy the package's WhatsApp_Outbound__e platform event and the \
        WhatsApp_Publish_Outbound Flow (sf project deploy start), and assign the \
        WhatsApp_Integration permission set (read access to the event)";
    let mut cometd = match CometdClient::new(client.clone(), channel) {
        Ok(cometd) => cometd,
        Err(error) => {
            return Check::fail(
                name,
                error.to_string(),
                "set intake.channel to /event/WhatsApp_Outbound__e",
            )
        }
    };
    let subscribed = cometd.subscribe(ReplayFrom::New).await;
    cometd.disconnect().await;
    match subscribed {
        Ok(()) => {}
        Err(CometdError::Protocol(message)) => {
            return Check::fail(name, format!("{channel}: {message}"), event_fix)
        }
        Err(error @ CometdError::NoSuchChannel { .. }) => {
            let fix = if channel.ends_with("__chn") {
                "create the shard's channel and its filtered member (salesforce/shards/README.md)"
            } else {
                event_fix
            };
            return Check::fail(name, error.to_string(), fix);
        }
        Err(CometdError::Transport(message)) => {
            return Check::fail(
                name,
                format!("the Streaming API cannot be reached: {message}"),
                "check that this host may reach the instance's /cometd endpoint \
                    (proxies must allow long-polling POSTs)",
            )
        }
        Err(error) => {
            return Check::fail(
                name,
                error.to_string(),
                "run sfwa doctor again; if it persists, check the integration user's \
            API access",
            )
        }
    }
    // A custom channel (`/event/X__chn`, a shard's filtered stream) is not an sObject to describe.
    let Some(event) = channel
        .strip_prefix("/event/")
        .filter(|name| !name.ends_with("__chn"))
    else {
        return Check::pass(
            name,
            format!("{channel}: subscribed (replay -1) and disconnected"),
        );
    };
    match client.describe(event).await {
        Ok(describe) if describe.field(EVENT_MESSAGE_ID_FIELD).is_some() => Check::pass(
            name,
            format!(
                "{channel}: subscribed (replay -1) and disconnected; {event} carries \
                    {EVENT_MESSAGE_ID_FIELD}"
            ),
        ),
        Ok(_) => Check::fail(
            name,
            format!("{event} has no {EVENT_MESSAGE_ID_FIELD} field, so events name no record"),
            event_fix,
        ),
        Err(error) => Check::fail(
            name,
            format!("subscribed, but {event} cannot be described: {error}"),
            event_fix,
        ),
    }
}
