//! The Salesforce checks: the login, the message object's fields (what the code reads and
//! writes, learned from the code itself), the platform-event channel, and the API usage line's name.

use std::collections::BTreeSet;

use chrono::Utc;

use super::http::http_client;
use super::report::{Check, Outcome};
use crate::config::{AuthMode, Settings};
use crate::domain::message::MessageRecord;
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::{InboundKind, InboundMediaKind, InboundMessage};
use crate::pipeline::inbound_links::LINK_FIELDS;
use crate::pipeline::inbound_owner::OWNER_FIELDS;
use crate::pipeline::{inbound_records, record_update};
use crate::salesforce::{
    contract, soql_string, CometdClient, CometdError, FieldDescribe, ObjectDescribe, ReplayFrom,
    SalesforceClient, SalesforceError,
};

pub(super) const LOGIN: &str = "Salesforce login";
pub(super) const FIELDS: &str = "Message object fields";
pub(super) const CHANNEL: &str = "Platform event channel";
pub(super) const USAGE: &str = "Salesforce API usage";
pub(super) const INBOUND_QUEUE: &str = "Inbound queue";

pub(super) const DEPLOY_FIX: &str = "deploy the package in salesforce/ (sf project deploy start)";
pub(super) const ACCESS_FIX: &str =
    "grant field access with the WhatsApp_Integration permission set \
     (assign it to the integration user)";

/// Logs in with the configured grant. Returns the client for the checks that need Salesforce.
pub(super) async fn check_login(settings: &Settings) -> (Check, Option<SalesforceClient>) {
    let sf = &settings.salesforce;
    let mode = match sf.auth {
        AuthMode::Jwt => format!("jwt as {}", sf.username),
        AuthMode::ClientCredentials => {
            "client_credentials, as the External Client App's Run As user".into()
        }
        AuthMode::RefreshToken => "refresh_token".into(),
    };
    let config = match crate::app::salesforce_config(settings) {
        Ok(config) => config,
        Err(error) => {
            return (
                Check::fail(
                    LOGIN,
                    format!("{error:#}"),
                    "fix salesforce.private_key_path",
                ),
                None,
            )
        }
    };
    let client = match SalesforceClient::new(http_client(), config) {
        Ok(client) => client,
        Err(error) => {
            return (
                Check::fail(
                    LOGIN,
                    format!("{mode}: {error}"),
                    "point salesforce.private_key_path at the PEM RSA private key whose \
                        certificate is uploaded to the External Client App",
                ),
                None,
            )
        }
    };
    match client.session().await {
        Ok(session) => (
            Check::pass(LOGIN, format!("{mode}; instance {}", session.instance_url)),
            Some(client),
        ),
        Err(SalesforceError::Auth {
            error,
            description,
            hint,
        }) => (
            Check::fail(
                LOGIN,
                format!("{mode}: Salesforce answered {error}: {description}"),
                hint,
            ),
            None,
        ),
        Err(SalesforceError::Unavailable(message)) => (
            Check::fail(
                LOGIN,
                format!("{mode}: cannot reach {}: {message}", sf.login_url),
                "check salesforce.login_url, DNS and any proxy or firewall between this \
                    host and Salesforce",
            ),
            None,
        ),
        Err(error) => (
            Check::fail(
                LOGIN,
                format!("{mode}: {error}"),
                "check salesforce.login_url and the External Client App's OAuth settings",
            ),
            None,
        ),
    }
}

/// The fields intake reads (the Id is every object's).
pub fn read_fields() -> Vec<&'static str> {
    MessageRecord::FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "Id")
        .collect()
}

