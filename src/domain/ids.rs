//! The ids WhatsApp gives sfwa, parsed once at the edge (`webhook::payload`, `whatsapp::client`,
//! the store's columns) so that nothing further in can mix them up or hold a malformed one:
//!
//! - [`Wamid`] — Meta's id of one message (the send's answer, every status, every inbound message);
//! - [`BusinessNumberId`] — Meta's `phone_number_id` of one of our business numbers;
//! - [`CustomerId`] — who the customer is, as WhatsApp knows them: a phone (`wa_id`) or, since
//!   2026, a business-scoped user id (BSUID, `US.13491208655302741918`) when Meta withholds the
//!   phone of a customer who uses a username.
//!
//! Each has `FromStr` (`"…".parse()`), `as_str`, `Display`, serde as its text, and rusqlite
//! `ToSql`/`FromSql`, so the store binds and reads them directly (a malformed value in a column is
//! a read error, not a value). [`super::sf_id::SfId`] gets the same here.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::sf_id::{InvalidSfId, SfId};
use super::text::{echo, salesforce_length};

/// The longest wamid: it is stored whole in `WhatsApp_Message_Id__c`, a Text(128).
pub const MAX_WAMID_CHARS: usize = 128;
/// The longest phone_number_id: `Business_Number_Id__c` is a Text(32).
pub const MAX_BUSINESS_NUMBER_CHARS: usize = 32;
/// The longest customer wa_id: `From_Phone__c` is a Phone field (40), written with a leading `+`.
pub const MAX_WA_ID_CHARS: usize = 39;
/// The longest BSUID: a country code, a dot, an optional `ENT.` (the parent form spanning linked
/// portfolios) and up to 128 alphanumerics (Meta's 2026 reference).
pub const MAX_USER_ID_CHARS: usize = 2 + 1 + 4 + 128;

/// Why a text is not an id of its kind; it names the kind and echoes the value (cut to
/// [`super::text::ECHO_CHARS`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("the {what} is empty")]
    Empty { what: &'static str },
    #[error("the {what} \"{value}\" is longer than {max} characters")]
    TooLong {
        what: &'static str,
        value: String,
        max: usize,
    },
    #[error("the {what} \"{value}\" is not digits")]
    NotDigits { what: &'static str, value: String },
    #[error("the {what} \"{value}\" is neither a phone number (digits) nor a business-scoped user id (like US.13491208655302741918)")]
    NotCustomer { what: &'static str, value: String },
}

/// `text`, refused when empty or longer than `max` UTF-16 units (Salesforce's measure).
fn bounded(what: &'static str, text: &str, max: usize) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty { what });
    }
    if salesforce_length(text) > max {
        return Err(IdError::TooLong {
            what,
            value: echo(text),
            max,
        });
    }
    Ok(())
}

/// `text`, bounded and ASCII digits only.
fn digits(what: &'static str, text: &str, max: usize) -> Result<(), IdError> {
    bounded(what, text, max)?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::NotDigits {
            what,
            value: echo(text),
        });
    }
    Ok(())
}

/// Meta's message id (`wamid.HBgL…`). Opaque: sfwa never looks inside, it only keys by it. Not
/// empty, and at most [`MAX_WAMID_CHARS`] so it fits `WhatsApp_Message_Id__c` whole (a cut wamid
/// would name another message, or none).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wamid(String);

impl FromStr for Wamid {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Wamid, IdError> {
        bounded("wamid", text, MAX_WAMID_CHARS)?;
        Ok(Wamid(text.to_string()))
    }
}

/// Meta's id of one of our business numbers (`phone_number_id`, e.g. `106540352242922`): digits,
/// at most [`MAX_BUSINESS_NUMBER_CHARS`]. Not the number itself (that is the display number).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusinessNumberId(String);

impl FromStr for BusinessNumberId {
    type Err = IdError;
    fn from_str(text: &str) -> Result<BusinessNumberId, IdError> {
        digits("phone_number_id", text, MAX_BUSINESS_NUMBER_CHARS)?;
        Ok(BusinessNumberId(text.to_string()))
    }
}

/// Who a customer is, as WhatsApp knows them: the key of the 24-hour window (with the business
/// number) and the sender of an inbound message.
///
/// **This is the one type that changes when customers stop being phone numbers.** Meta's 2026
/// business-scoped user ids (BSUID) and usernames arrive as further variants, and
/// [`CustomerId::from_str`] is the one place that decides which one a text is; everything past
/// the edge (the window mirror, the journal, the inbound path) keys by `CustomerId` and its
/// [`as_str`](CustomerId::as_str), so it does not change.
///
/// The phone variant holds the `wa_id` as WhatsApp writes it (digits with the country code, no
/// `+`), not an [`E164`](super::phone::E164): a number libphonenumber's metadata does not know
/// yet (a new range, a test number) is still a customer who wrote to us and must not be refused.
/// [`CustomerId::phone`] gives the E.164 reading where there is one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerId {
    /// `16505551234`: the customer's WhatsApp number, digits with the country code.
    WaId(String),
    /// `US.13491208655302741918`: a business-scoped user id (BSUID), given instead of the phone
    /// for a customer who uses a WhatsApp username (or `US.ENT.…`, the parent form spanning the
    /// portfolios linked to ours). Scoped to our business portfolio: the same person has another
    /// BSUID with another business. Sends to it go in `recipient`, never in `to`.
    UserId(String),
}

