//! The field contract with the package: every field of `WhatsApp_Message__c` sfwa reads or writes,
//! with the type, length and picklist values it needs — said once, from `shared/DESIGN.md`'s
//! Salesforce contract and the package in `salesforce/`.
//!
//! Three readers keep each other honest: the write-back builds its field maps with these names
//! ([`crate::pipeline::record_update`]), `sfwa doctor` compares a live org's describe with
//! [`FIELDS`] (and a unit test there checks that what the code writes is what [`FIELDS`] says it
//! writes), and `tests/api/package_contract.rs` compares the package's XML with [`FIELDS`].

use crate::domain::status::MessageStatus;

/// The message object (the default of `salesforce.message_object`).
pub const OBJECT: &str = "WhatsApp_Message__c";

pub const ID: &str = "Id";
pub const CREATED_DATE: &str = "CreatedDate";
pub const OWNER_ID: &str = "OwnerId";
pub const DIRECTION: &str = "Direction__c";
pub const STATUS: &str = "Status__c";
pub const TO_PHONE: &str = "To_Phone__c";
/// The recipient's business-scoped user id (BSUID), read when `To_Phone__c` is empty.
pub const TO_USER_ID: &str = "To_User_Id__c";
pub const FROM_PHONE: &str = "From_Phone__c";
pub const BUSINESS_NUMBER_ID: &str = "Business_Number_Id__c";
pub const MESSAGE_TYPE: &str = "Message_Type__c";
pub const BODY: &str = "Body__c";
pub const TEMPLATE_NAME: &str = "Template_Name__c";
pub const TEMPLATE_LANGUAGE: &str = "Template_Language__c";
pub const TEMPLATE_PARAMETERS: &str = "Template_Parameters__c";
pub const MEDIA_URL: &str = "Media_URL__c";
pub const MEDIA_FILENAME: &str = "Media_Filename__c";
/// A Salesforce File to send (ContentVersion 068… or ContentDocument 069…), instead of a link.
pub const MEDIA_FILE_ID: &str = "Media_File_Id__c";
pub const SCHEDULED_AT: &str = "Scheduled_At__c";
/// Meta's wamid: an External ID, unique — inbound records and receipts are upserted on it.
pub const WHATSAPP_MESSAGE_ID: &str = "WhatsApp_Message_Id__c";
pub const SENT_AT: &str = "Sent_At__c";
pub const DELIVERED_AT: &str = "Delivered_At__c";
pub const READ_AT: &str = "Read_At__c";
pub const FAILED_AT: &str = "Failed_At__c";
pub const RECEIVED_AT: &str = "Received_At__c";
pub const ERROR_CODE: &str = "Error_Code__c";
pub const ERROR_MESSAGE: &str = "Error_Message__c";
pub const WINDOW_EXPIRES_AT: &str = "Window_Expires_At__c";
/// Re-engagement (`pipeline::reengage`): the template sfwa sends first when a free-form message
/// meets a closed window, its language and parameters (JSON as `Template_Parameters__c`).
pub const REENGAGEMENT_TEMPLATE: &str = "Reengagement_Template__c";
pub const REENGAGEMENT_LANGUAGE: &str = "Reengagement_Language__c";
pub const REENGAGEMENT_PARAMETERS: &str = "Reengagement_Parameters__c";
/// Lookup to the re-engagement template's own message record (sfwa creates it).
pub const REENGAGEMENT_MESSAGE: &str = "Reengagement_Message__c";
/// While `Waiting for Reply`: when sfwa stops waiting.
pub const WAITING_EXPIRES_AT: &str = "Waiting_Expires_At__c";
pub const CONTACT: &str = "Contact__c";
pub const LEAD: &str = "Lead__c";
pub const CASE: &str = "Case__c";
/// Inbound: the Account of the linked Contact, else of the linked Case (`pipeline::inbound_links`,
/// `pipeline::inbound_owner`).
pub const ACCOUNT: &str = "Account__c";
/// Inbound: the customer's business-scoped user id (BSUID), their username, the group.
pub const FROM_USER_ID: &str = "From_User_Id__c";
pub const FROM_USERNAME: &str = "From_Username__c";
pub const GROUP_ID: &str = "Group_Id__c";
/// Inbound: the click-to-WhatsApp ad the customer came from.
pub const REFERRAL_SOURCE_TYPE: &str = "Referral_Source_Type__c";
pub const REFERRAL_SOURCE_URL: &str = "Referral_Source_URL__c";
pub const REFERRAL_HEADLINE: &str = "Referral_Headline__c";
pub const REFERRAL_CLICK_ID: &str = "Referral_Click_Id__c";
/// Outbound: what Meta bills for the message, from its status webhooks' `pricing`.
pub const PRICING_CATEGORY: &str = "Pricing_Category__c";
pub const PRICING_TYPE: &str = "Pricing_Type__c";
pub const PRICING_MODEL: &str = "Pricing_Model__c";
pub const PRICING_BILLABLE: &str = "Pricing_Billable__c";
/// The length of the pricing text fields.
pub const PRICING_CHARS: usize = 40;

