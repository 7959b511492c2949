//! A Queued `WhatsApp_Message__c` turned into an [`OutboundMessage`] — or into the precise reason it
//! cannot be sent ([`RecordProblem`]), which becomes Failed with Error_Code__c / Error_Message__c.
//! Bad input never stops the line: each record is judged on its own (DESIGN.md guarantee 4).

use chrono::{DateTime, Datelike, Utc};

use super::ids::{BusinessNumberId, CustomerId, Wamid};
use super::phone::{PhoneError, E164};
use super::sf_id::SfId;
use super::template::TemplateParameters;
use super::text::echo;
pub use super::text::salesforce_length;

/// WhatsApp's limit for a text body.
pub const MAX_TEXT_CHARS: usize = 4096;
/// WhatsApp's limit for a media caption.
pub const MAX_CAPTION_CHARS: usize = 1024;
/// WhatsApp's limit for the text of an interactive message (`request_contact_info`).
pub const MAX_INTERACTIVE_BODY_CHARS: usize = 1024;
/// Template language when the record leaves it blank.
pub const DEFAULT_TEMPLATE_LANGUAGE: &str = "en_US";

/// A `WhatsApp_Message__c` as the pipeline reads it: converted once from the wire row where intake
/// receives it (`salesforce::rows::MessageRow::into_record`), with its Id, dates and wamid parsed.
/// The fields [`OutboundMessage::from_record`] judges stay text: their problems name the field and
/// the fix, per record.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedRecord {
    pub id: SfId,
    pub direction: Option<String>,
    pub status: Option<String>,
    pub to_phone: Option<String>,
    /// `To_User_Id__c`: the customer's business-scoped user id, when the record has no phone.
    pub to_user_id: Option<String>,
    pub business_number_id: Option<String>,
    pub message_type: Option<String>,
    pub body: Option<String>,
    pub template_name: Option<String>,
    pub template_language: Option<String>,
    pub template_parameters: Option<String>,
    pub media_url: Option<String>,
    pub media_filename: Option<String>,
    /// `Media_File_Id__c`: a Salesforce File (ContentVersion 068… or ContentDocument 069…) to
    /// send instead of a link; sfwa uploads it to WhatsApp first (`pipeline::media_upload`).
    pub media_file_id: Option<String>,
    /// `Scheduled_At__c`, when set and a date and time.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When the Flow created it (the queue-to-send latency metric starts here).
    pub created_at: Option<DateTime<Utc>>,
    /// Meta's id, if WhatsApp accepted it once: a Queued record carrying one was set back to
    /// Queued by a person, and must never be sent again (see `pipeline::intake`).
    pub wamid: Option<Wamid>,
    /// A field the conversion could not read (a `Scheduled_At__c` that is no date, a malformed
    /// wamid): the record is refused with it instead of being sent.
    pub unreadable: Option<RecordProblem>,
    /// `Reengagement_Template__c`, `…_Language__c`, `…_Parameters__c`: the template sent first
    /// when this free-form message meets a closed window (see `pipeline::reengage`).
    pub reengagement_template: Option<String>,
    pub reengagement_language: Option<String>,
    pub reengagement_parameters: Option<String>,
    /// `WhatsApp_Marketing_Opt_Out__c` of the record's Contact or Lead: the person takes no
    /// marketing templates (read through the relationship, `pipeline::consent`).
    pub marketing_opt_out: bool,
}