impl CustomerId {
    /// The customer a phone number is, as WhatsApp addresses it (the send side: the record's
    /// number, normalised).
    pub fn from_phone(phone: &super::phone::E164) -> CustomerId {
        CustomerId::WaId(phone.wa_id().to_string())
    }

    /// A business-scoped user id, refused unless it has the BSUID form (`CC.` then up to 128
    /// alphanumerics, or the parent form `CC.ENT.…`).
    pub fn user_id(text: &str) -> Result<CustomerId, IdError> {
        const WHAT: &str = "business-scoped user id";
        bounded(WHAT, text, MAX_USER_ID_CHARS)?;
        if !is_user_id(text) {
            return Err(IdError::NotCustomer {
                what: WHAT,
                value: echo(text),
            });
        }
        Ok(CustomerId::UserId(text.to_string()))
    }

    /// The customer's phone number in E.164, when the id is a phone libphonenumber knows.
    pub fn phone(&self) -> Option<super::phone::E164> {
        match self {
            CustomerId::WaId(wa_id) => super::phone::E164::from_wa_id(wa_id).ok(),
            CustomerId::UserId(_) => None,
        }
    }

    /// The wa_id, when the customer is known by phone.
    pub fn wa_id(&self) -> Option<&str> {
        match self {
            CustomerId::WaId(wa_id) => Some(wa_id),
            CustomerId::UserId(_) => None,
        }
    }

    /// Whether this is a business-scoped user id rather than a phone.
    pub fn is_user_id(&self) -> bool {
        matches!(self, CustomerId::UserId(_))
    }

    /// The text WhatsApp uses for this customer (and the store keys by).
    pub fn as_str(&self) -> &str {
        match self {
            CustomerId::WaId(wa_id) | CustomerId::UserId(wa_id) => wa_id,
        }
    }
}

