//! A Salesforce File sent on WhatsApp by media id: the step of the send path
//! ([`crate::pipeline::dispatch`]) between the window check and journaling `Sending`, for a media
//! record naming a File in `Media_File_Id__c` instead of a link.
//!
//! [`prepare`] resolves the File (one SOQL query: the ContentVersion, or a ContentDocument's
//! latest version, [`crate::salesforce::content_versions`]), judges it without downloading it
//! ([`judge_file`]: a type WhatsApp sends as that message type, within its size), then uses the
//! media id this business number got for that version in the last 29 days
//! ([`crate::store::uploaded_media`]) or downloads the bytes (`VersionData`) and uploads them
//! ([`crate::whatsapp::WhatsAppClient::upload_media`]); the message then goes as
//! `"document": {"id": …}` like any other.
//!
//! The id is stored as soon as WhatsApp answers the upload, before the send: a retry, a crash
//! between upload and send, or a second message with the same file reuses it. An upload repeated
//! anyway (its answer lost, say) only costs an upload: an upload is not a message, so nothing
//! reaches the customer twice. Refusals name the file and the fix: `MEDIA_FILE_NOT_FOUND` (no such
//! File, or the integration user cannot see it), `MEDIA_TOO_LARGE`, `MEDIA_TYPE_UNSUPPORTED`;
//! Meta's refusal of the upload (131053) fails the record with Meta's words; outages of either
//! side are retried like a send.

use tracing::{info, warn};

use super::dispatch::decide::{decide, retry_or_fail, Next, Policy};
use super::Dispatcher;
use crate::domain::message::{
    MediaKind, MediaSource, MessageKind, OutboundMessage, SalesforceFile,
};
use crate::domain::sf_id::SfId;
use crate::salesforce::content_versions::ContentVersionRow;
use crate::salesforce::error::SalesforceError;
use crate::store::uploaded_media;
use crate::whatsapp::media_upload::Upload;
use crate::whatsapp::{Accepted, Action, SendError};

/// No File with that Id, or none the integration user can see.
pub const MEDIA_FILE_NOT_FOUND: &str = "MEDIA_FILE_NOT_FOUND";
/// Larger than WhatsApp sends as the record's message type.
pub const MEDIA_TOO_LARGE: &str = "MEDIA_TOO_LARGE";
/// A type WhatsApp does not send as the record's message type.
pub const MEDIA_TYPE_UNSUPPORTED: &str = "MEDIA_TYPE_UNSUPPORTED";
/// Salesforce did not answer for the File (retried).
pub const MEDIA_FILE_UNAVAILABLE: &str = "MEDIA_FILE_UNAVAILABLE";

const MB: u64 = 1024 * 1024;

/// WhatsApp's size limit per message type (the Cloud API reference: image 5 MB, audio and video
/// 16 MB, document 100 MB).
pub fn max_bytes(kind: MediaKind) -> u64 {
    match kind {
        MediaKind::Image => 5 * MB,
        MediaKind::Audio | MediaKind::Video => 16 * MB,
        MediaKind::Document => 100 * MB,
    }
}

/// The types WhatsApp sends as `kind`, by file extension: (extension, MIME type).
const IMAGE_TYPES: &[(&str, &str)] = &[
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
];
const VIDEO_TYPES: &[(&str, &str)] = &[("mp4", "video/mp4"), ("3gp", "video/3gpp")];
const AUDIO_TYPES: &[(&str, &str)] = &[
    ("aac", "audio/aac"),
    ("amr", "audio/amr"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("ogg", "audio/ogg"),
];
const DOCUMENT_TYPES: &[(&str, &str)] = &[
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
];

fn types(kind: MediaKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        MediaKind::Image => IMAGE_TYPES,
        MediaKind::Video => VIDEO_TYPES,
        MediaKind::Audio => AUDIO_TYPES,
        MediaKind::Document => DOCUMENT_TYPES,
    }
}

/// The MIME type of a file with `extension` sent as `kind`, if WhatsApp sends that type so.
pub fn mime_type(kind: MediaKind, extension: &str) -> Option<&'static str> {
    let extension = extension
        .trim()
        .trim_start_matches('.')
        .to_ascii_lowercase();
    types(kind)
        .iter()
        .find(|(ext, _)| *ext == extension)
        .map(|(_, mime)| *mime)
}

