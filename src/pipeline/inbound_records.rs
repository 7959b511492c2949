//! The `WhatsApp_Message__c` record an inbound customer message becomes: Direction Inbound, Status
//! Received, who wrote, to which business number, when, and what — in words a rep can read. A
//! media message's file is copied into the record's Files afterwards by the media worker
//! ([`super::media`]), which then rewrites the Body; the first Body says it is being copied. No URL
//! field is written, on purpose: Meta's media URLs are signed, short-lived and useless without
//! the access token.
//!
//! Every kind of message gets a Body a rep can act on (a contact card's name, phones and emails;
//! an order's lines and total; a Flow's answers; a number change), and the record says who wrote
//! beyond the phone: the business-scoped user id and username Meta gives since 2026 (a customer
//! known only by those gets no `From_Phone__c`), the group of a group message, and the
//! click-to-WhatsApp ad the customer came from.
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
use crate::domain::text::salesforce_length;
use crate::domain::webhook_event::{
    InboundChannel, InboundKind, InboundMediaKind, InboundMessage, OrderItem, Referral,
    SharedContact, SystemChange,
};

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
/// `From_User_Id__c` (Text 140) holds any BSUID whole (at most 135 characters).
const USER_ID_CHARS: usize = 140;
const USERNAME_CHARS: usize = 100;
const GROUP_ID_CHARS: usize = 100;
const REFERRAL_TYPE_CHARS: usize = 20;
/// `Referral_Headline__c`, `Referral_Click_Id__c` (Text 255) and `Referral_Source_URL__c` (URL).
const REFERRAL_TEXT_CHARS: usize = 255;

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

/// Not a Salesforce field (no API name contains `$`; the flush drops `$` keys before writing):
/// on a `user_changed_user_id` record, the customer's previous BSUID, kept with the outbox item for
/// [`super::inbound_links`]. Whoever holds the previous BSUID is
/// the person when nobody holds the new one yet; the new one is then stored on them.
pub const PREVIOUS_USER_ID_KEY: &str = "$previous_user_id";

/// The fields of the record for `message`, without links (see [`super::inbound_links`]).
pub fn inbound_record(message: &InboundMessage) -> Fields {
    let mut fields = Fields::new();
    let mut set = |name: &str, value: Value| {
        fields.insert(name.to_string(), value);
    };
    set(WAMID_FIELD, json!(message.wamid));
    set("Direction__c", json!("Inbound"));
    set("Status__c", json!(MessageStatus::Received.as_salesforce()));
    if let Some(phone) = from_phone(&message.from).or_else(|| answered_phone(&message.kind)) {
        set("From_Phone__c", json!(phone));
    }
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
    set("Body__c", json!(truncate(&said(message), BODY_CHARS)));
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
    fields.extend(identity(message));
    fields
}

/// Who wrote beyond the phone: the BSUID (ids are written whole or not at all — the parser
/// bounds them to the field), the username, and the group a group message was written in.
fn identity(message: &InboundMessage) -> Fields {
    let mut fields = Fields::new();
    let user_id = message
        .user_id
        .as_ref()
        .or(Some(&message.from).filter(|from| from.is_user_id()));
    if let Some(user_id) = user_id.filter(|u| salesforce_length(u.as_str()) <= USER_ID_CHARS) {
        fields.insert("From_User_Id__c".into(), json!(user_id.as_str()));
    }
    if let Some(username) = &message.username {
        fields.insert(
            "From_Username__c".into(),
            json!(truncate(username, USERNAME_CHARS)),
        );
    }
    if let Some(group) = &message.group_id {
        fields.insert("Group_Id__c".into(), json!(truncate(group, GROUP_ID_CHARS)));
    }
    // A user-id change without a phone links by the BSUID the Contact/Lead still holds; the
    // write-back reads this `$` key and never writes it (see `inbound_links`).
    if let InboundKind::System(SystemChange {
        previous_user_id: Some(previous),
        ..
    }) = &message.kind
    {
        fields.insert(PREVIOUS_USER_ID_KEY.into(), json!(previous.as_str()));
    }
    if let Some(referral) = &message.referral {
        fields.extend(referral_fields(referral));
    }
    fields
}

