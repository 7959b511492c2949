//! "Salesforce API usage": the daily API allowance, from the `Sforce-Limit-Info` header of the
//! calls the checks before it made (no call of its own).

use crate::doctor::report::{Check, Outcome};
use crate::salesforce::SalesforceClient;

pub(in crate::doctor) const USAGE: &str = "Salesforce API usage";

/// Info with the share used, and advice when it is close to the limit.
pub(in crate::doctor) fn check_api_usage(salesforce: Option<&SalesforceClient>) -> Check {
    match salesforce.map(|c| c.api_usage()) {
        None => Check::skipped(USAGE, "the Salesforce login failed"),
        Some(None) => Check::skipped(USAGE, "no REST call answered, so Salesforce reported none"),
        Some(Some(usage)) => {
            let share = usage.used as f64 * 100.0 / usage.max.max(1) as f64;
            let mut text = format!(
                "{} of {} calls used in the last 24 h ({share:.0}%), {} left",
                usage.used,
                usage.max,
                usage.remaining()
            );
            if share >= 80.0 {
                text.push_str(
                    "; close to the limit: prefer intake.mode = stream, or a longer \
                    intake.interval",
                );
            }
            Check::new(USAGE, Outcome::Info(text))
        }
    }
}
