//! The package's record-triggered Flow `WhatsApp_Publish_Outbound`, run the way Salesforce runs it
//! after a DML commit, and the `FlowDefinitionView` rows that say whether it is active.
//!
//! - **Entry**: an Outbound record with Status Queued, on create, or on update **to** that
//!   condition ("only when a record is updated to meet the condition requirements"): a record
//!   already Queued and edited again does not publish twice; a Failed or Canceled record an admin
//!   sets back to Queued does.
//! - **Immediate path**: publishes `WhatsApp_Outbound__e {Message_Id__c, Business_Number_Id__c}`
//!   when `Scheduled_At__c` is blank or already past (sim clock).
//! - **Scheduled path**: when `Scheduled_At__c` is ahead, publishes at that time instead. Salesforce
//!   checks the entry condition again when a scheduled path runs, so a record canceled (or sent)
//!   meanwhile publishes nothing; a `Scheduled_At__c` moved later waits for the new time. The sim
//!   runs due paths from a timer on the sim clock ([`run_scheduled`], every 250 ms of wall time) and
//!   at once when the control API moves the clock.
//! - **Active flag**: the flow runs only while its `FlowDefinitionView.ActiveVersionId` is set
//!   (`POST /__sim/flows {"api_name":…, "active":false}` clears it). Paths already scheduled still
//!   run, as they belong to the version that scheduled them.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::org::{parse_datetime, Org, Record};
use super::schema::ObjectDef;
use super::{OrgState, OUTBOUND_EVENT_CHANNEL};

/// The API name of the package's publishing Flow.
pub const PUBLISH_FLOW: &str = "WhatsApp_Publish_Outbound";
/// Its label, as the flow file defines it.
const PUBLISH_FLOW_LABEL: &str = "WhatsApp: Publish Outbound";
const MESSAGE_OBJECT: &str = "WhatsApp_Message__c";
const VIEW: &str = "FlowDefinitionView";

/// One record a DML call wrote: its Id and whether it met the flow's entry condition before the
/// write (never for a record it created). Just that bit: what the flow asks of the old version,
/// without a copy of it per record written.
#[derive(Clone, Debug)]
pub struct Written {
    pub id: String,
    pub met_before: bool,
}

impl Written {
    pub fn created(id: impl Into<String>) -> Written {
        Written {
            id: id.into(),
            met_before: false,
        }
    }

    /// An update of `id`, which was `before` (`None`: no such record, the update will fail).
    pub fn updated(id: impl Into<String>, before: Option<&Record>) -> Written {
        Written {
            id: id.into(),
            met_before: met_condition(before),
        }
    }
}

/// Whether a record (`None`: none) meets the publishing flow's entry condition: what a write to it
/// must remember for the flow to run on "updated to meet the condition" only.
pub fn met_condition(record: Option<&Record>) -> bool {
    record.is_some_and(meets_condition)
}

/// Scheduled paths waiting for their time: (due, record Id).
#[derive(Debug, Default)]
pub struct ScheduledPaths {
    due: Vec<(DateTime<Utc>, String)>,
}

/// Seeds the package's flows into `FlowDefinitionView`, active (as after a deployment that
/// activated them).
pub fn seed(org: &mut Org) {
    let durable_id = org.new_id("300");
    let version_id = org.new_id("301");
    let mut record = Record::new();
    record.insert("Id".into(), json!(durable_id));
    record.insert("DurableId".into(), json!(durable_id));
    record.insert("ApiName".into(), json!(PUBLISH_FLOW));
    record.insert("Label".into(), json!(PUBLISH_FLOW_LABEL));
    record.insert("ActiveVersionId".into(), json!(version_id));
    record.insert("LatestVersionId".into(), json!(version_id));
    record.insert("ProcessType".into(), json!("AutoLaunchedFlow"));
    record.insert("TriggerType".into(), json!("RecordAfterSave"));
    record.insert("IsActive".into(), json!(true));
    org.seed_system_record(VIEW, record);
}

