//! Reading a Salesforce File a rep picked, to send it on WhatsApp (`pipeline::media_upload`):
//! which version it is ([`SalesforceClient::content_version`]: one SOQL query on
//! `ContentVersion`, by its Id (068…) or, for a ContentDocument Id (069…), its latest version)
//! and its bytes ([`SalesforceClient::version_data`]: `GET sobjects/ContentVersion/{Id}/VersionData`,
//! one call). The query tells the size before anything is downloaded, so a file WhatsApp would
//! refuse is never fetched.
//!
//! Sharing applies: the integration user sees only files shared with it (directly, through a
//! library, or through a record it can see the file is linked to). A file it cannot see is simply
//! not returned — the same answer as an Id that does not exist.

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;

use super::client::SalesforceClient;
use super::error::SalesforceError;
use crate::domain::message::SalesforceFile;
use crate::domain::sf_id::SfId;

/// One version of a Salesforce File, as the query returns it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ContentVersionRow {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Title", default)]
    pub title: Option<String>,
    /// Lower case, without the dot (`pdf`), as Salesforce derives it from `PathOnClient`.
    #[serde(rename = "FileExtension", default)]
    pub file_extension: Option<String>,
    /// Salesforce's own name for the type (`PDF`, `PNG`, `WORD_X`, …).
    #[serde(rename = "FileType", default)]
    pub file_type: Option<String>,
    /// Bytes (a number; Salesforce renders it as an integer).
    #[serde(rename = "ContentSize", default)]
    pub content_size: Option<f64>,
    #[serde(rename = "ContentDocumentId", default)]
    pub content_document_id: Option<String>,
}

impl ContentVersionRow {
    /// The size in bytes, when Salesforce said.
    pub fn size(&self) -> Option<u64> {
        self.content_size
            .filter(|size| size.is_finite() && *size >= 0.0)
            .map(|size| size as u64)
    }
}

/// How long the download of a File's bytes may take (100 MB over a slow link), instead of
/// `salesforce.timeout`.
pub const VERSION_DATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The SELECT list of [`SalesforceClient::content_version`].
const FIELDS: &str = "Id, Title, FileExtension, FileType, ContentSize, ContentDocumentId";

/// The query for `file`: the version itself, or the document's latest version. Ids are parsed
/// [`SfId`]s: nothing to escape.
pub fn content_version_query(file: &SalesforceFile) -> String {
    match file {
        SalesforceFile::Version(id) => {
            format!("SELECT {FIELDS} FROM ContentVersion WHERE Id = '{}'", id.as_str())
        }
        SalesforceFile::Document(id) => format!(
            "SELECT {FIELDS} FROM ContentVersion WHERE ContentDocumentId = '{}' AND IsLatest = true",
            id.as_str()
        ),
    }
}

impl SalesforceClient {
    /// The version `file` names (for a document, its latest), or `None` when the Id names no
    /// file the integration user can see. One API call.
    #[tracing::instrument(skip_all, fields(file = %file.id().as_str()))]
    pub async fn content_version(
        &self,
        file: &SalesforceFile,
    ) -> Result<Option<ContentVersionRow>, SalesforceError> {
        let rows: Vec<ContentVersionRow> = self.query(&content_version_query(file)).await?;
        Ok(rows.into_iter().next())
    }

    /// The bytes of ContentVersion `id` (`VersionData`). One API call, given
    /// [`VERSION_DATA_TIMEOUT`] (a 100 MB document); a 404 is an [`SalesforceError::Api`] with
    /// status 404.
    #[tracing::instrument(skip_all, fields(content_version = %id.as_str(), bytes))]
    pub async fn version_data(&self, id: &SfId) -> Result<Bytes, SalesforceError> {
        let path = format!("sobjects/ContentVersion/{}/VersionData", id.as_str());
        let bytes = self
            .send_within(Method::GET, &path, &[], None, VERSION_DATA_TIMEOUT)
            .await?;
        tracing::Span::current().record("bytes", bytes.len());
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_asked_by_its_id_and_a_document_by_its_latest_version() {
        let version = SalesforceFile::parse("068000000000001AAA").unwrap();
        let document = SalesforceFile::parse("069000000000001AAA").unwrap();

        assert_eq!(
            content_version_query(&version),
            "SELECT Id, Title, FileExtension, FileType, ContentSize, ContentDocumentId FROM ContentVersion WHERE Id = '068000000000001AAA'"
        );
        assert!(content_version_query(&document)
            .ends_with("WHERE ContentDocumentId = '069000000000001AAA' AND IsLatest = true"));
    }

    #[test]
    fn a_size_salesforce_renders_as_a_number_is_read_in_bytes() {
        let row: ContentVersionRow = serde_json::from_str(
            r#"{"attributes":{"type":"ContentVersion"},"Id":"068000000000001AAA","Title":"Quote","FileExtension":"pdf","FileType":"PDF","ContentSize":20480,"ContentDocumentId":"069000000000001AAA"}"#,
        )
        .unwrap();

        assert_eq!(row.size(), Some(20_480));
        assert_eq!(row.file_extension.as_deref(), Some("pdf"));
    }
}
