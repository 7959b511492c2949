//! What a media record's Body says, in words a rep can act on: the first Body (the file is being
//! copied), then what became of the file — saved to the record's Files, over the size limit,
//! given up, gone from Meta, or copying switched off — and until when Meta keeps it; with the file
//! names and sizes that go with them. Pure functions, shared by [`super::inbound_records`] (the
//! first Body) and [`super::media`] (the rest).

use chrono::Duration;
use serde_json::json;

use crate::domain::message::fit_salesforce;
use crate::domain::webhook_event::InboundMediaKind;
use crate::store::media::{self as queue, QueuedMedia};

use super::record_update::Fields;

/// Meta keeps an inbound media id this long after the message; after it the file is gone.
pub const META_KEEPS_MEDIA: Duration = Duration::days(7);

/// Body__c's length (Long Text Area 4096) and Media_Filename__c's (Text 255).
const BODY_CHARS: usize = 4096;
const FILENAME_CHARS: usize = 255;

pub(super) fn body_fields(body: String) -> Fields {
    let mut fields = Fields::new();
    fields.insert("Body__c".into(), json!(fit_salesforce(&body, BODY_CHARS)));
    fields
}

pub(super) fn saved_fields(media: &QueuedMedia, mime: Option<&str>, bytes: u64) -> Fields {
    let name = file_name(media, mime);
    let mut fields = body_fields(saved_body(media, mime, bytes));
    fields.insert(
        "Media_Filename__c".into(),
        json!(fit_salesforce(&name, FILENAME_CHARS)),
    );
    fields
}

/// "An image", "A document", … as a rep reads it.
fn what(kind: InboundMediaKind) -> &'static str {
    match kind {
        InboundMediaKind::Image => "An image",
        InboundMediaKind::Sticker => "A sticker",
        InboundMediaKind::Document => "A document",
        InboundMediaKind::Audio => "An audio or voice message",
        InboundMediaKind::Video => "A video",
    }
}

/// The caption (if any) above a sentence about the file.
fn with_caption(caption: Option<&str>, sentence: String) -> String {
    match caption.map(str::trim).filter(|c| !c.is_empty()) {
        Some(caption) => format!("{caption}\n\n({sentence})"),
        None => sentence,
    }
}

/// The first Body of a media record (written by `inbound_records` when the webhook arrives):
/// what the customer sent, and that sfwa is copying it into the record's Files.
pub fn first_body(
    kind: InboundMediaKind,
    mime_type: Option<&str>,
    filename: Option<&str>,
    caption: Option<&str>,
) -> String {
    let name = filename.map(|f| format!(" \"{f}\"")).unwrap_or_default();
    let mime = mime_type.map(|m| format!(" ({m})")).unwrap_or_default();
    let sentence = format!(
        "{}{name}{mime} was sent on WhatsApp; sfwa is copying it into this record's Files.",
        what(kind)
    );
    with_caption(caption, sentence)
}

fn saved_body(media: &QueuedMedia, mime: Option<&str>, bytes: u64) -> String {
    let mut details = vec![file_name(media, mime)];
    details.extend(mime.map(str::to_string));
    details.push(human_size(bytes));
    let sentence = format!(
        "{} ({}) — saved to this record's Files.",
        what(media.kind),
        details.join(", ")
    );
    with_caption(media.caption.as_deref(), sentence)
}

/// Until when Meta keeps the file, and what to do after.
fn keep_until(media: &QueuedMedia) -> String {
    let until = (media.received_at + META_KEEPS_MEDIA).format("%Y-%m-%d %H:%M UTC");
    format!(
        "Meta keeps it until {until} (media id {}); after that, ask the customer to send it again.",
        media.media_id
    )
}

fn named(media: &QueuedMedia) -> String {
    let name = media
        .filename
        .as_deref()
        .map(|f| format!(" \"{f}\""))
        .unwrap_or_default();
    format!("{}{name}", what(media.kind))
}

pub(super) fn too_large_body(media: &QueuedMedia, bytes: u64, limit: u64) -> String {
    let sentence = format!(
        "{} ({}) is over sfwa's {} limit (media.max_bytes), so it was not copied into Salesforce. {}",
        named(media),
        human_size(bytes),
        human_size(limit),
        keep_until(media)
    );
    with_caption(media.caption.as_deref(), sentence)
}

pub(super) fn disabled_body(media: &QueuedMedia) -> String {
    let sentence = format!(
        "{} was sent on WhatsApp; sfwa is set not to copy files (media.enabled = false). {}",
        named(media),
        keep_until(media)
    );
    with_caption(media.caption.as_deref(), sentence)
}

pub(super) fn gone_body(media: &QueuedMedia) -> String {
    let sentence = format!(
        "{} was sent on WhatsApp but could not be copied into Salesforce: WhatsApp no longer has \
         it (files are kept 7 days). Ask the customer to send it again.",
        named(media)
    );
    with_caption(media.caption.as_deref(), sentence)
}

