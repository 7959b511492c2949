//! An [`OutboundMessage`] as the exact JSON body of `POST /{version}/{phone_number_id}/messages`.
//!
//! Pure: no I/O, so every shape is unit-tested against Meta's documented examples. Every body
//! carries `biz_opaque_callback_data` = the record Id, which Meta echoes in the message's status
//! webhooks; that echo is how a send with an unknown outcome is resolved (DESIGN.md guarantee 1).

use serde_json::{json, Map, Value};

use crate::domain::message::{MediaKind, MediaSource, MessageKind, OutboundMessage};
use crate::domain::template::{
    BodyParameters, ButtonKind, HeaderMediaKind, HeaderParameter, TemplateParameters,
};

/// The request body for `message`.
pub fn request_body(message: &OutboundMessage) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "biz_opaque_callback_data": message.record_id.as_str(),
    });
    // Meta reads a phone from `to` and a business-scoped user id only from `recipient`: a BSUID
    // in `to` is dropped without an error.
    let address = if message.to.is_user_id() {
        "recipient"
    } else {
        "to"
    };
    body[address] = json!(message.to.as_str());
    let (kind, payload) = match &message.kind {
        MessageKind::Text { body } => (
            "text",
            // Link previews fetch the URL from Meta's side and change how the message looks;
            // reps did not ask for them.
            json!({"preview_url": false, "body": body}),
        ),
        MessageKind::Template {
            name,
            language,
            parameters,
        } => ("template", template(name, language, parameters)),
        MessageKind::Media {
            kind,
            source,
            caption,
            filename,
        } => (kind.as_str(), media(*kind, source, caption, filename)),
        MessageKind::RequestContactInfo { body } => (
            "interactive",
            // The button is WhatsApp's own (its text is fixed); only the body is ours.
            json!({
                "type": "request_contact_info",
                "body": {"text": body},
                "action": {"name": "request_contact_info"},
            }),
        ),
    };
    body["type"] = json!(kind);
    body[kind] = payload;
    body
}

fn media(
    kind: MediaKind,
    source: &MediaSource,
    caption: &Option<String>,
    filename: &Option<String>,
) -> Value {
    let mut object = Map::new();
    match source {
        MediaSource::Link(link) => object.insert("link".into(), json!(link)),
        MediaSource::Uploaded { media_id } => object.insert("id".into(), json!(media_id)),
        // The send path uploads a Salesforce File before sending (`pipeline::media_upload`); were
        // one to get here, Meta would refuse the body for having neither link nor id (100), and
        // the record would fail naming Meta's words rather than go out wrong.
        MediaSource::File(_) => None,
    };
    // Meta accepts captions on image, video and document only, and filenames on documents only.
    if kind != MediaKind::Audio {
        if let Some(caption) = caption {
            object.insert("caption".into(), json!(caption));
        }
    }
    if kind == MediaKind::Document {
        if let Some(filename) = filename {
            object.insert("filename".into(), json!(filename));
        }
    }
    Value::Object(object)
}

fn template(name: &str, language: &str, parameters: &TemplateParameters) -> Value {
    let mut components = Vec::new();
    if let Some(header) = &parameters.header {
        components.push(json!({"type": "header", "parameters": [header_parameter(header)]}));
    }
    if !parameters.body.is_empty() {
        let body: Vec<Value> = match &parameters.body {
            BodyParameters::Positional(values) => values
                .iter()
                .map(|text| json!({"type": "text", "text": text}))
                .collect(),
            BodyParameters::Named(values) => values
                .iter()
                .map(|(name, text)| json!({"type": "text", "parameter_name": name, "text": text}))
                .collect(),
        };
        components.push(json!({"type": "body", "parameters": body}));
    }
    for button in &parameters.buttons {
        let (sub_type, parameter) = match button.kind {
            ButtonKind::Url => ("url", json!({"type": "text", "text": button.value})),
            ButtonKind::QuickReply => (
                "quick_reply",
                json!({"type": "payload", "payload": button.value}),
            ),
        };
        components.push(json!({
            "type": "button",
            "sub_type": sub_type,
            // Meta wants the index as a string.
            "index": button.index.to_string(),
            "parameters": [parameter],
        }));
    }
    let mut template = json!({"name": name, "language": {"code": language}});
    // A template without variables is sent without components (hello_world).
    if !components.is_empty() {
        template["components"] = Value::Array(components);
    }
    template
}

