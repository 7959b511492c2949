//! API usage, counted the way Salesforce counts it.
//!
//! Every authenticated REST request under `/services/data` is one call against the daily allowance,
//! whatever it does: a query page, a describe, or one collections request of 200 records. Token
//! requests and CometD traffic are not REST calls. The allowance is a rolling day in real orgs; the
//! simulator resets it at midnight UTC of its clock, which is close enough for tests of exhaustion.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

#[derive(Debug)]
pub struct Usage {
    pub daily_allowance: u64,
    pub used_today: u64,
    day: Option<NaiveDate>,
    /// Endpoint label (e.g. `query`, `composite/sobjects`) → calls, since the simulator started.
    pub by_endpoint: BTreeMap<String, u64>,
    pub rejected_over_limit: u64,
    pub token_requests: u64,
    pub cometd_requests: u64,
    /// SOQL queries answered, by the object after FROM (what a test asks: "was the queue looked
    /// up once?").
    pub soql_by_object: BTreeMap<String, u64>,
}

impl Usage {
    pub fn new(daily_allowance: u64) -> Usage {
        Usage {
            daily_allowance,
            used_today: 0,
            day: None,
            by_endpoint: BTreeMap::new(),
            rejected_over_limit: 0,
            token_requests: 0,
            cometd_requests: 0,
            soql_by_object: BTreeMap::new(),
        }
    }

    /// Counts one REST call; `false` when the allowance is already spent (the call is refused).
    pub fn charge(&mut self, endpoint: &str, now: DateTime<Utc>) -> bool {
        self.roll_day(now);
        if self.used_today >= self.daily_allowance {
            self.rejected_over_limit += 1;
            return false;
        }
        self.used_today += 1;
        *self.by_endpoint.entry(endpoint.to_string()).or_default() += 1;
        true
    }

    /// The `Sforce-Limit-Info` header value.
    pub fn limit_info(&self) -> String {
        format!("api-usage={}/{}", self.used_today, self.daily_allowance)
    }

    pub fn total_calls(&self) -> u64 {
        self.by_endpoint.values().sum()
    }

    /// Starts a new day's count when the clock has passed midnight UTC.
    pub fn roll_day(&mut self, now: DateTime<Utc>) {
        let today = now.date_naive();
        if self.day != Some(today) {
            self.day = Some(today);
            self.used_today = 0;
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rest_calls": {"total": self.total_calls(), "by_endpoint": self.by_endpoint},
            "api_usage": {"used_today": self.used_today, "daily_allowance": self.daily_allowance},
            "rejected_over_limit": self.rejected_over_limit,
            "token_requests": self.token_requests,
            "cometd_requests": self.cometd_requests,
            "soql_by_object": self.soql_by_object,
        })
    }
}
