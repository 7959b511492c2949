//! The REST API of the simulated org: `/services/data/vNN.N/…`.
//!
//! One middleware (`gate`) does what Salesforce does around every call — session check, version
//! check, injected faults, API usage and the `Sforce-Limit-Info` header — so handlers only do the work.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::flows::{after_commit, met_condition, Written};
use super::org::{DmlError, Record, Transaction, WriteError};
use super::schema::ObjectDef;
use super::{ids, soql, OrgState};

/// API versions the simulator answers; others are 404 like a retired or future version.
const MIN_VERSION: f64 = 20.0;
const MAX_VERSION: f64 = 68.0;
/// Collections take at most this many records per request.
pub const COLLECTION_LIMIT: usize = 200;
/// Salesforce drops an unused query cursor after 15 minutes.
const CURSOR_IDLE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Remaining rows of a paginated query.
pub struct Cursor {
    object: String,
    version: String,
    rows: Vec<Record>,
    last_used: Instant,
}

/// The REST API, every endpoint behind `gate`; `more` adds endpoints that must be behind it too
/// (the composite resource, which dispatches its subrequests to [`endpoints`]).
pub fn router(state: Arc<OrgState>, more: Router<Arc<OrgState>>) -> Router<Arc<OrgState>> {
    let api = endpoints()
        .merge(more)
        .layer(middleware::from_fn_with_state(state, gate));
    Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .merge(api)
}

/// The REST endpoints without `gate` (no session check, no charge): what a composite request's
/// subrequests are dispatched to, so each is answered by the same handler as the standalone call.
pub fn endpoints() -> Router<Arc<OrgState>> {
    Router::new()
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/query/{locator}", get(query_more))
        .route(
            "/services/data/{version}/search",
            get(super::search::handle),
        )
        .route("/services/data/{version}/limits", get(limits))
        .route(
            "/services/data/{version}/tooling/sobjects/{object}",
            axum::routing::post(super::channels::tooling_create),
        )
        .route("/services/data/{version}/sobjects", get(describe_global))
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}",
            // A ContentVersion carries its file: up to Salesforce's 50 MB request.
            axum::routing::post(create).layer(axum::extract::DefaultBodyLimit::max(
                super::files::MAX_REQUEST_BYTES + 1,
            )),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}/{field}",
            get(version_data),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(read).patch(update).delete(delete),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            axum::routing::post(collection_create).patch(collection_update),
        )
        .route(
            "/services/data/{version}/composite/sobjects/{object}/{field}",
            axum::routing::patch(collection_upsert),
        )
}

/// A top-level REST error: `[{"message":…,"errorCode":…}]` (with `fields` when there are some).
pub fn api_error(status: StatusCode, error_code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": error_code}])),
    )
        .into_response()
}

fn dml_error_response(error: DmlError) -> Response {
    match error.status_code {
        "ENTITY_IS_DELETED" => api_error(StatusCode::NOT_FOUND, error.status_code, &error.message),
        // A well-formed Id of no record: the row resource simply does not exist.
        "INVALID_CROSS_REFERENCE_KEY" if error.fields.is_empty() => not_found(),
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!([{"message": error.message, "errorCode": error.status_code, "fields": error.fields}])),
        )
            .into_response(),
    }
}

fn write_error_response(error: WriteError) -> Response {
    match error {
        WriteError::Record(error) => dml_error_response(error),
        WriteError::Request {
            error_code,
            message,
        } => api_error(StatusCode::BAD_REQUEST, error_code, &message),
    }
}

fn not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

/// Session, version, faults and usage around every REST call.
async fn gate(State(org): State<Arc<OrgState>>, request: Request, next: Next) -> Response {
    let faults = org.faults();
    if let Some(latency) = faults.latency() {
        tokio::time::sleep(latency).await;
    }
    if !org.authorized(request.headers()) {
        return with_limit_info(
            &org,
            api_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            ),
        );
    }
    let path = request.uri().path().to_string();
    let Some(version) = path.split('/').nth(3).and_then(parse_version) else {
        return with_limit_info(&org, not_found());
    };
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return with_limit_info(&org, not_found());
    }
    if super::faults::Faults::roll(faults.error_500_rate) {
        return with_limit_info(
            &org,
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support: 1882743712-36458 (-1219540217)",
            ),
        );
    }
    if super::faults::Faults::roll(faults.error_503_rate) {
        return with_limit_info(
            &org,
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server is temporarily unavailable, please try again later",
            ),
        );
    }
    let is_read = request.method() == Method::GET;
    let endpoint = endpoint_label(request.method(), &path);
    let charged = org.usage().charge(&endpoint, org.clock.now());
    if !charged {
        return with_limit_info(
            &org,
            api_error(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
        );
    }
    let response = with_limit_info(&org, next.run(request).await);
    let droppable = !(faults.drop_writes_only && is_read);
    if droppable && super::faults::Faults::roll(faults.drop_connection_rate) {
        return dropped(response);
    }
    response
}

