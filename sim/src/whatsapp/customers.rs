//! Who the simulated customers are in 2026: each WhatsApp user has a phone number (`wa_id`) and,
//! per business portfolio, a business-scoped user id (BSUID, `US.13491208655302741918`); some have
//! a parent BSUID (`US.ENT.…`, spanning linked portfolios) and a username.
//!
//! Every user Meta knows has a BSUID, so a customer is registered the first time the simulator
//! meets their number (an inbound message, a send, the control API) with a BSUID derived from the
//! portfolio and the number: stable across runs and restarts, different per portfolio, as Meta's.
//! The control API can give them a username, a parent BSUID, a profile name, the `standby` flag,
//! a new number or a new BSUID.
//!
//! Phone withheld: Meta hides a username user's number in webhooks unless the business number
//! exchanged messages with them in the last 30 days. The simulator counts a message the business
//! sent them (accepted and not failed) as that exchange — a customer writing in alone does not
//! reveal their own number, or usernames would hide nothing.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How long after the business last messaged a username user their number still shows.
pub const PHONE_SHOWN_FOR: Duration = Duration::days(30);

/// One simulated WhatsApp user, as this business portfolio sees them.
#[derive(Clone, Debug, Serialize)]
pub struct Customer {
    /// Phone number, digits only.
    pub wa_id: String,
    /// BSUID in this portfolio.
    pub user_id: String,
    /// Parent BSUID, when parent BSUIDs are enabled for the user's portfolios.
    pub parent_user_id: Option<String>,
    /// A WhatsApp username: when set, the phone number is withheld from webhooks (see module doc).
    pub username: Option<String>,
    /// Profile name shown in `contacts[].profile.name` (default "Sim Customer").
    pub name: Option<String>,
    /// The business hands this customer to Meta's business agent: their messages arrive on the
    /// `standby` field, not `messages`.
    pub standby: bool,
    /// When the business last messaged them, per business phone number id.
    #[serde(skip)]
    pub last_business_message: HashMap<String, DateTime<Utc>>,
}

impl Customer {
    /// Whether webhooks to `phone_number_id` may carry this customer's number at `now`.
    pub fn phone_shown(&self, phone_number_id: &str, now: DateTime<Utc>) -> bool {
        self.username.is_none()
            || self
                .last_business_message
                .get(phone_number_id)
                .is_some_and(|last| now - *last < PHONE_SHOWN_FOR)
    }

    pub fn profile_name(&self) -> &str {
        self.name.as_deref().unwrap_or("Sim Customer")
    }
}

/// Every customer the simulated Meta knows, by number and by BSUID.
#[derive(Debug)]
pub struct Customers {
    /// Seed of derived BSUIDs: the business portfolio (the simulator's WABA id stands for it).
    portfolio: String,
    by_wa_id: HashMap<String, Customer>,
    /// BSUID or parent BSUID → wa_id.
    by_user_id: HashMap<String, String>,
}

impl Customers {
    pub fn new(portfolio: &str) -> Self {
        Self {
            portfolio: portfolio.to_owned(),
            by_wa_id: HashMap::new(),
            by_user_id: HashMap::new(),
        }
    }

    /// The customer with this number, registered (with a derived BSUID) if new.
    pub fn register(&mut self, wa_id: &str) -> &mut Customer {
        if !self.by_wa_id.contains_key(wa_id) {
            let user_id = derived_user_id(&self.portfolio, wa_id, false);
            self.by_user_id.insert(user_id.clone(), wa_id.to_owned());
            self.by_wa_id.insert(
                wa_id.to_owned(),
                Customer {
                    wa_id: wa_id.to_owned(),
                    user_id,
                    parent_user_id: None,
                    username: None,
                    name: None,
                    standby: false,
                    last_business_message: HashMap::new(),
                },
            );
        }
        self.by_wa_id.get_mut(wa_id).expect("registered just above")
    }

    pub fn get(&self, wa_id: &str) -> Option<&Customer> {
        self.by_wa_id.get(wa_id)
    }

    pub fn get_mut(&mut self, wa_id: &str) -> Option<&mut Customer> {
        self.by_wa_id.get_mut(wa_id)
    }

    /// The number of the customer whose BSUID or parent BSUID this is.
    pub fn wa_id_of(&self, user_id: &str) -> Option<&str> {
        self.by_user_id.get(user_id).map(String::as_str)
    }

    pub fn all(&self) -> impl Iterator<Item = &Customer> {
        self.by_wa_id.values()
    }

    /// Sets a customer's parent BSUID (`None` removes it); `Some("")` derives one.
    pub fn set_parent(&mut self, wa_id: &str, parent: Option<String>) -> Option<String> {
        let portfolio = self.portfolio.clone();
        let customer = self.register(wa_id);
        let old = customer.parent_user_id.take();
        let new = parent.map(|given| {
            if given.is_empty() {
                derived_user_id(&portfolio, wa_id, true)
            } else {
                given
            }
        });
        customer.parent_user_id = new.clone();
        if let Some(old) = old {
            self.by_user_id.remove(&old);
        }
        if let Some(new) = &new {
            self.by_user_id.insert(new.clone(), wa_id.to_owned());
        }
        new
    }

