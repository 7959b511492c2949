//! The org simulator's control API under `/__sim/`: never authenticated, never counted as API usage.
//! Tests, the demo and the sandbox use it to seed records, inject faults and move time.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::faults::Faults;
use super::flows::{self, after_commit, Written};
use super::org::{Caller, Record, Transaction, WriteError};
use super::schema::ObjectDef;
use super::OrgState;

pub fn router() -> Router<Arc<OrgState>> {
    Router::new()
        .route("/records/{object}", post(insert_records).get(list_records))
        .route(
            "/records/{object}/{id}",
            axum::routing::patch(update_record),
        )
        .route("/flows", get(get_flows).post(set_flow))
        .route("/permissions", get(get_permissions).post(set_permissions))
        .route("/stats", get(stats))
        .route("/faults", get(get_faults).post(set_faults))
        .route("/clock", get(get_clock).post(shift_clock))
        .route("/search", get(get_search).post(set_search))
        .route("/validation-rules", get(get_org_rules).post(add_org_rule))
        .route("/sessions/expire", post(expire_sessions))
        .route("/refresh-tokens", post(issue_refresh_token))
        .route("/limits", post(set_limits))
        .route("/streaming/drop-clients", post(drop_clients))
        .route(
            "/channels",
            get(super::channels::control_list).post(super::channels::control_deploy),
        )
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// `?as=rep`: the write is made by a sales rep (validation rules apply to it), not by the
/// integration user (the default, which the package's custom permission exempts).
#[derive(Deserialize, Default)]
struct AsUser {
    #[serde(default, rename = "as")]
    user: Option<String>,
}

impl AsUser {
    fn caller(&self) -> Result<Caller, Box<Response>> {
        match self.user.as_deref() {
            None | Some("integration") => Ok(Caller::Integration),
            Some("rep") => Ok(Caller::Rep),
            Some(other) => Err(Box::new(bad_request(format!(
                "as={other}: use as=rep or as=integration"
            )))),
        }
    }
}

/// Inserts one record (object body) or many (array body), exactly as DML would, Flow included.
async fn insert_records(
    State(org): State<Arc<OrgState>>,
    Path(object): Path<String>,
    Query(user): Query<AsUser>,
    Json(body): Json<Value>,
) -> Response {
    let (caller, def) = match caller_and_object(&user, &org, &object) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let inputs: Vec<Map<String, Value>> = match body {
        Value::Object(map) => vec![map],
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_object().cloned())
            .collect(),
        _ => return bad_request("send a JSON object or an array of objects".into()),
    };
    let now = org.clock.now();
    let mut ids = Vec::with_capacity(inputs.len());
    let mut tx = Transaction::default();
    {
        let mut guard = org.org();
        for (index, input) in inputs.iter().enumerate() {
            match guard.insert_as(caller, &def, input, now, &mut tx) {
                Ok(id) => ids.push(id),
                Err(error) => {
                    guard.rollback(tx);
                    let detail = write_error_json(error);
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"error": "record rejected", "index": index, "detail": detail})),
                    )
                        .into_response();
                }
            }
        }
    }
    let written: Vec<Written> = ids.iter().map(Written::created).collect();
    after_commit(&org, &def, &written);
    (StatusCode::CREATED, Json(json!({"ids": ids}))).into_response()
}

/// Updates one record, exactly as DML would (a person editing it in the UI), Flow included.
async fn update_record(
    State(org): State<Arc<OrgState>>,
    Path((object, id)): Path<(String, String)>,
    Query(user): Query<AsUser>,
    Json(body): Json<Value>,
) -> Response {
    let (caller, def) = match caller_and_object(&user, &org, &object) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Value::Object(input) = body else {
        return bad_request("send a JSON object".into());
    };
    let now = org.clock.now();
    let result = {
        let mut guard = org.org();
        let before = Written::updated(&id, guard.get(&def.name, &id).ok());
        guard
            .update_as(caller, &def, &id, &input, now, &mut Transaction::default())
            .map(|id| Written { id, ..before })
    };
    match result {
        Ok(written) => {
            let id = written.id.clone();
            after_commit(&org, &def, &[written]);
            Json(json!({"id": id})).into_response()
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "record rejected", "detail": write_error_json(error)})),
        )
            .into_response(),
    }
}

/// Who writes (`?as=`) and the object a write names, or the answer that refuses the call.
fn caller_and_object(
    user: &AsUser,
    org: &OrgState,
    object: &str,
) -> Result<(Caller, Arc<ObjectDef>), Box<Response>> {
    Ok((user.caller()?, object_def(org, object)?))
}

/// The object a control call names, or the 404 to answer.
fn object_def(org: &OrgState, object: &str) -> Result<Arc<ObjectDef>, Box<Response>> {
    org.org()
        .schema()
        .shared_object(object)
        .cloned()
        .ok_or_else(|| {
            Box::new(
                (
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": format!("no object {object}")})),
                )
                    .into_response(),
            )
        })
}

fn write_error_json(error: WriteError) -> Value {
    match error {
        WriteError::Record(e) => e.to_json(),
        WriteError::Request {
            error_code,
            message,
        } => json!({"errorCode": error_code, "message": message}),
    }
}