/// Counts CometD requests (they are not REST calls and do not spend the allowance).
pub async fn count_cometd(
    State(org): State<Arc<OrgState>>,
    request: Request,
    next: Next,
) -> Response {
    org.usage().cometd_requests += 1;
    next.run(request).await
}

/// The response's headers go out, then the body fails: the client sees a broken connection and
/// cannot tell whether its request took effect.
fn dropped(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    // A 204 never carries a body, so there would be nothing to cut: send a status that does.
    if parts.status == StatusCode::NO_CONTENT {
        parts.status = StatusCode::OK;
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let failing = futures_util::stream::once(async {
        Err::<bytes::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated dropped connection",
        ))
    });
    Response::from_parts(parts, Body::from_stream(failing))
}

fn with_limit_info(org: &OrgState, mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&org.usage().limit_info()) {
        response.headers_mut().insert("Sforce-Limit-Info", value);
    }
    response
}

fn parse_version(segment: &str) -> Option<f64> {
    segment.strip_prefix('v')?.parse().ok()
}

/// `GET query`, `PATCH composite/sobjects`, `GET sobjects/{object}/{id}`: what a call was, for stats.
fn endpoint_label(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(4).filter(|s| !s.is_empty()).collect();
    let shape: Vec<&str> = match segments.as_slice() {
        ["query", _] => vec!["query", "{locator}"],
        ["sobjects", _, "describe"] => vec!["sobjects", "{object}", "describe"],
        ["sobjects", _] => vec!["sobjects", "{object}"],
        ["sobjects", _, _] => vec!["sobjects", "{object}", "{id}"],
        ["sobjects", _, _, _] => vec!["sobjects", "{object}", "{id}", "{field}"],
        ["composite", "sobjects", _, _] => vec!["composite", "sobjects", "{object}", "{field}"],
        other => other.to_vec(),
    };
    format!("{method} {}", shape.join("/"))
}