/// On Contact and Lead (not the message object): the customer's business-scoped WhatsApp user id
/// (BSUID), read to link inbound records and written once a record links by phone
/// ([`crate::pipeline::inbound_links`]). Text 140, External ID (indexed), not unique.
pub const WHATSAPP_USER_ID: &str = "WhatsApp_User_Id__c";
/// On Contact and Lead: the person takes no WhatsApp marketing templates (Checkbox). Read through
/// the message's lookups in the query sfwa already makes ([`CONTACT_MARKETING_OPT_OUT`],
/// [`LEAD_MARKETING_OPT_OUT`]; `pipeline::consent`).
pub const MARKETING_OPT_OUT: &str = "WhatsApp_Marketing_Opt_Out__c";
/// [`MARKETING_OPT_OUT`] of the message's Contact, as a relationship path of its SELECT.
pub const CONTACT_MARKETING_OPT_OUT: &str = "Contact__r.WhatsApp_Marketing_Opt_Out__c";
/// [`MARKETING_OPT_OUT`] of the message's Lead, as a relationship path of its SELECT.
pub const LEAD_MARKETING_OPT_OUT: &str = "Lead__r.WhatsApp_Marketing_Opt_Out__c";
/// The objects that carry [`WHATSAPP_USER_ID`].
pub const USER_ID_OBJECTS: [&str; 2] = ["Contact", "Lead"];
/// The length [`WHATSAPP_USER_ID`] needs: a country code, a dot and up to 128 characters, and the
/// parent form `US.ENT.…`.
pub const USER_ID_LENGTH: usize = 140;

/// What kind of field sfwa needs; [`Kind::describe_types`] says which describe `type`s satisfy it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Id,
    /// Text: at most 255 characters in Salesforce.
    Text,
    /// (Long) Text Area: anything longer than 255 characters.
    LongText,
    Phone,
    Url,
    Picklist,
    DateTime,
    /// A lookup.
    Reference,
    /// A checkbox.
    Checkbox,
}

impl Kind {
    /// The describe `type` values that work (a phone or URL kept in a plain Text field works too).
    pub fn describe_types(self) -> &'static [&'static str] {
        match self {
            Kind::Id => &["id"],
            Kind::Text => &["string"],
            Kind::LongText => &["textarea"],
            Kind::Phone => &["phone", "string"],
            Kind::Url => &["url", "string"],
            Kind::Picklist => &["picklist"],
            Kind::DateTime => &["datetime"],
            Kind::Reference => &["reference"],
            Kind::Checkbox => &["boolean"],
        }
    }
}

/// One field of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// The shortest length that holds what sfwa writes (0 = no length applies).
    pub min_length: usize,
    /// Selected by intake (`rows::MessageRow::FIELDS`).
    pub read: bool,
    /// Written by the write-back, inbound records, links or owners.
    pub written: bool,
}