impl QueuedRecord {
    /// A record with this Id and every field empty.
    pub fn new(id: SfId) -> QueuedRecord {
        QueuedRecord {
            id,
            direction: None,
            status: None,
            to_phone: None,
            to_user_id: None,
            business_number_id: None,
            message_type: None,
            body: None,
            template_name: None,
            template_language: None,
            template_parameters: None,
            media_url: None,
            media_filename: None,
            media_file_id: None,
            scheduled_at: None,
            created_at: None,
            wamid: None,
            unreadable: None,
            reengagement_template: None,
            reengagement_language: None,
            reengagement_parameters: None,
            marketing_opt_out: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Document,
    Video,
    Audio,
}

impl MediaKind {
    /// The Cloud API `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Document => "document",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

/// Where a media message's file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaSource {
    /// `Media_URL__c`: a public link WhatsApp fetches itself.
    Link(String),
    /// `Media_File_Id__c`: a Salesforce File. Never sent as such: the send path uploads it to
    /// WhatsApp's media endpoint and sends the media id instead (`pipeline::media_upload`).
    File(SalesforceFile),
    /// The media id WhatsApp gave an uploaded file (`"image": {"id": …}`).
    Uploaded { media_id: String },
}

/// A Salesforce File a record names: a ContentVersion (that version) or a ContentDocument (its
/// latest version), by Id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SalesforceFile {
    /// `068…`
    Version(SfId),
    /// `069…`
    Document(SfId),
}

impl SalesforceFile {
    /// The ContentVersion (068) or ContentDocument (069) Id named in `Media_File_Id__c`.
    pub fn parse(text: &str) -> Option<SalesforceFile> {
        let id = SfId::parse(text).ok()?;
        match id.key_prefix() {
            "068" => Some(SalesforceFile::Version(id)),
            "069" => Some(SalesforceFile::Document(id)),
            _ => None,
        }
    }

    /// The Id as the record gives it (18 characters).
    pub fn id(&self) -> &SfId {
        match self {
            SalesforceFile::Version(id) | SalesforceFile::Document(id) => id,
        }
    }
}

/// What to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Text {
        body: String,
    },
    Template {
        name: String,
        language: String,
        parameters: TemplateParameters,
    },
    Media {
        kind: MediaKind,
        source: MediaSource,
        caption: Option<String>,
        filename: Option<String>,
    },
    /// Meta's interactive `request_contact_info`: `body` and a button (WhatsApp's own, not
    /// configurable) by which the customer shares their phone number; the answer is a `contacts`
    /// message that tells the store the phone of a customer known by BSUID only.
    RequestContactInfo {
        body: String,
    },
}

impl MessageKind {
    /// Templates may go any time; everything else needs an open customer-service window.
    pub fn is_template(&self) -> bool {
        matches!(self, MessageKind::Template { .. })
    }
}

/// A message ready for the window check and the send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundMessage {
    pub record_id: SfId,
    /// Whom the record addresses: `To_Phone__c` as a wa_id, else `To_User_Id__c` (a BSUID). The
    /// send path may resolve it to the same person's current key (`pipeline::identity`).
    pub to: CustomerId,
    /// The WhatsApp phone_number_id to send from; `None` = the configured default.
    pub business_number_id: Option<BusinessNumberId>,
    pub kind: MessageKind,
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// sfwa's own error codes for records it refuses (written to Error_Code__c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidPhone,
    InvalidUserId,
    MissingTemplate,
    InvalidTemplateParameters,
    BodyTooLong,
    MissingBody,
    MissingMediaUrl,
    UnsupportedType,
    InvalidRecord,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidPhone => "INVALID_PHONE",
            ErrorCode::InvalidUserId => "INVALID_USER_ID",
            ErrorCode::MissingTemplate => "MISSING_TEMPLATE",
            ErrorCode::InvalidTemplateParameters => "INVALID_TEMPLATE_PARAMETERS",
            ErrorCode::BodyTooLong => "BODY_TOO_LONG",
            ErrorCode::MissingBody => "MISSING_BODY",
            ErrorCode::MissingMediaUrl => "MISSING_MEDIA_URL",
            ErrorCode::UnsupportedType => "UNSUPPORTED_TYPE",
            ErrorCode::InvalidRecord => "INVALID_RECORD",
        }
    }
}

/// Why a record cannot be sent: the code, the field to fix and a sentence for the rep.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {}", code.as_str(), field, message)]
pub struct RecordProblem {
    pub code: ErrorCode,
    pub field: &'static str,
    pub message: String,
}