    /// Gives a customer a new BSUID (`None`: a fresh derived one); returns (previous, new).
    pub fn change_user_id(&mut self, wa_id: &str, new: Option<String>) -> (String, String) {
        let portfolio = self.portfolio.clone();
        let customer = self.register(wa_id);
        let new = new.unwrap_or_else(|| {
            // A fresh id that differs from the current one: derive from the old id.
            derived_user_id(&portfolio, &customer.user_id, false)
        });
        let previous = std::mem::replace(&mut customer.user_id, new.clone());
        self.by_user_id.remove(&previous);
        self.by_user_id.insert(new.clone(), wa_id.to_owned());
        (previous, new)
    }

    /// Moves a customer to a new number (who keeps their username, name and BSUIDs here; the
    /// caller decides whether the BSUID changes too). `None` when `old` is unknown or `new` taken.
    pub fn change_number(&mut self, old: &str, new: &str) -> Option<&mut Customer> {
        if self.by_wa_id.contains_key(new) {
            return None;
        }
        let mut customer = self.by_wa_id.remove(old)?;
        customer.wa_id = new.to_owned();
        for id in std::iter::once(&customer.user_id).chain(customer.parent_user_id.as_ref()) {
            self.by_user_id.insert(id.clone(), new.to_owned());
        }
        self.by_wa_id.insert(new.to_owned(), customer);
        self.by_wa_id.get_mut(new)
    }
}

/// A BSUID the way Meta shapes them: the user's ISO country, a dot (`.ENT.` for a parent), then
/// 20 digits — here derived from the portfolio and the number, so the same customer gets the same
/// id in every run and a different one in another portfolio.
pub fn derived_user_id(portfolio: &str, wa_id: &str, parent: bool) -> String {
    let kind = if parent { "parent" } else { "user" };
    let digest = Sha256::digest(format!("{kind}:{portfolio}:{wa_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let digits = u64::from_be_bytes(first);
    let country = country_of(wa_id);
    if parent {
        format!("{country}.ENT.{digits:020}")
    } else {
        format!("{country}.{digits:020}")
    }
}

/// The ISO 3166 alpha-2 country of a number, from its calling code (a few common ones; `US`
/// otherwise — the simulator only needs a plausible prefix).
fn country_of(wa_id: &str) -> &'static str {
    const CODES: [(&str, &str); 14] = [
        ("44", "GB"),
        ("49", "DE"),
        ("33", "FR"),
        ("34", "ES"),
        ("39", "IT"),
        ("31", "NL"),
        ("91", "IN"),
        ("55", "BR"),
        ("52", "MX"),
        ("61", "AU"),
        ("81", "JP"),
        ("62", "ID"),
        ("27", "ZA"),
        ("1", "US"),
    ];
    CODES
        .iter()
        .find(|(code, _)| wa_id.starts_with(code))
        .map_or("US", |(_, country)| country)
}

/// Whether `text` is shaped like a BSUID or parent BSUID: two capital letters, a dot, optionally
/// `ENT.`, then 1–128 ASCII letters or digits.
pub fn is_user_id(text: &str) -> bool {
    let Some((country, rest)) = text.split_once('.') else {
        return false;
    };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=128).contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_bsuid_is_stable_per_portfolio_and_shaped_like_metas() {
        let first = derived_user_id("1234", "16505551234", false);
        let again = derived_user_id("1234", "16505551234", false);
        let elsewhere = derived_user_id("9999", "16505551234", false);
        let parent = derived_user_id("1234", "16505551234", true);

        assert_eq!(first, again);
        assert_ne!(first, elsewhere);
        assert!(first.starts_with("US.") && first.len() == 23, "{first}");
        assert!(parent.starts_with("US.ENT."), "{parent}");
        assert!(is_user_id(&first) && is_user_id(&parent));
        assert!(derived_user_id("1", "447700900123", false).starts_with("GB."));
    }

    #[test]
    fn bsuid_shape_check_refuses_phone_numbers_and_lowercase_countries() {
        assert!(is_user_id("US.13491208655302741918"));
        assert!(is_user_id("US.ENT.11815799212886844830"));
        assert!(!is_user_id("16505551234"));
        assert!(!is_user_id("+16505551234"));
        assert!(!is_user_id("us.1349"));
        assert!(!is_user_id("US."));
        assert!(!is_user_id("US.12-34"));
    }

    #[test]
    fn a_customer_is_found_by_bsuid_and_parent_and_follows_a_number_change() {
        let mut customers = Customers::new("1234");
        let user_id = customers.register("16505551234").user_id.clone();
        let parent = customers
            .set_parent("16505551234", Some(String::new()))
            .expect("parent");

        customers.change_number("16505551234", "16505559999");

        assert_eq!(customers.wa_id_of(&user_id), Some("16505559999"));
        assert_eq!(customers.wa_id_of(&parent), Some("16505559999"));
        assert!(customers.get("16505551234").is_none());
    }

    #[test]
    fn a_username_customer_shows_their_phone_only_within_30_days_of_a_business_message() {
        let now = Utc::now();
        let mut customers = Customers::new("1234");
        let customer = customers.register("16505551234");
        customer.username = Some("sheena".to_owned());
        let hidden_at_first = !customer.phone_shown("pn", now);

        customer
            .last_business_message
            .insert("pn".to_owned(), now - Duration::days(29));
        let shown_within = customer.phone_shown("pn", now);
        let hidden_on_other_number = !customer.phone_shown("other", now);
        let hidden_after = !customer.phone_shown("pn", now + Duration::days(2));

        assert!(hidden_at_first && shown_within && hidden_on_other_number && hidden_after);
    }
}