/// The types a rep may pick for `kind`, in words.
fn allowed_in_words(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "JPEG or PNG",
        MediaKind::Video => "MP4 or 3GP",
        MediaKind::Audio => "AAC, AMR, MP3, M4A or OGG",
        MediaKind::Document => "PDF, Word, Excel, PowerPoint or plain text",
    }
}

/// `Image` → `image`, as the rep reads it in a sentence.
fn noun(kind: MediaKind) -> &'static str {
    kind.as_str()
}

/// A size as a rep reads it: `820 KB`, `6.2 MB`.
pub fn human_size(bytes: u64) -> String {
    if bytes < MB {
        format!("{} KB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    }
}

/// A File that may go as its record's message type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The ContentVersion sent (a document's latest).
    pub version: String,
    pub mime_type: &'static str,
    /// The file's name: its Title, with its extension.
    pub name: String,
}

/// The file's name as a customer sees it: Title plus extension (unless the Title has it).
fn file_name(row: &ContentVersionRow) -> String {
    let title = row
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let extension = row
        .file_extension
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    match (title, extension) {
        (Some(title), Some(ext))
            if title
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", ext.to_ascii_lowercase())) =>
        {
            title.to_string()
        }
        (Some(title), Some(ext)) => format!("{title}.{ext}"),
        (Some(title), None) => title.to_string(),
        (None, Some(ext)) => format!("{}.{ext}", row.id),
        (None, None) => row.id.clone(),
    }
}

/// Whether the File `row` may go as `kind`, judged before any download: its type (by extension)
/// and its size. Pure.
pub fn judge_file(kind: MediaKind, row: &ContentVersionRow) -> Result<Checked, Refused> {
    let name = file_name(row);
    let extension = row.file_extension.as_deref().unwrap_or_default();
    let Some(mime_type) = mime_type(kind, extension) else {
        let what = match extension.trim() {
            "" => "a file without an extension".to_string(),
            ext => format!("a {} file", ext.to_ascii_uppercase()),
        };
        let document_hint = if kind == MediaKind::Document {
            ""
        } else {
            ", or send it as a Document if it is a PDF, Word, Excel, PowerPoint or text file"
        };
        return Err(refusal(
            MEDIA_TYPE_UNSUPPORTED,
            format!(
                "The file '{name}' ({}) is {what}; WhatsApp sends only {} files as {} messages. Pick a {} file{document_hint}.",
                row.id,
                allowed_in_words(kind),
                noun(kind),
                allowed_in_words(kind),
            ),
        ));
    };
    if let Some(size) = row.size() {
        check_size(kind, &name, &row.id, size)?;
    }
    Ok(Checked {
        version: row.id.clone(),
        mime_type,
        name,
    })
}

/// A file of `size` bytes within WhatsApp's limit for `kind`, or the refusal naming both.
fn check_size(kind: MediaKind, name: &str, id: &str, size: u64) -> Result<(), Refused> {
    let limit = max_bytes(kind);
    if size <= limit {
        return Ok(());
    }
    let document_hint = if kind == MediaKind::Document || size > max_bytes(MediaKind::Document) {
        ""
    } else {
        ", or send it as a Document (up to 100 MB) if it is a PDF or Office file"
    };
    Err(refusal(
        MEDIA_TOO_LARGE,
        format!(
            "The file '{name}' ({id}) is {}; WhatsApp sends {} files of at most {}. Pick a smaller file{document_hint}.",
            human_size(size),
            noun(kind),
            human_size(limit),
        ),
    ))
}

/// Why a File cannot go (before anything was sent): the record's Error_Code__c and sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl From<Refused> for Next {
    fn from(refused: Refused) -> Next {
        Next::Refuse {
            code: refused.code.to_string(),
            message: refused.message,
            window_expired_at: None,
        }
    }
}

fn refusal(code: &'static str, message: String) -> Refused {
    Refused { code, message }
}

