//! The Composite API (`POST composite`): up to [`MAX_COMPOSITE_BATCHES`] collections or query
//! subrequests in one request, which Salesforce counts as **one** API call — up to 1,000 records
//! written, or 1,000 records read by Id, per call. This is what takes the write-back and the
//! event fetch from about 0.01 to under 0.005 calls per message.
//!
//! `allOrNone` is always false: each subrequest succeeds or fails on its own, and its answer is
//! read exactly as the standalone request's would be — a collections subrequest answering 200
//! carries one [`RecordResult`] per record; one refused as a whole (`httpStatusCode` ≥ 400 and the
//! usual `[{"errorCode","message"}]` body) becomes the same [`SalesforceError`] the standalone call
//! would have returned ([`super::client::refusal`]). A composite request failing as a whole (an
//! outage, an expired session, the daily limit) fails like any other call, through the same
//! request loop (re-login once, `Sforce-Limit-Info`).

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{error_parts, parse, refusal, QueryPage, SalesforceClient};
use super::collections::{
    results_of, CollectionBody, CollectionWrite, RecordResult, MAX_COLLECTION_RECORDS,
};
use super::error::SalesforceError;

/// The most sObject Collections or query subrequests one composite request may carry (of its 25
/// subrequests).
pub const MAX_COMPOSITE_BATCHES: usize = 5;

/// What became of each subrequest of a composite call, in the order they were given.
pub type SubResults<T> = Vec<Result<T, SalesforceError>>;

/// `{"compositeResponse":[{"body":…,"httpHeaders":{},"httpStatusCode":200,"referenceId":"c0"},…]}`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompositeAnswer {
    composite_response: Vec<SubAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubAnswer {
    #[serde(default)]
    body: Value,
    http_status_code: u16,
    reference_id: String,
}

/// One subrequest: method, path under `/services/data/vNN.N/` (with its query string), and the
/// records of a collections write (borrowed: the request is written from them).
struct Subrequest<'a> {
    method: Method,
    path: String,
    body: Option<CollectionBody<'a>>,
}

/// `{"allOrNone":false,"compositeRequest":[…]}`
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompositeRequest<'a> {
    all_or_none: bool,
    composite_request: Vec<SubrequestJson<'a>>,
}

/// `{"method":…,"url":"/services/data/vNN.N/…","referenceId":"c0","body":…}`
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubrequestJson<'a> {
    method: String,
    url: String,
    reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<CollectionBody<'a>>,
}

impl SalesforceClient {
    /// Sends up to [`MAX_COMPOSITE_BATCHES`] collection writes of ≤ 200 records each in one
    /// composite call. `Err` when the call failed as a whole (nothing is known to be written);
    /// otherwise each write's own results, as [`write`](Self::write) would return them.
    #[tracing::instrument(skip_all, fields(writes = writes.len()))]
    pub async fn write_composite(
        &self,
        writes: Vec<CollectionWrite>,
    ) -> Result<SubResults<Vec<RecordResult>>, SalesforceError> {
        if let Some(write) = writes.iter().find(|w| w.len() > MAX_COLLECTION_RECORDS) {
            // What Salesforce answers for the subrequest; refused here without spending a call.
            return Err(SalesforceError::Api {
                status: 400,
                error_code: "EXCEEDED_ID_LIMIT".into(),
                message: format!("{} records in one collection", write.len()),
            });
        }
        let sent: Vec<usize> = writes.iter().map(CollectionWrite::len).collect();
        // The request is written from the records' JSON: up to 1,000 records, not copied.
        let subrequests = writes
            .iter()
            .map(|write| Subrequest {
                method: write.method.clone(),
                path: write.path.clone(),
                body: Some(CollectionBody::of(&write.records)),
            })
            .collect();
        let answers = self.composite(subrequests).await?;
        let results = answers
            .into_iter()
            .zip(sent)
            .map(|(answer, sent)| {
                let results: Vec<RecordResult> = from_body(answer?, "collection results")?;
                results_of(results, sent)
            })
            .collect();
        Ok(results)
    }

    /// Runs several SOQL queries, up to [`MAX_COMPOSITE_BATCHES`] per composite call (a single
    /// one goes as a plain query), following each one's `nextRecordsUrl`; all their records, in
    /// order. Fails if any query fails, as one query would.
    #[tracing::instrument(skip_all, fields(queries = soqls.len(), records))]
    pub async fn query_many<T: DeserializeOwned>(
        &self,
        soqls: &[String],
    ) -> Result<Vec<T>, SalesforceError> {
        let mut records = Vec::new();
        for chunk in soqls.chunks(MAX_COMPOSITE_BATCHES) {
            if let [soql] = chunk {
                records.extend(self.query::<T>(soql).await?);
                continue;
            }
            let subrequests = chunk
                .iter()
                .map(|soql| Subrequest {
                    method: Method::GET,
                    path: query_path(soql),
                    body: None,
                })
                .collect();
            for answer in self.composite(subrequests).await? {
                let page: QueryPage<T> = from_body(answer?, "query page")?;
                records.extend(self.follow_pages(page).await?.0);
            }
        }
        tracing::Span::current().record("records", records.len());
        Ok(records)
    }