const fn field(name: &'static str, kind: Kind, min_length: usize, use_: Use) -> Field {
    Field {
        name,
        kind,
        min_length,
        read: matches!(use_, Use::Read | Use::Both),
        written: matches!(use_, Use::Written | Use::Both),
    }
}

enum Use {
    Read,
    Written,
    Both,
}

/// Every field of [`OBJECT`] sfwa reads or writes.
pub const FIELDS: &[Field] = &[
    field(ID, Kind::Id, 18, Use::Read),
    field(CREATED_DATE, Kind::DateTime, 0, Use::Read),
    field(DIRECTION, Kind::Picklist, 0, Use::Both),
    field(STATUS, Kind::Picklist, 0, Use::Both),
    field(TO_PHONE, Kind::Phone, 0, Use::Both),
    field(TO_USER_ID, Kind::Text, 140, Use::Both),
    field(BUSINESS_NUMBER_ID, Kind::Text, 32, Use::Both),
    field(MESSAGE_TYPE, Kind::Picklist, 0, Use::Both),
    field(BODY, Kind::LongText, 4096, Use::Both),
    field(TEMPLATE_NAME, Kind::Text, 512, Use::Both),
    field(TEMPLATE_LANGUAGE, Kind::Text, 16, Use::Both),
    field(TEMPLATE_PARAMETERS, Kind::LongText, 32768, Use::Both),
    field(MEDIA_URL, Kind::Url, 0, Use::Read),
    field(MEDIA_FILENAME, Kind::Text, 255, Use::Both),
    field(MEDIA_FILE_ID, Kind::Text, 18, Use::Read),
    field(SCHEDULED_AT, Kind::DateTime, 0, Use::Read),
    field(WHATSAPP_MESSAGE_ID, Kind::Text, 128, Use::Both),
    field(SENT_AT, Kind::DateTime, 0, Use::Written),
    field(DELIVERED_AT, Kind::DateTime, 0, Use::Written),
    field(READ_AT, Kind::DateTime, 0, Use::Written),
    field(FAILED_AT, Kind::DateTime, 0, Use::Written),
    field(ERROR_CODE, Kind::Text, 32, Use::Written),
    field(ERROR_MESSAGE, Kind::LongText, 1024, Use::Written),
    field(WINDOW_EXPIRES_AT, Kind::DateTime, 0, Use::Written),
    // Re-engagement: the template fields are also written on the re-engagement record sfwa
    // creates (see `pipeline::reengage`).
    field(REENGAGEMENT_TEMPLATE, Kind::Text, 512, Use::Read),
    field(REENGAGEMENT_LANGUAGE, Kind::Text, 16, Use::Read),
    field(REENGAGEMENT_PARAMETERS, Kind::LongText, 32768, Use::Read),
    field(REENGAGEMENT_MESSAGE, Kind::Reference, 18, Use::Written),
    field(WAITING_EXPIRES_AT, Kind::DateTime, 0, Use::Written),
    field(FROM_PHONE, Kind::Phone, 0, Use::Written),
    field(RECEIVED_AT, Kind::DateTime, 0, Use::Written),
    field(CONTACT, Kind::Reference, 18, Use::Written),
    field(LEAD, Kind::Reference, 18, Use::Written),
    field(CASE, Kind::Reference, 18, Use::Written),
    field(ACCOUNT, Kind::Reference, 18, Use::Written),
    field(FROM_USER_ID, Kind::Text, 140, Use::Written),
    field(FROM_USERNAME, Kind::Text, 100, Use::Written),
    field(GROUP_ID, Kind::Text, 100, Use::Written),
    field(REFERRAL_SOURCE_TYPE, Kind::Text, 20, Use::Written),
    field(REFERRAL_SOURCE_URL, Kind::Url, 0, Use::Written),
    field(REFERRAL_HEADLINE, Kind::Text, 255, Use::Written),
    field(REFERRAL_CLICK_ID, Kind::Text, 255, Use::Written),
    field(PRICING_CATEGORY, Kind::Text, PRICING_CHARS, Use::Written),
    field(PRICING_TYPE, Kind::Text, PRICING_CHARS, Use::Written),
    field(PRICING_MODEL, Kind::Text, PRICING_CHARS, Use::Written),
    field(PRICING_BILLABLE, Kind::Checkbox, 0, Use::Written),
    // A user or the inbound queue (see `pipeline::inbound_owner`).
    field(OWNER_ID, Kind::Reference, 18, Use::Written),
];

