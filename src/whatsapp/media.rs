//! Customers' files from the Cloud API: what a media id is ([`WhatsAppClient::media_info`]:
//! `GET /{version}/{media_id}` → `{url, mime_type, sha256, file_size, id}`) and its bytes
//! ([`WhatsAppClient::download`] from that `url`, which needs the same bearer token and expires
//! within minutes — so the two calls go together, and neither the url nor the token is ever logged).
//!
//! The download is read chunk by chunk and stops as soon as it passes the size the caller allows
//! (a server that lied about `file_size` cannot make sfwa hold more), then is checked against
//! Meta's sha256. Inbound media ids expire 7 days after the message: Meta then answers code 100
//! ("… does not exist …"), which [`MediaError::is_gone`] recognises.

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::client::describe;
use super::error::MetaError;
use super::WhatsAppClient;

/// A whole download may take this long (a 25 MB file over a slow link); the info call keeps
/// `whatsapp.timeout`.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Graph's code for an object that does not exist (or no longer: an expired media id).
const UNKNOWN_OBJECT: i64 = 100;

/// `GET /{version}/{media_id}`'s answer.
#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct MediaInfo {
    /// Short-lived and secret (it grants the file to anyone with the token): not in `Debug`.
    pub url: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Hex sha256 of the file, as Meta computed it.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Bytes, as Meta reports them (a number or a numeric string).
    #[serde(default, deserialize_with = "number_or_string")]
    pub file_size: Option<u64>,
    #[serde(default)]
    pub id: String,
}

impl std::fmt::Debug for MediaInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaInfo")
            .field("url", &"<redacted>")
            .field("mime_type", &self.mime_type)
            .field("sha256", &self.sha256)
            .field("file_size", &self.file_size)
            .field("id", &self.id)
            .finish()
    }
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<Size>::deserialize(d)? {
        Some(Size::Number(n)) => Some(n),
        Some(Size::Text(text)) => text.trim().parse().ok(),
        None => None,
    })
}

/// Why a file could not be had. [`MediaError::is_gone`] and [`MediaError::TooLarge`] are final;
/// the rest may pass (retry with back-off).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Meta answered with an error body.
    #[error("WhatsApp refused the media request: {0}")]
    Meta(Box<MetaError>),
    /// No answer, or an answer cut off.
    #[error("no answer from WhatsApp for the media: {0}")]
    Unavailable(String),
    /// The file is larger than allowed (`got` is at least that many bytes).
    #[error("the file is larger than {limit} bytes (at least {got})")]
    TooLarge { limit: u64, got: u64 },
    /// The bytes are not what Meta described (sha256 or size), or the answer is unreadable.
    #[error("the media answer is not usable: {0}")]
    Corrupt(String),
}

impl MediaError {
    /// Meta no longer has (or never had) this media id: inbound ids expire after 7 days.
    pub fn is_gone(&self) -> bool {
        matches!(self, MediaError::Meta(error) if error.code == UNKNOWN_OBJECT)
    }
}

/// A downloaded file.
#[derive(Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    /// The answer's `Content-Type`, if any.
    pub content_type: Option<String>,
}

