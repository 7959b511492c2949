//! `Template_Parameters__c`, parsed.
//!
//! Admins write either a JSON array — body parameters in order, the common case — or an object:
//! `{"body": ["a","b"] | {"first_name": "Ana"}, "header": {"type": "image", "link": "https://…"},
//!   "buttons": [{"sub_type": "url", "index": 0, "text": "ORD-1"}]}`.
//! Every mistake is reported in words an admin can act on (INVALID_TEMPLATE_PARAMETERS).

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateParameters {
    pub body: BodyParameters,
    pub header: Option<HeaderParameter>,
    pub buttons: Vec<ButtonParameter>,
}

/// Body parameters: positional (`{{1}}`, `{{2}}`) or named (`{{first_name}}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyParameters {
    Positional(Vec<String>),
    Named(Vec<(String, String)>),
}

impl Default for BodyParameters {
    fn default() -> Self {
        BodyParameters::Positional(Vec::new())
    }
}

impl BodyParameters {
    pub fn len(&self) -> usize {
        match self {
            BodyParameters::Positional(values) => values.len(),
            BodyParameters::Named(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Header media kinds a template may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderMediaKind {
    Image,
    Video,
    Document,
}

impl HeaderMediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderMediaKind::Image => "image",
            HeaderMediaKind::Video => "video",
            HeaderMediaKind::Document => "document",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderParameter {
    Text(String),
    Media {
        kind: HeaderMediaKind,
        link: String,
        filename: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ButtonKind {
    /// A dynamic URL suffix.
    Url,
    /// The payload returned when the customer taps the button.
    QuickReply,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ButtonParameter {
    pub kind: ButtonKind,
    pub index: u8,
    pub value: String,
}

/// What is wrong with the JSON, said for an admin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct TemplateParameterError(pub String);

fn err(message: impl Into<String>) -> TemplateParameterError {
    TemplateParameterError(message.into())
}

impl TemplateParameters {
    /// Parses the field; blank means "no parameters".
    pub fn parse(text: Option<&str>) -> Result<TemplateParameters, TemplateParameterError> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(TemplateParameters::default());
        };
        let value: Value = serde_json::from_str(text).map_err(|e| {
            err(format!(
                "Template_Parameters__c is not valid JSON ({e}); write e.g. [\"Ana\", \"10:30\"]"
            ))
        })?;
        match value {
            Value::Array(items) => Ok(TemplateParameters {
                body: BodyParameters::Positional(strings(&items, "the list")?),
                ..Default::default()
            }),
            Value::Object(map) => {
                for key in map.keys() {
                    if !["body", "header", "buttons"].contains(&key.as_str()) {
                        return Err(err(format!(
                            "Template_Parameters__c has an unknown key \"{key}\"; use \"body\", \"header\" or \"buttons\""
                        )));
                    }
                }
                Ok(TemplateParameters {
                    body: map.get("body").map(body).transpose()?.unwrap_or_default(),
                    header: map.get("header").map(header).transpose()?,
                    buttons: map.get("buttons").map(buttons).transpose()?.unwrap_or_default(),
                })
            }
            _ => Err(err(
                "Template_Parameters__c must be a JSON list of body values or an object with body/header/buttons",
            )),
        }
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(items: &[Value], what: &str) -> Result<Vec<String>, TemplateParameterError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            scalar(v).ok_or_else(|| {
                err(format!(
                    "value {} of {what} must be text or a number, not {v}",
                    i + 1
                ))
            })
        })
        .collect()
}

fn body(value: &Value) -> Result<BodyParameters, TemplateParameterError> {
    match value {
        Value::Array(items) => Ok(BodyParameters::Positional(strings(items, "\"body\"")?)),
        Value::Object(map) => map
            .iter()
            .map(|(name, v)| {
                scalar(v).map(|s| (name.clone(), s)).ok_or_else(|| {
                    err(format!(
                        "body parameter \"{name}\" must be text or a number"
                    ))
                })
            })
            .collect::<Result<_, _>>()
            .map(BodyParameters::Named),
        _ => Err(err(
            "\"body\" must be a list of values or an object of named values",
        )),
    }
}

fn header(value: &Value) -> Result<HeaderParameter, TemplateParameterError> {
    let Some(map) = value.as_object() else {
        return Err(err(
            "\"header\" must be an object such as {\"type\":\"image\",\"link\":\"https://…\"}",
        ));
    };
    let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
    let media = |kind| {
        let link = text("link")
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
            .ok_or_else(|| err("a media \"header\" needs a \"link\" starting with https://"))?;
        Ok(HeaderParameter::Media {
            kind,
            link,
            filename: text("filename"),
        })
    };
    match kind {
        "image" => media(HeaderMediaKind::Image),
        "video" => media(HeaderMediaKind::Video),
        "document" => media(HeaderMediaKind::Document),
        "text" => text("text")
            .map(HeaderParameter::Text)
            .ok_or_else(|| err("a text \"header\" needs a \"text\" value")),
        other => Err(err(format!(
            "header type \"{other}\" is not supported; use image, video, document or text"
        ))),
    }
}

fn buttons(value: &Value) -> Result<Vec<ButtonParameter>, TemplateParameterError> {
    let Some(items) = value.as_array() else {
        return Err(err("\"buttons\" must be a list"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let n = i + 1;
            let kind = match item.get("sub_type").and_then(Value::as_str) {
                Some("url") => ButtonKind::Url,
                Some("quick_reply") => ButtonKind::QuickReply,
                _ => {
                    return Err(err(format!(
                        "button {n} needs \"sub_type\": \"url\" or \"quick_reply\""
                    )))
                }
            };
            let index = item
                .get("index")
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .filter(|i| *i < 10)
                .ok_or_else(|| err(format!("button {n} needs an \"index\" from 0 to 9")))?;
            let value = ["text", "payload"]
                .iter()
                .find_map(|k| item.get(*k).and_then(scalar))
                .ok_or_else(|| {
                    err(format!(
                        "button {n} needs a \"text\" (URL suffix) or \"payload\""
                    ))
                })?;
            Ok(ButtonParameter {
                kind,
                index: index as u8,
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_list_is_positional_body_parameters() {
        let parsed = TemplateParameters::parse(Some(r#"["Ana", 10]"#)).unwrap();
        assert_eq!(
            parsed.body,
            BodyParameters::Positional(vec!["Ana".into(), "10".into()])
        );
        assert!(parsed.header.is_none());
    }

    #[test]
    fn blank_means_no_parameters() {
        assert_eq!(
            TemplateParameters::parse(None).unwrap(),
            TemplateParameters::default()
        );
        assert_eq!(
            TemplateParameters::parse(Some("  ")).unwrap(),
            TemplateParameters::default()
        );
    }

    #[test]
    fn the_object_form_carries_named_body_header_media_and_buttons() {
        let parsed = TemplateParameters::parse(Some(
            r#"{"body":{"first_name":"Ana"},"header":{"type":"image","link":"https://x.test/a.png"},
                "buttons":[{"sub_type":"url","index":0,"text":"ORD-1"}]}"#,
        ))
        .unwrap();
        assert_eq!(
            parsed.body,
            BodyParameters::Named(vec![("first_name".into(), "Ana".into())])
        );
        assert_eq!(
            parsed.header,
            Some(HeaderParameter::Media {
                kind: HeaderMediaKind::Image,
                link: "https://x.test/a.png".into(),
                filename: None
            })
        );
        assert_eq!(
            parsed.buttons,
            vec![ButtonParameter {
                kind: ButtonKind::Url,
                index: 0,
                value: "ORD-1".into()
            }]
        );
    }

    #[test]
    fn mistakes_are_explained_for_an_admin() {
        let message = |text: &str| TemplateParameters::parse(Some(text)).unwrap_err().0;
        assert!(message("[\"a\"").contains("not valid JSON"));
        assert!(message("{\"bdy\":[]}").contains("unknown key \"bdy\""));
        assert!(message("[{\"x\":1}]").contains("value 1 of the list"));
        assert!(message("{\"header\":{\"type\":\"image\"}}").contains("\"link\""));
        assert!(message("{\"buttons\":[{\"sub_type\":\"url\",\"text\":\"a\"}]}").contains("index"));
        assert!(message("42").contains("must be a JSON list"));
    }
}
