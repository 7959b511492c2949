//! The rows sfwa reads from Salesforce, as the REST API returns them, and their one conversion into
//! the domain ([`MessageRow::into_record`]): the pipeline never sees a wire row.
//!
//! Intake (the poll, the stream, the retry loop) queries [`MessageRow`]s and converts them right
//! where they arrive; dates are parsed here, once.

use serde::Deserialize;

use crate::domain::message::{parse_salesforce_datetime, QueuedRecord, RecordProblem};
use crate::domain::sf_id::{InvalidSfId, SfId};

use super::contract as field;

/// The fields sfwa reads from a `WhatsApp_Message__c`, as the REST API returns them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct MessageRow {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Direction__c", default)]
    pub direction: Option<String>,
    #[serde(rename = "Status__c", default)]
    pub status: Option<String>,
    #[serde(rename = "To_Phone__c", default)]
    pub to_phone: Option<String>,
    #[serde(rename = "To_User_Id__c", default)]
    pub to_user_id: Option<String>,
    #[serde(rename = "Business_Number_Id__c", default)]
    pub business_number_id: Option<String>,
    #[serde(rename = "Message_Type__c", default)]
    pub message_type: Option<String>,
    #[serde(rename = "Body__c", default)]
    pub body: Option<String>,
    #[serde(rename = "Template_Name__c", default)]
    pub template_name: Option<String>,
    #[serde(rename = "Template_Language__c", default)]
    pub template_language: Option<String>,
    #[serde(rename = "Template_Parameters__c", default)]
    pub template_parameters: Option<String>,
    #[serde(rename = "Media_URL__c", default)]
    pub media_url: Option<String>,
    #[serde(rename = "Media_Filename__c", default)]
    pub media_filename: Option<String>,
    #[serde(rename = "Media_File_Id__c", default)]
    pub media_file_id: Option<String>,
    #[serde(rename = "Scheduled_At__c", default)]
    pub scheduled_at: Option<String>,
    #[serde(rename = "CreatedDate", default)]
    pub created_date: Option<String>,
    #[serde(rename = "WhatsApp_Message_Id__c", default)]
    pub wamid: Option<String>,
    #[serde(rename = "Reengagement_Template__c", default)]
    pub reengagement_template: Option<String>,
    #[serde(rename = "Reengagement_Language__c", default)]
    pub reengagement_language: Option<String>,
    #[serde(rename = "Reengagement_Parameters__c", default)]
    pub reengagement_parameters: Option<String>,
    /// The record's Contact (`Contact__r`), as far as sfwa reads it; `null` without one.
    #[serde(rename = "Contact__r", default)]
    pub contact: Option<PersonRow>,
    /// The record's Lead (`Lead__r`).
    #[serde(rename = "Lead__r", default)]
    pub lead: Option<PersonRow>,
}

/// The fields of a message's Contact or Lead sfwa reads through the lookup.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PersonRow {
    #[serde(rename = "WhatsApp_Marketing_Opt_Out__c", default)]
    pub marketing_opt_out: Option<bool>,
}

impl MessageRow {
    /// The SELECT list that fills this struct.
    pub const FIELDS: &'static [&'static str] = &[
        field::ID,
        field::DIRECTION,
        field::STATUS,
        field::TO_PHONE,
        field::TO_USER_ID,
        field::BUSINESS_NUMBER_ID,
        field::MESSAGE_TYPE,
        field::BODY,
        field::TEMPLATE_NAME,
        field::TEMPLATE_LANGUAGE,
        field::TEMPLATE_PARAMETERS,
        field::MEDIA_URL,
        field::MEDIA_FILENAME,
        field::MEDIA_FILE_ID,
        field::SCHEDULED_AT,
        field::CREATED_DATE,
        field::WHATSAPP_MESSAGE_ID,
        field::REENGAGEMENT_TEMPLATE,
        field::REENGAGEMENT_LANGUAGE,
        field::REENGAGEMENT_PARAMETERS,
        field::CONTACT_MARKETING_OPT_OUT,
        field::LEAD_MARKETING_OPT_OUT,
    ];

    /// The row as the pipeline reads it. Only an Id that is not one fails: without it the record
    /// can be neither journaled nor written back. A field that does not parse (`Scheduled_At__c`,
    /// the wamid) is kept as the record's [`QueuedRecord::unreadable`] problem, so the record is
    /// claimed and then Failed naming the field, like any other bad record.
    pub fn into_record(self) -> Result<QueuedRecord, InvalidSfId> {
        let mut record = QueuedRecord::new(SfId::parse(&self.id)?);
        let scheduled_at = present(self.scheduled_at);
        record.scheduled_at = scheduled_at.as_deref().and_then(parse_salesforce_datetime);
        if let (Some(text), None) = (&scheduled_at, record.scheduled_at) {
            record.unreadable = Some(RecordProblem::unreadable_schedule(text));
        }
        // CreatedDate is Salesforce's own: only the latency metric reads it.
        record.created_at = self
            .created_date
            .as_deref()
            .and_then(parse_salesforce_datetime);
        if let Some(text) = present(self.wamid) {
            match text.parse() {
                Ok(wamid) => record.wamid = Some(wamid),
                Err(_) => record.unreadable = Some(RecordProblem::unreadable_wamid(&text)),
            }
        }
        record.direction = self.direction;
        record.status = self.status;
        record.to_phone = self.to_phone;
        record.to_user_id = self.to_user_id;
        record.business_number_id = self.business_number_id;
        record.message_type = self.message_type;
        record.body = self.body;
        record.template_name = self.template_name;
        record.template_language = self.template_language;
        record.template_parameters = self.template_parameters;
        record.media_url = self.media_url;
        record.media_filename = self.media_filename;
        record.media_file_id = present(self.media_file_id);
        record.reengagement_template = present(self.reengagement_template);
        record.reengagement_language = present(self.reengagement_language);
        record.reengagement_parameters = present(self.reengagement_parameters);
        record.marketing_opt_out = [self.contact, self.lead]
            .iter()
            .flatten()
            .any(|person| person.marketing_opt_out == Some(true));
        Ok(record)
    }
}

