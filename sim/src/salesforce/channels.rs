//! Creating custom platform-event channels and their filtered members, the two ways the org
//! offers (the event bus does the filtering and counting, [`super::streaming::channels`]):
//!
//! - **Tooling API**, as Salesforce documents it ("Add a Filter with Tooling API",
//!   <https://developer.salesforce.com/docs/platform/platform-events/guide/platform-events-filter-tooling-api-add-filter.html>):
//!   `POST /services/data/vNN.N/tooling/sobjects/PlatformEventChannel`
//!   `{"FullName":"Sfwa_Shard_A__chn","Metadata":{"channelType":"event","label":"…"}}`, then
//!   `POST …/tooling/sobjects/PlatformEventChannelMember`
//!   `{"FullName":"Sfwa_Shard_A_chn_WhatsApp_Outbound_e","Metadata":{"eventChannel":"Sfwa_Shard_A__chn",
//!   "selectedEntity":"WhatsApp_Outbound__e","filterExpression":"Business_Number_Id__c = '111'"}}`.
//!   Each answers `201 {"id":…,"success":true,"errors":[],"warnings":[],"infos":[]}` and is one
//!   REST call. Refusals answer 400 `[{"message":…,"errorCode":…}]`; the exact error codes of the
//!   real org for these cases are not documented, so the simulator uses
//!   `FIELD_INTEGRITY_EXCEPTION` (bad name, unknown channel or event, bad filter) and
//!   `DUPLICATE_VALUE`.
//! - **Control API** `POST /__sim/channels` `{"name":"Sfwa_Shard_A__chn","members":[{"selected_entity":
//!   "WhatsApp_Outbound__e","filter_expression":"…"}]}`: the stand-in for a Metadata API deploy of
//!   `salesforce/shards/` (`PlatformEventChannel` + `PlatformEventChannelMember`), free of API
//!   usage. `GET /__sim/channels` lists them.
//!
//! A filter expression is SOQL's WHERE grammar over the event's fields (`= != < <= > >= LIKE IN
//! NOT IN`, `AND`/`OR`, parentheses; text compared case-insensitively, `!=` true for null), checked
//! against the event's schema when the member is created, exactly as the org's own SOQL would.
//! Only `channelType` `event` is simulated (not `data`, Change Data Capture).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::schema::Schema;
use super::soql;
use super::streaming::{ChannelError, ChannelMember, EventFilter};
use super::OrgState;

const CHANNEL: &str = "PlatformEventChannel";
const MEMBER: &str = "PlatformEventChannelMember";

/// Compiles a member's filter expression against the event's schema.
pub fn compile_filter(
    schema: &Schema,
    entity: &str,
    expression: &str,
) -> Result<EventFilter, String> {
    let query = soql::parse(&format!("SELECT COUNT() FROM {entity} WHERE {expression}"))
        .map_err(|e| format!("invalid filter expression: {}", e.message))?;
    let bound = query
        .bind_event_filter(schema)
        .map_err(|e| format!("invalid filter expression: {}", e.message))?;
    Ok(Arc::new(move |payload| bound.matches(payload)))
}

/// A member as the caller describes it, checked against the schema.
fn member(
    org: &OrgState,
    channel: &str,
    developer_name: Option<String>,
    entity: &str,
    expression: Option<String>,
) -> Result<ChannelMember, String> {
    let guard = org.org();
    let schema = guard.schema();
    let Some(def) = schema.object(entity).filter(|d| d.is_platform_event) else {
        return Err(format!(
            "selectedEntity {entity} is not a custom platform event of this org"
        ));
    };
    let expression = expression.filter(|e| !e.trim().is_empty());
    let filter = match &expression {
        Some(text) => Some(compile_filter(schema, &def.name, text)?),
        None => None,
    };
    let developer_name = developer_name.unwrap_or_else(|| {
        format!(
            "{}_{}",
            channel.replace("__", "_"),
            def.name.replace("__", "_")
        )
    });
    Ok(ChannelMember {
        developer_name,
        selected_entity: def.name.clone(),
        filter_expression: expression,
        filter,
    })
}

/// A Tooling API create body: `FullName` and `Metadata`.
#[derive(Deserialize)]
pub struct ToolingBody {
    #[serde(rename = "FullName")]
    full_name: Option<String>,
    #[serde(rename = "Metadata", default)]
    metadata: serde_json::Map<String, Value>,
}

impl ToolingBody {
    fn text(&self, key: &str) -> Option<String> {
        self.metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// The REST error shape `[{"message","errorCode"}]` (as `rest::api_error`, which this file does
/// not import: `rest` routes here).
fn api_error(status: StatusCode, error_code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": error_code}])),
    )
        .into_response()
}

fn refused(error_code: &str, message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, error_code, message)
}

fn channel_refusal(error: &ChannelError) -> Response {
    let code = match error {
        ChannelError::Duplicate(_) | ChannelError::DuplicateMember { .. } => "DUPLICATE_VALUE",
        _ => "FIELD_INTEGRITY_EXCEPTION",
    };
    refused(code, &error.to_string())
}

fn created(id: String) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "success": true, "errors": [], "warnings": [], "infos": []})),
    )
        .into_response()
}

