//! Phone numbers in E.164, parsed with libphonenumber's rules (the `phonenumber` crate).
//!
//! Reps type numbers any way (`(650) 555-1234`, `+44 20 7946 0958`, `0049 30 1234567`); WhatsApp
//! wants digits with the country code. A number without a country code is read in the configured
//! default region.

use std::fmt;

use phonenumber::country::Id as Country;

/// A valid phone number in E.164 (`+16505551234`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error("'{0}' is not a phone number")]
    Unparseable(String),
    #[error("'{0}' is not a valid number for its country (check the digits and the country code)")]
    Invalid(String),
    #[error("'{0}' is not a known region code (use ISO 3166 letters such as US, GB, DE)")]
    UnknownRegion(String),
}

/// Parses an ISO 3166 region code such as `US` for numbers written without a country code.
pub fn region(code: &str) -> Result<Country, PhoneError> {
    code.trim()
        .to_ascii_uppercase()
        .parse::<Country>()
        .map_err(|_| PhoneError::UnknownRegion(code.to_string()))
}

impl E164 {
    /// Parses a number as a person wrote it. `default_region` applies when it has no country code.
    pub fn parse(raw: &str, default_region: Option<Country>) -> Result<E164, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        // "00" is the international prefix in most of the world; libphonenumber only knows it per
        // region, so rewrite it as "+" before parsing.
        let normalised = match trimmed.strip_prefix("00") {
            Some(rest) if !trimmed.starts_with('+') => format!("+{rest}"),
            _ => trimmed.to_string(),
        };
        let number = phonenumber::parse(default_region, &normalised)
            .map_err(|_| PhoneError::Unparseable(raw.to_string()))?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid(raw.to_string()));
        }
        Ok(E164(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// Parses a WhatsApp `wa_id` (digits with the country code, no `+`), as Meta sends it.
    pub fn from_wa_id(wa_id: &str) -> Result<E164, PhoneError> {
        if wa_id.is_empty() || !wa_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Unparseable(wa_id.to_string()));
        }
        E164::parse(&format!("+{wa_id}"), None)
    }

    /// `+16505551234`
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `16505551234`: what WhatsApp calls the wa_id and accepts in `to`.
    pub fn wa_id(&self) -> &str {
        &self.0[1..]
    }

    /// The national significant number, without country code or trunk prefix (`6505551234` for
    /// `+16505551234`, `2079460958` for `+442079460958`): the digits every written form of the
    /// number ends with, whether or not it was written with its country code.
    pub fn national_number(&self) -> String {
        phonenumber::parse(None, &self.0)
            .map(|number| number.national().value().to_string())
            .unwrap_or_else(|_| self.wa_id().to_string())
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Option<Country> {
        Some(region("us").unwrap())
    }

    #[test]
    fn human_formats_normalise_to_e164() {
        assert_eq!(
            E164::parse("(650) 253-0000", us()).unwrap().as_str(),
            "+16502530000"
        );
        assert_eq!(
            E164::parse("+44 20 7946 0958", us()).unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            E164::parse("0044 20 7946 0958", us()).unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            E164::parse("+1 650-253-0000", None).unwrap().wa_id(),
            "16502530000"
        );
    }

    #[test]
    fn garbage_short_and_empty_numbers_are_refused() {
        assert_eq!(E164::parse("  ", us()), Err(PhoneError::Empty));
        assert!(E164::parse("call me", us()).is_err());
        assert!(E164::parse("12", us()).is_err());
        assert!(
            E164::parse("650 253 0000", None).is_err(),
            "no country code and no default region"
        );
    }

    #[test]
    fn wa_ids_parse_back_to_the_same_number() {
        let number = E164::from_wa_id("16502530000").unwrap();
        assert_eq!(number.as_str(), "+16502530000");
        assert!(E164::from_wa_id("+1650").is_err());
    }

    #[test]
    fn the_national_number_drops_the_country_code() {
        assert_eq!(
            E164::from_wa_id("16502530000").unwrap().national_number(),
            "6502530000"
        );
        assert_eq!(
            E164::parse("0044 20 7946 0958", us())
                .unwrap()
                .national_number(),
            "2079460958"
        );
    }

    #[test]
    fn unknown_region_codes_are_named() {
        assert_eq!(region("XX"), Err(PhoneError::UnknownRegion("XX".into())));
    }
}
