//! sObject Collections: create, update and upsert up to 200 records per API call, which is what
//! keeps sfwa under 0.015 calls per message (write-backs and inbound records are batched).
//!
//! A collection call that works answers 200 even when records fail: each record gets its own
//! result, in input order, and each failure a [`Disposition`] saying what to do with the record.
//! `allOrNone` is always false, so one bad record never holds back the others.

use reqwest::Method;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::client::{parse, unwritable_body, SalesforceClient};
use super::describe::check_api_name;
use super::error::SalesforceError;

/// The most records one collections request may carry (more is a 400 `EXCEEDED_ID_LIMIT`).
pub const MAX_COLLECTION_RECORDS: usize = 200;

/// What happened to one record.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RecordResult {
    /// The record's Id (absent when a create or upsert failed).
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    /// Upserts only: whether the record was inserted (true) or updated (false).
    #[serde(default)]
    pub created: Option<bool>,
    #[serde(default)]
    pub errors: Vec<RecordError>,
}

impl RecordResult {
    /// `None` for a success; otherwise the disposition of the record's errors, a dead record
    /// first (nothing else matters), then anything an admin must fix, then retries.
    pub fn disposition(&self) -> Option<Disposition> {
        if self.success {
            return None;
        }
        let dispositions: Vec<Disposition> =
            self.errors.iter().map(RecordError::disposition).collect();
        [Disposition::Drop, Disposition::Surface, Disposition::Retry]
            .into_iter()
            .find(|d| dispositions.contains(d))
            // A failure without errors is not something Salesforce sends; try again rather than
            // lose the write.
            .or(Some(Disposition::Retry))
    }
}

/// One per-record error (`statusCode`, unlike top-level errors' `errorCode`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RecordError {
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// What to do with a record Salesforce did not write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Transient (row lock, rolled back with another record): write it again in a later batch.
    Retry,
    /// The record is gone (deleted, or its Id names nothing): stop writing to it.
    Drop,
    /// Salesforce refuses the value for good (field too long, picklist value missing, field not
    /// deployed, a value it cannot store…): retrying as is fails the same way, so the write-back
    /// becomes a dead letter. Whether an admin must fix the org or the value itself is at fault
    /// is [`RecordError::blame`].
    Surface,
}

/// Who has to act when Salesforce refuses a value for good; it decides what the log line and the
/// dead letter tell the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The value itself cannot be stored (a timestamp Salesforce cannot parse or is out of its
    /// range, an over-long wamid, a callback that is not one of our Ids): it came from one webhook,
    /// and nothing in the org or the package is wrong.
    Data,
    /// The org or the package refuses it (a field not deployed or not writable, a picklist value
    /// missing, a validation rule, access): an admin must fix that, then retry.
    Org,
}

/// Who must act on a refusal with this error code (`statusCode` or `errorCode`). A lookup error
/// naming a field (`fields` non-empty) means the value pointed at no record of ours.
pub fn blame(code: &str, has_fields: bool) -> Blame {
    match code {
        "JSON_PARSER_ERROR"
        | "INVALID_TYPE_ON_FIELD_IN_RECORD"
        | "FIELD_INTEGRITY_EXCEPTION"
        | "NUMBER_OUTSIDE_VALID_RANGE"
        | "STRING_TOO_LONG"
        | "MALFORMED_ID"
        | "INVALID_ID_FIELD" => Blame::Data,
        "INVALID_CROSS_REFERENCE_KEY" | "ENTITY_IS_DELETED" if has_fields => Blame::Data,
        _ => Blame::Org,
    }
}

/// How to treat a collections call Salesforce refused as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRefusal {
    /// 400: something in the body cannot be read or stored (JSON_PARSER_ERROR for a datetime it
    /// cannot parse, INVALID_FIELD, MALFORMED_ID, STRING_TOO_LONG…). Some record in the call is at
    /// fault, not Salesforce: the writer splits the call to find it.
    Data,
    /// Another 4xx (403 without the limit, 404 for a missing object or external id field): the
    /// org refuses every call of this shape; an admin must act, and the items wait.
    Org,
    /// Outage, 5xx, timeout, unreadable answer, limit exceeded, credentials: try the same call
    /// later, nothing is wrong with it.
    Transient,
}

