//! [`Secret`]: a setting that must never reach logs — tokens, client secrets, the app secret.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// A value that must never reach logs: Debug prints `***` (or `""` when unset), Serialize `***`.
///
/// A thin wrapper over [`secrecy::SecretString`], which also wipes the value from memory when it
/// is dropped; the wrapper keeps the small API the rest of the crate uses (`new`, `expose`,
/// `is_empty`, equality, an empty default) and says whether a secret was set at all in Debug.
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The value, for the one place that needs it (a header, a signature key, a form field).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// True when unset or only whitespace.
    pub fn is_empty(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// Serialised only to learn the shape of the settings; the value itself is never written out.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.expose().is_empty() {
            "\"\""
        } else {
            "***"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_stars_in_debug_and_serialisation_and_keeps_its_value() {
        let secret = Secret::new("EAAtoken-value");

        let debug = format!("{secret:?} {:?}", Some(secret.clone()));
        let json = serde_json::to_string(&secret).unwrap();

        assert_eq!(debug, "*** Some(***)");
        assert_eq!(json, "\"***\"");
        assert_eq!(secret.expose(), "EAAtoken-value");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }
}
