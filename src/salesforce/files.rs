//! Salesforce Files: a customer's file saved as a `ContentVersion` whose
//! `FirstPublishLocationId` is the message record, so it shows in that record's Files related
//! list (Salesforce creates the ContentDocument and its link). One API call per file.
//!
//! The file travels as base64 `VersionData` in a JSON body, which Salesforce accepts up to
//! 37.5 MB of base64 (about 28 MB of file); `media.max_bytes` keeps below that, so the multipart
//! form (needed only for larger files) is not used.

use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::client::{parse, SalesforceClient};
use super::error::SalesforceError;
use crate::domain::sf_id::SfId;

/// The most base64 a JSON ContentVersion body may carry.
pub const MAX_BASE64_BYTES: usize = 37_500_000;

/// `POST sobjects/ContentVersion`'s answer.
#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default)]
    success: bool,
}

impl SalesforceClient {
    /// Saves `bytes` as a File on `record_id`; returns the ContentVersion's Id. `title` is what
    /// reps see; `path_on_client` (a file name with its extension) gives Salesforce the file type.
    /// Not idempotent: a lost answer may leave a File that a retry duplicates.
    #[tracing::instrument(skip_all, fields(record_id = %record_id, bytes = bytes.len()))]
    pub async fn create_file(
        &self,
        record_id: &SfId,
        title: &str,
        path_on_client: &str,
        bytes: &[u8],
    ) -> Result<String, SalesforceError> {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        if data.len() > MAX_BASE64_BYTES {
            return Err(SalesforceError::Api {
                status: 400,
                error_code: "FILE_TOO_LARGE".into(),
                message: format!(
                    "{} bytes of base64 exceed the {MAX_BASE64_BYTES} a JSON ContentVersion carries",
                    data.len()
                ),
            });
        }
        let body = json!({
            "Title": title,
            "PathOnClient": path_on_client,
            "FirstPublishLocationId": record_id.as_str(),
            "VersionData": data,
        });
        let answer = self
            .send(Method::POST, "sobjects/ContentVersion", &[], Some(&body))
            .await?;
        let created: Created = parse(&answer, "ContentVersion create result")?;
        if !created.success {
            return Err(SalesforceError::BadResponse(
                "ContentVersion create answered success = false".into(),
            ));
        }
        Ok(created.id)
    }
}
