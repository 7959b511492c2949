//! Marketing messages as Meta limits them (2026 reference, "Marketing consent"):
//! - a customer may **stop** (and later **resume**) marketing messages from a business number in
//!   WhatsApp: Meta tells the business with a `user_preferences` webhook, and refuses marketing
//!   templates to them with **131050**;
//! - Meta caps how many marketing messages one customer gets: over the cap a marketing template
//!   is refused with **131049** (retry no sooner than 24 h);
//! - since 2025-04-01 marketing templates to **+1 (US)** numbers are not delivered: accepted, then
//!   a `failed` status with 131049. (The simulator reads every +1 number as a US one.)
//!
//! Utility, authentication and free-form messages are never refused here. The control API
//! (`marketing_control`):
//! - `POST /__sim/customers/marketing` `{"customer","phone_number_id"?,"value":"stop"|"resume"}`:
//!   the customer stops or resumes marketing from that number; the `user_preferences` webhook goes
//!   out at once.
//! - `POST /__sim/customers/marketing_cap` `{"customer","hours"?}`: the customer reached Meta's
//!   marketing cap for `hours` (default 24) of simulator time.
//! - `POST /__sim/marketing/us_rule` `{"blocked":bool}`: whether marketing to +1 numbers is
//!   undelivered (default true, as Meta does since 2025-04-01).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::graph_error::GraphError;

/// What Meta knows about marketing to each customer.
#[derive(Debug)]
pub struct Marketing {
    /// (phone_number_id, wa_id) of customers who stopped marketing from that number.
    stopped: HashSet<(String, String)>,
    /// wa_id → until when the customer is over Meta's marketing cap (simulator time).
    capped_until: HashMap<String, DateTime<Utc>>,
    /// Marketing templates to +1 numbers are accepted and never delivered.
    pub us_blocked: bool,
}

impl Default for Marketing {
    fn default() -> Self {
        Marketing {
            stopped: HashSet::new(),
            capped_until: HashMap::new(),
            us_blocked: true,
        }
    }
}

impl Marketing {
    /// Meta's synchronous refusal of a marketing template to `wa_id` from `phone_number_id` at
    /// `now`, if any: the customer stopped marketing (131050), or is over the cap (131049).
    pub fn refusal(
        &self,
        phone_number_id: &str,
        wa_id: &str,
        now: DateTime<Utc>,
    ) -> Option<GraphError> {
        if self
            .stopped
            .contains(&(phone_number_id.to_owned(), wa_id.to_owned()))
        {
            return Some(GraphError::marketing_stopped());
        }
        if self
            .capped_until
            .get(wa_id)
            .is_some_and(|until| now < *until)
        {
            return Some(GraphError::ecosystem_engagement());
        }
        None
    }

    /// Whether a marketing template to `wa_id` is accepted and then not delivered (the US rule).
    pub fn undelivered(&self, wa_id: &str) -> bool {
        self.us_blocked && wa_id.starts_with('1')
    }
}

/// Whether a template of `category` (as the registry spells it) is a marketing template.
pub fn is_marketing(category: &str) -> bool {
    category.eq_ignore_ascii_case("marketing")
}

impl Marketing {
    /// The customer stops (`true`) or resumes marketing from `phone_number_id`.
    pub fn set_stopped(&mut self, phone_number_id: &str, wa_id: &str, stopped: bool) {
        let key = (phone_number_id.to_owned(), wa_id.to_owned());
        if stopped {
            self.stopped.insert(key);
        } else {
            self.stopped.remove(&key);
        }
    }

    /// The customer is over Meta's marketing cap until `until`.
    pub fn cap_until(&mut self, wa_id: &str, until: DateTime<Utc>) {
        self.capped_until.insert(wa_id.to_owned(), until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn a_customer_who_stopped_is_refused_131050_on_that_number_only() {
        let mut marketing = Marketing::default();
        marketing
            .stopped
            .insert(("111".to_owned(), "447911123456".to_owned()));

        let there = marketing.refusal("111", "447911123456", now());
        let elsewhere = marketing.refusal("222", "447911123456", now());

        assert_eq!(there.map(|e| e.code), Some(131050));
        assert!(elsewhere.is_none());
    }

    #[test]
    fn a_capped_customer_is_refused_131049_until_the_cap_lifts() {
        let mut marketing = Marketing::default();
        marketing.capped_until.insert(
            "447911123456".to_owned(),
            now() + chrono::Duration::hours(24),
        );

        let during = marketing.refusal("111", "447911123456", now());
        let after = marketing.refusal("111", "447911123456", now() + chrono::Duration::hours(24));

        assert_eq!(during.map(|e| e.code), Some(131049));
        assert!(after.is_none());
    }

    #[test]
    fn marketing_to_plus_one_numbers_is_undelivered_while_the_rule_holds() {
        let mut marketing = Marketing::default();

        assert!(marketing.undelivered("16505551234"));
        assert!(!marketing.undelivered("447911123456"));
        marketing.us_blocked = false;
        assert!(!marketing.undelivered("16505551234"));
    }
}
