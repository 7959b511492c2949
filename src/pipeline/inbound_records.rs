//! The `WhatsApp_Message__c` record an inbound customer message becomes: Direction Inbound, Status
//! Received, who wrote, to which business number, when, and what — in words a rep can read. A
//! media message's file is copied into the record's Files afterwards by the media worker
//! ([`super::media`]), which then rewrites the Body; the first Body says it is being copied. No URL
//! field is written, on purpose: Meta's media URLs are signed, short-lived and useless without
//! the access token.
//!
//! The webhook's apply step ([`super::webhook_apply`]) queues these fields as an upsert keyed by
//! the wamid ([`WAMID_FIELD`]), in the same transaction as the inbound mirror, so a duplicate
//! webhook or a retried flush can never create a second record. Links to a Contact or Lead are added at flush
//! time ([`super::inbound_links`]), when Salesforce can be asked who owns the number.
//!
//! Everything written here must be a value Salesforce accepts, or the whole collections call it
//! rides in fails: the webhook parser has already refused timestamps outside years 1700–4000 and
//! over-long ids; here, date arithmetic is checked (a window expiry Salesforce could not store is
//! left out rather than written) and free text is cut to its field as Salesforce counts length
//! (UTF-16 code units: an emoji counts twice), so an emoji-heavy 4096-character text still fits.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::domain::ids::CustomerId;
use crate::domain::message::{
    fit_salesforce as truncate, format_salesforce_datetime as at, is_salesforce_datetime,
};
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::{InboundKind, InboundMediaKind, InboundMessage};

use super::record_update::Fields;

/// The external id inbound records are upserted on (unique in the package).
pub const WAMID_FIELD: &str = "WhatsApp_Message_Id__c";

/// Not a Salesforce field (no API name contains `$`): the wamid the customer replied to, kept
/// with the outbox item so the flush can find the Case of that message
/// ([`super::inbound_owner`]), and removed before the record is written.
pub const CONTEXT_KEY: &str = "$context_wamid";

/// The customer-service window a message opens (DESIGN.md: 24 h from Meta's timestamp).
const WINDOW_HOURS: i64 = 24;

/// Field lengths from the package (Body__c is a Long Text Area of 4096, the rest Text / Phone).
const BODY_CHARS: usize = 4096;
const FILENAME_CHARS: usize = 255;
const PHONE_CHARS: usize = 40;
const BUSINESS_NUMBER_CHARS: usize = 32;

/// For a message that does not open the window (a reaction): the expiry of the window as it
/// stands — 24 h after the customer's `last_inbound` message — or, with none known, the message's
/// own time (closed). Without it, a record page would guess "open for 24 h" from Received_At__c.
pub fn window_unchanged(last_inbound: Option<DateTime<Utc>>, at_time: DateTime<Utc>) -> Fields {
    let expires = match last_inbound {
        Some(last) => window_expiry(last),
        None => Some(at_time).filter(|t| is_salesforce_datetime(*t)),
    };
    let mut fields = Fields::new();
    if let Some(expires) = expires {
        fields.insert("Window_Expires_At__c".into(), json!(at(expires)));
    }
    fields
}

/// 24 h after `from`, if that is a time Salesforce stores (checked: `from` may be anything the
/// store or a webhook held; near chrono's limits plain `+` panics).
fn window_expiry(from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    from.checked_add_signed(Duration::hours(WINDOW_HOURS))
        .filter(|t| is_salesforce_datetime(*t))
}

/// The fields of the record for `message`, without links (see [`super::inbound_links`]).
pub fn inbound_record(message: &InboundMessage) -> Fields {
    let mut fields = Fields::new();
    let mut set = |name: &str, value: Value| {
        fields.insert(name.to_string(), value);
    };
    set(WAMID_FIELD, json!(message.wamid));
    set("Direction__c", json!("Inbound"));
    set("Status__c", json!(MessageStatus::Received.as_salesforce()));
    set("From_Phone__c", json!(from_phone(&message.from)));
    set(
        "Business_Number_Id__c",
        json!(truncate(
            message.business_number_id.as_str(),
            BUSINESS_NUMBER_CHARS
        )),
    );
    // The parser refused timestamps Salesforce cannot store; checked again, as it costs nothing.
    if is_salesforce_datetime(message.timestamp) {
        set("Received_At__c", json!(at(message.timestamp)));
    }
    if message.opens_window() {
        if let Some(expires) = window_expiry(message.timestamp) {
            set("Window_Expires_At__c", json!(at(expires)));
        }
    }
    if let Some(context) = &message.context_id {
        set(CONTEXT_KEY, json!(context));
    }
    set("Message_Type__c", json!(message_type(&message.kind)));
    set("Body__c", json!(truncate(&body(&message.kind), BODY_CHARS)));
    if let InboundKind::Media {
        kind: InboundMediaKind::Document,
        filename: Some(filename),
        ..
    } = &message.kind
    {
        set(
            "Media_Filename__c",
            json!(truncate(filename, FILENAME_CHARS)),
        );
    }
    fields
}