/// The refusal for a File nobody can find, or that the integration user may not see.
pub fn not_found(file: &SalesforceFile, salesforce_said: Option<&str>) -> Refused {
    let what = match file {
        SalesforceFile::Version(_) => "ContentVersion",
        SalesforceFile::Document(_) => "ContentDocument",
    };
    let said = salesforce_said
        .map(|words| format!(" (Salesforce: {words})"))
        .unwrap_or_default();
    refusal(
        MEDIA_FILE_NOT_FOUND,
        format!(
            "The Salesforce File {} ({what}) in Media File Id was not found, or sfwa's integration user cannot see it{said}: check the Id, and share the file with the integration user, or attach it to a record the integration user can see (this message or its Contact).",
            file.id().as_str()
        ),
    )
}

/// For a media record naming a Salesforce File: the File judged, uploaded (or its recent upload
/// reused) and `message` turned into a send by media id; `Err(next)` when it cannot go now
/// (refused, failed, or retried later, by `policy`). Other messages pass untouched.
pub async fn prepare(
    dispatcher: &Dispatcher,
    message: &mut OutboundMessage,
    number: &str,
    (attempt, policy): (u32, Policy),
) -> anyhow::Result<Result<(), Next>> {
    let MessageKind::Media {
        kind,
        source: MediaSource::File(file),
        ..
    } = &message.kind
    else {
        return Ok(Ok(()));
    };
    let (kind, file) = (*kind, file.clone());
    let step = Step {
        dispatcher,
        number,
        attempt,
        policy,
    };
    let row = match dispatcher.salesforce.content_version(&file).await {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(Err(step.refuse("not_found", not_found(&file, None)))),
        Err(error) => return Ok(Err(step.salesforce_failed(&file, error))),
    };
    let checked = match judge_file(kind, &row) {
        Ok(checked) => checked,
        Err(refused) => {
            let outcome = if refused.code == MEDIA_TOO_LARGE {
                "too_large"
            } else {
                "unsupported_type"
            };
            return Ok(Err(step.refuse(outcome, refused)));
        }
    };
    let media_id = match step.reusable(&checked.version).await? {
        Some(media_id) => {
            info!(content_version = %checked.version, "file uploaded before; sent by the same media id");
            dispatcher.core.reporter.media_uploaded(number, "reused");
            media_id
        }
        None => match step.upload(kind, &file, &checked).await? {
            Ok(media_id) => media_id,
            Err(next) => return Ok(Err(next)),
        },
    };
    if let MessageKind::Media {
        source, filename, ..
    } = &mut message.kind
    {
        *source = MediaSource::Uploaded { media_id };
        // A document shows its file name; the File's, unless the record names one.
        if kind == MediaKind::Document && filename.is_none() {
            *filename = Some(checked.name);
        }
    }
    Ok(Ok(()))
}

/// After a send by an uploaded id: when WhatsApp refused the id itself (131053, or 100 naming an
/// unknown media id), it is forgotten, so sending the file again uploads it again.
pub async fn after_send(
    dispatcher: &Dispatcher,
    number: &str,
    message: &OutboundMessage,
    sent: &Result<Accepted, SendError>,
) -> anyhow::Result<()> {
    let MessageKind::Media {
        source: MediaSource::Uploaded { media_id },
        ..
    } = &message.kind
    else {
        return Ok(());
    };
    let Err(SendError::Meta(error)) = sent else {
        return Ok(());
    };
    if error.code != 131053 && error.code != 100 {
        return Ok(());
    }
    let (number, media_id) = (number.to_string(), media_id.clone());
    dispatcher
        .core
        .store
        .write(move |tx| uploaded_media::forget(tx, &number, &media_id))
        .await?;
    Ok(())
}

/// One record's file step: where it goes from, its attempt and the retry policy.
struct Step<'a> {
    dispatcher: &'a Dispatcher,
    number: &'a str,
    attempt: u32,
    policy: Policy,
}

