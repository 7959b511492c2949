//! `GET sobjects/{Type}/describe`: what the org's object looks like, so `sfwa doctor` can check the
//! package is deployed as sfwa expects (fields present, lengths, picklist values, external ids).

use reqwest::Method;
use serde::Deserialize;

use super::client::{parse, SalesforceClient};
use super::error::SalesforceError;

/// The parts of an object's describe sfwa uses.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDescribe {
    pub name: String,
    pub fields: Vec<FieldDescribe>,
}

impl ObjectDescribe {
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    pub name: String,
    /// `string`, `picklist`, `datetime`, `reference`, `textarea`, `phone`, …
    #[serde(rename = "type")]
    pub field_type: String,
    /// Maximum characters for text fields; 0 for others.
    #[serde(default)]
    pub length: u32,
    #[serde(default)]
    pub picklist_values: Vec<PicklistValue>,
    #[serde(default)]
    pub restricted_picklist: bool,
    #[serde(default)]
    pub external_id: bool,
    #[serde(default)]
    pub unique: bool,
    /// Target objects of a lookup (`["Contact"]`); empty for other types.
    #[serde(default)]
    pub reference_to: Vec<String>,
    /// Whether the user may set it on insert / update. Salesforce always sends both; a describe
    /// without them is read as "yes" rather than flagging every field.
    #[serde(default = "yes")]
    pub createable: bool,
    #[serde(default = "yes")]
    pub updateable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    pub value: String,
    #[serde(default)]
    pub active: bool,
}

/// sObject API names are letters, digits and underscores; anything else never reaches a URL path.
pub(crate) fn check_api_name(name: &str) -> Result<(), SalesforceError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(SalesforceError::Api {
            status: 400,
            error_code: "INVALID_TYPE".into(),
            message: format!("'{name}' is not an sObject or field API name (not sent)"),
        })
    }
}

impl SalesforceClient {
    /// The object's fields: name, type, length, picklist values, external id flag.
    #[tracing::instrument(skip_all, fields(object = %object))]
    pub async fn describe(&self, object: &str) -> Result<ObjectDescribe, SalesforceError> {
        check_api_name(object)?;
        let body = self
            .send(
                Method::GET,
                &format!("sobjects/{object}/describe"),
                &[],
                None,
            )
            .await?;
        parse(&body, "describe")
    }
}