impl CallRefusal {
    pub fn of(error: &SalesforceError) -> CallRefusal {
        match error {
            SalesforceError::Api { status: 400, .. } => CallRefusal::Data,
            SalesforceError::Api { .. } => CallRefusal::Org,
            _ => CallRefusal::Transient,
        }
    }
}

impl RecordError {
    /// Who must act if this error is final (see [`blame`]).
    pub fn blame(&self) -> Blame {
        blame(&self.status_code, !self.fields.is_empty())
    }

    pub fn disposition(&self) -> Disposition {
        match self.status_code.as_str() {
            "UNABLE_TO_LOCK_ROW" | "ALL_OR_NONE_OPERATION_ROLLED_BACK" => Disposition::Retry,
            // With no fields the error is about the record itself; with fields it is a lookup on
            // the record pointing at a deleted or missing record, which the data must fix.
            "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" if self.fields.is_empty() => {
                Disposition::Drop
            }
            _ => Disposition::Surface,
        }
    }
}

/// One collections request's worth of writes, built and checked once: the method, the path
/// under `/services/data/vNN.N/` and the record bodies. Sent on its own
/// ([`SalesforceClient::write`]) or as one subrequest of a composite call
/// ([`SalesforceClient::write_composite`](super::composite)).
///
/// Each record is held as the JSON text it is sent as (one allocation of a few hundred bytes),
/// written from the caller's fields without copying them: a flush of 1,000 records held them
/// twice as `Value` trees before (≈ 2.5 MB of a 100 k backlog's peak, docs/performance.md).
#[derive(Clone, Debug)]
pub struct CollectionWrite {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) records: Vec<Box<RawValue>>,
}