/// The click-to-WhatsApp ad's fields. A URL or click id longer than its field is left out
/// rather than cut (a cut URL is a broken link; a cut click id names no click); the Body still
/// says where the customer came from.
fn referral_fields(referral: &Referral) -> Fields {
    let mut fields = Fields::new();
    let whole = |value: &Option<String>, max: usize| {
        value
            .as_deref()
            .filter(|v| salesforce_length(v) <= max)
            .map(|v| json!(v))
    };
    let cut =
        |value: &Option<String>, max: usize| value.as_deref().map(|v| json!(truncate(v, max)));
    for (name, value) in [
        (
            "Referral_Source_Type__c",
            cut(&referral.source_type, REFERRAL_TYPE_CHARS),
        ),
        (
            "Referral_Source_URL__c",
            whole(&referral.source_url, REFERRAL_TEXT_CHARS),
        ),
        (
            "Referral_Headline__c",
            cut(&referral.headline, REFERRAL_TEXT_CHARS),
        ),
        (
            "Referral_Click_Id__c",
            whole(&referral.ctwa_clid, REFERRAL_TEXT_CHARS),
        ),
    ] {
        if let Some(value) = value {
            fields.insert(name.into(), value);
        }
    }
    fields
}

/// `+14155550101` for Meta's `wa_id` `14155550101`. A wa_id libphonenumber does not know is still
/// written (with a `+`), so the message is recorded; it just will not be linked to anyone. A
/// customer known only by a BSUID has no phone to write (never "+US.134…").
fn from_phone(customer: &CustomerId) -> Option<String> {
    if customer.is_user_id() {
        return None;
    }
    let e164 = customer
        .phone()
        .map(|number| number.as_str().to_string())
        .unwrap_or_else(|| format!("+{}", customer.as_str()));
    Some(truncate(&e164, PHONE_CHARS))
}

/// The customer's own phone, from their answer to our `request_contact_info` (a contact card
/// with `origin: "contact_request"`): the first phone the card gives a wa_id for. It fills
/// `From_Phone__c` of a customer who wrote as a BSUID, so the record links by phone too.
fn answered_phone(kind: &InboundKind) -> Option<String> {
    let InboundKind::Contacts {
        contacts,
        from_contact_request: true,
    } = kind
    else {
        return None;
    };
    contacts
        .iter()
        .flat_map(|card| &card.phones)
        .find_map(|(_, wa_id)| wa_id.as_deref()?.parse::<CustomerId>().ok())
        .and_then(|customer| from_phone(&customer))
}

/// The `Message_Type__c` picklist value: media by kind (a sticker is an image); locations,
/// contact cards, orders and Flows answers by name (inbound-only values, so a rep can filter
/// on them); what Meta writes rather than the customer (`system`, the `request_welcome` of a
/// first open) is System; the rest — words, buttons, lists, reactions, and what WhatsApp
/// cannot show — is Text, its Body saying what it was.
fn message_type(kind: &InboundKind) -> &'static str {
    match kind {
        InboundKind::Media { kind, .. } => match kind {
            InboundMediaKind::Image | InboundMediaKind::Sticker => "Image",
            InboundMediaKind::Document => "Document",
            InboundMediaKind::Video => "Video",
            InboundMediaKind::Audio => "Audio",
        },
        InboundKind::Location { .. } => "Location",
        InboundKind::Contacts { .. } => "Contacts",
        InboundKind::Order { .. } => "Order",
        InboundKind::FlowReply { .. } => "Flow Reply",
        InboundKind::System(_) | InboundKind::RequestWelcome => "System",
        _ => "Text",
    }
}

/// The Body: what the customer said ([`body`]), preceded by where it was said when that is not
/// a 1:1 chat with us (a group; Meta's business agent's conversation), and followed by the ad
/// the customer came from.
fn said(message: &InboundMessage) -> String {
    let mut said = body(&message.kind);
    if let Some(group) = &message.group_id {
        let who = message
            .profile_name
            .as_deref()
            .or(message.username.as_deref())
            .map(str::to_string)
            .or_else(|| from_phone(&message.from))
            .unwrap_or_else(|| message.from.to_string());
        said = format!("In the WhatsApp group {group}, {who} wrote: {said}");
    }
    if message.channel == InboundChannel::Standby {
        said = format!(
            "[Meta's business agent handled this conversation; the message came on the standby \
             channel] {said}"
        );
    }
    if let Some(referral) = &message.referral {
        said.push_str(&format!("\n\n{}", came_from(referral)));
    }
    said
}

