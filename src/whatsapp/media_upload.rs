//! Uploading a business's file to the Cloud API: `POST /{version}/{phone_number_id}/media`, a
//! multipart form with `messaging_product=whatsapp`, `type` (the MIME type) and `file` →
//! `{"id": "<media id>"}` ([`WhatsAppClient::upload_media`]). A message then sends the file by
//! that id (`"document": {"id": …}`), so Meta never needs a public link to it. Uploaded ids live
//! 30 days.
//!
//! An upload is not a message: repeating one (after a lost answer, a crash) costs an upload and
//! leaves an unused id at Meta, never a message the customer sees twice. So its failures come back
//! as [`SendError`]s for [`crate::pipeline::media_upload`] to classify by Meta's code, and a lost
//! answer is simply tried again.

use serde::Deserialize;

use super::client::{successful_body, transport_error, SendError};
use super::media::DOWNLOAD_TIMEOUT;
use super::WhatsAppClient;

/// A file to upload.
#[derive(Clone, PartialEq, Eq)]
pub struct Upload {
    /// Shared, not copied: a document may be 100 MB.
    pub bytes: bytes::Bytes,
    /// What Meta is told the file is (`application/pdf`, `image/jpeg`, …): the `type` field and
    /// the part's `Content-Type`.
    pub mime_type: String,
    /// The part's file name (Meta keeps it for documents sent without a `filename`).
    pub file_name: String,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("bytes", &self.bytes.len())
            .field("mime_type", &self.mime_type)
            .field("file_name", &self.file_name)
            .finish()
    }
}

#[derive(Deserialize)]
struct Uploaded {
    id: String,
}

impl WhatsAppClient {
    /// `POST /{version}/{phone_number_id}/media`: the media id Meta gives `upload`. A whole
    /// upload may take [`DOWNLOAD_TIMEOUT`] (a 100 MB document over a slow link); the token goes
    /// in the Authorization header only.
    #[tracing::instrument(skip_all, fields(phone_number_id = %phone_number_id, bytes = upload.bytes.len(), media_id))]
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        upload: Upload,
    ) -> Result<String, SendError> {
        let (http, config) = self.parts();
        let length = upload.bytes.len() as u64;
        let file = reqwest::multipart::Part::stream_with_length(upload.bytes, length)
            .file_name(upload.file_name)
            .mime_str(&upload.mime_type)
            .map_err(|e| SendError::NotSent(format!("unusable MIME type: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", upload.mime_type)
            .part("file", file);
        let response = http
            .post(self.url(&format!("{phone_number_id}/media")))
            .bearer_auth(&config.access_token)
            .timeout(DOWNLOAD_TIMEOUT)
            .multipart(form)
            .send()
            .await
            .map_err(transport_error)?;
        let (status, body) = successful_body(response).await?;
        let uploaded: Uploaded = serde_json::from_slice(&body)
            .map_err(|e| SendError::BadResponse(format!("HTTP {status}: {e}")))?;
        let id = uploaded.id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SendError::BadResponse(format!(
                "HTTP {status}: the media id is not one"
            )));
        }
        tracing::Span::current().record("media_id", id);
        Ok(id.to_string())
    }
}