async fn versions() -> Response {
    let list: Vec<Value> = (52..=62)
        .map(|v| json!({"label": format!("v{v}.0"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")}))
        .collect();
    Json(list).into_response()
}

fn record_url(version: &str, object: &str, id: &str) -> String {
    format!("/services/data/{version}/sobjects/{object}/{id}")
}

/// A record as the REST API renders it: `attributes` first, then the fields.
pub(super) fn render(version: &str, object: &str, fields: Map<String, Value>) -> Value {
    let id = fields
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": object, "url": record_url(version, object, &id)}),
    );
    out.extend(fields);
    Value::Object(out)
}

#[derive(Deserialize)]
struct QueryParams {
    q: Option<String>,
}

async fn query(
    State(org): State<Arc<OrgState>>,
    Path(version): Path<String>,
    Query(params): Query<QueryParams>,
) -> Response {
    let Some(text) = params.q else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        );
    };
    let bound = {
        let org_guard = org.org();
        soql::parse(&text).and_then(|q| q.bind(org_guard.schema()))
    };
    let bound = match bound {
        Ok(bound) => bound,
        Err(error) => return api_error(StatusCode::BAD_REQUEST, error.error_code, &error.message),
    };
    *org.usage()
        .soql_by_object
        .entry(bound.object().to_string())
        .or_default() += 1;
    let rows = {
        let org_guard = org.org();
        let mut rows = bound.run_table(org_guard.table(bound.object()));
        bound.attach_relations(&mut rows, |object, id| org_guard.get(object, id).ok());
        rows
    };
    if bound.is_count() {
        // COUNT() answers with the number only, no rows.
        return Json(json!({"totalSize": rows.len(), "done": true, "records": []})).into_response();
    }
    let object = bound.object().to_string();
    page(&org, &version, object, rows, 0)
}

/// Serves one page of `rows` starting at `offset`, parking the rest behind a `nextRecordsUrl`.
fn page(
    org: &OrgState,
    version: &str,
    object: String,
    rows: Vec<Record>,
    offset: usize,
) -> Response {
    let total = rows.len();
    let page_size = org.config.query_page_size.max(1);
    let end = (offset + page_size).min(total);
    if end >= total {
        // The last page: nothing is kept for later, so the rows move into the answer uncopied.
        let records: Vec<Value> = rows
            .into_iter()
            .skip(offset)
            .map(|r| render(version, &object, r))
            .collect();
        return Json(json!({"totalSize": total, "done": true, "records": records})).into_response();
    }
    let records: Vec<Value> = rows[offset.min(total)..end]
        .iter()
        .map(|r| render(version, &object, r.clone()))
        .collect();
    let mut body = json!({"totalSize": total, "done": false, "records": records});
    let mut cursors = org.cursors.lock().unwrap_or_else(|e| e.into_inner());
    cursors.retain(|_, c| c.last_used.elapsed() < CURSOR_IDLE);
    let locator = ids::IdGenerator::default().next("01g");
    let locator = format!(
        "{}{}",
        &locator[..3],
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let locator = format!("{locator}{}", ids::checksum(&locator));
    body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{locator}-{end}"));
    cursors.insert(
        locator,
        Cursor {
            object,
            version: version.to_string(),
            rows,
            last_used: Instant::now(),
        },
    );
    drop(cursors);
    Json(body).into_response()
}

async fn query_more(
    State(org): State<Arc<OrgState>>,
    Path((version, locator)): Path<(String, String)>,
) -> Response {
    let invalid = || {
        api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    };
    let Some((id, offset)) = locator.rsplit_once('-') else {
        return invalid();
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return invalid();
    };
    let cursor = {
        let mut cursors = org.cursors.lock().unwrap_or_else(|e| e.into_inner());
        cursors.retain(|_, c| c.last_used.elapsed() < CURSOR_IDLE);
        // A cursor serves its pages once each; the last page frees it, as on the platform.
        cursors.remove(id)
    };
    let Some(cursor) = cursor else {
        return invalid();
    };
    if offset > cursor.rows.len() {
        return invalid();
    }
    let _ = cursor.version;
    page(&org, &version, cursor.object, cursor.rows, offset)
}

async fn limits(State(org): State<Arc<OrgState>>) -> Response {
    let usage = org.usage();
    let max = usage.daily_allowance;
    let remaining = max.saturating_sub(usage.used_today);
    drop(usage);
    let (delivered_max, delivered_remaining) = org.bus.delivery_allocation();
    Json(json!({
        "DailyApiRequests": {"Max": max, "Remaining": remaining},
        "DailyDeliveredPlatformEvents": {"Max": delivered_max, "Remaining": delivered_remaining},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyDurableStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
        "HourlyPublishedPlatformEvents": {"Max": 250000, "Remaining": 250000},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
    }))
    .into_response()
}

async fn describe_global(State(org): State<Arc<OrgState>>) -> Response {
    let org = org.org();
    let objects: Vec<Value> = org
        .schema()
        .objects()
        .map(|o| {
            json!({"name": o.name, "label": o.label, "labelPlural": o.label_plural, "keyPrefix": o.key_prefix,
                   "custom": o.custom, "queryable": !o.is_platform_event, "createable": true})
        })
        .collect();
    Json(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})).into_response()
}

