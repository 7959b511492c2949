//! Salesforce record Ids: 15 case-sensitive characters plus a 3-character case-safe suffix.
//!
//! Layout as the real platform hands them out: key prefix (3) + pod (2) + reserved (1) + counter (9,
//! base 62). The suffix encodes which of the first 15 characters are upper case, five at a time, so an
//! 18-character Id survives case-insensitive systems (Excel, SOQL in some tools).

use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::domain::sf_id::{canonical, checksum};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Hands out fresh Ids for one org, unique across objects.
#[derive(Debug)]
pub struct IdGenerator {
    next: AtomicU64,
}

impl Default for IdGenerator {
    fn default() -> Self {
        // Start high enough that counters look like a lived-in org (and use both letter cases).
        IdGenerator {
            next: AtomicU64::new(2_000_000_000),
        }
    }
}

impl IdGenerator {
    /// A new 18-character Id with the given key prefix (e.g. `a00`, `003`).
    pub fn next(&self, key_prefix: &str) -> String {
        let mut n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut counter = [b'0'; 9];
        for slot in counter.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let id15 = format!(
            "{key_prefix}5g0{}",
            std::str::from_utf8(&counter).unwrap_or("000000000")
        );
        format!("{id15}{}", checksum(&id15))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_18_characters_unique_and_self_consistent() {
        let ids = IdGenerator::default();
        let a = ids.next("a00");
        let b = ids.next("a00");
        assert_ne!(a, b);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("a00"));
        assert_eq!(canonical(&a).unwrap(), a);
        assert_eq!(canonical(&a[..15]).unwrap(), a);
    }
}