/// "Came from the click-to-WhatsApp ad "Spring sale" (https://…)."
fn came_from(referral: &Referral) -> String {
    let what = match referral.source_type.as_deref() {
        Some("post") => "post",
        _ => "ad",
    };
    let headline = referral
        .headline
        .as_deref()
        .map(|h| format!(" \"{h}\""))
        .unwrap_or_default();
    let url = referral
        .source_url
        .as_deref()
        .map(|u| format!(" ({u})"))
        .unwrap_or_default();
    format!("Came from the click-to-WhatsApp {what}{headline}{url}.")
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
        } => shared_location(*latitude, *longitude, name.as_deref(), address.as_deref()),
        InboundKind::Contacts {
            contacts,
            from_contact_request,
        } => shared_contacts(contacts, *from_contact_request),
        InboundKind::Order {
            catalog_id,
            items,
            note,
        } => placed_order(catalog_id, items, note.as_deref()),
        InboundKind::FlowReply {
            name,
            body,
            response_json,
        } => flow_answer(name.as_deref(), body.as_deref(), response_json),
        InboundKind::RequestWelcome => "Opened the chat on WhatsApp (no message yet)".to_string(),
        InboundKind::System(change) => system_change(change),
        InboundKind::Unsupported { reason } => format!(
            "Sent a message WhatsApp cannot show here ({reason}). Ask the customer to send it \
             again another way."
        ),
        InboundKind::Other { kind, summary } => unknown_kind(kind, summary),
    }
}

/// "Shared a location: Office, Main St 1 (52.52, 13.405)".
fn shared_location(
    latitude: f64,
    longitude: f64,
    name: Option<&str>,
    address: Option<&str>,
) -> String {
    let place: Vec<&str> = [name, address].into_iter().flatten().collect();
    let place = if place.is_empty() {
        String::new()
    } else {
        format!("{} ", place.join(", "))
    };
    format!("Shared a location: {place}({latitude}, {longitude})")
}

/// A type sfwa has no words for: its name, and its raw content when there is any.
fn unknown_kind(kind: &str, summary: &str) -> String {
    let said =
        format!("Sent a WhatsApp message of type \"{kind}\", which sfwa cannot show in words yet.");
    if summary.is_empty() {
        return said;
    }
    format!("{said} Its content: {summary}")
}