/// `CC.` + 1..=128 ASCII alphanumerics, or `CC.ENT.` + the same (CC: two ASCII capitals).
fn is_user_id(text: &str) -> bool {
    let Some((country, rest)) = text.split_once('.') else {
        return false;
    };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && !rest.is_empty()
        && rest.len() <= 128
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl FromStr for CustomerId {
    type Err = IdError;
    /// A `wa_id` (a leading `+`, a number written the human way, is dropped) or a BSUID: a text
    /// with a dot is read as a BSUID, anything else as a wa_id.
    fn from_str(text: &str) -> Result<CustomerId, IdError> {
        if text.contains('.') {
            return CustomerId::user_id(text);
        }
        let wa_id = text.strip_prefix('+').unwrap_or(text);
        digits("wa_id", wa_id, MAX_WA_ID_CHARS)?;
        Ok(CustomerId::WaId(wa_id.to_string()))
    }
}

/// `as_str`, `Display`, serde as text and SQLite as text for an id with `FromStr`.
macro_rules! textual_id {
    ($($id:ty),*) => {$(
        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $id {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $id {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        /// Compared with its text (tests and logs read better than `.as_str()` everywhere).
        impl PartialEq<str> for $id {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $id {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ToSql for $id {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $id {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )*};
}

macro_rules! string_id {
    ($($id:ident),*) => {$(
        impl $id {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    )*};
}

string_id!(Wamid, BusinessNumberId);
textual_id!(Wamid, BusinessNumberId, CustomerId);

// SfId keeps its own Display and serde (sf_id.rs); it gains `FromStr` and the store's binding.
impl FromStr for SfId {
    type Err = InvalidSfId;
    fn from_str(text: &str) -> Result<SfId, InvalidSfId> {
        SfId::parse(text)
    }
}

impl ToSql for SfId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for SfId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        SfId::parse(value.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    const WAMID: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=";

    /// `value` written to an SQLite column and read back as `T`.
    fn through_sqlite<T: ToSql + FromSql>(value: &T) -> rusqlite::Result<T> {
        let db = Connection::open_in_memory()?;
        db.execute("CREATE TABLE t (v TEXT)", [])?;
        db.execute("INSERT INTO t VALUES (?1)", [value])?;
        db.query_row("SELECT v FROM t", [], |row| row.get(0))
    }

    /// The text `raw` stored in a column, read back as `T`.
    fn read_stored<T: FromSql>(raw: &str) -> rusqlite::Result<T> {
        let db = Connection::open_in_memory()?;
        db.query_row("SELECT ?1", [raw], |row| row.get(0))
    }

    #[test]
    fn a_wamid_is_any_text_that_fits_its_salesforce_field() {
        let wamid: Wamid = WAMID.parse().unwrap();
        assert_eq!(wamid.as_str(), WAMID);
        assert_eq!(wamid.to_string(), WAMID);
        assert!("x".repeat(MAX_WAMID_CHARS).parse::<Wamid>().is_ok());
    }

    #[test]
    fn an_empty_or_over_long_wamid_is_refused_with_a_reason_naming_it() {
        assert_eq!("".parse::<Wamid>(), Err(IdError::Empty { what: "wamid" }));
        // 65 emoji are 130 UTF-16 units: Salesforce counts those, not characters.
        let long = "😀".repeat(65);
        let error = long.parse::<Wamid>().unwrap_err();
        assert!(
            matches!(error, IdError::TooLong { max: 128, .. }),
            "{error:?}"
        );
        assert!(error.to_string().starts_with("the wamid \"😀"), "{error}");
    }

    #[test]
    fn a_business_number_id_is_digits_and_nothing_else() {
        let number: BusinessNumberId = "106540352242922".parse().unwrap();
        assert_eq!(number.as_str(), "106540352242922");
        for bad in [
            "",
            "10654035224292a",
            " 106540352242922",
            "+1065",
            &"9".repeat(33),
        ] {
            assert!(bad.parse::<BusinessNumberId>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "abc".parse::<BusinessNumberId>().unwrap_err().to_string(),
            "the phone_number_id \"abc\" is not digits"
        );
    }

    #[test]
    fn a_customer_id_is_a_wa_id_with_or_without_its_plus() {
        let customer: CustomerId = "16505551234".parse().unwrap();
        assert_eq!(customer, "+16505551234".parse::<CustomerId>().unwrap());
        assert_eq!(customer.as_str(), "16505551234");
        assert_eq!(customer.phone().unwrap().as_str(), "+16505551234");
        let phone = crate::domain::phone::E164::from_wa_id("16505551234").unwrap();
        assert_eq!(CustomerId::from_phone(&phone), customer);
    }

    #[test]
    fn a_wa_id_libphonenumber_does_not_know_is_still_a_customer_without_a_phone_reading() {
        let customer: CustomerId = "999".parse().unwrap();
        assert_eq!(customer.as_str(), "999");
        assert_eq!(customer.phone(), None);
    }

    #[test]
    fn a_business_scoped_user_id_is_a_customer_without_a_phone() {
        for bsuid in ["US.13491208655302741918", "US.ENT.9f8e7d", "BR.abc123"] {
            let customer: CustomerId = bsuid.parse().unwrap();
            assert!(customer.is_user_id(), "{bsuid}");
            assert_eq!(customer.as_str(), bsuid);
            assert_eq!(customer.phone(), None);
        }
        for bad in ["us.123", "USA.123", "US.", "US.12-3", "US.ENT.", ".123"] {
            assert!(bad.parse::<CustomerId>().is_err(), "{bad:?}");
        }
        let long = format!("US.{}", "1".repeat(140));
        assert!(matches!(
            long.parse::<CustomerId>(),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn a_customer_id_that_is_not_digits_or_too_long_is_refused() {
        for bad in ["", "+", "not-a-number", "1650 555 1234", &"1".repeat(40)] {
            assert!(bad.parse::<CustomerId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_id_round_trips_through_sqlite() {
        let wamid: Wamid = WAMID.parse().unwrap();
        let number: BusinessNumberId = "106540352242922".parse().unwrap();
        let customer: CustomerId = "16505551234".parse().unwrap();
        let record: SfId = "001A0000006Vm9r".parse().unwrap();
        assert_eq!(through_sqlite(&wamid).unwrap(), wamid);
        assert_eq!(through_sqlite(&number).unwrap(), number);
        assert_eq!(through_sqlite(&customer).unwrap(), customer);
        assert_eq!(through_sqlite(&record).unwrap(), record);
    }

    #[test]
    fn a_malformed_id_in_a_column_is_a_read_error_not_a_value() {
        assert!(read_stored::<BusinessNumberId>("not digits").is_err());
        assert!(read_stored::<CustomerId>("").is_err());
        assert!(read_stored::<SfId>("nope").is_err());
        assert!(read_stored::<Wamid>("").is_err());
    }

    #[test]
    fn ids_serialise_as_their_text_and_deserialise_only_when_valid() {
        let customer: CustomerId = "16505551234".parse().unwrap();
        assert_eq!(serde_json::to_value(&customer).unwrap(), "16505551234");
        let number: BusinessNumberId = serde_json::from_str("\"106540352242922\"").unwrap();
        assert_eq!(number.as_str(), "106540352242922");
        assert!(serde_json::from_str::<Wamid>("\"\"").is_err());
        assert!(serde_json::from_str::<BusinessNumberId>("\"12a\"").is_err());
    }
}