impl std::fmt::Debug for Downloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloaded")
            .field("bytes", &self.bytes.len())
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl WhatsAppClient {
    /// `GET /{version}/{media_id}`: where the file is (for minutes), its type, hash and size.
    #[tracing::instrument(skip_all, fields(media_id = %media_id))]
    pub async fn media_info(&self, media_id: &str) -> Result<MediaInfo, MediaError> {
        let (http, config) = self.parts();
        let response = http
            .get(self.url(media_id))
            .bearer_auth(&config.access_token)
            .timeout(config.timeout)
            .send()
            .await
            .map_err(|e| MediaError::Unavailable(describe(e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| MediaError::Unavailable(describe(e)))?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| MediaError::Corrupt(format!("HTTP {status}: {e}")))
    }

    /// Downloads `info.url` with the token, at most `max_bytes`, and checks Meta's sha256.
    #[tracing::instrument(skip_all, fields(media_id = %info.id, bytes))]
    pub async fn download(
        &self,
        info: &MediaInfo,
        max_bytes: u64,
    ) -> Result<Downloaded, MediaError> {
        if let Some(size) = info.file_size.filter(|size| *size > max_bytes) {
            return Err(MediaError::TooLarge {
                limit: max_bytes,
                got: size,
            });
        }
        let (http, config) = self.parts();
        let mut response = http
            .get(&info.url)
            .bearer_auth(&config.access_token)
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .await
            .map_err(|e| MediaError::Unavailable(describe(e)))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = response.bytes().await.unwrap_or_default();
            return Err(refusal(status, &body));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut bytes = Vec::new();
        let mut hash = Sha256::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| MediaError::Unavailable(describe(e)))?
        {
            let got = (bytes.len() + chunk.len()) as u64;
            if got > max_bytes {
                return Err(MediaError::TooLarge {
                    limit: max_bytes,
                    got,
                });
            }
            hash.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        tracing::Span::current().record("bytes", bytes.len());
        verify(info, &bytes, &hex::encode(hash.finalize()))?;
        Ok(Downloaded {
            bytes,
            content_type,
        })
    }
}

/// Meta's error for a non-2xx answer, or a plain refusal (a 5xx page from a proxy may pass).
fn refusal(status: u16, body: &[u8]) -> MediaError {
    match MetaError::from_body(status, body) {
        Some(error) => MediaError::Meta(Box::new(error)),
        None if status >= 500 || status == 429 => MediaError::Unavailable(format!("HTTP {status}")),
        None => MediaError::Corrupt(format!("HTTP {status} without Meta's error body")),
    }
}

/// The bytes are what Meta described: its sha256 (hex, any case) and its size, when it gave them.
fn verify(info: &MediaInfo, bytes: &[u8], sha256_hex: &str) -> Result<(), MediaError> {
    if let Some(expected) = &info.sha256 {
        if !expected.trim().eq_ignore_ascii_case(sha256_hex) {
            return Err(MediaError::Corrupt(format!(
                "sha256 {sha256_hex} is not Meta's {}",
                expected.trim()
            )));
        }
    }
    if let Some(size) = info.file_size {
        if size != bytes.len() as u64 {
            return Err(MediaError::Corrupt(format!(
                "{} bytes, Meta said {size}",
                bytes.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sha256: Option<&str>, file_size: Option<u64>) -> MediaInfo {
        MediaInfo {
            url: "https://lookaside.example/secret?hash=x".into(),
            mime_type: Some("image/jpeg".into()),
            sha256: sha256.map(String::from),
            file_size,
            id: "1234".into(),
        }
    }

    #[test]
    fn metas_answer_is_read_with_a_size_given_as_a_number_or_as_text() {
        let as_number: MediaInfo = serde_json::from_str(
            r#"{"messaging_product":"whatsapp","url":"u","mime_type":"image/jpeg","sha256":"ab","file_size":303833,"id":"1"}"#,
        )
        .unwrap();
        let as_text: MediaInfo =
            serde_json::from_str(r#"{"url":"u","file_size":"303833","id":"1"}"#).unwrap();

        assert_eq!(as_number.file_size, Some(303_833));
        assert_eq!(as_text.file_size, Some(303_833));
    }

    #[test]
    fn the_signed_url_never_shows_in_debug_output() {
        let text = format!("{:?}", info(None, None));

        assert!(!text.contains("lookaside"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn bytes_whose_sha256_or_size_differ_from_metas_are_refused() {
        let bytes = b"hello";
        let hash = hex::encode(Sha256::digest(bytes));

        assert!(verify(&info(Some(&hash.to_uppercase()), Some(5)), bytes, &hash).is_ok());
        assert!(verify(&info(None, None), bytes, &hash).is_ok());
        assert!(matches!(
            verify(&info(Some("00"), None), bytes, &hash),
            Err(MediaError::Corrupt(_))
        ));
        assert!(matches!(
            verify(&info(None, Some(6)), bytes, &hash),
            Err(MediaError::Corrupt(_))
        ));
    }

    #[test]
    fn an_unknown_object_is_gone_and_a_server_error_may_pass() {
        let gone = refusal(
            400,
            br#"{"error":{"message":"Unsupported get request. Object with ID '1' does not exist","type":"GraphMethodException","code":100,"error_subcode":33}}"#,
        );
        let outage = refusal(502, b"<html>bad gateway</html>");

        assert!(gone.is_gone());
        assert!(matches!(outage, MediaError::Unavailable(_)));
        assert!(!outage.is_gone());
    }
}