pub(super) fn failed_body(media: &QueuedMedia, error: &str) -> String {
    let sentence = format!(
        "{} was sent on WhatsApp but could not be copied into Salesforce after {} attempts (last \
         error: {}). {}",
        named(media),
        media.attempts + 1,
        crate::domain::text::echo(error),
        keep_until(media)
    );
    with_caption(media.caption.as_deref(), sentence)
}

/// The customer's file name, or one made from the kind, the time and the type
/// (`whatsapp-image-20261126-010203.jpg`): Salesforce takes the file type from its extension.
pub fn file_name(media: &QueuedMedia, mime: Option<&str>) -> String {
    if let Some(name) = media
        .filename
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        return name.to_string();
    }
    let kind = queue::kind_label(media.kind);
    let at = media.received_at.format("%Y%m%d-%H%M%S");
    format!("whatsapp-{kind}-{at}.{}", extension(mime))
}

/// The usual extension of the types WhatsApp carries; `bin` for others.
fn extension(mime: Option<&str>) -> &'static str {
    let essence = mime
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => "bin",
    }
}

/// `512 bytes`, `182 KB`, `31 MB`, `2.5 MB` (1 KB = 1024 bytes, as file browsers count).
pub fn human_size(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    if bytes < KB {
        format!("{bytes} bytes")
    } else if bytes < MB {
        format!("{} KB", (bytes + KB / 2) / KB)
    } else {
        let tenths = (bytes * 10 + MB / 2) / MB;
        if tenths.is_multiple_of(10) || tenths >= 100 {
            format!("{} MB", (tenths + 5) / 10)
        } else {
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn queued(
        kind: InboundMediaKind,
        filename: Option<&str>,
        caption: Option<&str>,
    ) -> QueuedMedia {
        let at = DateTime::parse_from_rfc3339("2026-11-26T01:02:03Z")
            .unwrap()
            .to_utc();
        let mut media = QueuedMedia::new("wamid.IN1".parse().unwrap(), "1234567890", kind, at, at);
        media.filename = filename.map(String::from);
        media.caption = caption.map(String::from);
        media
    }

    #[test]
    fn sizes_read_as_a_file_browser_shows_them() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(186_368), "182 KB");
        assert_eq!(human_size(25 * 1024 * 1024), "25 MB");
        assert_eq!(human_size(31 * 1024 * 1024 + 10), "31 MB");
        assert_eq!(human_size(2_621_440), "2.5 MB");
    }

    #[test]
    fn an_image_without_a_name_gets_one_with_its_types_extension() {
        let image = queued(InboundMediaKind::Image, None, None);
        let document = queued(InboundMediaKind::Document, Some("contract.pdf"), None);

        assert_eq!(
            file_name(&image, Some("image/jpeg")),
            "whatsapp-image-20261126-010203.jpg"
        );
        assert_eq!(
            file_name(&image, Some("application/x-unknown")),
            "whatsapp-image-20261126-010203.bin"
        );
        assert_eq!(file_name(&document, Some("image/png")), "contract.pdf");
    }

    #[test]
    fn a_saved_file_says_what_it_is_and_where_it_went_below_the_caption() {
        let image = queued(InboundMediaKind::Image, None, Some("my receipt"));

        let fields = saved_fields(&image, Some("image/jpeg"), 186_368);

        assert_eq!(
            fields["Body__c"],
            "my receipt\n\n(An image (whatsapp-image-20261126-010203.jpg, image/jpeg, 182 KB) — \
             saved to this record's Files.)"
        );
        assert_eq!(
            fields["Media_Filename__c"],
            "whatsapp-image-20261126-010203.jpg"
        );
    }

    #[test]
    fn a_file_over_the_limit_says_so_with_the_setting_and_until_when_meta_keeps_it() {
        let document = queued(InboundMediaKind::Document, Some("contract.pdf"), None);

        let body = too_large_body(&document, 31 * 1024 * 1024, 25 * 1024 * 1024);

        assert_eq!(
            body,
            "A document \"contract.pdf\" (31 MB) is over sfwa's 25 MB limit (media.max_bytes), so \
             it was not copied into Salesforce. Meta keeps it until 2026-12-03 01:02 UTC (media \
             id 1234567890); after that, ask the customer to send it again."
        );
    }

    #[test]
    fn the_first_body_says_the_file_is_being_copied() {
        let body = first_body(
            InboundMediaKind::Document,
            Some("application/pdf"),
            Some("quote.pdf"),
            None,
        );

        assert_eq!(
            body,
            "A document \"quote.pdf\" (application/pdf) was sent on WhatsApp; sfwa is copying it \
             into this record's Files."
        );
    }

    #[test]
    fn a_given_up_file_names_the_attempts_and_the_last_error() {
        let mut video = queued(InboundMediaKind::Video, None, None);
        video.attempts = 5;

        let body = failed_body(&video, "no answer from WhatsApp for the media: timeout");

        assert!(body.starts_with("A video was sent on WhatsApp but could not be copied into Salesforce after 6 attempts (last error: no answer from WhatsApp for the media: timeout)."), "{body}");
        assert!(
            body.contains("Meta keeps it until 2026-12-03 01:02 UTC"),
            "{body}"
        );
    }
}
