//! The UNKNOWN_BUSINESS_NUMBER sweep: a Queued record whose `Business_Number_Id__c` names a number
//! no instance serves would wait forever, since every instance's intake selects only its own
//! numbers' records ([`super::intake::ServedNumbers`]). The instance that takes the blank-number
//! records (`shard.takes_blank_numbers`) runs this every [`EVERY`] ([`run_unknown_numbers`]):
//!
//! 1. the numbers of the account (`GET /{waba_id}/phone_numbers`,
//!    [`crate::whatsapp::WhatsAppClient::account_numbers`]; needs `whatsapp.business_account_id`)
//!    and this instance's own;
//! 2. one SOQL for Queued outbound records created more than [`GRACE`] ago whose number is set and
//!    none of those;
//! 3. only when some turn up: the numbers in any lease record ([`super::lease`]; one more query),
//!    whose records are left alone;
//! 4. the rest are claimed and failed through the journal and the outbox like any other failure
//!    (Error_Code__c `UNKNOWN_BUSINESS_NUMBER`, a sentence naming the number, the field and the
//!    fix), so nothing is lost if Salesforce is down meanwhile; `sfwa_unknown_business_number_total`
//!    counts them.
//!
//! A number that is the account's but has no live lease (its shard is down) is *not* unknown: its
//! records stay Queued until that shard is back. A record ends Failed within [`GRACE`] +
//! [`EVERY`] (one minute) of its creation. Cost: one Salesforce query and one Graph call per run
//! (2,880 a day each), one more query only when an unknown number turns up.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::salesforce::rows::MessageRow;
use crate::salesforce::{soql_datetime, soql_string};
use crate::store::{journal, outbox};

use super::{lease, record_update, Pipeline};

/// Error_Code__c of a record whose number no instance serves.
pub const UNKNOWN_BUSINESS_NUMBER: &str = "UNKNOWN_BUSINESS_NUMBER";
/// How old a record must be before it is judged: a shard taking a new number has that long.
pub const GRACE: chrono::Duration = chrono::Duration::seconds(30);
/// How often the sweep runs.
pub const EVERY: Duration = Duration::from_secs(30);

/// The SOQL for Queued outbound records created before `before` whose number is set and not in
/// `known` (never empty: an instance always knows its own default number).
pub fn unknown_query(
    object: &str,
    known: &BTreeSet<String>,
    before: chrono::DateTime<chrono::Utc>,
    limit: usize,
) -> String {
    let quoted: Vec<String> = known.iter().map(|n| soql_string(n)).collect();
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c = 'Queued' \
         AND Business_Number_Id__c != null AND Business_Number_Id__c NOT IN ({known}) \
         AND CreatedDate < {before} ORDER BY CreatedDate ASC LIMIT {limit}",
        fields = MessageRow::FIELDS.join(", "),
        known = quoted.join(","),
        before = soql_datetime(before),
    )
}

/// The sentence on a record whose number no instance serves.
pub fn unknown_message(number: &str) -> String {
    format!(
        "Business_Number_Id__c {number} is not a number of this WhatsApp Business Account and no \
         sfwa instance serves it. Correct the record's Business_Number_Id__c (blank sends from \
         the default number) and set it back to Queued, or add the number to the account and to \
         an instance's whatsapp.phone_number_ids."
    )
}

#[derive(Deserialize)]
struct LeasedNumber {
    #[serde(rename = "Phone_Number_Id__c")]
    number: Option<String>,
}

/// One sweep: how many records it failed.
pub async fn unknown_numbers(pipeline: &Pipeline) -> anyhow::Result<usize> {
    let settings = &pipeline.core.settings;
    let waba = settings.whatsapp.business_account_id.trim();
    if waba.is_empty() {
        anyhow::bail!("the UNKNOWN_BUSINESS_NUMBER sweep needs whatsapp.business_account_id to list the account's numbers");
    }
    let mut known: BTreeSet<String> = settings.business_numbers().into_iter().collect();
    known.extend(
        pipeline
            .dispatcher
            .whatsapp
            .account_numbers(waba)
            .await
            .context("listing the account's phone numbers")?,
    );
    let now = pipeline.core.now();
    let soql = unknown_query(
        pipeline.core.message_object(),
        &known,
        now - GRACE,
        settings.intake.batch_size,
    );
    let rows: Vec<MessageRow> = pipeline.intake.salesforce.query(&soql).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let leased = leased_numbers(pipeline).await?;
    let unknown: Vec<(crate::domain::sf_id::SfId, String)> = rows
        .into_iter()
        .filter_map(|row| row.into_record().ok())
        .filter_map(|r| Some((r.id, r.business_number_id?.trim().to_string())))
        .filter(|(_, number)| !leased.contains(number))
        .collect();
    fail_unknown(pipeline, unknown).await
}

