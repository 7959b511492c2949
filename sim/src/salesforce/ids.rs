//! Salesforce record Ids: 15 case-sensitive characters plus a 3-character case-safe suffix.
//!
//! Layout as the real platform hands them out: key prefix (3) + pod (2) + reserved (1) + counter (9,
//! base 62). The suffix encodes which of the first 15 characters are upper case, five at a time, so an
//! 18-character Id survives case-insensitive systems (Excel, SOQL in some tools).

use std::sync::atomic::{AtomicU64, Ordering};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The characters a suffix is spelled with: a block's 5-bit mask of upper-case letters, as an index.
/// (The simulator's own copy of the rule, not the daemon's: it is a witness of the daemon's Ids.)
const SUFFIX_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 3-character case-safe suffix of a 15-character Id: one character per block of five, whose
/// index in [`SUFFIX_CHARS`] has bit *i* set when the block's *i*-th character is an upper-case
/// letter.
pub fn checksum(id15: &str) -> String {
    let chars: Vec<char> = id15.chars().collect();
    chars
        .chunks(5)
        .map(|block| {
            let mask = block.iter().rev().fold(0usize, |mask, c| {
                (mask << 1) | usize::from(c.is_ascii_uppercase())
            });
            char::from(SUFFIX_CHARS.as_bytes()[mask])
        })
        .collect()
}

/// An Id in the 18-character form the API answers with: from a 15-character Id, or from an
/// 18-character one in any letter case (the suffix says which letters are upper case). `None` for
/// anything else — another length, a character outside `[0-9A-Za-z]`, a suffix that does not fit
/// its letters — which the API refuses as a malformed Id.
pub fn canonical(id: &str) -> Option<String> {
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(format!("{id}{}", checksum(id))),
        18 => {
            let (body, suffix) = id.split_at(15);
            let masks = suffix
                .chars()
                .map(|c| SUFFIX_CHARS.find(c.to_ascii_uppercase()))
                .collect::<Option<Vec<usize>>>()?;
            let restored: String = body
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if (masks[i / 5] >> (i % 5)) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            let expected = checksum(&restored);
            (expected == suffix.to_ascii_uppercase()).then(|| format!("{restored}{expected}"))
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

    #[test]
    fn an_id_gets_the_suffix_salesforce_documents_and_keeps_it_in_any_case() {
        assert_eq!(checksum("001A0000006Vm9r"), "IAC");
        assert_eq!(
            canonical("001a0000006vm9riac").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        // `B` marks the first character upper case, but it is the digit 0.
        assert_eq!(canonical("001A0000006Vm9rBAC"), None, "suffix does not fit");
        assert_eq!(canonical("001A0000006Vm9"), None, "14 characters");
        assert_eq!(canonical("001A0000006Vm9-"), None, "not alphanumeric");
    }
}