/// The fields the pipeline writes, learned by building every kind of write it makes.
pub fn written_fields() -> BTreeSet<String> {
    let now = Utc::now();
    let mut writes = vec![
        record_update::sending(),
        record_update::accepted("wamid.doctor", Some(now)),
        record_update::failed("CODE", "message", now, Some(now)),
    ];
    writes.extend(
        MessageStatus::ALL
            .iter()
            .map(|status| record_update::status_reported(*status, now, true)),
    );
    // A document with a file name fills every field an inbound record can have.
    writes.push(inbound_records::inbound_record(&InboundMessage {
        wamid: "wamid.doctor".into(),
        business_number_id: "1".into(),
        display_phone_number: "1".into(),
        from: "14155550101".into(),
        profile_name: None,
        timestamp: now,
        kind: InboundKind::Media {
            kind: InboundMediaKind::Document,
            media_id: "1".into(),
            mime_type: None,
            caption: None,
            filename: Some("doctor.pdf".into()),
        },
        context_id: None,
    }));
    let mut fields: BTreeSet<String> = writes
        .into_iter()
        .flat_map(|w| w.into_iter().map(|(k, _)| k))
        .collect();
    fields.extend(LINK_FIELDS.iter().map(|f| f.to_string()));
    fields.extend(OWNER_FIELDS.iter().map(|f| f.to_string()));
    fields
}

/// Every field sfwa reads or writes, the read ones first in SELECT order.
fn wanted_fields() -> Vec<String> {
    let mut wanted: Vec<String> = read_fields().into_iter().map(String::from).collect();
    for field in written_fields() {
        if !wanted.contains(&field) {
            wanted.push(field);
        }
    }
    wanted
}

/// The queue `salesforce.inbound_queue` names: where inbound records go when they answer no Case
/// and match no Contact or Lead (see `pipeline::inbound_owner`). Without it they stay the
/// integration user's, which reps cannot see under the package's Private sharing.
pub(super) async fn check_inbound_queue(client: &SalesforceClient, queue: &str) -> Check {
    let queue = queue.trim();
    if queue.is_empty() {
        return Check::new(
            INBOUND_QUEUE,
            Outcome::Info(
                "salesforce.inbound_queue is blank: inbound records matching no Case, Contact or \
                 Lead stay owned by the integration user (reps see them only through a sharing \
                 rule)"
                    .into(),
            ),
        );
    }
    let soql = format!(
        "SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = {}",
        soql_string(queue)
    );
    #[derive(serde::Deserialize)]
    struct Row {
        #[serde(rename = "Id")]
        id: String,
    }
    match client.query::<Row>(&soql).await {
        Ok(rows) => match rows.first() {
            Some(row) => Check::pass(
                INBOUND_QUEUE,
                format!(
                    "{queue} ({}) owns inbound records that answer no Case and match no Contact \
                     or Lead",
                    row.id
                ),
            ),
            None => Check::fail(
                INBOUND_QUEUE,
                format!(
                    "no queue with the API name {queue} (salesforce.inbound_queue): inbound \
                     records matching no Case, Contact or Lead would stay the integration \
                     user's, invisible to reps"
                ),
                format!(
                    "{DEPLOY_FIX} (it ships the queue WhatsApp_Inbound), or create a queue \
                     (Setup → Queues, supported object WhatsApp Message) and set \
                     salesforce.inbound_queue to its API name"
                ),
            ),
        },
        Err(error) => Check::fail(
            INBOUND_QUEUE,
            error.to_string(),
            "run sfwa doctor again; if it persists, check the integration user's API access",
        ),
    }
}

/// Describes the message object and compares it with what the code reads and writes.
pub(super) async fn check_fields(client: &SalesforceClient, object: &str) -> Check {
    let name = FIELDS;
    match client.describe(object).await {
        Ok(describe) => {
            let (deploy, access) = field_problems(&describe);
            let used = wanted_fields().len();
            if deploy.is_empty() && access.is_empty() {
                return Check::pass(
                    name,
                    format!(
                        "{object}: all {used} fields sfwa reads or writes are there, with \
                         compatible types"
                    ),
                );
            }
            let fix = match (deploy.is_empty(), access.is_empty()) {
                (false, true) => DEPLOY_FIX.to_string(),
                (true, false) => ACCESS_FIX.to_string(),
                _ => format!("{DEPLOY_FIX}; then {ACCESS_FIX}"),
            };
            Check::fail(
                name,
                format!("{object}: {}", [deploy, access].concat().join("; ")),
                fix,
            )
        }
        Err(SalesforceError::Api { status: 404, .. }) => Check::fail(
            name,
            format!("{object} does not exist, or the integration user cannot see it"),
            format!(
                "{DEPLOY_FIX}, and assign the WhatsApp_Integration permission set to \
                the integration user (or fix salesforce.message_object)"
            ),
        ),
        Err(error) => Check::fail(
            name,
            error.to_string(),
            "check the integration user's API access and try again",
        ),
    }
}