impl CollectionWrite {
    /// Updates by Id (`PATCH composite/sobjects`): each record is its Id and the fields to set;
    /// `attributes.type` and `id` are added here.
    pub fn update<'a>(
        object: &str,
        records: impl IntoIterator<Item = (&'a str, &'a Map<String, Value>)>,
    ) -> Result<CollectionWrite, SalesforceError> {
        check_api_name(object)?;
        Ok(CollectionWrite {
            method: Method::PATCH,
            path: "composite/sobjects".into(),
            records: records
                .into_iter()
                .map(|(id, fields)| record_body(object, Some(id), fields))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Creates (`POST composite/sobjects`).
    pub fn create(
        object: &str,
        records: &[Map<String, Value>],
    ) -> Result<CollectionWrite, SalesforceError> {
        check_api_name(object)?;
        Ok(CollectionWrite {
            method: Method::POST,
            path: "composite/sobjects".into(),
            records: records
                .iter()
                .map(|fields| record_body(object, None, fields))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Inserts or updates by external id (`PATCH composite/sobjects/{object}/{field}`); each
    /// record must carry the external id field.
    pub fn upsert<'a>(
        object: &str,
        external_id_field: &str,
        records: impl IntoIterator<Item = &'a Map<String, Value>>,
    ) -> Result<CollectionWrite, SalesforceError> {
        check_api_name(object)?;
        check_api_name(external_id_field)?;
        Ok(CollectionWrite {
            method: Method::PATCH,
            path: format!("composite/sobjects/{object}/{external_id_field}"),
            records: records
                .into_iter()
                .map(|fields| record_body(object, None, fields))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The request body of up to 200 records: `{"allOrNone":false,"records":[…]}`, written from
/// the records' JSON as it is (a composite subrequest's `body` is the same).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CollectionBody<'a> {
    all_or_none: bool,
    records: &'a [Box<RawValue>],
}

impl<'a> CollectionBody<'a> {
    pub(crate) fn of(records: &'a [Box<RawValue>]) -> CollectionBody<'a> {
        CollectionBody {
            all_or_none: false,
            records,
        }
    }
}

/// The results of one collections request: one per record sent, in order, or an unreadable
/// answer.
pub(crate) fn results_of(
    results: Vec<RecordResult>,
    sent: usize,
) -> Result<Vec<RecordResult>, SalesforceError> {
    if results.len() != sent {
        return Err(SalesforceError::BadResponse(format!(
            "{} results for {sent} records",
            results.len(),
        )));
    }
    Ok(results)
}

impl SalesforceClient {
    /// Updates records by Id (`PATCH composite/sobjects`), ≤ 200 per call; one result per record,
    /// in input order. Each record is its Id and the fields to set; `attributes.type` and `id` are
    /// added here.
    ///
    /// If a later chunk fails as a whole, the call fails and earlier chunks stay written; updates
    /// are idempotent, so retrying the whole call is safe.
    #[tracing::instrument(skip_all, fields(object = %object, records = records.len()))]
    pub async fn update(
        &self,
        object: &str,
        records: &[(String, Map<String, Value>)],
    ) -> Result<Vec<RecordResult>, SalesforceError> {
        let records = records.iter().map(|(id, fields)| (id.as_str(), fields));
        self.write(&CollectionWrite::update(object, records)?).await
    }

    /// Creates records (`POST composite/sobjects`), ≤ 200 per call; results in input order.
    ///
    /// Not idempotent: if a later chunk fails (or an answer is lost), earlier records exist. Where
    /// duplicates matter, [`upsert`](Self::upsert) by an external id instead.
    #[tracing::instrument(skip_all, fields(object = %object, records = records.len()))]
    pub async fn create(
        &self,
        object: &str,
        records: &[Map<String, Value>],
    ) -> Result<Vec<RecordResult>, SalesforceError> {
        self.write(&CollectionWrite::create(object, records)?).await
    }

    /// Inserts or updates by external id (`PATCH composite/sobjects/{object}/{field}`), ≤ 200 per
    /// call; each record must carry the external id field. Results carry `created`.
    #[tracing::instrument(skip_all, fields(object = %object, external_id_field = %external_id_field, records = records.len()))]
    pub async fn upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Map<String, Value>],
    ) -> Result<Vec<RecordResult>, SalesforceError> {
        self.write(&CollectionWrite::upsert(
            object,
            external_id_field,
            records,
        )?)
        .await
    }

    /// Sends `write` as collections requests of ≤ 200 records each (one call per 200); one
    /// result per record, in order. A chunk failing as a whole fails the call (earlier chunks
    /// stay written).
    pub async fn write(
        &self,
        write: &CollectionWrite,
    ) -> Result<Vec<RecordResult>, SalesforceError> {
        let mut results = Vec::with_capacity(write.len());
        for chunk in write.records.chunks(MAX_COLLECTION_RECORDS) {
            let body = CollectionBody::of(chunk);
            let answer = self
                .send_json(write.method.clone(), &write.path, &body)
                .await?;
            let chunk_results: Vec<RecordResult> = parse(&answer, "collection results")?;
            results.extend(results_of(chunk_results, chunk.len())?);
        }
        let failed = results.iter().filter(|r| !r.success).count();
        if failed > 0 {
            tracing::info!(failed, "some records were not written");
        }
        Ok(results)
    }
}

/// `{"attributes":{"type":…},"id":…,<fields>}` as JSON text; the caller's own `attributes`/`id`
/// are replaced.
fn record_body(
    object: &str,
    id: Option<&str>,
    fields: &Map<String, Value>,
) -> Result<Box<RawValue>, SalesforceError> {
    // Written straight into the raw value: no second pass to check what was just written.
    serde_json::value::to_raw_value(&RecordBody { object, id, fields }).map_err(unwritable_body)
}

/// A record as a collections request carries it, borrowing the caller's fields.
struct RecordBody<'a> {
    object: &'a str,
    id: Option<&'a str>,
    fields: &'a Map<String, Value>,
}

impl Serialize for RecordBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut record = serializer.serialize_map(None)?;
        record.serialize_entry(
            "attributes",
            &Attributes {
                r#type: self.object,
            },
        )?;
        if let Some(id) = self.id {
            record.serialize_entry("id", id)?;
        }
        for (name, value) in self.fields {
            let reserved =
                name == "attributes" || (self.id.is_some() && name.eq_ignore_ascii_case("id"));
            if !reserved {
                record.serialize_entry(name, value)?;
            }
        }
        record.end()
    }
}

#[derive(Serialize)]
struct Attributes<'a> {
    r#type: &'a str,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(code: &str, fields: &[&str]) -> RecordError {
        RecordError {
            status_code: code.into(),
            message: String::new(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn deleted_record_is_dropped_but_a_deleted_lookup_is_surfaced() {
        assert_eq!(
            error("ENTITY_IS_DELETED", &[]).disposition(),
            Disposition::Drop
        );
        assert_eq!(
            error("ENTITY_IS_DELETED", &["Contact__c"]).disposition(),
            Disposition::Surface
        );
        assert_eq!(
            error("INVALID_CROSS_REFERENCE_KEY", &[]).disposition(),
            Disposition::Drop
        );
    }

    #[test]
    fn row_locks_and_rollbacks_are_retried() {
        assert_eq!(
            error("UNABLE_TO_LOCK_ROW", &[]).disposition(),
            Disposition::Retry
        );
        assert_eq!(
            error("ALL_OR_NONE_OPERATION_ROLLED_BACK", &[]).disposition(),
            Disposition::Retry
        );
    }

    #[test]
    fn field_errors_are_surfaced() {
        for code in [
            "STRING_TOO_LONG",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "INVALID_FIELD",
            "MALFORMED_ID",
            "REQUIRED_FIELD_MISSING",
            "DUPLICATE_VALUE",
        ] {
            assert_eq!(
                error(code, &["Status__c"]).disposition(),
                Disposition::Surface
            );
        }
    }

    #[test]
    fn values_from_a_webhook_are_blamed_on_the_data_and_missing_setup_on_the_org() {
        for code in ["JSON_PARSER_ERROR", "STRING_TOO_LONG", "MALFORMED_ID"] {
            assert_eq!(error(code, &["Sent_At__c"]).blame(), Blame::Data, "{code}");
        }
        assert_eq!(
            error("INVALID_CROSS_REFERENCE_KEY", &["Contact__c"]).blame(),
            Blame::Data
        );
        for code in [
            "INVALID_FIELD",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
            "REQUIRED_FIELD_MISSING",
        ] {
            assert_eq!(error(code, &["Status__c"]).blame(), Blame::Org, "{code}");
        }
    }

    #[test]
    fn a_whole_call_refused_with_400_is_about_its_data_and_a_5xx_is_transient() {
        let api = |status| SalesforceError::Api {
            status,
            error_code: "X".into(),
            message: String::new(),
        };
        assert_eq!(CallRefusal::of(&api(400)), CallRefusal::Data);
        assert_eq!(CallRefusal::of(&api(404)), CallRefusal::Org);
        assert_eq!(
            CallRefusal::of(&SalesforceError::Unavailable("503".into())),
            CallRefusal::Transient
        );
        assert_eq!(
            CallRefusal::of(&SalesforceError::LimitExceeded),
            CallRefusal::Transient
        );
    }

    #[test]
    fn update_body_puts_type_and_id_first_and_ignores_caller_ids() {
        let mut fields = Map::new();
        fields.insert("Id".into(), json!("other"));
        fields.insert("Status__c".into(), json!("Sent"));
        let body = record_body("WhatsApp_Message__c", Some("a01"), &fields).unwrap();
        assert_eq!(
            body.get(),
            r#"{"attributes":{"type":"WhatsApp_Message__c"},"id":"a01","Status__c":"Sent"}"#
        );
    }
}
