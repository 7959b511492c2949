//! Salesforce record Ids: 15 case-sensitive characters plus a 3-character case-safe suffix.
//!
//! Layout as the real platform hands them out: key prefix (3) + pod (2) + reserved (1) + counter (9,
//! base 62). The suffix encodes which of the first 15 characters are upper case, five at a time, so an
//! 18-character Id survives case-insensitive systems (Excel, SOQL in some tools).

use std::sync::atomic::{AtomicU64, Ordering};

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 3-character suffix for a 15-character Id.
pub fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let flags = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            SUFFIX_ALPHABET[flags] as char
        })
        .collect()
}

/// Normalises a 15- or 18-character Id to its 18-character form, or `None` if it is malformed.
///
/// An 18-character Id may arrive in any case; the suffix says which letters were upper case.
pub fn canonical(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(format!("{id}{}", checksum(id))),
        18 => {
            let (body, suffix) = id.split_at(15);
            let mut restored = String::with_capacity(18);
            for (chunk, flag_char) in body.as_bytes().chunks(5).zip(suffix.bytes()) {
                let flags = SUFFIX_ALPHABET
                    .iter()
                    .position(|c| *c == flag_char.to_ascii_uppercase())?;
                for (i, c) in chunk.iter().enumerate() {
                    let upper = flags & (1 << i) != 0;
                    restored.push(if upper {
                        c.to_ascii_uppercase() as char
                    } else {
                        c.to_ascii_lowercase() as char
                    });
                }
            }
            let sum = checksum(&restored);
            (sum.eq_ignore_ascii_case(suffix)).then(|| format!("{restored}{sum}"))
        }
        _ => None,
    }
}

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
    fn checksum_matches_salesforces_published_example() {
        // Salesforce's own knowledge-base example of a 15 → 18 conversion.
        assert_eq!(canonical("001A0000006Vm9r").unwrap(), "001A0000006Vm9rIAC");
    }

    #[test]
    fn an_18_character_id_in_the_wrong_case_is_restored() {
        assert_eq!(
            canonical("001a0000006vm9riac").unwrap(),
            "001A0000006Vm9rIAC"
        );
    }

    #[test]
    fn ids_with_bad_length_characters_or_suffix_are_malformed() {
        assert!(canonical("001A0000006Vm9").is_none());
        assert!(canonical("001A0000006Vm9r!AC").is_none());
        assert!(canonical("001A0000006Vm9rZZZ").is_none());
    }

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