/// The flows as the control API shows them.
pub fn describe(org: &Org) -> Vec<Value> {
    org.rows(VIEW)
        .map(|row| {
            json!({
                "api_name": row.get("ApiName"),
                "label": row.get("Label"),
                "active": row.get("ActiveVersionId").is_some_and(|v| !v.is_null()),
                "active_version_id": row.get("ActiveVersionId"),
                "latest_version_id": row.get("LatestVersionId"),
            })
        })
        .collect()
}

/// Activates or deactivates a flow (its latest version). `None` if no flow has that API name.
pub fn set_active(org: &mut Org, api_name: &str, active: bool) -> Option<Value> {
    let mut row = org
        .rows(VIEW)
        .find(|r| r.get("ApiName").and_then(Value::as_str) == Some(api_name))?
        .clone();
    let latest = row.get("LatestVersionId").cloned().unwrap_or(Value::Null);
    row.insert(
        "ActiveVersionId".into(),
        if active { latest } else { Value::Null },
    );
    row.insert("IsActive".into(), json!(active));
    org.seed_system_record(VIEW, row);
    describe(org)
        .into_iter()
        .find(|f| f["api_name"] == api_name)
}

fn is_active(org: &Org, api_name: &str) -> bool {
    org.rows(VIEW).any(|r| {
        r.get("ApiName").and_then(Value::as_str) == Some(api_name)
            && r.get("ActiveVersionId").is_some_and(|v| !v.is_null())
    })
}

/// The flow's entry condition.
fn meets_condition(record: &Record) -> bool {
    record.get("Direction__c").and_then(Value::as_str) == Some("Outbound")
        && record.get("Status__c").and_then(Value::as_str) == Some("Queued")
}

fn scheduled_at(record: &Record) -> Option<DateTime<Utc>> {
    record
        .get("Scheduled_At__c")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
}

/// Runs the package's record-triggered flow after a committed DML call on `def`.
pub fn after_commit(org: &OrgState, def: &ObjectDef, written: &[Written]) {
    if def.name != MESSAGE_OBJECT {
        return;
    }
    let now = org.clock.now();
    let mut publish = Vec::new();
    {
        let guard = org.org();
        if !is_active(&guard, PUBLISH_FLOW) {
            return;
        }
        let mut scheduled = org.scheduled_paths();
        for write in written {
            let Ok(record) = guard.get(&def.name, &write.id) else {
                continue;
            };
            let entered = meets_condition(record) && !write.met_before;
            if !entered {
                continue;
            }
            match scheduled_at(record).filter(|at| *at > now) {
                Some(at) => scheduled.due.push((at, write.id.clone())),
                None => publish.push(event_payload(record)),
            }
        }
    }
    for payload in publish {
        org.bus.publish(OUTBOUND_EVENT_CHANNEL, payload);
    }
}

/// Runs the scheduled paths whose time has come (sim clock). Returns how many published.
pub fn run_scheduled(org: &OrgState) -> usize {
    let now = org.clock.now();
    let due: Vec<String> = {
        let mut scheduled = org.scheduled_paths();
        if !scheduled.due.iter().any(|(at, _)| *at <= now) {
            return 0;
        }
        let (due, waiting): (Vec<_>, Vec<_>) =
            scheduled.due.drain(..).partition(|(at, _)| *at <= now);
        scheduled.due = waiting;
        due.into_iter().map(|(_, id)| id).collect()
    };
    let mut publish = Vec::new();
    {
        let guard = org.org();
        let mut scheduled = org.scheduled_paths();
        for id in due {
            let Ok(record) = guard.get(MESSAGE_OBJECT, &id) else {
                continue;
            };
            if !meets_condition(record) {
                continue;
            }
            match scheduled_at(record).filter(|at| *at > now) {
                Some(later) => scheduled.due.push((later, id)),
                None => publish.push(event_payload(record)),
            }
        }
    }
    let published = publish.len();
    for payload in publish {
        org.bus.publish(OUTBOUND_EVENT_CHANNEL, payload);
    }
    published
}

fn event_payload(record: &Record) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert(
        "Message_Id__c".into(),
        record.get("Id").cloned().unwrap_or(Value::Null),
    );
    payload.insert(
        "Business_Number_Id__c".into(),
        record
            .get("Business_Number_Id__c")
            .cloned()
            .unwrap_or(Value::Null),
    );
    payload
}