impl Step<'_> {
    fn refuse(&self, outcome: &'static str, refused: Refused) -> Next {
        info!(code = %refused.code, "file not sent: {}", refused.message);
        self.dispatcher
            .core
            .reporter
            .media_uploaded(self.number, outcome);
        refused.into()
    }

    /// Salesforce could not answer for the File: retried when that may pass, else refused.
    fn salesforce_failed(&self, file: &SalesforceFile, error: SalesforceError) -> Next {
        match error {
            SalesforceError::Api {
                error_code,
                message,
                ..
            } => {
                let said = format!("{error_code}: {message}");
                self.refuse("not_found", not_found(file, Some(&said)))
            }
            other => {
                warn!("Salesforce did not answer for the file to send: {other}");
                self.retry(
                    MEDIA_FILE_UNAVAILABLE,
                    &format!(
                        "Salesforce did not answer for the file {}: {other}",
                        file.id().as_str()
                    ),
                )
            }
        }
    }

    fn retry(&self, code: &str, message: &str) -> Next {
        self.dispatcher
            .core
            .reporter
            .media_uploaded(self.number, "retried");
        retry_or_fail(
            code,
            message,
            self.attempt,
            &self.policy,
            self.dispatcher.now(),
        )
    }

    /// The id this number got for `version` within the last 29 days.
    async fn reusable(&self, version: &str) -> anyhow::Result<Option<String>> {
        let (number, version, now) = (
            self.number.to_string(),
            version.to_string(),
            self.dispatcher.now(),
        );
        Ok(self
            .dispatcher
            .core
            .store
            .lookup(move |conn| uploaded_media::reusable(conn, &number, &version, now))
            .await?)
    }

    /// Downloads the File and uploads it to WhatsApp; its media id is stored before it is used.
    async fn upload(
        &self,
        kind: MediaKind,
        file: &SalesforceFile,
        checked: &Checked,
    ) -> anyhow::Result<Result<String, Next>> {
        let version = SfId::parse(&checked.version)?;
        let bytes = match self.dispatcher.salesforce.version_data(&version).await {
            Ok(bytes) => bytes,
            Err(error) => return Ok(Err(self.salesforce_failed(file, error))),
        };
        // ContentSize said so, but the bytes are what WhatsApp will measure.
        if let Err(refused) = check_size(kind, &checked.name, &checked.version, bytes.len() as u64)
        {
            return Ok(Err(self.refuse("too_large", refused)));
        }
        let upload = Upload {
            bytes,
            mime_type: checked.mime_type.to_string(),
            file_name: checked.name.clone(),
        };
        let media_id = match self
            .dispatcher
            .whatsapp
            .upload_media(self.number, upload)
            .await
        {
            Ok(media_id) => media_id,
            Err(error) => return Ok(Err(self.upload_failed(checked, error))),
        };
        let (number, version, id, now) = (
            self.number.to_string(),
            checked.version.clone(),
            media_id.clone(),
            self.dispatcher.now(),
        );
        self.dispatcher
            .core
            .store
            .write(move |tx| uploaded_media::remember(tx, &number, &version, &id, now))
            .await?;
        info!(content_version = %checked.version, media_id = %media_id, "file uploaded to WhatsApp");
        self.dispatcher
            .core
            .reporter
            .media_uploaded(self.number, "uploaded");
        Ok(Ok(media_id))
    }

    /// WhatsApp did not take the upload: Meta's refusal of the file fails the record in Meta's
    /// words; anything else is what it would be for a send (hold, slow down, retry).
    fn upload_failed(&self, checked: &Checked, error: SendError) -> Next {
        let meta = match error {
            SendError::Meta(meta) => meta,
            SendError::NotSent(reason)
            | SendError::OutcomeUnknown(reason)
            | SendError::BadResponse(reason) => {
                // An upload is not a message: one whose answer was lost is simply done again.
                warn!("the upload of a file to WhatsApp did not complete: {reason}");
                return self.retry(
                    "WA_UNREACHABLE",
                    &format!("WhatsApp could not be reached to upload the file: {reason}"),
                );
            }
        };
        warn!(
            code = meta.code,
            "WhatsApp refused the upload of a file: {}", meta.message
        );
        if meta.action() == Action::Fail {
            self.dispatcher
                .core
                .reporter
                .media_uploaded(self.number, "failed");
            let title = meta.title.as_deref().unwrap_or(meta.message.as_str());
            let details = meta
                .details
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Next::Fail {
                code: meta.error_code(),
                message: format!(
                    "WhatsApp refused the upload of the file '{}' ({}), so nothing was sent (Meta: {title}{details}). Check that the file opens and is a {} file WhatsApp takes, or pick another.",
                    checked.name, checked.version, checked.mime_type
                ),
                window_expires_at: None,
            };
        }
        self.dispatcher
            .core
            .reporter
            .media_uploaded(self.number, "retried");
        decide(
            &Err(SendError::Meta(meta)),
            None,
            self.attempt,
            &self.policy,
            self.dispatcher.now(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(title: &str, extension: &str, size: u64) -> ContentVersionRow {
        ContentVersionRow {
            id: "068000000000001AAA".into(),
            title: Some(title.into()),
            file_extension: Some(extension.into()),
            file_type: None,
            content_size: Some(size as f64),
            content_document_id: Some("069000000000001AAA".into()),
        }
    }

    #[test]
    fn a_pdf_within_100_mb_goes_as_a_document_named_by_its_title_and_extension() {
        let checked =
            judge_file(MediaKind::Document, &row("Quote Q-1001", "pdf", 20 * 1024)).unwrap();

        assert_eq!(checked.mime_type, "application/pdf");
        assert_eq!(checked.name, "Quote Q-1001.pdf");
        assert_eq!(checked.version, "068000000000001AAA");
    }

    #[test]
    fn a_title_that_already_ends_with_the_extension_is_not_extended_again() {
        let checked = judge_file(MediaKind::Image, &row("shelf.PNG", "png", 1000)).unwrap();

        assert_eq!(checked.name, "shelf.PNG");
        assert_eq!(checked.mime_type, "image/png");
    }

    #[test]
    fn an_image_over_5_mb_is_refused_naming_the_file_its_size_the_limit_and_the_fix() {
        let refused =
            judge_file(MediaKind::Image, &row("Plan", "png", 6 * MB + MB / 5)).unwrap_err();

        assert_eq!(refused.code, MEDIA_TOO_LARGE);
        assert_eq!(
            refused.message,
            "The file 'Plan.png' (068000000000001AAA) is 6.2 MB; WhatsApp sends image files of at most 5.0 MB. Pick a smaller file, or send it as a Document (up to 100 MB) if it is a PDF or Office file."
        );
    }

    #[test]
    fn a_type_whatsapp_does_not_send_as_that_message_type_is_refused_in_words() {
        let webp = judge_file(MediaKind::Image, &row("Logo", "webp", 1000)).unwrap_err();
        let zip = judge_file(MediaKind::Document, &row("Bundle", "zip", 1000)).unwrap_err();

        assert_eq!(webp.code, MEDIA_TYPE_UNSUPPORTED);
        assert!(
            webp.message.contains(
                "is a WEBP file; WhatsApp sends only JPEG or PNG files as image messages"
            ),
            "{}",
            webp.message
        );
        assert!(
            zip.message
                .contains("PDF, Word, Excel, PowerPoint or plain text"),
            "{}",
            zip.message
        );
    }

    #[test]
    fn limits_are_metas_per_message_type() {
        assert_eq!(max_bytes(MediaKind::Image), 5 * MB);
        assert_eq!(max_bytes(MediaKind::Video), 16 * MB);
        assert_eq!(max_bytes(MediaKind::Audio), 16 * MB);
        assert_eq!(max_bytes(MediaKind::Document), 100 * MB);
        assert_eq!(mime_type(MediaKind::Audio, "MP3"), Some("audio/mpeg"));
        assert_eq!(mime_type(MediaKind::Video, "mov"), None);
    }

    #[test]
    fn a_missing_file_names_the_id_and_sharing_with_the_integration_user() {
        let file = SalesforceFile::parse("069000000000001AAA").unwrap();

        let refused = not_found(&file, None);

        assert_eq!(refused.code, MEDIA_FILE_NOT_FOUND);
        assert!(refused
            .message
            .contains("069000000000001AAA (ContentDocument)"));
        assert!(refused
            .message
            .contains("share the file with the integration user"));
    }
}
