//! Parsing and validating `POST /{version}/{phone_number_id}/messages` bodies the way Meta does.
//!
//! The raw JSON is checked field by field (not via a derived DTO) because Meta's error for each
//! missing or malformed field is specific, and the simulator must return the same code.

use serde_json::Value;

use super::customers::is_user_id;
use super::graph_error::GraphError;
use super::templates::{check_template_send, TemplateDefinition};

/// Meta's limits on free text.
const MAX_TEXT_BODY_CHARS: usize = 4096;
const MAX_CAPTION_CHARS: usize = 1024;
const MAX_CALLBACK_DATA_CHARS: usize = 512;

/// Media kinds a business can send.
const MEDIA_TYPES: [&str; 5] = ["image", "document", "video", "audio", "sticker"];
/// Other session-message types the simulator accepts with light checks.
const OTHER_TYPES: [&str; 4] = ["interactive", "location", "contacts", "reaction"];

/// Whom a send addresses, as Meta reads the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `to`: a phone number, reduced to digits.
    Phone(String),
    /// `recipient` (without `to`): a BSUID or parent BSUID.
    UserId(String),
    /// A BSUID put in `to`. Meta reads `to` as a phone number only (BSUIDs go in `recipient`):
    /// the send is accepted on the phone-number path — `wa_id` is the digits Meta keeps of it —
    /// and never delivered. The simulator reports that as Meta reports any number it cannot
    /// deliver to: a `failed` status with 131026. Refusing it synchronously would hide a client
    /// that puts BSUIDs in `to` until production, where nothing refuses it.
    MisplacedUserId { digits: String },
}

/// A send that passed validation.
#[derive(Clone, Debug)]
pub struct ValidSend {
    /// `to` (or, without `to`, `recipient`) exactly as given; echoed in `contacts[].input`.
    pub input: String,
    pub address: Address,
    /// `text`, `image`, `template`, …
    pub message_type: String,
    /// For templates: (name, language, category).
    pub template: Option<(String, String, String)>,
    pub biz_opaque_callback_data: Option<String>,
}

impl ValidSend {
    pub fn is_template(&self) -> bool {
        self.template.is_some()
    }
}

/// Validates a send. `templates` is the current registry.
pub fn validate_send(
    body: &[u8],
    templates: &[TemplateDefinition],
) -> Result<(ValidSend, Value), GraphError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| GraphError::invalid_parameter("The request body is not valid JSON."))?;
    if !request.is_object() {
        return Err(GraphError::invalid_parameter(
            "The request body must be a JSON object.",
        ));
    }
    messaging_product(request.get("messaging_product").and_then(Value::as_str))?;
    let (input, address) = read_address(&request)?;
    // Meta defaults a missing type to text.
    let message_type = request
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("text")
        .to_owned();
    let biz_opaque_callback_data = match request.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(data)) if data.chars().count() <= MAX_CALLBACK_DATA_CHARS => {
            Some(data.clone())
        }
        Some(_) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param biz_opaque_callback_data must be a string of at most {MAX_CALLBACK_DATA_CHARS} characters."
            )))
        }
    };
    let mut template = None;
    match message_type.as_str() {
        "text" => check_text(&request)?,
        "template" => {
            let object = request.get("template").ok_or_else(|| {
                GraphError::invalid_parameter("The parameter template is required.")
            })?;
            let definition = check_template_send(object, templates)?;
            template = Some((
                definition.name.clone(),
                definition.language.clone(),
                definition.category.to_lowercase(),
            ));
        }
        media if MEDIA_TYPES.contains(&media) => check_media(&request, media)?,
        other if OTHER_TYPES.contains(&other) => {
            if !request.get(other).is_some_and(Value::is_object) {
                return Err(GraphError::invalid_parameter(format!(
                    "The parameter {other} is required."
                )));
            }
        }
        other => return Err(GraphError::unsupported_message_type(other)),
    }
    Ok((
        ValidSend {
            input,
            address,
            message_type,
            template,
            biz_opaque_callback_data,
        },
        request,
    ))
}

/// `to` and `recipient` as Meta reads them: `to` takes precedence when both are given (the send
/// then follows the phone-number path and `recipient` is ignored); `recipient` alone must be a
/// BSUID or parent BSUID.
fn read_address(request: &Value) -> Result<(String, Address), GraphError> {
    if let Some(to) = request.get("to").and_then(Value::as_str) {
        let address = if is_user_id(to) {
            let digits = to.chars().filter(char::is_ascii_digit).collect();
            Address::MisplacedUserId { digits }
        } else {
            Address::Phone(parse_recipient(to)?)
        };
        return Ok((to.to_owned(), address));
    }
    match request.get("recipient") {
        None | Some(Value::Null) => Err(GraphError::invalid_parameter(
            "The parameter to is required.",
        )),
        Some(Value::String(recipient)) if is_user_id(recipient) => {
            Ok((recipient.clone(), Address::UserId(recipient.clone())))
        }
        Some(_) => Err(GraphError::invalid_parameter(
            "Param recipient must be a business-scoped user ID or parent business-scoped user ID.",
        )),
    }
}

