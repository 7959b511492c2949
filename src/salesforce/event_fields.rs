//! A platform event's payload as the stream keeps it: its string fields (`CreatedDate`,
//! `CreatedById`, `Message_Id__c`, …) in one buffer, read straight from the CometD answer.
//!
//! One `/meta/connect` after a pause carries every event published meanwhile: a 100,000-record
//! backlog is 100,000 events held until each is journaled. As a JSON tree each payload was about
//! 650 bytes in a dozen allocations; here it is its text and one span per field, in two.
//! Fields that are not strings (null, numbers, objects) are not kept: the daemon reads none.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The string fields of one event's `data.payload`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EventFields {
    /// Each field's name then its value, one after the other.
    text: Box<str>,
    /// Where each field's name ends and its value ends in `text`.
    ends: Box<[(u32, u32)]>,
}

impl EventFields {
    /// The value of the string field `name`; `None` if absent, null or not a string.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut start = 0;
        for &(name_end, value_end) in self.ends.iter() {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            if &self.text[start..name_end] == name {
                return Some(&self.text[name_end..value_end]);
            }
            start = value_end;
        }
        None
    }

    /// Only the fields named in `names` (in the payload's order).
    pub fn only(&self, names: &[&str]) -> EventFields {
        self.iter()
            .filter(|(name, _)| names.contains(name))
            .collect()
    }

    /// The fields, in the payload's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let field = (&self.text[start..name_end], &self.text[name_end..value_end]);
            start = value_end;
            field
        })
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for EventFields {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(fields: I) -> Self {
        let mut builder = Builder::default();
        for (name, value) in fields {
            builder.push(name, value);
        }
        builder.finish()
    }
}

impl fmt::Debug for EventFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[derive(Default)]
struct Builder {
    text: String,
    ends: Vec<(u32, u32)>,
}

impl Builder {
    fn push(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        let name_end = self.text.len() as u32;
        self.text.push_str(value);
        self.ends.push((name_end, self.text.len() as u32));
    }

    fn finish(self) -> EventFields {
        EventFields {
            text: self.text.into_boxed_str(),
            ends: self.ends.into_boxed_slice(),
        }
    }
}

impl<'de> Deserialize<'de> for EventFields {
    /// From a JSON object; anything else is refused.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = EventFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event payload (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventFields, A::Error> {
        let mut builder = Builder::default();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if let StringOrOther(Some(value)) = map.next_value()? {
                builder.push(&name, &value);
            }
        }
        Ok(builder.finish())
    }
}

/// A JSON value: `Some` of a string, `None` of anything else (read and passed over).
struct StringOrOther<'de>(Option<std::borrow::Cow<'de, str>>);

impl<'de> Deserialize<'de> for StringOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringOrOtherVisitor)
    }
}

struct StringOrOtherVisitor;

impl<'de> Visitor<'de> for StringOrOtherVisitor {
    type Value = StringOrOther<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(StringOrOther(Some(value.into())))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(StringOrOther(Some(value.to_owned().into())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(StringOrOther(Some(value.into())))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(StringOrOther(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(StringOrOther(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(StringOrOther(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(StringOrOther(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(StringOrOther(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(StringOrOther(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(StringOrOther(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(StringOrOther(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> EventFields {
        serde_json::from_str(json).expect("a payload")
    }

    #[test]
    fn string_fields_are_kept_in_order_and_others_are_passed_over() {
        let fields = read(
            r#"{"CreatedDate":"2026-11-26T20:00:00.000Z","Count__c":3,"Message_Id__c":"a01A",
                "Gone__c":null,"Nested__c":{"a":[1,"x"]},"Flag__c":true,"Escaped__c":"line\nnext \"q\""}"#,
        );

        assert_eq!(fields.get("Message_Id__c"), Some("a01A"));
        assert_eq!(fields.get("Escaped__c"), Some("line\nnext \"q\""));
        assert_eq!(fields.get("Count__c"), None);
        assert_eq!(fields.get("Gone__c"), None);
        assert_eq!(fields.get("Missing__c"), None);
        let names: Vec<&str> = fields.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["CreatedDate", "Message_Id__c", "Escaped__c"]);
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_refused() {
        assert!(serde_json::from_str::<EventFields>(r#""a01A""#).is_err());
        assert!(serde_json::from_str::<EventFields>("[1]").is_err());
    }

    #[test]
    fn a_field_named_like_the_start_of_another_is_not_confused_with_it() {
        let fields: EventFields = [("Message_Id", "x"), ("Message_Id__c", "a01A")]
            .into_iter()
            .collect();

        assert_eq!(fields.get("Message_Id__c"), Some("a01A"));
        assert_eq!(fields.get("Message_Id"), Some("x"));
        assert_eq!(fields.get("Message"), None);
    }
}
