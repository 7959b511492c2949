//! "Number leases": the lease object is deployed, and who holds each of this instance's numbers
//! now (`pipeline::lease`): `sfwa run` refuses to start while another instance holds one.

use super::DEPLOY_FIX;
use crate::config::Settings;
use crate::doctor::report::Check;
use crate::pipeline::lease::{leased_numbers, leases_query, LeaseRow, SKEW_GRACE};
use crate::salesforce::SalesforceClient;

pub(in crate::doctor) const LEASES: &str = "Number leases";

/// One line per number: free, or its holder and until when; a failure when the object is
/// missing. Another holder's live lease is reported, not failed: it may be this very instance
/// running beside the doctor.
pub(in crate::doctor) async fn check_leases(
    client: &SalesforceClient,
    settings: &Settings,
    now: chrono::DateTime<chrono::Utc>,
) -> Check {
    let numbers = leased_numbers(settings);
    let rows: Vec<LeaseRow> = match client.query(&leases_query(&numbers)).await {
        Ok(rows) => rows,
        Err(error) => {
            return Check::fail(
                LEASES,
                format!("cannot read WhatsApp_Number_Lease__c: {error}"),
                format!("{DEPLOY_FIX}, and assign the WhatsApp_Integration permission set"),
            )
        }
    };
    let described: Vec<String> = numbers
        .iter()
        .map(|number| {
            let latest = rows
                .iter()
                .filter(|r| r.number.as_deref() == Some(number))
                .max_by_key(|r| r.generation.unwrap_or(0.0) as u64);
            let live = latest.and_then(|r| {
                let until = r
                    .expires_at
                    .as_deref()
                    .and_then(crate::domain::message::parse_salesforce_datetime)?;
                (r.released != Some(true) && until + SKEW_GRACE > now).then_some((r, until))
            });
            match live {
                Some((row, until)) => format!(
                    "{number}: held by {} until {until}",
                    row.holder.as_deref().unwrap_or("?")
                ),
                None => format!("{number}: free"),
            }
        })
        .collect();
    Check::pass(LEASES, described.join("; "))
}