/// `POST /services/data/vNN.N/tooling/sobjects/{PlatformEventChannel|PlatformEventChannelMember}`.
pub async fn tooling_create(
    State(org): State<Arc<OrgState>>,
    Path((_version, object)): Path<(String, String)>,
    Json(body): Json<ToolingBody>,
) -> Response {
    match object.as_str() {
        CHANNEL => tooling_channel(&org, &body),
        MEMBER => tooling_member(&org, &body),
        other => api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("The requested resource does not exist (the simulator's Tooling API knows {CHANNEL} and {MEMBER} only, not {other})"),
        ),
    }
}

fn tooling_channel(org: &OrgState, body: &ToolingBody) -> Response {
    let Some(name) = body.full_name.as_deref() else {
        return refused(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [FullName]",
        );
    };
    if body.text("channelType").as_deref() != Some("event") {
        return refused(
            "FIELD_INTEGRITY_EXCEPTION",
            "channelType: the simulator supports only event channels (platform events)",
        );
    }
    let label = body.text("label").unwrap_or_else(|| name.to_owned());
    match org.bus.create_channel(name, &label) {
        Ok(()) => created(org.org().new_id("0YL")),
        Err(error) => channel_refusal(&error),
    }
}

fn tooling_member(org: &OrgState, body: &ToolingBody) -> Response {
    let (Some(channel), Some(entity)) = (body.text("eventChannel"), body.text("selectedEntity"))
    else {
        return refused(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [eventChannel, selectedEntity]",
        );
    };
    let built = member(
        org,
        &channel,
        body.full_name.clone(),
        &entity,
        body.text("filterExpression"),
    );
    let member = match built {
        Ok(member) => member,
        Err(message) => return refused("FIELD_INTEGRITY_EXCEPTION", &message),
    };
    match org.bus.add_member(&channel, member) {
        Ok(()) => created(org.org().new_id("0v8")),
        Err(error) => channel_refusal(&error),
    }
}

/// `POST /__sim/channels`: one channel and its members, as a metadata deploy would create them.
#[derive(Deserialize)]
pub struct ChannelDeploy {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    members: Vec<MemberDeploy>,
}

#[derive(Deserialize)]
struct MemberDeploy {
    selected_entity: String,
    #[serde(default)]
    filter_expression: Option<String>,
}

pub async fn control_deploy(
    State(org): State<Arc<OrgState>>,
    Json(deploy): Json<ChannelDeploy>,
) -> Response {
    // Checked whole before anything is created: a deploy is all or nothing.
    let mut members = Vec::with_capacity(deploy.members.len());
    for m in deploy.members {
        match member(
            &org,
            &deploy.name,
            None,
            &m.selected_entity,
            m.filter_expression,
        ) {
            Ok(member) => members.push(member),
            Err(message) => {
                return (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
            }
        }
    }
    let label = deploy.label.unwrap_or_else(|| deploy.name.clone());
    let outcome = org.bus.create_channel(&deploy.name, &label).and_then(|()| {
        members
            .into_iter()
            .try_for_each(|m| org.bus.add_member(&deploy.name, m))
    });
    match outcome {
        Ok(()) => control_list(State(org)).await,
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error.to_string()})),
        )
            .into_response(),
    }
}

/// `GET /__sim/channels`: every custom channel with its members and filters.
pub async fn control_list(State(org): State<Arc<OrgState>>) -> Response {
    let channels: Vec<Value> = org
        .bus
        .custom_channels()
        .into_iter()
        .map(|(path, channel)| {
            let members: Vec<Value> = channel
                .members
                .iter()
                .map(|m| {
                    json!({"developer_name": m.developer_name, "selected_entity": m.selected_entity,
                           "filter_expression": m.filter_expression})
                })
                .collect();
            json!({"subscription": path, "label": channel.label, "members": members})
        })
        .collect();
    Json(json!({"channels": channels})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn event(number: Option<&str>) -> Map<String, Value> {
        let mut payload = Map::new();
        payload.insert("Message_Id__c".into(), json!("a01"));
        payload.insert("Business_Number_Id__c".into(), json!(number));
        payload
    }

    #[test]
    fn a_filter_on_the_business_number_admits_that_number_and_blank_when_asked() {
        let schema = Schema::embedded().unwrap();
        let one = compile_filter(
            &schema,
            "WhatsApp_Outbound__e",
            "Business_Number_Id__c = '111'",
        )
        .unwrap();
        let one_or_blank = compile_filter(
            &schema,
            "WhatsApp_Outbound__e",
            "Business_Number_Id__c = null OR Business_Number_Id__c = '111'",
        )
        .unwrap();

        assert!(one(&event(Some("111"))));
        assert!(!one(&event(Some("222"))));
        assert!(!one(&event(None)));
        assert!(one_or_blank(&event(None)));
        assert!(one_or_blank(&event(Some("111"))));
        assert!(!one_or_blank(&event(Some("222"))));
    }

    #[test]
    fn a_filter_naming_a_field_the_event_lacks_is_refused() {
        let schema = Schema::embedded().unwrap();

        let result = compile_filter(&schema, "WhatsApp_Outbound__e", "Status__c = 'Queued'");

        assert!(result.is_err_and(|e| e.contains("Status__c")));
    }
}