/// A plausible international number: optional `+`, then 8–15 digits.
pub fn parse_recipient(to: &str) -> Result<String, GraphError> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    let plausible = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    if plausible && !digits.starts_with('0') {
        Ok(digits.to_owned())
    } else {
        // Meta's actual details for a malformed number are this terse.
        Err(GraphError::invalid_parameter("Parameter Invalid"))
    }
}

fn check_text(request: &Value) -> Result<(), GraphError> {
    let body = request
        .get("text")
        .and_then(|text| text.get("body"))
        .and_then(Value::as_str)
        .filter(|body| !body.is_empty())
        .ok_or_else(|| GraphError::invalid_parameter("The parameter text['body'] is required."))?;
    if body.chars().count() > MAX_TEXT_BODY_CHARS {
        return Err(GraphError::invalid_parameter(format!(
            "Param text['body'] must be at most {MAX_TEXT_BODY_CHARS} characters long."
        )));
    }
    Ok(())
}

fn check_media(request: &Value, kind: &str) -> Result<(), GraphError> {
    let media = request
        .get(kind)
        .filter(|media| media.is_object())
        .ok_or_else(|| {
            GraphError::invalid_parameter(format!("The parameter {kind} is required."))
        })?;
    let has_link = media
        .get("link")
        .and_then(Value::as_str)
        .is_some_and(|l| !l.is_empty());
    let has_id = media
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|i| !i.is_empty());
    if has_link == has_id {
        return Err(GraphError::invalid_parameter(format!(
            "Please specify exactly one of {kind}['link'] or {kind}['id']."
        )));
    }
    if let Some(caption) = media.get("caption") {
        if matches!(kind, "audio" | "sticker") {
            return Err(GraphError::invalid_parameter(format!(
                "Param {kind}['caption'] is not supported for {kind} messages."
            )));
        }
        let length = caption
            .as_str()
            .map(|c| c.chars().count())
            .unwrap_or(usize::MAX);
        if length > MAX_CAPTION_CHARS {
            return Err(GraphError::invalid_parameter(format!(
                "Param {kind}['caption'] must be at most {MAX_CAPTION_CHARS} characters long."
            )));
        }
    }
    if let Some(filename) = media.get("filename") {
        if kind != "document" || !filename.is_string() {
            return Err(GraphError::invalid_parameter(format!(
                "Param {kind}['filename'] is only valid as a string on document messages."
            )));
        }
    }
    Ok(())
}

/// Meta's answer to a request's `messaging_product`: it must be `whatsapp` (sends and media
/// uploads alike).
pub fn messaging_product(value: Option<&str>) -> Result<(), GraphError> {
    match value {
        Some("whatsapp") => Ok(()),
        None => Err(GraphError::invalid_parameter(
            "The parameter messaging_product is required.",
        )),
        Some(other) => Err(GraphError::invalid_parameter(format!(
            "Param messaging_product must be one of {{WHATSAPP}} - got \"{other}\"."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_accept_plus_and_reject_letters_and_short_numbers() {
        assert_eq!(
            parse_recipient("+16505551234").ok().as_deref(),
            Some("16505551234")
        );
        assert!(parse_recipient("1650555").is_err());
        assert!(parse_recipient("1650555123a").is_err());
        assert!(parse_recipient("0033612345678").is_err());
    }

    fn address_of(request: serde_json::Value) -> Result<(String, Address), GraphError> {
        read_address(&request)
    }

    #[test]
    fn recipient_alone_addresses_a_bsuid_and_to_wins_when_both_are_given() {
        let by_bsuid = address_of(serde_json::json!({"recipient": "US.13491208655302741918"}));
        let both = address_of(
            serde_json::json!({"to": "+16505551234", "recipient": "US.13491208655302741918"}),
        );

        assert_eq!(
            by_bsuid.ok(),
            Some((
                "US.13491208655302741918".to_owned(),
                Address::UserId("US.13491208655302741918".to_owned())
            ))
        );
        assert_eq!(
            both.ok(),
            Some((
                "+16505551234".to_owned(),
                Address::Phone("16505551234".to_owned())
            ))
        );
    }

    #[test]
    fn a_bsuid_in_to_is_taken_as_a_number_and_a_phone_in_recipient_is_refused() {
        let misplaced = address_of(serde_json::json!({"to": "US.13491208655302741918"}));
        let phone_as_recipient = address_of(serde_json::json!({"recipient": "16505551234"}));
        let neither = address_of(serde_json::json!({}));

        assert_eq!(
            misplaced.ok().map(|(_, address)| address),
            Some(Address::MisplacedUserId {
                digits: "13491208655302741918".to_owned()
            })
        );
        assert_eq!(phone_as_recipient.err().map(|error| error.code), Some(100));
        assert_eq!(neither.err().map(|error| error.code), Some(100));
    }
}
