//! The account's business phone numbers, each a full peer: its own throughput (130429 past it),
//! its own customers' windows (keyed by number in `state`), its own hold (a number Meta blocked or
//! locked answers every send with that error) and its own webhook callback override. Templates
//! belong to the account and are shared by every number.
//!
//! The numbers the simulator starts with come from its config (`phone_number_id` and
//! `other_phone_numbers`); `POST /__sim/numbers` adds more at run time, `PATCH
//! /__sim/numbers/{id}` changes one (see `control`), and Graph lists them in Meta's shape
//! (`GET /{version}/{waba_id}/phone_numbers`, `graph_api`).

use std::sync::{Mutex, MutexGuard};

use rand::Rng;
use serde::Serialize;

use super::config::WhatsAppSimConfig;

/// One business number as the simulated Meta knows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SimNumber {
    pub phone_number_id: String,
    /// Digits only, as webhooks' `metadata.display_phone_number` has it.
    pub display_phone_number: String,
    pub verified_name: String,
    /// Messages per second before 130429; `None`: the account's (`throughput_per_second`).
    pub throughput_per_second: Option<u32>,
    /// Meta's error code every send from this number is answered with (368 blocked for a
    /// policy violation, 131031 locked, 133010 not registered); `None`: it sends.
    pub hold_error: Option<u32>,
    /// Where this number's `messages` webhooks go instead of the app's callback URL.
    pub webhook_override: Option<WebhookOverride>,
}

/// A per-number alternate callback (`webhook_configuration.override_callback_uri`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WebhookOverride {
    pub uri: String,
    /// The token Meta sent in `hub.verify_token` when the URL was verified.
    pub verify_token: String,
}

/// Every number of the account, in the order they were added (the main one first).
#[derive(Debug)]
pub struct Numbers(Mutex<Vec<SimNumber>>);

impl Numbers {
    /// The numbers the config names: the main one, then `other_phone_numbers`.
    pub fn from_config(config: &WhatsAppSimConfig) -> Numbers {
        let peer = |id: &str, display: &str| SimNumber {
            phone_number_id: id.to_owned(),
            display_phone_number: display.to_owned(),
            verified_name: config.verified_name.clone(),
            throughput_per_second: None,
            hold_error: None,
            webhook_override: None,
        };
        let mut numbers = vec![peer(&config.phone_number_id, &config.display_phone_number)];
        for other in &config.other_phone_numbers {
            numbers.push(peer(&other.phone_number_id, &other.display_phone_number));
        }
        Numbers(Mutex::new(numbers))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SimNumber>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every number, in order.
    pub fn all(&self) -> Vec<SimNumber> {
        self.lock().clone()
    }

    pub fn get(&self, phone_number_id: &str) -> Option<SimNumber> {
        self.lock()
            .iter()
            .find(|n| n.phone_number_id == phone_number_id)
            .cloned()
    }

    /// The display number of `phone_number_id` when the account owns it.
    pub fn display_of(&self, phone_number_id: &str) -> Option<String> {
        self.get(phone_number_id).map(|n| n.display_phone_number)
    }

    /// Whether `digits` is one of the account's own numbers (a business cannot message itself).
    pub fn is_own_number(&self, digits: &str) -> bool {
        self.lock().iter().any(|n| n.display_phone_number == digits)
    }

    /// Adds a number; ids and display numbers left out are made up. `Err` when the id or the
    /// display number is already the account's.
    pub fn add(&self, mut number: SimNumber) -> Result<SimNumber, String> {
        let mut rng = rand::thread_rng();
        if number.phone_number_id.is_empty() {
            number.phone_number_id = format!("1{:014}", rng.gen_range(0..100_000_000_000_000u64));
        }
        if number.display_phone_number.is_empty() {
            number.display_phone_number = format!("1555{:07}", rng.gen_range(0..10_000_000u32));
        }
        let mut numbers = self.lock();
        if numbers.iter().any(|n| {
            n.phone_number_id == number.phone_number_id
                || n.display_phone_number == number.display_phone_number
        }) {
            return Err(format!(
                "phone number {} ({}) is already the account's",
                number.phone_number_id, number.display_phone_number
            ));
        }
        numbers.push(number.clone());
        Ok(number)
    }

    /// Changes one number in place; `None` when the account has no such number.
    pub fn update<T>(
        &self,
        phone_number_id: &str,
        f: impl FnOnce(&mut SimNumber) -> T,
    ) -> Option<T> {
        self.lock()
            .iter_mut()
            .find(|n| n.phone_number_id == phone_number_id)
            .map(f)
    }
}

/// The throughput level Meta reports for a number granted `per_second`: STANDARD is 80 a second;
/// a number Meta raised above it is on HIGH (up to 1,000). A grant below 80 (a new or coexistence
/// number) still reads STANDARD: the level is a hint, the 130429s are the truth.
pub fn throughput_level(per_second: u32) -> &'static str {
    if per_second > 80 {
        "HIGH"
    } else {
        "STANDARD"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> SimNumber {
        SimNumber {
            phone_number_id: String::new(),
            display_phone_number: String::new(),
            verified_name: "Shop".into(),
            throughput_per_second: None,
            hold_error: None,
            webhook_override: None,
        }
    }

    #[test]
    fn a_number_added_without_ids_gets_fresh_ones_and_a_taken_id_is_refused() {
        let config = WhatsAppSimConfig::default();
        let numbers = Numbers::from_config(&config);

        let added = numbers.add(blank()).expect("added");
        let again = numbers.add(SimNumber {
            phone_number_id: config.phone_number_id.clone(),
            ..blank()
        });

        assert_eq!(added.phone_number_id.len(), 15);
        assert!(numbers.is_own_number(&added.display_phone_number));
        assert_eq!(
            numbers.all().len(),
            1 + config.other_phone_numbers.len() + 1
        );
        assert!(again.is_err());
    }

    #[test]
    fn a_number_above_80_a_second_reads_high() {
        assert_eq!(throughput_level(20), "STANDARD");
        assert_eq!(throughput_level(80), "STANDARD");
        assert_eq!(throughput_level(200), "HIGH");
    }
}