/// The contract for `name`, if sfwa uses that field.
pub fn field_named(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The names of the fields sfwa writes.
pub fn written() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().filter(|f| f.written).map(|f| f.name)
}

pub const DIRECTIONS: &[&str] = &["Outbound", "Inbound"];
pub const MESSAGE_TYPES: &[&str] = &[
    "Text",
    "Template",
    "Image",
    "Document",
    "Video",
    "Audio",
    "Request Contact Info",
];
/// Message types only inbound records carry (`pipeline::inbound_records`): sfwa writes them, a
/// rep cannot send them.
pub const INBOUND_MESSAGE_TYPES: &[&str] =
    &["Location", "Contacts", "Order", "Flow Reply", "System"];

/// The picklist values sfwa reads or writes, per picklist field (Status__c: every status).
pub fn picklists() -> [(&'static str, Vec<&'static str>); 3] {
    let statuses = MessageStatus::ALL.iter().map(|s| s.as_salesforce());
    [
        (STATUS, statuses.collect()),
        (DIRECTION, DIRECTIONS.to_vec()),
        (
            MESSAGE_TYPE,
            [MESSAGE_TYPES, INBOUND_MESSAGE_TYPES].concat(),
        ),
    ]
}

/// Lookups and the object each must point at (inbound records are linked by phone match).
pub const LOOKUPS: [(&str, &str); 3] = [(CONTACT, "Contact"), (LEAD, "Lead"), (ACCOUNT, "Account")];

/// The number lease object (`pipeline::lease`): one record per business number and generation.
pub const LEASE_OBJECT: &str = "WhatsApp_Number_Lease__c";
/// Unique External ID `<number>/<generation>`: creating an existing one is `DUPLICATE_VALUE`,
/// which is what lets exactly one instance take a number.
pub const LEASE_KEY: &str = "Lease_Key__c";
/// Every field of [`LEASE_OBJECT`] sfwa reads and writes: (name, describe type, shortest length
/// that holds what sfwa writes).
pub const LEASE_FIELDS: &[(&str, &str, usize)] = &[
    (LEASE_KEY, "string", 60),
    ("Phone_Number_Id__c", "string", 32),
    ("Generation__c", "double", 0),
    ("Holder__c", "string", 120),
    ("Expires_At__c", "datetime", 0),
    ("Released__c", "boolean", 0),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::rows::MessageRow;

    #[test]
    fn the_fields_intake_selects_are_the_ones_the_contract_marks_read() {
        let read: Vec<&str> = FIELDS.iter().filter(|f| f.read).map(|f| f.name).collect();

        // Paths through a lookup (`Contact__r.…`) read another object's field.
        let mut selected: Vec<&str> = MessageRow::FIELDS
            .iter()
            .copied()
            .filter(|f| !f.contains('.'))
            .collect();
        let mut contract = read.clone();
        selected.sort_unstable();
        contract.sort_unstable();

        assert_eq!(selected, contract);
    }

    #[test]
    fn the_paths_intake_selects_through_a_lookup_follow_the_contracts_lookups() {
        let paths: Vec<&str> = MessageRow::FIELDS
            .iter()
            .copied()
            .filter(|f| f.contains('.'))
            .collect();

        assert_eq!(paths, [CONTACT_MARKETING_OPT_OUT, LEAD_MARKETING_OPT_OUT]);
        for path in paths {
            let (relationship, field) = path.split_once('.').unwrap();
            let lookup = relationship.replace("__r", "__c");
            assert!(LOOKUPS.iter().any(|(l, _)| *l == lookup), "{path}");
            assert_eq!(field, MARKETING_OPT_OUT);
        }
    }

    #[test]
    fn no_field_is_listed_twice() {
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len());
    }
}