/// What is wrong with the object: (fixed by deploying the package, fixed by granting access).
/// A field the user may not read is absent from describe, so "missing" names both fixes.
fn field_problems(describe: &ObjectDescribe) -> (Vec<String>, Vec<String>) {
    let written = written_fields();
    let mut missing = Vec::new();
    let mut deploy = Vec::new();
    let mut access = Vec::new();
    for field_name in &wanted_fields() {
        let Some(field) = describe.field(field_name) else {
            missing.push(field_name.clone());
            continue;
        };
        if let Some(need) = contract::field_named(field_name) {
            let types = need.kind.describe_types();
            if !types.contains(&field.field_type.as_str()) {
                deploy.push(format!(
                    "{field_name} is {} where sfwa needs {}",
                    field.field_type,
                    types.join(" or ")
                ));
            } else if (field.length as usize) < need.min_length {
                deploy.push(format!(
                    "{field_name} holds {} characters where sfwa writes up to {}",
                    field.length, need.min_length
                ));
            }
        }
        if written.contains(field_name) && !(field.createable && field.updateable) {
            access.push(format!(
                "{field_name} is read-only for the integration user"
            ));
        }
    }
    if !missing.is_empty() {
        deploy.insert(0, format!("missing {}", missing.join(", ")));
    }
    for (field_name, values) in contract::picklists() {
        if let Some(field) = describe.field(field_name) {
            let lacking = lacking_values(field, &values);
            if !lacking.is_empty() {
                deploy.push(format!(
                    "{field_name} lacks picklist value(s) {}",
                    lacking.join(", ")
                ));
            }
        }
    }
    if let Some(wamid) = describe.field(contract::WHATSAPP_MESSAGE_ID) {
        if !wamid.external_id {
            deploy.push(format!(
                "{} is not an External ID (inbound records are upserted on it)",
                contract::WHATSAPP_MESSAGE_ID
            ));
        }
    }
    for (lookup, target) in contract::LOOKUPS {
        if let Some(field) = describe.field(lookup) {
            if field.field_type == "reference" && !field.reference_to.iter().any(|t| t == target) {
                deploy.push(format!("{lookup} does not look up {target}"));
            }
        }
    }
    (deploy, access)
}

fn lacking_values<'v>(field: &FieldDescribe, values: &[&'v str]) -> Vec<&'v str> {
    values
        .iter()
        .copied()
        .filter(|v| {
            !field
                .picklist_values
                .iter()
                .any(|p| p.active && p.value == *v)
        })
        .collect()
}

/// The field of the platform event the stream reads (see `pipeline::stream`).
const EVENT_MESSAGE_ID_FIELD: &str = "Message_Id__c";
/// Handshake and subscribe (replay -1: nothing is consumed), disconnect; then the event's fields.
pub(super) async fn check_channel(client: &SalesforceClient, channel: &str) -> Check {
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
    let Some(event) = channel.strip_prefix("/event/") else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_the_pipeline_reads_or_writes_is_in_the_contract() {
        let mut fields: BTreeSet<String> = written_fields();
        fields.extend(read_fields().into_iter().map(String::from));
        let without: Vec<&String> = fields
            .iter()
            .filter(|f| contract::field_named(f).is_none())
            .collect();
        assert!(
            without.is_empty(),
            "add these to contract::FIELDS: {without:?}"
        );
    }

    #[test]
    fn the_fields_the_code_writes_are_the_ones_the_contract_marks_written() {
        let from_code = written_fields();

        let from_contract: BTreeSet<String> = contract::written().map(String::from).collect();

        assert_eq!(from_code, from_contract);
    }

    #[test]
    fn the_written_fields_include_failure_texts_links_and_inbound_fields() {
        let written = written_fields();
        for field in [
            "Error_Message__c",
            "Status__c",
            "Contact__c",
            "Received_At__c",
            "Media_Filename__c",
        ] {
            assert!(written.contains(field), "{field} missing from {written:?}");
        }
    }
}
