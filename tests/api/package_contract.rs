//! The Salesforce package (`salesforce/force-app/...`) against what the daemon and a real org need:
//! every field of the daemon's field contract (`sfwa::salesforce::contract`: what it reads and
//! writes) exists with a compatible type and length, with the picklist values it uses (on the
//! metadata compiled into the binary); and, read from the package files, the publish Flow (triggers, fault paths,
//! scheduled path), the Apex test that lets it deploy active, Private sharing and the permission
//! sets, the External Client App, and one API version. Each check also runs on an edited copy to
//! show that a broken package is caught.

use std::path::{Path, PathBuf};

use sfwa::salesforce::contract::{self, OBJECT};
use sfwa::salesforce::rows::MessageRow;
use sfwa_sim::salesforce::schema::{FieldType, Schema};

const EVENT: &str = "WhatsApp_Outbound__e";

/// The object and field a select-list path through one of the contract's lookups reads.
fn related(path: &str) -> Option<(&'static str, &str)> {
    let (relationship, field) = path.split_once('.')?;
    let lookup = relationship.replace("__r", "__c");
    contract::LOOKUPS
        .iter()
        .find(|(name, _)| *name == lookup)
        .map(|(_, object)| (*object, field))
}

/// Everything in `schema` that breaks the daemon's contract ([`contract::FIELDS`]), one line per
/// problem (empty = fine).
fn contract_problems(schema: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(object) = schema.object(OBJECT) else {
        return vec![format!("object {OBJECT} is missing")];
    };
    for read in MessageRow::FIELDS {
        // A field of the record a lookup points to (`Contact__r.WhatsApp_Marketing_Opt_Out__c`).
        if let Some((object, field)) = related(read) {
            if schema.object(object).and_then(|o| o.field(field)).is_none() {
                problems.push(format!(
                    "{object}.{field}: missing (sfwa reads it as {read})"
                ));
            }
            continue;
        }
        if contract::field_named(read).is_none() {
            problems.push(format!(
                "{read}: sfwa reads it but the contract has no entry for it (add it to contract::FIELDS)"
            ));
        }
    }
    for need in contract::FIELDS {
        let Some(field) = object.field(need.name) else {
            problems.push(format!("{OBJECT}.{}: missing", need.name));
            continue;
        };
        let types = need.kind.describe_types();
        if !types.contains(&field.field_type.describe_name()) {
            problems.push(format!(
                "{OBJECT}.{}: type {} where sfwa needs {}",
                need.name,
                field.field_type.describe_name(),
                types.join(" or ")
            ));
        }
        if field.length < need.min_length {
            problems.push(format!(
                "{OBJECT}.{}: length {} where sfwa writes up to {}",
                need.name, field.length, need.min_length
            ));
        }
    }
    for (name, values) in contract::picklists() {
        if let Some(field) = object.field(name) {
            for value in values {
                if !field.picklist_values.iter().any(|v| v == value) {
                    problems.push(format!("{OBJECT}.{name}: picklist value {value} missing"));
                }
            }
        }
    }
    if let Some(status) = object.field(contract::STATUS) {
        if status.default_value.as_deref() != Some("Queued") {
            problems.push(format!(
                "{OBJECT}.Status__c: default {:?} where new records must be Queued",
                status.default_value
            ));
        }
    }
    if let Some(wamid) = object.field(contract::WHATSAPP_MESSAGE_ID) {
        if !(wamid.external_id && wamid.unique) {
            problems.push(format!(
                "{OBJECT}.WhatsApp_Message_Id__c: must be an external id and unique (receipts upsert on it)"
            ));
        }
    }
    for (lookup, target) in contract::LOOKUPS {
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
    // Beside the record Id, the event carries the record's business number so that a subscriber
    // can keep the events of the numbers it serves without reading the record.
    match schema.object(EVENT).and_then(|e| e.field("Business_Number_Id__c")) {
        None => problems.push(format!("{EVENT}.Business_Number_Id__c: missing")),
        Some(field) if field.field_type != FieldType::String || field.length < 32 => {
            problems.push(format!(
                "{EVENT}.Business_Number_Id__c: {} ({}) where it must be Text(32) like the record's",
                field.field_type.describe_name(),
                field.length
            ))
        }
        Some(_) => {}
    }
    problems.extend(lease_problems(schema));
    problems
}

/// The number lease object (`pipeline::lease`): its fields, and a unique External ID key.
fn lease_problems(schema: &Schema) -> Vec<String> {
    let lease = contract::LEASE_OBJECT;
    let Some(object) = schema.object(lease) else {
        return vec![format!("object {lease} is missing")];
    };
    let mut problems = Vec::new();
    for (name, describe_type, min_length) in contract::LEASE_FIELDS {
        match object.field(name) {
            None => problems.push(format!("{lease}.{name}: missing")),
            Some(field)
                if field.field_type.describe_name() != *describe_type
                    || field.length < *min_length =>
            {
                problems.push(format!(
                    "{lease}.{name}: {} ({}) where sfwa needs {describe_type} ({min_length})",
                    field.field_type.describe_name(),
                    field.length
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(key) = object.field(contract::LEASE_KEY) {
        if !(key.external_id && key.unique) {
            problems.push(format!(
                "{lease}.{}: must be an external id and unique (of two instances, one wins)",
                contract::LEASE_KEY
            ));
        }
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
fn a_lease_key_that_is_not_unique_is_reported() {
    let (_dir, objects) = objects_copy();
    let key = objects.join("WhatsApp_Number_Lease__c/fields/Lease_Key__c.field-meta.xml");
    let xml = std::fs::read_to_string(&key).unwrap();
    std::fs::write(
        &key,
        xml.replace("<unique>true</unique>", "<unique>false</unique>"),
    )
    .unwrap();

    let problems = contract_problems(&Schema::from_dir(&objects).unwrap());

    assert_eq!(
        problems,
        vec![
            "WhatsApp_Number_Lease__c.Lease_Key__c: must be an external id and unique (of two instances, one wins)"
                .to_string()
        ]
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

// ------------------------------------------------------------------------------------------------
// The rest of the package, as a real org needs it (issue 11): the publish Flow, the Apex test that
// lets the Flows deploy active, the access model, the External Client App and one API version.
// Each check reads a package source folder (`force-app/main/default`) and returns one line per
// problem (empty = fine); it runs on the package itself and on edited copies, to show that a broken
// package is caught. (The validation rules are checked with the org simulator that models them.)
// ------------------------------------------------------------------------------------------------

const PUBLISH_FLOW: &str = "WhatsApp_Publish_Outbound";
const REMINDER_FLOW: &str = "WhatsApp_Send_Appointment_Reminder";
const APEX_TEST: &str = "WhatsAppPublishOutboundTest";
const INTEGRATION_PERMSET: &str = "WhatsApp_Integration";
const REP_PERMSET: &str = "WhatsApp_Messaging_User";
const WRITES_PERMISSION: &str = "WhatsApp_Integration_Writes";
const INBOUND_QUEUE: &str = "WhatsApp_Inbound";

/// Fields only sfwa fills in: a rep reads them and never edits them.
const DELIVERY_FIELDS: &[&str] = &[
    "Direction__c",
    "WhatsApp_Message_Id__c",
    "Sent_At__c",
    "Delivered_At__c",
    "Read_At__c",
    "Failed_At__c",
    "Error_Code__c",
    "Error_Message__c",
    "Window_Expires_At__c",
    "From_Phone__c",
    "Received_At__c",
];

/// Flow elements that can fail at run time and so need a fault path.
const FAULTABLE: &[&str] = &[
    "recordCreates",
    "recordUpdates",
    "recordDeletes",
    "recordLookups",
    "actionCalls",
];

fn package_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("salesforce/force-app/main/default")
}

fn sfdx_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("salesforce/sfdx-project.json")
}

/// A copy of the package source folder to edit.
fn source_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("default");
    copy_dir(&package_source(), &source);
    (dir, source)
}

/// Replaces `from` by `to` in a file of an edited copy; `from` must be there, so a test cannot pass
/// because the file changed shape.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}",
        file.display()
    );
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

fn children<'a, 'i: 'a>(
    node: roxmltree::Node<'a, 'i>,
    tag: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children().filter(move |c| c.has_tag_name(tag))
}

fn text<'a>(node: roxmltree::Node<'a, '_>, tag: &str) -> Option<&'a str> {
    child(node, tag).and_then(|c| c.text()).map(str::trim)
}

/// The text at a path of child tags, e.g. `["value", "stringValue"]`.
fn text_at<'a>(node: roxmltree::Node<'a, '_>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut node = node;
    for tag in parents {
        node = child(node, tag)?;
    }
    text(node, last)
}

/// Reads a package file as text; a missing or unreadable file is a problem.
fn read(source: &Path, relative: &str, problems: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(source.join(relative)) {
        Ok(text) => Some(text),
        Err(e) => {
            problems.push(format!("{relative}: cannot be read ({e})"));
            None
        }
    }
}

/// Parses package XML; malformed XML is a problem.
fn parse<'i>(
    relative: &str,
    xml: &'i str,
    problems: &mut Vec<String>,
) -> Option<roxmltree::Document<'i>> {
    match roxmltree::Document::parse(xml) {
        Ok(doc) => Some(doc),
        Err(e) => {
            problems.push(format!("{relative}: not well-formed XML ({e})"));
            None
        }
    }
}

fn expect(problems: &mut Vec<String>, what: &str, found: Option<&str>, wanted: &str) {
    if found != Some(wanted) {
        problems.push(format!("{what}: {found:?} where it must be {wanted:?}"));
    }
}

/// The files of a package folder with a suffix, by name.
fn files_ending(source: &Path, folder: &str, suffix: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(source.join(folder))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(suffix)
                .map(|stem| (stem.to_string(), entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// Element names reachable from `targets` by normal (not fault) connectors.
fn reachable<'a>(flow: roxmltree::Node<'a, '_>, targets: Vec<&'a str>) -> Vec<&'a str> {
    let by_name = |name: &str| {
        flow.children()
            .find(|e| e.is_element() && text(*e, "name") == Some(name))
    };
    let mut seen: Vec<&'a str> = Vec::new();
    let mut todo = targets;
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let Some(element) = by_name(name) else {
            continue;
        };
        let rules = children(element, "rules");
        let connectors = children(element, "connector")
            .chain(children(element, "defaultConnector"))
            .chain(rules.filter_map(|rule| child(rule, "connector")));
        todo.extend(connectors.filter_map(|c| text(c, "targetReference")));
    }
    seen
}

/// The publish Flow: when it runs, what it publishes, now or at Scheduled_At__c.
fn publish_flow_problems(source: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let relative = format!("flows/{PUBLISH_FLOW}.flow-meta.xml");
    let Some(xml) = read(source, &relative, &mut problems) else {
        return problems;
    };
    let Some(doc) = parse(&relative, &xml, &mut problems) else {
        return problems;
    };
    let flow = doc.root_element();
    let p = PUBLISH_FLOW;
    expect(
        &mut problems,
        &format!("{p} status"),
        text(flow, "status"),
        "Active",
    );
    let Some(start) = child(flow, "start") else {
        problems.push(format!("{p}: no <start>"));
        return problems;
    };
    expect(
        &mut problems,
        &format!("{p} object"),
        text(start, "object"),
        OBJECT,
    );
    expect(
        &mut problems,
        &format!("{p} triggerType"),
        text(start, "triggerType"),
        "RecordAfterSave",
    );
    expect(
        &mut problems,
        &format!("{p} recordTriggerType (on create and on update)"),
        text(start, "recordTriggerType"),
        "CreateAndUpdate",
    );
    expect(
        &mut problems,
        &format!(
            "{p} doesRequireRecordChangedToMeetCriteria (only when updated to meet the condition)"
        ),
        text(start, "doesRequireRecordChangedToMeetCriteria"),
        "true",
    );
    expect(
        &mut problems,
        &format!("{p} filterLogic"),
        text(start, "filterLogic"),
        "and",
    );
    let mut filters: Vec<String> = children(start, "filters")
        .map(|f| {
            format!(
                "{} {} {}",
                text(f, "field").unwrap_or("?"),
                text(f, "operator").unwrap_or("?"),
                text_at(f, &["value", "stringValue"]).unwrap_or("?")
            )
        })
        .collect();
    filters.sort();
    let wanted = ["Direction__c EqualTo Outbound", "Status__c EqualTo Queued"];
    if filters != wanted {
        problems.push(format!(
            "{p} entry conditions: {filters:?} where they must be {wanted:?}"
        ));
    }

    let publishes: Vec<&str> = children(flow, "recordCreates")
        .filter(|e| text(*e, "object") == Some(EVENT))
        .filter_map(|e| text(e, "name"))
        .collect();
    for element in children(flow, "recordCreates").filter(|e| text(*e, "object") == Some(EVENT)) {
        let name = text(element, "name").unwrap_or("?");
        for (field, value) in [
            ("Message_Id__c", "$Record.Id"),
            ("Business_Number_Id__c", "$Record.Business_Number_Id__c"),
        ] {
            let assigned = children(element, "inputAssignments")
                .find(|a| text(*a, "field") == Some(field))
                .and_then(|a| text_at(a, &["value", "elementReference"]));
            expect(
                &mut problems,
                &format!("{p} {name} sets {EVENT}.{field} to"),
                assigned,
                value,
            );
        }
    }

    // Now: the start connector leads through a decision that lets through only a blank or past
    // Scheduled_At__c to a publish element.
    let due_now =
        children(flow, "decisions").flat_map(|d| children(d, "rules").collect::<Vec<_>>());
    let due_now: Vec<_> = due_now
        .filter(|rule| {
            let conditions: Vec<(Option<&str>, Option<&str>, Option<&str>)> =
                children(*rule, "conditions")
                    .map(|c| {
                        (
                            text(c, "leftValueReference"),
                            text(c, "operator"),
                            text_at(c, &["rightValue", "elementReference"])
                                .or_else(|| text_at(c, &["rightValue", "booleanValue"])),
                        )
                    })
                    .collect();
            let field = Some("$Record.Scheduled_At__c");
            text(*rule, "conditionLogic") == Some("or")
                && conditions.len() == 2
                && conditions.contains(&(field, Some("IsNull"), Some("true")))
                && conditions.contains(&(
                    field,
                    Some("LessThanOrEqualTo"),
                    Some("$Flow.CurrentDateTime"),
                ))
        })
        .collect();
    let from_start: Vec<&str> = reachable(
        flow,
        children(start, "connector")
            .filter_map(|c| text(c, "targetReference"))
            .collect(),
    );
    let publishes_now = due_now.iter().any(|rule| {
        let next = child(*rule, "connector").and_then(|c| text(c, "targetReference"));
        let decision = rule.parent().and_then(|d| text(d, "name"));
        next.is_some_and(|n| publishes.contains(&n))
            && decision.is_some_and(|d| from_start.contains(&d))
    });
    if !publishes_now {
        problems.push(format!(
            "{p}: no immediate path publishing {EVENT} when Scheduled_At__c is blank or has come"
        ));
    }
    // ... and a message scheduled for later (the decision's other outcome) is not published now.
    let later_publishes = due_now.iter().any(|rule| {
        let later = rule
            .parent()
            .and_then(|d| child(d, "defaultConnector"))
            .and_then(|c| text(c, "targetReference"));
        reachable(flow, later.into_iter().collect())
            .iter()
            .any(|name| publishes.contains(name))
    });
    if later_publishes {
        problems.push(format!(
            "{p}: the immediate path also publishes a message scheduled for later"
        ));
    }

    // Later: a scheduled path at Scheduled_At__c (offset 0) to a publish element.
    let scheduled: Vec<_> = children(start, "scheduledPaths").collect();
    let at_scheduled_time = scheduled.iter().any(|path| {
        text(*path, "timeSource") == Some("RecordField")
            && text(*path, "recordField") == Some("Scheduled_At__c")
            && text(*path, "offsetNumber") == Some("0")
            && reachable(
                flow,
                child(*path, "connector")
                    .and_then(|c| text(c, "targetReference"))
                    .into_iter()
                    .collect(),
            )
            .iter()
            .any(|name| publishes.contains(name))
    });
    if !at_scheduled_time {
        problems.push(format!(
            "{p}: no scheduled path at Scheduled_At__c (offset 0) publishing {EVENT}"
        ));
    }
    problems
}

/// Every element of every Flow that can fail has a fault connector to an element of that Flow:
/// a failed publish must never roll back the rep's save (sfwa's poll sends the record anyway).
fn fault_path_problems(source: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let flows = files_ending(source, "flows", ".flow-meta.xml");
    if flows.is_empty() {
        problems.push("flows/: no Flows".to_string());
    }
    for (name, _) in flows {
        let relative = format!("flows/{name}.flow-meta.xml");
        let Some(xml) = read(source, &relative, &mut problems) else {
            continue;
        };
        let Some(doc) = parse(&relative, &xml, &mut problems) else {
            continue;
        };
        let flow = doc.root_element();
        let names: Vec<&str> = flow
            .children()
            .filter(|e| e.is_element())
            .filter_map(|e| text(e, "name"))
            .collect();
        for kind in FAULTABLE {
            for element in children(flow, kind) {
                let element_name = text(element, "name").unwrap_or("?");
                match child(element, "faultConnector").and_then(|c| text(c, "targetReference")) {
                    None => problems.push(format!("{name}: {element_name} ({kind}) has no fault path")),
                    Some(target) if !names.contains(&target) => problems.push(format!(
                        "{name}: {element_name} ({kind}) has a fault path to {target}, which does not exist"
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    problems
}

/// The Apex test: it launches every active Flow (the 75 % rule, met with 100 %) and observes the
/// event through Test.getEventBus().deliver(); the subscriber it reads exists.
fn apex_test_problems(source: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(class) = read(source, &format!("classes/{APEX_TEST}.cls"), &mut problems) else {
        return problems;
    };
    if !class.contains("@IsTest\nprivate class") && !class.contains("@isTest\nprivate class") {
        problems.push(format!("{APEX_TEST}: not an @IsTest class"));
    }
    if !class.contains("Test.getEventBus().deliver()") {
        problems.push(format!(
            "{APEX_TEST}: never calls Test.getEventBus().deliver()"
        ));
    }
    if !class.contains("Flow.Interview") {
        problems.push(format!(
            "{APEX_TEST}: launches no autolaunched Flow (Flow.Interview)"
        ));
    }
    if !class.contains(&format!("new {OBJECT}(")) || !class.contains("insert message") {
        problems.push(format!(
            "{APEX_TEST}: never saves a WhatsApp Message, so the publish Flow never runs"
        ));
    }
    for (flow, path) in files_ending(source, "flows", ".flow-meta.xml") {
        let xml = std::fs::read_to_string(&path).unwrap_or_default();
        let active = roxmltree::Document::parse(&xml)
            .ok()
            .is_some_and(|doc| text(doc.root_element(), "status") == Some("Active"));
        if active && !class.contains(&format!("'{flow}'")) {
            problems.push(format!("{APEX_TEST}: does not name the active Flow {flow}, so nothing shows it launches it"));
        }
    }
    let subscribes = files_ending(source, "triggers", ".trigger")
        .iter()
        .any(|(_, path)| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .contains(&format!("on {EVENT}(after insert)"))
        });
    if !subscribes {
        problems.push(format!(
            "triggers/: no Apex trigger on {EVENT} for the test to observe"
        ));
    }
    problems
}

/// Private sharing, the permission sets, the custom permission and the inbound queue.
fn access_problems(source: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let relative = format!("objects/{OBJECT}/{OBJECT}.object-meta.xml");
    if let Some(xml) = read(source, &relative, &mut problems) {
        if let Some(doc) = parse(&relative, &xml, &mut problems) {
            let object = doc.root_element();
            expect(
                &mut problems,
                &format!("{OBJECT} sharingModel"),
                text(object, "sharingModel"),
                "Private",
            );
            expect(
                &mut problems,
                &format!("{OBJECT} externalSharingModel"),
                text(object, "externalSharingModel"),
                "Private",
            );
        }
    }

    for (name, path) in files_ending(source, "permissionsets", ".permissionset-meta.xml") {
        let xml = std::fs::read_to_string(&path).unwrap_or_default();
        let relative = format!("permissionsets/{name}.permissionset-meta.xml");
        let Some(doc) = parse(&relative, &xml, &mut problems) else {
            continue;
        };
        let set = doc.root_element();
        let object = |object: &str, permission: &str| {
            children(set, "objectPermissions")
                .find(|o| text(*o, "object") == Some(object))
                .and_then(|o| text(o, permission))
                == Some("true")
        };
        let field = |field: &str, permission: &str| {
            children(set, "fieldPermissions")
                .find(|f| text(*f, "field") == Some(field))
                .and_then(|f| text(f, permission))
                == Some("true")
        };
        let writes = children(set, "customPermissions").any(|c| {
            text(c, "name") == Some(WRITES_PERMISSION) && text(c, "enabled") == Some("true")
        });
        match name.as_str() {
            INTEGRATION_PERMSET => {
                for permission in [
                    "allowCreate",
                    "allowRead",
                    "allowEdit",
                    "viewAllRecords",
                    "modifyAllRecords",
                ] {
                    if !object(OBJECT, permission) {
                        problems.push(format!("{name}: {OBJECT} lacks {permission}"));
                    }
                }
                // Account: a Contact's AccountId and a Case's are read, and Account__c written.
                for linked in ["Account", "Contact", "Lead", "Case"] {
                    for permission in ["allowRead", "viewAllRecords"] {
                        if !object(linked, permission) {
                            problems.push(format!(
                                "{name}: {linked} lacks {permission} (linking finds nothing under Private sharing)"
                            ));
                        }
                    }
                }
                for phone in [
                    "Contact.Phone",
                    "Contact.MobilePhone",
                    "Lead.Phone",
                    "Lead.MobilePhone",
                ] {
                    if !field(phone, "readable") {
                        problems.push(format!("{name}: {phone} not readable"));
                    }
                }
                for read in MessageRow::FIELDS.iter().filter(|f| f.ends_with("__c")) {
                    let qualified = match related(read) {
                        Some((object, field)) => format!("{object}.{field}"),
                        None => format!("{OBJECT}.{read}"),
                    };
                    if !field(&qualified, "readable") {
                        problems.push(format!("{name}: {qualified} not readable (sfwa reads it)"));
                    }
                }
                // Every custom field sfwa writes (status write-backs and inbound records); the
                // standard OwnerId needs no field permission.
                for write in contract::written().filter(|f| f.ends_with("__c")) {
                    if !field(&format!("{OBJECT}.{write}"), "editable") {
                        problems.push(format!(
                            "{name}: {OBJECT}.{write} not editable (sfwa writes it)"
                        ));
                    }
                }
                if !writes {
                    problems.push(format!("{name}: does not grant {WRITES_PERMISSION}"));
                }
            }
            REP_PERMSET => {
                for permission in ["allowCreate", "allowRead", "allowEdit"] {
                    if !object(OBJECT, permission) {
                        problems.push(format!("{name}: {OBJECT} lacks {permission}"));
                    }
                }
                for permission in ["allowDelete", "viewAllRecords", "modifyAllRecords"] {
                    if object(OBJECT, permission) {
                        problems.push(format!("{name}: {OBJECT} grants {permission} (reps see what they own or is shared)"));
                    }
                }
                if !field(&format!("{OBJECT}.Status__c"), "editable") {
                    problems.push(format!(
                        "{name}: {OBJECT}.Status__c not editable (reps cancel and re-queue)"
                    ));
                }
                for delivery in DELIVERY_FIELDS {
                    if field(&format!("{OBJECT}.{delivery}"), "editable") {
                        problems.push(format!(
                            "{name}: {OBJECT}.{delivery} editable (only sfwa sets it)"
                        ));
                    }
                }
                if writes {
                    problems.push(format!("{name}: grants {WRITES_PERMISSION}, which exempts from the validation rules"));
                }
            }
            _ if writes => problems.push(format!(
                "{name}: grants {WRITES_PERMISSION}; only {INTEGRATION_PERMSET} may"
            )),
            _ => {}
        }
    }

    let relative = format!("customPermissions/{WRITES_PERMISSION}.customPermission-meta.xml");
    if let Some(xml) = read(source, &relative, &mut problems) {
        if let Some(doc) = parse(&relative, &xml, &mut problems) {
            expect(
                &mut problems,
                &format!("{WRITES_PERMISSION} label"),
                text(doc.root_element(), "label"),
                "WhatsApp: integration writes",
            );
        }
    }
    let relative = format!("queues/{INBOUND_QUEUE}.queue-meta.xml");
    if let Some(xml) = read(source, &relative, &mut problems) {
        if let Some(doc) = parse(&relative, &xml, &mut problems) {
            expect(
                &mut problems,
                &format!("queue {INBOUND_QUEUE} holds"),
                text_at(doc.root_element(), &["queueSobject", "sobjectType"]),
                OBJECT,
            );
        }
    }
    problems
}

/// The External Client App: its packageable parts, pre-authorising the integration permission set;
/// the parts holding the consumer key and certificate are never in source control.
fn eca_problems(source: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let apps = files_ending(source, "externalClientApps", ".eca-meta.xml");
    let [(app, _)] = apps.as_slice() else {
        return vec![format!(
            "externalClientApps/: {} apps where there must be one",
            apps.len()
        )];
    };
    let relative = format!("externalClientApps/{app}.eca-meta.xml");
    if let Some(xml) = read(source, &relative, &mut problems) {
        if let Some(doc) = parse(&relative, &xml, &mut problems) {
            expect(
                &mut problems,
                &format!("{app} distributionState"),
                text(doc.root_element(), "distributionState"),
                "Local",
            );
        }
    }
    let part = |folder: &str, suffix: &str, problems: &mut Vec<String>| -> Option<String> {
        let parts: Vec<_> = files_ending(source, folder, suffix)
            .into_iter()
            .filter(|(_, path)| {
                std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .contains(&format!(
                        "<externalClientApplication>{app}</externalClientApplication>"
                    ))
            })
            .collect();
        match parts.as_slice() {
            [(_, path)] => std::fs::read_to_string(path).ok(),
            _ => {
                problems.push(format!(
                    "{folder}/: {} files for {app} where there must be one",
                    parts.len()
                ));
                None
            }
        }
    };
    if let Some(xml) = part(
        "extlClntAppOauthSettings",
        ".ecaOauth-meta.xml",
        &mut problems,
    ) {
        if let Some(doc) = parse("extlClntAppOauthSettings", &xml, &mut problems) {
            let scopes: Vec<&str> = text(doc.root_element(), "commaSeparatedOauthScopes")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect();
            for scope in ["Api", "RefreshToken"] {
                if !scopes.contains(&scope) {
                    problems.push(format!("{app} OAuth scopes {scopes:?} lack {scope}"));
                }
            }
        }
    }
    if let Some(xml) = part(
        "extlClntAppOauthPolicies",
        ".ecaOauthPlcy-meta.xml",
        &mut problems,
    ) {
        if let Some(doc) = parse("extlClntAppOauthPolicies", &xml, &mut problems) {
            let policies = doc.root_element();
            expect(
                &mut problems,
                &format!("{app} permittedUsersPolicyType"),
                text(policies, "permittedUsersPolicyType"),
                "AdminApprovedPreAuthorized",
            );
            let sets: Vec<&str> = text(policies, "commaSeparatedPermissionSet")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect();
            if !sets.contains(&INTEGRATION_PERMSET) {
                problems.push(format!(
                    "{app} pre-authorises {sets:?}, not {INTEGRATION_PERMSET}"
                ));
            }
        }
    }
    for secret in ["extlClntAppGlobalOauthSets", "connectedApps"] {
        if source.join(secret).exists() {
            problems.push(format!(
                "{secret}/ is in the package: consumer keys, secrets and certificates stay out of source control"
            ));
        }
    }
    problems
}

/// One API version: sfdx-project.json and every `<apiVersion>` in the package are
/// `sfwa::salesforce::API_VERSION`, and every Flow, Apex file and component states one.
fn api_version_problems(source: &Path, project: &Path) -> Vec<String> {
    let version = sfwa::salesforce::API_VERSION;
    let mut problems = Vec::new();
    let project_json: serde_json::Value = std::fs::read_to_string(project)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    expect(
        &mut problems,
        "sfdx-project.json sourceApiVersion",
        project_json["sourceApiVersion"].as_str(),
        version,
    );
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), files);
            } else {
                files.push(entry.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(source, &mut files);
    files.sort();
    for file in files {
        let relative = file.strip_prefix(source).unwrap().display().to_string();
        let Ok(content) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut stated = false;
        for piece in content.split("<apiVersion>").skip(1) {
            stated = true;
            let found = piece.split("</apiVersion>").next().unwrap_or("").trim();
            if found != version {
                problems.push(format!(
                    "{relative}: apiVersion {found} where the package is at {version}"
                ));
            }
        }
        let must_state = [
            ".flow-meta.xml",
            ".cls-meta.xml",
            ".trigger-meta.xml",
            ".js-meta.xml",
        ]
        .iter()
        .any(|suffix| relative.ends_with(suffix));
        if must_state && !stated {
            problems.push(format!("{relative}: states no apiVersion"));
        }
    }
    problems
}

fn assert_no_problems(area: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{area}:\n{}", problems.join("\n"));
}

#[test]
fn the_publish_flow_runs_when_a_message_becomes_queued_and_publishes_now_or_at_its_scheduled_time()
{
    assert_no_problems("publish Flow", publish_flow_problems(&package_source()));
}

#[test]
fn every_flow_element_that_can_fail_has_a_fault_path() {
    assert_no_problems("fault paths", fault_path_problems(&package_source()));
}

#[test]
fn the_apex_test_launches_every_active_flow_and_delivers_the_events() {
    assert_no_problems("Apex test", apex_test_problems(&package_source()));
}

#[test]
fn messages_are_private_and_each_permission_set_gives_what_its_user_needs() {
    assert_no_problems("access", access_problems(&package_source()));
}

#[test]
fn the_external_client_app_pre_authorises_the_integration_permission_set() {
    assert_no_problems("External Client App", eca_problems(&package_source()));
}

#[test]
fn the_package_is_at_the_one_api_version_the_daemon_uses() {
    assert_no_problems(
        "API version",
        api_version_problems(&package_source(), &sfdx_project()),
    );
}

#[test]
fn a_publish_flow_that_runs_on_create_only_or_on_every_edit_is_reported() {
    let (_dir, source) = source_copy();
    let flow = source.join(format!("flows/{PUBLISH_FLOW}.flow-meta.xml"));
    edit(
        &flow,
        "<recordTriggerType>CreateAndUpdate</recordTriggerType>",
        "<recordTriggerType>Create</recordTriggerType>",
    );
    edit(
        &flow,
        "<doesRequireRecordChangedToMeetCriteria>true</doesRequireRecordChangedToMeetCriteria>",
        "",
    );

    let problems = publish_flow_problems(&source);

    assert_eq!(
        problems,
        vec![
            format!("{PUBLISH_FLOW} recordTriggerType (on create and on update): Some(\"Create\") where it must be \"CreateAndUpdate\""),
            format!("{PUBLISH_FLOW} doesRequireRecordChangedToMeetCriteria (only when updated to meet the condition): None where it must be \"true\""),
        ]
    );
}

#[test]
fn a_publish_flow_without_its_scheduled_path_or_business_number_is_reported() {
    let (_dir, source) = source_copy();
    let flow = source.join(format!("flows/{PUBLISH_FLOW}.flow-meta.xml"));
    edit(
        &flow,
        "<recordField>Scheduled_At__c</recordField>",
        "<recordField>CreatedDate</recordField>",
    );
    edit(
        &flow,
        "<elementReference>$Record.Business_Number_Id__c</elementReference>",
        "<elementReference>$Record.To_Phone__c</elementReference>",
    );

    let problems = publish_flow_problems(&source);

    assert_eq!(
        problems,
        vec![
            format!("{PUBLISH_FLOW} Publish_At_Scheduled_Time sets {EVENT}.Business_Number_Id__c to: Some(\"$Record.To_Phone__c\") where it must be \"$Record.Business_Number_Id__c\""),
            format!("{PUBLISH_FLOW}: no scheduled path at Scheduled_At__c (offset 0) publishing {EVENT}"),
        ]
    );
}

#[test]
fn a_publish_without_a_fault_path_is_reported() {
    let (_dir, source) = source_copy();
    let flow = source.join(format!("flows/{PUBLISH_FLOW}.flow-meta.xml"));
    edit(
        &flow,
        "<faultConnector>\n            <targetReference>Keep_Scheduled_Publish_Fault</targetReference>\n        </faultConnector>",
        "",
    );

    let problems = fault_path_problems(&source);

    assert_eq!(
        problems,
        vec![format!(
            "{PUBLISH_FLOW}: Publish_At_Scheduled_Time (recordCreates) has no fault path"
        )]
    );
}

#[test]
fn an_active_flow_the_apex_test_does_not_launch_is_reported() {
    let (_dir, source) = source_copy();
    let class = source.join(format!("classes/{APEX_TEST}.cls"));
    edit(&class, &format!("'{REMINDER_FLOW}'"), "'Some_Other_Flow'");
    let text = std::fs::read_to_string(&class).unwrap();
    std::fs::write(
        &class,
        text.replace("Test.getEventBus().deliver()", "Test.getEventBus().fail()"),
    )
    .unwrap();

    let problems = apex_test_problems(&source);

    assert_eq!(
        problems,
        vec![
            format!("{APEX_TEST}: never calls Test.getEventBus().deliver()"),
            format!("{APEX_TEST}: does not name the active Flow {REMINDER_FLOW}, so nothing shows it launches it"),
        ]
    );
}

#[test]
fn public_sharing_and_view_all_for_reps_are_reported() {
    let (_dir, source) = source_copy();
    edit(
        &source.join(format!("objects/{OBJECT}/{OBJECT}.object-meta.xml")),
        "<sharingModel>Private</sharingModel>",
        "<sharingModel>ReadWrite</sharingModel>",
    );
    let rep = source.join(format!(
        "permissionsets/{REP_PERMSET}.permissionset-meta.xml"
    ));
    edit(
        &rep,
        &format!("<object>{OBJECT}</object>\n        <viewAllRecords>false</viewAllRecords>"),
        &format!("<object>{OBJECT}</object>\n        <viewAllRecords>true</viewAllRecords>"),
    );
    let integration = source.join(format!(
        "permissionsets/{INTEGRATION_PERMSET}.permissionset-meta.xml"
    ));
    edit(
        &integration,
        "<object>Lead</object>\n        <viewAllRecords>true</viewAllRecords>",
        "<object>Lead</object>\n        <viewAllRecords>false</viewAllRecords>",
    );

    let problems = access_problems(&source);

    assert_eq!(
        problems,
        vec![
            format!("{OBJECT} sharingModel: Some(\"ReadWrite\") where it must be \"Private\""),
            format!("{INTEGRATION_PERMSET}: Lead lacks viewAllRecords (linking finds nothing under Private sharing)"),
            format!("{REP_PERMSET}: {OBJECT} grants viewAllRecords (reps see what they own or is shared)"),
        ]
    );
}

#[test]
fn an_external_client_app_open_to_every_user_is_reported() {
    let (_dir, source) = source_copy();
    let policies = files_ending(
        &source,
        "extlClntAppOauthPolicies",
        ".ecaOauthPlcy-meta.xml",
    );
    edit(
        &policies[0].1,
        "<permittedUsersPolicyType>AdminApprovedPreAuthorized</permittedUsersPolicyType>",
        "<permittedUsersPolicyType>AllSelfAuthorized</permittedUsersPolicyType>",
    );

    let problems = eca_problems(&source);

    assert_eq!(
        problems,
        vec!["sfwa_WhatsApp permittedUsersPolicyType: Some(\"AllSelfAuthorized\") where it must be \"AdminApprovedPreAuthorized\"".to_string()]
    );
}

#[test]
fn a_file_at_another_api_version_is_reported() {
    let (_dir, source) = source_copy();
    let component = source.join("lwc/whatsappConversation/whatsappConversation.js-meta.xml");
    let version = sfwa::salesforce::API_VERSION;
    edit(
        &component,
        &format!("<apiVersion>{version}</apiVersion>"),
        "<apiVersion>62.0</apiVersion>",
    );

    let problems = api_version_problems(&source, &sfdx_project());

    assert_eq!(
        problems,
        vec![format!(
            "lwc/whatsappConversation/whatsappConversation.js-meta.xml: apiVersion 62.0 where the package is at {version}"
        )]
    );
}

#[test]
fn the_setup_guides_name_the_external_client_app_and_no_connected_app_steps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("salesforce/README.md")).unwrap();
    for needed in [
        "sfwa_WhatsApp",
        "Enable JWT Bearer Flow",
        "Consumer Key",
        "Enable Client Credentials Flow",
        "--test-level RunSpecifiedTests --tests WhatsAppPublishOutboundTest",
        "ExtlClntAppGlobalOauthSettings",
        "## Upgrades",
    ] {
        assert!(
            guide.contains(needed),
            "salesforce/README.md does not mention {needed:?}"
        );
    }
    let mut docs = vec![root.join("README.md"), root.join("salesforce/README.md")];
    for folder in ["deploy", "docs"] {
        let mut stack = vec![root.join(folder)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    docs.push(entry.path());
                }
            }
        }
    }
    for doc in docs {
        let text = std::fs::read_to_string(&doc)
            .unwrap_or_default()
            .to_lowercase();
        for step in [
            "new connected app",
            "create a connected app",
            "setup → app manager",
        ] {
            assert!(
                !text.contains(step),
                "{} still tells admins to use a connected app ({step:?})",
                doc.display()
            );
        }
    }
}

#[test]
fn a_publish_flow_that_publishes_a_message_scheduled_for_later_at_once_is_reported() {
    let (_dir, source) = source_copy();
    let flow = source.join(format!("flows/{PUBLISH_FLOW}.flow-meta.xml"));
    edit(
        &flow,
        "<defaultConnectorLabel>Scheduled for later</defaultConnectorLabel>",
        "<defaultConnector>\n            <targetReference>Publish_Now</targetReference>\n        </defaultConnector>\n        <defaultConnectorLabel>Scheduled for later</defaultConnectorLabel>",
    );

    let problems = publish_flow_problems(&source);

    assert_eq!(
        problems,
        vec![format!(
            "{PUBLISH_FLOW}: the immediate path also publishes a message scheduled for later"
        )]
    );
}

#[test]
fn a_publish_flow_that_ignores_scheduled_at_on_its_immediate_path_is_reported() {
    let (_dir, source) = source_copy();
    let flow = source.join(format!("flows/{PUBLISH_FLOW}.flow-meta.xml"));
    edit(
        &flow,
        "<connector>\n            <targetReference>Is_Due_Now</targetReference>\n        </connector>",
        "<connector>\n            <targetReference>Publish_Now</targetReference>\n        </connector>",
    );

    let problems = publish_flow_problems(&source);

    assert_eq!(
        problems,
        vec![format!(
            "{PUBLISH_FLOW}: no immediate path publishing {EVENT} when Scheduled_At__c is blank or has come"
        )]
    );
}
