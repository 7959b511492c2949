//! Salesforce record Ids: 15 case-sensitive characters plus a 3-character case-safe suffix.
//!
//! The suffix encodes which of the first 15 characters are upper case, five at a time, so an
//! 18-character Id survives case-insensitive systems. sfwa keys everything by the 18-character form.

use std::fmt;

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

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
            sum.eq_ignore_ascii_case(suffix)
                .then(|| format!("{restored}{sum}"))
        }
        _ => None,
    }
}

/// A valid 18-character Salesforce Id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SfId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a Salesforce Id (15 or 18 letters and digits with a valid suffix)")]
pub struct InvalidSfId(pub String);

impl SfId {
    pub fn parse(text: &str) -> Result<SfId, InvalidSfId> {
        canonical(text.trim())
            .map(SfId)
            .ok_or_else(|| InvalidSfId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key prefix naming the object (`003` Contact, `00Q` Lead, `a0…` custom objects).
    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }
}

/// An Id compares equal to its 18-character text.
impl PartialEq<str> for SfId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SfId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SfId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SfId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_salesforces_published_example() {
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
        assert_eq!(SfId::parse("nope"), Err(InvalidSfId("nope".into())));
    }
}