async fn get_flows(State(org): State<Arc<OrgState>>) -> Response {
    Json(json!({"flows": flows::describe(&org.org())})).into_response()
}

#[derive(Deserialize)]
struct Permissions {
    integration_writes: bool,
}

async fn get_permissions(State(org): State<Arc<OrgState>>) -> Response {
    Json(json!({"integration_writes": org.org().integration_writes()})).into_response()
}

/// Grants or takes away the integration user's `WhatsApp_Integration_Writes` custom permission
/// (as removing it from the `WhatsApp_Integration` permission set would).
async fn set_permissions(
    State(org): State<Arc<OrgState>>,
    Json(change): Json<Permissions>,
) -> Response {
    org.org().set_integration_writes(change.integration_writes);
    get_permissions(State(org)).await
}

#[derive(Deserialize)]
struct FlowActivation {
    api_name: String,
    active: bool,
}

/// Activates or deactivates a flow, as an admin does in Setup (`FlowDefinitionView` follows).
async fn set_flow(
    State(org): State<Arc<OrgState>>,
    Json(change): Json<FlowActivation>,
) -> Response {
    match flows::set_active(&mut org.org(), &change.api_name, change.active) {
        Some(flow) => Json(flow).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no flow {}", change.api_name)})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    /// Comma-separated fields: answer counts per distinct combination instead of the records.
    group_by: Option<String>,
}

/// Every record with all fields, or with `?group_by=A,B` how many records have each combination
/// of those fields' values (`{"counts":[{"A":…,"B":…,"count":n}]}`): a poll that stays cheap
/// while the org holds thousands of records (the bench waits on it).
async fn list_records(
    State(org): State<Arc<OrgState>>,
    Path(object): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let guard = org.org();
    let Some(def) = guard.schema().object(&object) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no object {object}")})),
        )
            .into_response();
    };
    if let Some(group_by) = query.group_by {
        let mut fields = Vec::new();
        for name in group_by.split(',').map(str::trim) {
            match def.field(name) {
                Some(field) => fields.push(field.name.as_str()),
                None => return bad_request(format!("no field {name} on {}", def.name)),
            }
        }
        let counts = count_by(guard.rows(&def.name), &fields);
        return Json(json!({"object": def.name, "counts": counts})).into_response();
    }
    let records: Vec<Value> = guard
        .rows(&def.name)
        .map(|r| Value::Object(r.clone()))
        .collect();
    Json(json!({"object": def.name, "records": records})).into_response()
}

/// Distinct combinations [`count_by`] tells apart by comparing values; past this many (a field
/// with a value per record) it keys them by their JSON text instead, which costs allocations but
/// not a pass over every combination per record.
const FEW_GROUPS: usize = 32;

/// How many `records` have each combination of `fields`' values, ordered by the values' JSON
/// text (a missing field as an empty text, so before `null`, which it is listed as).
fn count_by<'r>(records: impl Iterator<Item = &'r Record>, fields: &[&str]) -> Vec<Value> {
    // The bench asks this every 200 ms over thousands of records with a handful of combinations
    // (direction × status): compare borrowed values, allocate per combination, not per record.
    let mut few: Vec<(Vec<Option<&Value>>, usize)> = Vec::new();
    let mut many: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let text = |value: Option<&Value>| value.map_or_else(String::new, Value::to_string);
    let mut key: Vec<Option<&Value>> = Vec::with_capacity(fields.len());
    for record in records {
        key.clear();
        key.extend(fields.iter().map(|field| record.get(*field)));
        if let Some((_, count)) = few.iter_mut().find(|(known, _)| *known == key) {
            *count += 1;
        } else if few.len() < FEW_GROUPS {
            few.push((key.clone(), 1));
        } else {
            *many
                .entry(key.iter().map(|v| text(*v)).collect())
                .or_default() += 1;
        }
    }
    for (key, count) in few {
        *many.entry(key.into_iter().map(text).collect()).or_default() += count;
    }
    many.into_iter()
        .map(|(key, count)| {
            let mut row = Map::new();
            for (field, value) in fields.iter().zip(key) {
                let value = serde_json::from_str(&value).unwrap_or(Value::Null);
                row.insert((*field).to_string(), value);
            }
            row.insert("count".into(), json!(count));
            Value::Object(row)
        })
        .collect()
}

async fn stats(State(org): State<Arc<OrgState>>) -> Response {
    let mut body = org.usage().to_json();
    body["active_sessions"] = json!(org.sessions().active_count());
    let guard = org.org();
    let counts: Map<String, Value> = guard
        .schema()
        .objects()
        .filter(|o| !o.is_platform_event)
        .map(|o| (o.name.clone(), json!(guard.count(&o.name))))
        .collect();
    body["records"] = Value::Object(counts);
    Json(body).into_response()
}

async fn get_faults(State(org): State<Arc<OrgState>>) -> Response {
    Json(org.faults()).into_response()
}

/// Replaces the fault settings (fields left out go back to "no fault").
async fn set_faults(State(org): State<Arc<OrgState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            *org.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults.clone();
            Json(faults).into_response()
        }
        Err(error) => bad_request(format!("bad faults: {error}")),
    }
}

