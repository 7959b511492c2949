//! The message-template registry and Meta's checks of a `template` send against it.
//!
//! Meta validates the request's components against the approved definition: the name must exist in
//! the requested language and be APPROVED (132001), PAUSED/DISABLED have their own codes
//! (132015/132016), each component must carry exactly as many parameters as the definition has
//! placeholders (132000), and a media header needs its media (132012).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph_error::GraphError;

/// Review status of a template, as Meta's template API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
}

/// Header of a template: text with placeholders, or a media kind that each send must supply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateHeader {
    Text {
        #[serde(default)]
        params: usize,
    },
    Image,
    Video,
    Document,
}

/// A button of a template; only URL buttons with a dynamic suffix take a parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateButton {
    Url {
        #[serde(default)]
        params: usize,
    },
    QuickReply,
}

/// One template in one language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateDefinition {
    pub name: String,
    pub language: String,
    pub status: TemplateStatus,
    /// `UTILITY`, `MARKETING` or `AUTHENTICATION`; echoed lower-case in status `pricing.category`.
    #[serde(default = "default_category")]
    pub category: String,
    #[serde(default)]
    pub header: Option<TemplateHeader>,
    /// Number of positional body placeholders (`{{1}}`…); ignored when `body_param_names` is set.
    #[serde(default)]
    pub body_params: usize,
    /// Named-parameter templates (`{{first_name}}`): each send's body parameters must carry these
    /// names in `parameter_name`.
    #[serde(default)]
    pub body_param_names: Vec<String>,
    #[serde(default)]
    pub buttons: Vec<TemplateButton>,
    /// Meta's quality rating: `GREEN`, `YELLOW`, `RED` or `UNKNOWN` (a new template's).
    #[serde(default = "default_quality")]
    pub quality: String,
    /// Template pacing: Meta holds a new marketing template's first sends while it assesses how
    /// customers take it; such a send answers `"message_status":"held_for_quality_assessment"`.
    #[serde(default)]
    pub paced: bool,
}

fn default_category() -> String {
    "UTILITY".to_owned()
}

fn default_quality() -> String {
    "UNKNOWN".to_owned()
}

impl TemplateDefinition {
    /// The body's placeholders as Meta writes them in the template's text.
    pub fn body_placeholders(&self) -> Vec<String> {
        if self.body_param_names.is_empty() {
            (1..=self.body_params).map(|i| i.to_string()).collect()
        } else {
            self.body_param_names.clone()
        }
    }

    fn expected_body_params(&self) -> usize {
        if self.body_param_names.is_empty() {
            self.body_params
        } else {
            self.body_param_names.len()
        }
    }
}

/// The templates a fresh simulator knows.
pub fn default_templates() -> Vec<TemplateDefinition> {
    let approved = |name: &str| TemplateDefinition {
        name: name.to_owned(),
        language: "en_US".to_owned(),
        status: TemplateStatus::Approved,
        category: "UTILITY".to_owned(),
        header: None,
        body_params: 0,
        body_param_names: Vec::new(),
        buttons: Vec::new(),
        quality: "GREEN".to_owned(),
        paced: false,
    };
    vec![
        approved("hello_world"),
        TemplateDefinition {
            body_params: 2,
            ..approved("appointment_reminder")
        },
        TemplateDefinition {
            header: Some(TemplateHeader::Image),
            body_params: 1,
            buttons: vec![TemplateButton::Url { params: 1 }],
            ..approved("order_update")
        },
        TemplateDefinition {
            body_param_names: vec!["first_name".to_owned(), "order_id".to_owned()],
            ..approved("order_confirmation_named")
        },
        TemplateDefinition {
            category: "MARKETING".to_owned(),
            body_params: 1,
            buttons: vec![TemplateButton::QuickReply, TemplateButton::QuickReply],
            ..approved("seasonal_promotion")
        },
    ]
}