/// Every number named in a lease record (a shard that serves it, up or down).
async fn leased_numbers(pipeline: &Pipeline) -> anyhow::Result<BTreeSet<String>> {
    let soql = format!(
        "SELECT Phone_Number_Id__c FROM {} ORDER BY Generation__c DESC LIMIT 2000",
        lease::OBJECT
    );
    let rows: Vec<LeasedNumber> = pipeline
        .intake
        .salesforce
        .query(&soql)
        .await
        .context("reading the number leases")?;
    Ok(rows.into_iter().filter_map(|r| r.number).collect())
}

/// Claims and fails the records in one transaction, their write-backs queued.
async fn fail_unknown(
    pipeline: &Pipeline,
    unknown: Vec<(crate::domain::sf_id::SfId, String)>,
) -> anyhow::Result<usize> {
    if unknown.is_empty() {
        return Ok(0);
    }
    let now = pipeline.core.now();
    let object = pipeline.core.message_object().to_string();
    let failed = pipeline
        .core
        .store
        .write(move |tx| {
            let mut failed = 0;
            for (id, number) in &unknown {
                if !matches!(journal::claim(tx, id, now)?, journal::Claim::New) {
                    continue;
                }
                let message = unknown_message(number);
                let fields = record_update::failed(UNKNOWN_BUSINESS_NUMBER, &message, now, None);
                journal::mark_failed(tx, id, UNKNOWN_BUSINESS_NUMBER, now)?;
                outbox::enqueue(tx, &object, id.as_str(), &fields, now)?;
                failed += 1;
            }
            Ok(failed)
        })
        .await?;
    if failed > 0 {
        warn!(
            count = failed,
            "Queued records name a business number no sfwa instance serves; failed UNKNOWN_BUSINESS_NUMBER"
        );
        pipeline.core.reporter.unknown_business_numbers(failed);
        pipeline.core.flush.batch_ready();
    }
    Ok(failed)
}

/// Runs the sweep every [`EVERY`] until `shutdown`, on the instance that takes blank-number
/// records (elsewhere it returns at once).
pub async fn run_unknown_numbers(pipeline: Pipeline, shutdown: CancellationToken) {
    let settings = &pipeline.core.settings;
    if !settings.shard.takes_blank_numbers {
        return;
    }
    if settings.whatsapp.business_account_id.trim().is_empty() {
        warn!("whatsapp.business_account_id is not set: Queued records naming a number no instance serves stay Queued (no UNKNOWN_BUSINESS_NUMBER sweep)");
        return;
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        match unknown_numbers(&pipeline).await {
            Ok(0) => {}
            Ok(failed) => info!(failed, "UNKNOWN_BUSINESS_NUMBER sweep"),
            Err(error) => warn!(
                error = format!("{error:#}"),
                "UNKNOWN_BUSINESS_NUMBER sweep failed; trying again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_selects_queued_records_of_numbers_outside_the_known_set_after_the_grace() {
        let known: BTreeSet<String> = ["111".to_string(), "222".to_string()].into();
        let before = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();

        let soql = unknown_query("WhatsApp_Message__c", &known, before, 200);

        assert!(soql.contains(
            "AND Business_Number_Id__c != null AND Business_Number_Id__c NOT IN ('111','222') \
             AND CreatedDate < 2026-11-24T15:00:00Z"
        ));
        assert!(soql.contains("Status__c = 'Queued'"));
    }

    #[test]
    fn the_message_names_the_number_the_field_and_the_fix() {
        let message = unknown_message("999");

        assert!(message.contains("999") && message.contains("Business_Number_Id__c"));
        assert!(message.contains("whatsapp.phone_number_ids"));
        assert!(message.len() <= 1024);
    }
}