async fn describe(
    State(org): State<Arc<OrgState>>,
    Path((version, object)): Path<(String, String)>,
) -> Response {
    let org = org.org();
    let Some(def) = org.schema().object(&object) else {
        return not_found();
    };
    let fields: Vec<Value> = def
        .fields()
        .iter()
        .map(|f| {
            let picklist: Vec<Value> = f
                .picklist_values
                .iter()
                .map(|v| {
                    json!({"active": true, "defaultValue": f.default_value.as_deref() == Some(v.as_str()),
                           "label": v, "validFor": null, "value": v})
                })
                .collect();
            json!({
                "name": f.name, "label": f.label, "type": f.field_type.describe_name(), "length": f.length,
                "picklistValues": picklist, "restrictedPicklist": f.restricted,
                "nillable": !f.required && f.name != "Id", "createable": f.createable, "updateable": f.updateable,
                "externalId": f.external_id, "unique": f.unique, "custom": f.custom,
                "filterable": f.filterable, "sortable": f.sortable, "autoNumber": f.auto_number.is_some(),
                "referenceTo": f.reference_to.iter().collect::<Vec<_>>(),
                "defaultValue": f.default_value,
            })
        })
        .collect();
    Json(json!({
        "name": def.name, "label": def.label, "labelPlural": def.label_plural, "keyPrefix": def.key_prefix,
        "custom": def.custom, "queryable": !def.is_platform_event, "createable": true,
        "updateable": !def.is_platform_event, "deletable": !def.is_platform_event,
        "fields": fields,
        "urls": {"sobject": format!("/services/data/{version}/sobjects/{}", def.name),
                 "describe": format!("/services/data/{version}/sobjects/{}/describe", def.name)},
    }))
    .into_response()
}

/// Objects a client may write rows of, looked up case-insensitively; `None` → 404. Shared, not
/// copied: a definition carries every field's metadata.
fn object_def(org: &OrgState, name: &str) -> Option<Arc<ObjectDef>> {
    org.org().schema().shared_object(name).cloned()
}

#[derive(Deserialize)]
struct ReadParams {
    fields: Option<String>,
}

async fn read(
    State(org): State<Arc<OrgState>>,
    Path((version, object, id)): Path<(String, String, String)>,
    Query(params): Query<ReadParams>,
) -> Response {
    let Some(def) = object_def(&org, &object) else {
        return not_found();
    };
    let guard = org.org();
    let record = match guard.get(&def.name, &id) {
        Ok(record) => record.clone(),
        Err(error) if error.status_code == "ENTITY_IS_DELETED" => {
            return api_error(
                StatusCode::NOT_FOUND,
                "ENTITY_IS_DELETED",
                "entity is deleted",
            )
        }
        Err(_) => return not_found(),
    };
    let fields = match params.fields {
        None => record,
        Some(list) => {
            let mut selected = Map::new();
            selected.insert(
                "Id".into(),
                record.get("Id").cloned().unwrap_or(Value::Null),
            );
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let Some(field) = def.field(name) else {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_FIELD",
                        &format!("No such column '{name}' on sobject of type {}", def.name),
                    );
                };
                selected.insert(
                    field.name.clone(),
                    record.get(&field.name).cloned().unwrap_or(Value::Null),
                );
            }
            selected
        }
    };
    Json(render(&version, &def.name, fields)).into_response()
}

async fn create(
    State(org): State<Arc<OrgState>>,
    Path((version, object)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(def) = object_def(&org, &object) else {
        return not_found();
    };
    let input = match json_object(&body) {
        Ok(input) => input,
        Err(response) => return *response,
    };
    if def.name == "ContentVersion" {
        return create_file(&org, &def, &version, body.len(), input);
    }
    if def.is_platform_event {
        return publish_event(&org, &def, input);
    }
    let now = org.clock.now();
    let result = org
        .org()
        .insert(&def, &input, now, &mut Transaction::default());
    match result {
        Ok(id) => {
            after_commit(&org, &def, &[Written::created(id.clone())]);
            (
                StatusCode::CREATED,
                Json(json!({"id": id, "success": true, "errors": []})),
            )
                .into_response()
        }
        Err(error) => write_error_response(error),
    }
}

/// `POST sobjects/ContentVersion`: a Salesforce File (see `files`).
fn create_file(
    org: &OrgState,
    def: &ObjectDef,
    version: &str,
    body_len: usize,
    input: Map<String, Value>,
) -> Response {
    match super::files::create_version(org, def, version, body_len, input) {
        Ok(id) => {
            after_commit(org, def, &[Written::created(id.clone())]);
            (
                StatusCode::CREATED,
                Json(json!({"id": id, "success": true, "errors": []})),
            )
                .into_response()
        }
        Err(super::files::Refused::Api {
            status,
            error_code,
            message,
        }) => api_error(status, error_code, &message),
        Err(super::files::Refused::Write(error)) => write_error_response(error),
    }
}

/// `GET sobjects/ContentVersion/{Id}/VersionData`: the file's bytes (any other blob path: 404).
async fn version_data(
    State(org): State<Arc<OrgState>>,
    Path((_, object, id, field)): Path<(String, String, String, String)>,
) -> Response {
    let blob =
        object.eq_ignore_ascii_case("ContentVersion") && field.eq_ignore_ascii_case("VersionData");
    match super::files::version_bytes(&org, &id).filter(|_| blob) {
        Some(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        None => not_found(),
    }
}

/// Publishing an event through sObject rows, as the REST API allows for platform events.
fn publish_event(org: &OrgState, def: &ObjectDef, input: Map<String, Value>) -> Response {
    let mut payload = Map::new();
    for (name, value) in input {
        if name == "attributes" {
            continue;
        }
        match def.field(&name) {
            Some(field) => {
                payload.insert(field.name.clone(), value);
            }
            None => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("No such column '{name}' on sobject of type {}", def.name),
                )
            }
        }
    }
    org.bus.register_channel(&format!("/event/{}", def.name));
    org.bus.publish(&format!("/event/{}", def.name), payload);
    let id = ids::IdGenerator::default().next("e00");
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response()
}