fn header_parameter(header: &HeaderParameter) -> Value {
    match header {
        HeaderParameter::Text(text) => json!({"type": "text", "text": text}),
        HeaderParameter::Media {
            kind,
            link,
            filename,
        } => {
            let mut media = json!({"link": link});
            if let (HeaderMediaKind::Document, Some(filename)) = (kind, filename) {
                media["filename"] = json!(filename);
            }
            json!({"type": kind.as_str(), kind.as_str(): media})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::CustomerId;
    use crate::domain::phone::E164;
    use crate::domain::sf_id::SfId;

    fn message(kind: MessageKind) -> OutboundMessage {
        OutboundMessage {
            record_id: SfId::parse("a005g0000012345AAA").expect("valid id"),
            to: CustomerId::from_phone(&E164::parse("+16505551234", None).expect("valid phone")),
            business_number_id: None,
            kind,
            scheduled_at: None,
        }
    }

    #[test]
    fn text_is_metas_text_body_without_preview_and_with_the_record_id_echo() {
        let body = request_body(&message(MessageKind::Text { body: "Hi".into() }));
        assert_eq!(
            body,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "16505551234", "biz_opaque_callback_data": "a005g0000012345AAA",
                   "type": "text", "text": {"preview_url": false, "body": "Hi"}})
        );
    }

    #[test]
    fn template_with_header_media_body_and_url_button_matches_metas_example() {
        let parameters = TemplateParameters::parse(Some(
            r#"{"body":["Jessica"],"header":{"type":"image","link":"https://x.test/a.png"},
                "buttons":[{"sub_type":"url","index":0,"text":"ORD-1"}]}"#,
        ))
        .expect("parameters");
        let body = request_body(&message(MessageKind::Template {
            name: "order_update".into(),
            language: "en_US".into(),
            parameters,
        }));
        assert_eq!(body["type"], "template");
        assert_eq!(
            body["template"],
            json!({"name": "order_update", "language": {"code": "en_US"}, "components": [
                {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.test/a.png"}}]},
                {"type": "body", "parameters": [{"type": "text", "text": "Jessica"}]},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "ORD-1"}]}
            ]})
        );
    }

    #[test]
    fn named_body_parameters_carry_their_names_and_quick_replies_a_payload() {
        let parameters = TemplateParameters::parse(Some(
            r#"{"body":{"first_name":"Ana"},"header":{"type":"document","link":"https://x.test/q.pdf","filename":"q.pdf"},
                "buttons":[{"sub_type":"quick_reply","index":1,"payload":"STOP"}]}"#,
        ))
        .expect("parameters");
        let body = request_body(&message(MessageKind::Template {
            name: "t".into(),
            language: "de".into(),
            parameters,
        }));
        let components = &body["template"]["components"];
        assert_eq!(
            components[0]["parameters"][0],
            json!({"type": "document", "document": {"link": "https://x.test/q.pdf", "filename": "q.pdf"}})
        );
        assert_eq!(
            components[1]["parameters"][0],
            json!({"type": "text", "parameter_name": "first_name", "text": "Ana"})
        );
        assert_eq!(
            components[2],
            json!({"type": "button", "sub_type": "quick_reply", "index": "1",
                   "parameters": [{"type": "payload", "payload": "STOP"}]})
        );
    }

    #[test]
    fn a_template_without_parameters_has_no_components() {
        let body = request_body(&message(MessageKind::Template {
            name: "hello_world".into(),
            language: "en_US".into(),
            parameters: TemplateParameters::default(),
        }));
        assert_eq!(
            body["template"],
            json!({"name": "hello_world", "language": {"code": "en_US"}})
        );
    }

    #[test]
    fn media_goes_by_link_with_caption_and_documents_keep_their_filename() {
        let document = request_body(&message(MessageKind::Media {
            kind: MediaKind::Document,
            source: MediaSource::Link("https://x.test/q.pdf".into()),
            caption: Some("Your quote".into()),
            filename: Some("quote.pdf".into()),
        }));
        assert_eq!(document["type"], "document");
        assert_eq!(
            document["document"],
            json!({"link": "https://x.test/q.pdf", "caption": "Your quote", "filename": "quote.pdf"})
        );
        let image = request_body(&message(MessageKind::Media {
            kind: MediaKind::Image,
            source: MediaSource::Link("https://x.test/a.png".into()),
            caption: None,
            filename: Some("ignored.png".into()),
        }));
        assert_eq!(image["image"], json!({"link": "https://x.test/a.png"}));
    }

    #[test]
    fn an_uploaded_file_goes_by_media_id_and_never_with_a_link() {
        let document = request_body(&message(MessageKind::Media {
            kind: MediaKind::Document,
            source: MediaSource::Uploaded {
                media_id: "1037543291543636".into(),
            },
            caption: Some("Your quote".into()),
            filename: Some("Quote Q-1001.pdf".into()),
        }));

        assert_eq!(
            document["document"],
            json!({"id": "1037543291543636", "caption": "Your quote", "filename": "Quote Q-1001.pdf"})
        );
    }

    #[test]
    fn a_customer_known_by_user_id_is_addressed_in_recipient_and_never_in_to() {
        let mut to_user = message(MessageKind::Text { body: "Hi".into() });
        to_user.to = CustomerId::user_id("US.13491208655302741918").expect("a BSUID");

        let body = request_body(&to_user);

        assert_eq!(body["recipient"], "US.13491208655302741918");
        assert!(body.get("to").is_none(), "{body}");
        assert_eq!(body["text"]["body"], "Hi");
    }

    #[test]
    fn a_customer_known_by_phone_is_addressed_in_to_and_never_in_recipient() {
        let body = request_body(&message(MessageKind::Text { body: "Hi".into() }));

        assert_eq!(body["to"], "16505551234");
        assert!(body.get("recipient").is_none(), "{body}");
    }

    #[test]
    fn request_contact_info_is_metas_interactive_message_with_the_body_as_its_text() {
        let body = request_body(&message(MessageKind::RequestContactInfo {
            body: "Share your number so we can call you back.".into(),
        }));

        assert_eq!(body["type"], "interactive");
        assert_eq!(
            body["interactive"],
            json!({"type": "request_contact_info",
                   "body": {"text": "Share your number so we can call you back."},
                   "action": {"name": "request_contact_info"}})
        );
    }
}