/// `+14155550101` for Meta's `wa_id` `14155550101`. A wa_id libphonenumber does not know is still
/// written (with a `+`), so the message is recorded; it just will not be linked to anyone.
fn from_phone(customer: &CustomerId) -> String {
    let e164 = customer
        .phone()
        .map(|number| number.as_str().to_string())
        .unwrap_or_else(|| format!("+{}", customer.as_str()));
    truncate(&e164, PHONE_CHARS)
}

/// The `Message_Type__c` picklist value: media by kind (a sticker is an image), the rest Text.
fn message_type(kind: &InboundKind) -> &'static str {
    match kind {
        InboundKind::Media { kind, .. } => match kind {
            InboundMediaKind::Image | InboundMediaKind::Sticker => "Image",
            InboundMediaKind::Document => "Document",
            InboundMediaKind::Video => "Video",
            InboundMediaKind::Audio => "Audio",
        },
        _ => "Text",
    }
}

/// What the customer said, or a sentence saying what they sent.
fn body(kind: &InboundKind) -> String {
    match kind {
        InboundKind::Text { body } => body.clone(),
        // What was sent and that the media worker is copying it into the record's Files; the
        // worker writes the final Body (`super::media`, in words from `super::media_body`).
        InboundKind::Media {
            kind,
            mime_type,
            filename,
            caption,
            ..
        } => super::media_body::first_body(
            *kind,
            mime_type.as_deref(),
            filename.as_deref(),
            caption.as_deref(),
        ),
        InboundKind::Button { text, payload } if text.is_empty() => payload.clone(),
        InboundKind::Button { text, .. } => text.clone(),
        InboundKind::Interactive { id, title } if title.is_empty() => id.clone(),
        InboundKind::Interactive { title, .. } => title.clone(),
        InboundKind::Reaction {
            message_id,
            emoji: Some(emoji),
        } => format!("Reacted {emoji} to {message_id}"),
        InboundKind::Reaction {
            message_id,
            emoji: None,
        } => format!("Removed a reaction from {message_id}"),
        InboundKind::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            let place: Vec<&str> = [name.as_deref(), address.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            let place = if place.is_empty() {
                String::new()
            } else {
                format!("{} ", place.join(", "))
            };
            format!("Shared a location: {place}({latitude}, {longitude})")
        }
        // Placeholder wording until the issue-13 inbound types are rendered (replaced there).
        other => format!("A WhatsApp message: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn message(kind: InboundKind) -> InboundMessage {
        let mut message = InboundMessage::new(
            "wamid.IN1".parse().unwrap(),
            "106540352242922".parse().unwrap(),
            "14155550101".parse().unwrap(),
            DateTime::<Utc>::from_timestamp(1_749_416_383, 0).unwrap(),
            kind,
        );
        message.display_phone_number = "15550783881".into();
        message.profile_name = Some("Ana".into());
        message
    }

    fn media(kind: InboundMediaKind, caption: Option<&str>, filename: Option<&str>) -> InboundKind {
        InboundKind::Media {
            kind,
            media_id: "1234567890".into(),
            mime_type: Some("application/pdf".into()),
            caption: caption.map(String::from),
            filename: filename.map(String::from),
        }
    }

    #[test]
    fn an_inbound_text_is_a_received_record_from_the_customer_that_opens_the_window() {
        let fields = inbound_record(&message(InboundKind::Text {
            body: "Does it come in blue?".into(),
        }));

        assert_eq!(
            Value::Object(fields),
            json!({
                "WhatsApp_Message_Id__c": "wamid.IN1",
                "Direction__c": "Inbound",
                "Status__c": "Received",
                "From_Phone__c": "+14155550101",
                "Business_Number_Id__c": "106540352242922",
                "Received_At__c": "2025-06-08T20:59:43.000Z",
                "Window_Expires_At__c": "2025-06-09T20:59:43.000Z",
                "Message_Type__c": "Text",
                "Body__c": "Does it come in blue?",
            })
        );
    }

    #[test]
    fn a_reaction_names_the_emoji_and_the_message_and_does_not_claim_to_open_the_window() {
        let reacted = inbound_record(&message(InboundKind::Reaction {
            message_id: "wamid.OUT".into(),
            emoji: Some("👍".into()),
        }));
        let removed = inbound_record(&message(InboundKind::Reaction {
            message_id: "wamid.OUT".into(),
            emoji: None,
        }));

        assert_eq!(reacted["Body__c"], "Reacted 👍 to wamid.OUT");
        assert_eq!(reacted["Message_Type__c"], "Text");
        assert!(!reacted.contains_key("Window_Expires_At__c"));
        assert_eq!(removed["Body__c"], "Removed a reaction from wamid.OUT");
    }

    #[test]
    fn a_reaction_carries_the_unchanged_window_or_a_closed_one() {
        let reacted_at = chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .to_utc();
        let wrote_at = reacted_at - Duration::hours(3);

        let open = window_unchanged(Some(wrote_at), reacted_at);
        let closed = window_unchanged(None, reacted_at);

        assert_eq!(open["Window_Expires_At__c"], "2026-11-25T09:00:00.000Z");
        assert_eq!(closed["Window_Expires_At__c"], "2026-11-24T12:00:00.000Z");
    }

    #[test]
    fn media_without_a_caption_is_described_as_being_copied_into_files() {
        let document = inbound_record(&message(media(
            InboundMediaKind::Document,
            None,
            Some("quote.pdf"),
        )));

        assert_eq!(document["Message_Type__c"], "Document");
        assert_eq!(document["Media_Filename__c"], "quote.pdf");
        let body = document["Body__c"].as_str().unwrap();
        assert!(
            body.starts_with("A document \"quote.pdf\" (application/pdf) was sent"),
            "{body}"
        );
        assert!(
            body.contains("copying it into this record's Files"),
            "{body}"
        );
        assert!(document.contains_key("Window_Expires_At__c"));
    }

    #[test]
    fn media_with_a_caption_shows_the_caption_and_stickers_are_images() {
        let image = inbound_record(&message(media(
            InboundMediaKind::Image,
            Some("my receipt"),
            None,
        )));
        let sticker = inbound_record(&message(media(InboundMediaKind::Sticker, None, None)));
        let video = inbound_record(&message(media(InboundMediaKind::Video, None, None)));
        let audio = inbound_record(&message(media(InboundMediaKind::Audio, None, None)));

        let body = image["Body__c"].as_str().unwrap();
        assert!(body.starts_with("my receipt\n\n(An image"), "{body}");
        assert_eq!(image["Message_Type__c"], "Image");
        assert!(!image.contains_key("Media_Filename__c"));
        assert_eq!(sticker["Message_Type__c"], "Image");
        assert_eq!(video["Message_Type__c"], "Video");
        assert_eq!(audio["Message_Type__c"], "Audio");
    }

    #[test]
    fn buttons_lists_locations_and_unknown_types_become_readable_text() {
        let body = |kind| inbound_record(&message(kind))["Body__c"].clone();

        assert_eq!(
            body(InboundKind::Button {
                text: "Yes".into(),
                payload: "CONFIRM".into()
            }),
            "Yes"
        );
        assert_eq!(
            body(InboundKind::Interactive {
                id: "opt-2".into(),
                title: "Tuesday".into()
            }),
            "Tuesday"
        );
        assert_eq!(
            body(InboundKind::Location {
                latitude: 52.52,
                longitude: 13.405,
                name: Some("Office".into()),
                address: None
            }),
            "Shared a location: Office (52.52, 13.405)"
        );
        assert!(body(InboundKind::Other {
            kind: "contacts".into(),
            summary: String::new()
        })
        .as_str()
        .unwrap()
        .contains("\"contacts\""));
    }

    #[test]
    fn an_over_long_text_is_cut_to_the_body_field() {
        let fields = inbound_record(&message(InboundKind::Text {
            body: "x".repeat(5000),
        }));

        assert_eq!(fields["Body__c"].as_str().unwrap().chars().count(), 4096);
    }

    #[test]
    fn a_message_stamped_at_chronos_limit_gets_no_window_expiry_instead_of_a_panic() {
        let mut latest = message(InboundKind::Text { body: "x".into() });
        latest.timestamp = DateTime::<Utc>::MAX_UTC;

        let fields = inbound_record(&latest);
        let reaction = window_unchanged(Some(DateTime::<Utc>::MAX_UTC), DateTime::<Utc>::MAX_UTC);

        assert!(!fields.contains_key("Window_Expires_At__c"));
        assert!(
            !fields.contains_key("Received_At__c"),
            "Salesforce cannot store it"
        );
        assert!(reaction.is_empty());
    }

    #[test]
    fn a_window_ending_after_the_year_4000_is_not_written() {
        let mut late = message(InboundKind::Text { body: "x".into() });
        late.timestamp = chrono::DateTime::parse_from_rfc3339("4000-12-31T12:00:00Z")
            .unwrap()
            .to_utc();

        let fields = inbound_record(&late);

        assert_eq!(fields["Received_At__c"], "4000-12-31T12:00:00.000Z");
        assert!(!fields.contains_key("Window_Expires_At__c"));
    }

    #[test]
    fn an_emoji_text_is_cut_to_the_body_field_as_salesforce_counts_it() {
        let fields = inbound_record(&message(InboundKind::Text {
            body: "😀".repeat(4096),
        }));

        let body = fields["Body__c"].as_str().unwrap();
        assert!(crate::domain::message::salesforce_length(body) <= BODY_CHARS);
        assert!(body.ends_with('…'));
        assert_eq!(body.chars().count(), 2047 + 1);
    }
}