/// Checks a request's `template` object against the registry; returns the matched definition.
pub fn check_template_send<'a>(
    template: &Value,
    registry: &'a [TemplateDefinition],
) -> Result<&'a TemplateDefinition, GraphError> {
    let name = template
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            GraphError::invalid_parameter("The parameter template['name'] is required.")
        })?;
    let language = template
        .get("language")
        .and_then(|language| language.get("code"))
        .and_then(Value::as_str)
        .filter(|code| !code.is_empty())
        .ok_or_else(|| {
            GraphError::invalid_parameter("The parameter template['language']['code'] is required.")
        })?;
    let definition = registry
        .iter()
        .find(|definition| definition.name == name && definition.language == language)
        .ok_or_else(|| GraphError::template_missing(name, language))?;
    match definition.status {
        TemplateStatus::Approved => {}
        TemplateStatus::Paused => return Err(GraphError::template_paused(name)),
        TemplateStatus::Disabled => return Err(GraphError::template_disabled(name)),
        // Meta treats a template that is not (yet) approved as absent from the translation.
        TemplateStatus::Pending | TemplateStatus::Rejected => {
            return Err(GraphError::template_missing(name, language))
        }
    }
    let components = match template.get("components") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(components)) => components.iter().collect(),
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param template['components'] must be an array.",
            ))
        }
    };
    check_header(definition, &components)?;
    check_body(definition, &components)?;
    check_buttons(definition, &components)?;
    Ok(definition)
}

fn component_type(component: &Value) -> &str {
    component.get("type").and_then(Value::as_str).unwrap_or("")
}

fn parameters(component: &Value) -> Result<Vec<&Value>, GraphError> {
    match component.get("parameters") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(parameters)) => Ok(parameters.iter().collect()),
        Some(_) => Err(GraphError::invalid_parameter(
            "Param template['components'][]['parameters'] must be an array.",
        )),
    }
}

fn count_mismatch(component: &str, got: usize, expected: usize) -> GraphError {
    GraphError::parameter_count_mismatch(format!(
        "{component}: number of localizable_params ({got}) does not match the expected number of params ({expected})"
    ))
}

fn check_text_parameter(parameter: &Value) -> Result<(), GraphError> {
    match parameter.get("type").and_then(Value::as_str) {
        Some("text") => match parameter.get("text").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => Ok(()),
            _ => Err(GraphError::invalid_parameter(
                "Parameter 'text' is mandatory for component parameter type 'text'",
            )),
        },
        Some("currency") | Some("date_time") | Some("payload") => Ok(()),
        other => Err(GraphError::template_parameter_format(format!(
            "Parameter type {} is not valid here",
            other.unwrap_or("(missing)")
        ))),
    }
}