/// "Shared a contact: Ana Lima, +55 11 98765-4321, ana@example.com" (several: "; " between).
fn shared_contacts(contacts: &[SharedContact], from_contact_request: bool) -> String {
    let cards: Vec<String> = contacts
        .iter()
        .map(|card| {
            let name = Some(card.name.clone()).filter(|n| !n.trim().is_empty());
            name.into_iter()
                .chain(card.phones.iter().map(|(phone, _)| phone.clone()))
                .chain(card.emails.iter().cloned())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|card| !card.is_empty())
        .collect();
    let what = match (from_contact_request, cards.len()) {
        (true, _) => "Shared their contact details when asked".to_string(),
        (false, 1) => "Shared a contact".to_string(),
        (false, n) => format!("Shared {n} contacts"),
    };
    if cards.is_empty() {
        return format!("{what} (the card was empty)");
    }
    format!("{what}: {}", cards.join("; "))
}

/// "Placed an order from catalog 123: 2 × SKU-1 at 10.00 BRL, 1 × SKU-2 at 5.50 BRL; total
/// 25.50 BRL; note: …". The total only when every line has a price in one currency.
fn placed_order(catalog_id: &str, items: &[OrderItem], note: Option<&str>) -> String {
    let catalog = if catalog_id.is_empty() {
        String::new()
    } else {
        format!(" from catalog {catalog_id}")
    };
    let lines: Vec<String> = items
        .iter()
        .map(|item| {
            let price = item
                .item_price
                .map(|p| {
                    let currency = item.currency.as_deref().unwrap_or_default();
                    format!(" at {p:.2} {currency}").trim_end().to_string()
                })
                .unwrap_or_default();
            format!(
                "{} × {}{price}",
                quantity(item.quantity),
                item.product_retailer_id
            )
        })
        .collect();
    let mut said = format!("Placed an order{catalog}: {}", lines.join(", "));
    if items.is_empty() {
        said = format!("Placed an order{catalog} without items");
    }
    let currency = items.first().and_then(|i| i.currency.as_deref());
    let one_currency = items.iter().all(|i| i.currency.as_deref() == currency);
    let prices: Option<Vec<f64>> = items
        .iter()
        .map(|i| i.item_price.map(|p| p * i.quantity))
        .collect();
    if let (Some(prices), true, false) = (prices, one_currency, items.is_empty()) {
        let total: f64 = prices.iter().sum();
        let currency = currency.unwrap_or_default();
        said.push_str(format!("; total {total:.2} {currency}").trim_end());
    }
    if let Some(note) = note {
        said.push_str(&format!("; note: {note}"));
    }
    said
}

/// `2` for 2.0, `1.5` for 1.5.
fn quantity(quantity: f64) -> String {
    if quantity.fract() == 0.0 && quantity.abs() < 1e15 {
        format!("{}", quantity as i64)
    } else {
        format!("{quantity}")
    }
}

/// "Answered the WhatsApp Flow "signup": name = Ana, date = 2026-01-01". The answers are
/// `response_json`'s fields but the `flow_token` (the Flow's own bookkeeping); text that is not
/// a JSON object is shown as it came.
fn flow_answer(name: Option<&str>, body: Option<&str>, response_json: &str) -> String {
    let flow = match name {
        Some(name) if name != "flow" => format!("the WhatsApp Flow \"{name}\""),
        _ => "a WhatsApp Flow".to_string(),
    };
    let answers = match serde_json::from_str::<Value>(response_json) {
        Ok(Value::Object(fields)) => fields
            .iter()
            .filter(|(key, _)| key.as_str() != "flow_token")
            .map(|(key, value)| match value {
                Value::String(text) => format!("{key} = {text}"),
                other => format!("{key} = {other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => response_json.trim().to_string(),
    };
    match (answers.is_empty(), body) {
        (false, _) => format!("Answered {flow}: {answers}"),
        (true, Some(body)) => format!("Answered {flow}: {body}"),
        (true, None) => format!("Answered {flow} (no answers given)"),
    }
}

/// What Meta says changed, in words a rep understands, with Meta's own sentence after.
fn system_change(change: &SystemChange) -> String {
    let said = match (change.kind.as_str(), &change.new_wa_id, &change.new_user_id) {
        (_, Some(phone), _) => format!("Changed their WhatsApp number to +{phone}."),
        ("user_changed_user_id", _, Some(new)) => match &change.previous_user_id {
            Some(previous) => {
                format!("Their WhatsApp user id changed from {previous} to {new}.")
            }
            None => format!("Their WhatsApp user id changed to {new}."),
        },
        (kind, _, _) => format!("WhatsApp notice ({kind})."),
    };
    if change.body.trim().is_empty() {
        return said;
    }
    format!("{said} WhatsApp says: \"{}\"", change.body)
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

    fn bsuid() -> CustomerId {
        CustomerId::user_id("US.13491208655302741918").unwrap()
    }

    #[test]
    fn a_username_customer_without_a_phone_is_recorded_by_bsuid_and_username_and_no_phone() {
        let mut message = message(InboundKind::Text { body: "hi".into() });
        message.from = bsuid();
        message.user_id = Some(bsuid());
        message.username = Some("ana.lima".into());

        let fields = inbound_record(&message);

        assert_eq!(fields["From_User_Id__c"], "US.13491208655302741918");
        assert_eq!(fields["From_Username__c"], "ana.lima");
        assert!(
            !fields.contains_key("From_Phone__c"),
            "never \"+US.…\": {fields:?}"
        );
        assert!(fields.contains_key("Window_Expires_At__c"));
    }

    #[test]
    fn a_bsuid_customers_answer_to_our_contact_request_fills_their_phone() {
        let card = SharedContact {
            name: "Ana Lima".into(),
            phones: vec![
                ("+55 11 3333-4444".into(), None),
                ("+55 11 98765-4321".into(), Some("5511987654321".into())),
            ],
            emails: vec![],
        };
        let answer = |from_contact_request| {
            let mut message = message(InboundKind::Contacts {
                contacts: vec![card.clone()],
                from_contact_request,
            });
            message.from = bsuid();
            inbound_record(&message)
        };

        assert_eq!(answer(true)["From_Phone__c"], "+5511987654321");
        assert!(
            !answer(false).contains_key("From_Phone__c"),
            "a card shared unasked is someone else's"
        );
    }

    #[test]
    fn a_customer_with_phone_and_bsuid_gets_both_and_a_long_username_is_cut() {
        let mut message = message(InboundKind::Text { body: "hi".into() });
        message.user_id = Some(bsuid());
        message.username = Some("u".repeat(300));

        let fields = inbound_record(&message);

        assert_eq!(fields["From_Phone__c"], "+14155550101");
        assert_eq!(fields["From_User_Id__c"], "US.13491208655302741918");
        assert_eq!(
            salesforce_length(fields["From_Username__c"].as_str().unwrap()),
            USERNAME_CHARS
        );
    }

    #[test]
    fn each_new_type_gets_its_message_type_and_a_body_a_rep_can_act_on() {
        let record = |kind| {
            let fields = inbound_record(&message(kind));
            (
                fields["Message_Type__c"].as_str().unwrap().to_string(),
                fields["Body__c"].as_str().unwrap().to_string(),
            )
        };
        let contact = SharedContact {
            name: "Ana Lima".into(),
            phones: vec![("+55 11 98765-4321".into(), Some("5511987654321".into()))],
            emails: vec!["ana@example.com".into()],
        };
        let item = |sku: &str, quantity: f64, price: f64| OrderItem {
            product_retailer_id: sku.into(),
            quantity,
            item_price: Some(price),
            currency: Some("BRL".into()),
        };

        let cases = [
            (
                InboundKind::Contacts { contacts: vec![contact.clone()], from_contact_request: false },
                ("Contacts", "Shared a contact: Ana Lima, +55 11 98765-4321, ana@example.com"),
            ),
            (
                InboundKind::Contacts { contacts: vec![contact], from_contact_request: true },
                ("Contacts", "Shared their contact details when asked: Ana Lima, +55 11 98765-4321, ana@example.com"),
            ),
            (
                InboundKind::Order {
                    catalog_id: "123".into(),
                    items: vec![item("SKU-1", 2.0, 10.0), item("SKU-2", 1.0, 5.5)],
                    note: Some("by Friday".into()),
                },
                ("Order", "Placed an order from catalog 123: 2 × SKU-1 at 10.00 BRL, 1 × SKU-2 at 5.50 BRL; total 25.50 BRL; note: by Friday"),
            ),
            (
                InboundKind::FlowReply {
                    name: Some("signup".into()),
                    body: Some("Sent".into()),
                    response_json: r#"{"flow_token":"t","name":"Ana","date":"2026-12-01"}"#.into(),
                },
                ("Flow Reply", "Answered the WhatsApp Flow \"signup\": name = Ana, date = 2026-12-01"),
            ),
            (
                InboundKind::RequestWelcome,
                ("System", "Opened the chat on WhatsApp (no message yet)"),
            ),
            (
                InboundKind::System(SystemChange {
                    kind: "user_changed_number".into(),
                    body: "Ana changed their phone number".into(),
                    new_wa_id: Some("16505559999".parse().unwrap()),
                    previous_user_id: None,
                    new_user_id: None,
                }),
                ("System", "Changed their WhatsApp number to +16505559999. WhatsApp says: \"Ana changed their phone number\""),
            ),
            (
                InboundKind::Unsupported { reason: "131051 Message type unknown".into() },
                ("Text", "Sent a message WhatsApp cannot show here (131051 Message type unknown). Ask the customer to send it again another way."),
            ),
            (
                InboundKind::Other { kind: "poll".into(), summary: r#"{"q":"Lunch?"}"#.into() },
                ("Text", "Sent a WhatsApp message of type \"poll\", which sfwa cannot show in words yet. Its content: {\"q\":\"Lunch?\"}"),
            ),
            (
                InboundKind::Location { latitude: 1.5, longitude: 2.0, name: None, address: Some("Main St 1".into()) },
                ("Location", "Shared a location: Main St 1 (1.5, 2)"),
            ),
        ];

        for (kind, (message_type, body)) in cases {
            assert_eq!(record(kind), (message_type.to_string(), body.to_string()));
        }
    }

    #[test]
    fn a_user_id_change_and_an_order_without_prices_say_what_they_can() {
        let body = |kind| inbound_record(&message(kind))["Body__c"].clone();

        let changed = body(InboundKind::System(SystemChange {
            kind: "user_changed_user_id".into(),
            body: String::new(),
            new_wa_id: None,
            previous_user_id: CustomerId::user_id("US.111").ok(),
            new_user_id: CustomerId::user_id("US.222").ok(),
        }));
        let unpriced = body(InboundKind::Order {
            catalog_id: String::new(),
            items: vec![OrderItem {
                product_retailer_id: "SKU-9".into(),
                quantity: 1.5,
                item_price: None,
                currency: None,
            }],
            note: None,
        });

        assert_eq!(
            changed,
            "Their WhatsApp user id changed from US.111 to US.222."
        );
        assert_eq!(unpriced, "Placed an order: 1.5 × SKU-9");
    }

    #[test]
    fn a_group_message_says_so_names_the_group_and_claims_no_window() {
        let mut group = message(InboundKind::Text {
            body: "Lunch at 1?".into(),
        });
        group.group_id = Some("120363025246125486".into());

        let fields = inbound_record(&group);

        assert_eq!(
            fields["Body__c"],
            "In the WhatsApp group 120363025246125486, Ana wrote: Lunch at 1?"
        );
        assert_eq!(fields["Group_Id__c"], "120363025246125486");
        assert!(!fields.contains_key("Window_Expires_At__c"));
    }

    #[test]
    fn a_standby_message_says_metas_agent_handled_it_and_still_opens_the_window() {
        let mut standby = message(InboundKind::Text {
            body: "Still there?".into(),
        });
        standby.channel = InboundChannel::Standby;

        let fields = inbound_record(&standby);

        let body = fields["Body__c"].as_str().unwrap();
        assert!(body.starts_with("[Meta's business agent handled"), "{body}");
        assert!(body.ends_with("Still there?"), "{body}");
        assert!(fields.contains_key("Window_Expires_At__c"));
    }

    #[test]
    fn an_ad_referral_fills_its_fields_and_a_url_too_long_for_its_field_is_left_out() {
        let mut clicked = message(InboundKind::Text {
            body: "Is it in stock?".into(),
        });
        clicked.referral = Some(Referral {
            source_url: Some("https://fb.me/ad1".into()),
            source_type: Some("ad".into()),
            headline: Some("Spring sale".into()),
            ctwa_clid: Some("ARAkLkA8rmlFeiCktEJQ".into()),
            ..Referral::default()
        });
        let mut long = clicked.clone();
        long.referral.as_mut().unwrap().source_url =
            Some(format!("https://fb.me/{}", "a".repeat(300)));

        let fields = inbound_record(&clicked);
        let long = inbound_record(&long);

        assert_eq!(fields["Referral_Source_Type__c"], "ad");
        assert_eq!(fields["Referral_Source_URL__c"], "https://fb.me/ad1");
        assert_eq!(fields["Referral_Headline__c"], "Spring sale");
        assert_eq!(fields["Referral_Click_Id__c"], "ARAkLkA8rmlFeiCktEJQ");
        assert_eq!(
            fields["Body__c"],
            "Is it in stock?\n\nCame from the click-to-WhatsApp ad \"Spring sale\" (https://fb.me/ad1)."
        );
        assert!(!long.contains_key("Referral_Source_URL__c"));
        assert_eq!(long["Referral_Headline__c"], "Spring sale");
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