#[derive(Deserialize)]
struct ClockShift {
    shift_seconds: i64,
}

async fn get_clock(State(org): State<Arc<OrgState>>) -> Response {
    Json(json!({"now": org.clock.now().to_rfc3339(), "offset_seconds": org.clock.offset().num_seconds()})).into_response()
}

async fn shift_clock(State(org): State<Arc<OrgState>>, Json(shift): Json<ClockShift>) -> Response {
    org.clock
        .shift(chrono::Duration::seconds(shift.shift_seconds));
    flows::run_scheduled(&org);
    get_clock(State(org)).await
}

/// Forced session expiry: the next REST call with any current token gets 401 INVALID_SESSION_ID.
async fn expire_sessions(State(org): State<Arc<OrgState>>) -> Response {
    org.sessions().expire_all();
    Json(json!({"expired": true})).into_response()
}

async fn issue_refresh_token(State(org): State<Arc<OrgState>>) -> Response {
    let token = org.sessions().issue_refresh_token();
    Json(json!({"refresh_token": token})).into_response()
}

#[derive(Deserialize)]
struct LimitsUpdate {
    daily_api_allowance: Option<u64>,
    used_today: Option<u64>,
    /// `DailyDeliveredPlatformEvents.Max`.
    daily_delivered_platform_events: Option<u64>,
    /// Platform events delivered today (Max minus this is `Remaining`).
    delivered_today: Option<u64>,
}

async fn set_limits(
    State(org): State<Arc<OrgState>>,
    Json(update): Json<LimitsUpdate>,
) -> Response {
    let mut usage = org.usage();
    usage.roll_day(org.clock.now());
    if let Some(allowance) = update.daily_api_allowance {
        usage.daily_allowance = allowance;
    }
    if let Some(used) = update.used_today {
        usage.used_today = used;
    }
    org.bus.set_delivery_allocation(
        update.daily_delivered_platform_events,
        update.delivered_today,
    );
    Json(usage.to_json()).into_response()
}

/// Every CometD client must handshake again, as after a Salesforce server restart.
async fn drop_clients(State(org): State<Arc<OrgState>>) -> Response {
    org.bus.drop_all_clients();
    Json(json!({"dropped": true})).into_response()
}

#[derive(Deserialize)]
struct SearchSettings {
    index_lag_seconds: i64,
}

async fn get_search(State(org): State<Arc<OrgState>>) -> Response {
    Json(super::search::settings_json(&org)).into_response()
}

/// Sets how long a new record stays out of SOSL results (the search index's lag).
async fn set_search(
    State(org): State<Arc<OrgState>>,
    Json(settings): Json<SearchSettings>,
) -> Response {
    org.set_search_index_lag(chrono::Duration::seconds(settings.index_lag_seconds.max(0)));
    get_search(State(org)).await
}

async fn get_org_rules(State(org): State<Arc<OrgState>>) -> Response {
    Json(json!({"rules": org.org().org_rules()})).into_response()
}

/// Adds a validation rule of the org's own (`{"object","field","error_message"}`): every save
/// that sets or changes that field is refused, whoever makes it.
async fn add_org_rule(
    State(org): State<Arc<OrgState>>,
    Json(rule): Json<super::validation::OrgRule>,
) -> Response {
    org.org().add_org_rule(rule);
    get_org_rules(State(org)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_combination_come_in_json_text_order_whether_few_or_many() {
        let record = |value: Value| match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let mut records = vec![
            record(json!({"Direction__c": "Outbound", "Status__c": "Sent"})),
            record(json!({"Direction__c": "Outbound", "Status__c": "Read"})),
            record(json!({"Direction__c": "Inbound", "Status__c": null})),
            record(json!({"Direction__c": "Inbound"})),
            record(json!({"Direction__c": "Outbound", "Status__c": "Sent"})),
        ];
        // Past the handful compared directly: one more distinct status per record.
        records.extend(
            (0..FEW_GROUPS).map(|i| {
                record(json!({"Direction__c": "Outbound", "Status__c": format!("S{i:02}")}))
            }),
        );
        records.push(record(
            json!({"Direction__c": "Outbound", "Status__c": "S00"}),
        ));
        records.push(record(
            json!({"Direction__c": "Outbound", "Status__c": "Read"}),
        ));

        let counts = count_by(records.iter(), &["Direction__c", "Status__c"]);

        let mut expected = vec![
            json!({"Direction__c": "Inbound", "Status__c": null, "count": 1}),
            json!({"Direction__c": "Inbound", "Status__c": null, "count": 1}),
            json!({"Direction__c": "Outbound", "Status__c": "Read", "count": 2}),
        ];
        expected.extend((0..FEW_GROUPS).map(|i| {
            let count = if i == 0 { 2 } else { 1 };
            json!({"Direction__c": "Outbound", "Status__c": format!("S{i:02}"), "count": count})
        }));
        expected.push(json!({"Direction__c": "Outbound", "Status__c": "Sent", "count": 2}));
        assert_eq!(counts, expected);
    }
}