/// A text field's value, trimmed, when it holds one.
fn present(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::{ErrorCode, OutboundMessage};
    use chrono::DateTime;

    fn row() -> MessageRow {
        MessageRow {
            id: "a005g0000012345AAA".into(),
            to_phone: Some("+1 650 253 0000".into()),
            message_type: Some("Text".into()),
            body: Some("Hello".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_row_converts_once_with_its_id_dates_and_wamid_parsed() {
        let mut wire = row();
        wire.scheduled_at = Some("2026-11-24T15:00:00.000+0000".into());
        wire.created_date = Some("2026-11-24T14:59:00.000+0000".into());
        wire.wamid = Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQ=".into());

        let record = wire.into_record().unwrap();

        assert_eq!(record.id.as_str(), "a005g0000012345AAA");
        assert_eq!(
            record.scheduled_at,
            Some(
                DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
                    .unwrap()
                    .to_utc()
            )
        );
        assert_eq!(
            record.created_at,
            Some(
                DateTime::parse_from_rfc3339("2026-11-24T14:59:00Z")
                    .unwrap()
                    .to_utc()
            )
        );
        assert_eq!(
            record.wamid.unwrap().as_str(),
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQ="
        );
        assert_eq!(record.unreadable, None);
    }

    #[test]
    fn a_row_whose_schedule_is_no_date_converts_and_is_refused_naming_scheduled_at() {
        let mut wire = row();
        wire.scheduled_at = Some("next Tuesday".into());

        let record = wire.into_record().unwrap();
        let problem = OutboundMessage::from_record(&record, None).unwrap_err();

        assert_eq!(record.scheduled_at, None);
        assert_eq!(problem.code, ErrorCode::InvalidRecord);
        assert_eq!(problem.field, "Scheduled_At__c");
        assert_eq!(
            problem.message,
            "Scheduled At 'next Tuesday' is not a date and time."
        );
    }

    #[test]
    fn a_row_whose_wamid_is_malformed_converts_and_is_refused_naming_the_field() {
        let mut wire = row();
        wire.wamid = Some(format!("wamid.{}", "A".repeat(200)));

        let record = wire.into_record().unwrap();
        let problem = OutboundMessage::from_record(&record, None).unwrap_err();

        assert_eq!(record.wamid, None);
        assert_eq!(problem.code, ErrorCode::InvalidRecord);
        assert_eq!(problem.field, "WhatsApp_Message_Id__c");
        assert!(
            problem.message.contains("correct it"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn a_row_whose_id_is_not_a_salesforce_id_does_not_convert() {
        let mut wire = row();
        wire.id = "not-an-id".into();

        let converted = wire.into_record();

        assert_eq!(converted.unwrap_err(), InvalidSfId("not-an-id".into()));
    }

    #[test]
    fn a_rows_media_file_id_is_read_trimmed_and_a_blank_one_is_none() {
        let mut picked = row();
        picked.media_file_id = Some(" 068000000000001AAA ".into());
        let mut blank = row();
        blank.media_file_id = Some("  ".into());

        let picked = picked.into_record().unwrap();
        let blank = blank.into_record().unwrap();

        assert_eq!(picked.media_file_id.as_deref(), Some("068000000000001AAA"));
        assert_eq!(blank.media_file_id, None);
        assert!(MessageRow::FIELDS.contains(&"Media_File_Id__c"));
    }
}
