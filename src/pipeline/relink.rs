//! The relink job (`schedule.relink`): inbound records that matched nobody when they were written
//! are looked up again and linked now.
//!
//! Why it is needed: the phone lookup is a SOSL search ([`super::inbound_links`]), and Salesforce's
//! search index lags minutes behind new records — a Lead a rep creates while the customer is
//! writing is not found for the first messages. A rep also often creates the Contact or Lead
//! *after* reading the first message. The write-back caches "nobody" for at most 15 minutes, so
//! the customer's later messages link; this job links the earlier ones.
//!
//! One run reads the newest [`RELINK_MAX`] inbound records of the last [`RELINK_DAYS`] days that
//! have neither `Contact__c` nor `Lead__c` but a sender (`From_Phone__c` or `From_User_Id__c`),
//! looks their senders up exactly as the flush does (BSUID, then one SOSL search; the flush's cache
//! is not used, so a cached "nobody" does not hide a new record), writes the links it finds (the
//! Contact / Lead, and the Contact's Account, [`LINK_FIELDS`]) with
//! one collections update, and stores BSUIDs on Contacts / Leads linked by phone. That is at most
//! four or five API calls a run, none when no record is waiting. Records whose sender matches
//! several people stay unlinked (the flush's note says why); only exact, single matches are
//! written, and only onto records whose two links are both still empty.

use std::fmt;

use anyhow::Context;
use serde_json::{Map, Value};
use tracing::warn;

use crate::salesforce::soql_datetime;

use super::inbound_links::{self, LinkCache, LinkLookup, Sender, FROM_USER_ID_FIELD, LINK_FIELDS};
use super::WriteBack;

/// How far back unlinked records are looked at.
pub const RELINK_DAYS: i64 = 3;

/// Records one run looks at (one search and one collections call).
pub const RELINK_MAX: usize = 200;

/// What one relink run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RelinkSummary {
    /// Unlinked inbound records read.
    pub checked: usize,
    /// Of those, linked now.
    pub linked: usize,
    /// Refused by Salesforce (the record deleted meanwhile, a lock): tried again next run.
    pub failed: usize,
    /// BSUIDs stored on Contacts / Leads linked by phone.
    pub user_ids_stored: usize,
}

impl fmt::Display for RelinkSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} unlinked inbound records from the last {RELINK_DAYS} days: {} linked now, {} refused, {} WhatsApp user ids stored",
            self.checked, self.linked, self.failed, self.user_ids_stored
        )
    }
}

/// The query for the records to relink.
pub fn relink_soql(message_object: &str, since: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "SELECT Id, From_Phone__c, {FROM_USER_ID_FIELD} FROM {message_object} \
         WHERE Direction__c = 'Inbound' AND Contact__c = null AND Lead__c = null \
         AND CreatedDate >= {} AND (From_Phone__c != null OR {FROM_USER_ID_FIELD} != null) \
         ORDER BY CreatedDate DESC LIMIT {RELINK_MAX}",
        soql_datetime(since)
    )
}

/// One relink run (see the module docs). An error means Salesforce could not be asked; nothing
/// was half-done that the next run would not redo.
pub async fn relink(write_back: &WriteBack) -> anyhow::Result<RelinkSummary> {
    let core = &write_back.core;
    let now = core.now();
    let object = core.message_object();
    let since = now - chrono::Duration::days(RELINK_DAYS);
    let rows: Vec<Map<String, Value>> = write_back
        .salesforce
        .query(&relink_soql(object, since))
        .await
        .context("reading unlinked inbound records from Salesforce")?;
    let mut summary = RelinkSummary {
        checked: rows.len(),
        ..Default::default()
    };
    let unlinked: Vec<(String, Sender)> = rows
        .iter()
        .filter_map(|row| {
            let id = row.get("Id")?.as_str()?.to_string();
            Some((id, inbound_links::sender_of(row)?))
        })
        .collect();
    if unlinked.is_empty() {
        return Ok(summary);
    }
    // A fresh cache: the flush's may still say "nobody" for these senders.
    let cache = LinkCache::default();
    let lookup = LinkLookup {
        salesforce: &write_back.salesforce,
        cache: &cache,
        default_region: core.default_region,
        now,
    };
    let senders: Vec<Sender> = unlinked.iter().map(|(_, s)| s.clone()).collect();
    let (links, _) = lookup
        .find_cached(&senders)
        .await
        .context("looking up Contacts and Leads for unlinked inbound records")?;
    let updates: Vec<(String, Map<String, Value>)> = unlinked
        .iter()
        .filter_map(|(id, sender)| {
            let mut fields = links.fields_for(sender, id);
            fields.retain(|name, _| LINK_FIELDS.contains(&name.as_str()));
            (!fields.is_empty()).then(|| (id.clone(), fields))
        })
        .collect();
    if !updates.is_empty() {
        let results = write_back
            .salesforce
            .update(object, &updates)
            .await
            .context("writing the links of unlinked inbound records")?;
        for ((id, _), result) in updates.iter().zip(&results) {
            if result.success {
                summary.linked += 1;
            } else {
                summary.failed += 1;
                warn!(record_id = %id, errors = ?result.errors, "could not link an inbound record to its Contact/Lead; the next relink run tries again");
            }
        }
    }
    let stored = inbound_links::store_user_ids(&lookup, &links, &senders).await;
    summary.user_ids_stored = stored.stored;
    core.reporter.relinked(summary.linked);
    if stored.stored + stored.refused > 0 {
        core.reporter.user_ids_stored(stored.stored, stored.refused);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_relink_query_reads_only_recent_unlinked_inbound_records_with_a_sender_newest_first() {
        let since = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();

        let soql = relink_soql("WhatsApp_Message__c", since);

        assert_eq!(
            soql,
            "SELECT Id, From_Phone__c, From_User_Id__c FROM WhatsApp_Message__c \
             WHERE Direction__c = 'Inbound' AND Contact__c = null AND Lead__c = null \
             AND CreatedDate >= 2026-11-23T09:00:00Z AND (From_Phone__c != null OR From_User_Id__c != null) \
             ORDER BY CreatedDate DESC LIMIT 200"
        );
    }
}
