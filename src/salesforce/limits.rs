//! `GET limits`: the org's allocations, each with its `Max` and `Remaining` — read for the ones the
//! `Sforce-Limit-Info` header ([`super::usage`]) does not carry, such as
//! `DailyDeliveredPlatformEvents` (the platform events the org may deliver to subscribers in 24 h,
//! which every sfwa instance's stream subscription draws on). One API call per read: the caller
//! reads on a slow timer (`observe::limits`), never per request.

use reqwest::Method;
use serde::Deserialize;

use super::client::{parse, SalesforceClient};
use super::error::SalesforceError;

/// The platform events the org may deliver to CometD subscribers in 24 h.
pub const DAILY_DELIVERED_PLATFORM_EVENTS: &str = "DailyDeliveredPlatformEvents";

/// One allocation of `GET limits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Limit {
    #[serde(rename = "Max")]
    pub max: u64,
    #[serde(rename = "Remaining")]
    pub remaining: u64,
}

impl Limit {
    /// The allocation named `name` in a `GET limits` answer; `None` when the org does not report
    /// it (editions and simulators without it) or reports it in another shape.
    pub fn from_answer(answer: &serde_json::Value, name: &str) -> Option<Limit> {
        serde_json::from_value(answer.get(name)?.clone()).ok()
    }
}

impl SalesforceClient {
    /// The allocation named `name` (one API call); `Ok(None)` when the org does not report it.
    pub async fn limit(&self, name: &str) -> Result<Option<Limit>, SalesforceError> {
        let body = self.send(Method::GET, "limits", &[], None).await?;
        let answer: serde_json::Value = parse(&body, "limits")?;
        Ok(Limit::from_answer(&answer, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_allocation_is_read_by_name() {
        let answer = json!({
            "DailyApiRequests": {"Max": 15000, "Remaining": 14990},
            "DailyDeliveredPlatformEvents": {"Max": 50000, "Remaining": 1200},
        });

        let limit = Limit::from_answer(&answer, DAILY_DELIVERED_PLATFORM_EVENTS);

        assert_eq!(
            limit,
            Some(Limit {
                max: 50000,
                remaining: 1200
            })
        );
    }

    #[test]
    fn an_allocation_the_org_does_not_report_is_none() {
        let answer = json!({"DailyApiRequests": {"Max": 15000, "Remaining": 14990},
                            "DailyDeliveredPlatformEvents": "n/a"});

        assert_eq!(Limit::from_answer(&answer, "HourlyODataCallout"), None);
        assert_eq!(
            Limit::from_answer(&answer, DAILY_DELIVERED_PLATFORM_EVENTS),
            None
        );
    }
}