    /// One `POST composite` with `allOrNone: false`: each subrequest's 2xx body, or the error its
    /// status and body stand for, in the order given (matched by `referenceId`).
    async fn composite(
        &self,
        subrequests: Vec<Subrequest<'_>>,
    ) -> Result<SubResults<Value>, SalesforceError> {
        let version = self.api_version();
        let composite_request: Vec<SubrequestJson> = subrequests
            .into_iter()
            .enumerate()
            .map(|(n, sub)| SubrequestJson {
                method: sub.method.as_str().to_owned(),
                url: format!("/services/data/v{version}/{}", sub.path),
                reference_id: reference_id(n),
                body: sub.body,
            })
            .collect();
        let count = composite_request.len();
        let body = CompositeRequest {
            all_or_none: false,
            composite_request,
        };
        let answer = self.send_json(Method::POST, "composite", &body).await?;
        let mut answer: CompositeAnswer = parse(&answer, "composite response")?;
        Ok((0..count)
            .map(|n| {
                let reference = reference_id(n);
                let position = answer
                    .composite_response
                    .iter()
                    .position(|sub| sub.reference_id == reference)
                    .ok_or_else(|| {
                        SalesforceError::BadResponse(format!(
                            "no answer for subrequest {reference}"
                        ))
                    })?;
                sub_result(answer.composite_response.swap_remove(position))
            })
            .collect())
    }
}

/// `c0`, `c1`…: a reference id must start with a letter.
fn reference_id(n: usize) -> String {
    format!("c{n}")
}

/// `query?q=<SOQL, form-encoded>`, as the subrequest's `url` wants it.
fn query_path(soql: &str) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", soql)
        .finish();
    format!("query?{encoded}")
}

/// A subrequest's body, or what its refusal means — read exactly as a standalone answer is.
fn sub_result(answer: SubAnswer) -> Result<Value, SalesforceError> {
    let status = StatusCode::from_u16(answer.http_status_code).map_err(|_| {
        SalesforceError::BadResponse(format!(
            "subrequest status {} is not an HTTP status",
            answer.http_status_code
        ))
    })?;
    if status.is_success() {
        return Ok(answer.body);
    }
    let bytes = serde_json::to_vec(&answer.body).unwrap_or_default();
    let (error_code, message) = error_parts(&bytes);
    if status == StatusCode::UNAUTHORIZED {
        // The composite request itself was accepted, so the session is fine; a subrequest
        // refused for its session is not something a second login would change.
        return Err(SalesforceError::auth("INVALID_SESSION_ID", &message));
    }
    Err(refusal(status, error_code, message))
}

fn from_body<T: DeserializeOwned>(body: Value, what: &str) -> Result<T, SalesforceError> {
    serde_json::from_value(body)
        .map_err(|e| SalesforceError::BadResponse(format!("unexpected {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: Value) -> SubAnswer {
        SubAnswer {
            body,
            http_status_code: status,
            reference_id: "c0".into(),
        }
    }

    #[test]
    fn a_subrequest_refused_for_its_data_reads_as_the_standalone_call_would() {
        let refused = answer(
            400,
            json!([{"message": "Cannot deserialize instance of datetime", "errorCode": "JSON_PARSER_ERROR"}]),
        );

        let error = sub_result(refused).unwrap_err();

        assert_eq!(
            error,
            SalesforceError::Api {
                status: 400,
                error_code: "JSON_PARSER_ERROR".into(),
                message: "Cannot deserialize instance of datetime".into(),
            }
        );
    }

    #[test]
    fn a_subrequest_failing_on_the_server_is_transient_and_a_success_is_its_body() {
        let failed = answer(
            503,
            json!([{"message": "later", "errorCode": "SERVER_UNAVAILABLE"}]),
        );
        let written = answer(200, json!([{"id": "a01", "success": true, "errors": []}]));

        assert!(sub_result(failed).unwrap_err().is_transient());
        assert_eq!(sub_result(written).unwrap()[0]["id"], "a01");
    }

    #[test]
    fn a_query_subrequest_carries_its_soql_form_encoded() {
        let path = query_path("SELECT Id FROM X__c WHERE Id IN ('a01')");

        assert_eq!(
            path,
            "query?q=SELECT+Id+FROM+X__c+WHERE+Id+IN+%28%27a01%27%29"
        );
    }
}
