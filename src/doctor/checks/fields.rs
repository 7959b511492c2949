//! "Message object fields": the message object's describe against the field contract
//! ([`crate::salesforce::contract`]) — every field the code reads (`MessageRow::FIELDS`) and
//! writes (collected by calling [`crate::pipeline::record_update`] and
//! [`crate::pipeline::inbound_records`] themselves), with the type, length and
//! picklist values the contract names, writable where sfwa writes.

use std::collections::BTreeSet;

use chrono::Utc;

use super::{ACCESS_FIX, DEPLOY_FIX};
use crate::doctor::report::Check;
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::{InboundKind, InboundMediaKind, InboundMessage};
use crate::pipeline::inbound_links::LINK_FIELDS;
use crate::pipeline::inbound_owner::OWNER_FIELDS;
use crate::pipeline::{inbound_records, record_update};
use crate::salesforce::{
    contract, rows::MessageRow, FieldDescribe, ObjectDescribe, SalesforceClient, SalesforceError,
};

pub(in crate::doctor) const FIELDS: &str = "Message object fields";

/// The fields intake reads (the Id is every object's; a path through a lookup,
/// `Contact__r.WhatsApp_Marketing_Opt_Out__c`, is another object's field).
pub fn read_fields() -> Vec<&'static str> {
    MessageRow::FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "Id" && !f.contains('.'))
        .collect()
}

/// The fields the pipeline writes, learned by building every kind of write it makes.
pub fn written_fields() -> BTreeSet<String> {
    let now = Utc::now();
    let mut writes = vec![
        record_update::sending(),
        record_update::accepted("wamid.doctor", Some(now)),
        record_update::failed("CODE", "message", now, Some(now)),
        record_update::priced(&crate::domain::webhook_event::Pricing {
            category: Some("utility".into()),
            pricing_type: Some("regular".into()),
            model: Some("PMP".into()),
            billable: Some(true),
        }),
    ];
    writes.extend(
        MessageStatus::ALL
            .iter()
            .map(|status| record_update::status_reported(*status, now, true)),
    );
    // A document with a file name fills every field an inbound record can have.
    let mut document = InboundMessage::new(
        "wamid.doctor".parse().expect("a wamid"),
        "1".parse().expect("a phone_number_id"),
        "14155550101".parse().expect("a wa_id"),
        now,
        InboundKind::Media {
            kind: InboundMediaKind::Document,
            media_id: "1".into(),
            mime_type: None,
            caption: None,
            filename: Some("doctor.pdf".into()),
        },
    );
    document.display_phone_number = "1".into();
    writes.push(inbound_records::inbound_record(&document));
    writes.extend(crate::pipeline::reengage::every_write(now));
    // A group message from a customer with a BSUID and a username, after an ad click.
    let mut message = document;
    message.user_id = crate::domain::ids::CustomerId::user_id("US.1").ok();
    message.username = Some("doctor".into());
    message.group_id = Some("1".into());
    message.referral = Some(crate::domain::webhook_event::Referral {
        source_url: Some("https://example.com".into()),
        source_type: Some("ad".into()),
        headline: Some("doctor".into()),
        ctwa_clid: Some("1".into()),
        ..Default::default()
    });
    writes.push(inbound_records::inbound_record(&message));
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

/// Describes the message object and compares it with what the code reads and writes.
pub(in crate::doctor) async fn check_fields(client: &SalesforceClient, object: &str) -> Check {
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