impl RecordProblem {
    /// A `Scheduled_At__c` that is not a date and time.
    pub fn unreadable_schedule(text: &str) -> RecordProblem {
        problem(
            ErrorCode::InvalidRecord,
            "Scheduled_At__c",
            format!("Scheduled At '{text}' is not a date and time."),
        )
    }

    /// A `WhatsApp_Message_Id__c` that is not a wamid.
    pub fn unreadable_wamid(text: &str) -> RecordProblem {
        problem(
            ErrorCode::InvalidRecord,
            "WhatsApp_Message_Id__c",
            format!("WhatsApp Message Id '{}' is not a WhatsApp message id, so sfwa cannot tell whether WhatsApp accepted this message: correct it, or clear it only if the message was never sent.", echo(text)),
        )
    }
}

fn problem(code: ErrorCode, field: &'static str, message: impl Into<String>) -> RecordProblem {
    RecordProblem {
        code,
        field,
        message: message.into(),
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl OutboundMessage {
    /// Validates a record. `default_region` reads numbers written without a country code.
    pub fn from_record(
        record: &QueuedRecord,
        default_region: Option<phonenumber::country::Id>,
    ) -> Result<OutboundMessage, RecordProblem> {
        OutboundMessage::from_record_parsed(record, default_region, None)
    }

    /// [`OutboundMessage::from_record`] for the send path: `To_Phone__c` is parsed on the phone
    /// thread while the caller's task waits without holding its runtime thread
    /// ([`E164::parse_awaited`]); a blocked runtime thread runs none of the other sends and
    /// webhooks meanwhile.
    pub async fn from_record_awaited(
        record: &QueuedRecord,
        default_region: Option<phonenumber::country::Id>,
    ) -> Result<OutboundMessage, RecordProblem> {
        let parsed = match present(&record.to_phone) {
            Some(raw) => Some(E164::parse_awaited(raw, default_region).await),
            None => None,
        };
        OutboundMessage::from_record_parsed(record, default_region, parsed)
    }

    /// `parsed`: `E164::parse`'s answer for `To_Phone__c`'s text, when the caller has it.
    fn from_record_parsed(
        record: &QueuedRecord,
        default_region: Option<phonenumber::country::Id>,
        parsed: Option<Result<E164, PhoneError>>,
    ) -> Result<OutboundMessage, RecordProblem> {
        let to = recipient(record, default_region, parsed)?;
        let kind = match present(&record.message_type).unwrap_or("Text") {
            "Text" => text_kind(record)?,
            "Template" => template_kind(record)?,
            media @ ("Image" | "Document" | "Video" | "Audio") => media_kind(record, media)?,
            "Request Contact Info" => request_contact_info_kind(record)?,
            other => {
                return Err(problem(
                    ErrorCode::UnsupportedType,
                    "Message_Type__c",
                    format!("Message Type '{other}' is not supported: use Text, Template, Image, Document, Video, Audio or Request Contact Info."),
                ))
            }
        };
        let business_number_id = business_number(record)?;
        if let Some(unreadable) = &record.unreadable {
            return Err(unreadable.clone());
        }
        Ok(OutboundMessage {
            record_id: record.id.clone(),
            to,
            business_number_id,
            kind,
            scheduled_at: record.scheduled_at,
        })
    }
}

/// `Business_Number_Id__c`, when set: the number to send from, Meta's phone-number id (digits).
/// Checked here, before anything is sent: a typo would otherwise reach Meta as an unknown number,
/// or find no customer-service window in the mirror (which holds only parsed ids).
fn business_number(record: &QueuedRecord) -> Result<Option<BusinessNumberId>, RecordProblem> {
    present(&record.business_number_id)
        .map(|raw| {
            raw.parse().map_err(|_| {
                problem(
                    ErrorCode::InvalidRecord,
                    "Business_Number_Id__c",
                    format!("Business Number Id '{}' is not a WhatsApp phone number id (the digits WhatsApp Manager shows for the number): correct it, or clear it to send from the default number.", echo(raw)),
                )
            })
        })
        .transpose()
}

/// The customer the record addresses: `To_Phone__c` as an E.164 number when it is set (a phone
/// is what a rep checks and what every template can go to), else `To_User_Id__c` as a BSUID; or
/// why neither is one.
fn recipient(
    record: &QueuedRecord,
    default_region: Option<phonenumber::country::Id>,
    parsed: Option<Result<E164, PhoneError>>,
) -> Result<CustomerId, RecordProblem> {
    match (present(&record.to_phone), present(&record.to_user_id)) {
        (None, None) => Err(problem(
            ErrorCode::InvalidPhone,
            "To_Phone__c",
            "To Phone and To User Id are both empty: enter the customer's mobile number with its country code in To Phone, e.g. +1 650 555 1234, or, for a customer WhatsApp knows only by username, their WhatsApp user id (like US.13491208655302741918, from the customer's inbound messages) in To User Id.",
        )),
        (None, Some(raw)) => CustomerId::user_id(raw).map_err(|_| {
            problem(
                ErrorCode::InvalidUserId,
                "To_User_Id__c",
                format!("To User Id '{}' is not a WhatsApp user id: copy it from the customer's inbound message (From User Id, like US.13491208655302741918), or clear it and enter the customer's phone in To Phone.", echo(raw)),
            )
        }),
        (Some(raw), _) => {
            phone(raw, default_region, parsed).map(|phone| CustomerId::from_phone(&phone))
        }
    }
}

/// `To_Phone__c` as an E.164 number (`parsed` already, or parsed here), or why it is not one.
fn phone(
    raw: &str,
    default_region: Option<phonenumber::country::Id>,
    parsed: Option<Result<E164, PhoneError>>,
) -> Result<E164, RecordProblem> {
    let parsed = parsed.unwrap_or_else(|| E164::parse(raw, default_region));
    parsed.map_err(|e| {
            let hint = match e {
                PhoneError::Unparseable(_) | PhoneError::Empty => "is not a phone number",
                _ => "is not a valid number",
            };
            problem(
                ErrorCode::InvalidPhone,
                "To_Phone__c",
                format!("To Phone '{raw}' {hint}: enter the customer's mobile number with its country code, e.g. +1 650 555 1234."),
            )
        })
}

/// A `Text` record's body, within WhatsApp's length.
fn text_kind(record: &QueuedRecord) -> Result<MessageKind, RecordProblem> {
    let body = present(&record.body).ok_or_else(|| {
        problem(
            ErrorCode::MissingBody,
            "Body__c",
            "Body is empty: write the text to send.",
        )
    })?;
    let length = body.chars().count();
    if length > MAX_TEXT_CHARS {
        return Err(problem(
            ErrorCode::BodyTooLong,
            "Body__c",
            format!("Body has {length} characters; WhatsApp allows at most {MAX_TEXT_CHARS}. Shorten it or split it into two messages."),
        ));
    }
    Ok(MessageKind::Text {
        body: body.to_string(),
    })
}

/// A `Template` record's name, language and parameters.
fn template_kind(record: &QueuedRecord) -> Result<MessageKind, RecordProblem> {
    let name = present(&record.template_name).ok_or_else(|| {
        problem(
            ErrorCode::MissingTemplate,
            "Template_Name__c",
            "Template Name is empty: enter the name of an approved WhatsApp template.",
        )
    })?;
    let parameters =
        TemplateParameters::parse(record.template_parameters.as_deref()).map_err(|e| {
            problem(
                ErrorCode::InvalidTemplateParameters,
                "Template_Parameters__c",
                e.0,
            )
        })?;
    Ok(MessageKind::Template {
        name: name.to_string(),
        language: present(&record.template_language)
            .unwrap_or(DEFAULT_TEMPLATE_LANGUAGE)
            .to_string(),
        parameters,
    })
}

/// An `Image`, `Document`, `Video` or `Audio` record's file (a link, or a Salesforce File) and
/// caption.
fn media_kind(record: &QueuedRecord, media: &str) -> Result<MessageKind, RecordProblem> {
    let kind = match media {
        "Image" => MediaKind::Image,
        "Document" => MediaKind::Document,
        "Video" => MediaKind::Video,
        _ => MediaKind::Audio,
    };
    let source = media_source(record, kind)?;
    let caption = present(&record.body).map(str::to_string);
    if kind == MediaKind::Audio && caption.is_some() {
        return Err(problem(
            ErrorCode::UnsupportedType,
            "Body__c",
            "Audio messages cannot have a caption: clear Body.",
        ));
    }
    if let Some(length) = caption.as_ref().map(|c| c.chars().count()) {
        if length > MAX_CAPTION_CHARS {
            return Err(problem(
                ErrorCode::BodyTooLong,
                "Body__c",
                format!("The caption (Body) has {length} characters; WhatsApp allows at most {MAX_CAPTION_CHARS}."),
            ));
        }
    }
    Ok(MessageKind::Media {
        kind,
        source,
        caption,
        filename: present(&record.media_filename).map(str::to_string),
    })
}

/// The file of a media record: `Media_File_Id__c` (a Salesforce File) or `Media_URL__c` (a
/// public link). Both set is refused rather than guessed: the rep meant one of them, and sending
/// the other would put the wrong file in front of a customer.
fn media_source(record: &QueuedRecord, kind: MediaKind) -> Result<MediaSource, RecordProblem> {
    let link = present(&record.media_url);
    match present(&record.media_file_id) {
        Some(_) if link.is_some() => Err(problem(
            ErrorCode::InvalidRecord,
            "Media_File_Id__c",
            "Media File Id and Media URL are both set: keep one — Media File Id to send a Salesforce File, or Media URL to send a public link — and clear the other.",
        )),
        Some(raw) => SalesforceFile::parse(raw).map(MediaSource::File).ok_or_else(|| {
            problem(
                ErrorCode::InvalidRecord,
                "Media_File_Id__c",
                format!("Media File Id '{}' is not the Id of a Salesforce File: enter a ContentVersion Id (starting 068) or a ContentDocument Id (starting 069), 15 or 18 characters, e.g. from the file's page, or pick the file in the composer.", echo(raw)),
            )
        }),
        None => link
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
            .map(|l| MediaSource::Link(l.to_string()))
            .ok_or_else(|| {
                problem(
                    ErrorCode::MissingMediaUrl,
                    "Media_URL__c",
                    format!(
                        "Media URL must be a public https:// link to the {}, or Media File Id a Salesforce File to send.",
                        kind.as_str()
                    ),
                )
            }),
    }
}

/// A `request_contact_info` record's text (Body__c), within WhatsApp's length.
fn request_contact_info_kind(record: &QueuedRecord) -> Result<MessageKind, RecordProblem> {
    let body = present(&record.body).ok_or_else(|| {
        problem(
            ErrorCode::MissingBody,
            "Body__c",
            "Body is empty: write the text shown above WhatsApp's Share contact info button, e.g. why you need the customer's phone number.",
        )
    })?;
    let length = body.chars().count();
    if length > MAX_INTERACTIVE_BODY_CHARS {
        return Err(problem(
            ErrorCode::BodyTooLong,
            "Body__c",
            format!("Body has {length} characters; WhatsApp allows at most {MAX_INTERACTIVE_BODY_CHARS} above the Share contact info button. Shorten it."),
        ));
    }
    Ok(MessageKind::RequestContactInfo {
        body: body.to_string(),
    })
}

/// Parses Salesforce's datetime rendering (`2026-11-24T15:00:00.000+0000`) or RFC 3339.
pub fn parse_salesforce_datetime(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Renders a datetime for Salesforce (`2026-11-24T15:00:00.000Z`). Only values for which
/// [`is_salesforce_datetime`] holds render as something Salesforce reads: outside years 0–9999
/// chrono writes a sign and more digits (`+58870-…`), which fails a whole collections call with
/// JSON_PARSER_ERROR, so data from outside (webhooks) is checked at the edge first.
pub fn format_salesforce_datetime(at: DateTime<Utc>) -> String {
    // `%Y-%m-%dT%H:%M:%S%.3fZ` without reading a format string on every call (every status
    // webhook writes one or two of these in the store's writer).
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The years a Salesforce DateTime field stores: 1700-01-01T00:00:00Z through
/// 4000-12-31T23:59:59Z (Salesforce's documented range for Date and DateTime values).
pub const SALESFORCE_YEARS: std::ops::RangeInclusive<i32> = 1700..=4000;

/// Whether Salesforce accepts `at` in a DateTime field (see [`SALESFORCE_YEARS`]).
pub fn is_salesforce_datetime(at: DateTime<Utc>) -> bool {
    SALESFORCE_YEARS.contains(&at.year())
}

/// `text` cut to at most `max` UTF-16 code units (see [`salesforce_length`]), on a character
/// boundary, with `…` marking a cut — for free text, where a cut keeps the meaning.
pub fn fit_salesforce(text: &str, max: usize) -> String {
    if salesforce_length(text) <= max {
        return text.to_string();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        // Room is kept for the `…` (one unit).
        if used + c.len_utf16() > max.saturating_sub(1) {
            break;
        }
        used += c.len_utf16();
        cut.push(c);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_salesforce_datetime_is_utc_to_the_millisecond_across_the_years_salesforce_stores() {
        for at in [
            "2026-11-27T22:05:11.300999Z",
            "2026-01-01T00:00:00Z",
            "1700-01-01T00:00:00.001Z",
            "4000-12-31T23:59:59.999999999Z",
        ] {
            let at: DateTime<Utc> = at.parse().unwrap();
            assert_eq!(
                format_salesforce_datetime(at),
                at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
        }
        let at: DateTime<Utc> = "2026-11-27T22:05:11.3Z".parse().unwrap();
        assert_eq!(format_salesforce_datetime(at), "2026-11-27T22:05:11.300Z");
    }

    fn record(message_type: &str) -> QueuedRecord {
        QueuedRecord {
            to_phone: Some("+1 650 253 0000".into()),
            message_type: Some(message_type.into()),
            body: Some("Hello".into()),
            ..QueuedRecord::new(SfId::parse("a005g0000012345AAA").unwrap())
        }
    }

    fn refused(record: QueuedRecord) -> RecordProblem {
        OutboundMessage::from_record(&record, None).unwrap_err()
    }

    #[test]
    fn a_business_number_that_is_not_digits_is_refused_naming_the_field_and_the_fix() {
        let mut typo = record("Text");
        typo.business_number_id = Some("1065403522 42922x".into());

        let problem = refused(typo);

        assert_eq!(problem.code, ErrorCode::InvalidRecord);
        assert_eq!(problem.field, "Business_Number_Id__c");
        assert!(
            problem.message.contains("'1065403522 42922x'"),
            "{}",
            problem.message
        );
        assert!(problem
            .message
            .contains("clear it to send from the default number"));
    }

    #[test]
    fn a_business_number_of_digits_is_the_number_sent_from_and_a_blank_one_the_default() {
        let mut chosen = record("Text");
        chosen.business_number_id = Some("106540352242922".into());
        let mut blank = record("Text");
        blank.business_number_id = Some("  ".into());

        let from_chosen = OutboundMessage::from_record(&chosen, None).unwrap();
        let from_blank = OutboundMessage::from_record(&blank, None).unwrap();

        assert_eq!(from_chosen.business_number_id.unwrap(), "106540352242922");
        assert_eq!(from_blank.business_number_id, None);
    }

    #[test]
    fn a_text_record_becomes_a_text_message_to_an_e164_number() {
        let message = OutboundMessage::from_record(&record("Text"), None).unwrap();
        assert_eq!(message.to, CustomerId::WaId("16502530000".into()));
        assert_eq!(
            message.kind,
            MessageKind::Text {
                body: "Hello".into()
            }
        );
        assert!(!message.kind.is_template());
    }

    #[test]
    fn a_template_without_language_defaults_to_en_us() {
        let mut r = record("Template");
        r.template_name = Some("hello_world".into());
        let message = OutboundMessage::from_record(&r, None).unwrap();
        assert!(
            matches!(message.kind, MessageKind::Template { ref language, .. } if language == "en_US")
        );
    }

    #[test]
    fn each_bad_field_gets_its_own_error_code_and_names_the_field() {
        let mut r = record("Text");
        r.to_phone = Some("not a phone".into());
        assert_eq!(
            (refused(r.clone()).code, refused(r).field),
            (ErrorCode::InvalidPhone, "To_Phone__c")
        );

        let mut r = record("Template");
        r.template_name = None;
        assert_eq!(refused(r).code, ErrorCode::MissingTemplate);

        let mut r = record("Template");
        r.template_name = Some("t".into());
        r.template_parameters = Some("[oops".into());
        assert_eq!(refused(r).code, ErrorCode::InvalidTemplateParameters);

        let mut r = record("Text");
        r.body = Some("x".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(refused(r).code, ErrorCode::BodyTooLong);

        assert_eq!(
            refused(record("Carrier Pigeon")).code,
            ErrorCode::UnsupportedType
        );

        let mut r = record("Image");
        r.media_url = None;
        assert_eq!(refused(r).code, ErrorCode::MissingMediaUrl);

        let mut r = record("Text");
        r.body = Some("   ".into());
        assert_eq!(refused(r).code, ErrorCode::MissingBody);
    }

    #[test]
    fn text_of_exactly_4096_characters_is_allowed() {
        let mut r = record("Text");
        r.body = Some("é".repeat(MAX_TEXT_CHARS));
        assert!(OutboundMessage::from_record(&r, None).is_ok());
    }

    #[test]
    fn media_records_carry_caption_and_filename() {
        let mut r = record("Document");
        r.media_url = Some("https://files.test/q.pdf".into());
        r.media_filename = Some("quote.pdf".into());
        let message = OutboundMessage::from_record(&r, None).unwrap();
        assert_eq!(
            message.kind,
            MessageKind::Media {
                kind: MediaKind::Document,
                source: MediaSource::Link("https://files.test/q.pdf".into()),
                caption: Some("Hello".into()),
                filename: Some("quote.pdf".into())
            }
        );
    }

    #[test]
    fn salesforce_accepts_datetimes_from_1700_to_4000_only() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();

        assert!(is_salesforce_datetime(at("1700-01-01T00:00:00Z")));
        assert!(is_salesforce_datetime(at("4000-12-31T23:59:59Z")));
        assert!(!is_salesforce_datetime(at("1699-12-31T23:59:59Z")));
        assert!(!is_salesforce_datetime(at("4001-01-01T00:00:00Z")));
        assert!(!is_salesforce_datetime(
            DateTime::from_timestamp(1_749_416_383_000, 0).unwrap()
        ));
    }

    #[test]
    fn a_record_without_a_phone_is_addressed_by_its_user_id() {
        let mut r = record("Text");
        r.to_phone = Some("  ".into());
        r.to_user_id = Some(" US.13491208655302741918 ".into());

        let message = OutboundMessage::from_record(&r, None).unwrap();

        assert_eq!(
            message.to,
            CustomerId::UserId("US.13491208655302741918".into())
        );
    }

    #[test]
    fn a_record_with_a_phone_and_a_user_id_is_addressed_by_the_phone() {
        let mut r = record("Text");
        r.to_user_id = Some("US.13491208655302741918".into());

        let message = OutboundMessage::from_record(&r, None).unwrap();

        assert_eq!(message.to, CustomerId::WaId("16502530000".into()));
    }

    #[test]
    fn a_record_with_neither_phone_nor_user_id_is_refused_naming_both_fields() {
        let mut r = record("Text");
        r.to_phone = None;

        let problem = refused(r);

        assert_eq!(problem.code, ErrorCode::InvalidPhone);
        assert!(problem.message.contains("To Phone"), "{}", problem.message);
        assert!(
            problem.message.contains("To User Id"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn a_user_id_that_is_not_one_is_refused_naming_the_field_and_the_fix() {
        let mut r = record("Text");
        r.to_phone = None;
        r.to_user_id = Some("ana.b".into());

        let problem = refused(r);

        assert_eq!(problem.code, ErrorCode::InvalidUserId);
        assert_eq!(problem.field, "To_User_Id__c");
        assert!(problem.message.contains("'ana.b'"), "{}", problem.message);
        assert!(
            problem.message.contains("From User Id"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn request_contact_info_carries_the_body_as_its_text_and_needs_one() {
        let mut r = record("Request Contact Info");
        r.body = Some("Share your number so we can call you.".into());
        let message = OutboundMessage::from_record(&r, None).unwrap();
        assert_eq!(
            message.kind,
            MessageKind::RequestContactInfo {
                body: "Share your number so we can call you.".into()
            }
        );
        assert!(!message.kind.is_template());

        let mut empty = record("Request Contact Info");
        empty.body = None;
        assert_eq!(refused(empty).code, ErrorCode::MissingBody);
        let mut long = record("Request Contact Info");
        long.body = Some("x".repeat(MAX_INTERACTIVE_BODY_CHARS + 1));
        assert_eq!(refused(long).code, ErrorCode::BodyTooLong);
    }

    #[test]
    fn a_media_record_naming_a_content_version_or_document_sends_that_salesforce_file() {
        let mut version = record("Image");
        version.media_file_id = Some("068000000000001AAA".into());
        let mut document = record("Document");
        document.media_file_id = Some(" 069000000000001 ".into());

        let by_version = OutboundMessage::from_record(&version, None).unwrap();
        let by_document = OutboundMessage::from_record(&document, None).unwrap();

        assert!(matches!(
            by_version.kind,
            MessageKind::Media { source: MediaSource::File(SalesforceFile::Version(ref id)), .. }
                if id.as_str() == "068000000000001AAA"
        ));
        assert!(matches!(
            by_document.kind,
            MessageKind::Media { source: MediaSource::File(SalesforceFile::Document(ref id)), .. }
                if id.as_str() == "069000000000001AAA"
        ));
    }

    #[test]
    fn a_media_file_id_that_is_no_file_id_is_refused_naming_the_field_and_the_fix() {
        let mut contact = record("Document");
        contact.media_file_id = Some("003000000000001AAA".into());
        let mut garbled = record("Document");
        garbled.media_file_id = Some("068-not-an-id".into());

        let not_a_file = refused(contact);
        let not_an_id = refused(garbled);

        assert_eq!(not_a_file.field, "Media_File_Id__c");
        assert_eq!(not_a_file.code, ErrorCode::InvalidRecord);
        assert!(
            not_a_file.message.contains("'003000000000001AAA'")
                && not_a_file.message.contains("starting 068"),
            "{}",
            not_a_file.message
        );
        assert_eq!(not_an_id.field, "Media_File_Id__c");
    }

    #[test]
    fn a_media_record_with_both_a_file_and_a_link_is_refused_naming_both_fields() {
        let mut both = record("Image");
        both.media_file_id = Some("068000000000001AAA".into());
        both.media_url = Some("https://files.test/a.png".into());

        let problem = refused(both);

        assert_eq!(problem.code, ErrorCode::InvalidRecord);
        assert!(
            problem.message.contains("Media File Id") && problem.message.contains("Media URL"),
            "{}",
            problem.message
        );
    }
}
