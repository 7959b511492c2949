//! The Salesforce package (`salesforce/force-app/.../objects`) against what the daemon needs:
//! every field sfwa reads (`MessageRecord::FIELDS`) or writes exists with a compatible type and
//! length, and every `MessageStatus` is a value of the Status__c picklist. Runs on the metadata
//! compiled into the binary, and on an edited copy to show that a broken package is caught.

use std::path::{Path, PathBuf};

use sfwa::domain::message::MessageRecord;
use sfwa::domain::status::MessageStatus;
use sfwa::sim::salesforce::schema::{FieldType, Schema};

const OBJECT: &str = "WhatsApp_Message__c";
const EVENT: &str = "WhatsApp_Outbound__e";

/// What sfwa needs of a field: one of these types and at least this length (0 = no length).
struct Need {
    field: &'static str,
    types: &'static [FieldType],
    min_length: usize,
}

const fn need(field: &'static str, types: &'static [FieldType], min_length: usize) -> Need {
    Need {
        field,
        types,
        min_length,
    }
}

const TEXT: &[FieldType] = &[FieldType::String];
/// A Text field cannot exceed 255 characters, so anything longer is a (Long) Text Area.
const LONG_TEXT: &[FieldType] = &[FieldType::TextArea];
const DATETIME: &[FieldType] = &[FieldType::DateTime];
const PICKLIST: &[FieldType] = &[FieldType::Picklist];
const PHONE: &[FieldType] = &[FieldType::Phone, FieldType::String];
const URL: &[FieldType] = &[FieldType::Url, FieldType::String];
const ID: &[FieldType] = &[FieldType::Id];
const REFERENCE: &[FieldType] = &[FieldType::Reference];

/// Every field of WhatsApp_Message__c that sfwa reads or writes.
const NEEDS: &[Need] = &[
    // read by intake (MessageRecord::FIELDS)
    need("Id", ID, 18),
    need("CreatedDate", DATETIME, 0),
    need("Direction__c", PICKLIST, 0),
    need("Status__c", PICKLIST, 0),
    need("To_Phone__c", PHONE, 0),
    need("Business_Number_Id__c", TEXT, 32),
    need("Message_Type__c", PICKLIST, 0),
    need("Body__c", LONG_TEXT, 4096),
    need("Template_Name__c", TEXT, 512),
    need("Template_Language__c", TEXT, 16),
    need("Template_Parameters__c", LONG_TEXT, 32768),
    need("Media_URL__c", URL, 0),
    need("Media_Filename__c", TEXT, 255),
    need("Scheduled_At__c", DATETIME, 0),
    // written by write-back
    need("WhatsApp_Message_Id__c", TEXT, 128),
    need("Sent_At__c", DATETIME, 0),
    need("Delivered_At__c", DATETIME, 0),
    need("Read_At__c", DATETIME, 0),
    need("Failed_At__c", DATETIME, 0),
    need("Error_Code__c", TEXT, 32),
    need("Error_Message__c", LONG_TEXT, 1024),
    need("Window_Expires_At__c", DATETIME, 0),
    // written on inbound records (upserted on WhatsApp_Message_Id__c)
    need("From_Phone__c", PHONE, 0),
    need("Received_At__c", DATETIME, 0),
    need("Contact__c", REFERENCE, 18),
    need("Lead__c", REFERENCE, 18),
];

const MESSAGE_TYPES: &[&str] = &["Text", "Template", "Image", "Document", "Video", "Audio"];
const DIRECTIONS: &[&str] = &["Outbound", "Inbound"];