fn check_header(definition: &TemplateDefinition, components: &[&Value]) -> Result<(), GraphError> {
    let header = components
        .iter()
        .find(|component| component_type(component) == "header");
    let header_parameters = match header {
        Some(header) => parameters(header)?,
        None => Vec::new(),
    };
    match &definition.header {
        None => {
            if !header_parameters.is_empty() {
                return Err(count_mismatch("header", header_parameters.len(), 0));
            }
        }
        Some(TemplateHeader::Text { params }) => {
            if header_parameters.len() != *params {
                return Err(count_mismatch("header", header_parameters.len(), *params));
            }
            for parameter in header_parameters {
                check_text_parameter(parameter)?;
            }
        }
        Some(media) => {
            let expected = match media {
                TemplateHeader::Image => "image",
                TemplateHeader::Video => "video",
                _ => "document",
            };
            let received = header_parameters
                .first()
                .and_then(|parameter| parameter.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN");
            if header_parameters.len() != 1 || received != expected {
                return Err(GraphError::template_parameter_format(format!(
                    "header: Format mismatch, expected {}, received {}",
                    expected.to_uppercase(),
                    received.to_uppercase()
                )));
            }
            let media_object = header_parameters[0].get(expected);
            let has_source = media_object
                .map(|media| {
                    media.get("link").and_then(Value::as_str).is_some()
                        || media.get("id").and_then(Value::as_str).is_some()
                })
                .unwrap_or(false);
            if !has_source {
                return Err(GraphError::invalid_parameter(format!(
                    "Parameter '{expected}' of the header must contain 'link' or 'id'"
                )));
            }
        }
    }
    Ok(())
}

fn check_body(definition: &TemplateDefinition, components: &[&Value]) -> Result<(), GraphError> {
    let body_parameters = match components
        .iter()
        .find(|component| component_type(component) == "body")
    {
        Some(body) => parameters(body)?,
        None => Vec::new(),
    };
    let expected = definition.expected_body_params();
    if body_parameters.len() != expected {
        return Err(count_mismatch("body", body_parameters.len(), expected));
    }
    for parameter in &body_parameters {
        check_text_parameter(parameter)?;
    }
    if !definition.body_param_names.is_empty() {
        for parameter in body_parameters {
            let name = parameter
                .get("parameter_name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !definition
                .body_param_names
                .iter()
                .any(|known| known == name)
            {
                return Err(GraphError::template_parameter_format(format!(
                    "body: parameter_name '{name}' does not match any parameter of the template"
                )));
            }
        }
    }
    Ok(())
}

fn check_buttons(definition: &TemplateDefinition, components: &[&Value]) -> Result<(), GraphError> {
    let mut supplied = vec![0usize; definition.buttons.len()];
    for component in components
        .iter()
        .filter(|component| component_type(component) == "button")
    {
        // Meta accepts the index as a string or a number.
        let index = match component.get("index") {
            Some(Value::String(text)) => text.parse::<usize>().ok(),
            Some(Value::Number(number)) => number.as_u64().map(|n| n as usize),
            _ => None,
        }
        .ok_or_else(|| {
            GraphError::invalid_parameter(
                "The parameter template['components'][]['index'] is required.",
            )
        })?;
        let Some(button) = definition.buttons.get(index) else {
            return Err(GraphError::invalid_parameter(format!(
                "Button at index {index} does not exist in the template"
            )));
        };
        let sub_type = component
            .get("sub_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let expected_sub_type = match button {
            TemplateButton::Url { .. } => "url",
            TemplateButton::QuickReply => "quick_reply",
        };
        if sub_type != expected_sub_type {
            return Err(GraphError::invalid_parameter(format!(
                "button at index {index}: sub_type must be '{expected_sub_type}', got '{sub_type}'"
            )));
        }
        let given = parameters(component)?;
        match button {
            TemplateButton::Url { params } => {
                if given.len() != *params {
                    return Err(count_mismatch(
                        &format!("button at index {index}"),
                        given.len(),
                        *params,
                    ));
                }
                for parameter in given {
                    check_text_parameter(parameter)?;
                }
            }
            TemplateButton::QuickReply => {}
        }
        supplied[index] = 1;
    }
    // A dynamic URL button whose parameter was left out entirely is a count mismatch too.
    for (index, button) in definition.buttons.iter().enumerate() {
        if let TemplateButton::Url { params } = button {
            if *params > 0 && supplied[index] == 0 {
                return Err(count_mismatch(
                    &format!("button at index {index}"),
                    0,
                    *params,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_update_with_all_parts_passes() {
        let registry = default_templates();
        let template = json!({"name":"order_update","language":{"code":"en_US"},"components":[
            {"type":"header","parameters":[{"type":"image","image":{"link":"https://x/y.png"}}]},
            {"type":"body","parameters":[{"type":"text","text":"Jessica"}]},
            {"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"ORD-1"}]}]});
        assert!(check_template_send(&template, &registry).is_ok());
    }

    #[test]
    fn missing_url_button_parameter_is_a_count_mismatch() {
        let registry = default_templates();
        let template = json!({"name":"order_update","language":{"code":"en_US"},"components":[
            {"type":"header","parameters":[{"type":"image","image":{"link":"https://x/y.png"}}]},
            {"type":"body","parameters":[{"type":"text","text":"Jessica"}]}]});
        let error = check_template_send(&template, &registry).unwrap_err();
        assert_eq!(error.code, 132000);
    }

    #[test]
    fn named_template_rejects_unknown_parameter_names() {
        let registry = default_templates();
        let template = json!({"name":"order_confirmation_named","language":{"code":"en_US"},"components":[
            {"type":"body","parameters":[
                {"type":"text","parameter_name":"first_name","text":"Ann"},
                {"type":"text","parameter_name":"nope","text":"1"}]}]});
        assert_eq!(
            check_template_send(&template, &registry).unwrap_err().code,
            132012
        );
    }
}