async fn update(
    State(org): State<Arc<OrgState>>,
    Path((_, object, id)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(def) = object_def(&org, &object) else {
        return not_found();
    };
    let input = match json_object(&body) {
        Ok(input) => input,
        Err(response) => return *response,
    };
    let now = org.clock.now();
    let result = {
        let mut guard = org.org();
        let before = Written::updated(&id, guard.get(&def.name, &id).ok());
        guard
            .update(&def, &id, &input, now, &mut Transaction::default())
            .map(|id| Written { id, ..before })
    };
    match result {
        Ok(written) => {
            after_commit(&org, &def, &[written]);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => write_error_response(error),
    }
}

async fn delete(
    State(org): State<Arc<OrgState>>,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Response {
    let Some(def) = object_def(&org, &object) else {
        return not_found();
    };
    let result = org
        .org()
        .delete(&def.name, &id, &mut Transaction::default());
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => dml_error_response(error),
    }
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of sObject from a value that is not an object",
        ))),
        Err(error) => Err(Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character: {error}"),
        ))),
    }
}

#[derive(Deserialize)]
struct CollectionBody {
    #[serde(default, rename = "allOrNone")]
    all_or_none: bool,
    #[serde(default)]
    records: Vec<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CollectionOp {
    Create,
    Update,
    Upsert,
}

async fn collection_create(State(org): State<Arc<OrgState>>, body: axum::body::Bytes) -> Response {
    collection(&org, CollectionOp::Create, None, &body)
}

async fn collection_update(State(org): State<Arc<OrgState>>, body: axum::body::Bytes) -> Response {
    collection(&org, CollectionOp::Update, None, &body)
}

async fn collection_upsert(
    State(org): State<Arc<OrgState>>,
    Path((_, object, field)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(def) = object_def(&org, &object) else {
        return not_found();
    };
    let Some(ext) = def
        .field(&field)
        .filter(|f| f.external_id || f.name == "Id")
        .map(|f| f.name.clone())
    else {
        return api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
        );
    };
    collection(&org, CollectionOp::Upsert, Some((def, ext)), &body)
}

/// One result entry of a collection response.
struct Outcome {
    id: Option<String>,
    created: Option<bool>,
    error: Option<DmlError>,
}

fn collection(
    org: &OrgState,
    op: CollectionOp,
    upsert: Option<(Arc<ObjectDef>, String)>,
    body: &[u8],
) -> Response {
    let parsed: CollectionBody = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(error) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                &format!("Unexpected character: {error}"),
            )
        }
    };
    if parsed.records.len() > COLLECTION_LIMIT {
        return api_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    let now = org.clock.now();
    let lock_rate = org.faults().lock_row_rate;
    let mut tx = Transaction::default();
    let mut outcomes = Vec::with_capacity(parsed.records.len());
    let mut written: Vec<(Arc<ObjectDef>, Written)> = Vec::new();
    let mut guard = org.org();
    for record in &parsed.records {
        let Some(input) = record.as_object() else {
            outcomes.push(Outcome {
                id: None,
                created: None,
                error: Some(dml("INVALID_TYPE", "Must send a concrete entity type.")),
            });
            continue;
        };
        let type_name = input
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str);
        let def = match (&upsert, type_name) {
            (Some((def, _)), _) => Some(def.clone()),
            (None, Some(name)) => guard.schema().shared_object(name).cloned(),
            (None, None) => None,
        };
        let Some(def) = def else {
            outcomes.push(Outcome {
                id: None,
                created: None,
                error: Some(dml("INVALID_TYPE", "Must send a concrete entity type.")),
            });
            continue;
        };
        let given_id = input
            .get("id")
            .or_else(|| input.get("Id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // The record before an update, for the Flow's "updated to meet the condition".
        let mut met_before = false;
        let result: Result<(String, Option<bool>), WriteError> = match op {
            CollectionOp::Create => guard.insert(&def, input, now, &mut tx).map(|id| (id, None)),
            CollectionOp::Update => match &given_id {
                None => Err(dml("MISSING_ARGUMENT", "Id not specified in an update call").into()),
                Some(id) if super::faults::Faults::roll(lock_rate) => Err(dml(
                    "UNABLE_TO_LOCK_ROW",
                    &format!("unable to obtain exclusive access to this record or 1 records: {id}"),
                )
                .into()),
                Some(id) => {
                    met_before = met_condition(guard.get(&def.name, id).ok());
                    guard
                        .update(&def, id, input, now, &mut tx)
                        .map(|id| (id, None))
                }
            },
            CollectionOp::Upsert => {
                let field = upsert.as_ref().map(|(_, f)| f.as_str()).unwrap_or("Id");
                match input
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(field))
                    .and_then(|(_, v)| v.as_str())
                {
                    None => Err(dml("MISSING_ARGUMENT", &format!("{field} not specified")).into()),
                    Some(key) => match guard.find_by_unique(&def.name, field, key) {
                        Some(existing) => {
                            met_before = met_condition(guard.get(&def.name, &existing).ok());
                            guard
                                .update(&def, &existing, input, now, &mut tx)
                                .map(|id| (id, Some(false)))
                        }
                        None => guard
                            .insert(&def, input, now, &mut tx)
                            .map(|id| (id, Some(true))),
                    },
                }
            }
        };
        match result {
            Ok((id, was_created)) => {
                written.push((
                    def.clone(),
                    Written {
                        id: id.clone(),
                        met_before,
                    },
                ));
                outcomes.push(Outcome {
                    id: Some(id),
                    created: was_created,
                    error: None,
                });
            }
            Err(WriteError::Request {
                error_code,
                message,
            }) => {
                guard.rollback(tx);
                return api_error(StatusCode::BAD_REQUEST, error_code, &message);
            }
            Err(WriteError::Record(error)) => outcomes.push(Outcome {
                id: given_id.filter(|_| op != CollectionOp::Create),
                created: None,
                error: Some(error),
            }),
        }
    }
    let failed = outcomes.iter().any(|o| o.error.is_some());
    if parsed.all_or_none && failed {
        guard.rollback(tx);
        written.clear();
        for outcome in &mut outcomes {
            if outcome.error.is_none() {
                outcome.error = Some(dml(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                ));
                outcome.created = None;
                if op != CollectionOp::Update {
                    outcome.id = None;
                }
            }
        }
    }
    drop(guard);
    // Grouped by object (a collection may mix them): one flow run per object, as on the platform.
    let mut by_object: Vec<(Arc<ObjectDef>, Vec<Written>)> = Vec::new();
    for (def, write) in written {
        match by_object
            .iter_mut()
            .find(|(known, _)| Arc::ptr_eq(known, &def))
        {
            Some((_, writes)) => writes.push(write),
            None => by_object.push((def, vec![write])),
        }
    }
    for (def, writes) in &by_object {
        after_commit(org, def, writes);
    }
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|o| {
            let mut entry = Map::new();
            if let Some(id) = o.id {
                entry.insert("id".into(), Value::String(id));
            }
            entry.insert("success".into(), Value::Bool(o.error.is_none()));
            entry.insert(
                "errors".into(),
                Value::Array(o.error.iter().map(DmlError::to_json).collect()),
            );
            if let Some(created) = o.created {
                entry.insert("created".into(), Value::Bool(created));
            }
            Value::Object(entry)
        })
        .collect();
    Json(results).into_response()
}

fn dml(status_code: &'static str, message: &str) -> DmlError {
    DmlError {
        status_code,
        message: message.to_string(),
        fields: Vec::new(),
    }
}