/// Everything in `schema` that breaks the daemon's contract, one line per problem (empty = fine).
fn contract_problems(schema: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(object) = schema.object(OBJECT) else {
        return vec![format!("object {OBJECT} is missing")];
    };
    for read in MessageRecord::FIELDS {
        if !NEEDS.iter().any(|n| n.field.eq_ignore_ascii_case(read)) {
            problems.push(format!(
                "{read}: sfwa reads it but this test has no contract for it (add it to NEEDS)"
            ));
        }
    }
    for need in NEEDS {
        let Some(field) = object.field(need.field) else {
            problems.push(format!("{OBJECT}.{}: missing", need.field));
            continue;
        };
        if !need.types.contains(&field.field_type) {
            problems.push(format!(
                "{OBJECT}.{}: type {} where sfwa needs {}",
                need.field,
                field.field_type.describe_name(),
                need.types
                    .iter()
                    .map(|t| t.describe_name())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        if field.length < need.min_length {
            problems.push(format!(
                "{OBJECT}.{}: length {} where sfwa writes up to {}",
                need.field, field.length, need.min_length
            ));
        }
    }
    let picklist = |name: &str, values: &[&str], problems: &mut Vec<String>| {
        if let Some(field) = object.field(name) {
            for value in values {
                if !field.picklist_values.iter().any(|v| v == value) {
                    problems.push(format!("{OBJECT}.{name}: picklist value {value} missing"));
                }
            }
        }
    };
    let statuses: Vec<&str> = MessageStatus::ALL
        .iter()
        .map(|s| s.as_salesforce())
        .collect();
    picklist("Status__c", &statuses, &mut problems);
    picklist("Direction__c", DIRECTIONS, &mut problems);
    picklist("Message_Type__c", MESSAGE_TYPES, &mut problems);
    if let Some(status) = object.field("Status__c") {
        if status.default_value.as_deref() != Some("Queued") {
            problems.push(format!(
                "{OBJECT}.Status__c: default {:?} where new records must be Queued",
                status.default_value
            ));
        }
    }
    if let Some(wamid) = object.field("WhatsApp_Message_Id__c") {
        if !(wamid.external_id && wamid.unique) {
            problems.push(format!(
                "{OBJECT}.WhatsApp_Message_Id__c: must be an external id and unique (receipts upsert on it)"
            ));
        }
    }
    for (lookup, target) in [("Contact__c", "Contact"), ("Lead__c", "Lead")] {
        if let Some(field) = object.field(lookup) {
            if field.reference_to.as_deref() != Some(target) {
                problems.push(format!(
                    "{OBJECT}.{lookup}: looks up {:?} where inbound records link a {target}",
                    field.reference_to
                ));
            }
        }
    }
    match schema.object(EVENT).and_then(|e| e.field("Message_Id__c")) {
        None => problems.push(format!("{EVENT}.Message_Id__c: missing")),
        Some(field) if field.length < 18 => problems.push(format!(
            "{EVENT}.Message_Id__c: length {} where record ids are 18",
            field.length
        )),
        Some(_) => {}
    }
    problems
}

fn package_objects() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("salesforce/force-app/main/default/objects")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the package's objects folder to edit.
pub fn objects_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    copy_dir(&package_objects(), &objects);
    (dir, objects)
}

pub fn field_file(objects: &Path, field: &str) -> PathBuf {
    objects
        .join(OBJECT)
        .join("fields")
        .join(format!("{field}.field-meta.xml"))
}

#[test]
fn the_package_meets_the_daemons_contract() {
    let problems = contract_problems(&Schema::embedded().unwrap());
    assert!(
        problems.is_empty(),
        "package contract broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_package_on_disk_is_the_one_compiled_in() {
    let problems = contract_problems(&Schema::from_dir(&package_objects()).unwrap());
    assert!(
        problems.is_empty(),
        "package contract broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_removed_field_is_reported() {
    let (_dir, objects) = objects_copy();
    std::fs::remove_file(field_file(&objects, "Error_Message__c")).unwrap();
    let problems = contract_problems(&Schema::from_dir(&objects).unwrap());
    assert_eq!(
        problems,
        vec![format!("{OBJECT}.Error_Message__c: missing")]
    );
}

#[test]
fn a_shortened_field_and_a_missing_status_are_reported() {
    let (_dir, objects) = objects_copy();
    let code = field_file(&objects, "Error_Code__c");
    let xml = std::fs::read_to_string(&code).unwrap();
    std::fs::write(
        &code,
        xml.replace("<length>32</length>", "<length>16</length>"),
    )
    .unwrap();
    let status = field_file(&objects, "Status__c");
    let xml = std::fs::read_to_string(&status).unwrap();
    std::fs::write(
        &status,
        xml.replace(
            "<fullName>Received</fullName>",
            "<fullName>Inbound</fullName>",
        ),
    )
    .unwrap();
    let problems = contract_problems(&Schema::from_dir(&objects).unwrap());
    assert_eq!(
        problems,
        vec![
            format!("{OBJECT}.Error_Code__c: length 16 where sfwa writes up to 32"),
            format!("{OBJECT}.Status__c: picklist value Received missing"),
        ]
    );
}
