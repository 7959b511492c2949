//! The template catalog's check of a template send, right before the window check in
//! `dispatch`: the template must exist in that language, be APPROVED, and the record must carry
//! the parameters it has (count and names per component, the header's media kind). A refusal is
//! `Failed` with a precise code and a sentence naming the template, the language and the fix —
//! without calling WhatsApp. A PAUSED template's messages wait for it instead (a setting per
//! number, on by default; bounded by `templates.max_paused_wait`).
//!
//! The catalog must never refuse a valid send: a verdict other than "go" from the stored catalog
//! is checked once against Meta (the template fetched by name, at most once a minute per
//! template: [`super::catalog_cache`]) before it
//! stands, and when the catalog cannot be read at all (no `whatsapp.business_account_id`, or
//! Meta refuses the listing: the token lacks `whatsapp_business_management`) the message goes
//! and WhatsApp judges it.
//!
//! [`judge`] is the pure core, shared with `sfwa plan`: what the store and the catalog know in,
//! a [`Verdict`] out. [`check`] is the send path's use of it (reads, the fetch-on-miss, and the
//! wait's writes). The catalog is filled by [`super::catalog_sync`].

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use crate::domain::message::{MessageKind, OutboundMessage};
use crate::domain::sf_id::SfId;
use crate::domain::template::{
    BodyParameters, ButtonKind, HeaderMediaKind, HeaderParameter, TemplateParameters,
};
use crate::domain::template_catalog::{
    ButtonSpec, CatalogTemplate, HeaderSpec, ParameterFormat, PAUSED,
};
use crate::pipeline::record_update;
use crate::store::templates;

use super::Dispatcher;

pub const TEMPLATE_NOT_FOUND: &str = "TEMPLATE_NOT_FOUND";
pub const TEMPLATE_NOT_APPROVED: &str = "TEMPLATE_NOT_APPROVED";
pub const TEMPLATE_PAUSED: &str = "TEMPLATE_PAUSED";
pub const TEMPLATE_PARAMETERS_MISMATCH: &str = "TEMPLATE_PARAMETERS_MISMATCH";
pub const TEMPLATE_HEADER_MISMATCH: &str = "TEMPLATE_HEADER_MISMATCH";

/// What the catalog knows of a send's template.
#[derive(Clone, Copy, Debug)]
pub enum Lookup<'a> {
    Known(&'a CatalogTemplate),
    /// The catalog was read and holds no such template in that language.
    Missing,
    /// The catalog cannot be read (not configured, or Meta refuses the listing).
    Unreadable,
}

/// How a paused template is met (`[templates]`, for the sending number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PausedPolicy {
    pub wait: bool,
    pub max_wait: Duration,
}

/// What the catalog says of a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// Failed without calling WhatsApp.
    Refuse {
        code: &'static str,
        message: String,
    },
    /// Queued until the template is approved again, at most until `until`.
    Wait {
        until: DateTime<Utc>,
        message: String,
    },
}

/// The catalog's verdict on sending template `name` in `language` with `parameters`: pure.
/// `paused_since` is when this message began waiting for the template, if it did.
pub fn judge(
    (name, language): (&str, &str),
    parameters: &TemplateParameters,
    lookup: Lookup<'_>,
    paused_since: Option<DateTime<Utc>>,
    policy: PausedPolicy,
    now: DateTime<Utc>,
) -> Verdict {
    let template = match lookup {
        Lookup::Unreadable => return Verdict::Go,
        Lookup::Missing => {
            return refuse(
                TEMPLATE_NOT_FOUND,
                format!(
                "Not sent: the WhatsApp account has no template '{name}' in language {language}. \
                     Check Template Name and Template Language against WhatsApp Manager (or the \
                     WhatsApp Template records), then set Status back to Queued."
            ),
            )
        }
        Lookup::Known(template) => template,
    };
    if template.status == PAUSED {
        return paused((name, language), paused_since, policy, now);
    }
    if !template.is_approved() {
        return refuse(
            TEMPLATE_NOT_APPROVED,
            format!(
                "Not sent: template '{name}' ({language}) is {} in WhatsApp, not APPROVED. Use an \
                 approved template, or wait for Meta's review, then set Status back to Queued.",
                template.status
            ),
        );
    }
    match check_parameters(template, parameters) {
        Ok(()) => Verdict::Go,
        Err((code, problem)) => refuse(
            code,
            format!(
                "Not sent: template '{name}' ({language}) {problem} Correct Template Parameters \
                 to match the template in WhatsApp Manager, then set Status back to Queued."
            ),
        ),
    }
}

fn refuse(code: &'static str, message: String) -> Verdict {
    Verdict::Refuse { code, message }
}

fn paused(
    (name, language): (&str, &str),
    since: Option<DateTime<Utc>>,
    policy: PausedPolicy,
    now: DateTime<Utc>,
) -> Verdict {
    let until = since.unwrap_or(now) + policy.max_wait;
    if !policy.wait || now >= until {
        let waited = if policy.wait {
            format!(
                " sfwa waited {} h for it to come back.",
                policy.max_wait.num_hours()
            )
        } else {
            String::new()
        };
        return refuse(
            TEMPLATE_PAUSED,
            format!(
                "Not sent: Meta paused template '{name}' ({language}) for its low quality.{waited} \
                 Use another template, or set Status back to Queued once WhatsApp Manager shows \
                 it active again."
            ),
        );
    }
    Verdict::Wait {
        until,
        message: format!(
            "Waiting: Meta paused template '{name}' ({language}) for its low quality. sfwa sends \
             this message as soon as the template is active again, or fails it at {} UTC.",
            until.format("%Y-%m-%d %H:%M")
        ),
    }
}

/// The record's parameters against the template's: body (count, or names), header, buttons.
fn check_parameters(
    template: &CatalogTemplate,
    parameters: &TemplateParameters,
) -> Result<(), (&'static str, String)> {
    check_body(template, &parameters.body).map_err(|p| (TEMPLATE_PARAMETERS_MISMATCH, p))?;
    check_header(&template.header, parameters.header.as_ref())
        .map_err(|p| (TEMPLATE_HEADER_MISMATCH, p))?;
    check_buttons(&template.buttons, parameters).map_err(|p| (TEMPLATE_PARAMETERS_MISMATCH, p))
}

fn is_named(template: &CatalogTemplate) -> bool {
    template.parameter_format == ParameterFormat::Named
        || template
            .body_params
            .iter()
            .any(|p| !p.chars().all(|c| c.is_ascii_digit()))
}

fn check_body(template: &CatalogTemplate, body: &BodyParameters) -> Result<(), String> {
    let expected = &template.body_params;
    let listed = expected
        .iter()
        .map(|p| format!("{{{{{p}}}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    match body {
        BodyParameters::Named(given) if !given.is_empty() && !is_named(template) => Err(format!(
            "takes positional body parameters ({listed}), but Template Parameters names them. \
             Give a JSON array of {} values.",
            expected.len()
        )),
        BodyParameters::Positional(given) if !given.is_empty() && is_named(template) => {
            Err(format!(
            "takes named body parameters ({listed}), but Template Parameters gives a list. Give \
             an object such as {{\"body\": {{\"{}\": \"…\"}}}}.",
            expected.first().map_or("name", String::as_str)
        ))
        }
        BodyParameters::Named(given) => {
            let mut names: Vec<&str> = given.iter().map(|(n, _)| n.as_str()).collect();
            let mut wanted: Vec<&str> = expected.iter().map(String::as_str).collect();
            names.sort_unstable();
            wanted.sort_unstable();
            if names == wanted {
                Ok(())
            } else {
                Err(format!(
                    "takes the body parameters {listed}, but Template Parameters names {}.",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            }
        }
        BodyParameters::Positional(given) if given.len() != expected.len() => Err(format!(
            "takes {} body parameter(s) ({}), but Template Parameters gives {}.",
            expected.len(),
            if listed.is_empty() { "none" } else { &listed },
            given.len()
        )),
        BodyParameters::Positional(_) => Ok(()),
    }
}

fn media_spec(kind: HeaderMediaKind) -> HeaderSpec {
    match kind {
        HeaderMediaKind::Image => HeaderSpec::Image,
        HeaderMediaKind::Video => HeaderSpec::Video,
        HeaderMediaKind::Document => HeaderSpec::Document,
    }
}

fn check_header(spec: &HeaderSpec, given: Option<&HeaderParameter>) -> Result<(), String> {
    let wanted = spec.as_meta().to_ascii_lowercase();
    match (spec, given) {
        (HeaderSpec::Other { .. }, _) | (HeaderSpec::None, None) => Ok(()),
        (HeaderSpec::Text { params: 0 }, None) | (HeaderSpec::Text { params: 1.. }, Some(HeaderParameter::Text(_))) => Ok(()),
        (HeaderSpec::None | HeaderSpec::Text { params: 0 }, Some(_)) => Err(
            "has no header parameter, but Template Parameters gives a header. Remove \"header\"."
                .to_string(),
        ),
        (HeaderSpec::Text { .. }, _) => Err(
            "has a text header with a parameter; give it as {\"header\": {\"type\": \"text\", \"text\": \"…\"}}."
                .to_string(),
        ),
        (media, Some(HeaderParameter::Media { kind, .. })) if *media == media_spec(*kind) => Ok(()),
        (_, Some(HeaderParameter::Media { kind, .. })) => Err(format!(
            "has a {wanted} header, but Template Parameters gives a {} header.",
            kind.as_str()
        )),
        (_, _) => Err(format!(
            "has a {wanted} header: give its link as {{\"header\": {{\"type\": \"{wanted}\", \"link\": \"https://…\"}}}}."
        )),
    }
}

fn check_buttons(spec: &[ButtonSpec], parameters: &TemplateParameters) -> Result<(), String> {
    for (index, button) in spec.iter().enumerate() {
        let given = parameters
            .buttons
            .iter()
            .any(|b| usize::from(b.index) == index && b.kind == ButtonKind::Url);
        if matches!(button, ButtonSpec::Url { params: 1.. }) && !given {
            return Err(format!(
                "has a link button at index {index} that needs its URL parameter; add \
                 {{\"sub_type\": \"url\", \"index\": {index}, \"text\": \"…\"}} to \"buttons\"."
            ));
        }
    }
    for given in &parameters.buttons {
        let fits = matches!(
            (spec.get(usize::from(given.index)), given.kind),
            (Some(ButtonSpec::Url { params: 1.. }), ButtonKind::Url)
                | (Some(ButtonSpec::QuickReply), ButtonKind::QuickReply)
        );
        if !fits {
            return Err(format!(
                "has no button at index {} that takes this parameter; remove it from \"buttons\".",
                given.index
            ));
        }
    }
    Ok(())
}

/// Template `name` fetched from Meta (every language) into the store: `Ok(the one in
/// `language`)`, or `Err` when the catalog cannot be read (then sends go unchecked for a while).
async fn refresh(
    dispatcher: &Dispatcher,
    (name, language): (&str, &str),
) -> anyhow::Result<Result<Option<CatalogTemplate>, ()>> {
    let catalog = &dispatcher.catalog;
    let waba_id = dispatcher.core.settings.whatsapp.business_account_id.trim();
    let listed = match dispatcher.whatsapp.catalog(waba_id, Some(name)).await {
        Ok(listed) => listed,
        Err(error) => {
            warn!(%error, template = name, "reading the template catalog failed; template sends go unchecked and WhatsApp judges them (sfwa doctor says why)");
            catalog.set_unreadable(Some(dispatcher.now()));
            return Ok(Err(()));
        }
    };
    catalog.set_unreadable(None);
    let wanted = listed.iter().find(|t| t.language == language).cloned();
    super::catalog_sync::store_fetched(&dispatcher.core, listed).await?;
    Ok(Ok(wanted))
}
/// The send path's catalog check (see the module's doc): `None` to go on, or the outcome
/// already applied (a wait) or to apply (a refusal, as `(code, message)`).
pub enum Step {
    /// It may go; `category` is the template's in the catalog (for the consent check), if known.
    Go {
        category: Option<String>,
    },
    Refuse {
        code: String,
        message: String,
    },
    Waiting,
}

/// Whether `number`'s messages wait for a paused template, and for how long at most.
pub fn paused_policy(
    settings: &crate::config::types::TemplateSettings,
    number: &str,
) -> PausedPolicy {
    PausedPolicy {
        wait: settings.waits_when_paused(number),
        max_wait: Duration::from_std(settings.max_paused_wait).unwrap_or(Duration::hours(10)),
    }
}

/// Checks `message` if it is a template: reads the catalog, fetches the template once when the
/// stored one would not go, and applies a wait.
pub async fn check(
    dispatcher: &Dispatcher,
    message: &OutboundMessage,
    number: &str,
) -> anyhow::Result<Step> {
    let MessageKind::Template {
        name,
        language,
        parameters,
    } = &message.kind
    else {
        return Ok(Step::Go { category: None });
    };
    if dispatcher
        .core
        .settings
        .whatsapp
        .business_account_id
        .trim()
        .is_empty()
    {
        return Ok(Step::Go { category: None });
    }
    let policy = paused_policy(&dispatcher.core.settings.templates, number);
    let record_id = message.record_id.clone();
    // One read for both: this runs for every template send.
    let (since, stored) = {
        let (id, n, l) = (record_id.clone(), name.clone(), language.clone());
        dispatcher
            .core
            .store
            .lookup(move |conn| {
                Ok((
                    templates::wait_since(conn, &id)?,
                    templates::get(conn, &n, &l)?,
                ))
            })
            .await?
    };
    let asked = Asked {
        key: (name, language),
        parameters,
        since,
        policy,
    };
    let (verdict, template) = settle(dispatcher, &asked, stored).await?;
    let step = apply_verdict(dispatcher, &record_id, asked.key, verdict, since.is_some()).await?;
    Ok(match step {
        Step::Go { .. } => Step::Go {
            category: template.map(|t| t.category),
        },
        other => other,
    })
}

/// One send's question to the catalog.
struct Asked<'a> {
    key: (&'a str, &'a str),
    parameters: &'a TemplateParameters,
    since: Option<DateTime<Utc>>,
    policy: PausedPolicy,
}

impl Asked<'_> {
    fn verdict(
        &self,
        template: Option<&CatalogTemplate>,
        readable: bool,
        now: DateTime<Utc>,
    ) -> Verdict {
        let lookup = match (readable, template) {
            (_, Some(template)) => Lookup::Known(template),
            (true, None) => Lookup::Missing,
            (false, None) => Lookup::Unreadable,
        };
        judge(
            self.key,
            self.parameters,
            lookup,
            self.since,
            self.policy,
            now,
        )
    }
}

async fn stored(
    dispatcher: &Dispatcher,
    (name, language): (&str, &str),
) -> anyhow::Result<Option<CatalogTemplate>> {
    let (n, l) = (name.to_string(), language.to_string());
    Ok(dispatcher
        .core
        .store
        .lookup(move |conn| templates::get(conn, &n, &l))
        .await?)
}

/// The verdict from the stored catalog (`template`, as read); one that is not "go" is asked
/// again after the template is fetched from Meta (at most once a minute per template). With the
/// template the verdict was reached on.
async fn settle(
    dispatcher: &Dispatcher,
    asked: &Asked<'_>,
    mut template: Option<CatalogTemplate>,
) -> anyhow::Result<(Verdict, Option<CatalogTemplate>)> {
    let catalog = &dispatcher.catalog;
    let mut readable = !catalog.unreadable(dispatcher.now());
    let first = asked.verdict(template.as_ref(), readable, dispatcher.now());
    if first == Verdict::Go || !readable {
        return Ok((first, template));
    }
    // One fetch at a time: a burst of sends missing the same template waits for the first
    // one's fetch and reads what it stored, rather than each judging the stale catalog.
    let _one_fetch = catalog.fetching.lock().await;
    template = stored(dispatcher, asked.key).await?;
    readable = !catalog.unreadable(dispatcher.now());
    let again = asked.verdict(template.as_ref(), readable, dispatcher.now());
    if again != Verdict::Go && readable && catalog.may_fetch(asked.key, dispatcher.now()) {
        match refresh(dispatcher, asked.key).await? {
            Ok(fetched) => template = fetched,
            Err(()) => readable = false,
        }
    }
    let verdict = asked.verdict(template.as_ref(), readable, dispatcher.now());
    Ok((verdict, template))
}

/// Writes what the verdict needs: a wait (journal due at its end, the reason on the record), or
/// the end of a wait that is over.
async fn apply_verdict(
    dispatcher: &Dispatcher,
    record_id: &SfId,
    (name, language): (&str, &str),
    verdict: Verdict,
    was_waiting: bool,
) -> anyhow::Result<Step> {
    let now = dispatcher.now();
    let id = record_id.clone();
    match verdict {
        Verdict::Go | Verdict::Refuse { .. } if was_waiting => {
            let id = id.clone();
            dispatcher
                .core
                .store
                .write(move |tx| templates::end_wait(tx, &id))
                .await?;
        }
        _ => {}
    }
    Ok(match verdict {
        Verdict::Go => Step::Go { category: None },
        Verdict::Refuse { code, message } => {
            info!(
                code,
                template = name,
                language,
                "template send refused by the catalog; not sent"
            );
            Step::Refuse {
                code: code.to_string(),
                message,
            }
        }
        Verdict::Wait { until, message } => {
            info!(template = name, language, %until, "template paused; the message waits for it");
            let object = dispatcher.core.message_object().to_string();
            let (n, l) = (name.to_string(), language.to_string());
            dispatcher
                .core
                .store
                .write(move |tx| {
                    if templates::start_wait(tx, &id, (&n, &l), until, now)? {
                        record_update::enqueue_waiting(tx, (&object, id.as_str()), &message, now)?;
                    }
                    Ok(())
                })
                .await?;
            dispatcher.core.flush.batch_ready();
            Step::Waiting
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::ButtonParameter;

    const KEY: (&str, &str) = ("order_update", "en_US");
    const POLICY: PausedPolicy = PausedPolicy {
        wait: true,
        max_wait: Duration::hours(10),
    };

    fn order_update(status: &str) -> CatalogTemplate {
        CatalogTemplate {
            name: KEY.0.into(),
            language: KEY.1.into(),
            status: status.into(),
            category: "UTILITY".into(),
            body_params: vec!["1".into()],
            header: HeaderSpec::Image,
            buttons: vec![ButtonSpec::Url { params: 1 }],
            ..CatalogTemplate::default()
        }
    }

    fn full_parameters() -> TemplateParameters {
        TemplateParameters {
            body: BodyParameters::Positional(vec!["Ann".into()]),
            header: Some(HeaderParameter::Media {
                kind: HeaderMediaKind::Image,
                link: "https://x.test/a.png".into(),
                filename: None,
            }),
            buttons: vec![ButtonParameter {
                kind: ButtonKind::Url,
                index: 0,
                value: "ORD-1".into(),
            }],
        }
    }

    fn judged(template: &CatalogTemplate, parameters: &TemplateParameters) -> Verdict {
        judge(
            KEY,
            parameters,
            Lookup::Known(template),
            None,
            POLICY,
            Utc::now(),
        )
    }

    fn code(verdict: Verdict) -> &'static str {
        match verdict {
            Verdict::Refuse { code, .. } => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_approved_template_with_every_parameter_goes() {
        assert_eq!(
            judged(&order_update("APPROVED"), &full_parameters()),
            Verdict::Go
        );
    }

    #[test]
    fn a_body_parameter_too_few_is_a_mismatch_naming_the_template_and_language() {
        let mut parameters = full_parameters();
        parameters.body = BodyParameters::Positional(Vec::new());

        let verdict = judged(&order_update("APPROVED"), &parameters);

        let Verdict::Refuse { code, message } = verdict else {
            panic!("refused")
        };
        assert_eq!(code, TEMPLATE_PARAMETERS_MISMATCH);
        assert!(message.contains("'order_update' (en_US)"), "{message}");
        assert!(message.contains("takes 1 body parameter"), "{message}");
    }

    #[test]
    fn a_video_where_the_template_has_an_image_header_is_a_header_mismatch() {
        let mut parameters = full_parameters();
        parameters.header = Some(HeaderParameter::Media {
            kind: HeaderMediaKind::Video,
            link: "https://x.test/a.mp4".into(),
            filename: None,
        });
        assert_eq!(
            code(judged(&order_update("APPROVED"), &parameters)),
            TEMPLATE_HEADER_MISMATCH
        );
        parameters.header = None;
        assert_eq!(
            code(judged(&order_update("APPROVED"), &parameters)),
            TEMPLATE_HEADER_MISMATCH
        );
    }

    #[test]
    fn a_missing_url_button_parameter_is_a_mismatch() {
        let mut parameters = full_parameters();
        parameters.buttons.clear();
        assert_eq!(
            code(judged(&order_update("APPROVED"), &parameters)),
            TEMPLATE_PARAMETERS_MISMATCH
        );
    }

    #[test]
    fn named_parameters_must_carry_the_templates_names() {
        let template = CatalogTemplate {
            parameter_format: ParameterFormat::Named,
            body_params: vec!["first_name".into(), "order_id".into()],
            header: HeaderSpec::None,
            buttons: Vec::new(),
            ..order_update("APPROVED")
        };
        let named = |names: &[&str]| TemplateParameters {
            body: BodyParameters::Named(
                names.iter().map(|n| (n.to_string(), "x".into())).collect(),
            ),
            ..TemplateParameters::default()
        };
        assert_eq!(
            judged(&template, &named(&["order_id", "first_name"])),
            Verdict::Go
        );
        assert_eq!(
            code(judged(&template, &named(&["first_name", "nope"]))),
            TEMPLATE_PARAMETERS_MISMATCH
        );
    }

    #[test]
    fn a_missing_template_is_not_found_and_an_unreadable_catalog_lets_it_go() {
        let parameters = full_parameters();
        let now = Utc::now();
        assert_eq!(
            code(judge(KEY, &parameters, Lookup::Missing, None, POLICY, now)),
            TEMPLATE_NOT_FOUND
        );
        assert_eq!(
            judge(KEY, &parameters, Lookup::Unreadable, None, POLICY, now),
            Verdict::Go
        );
    }

    #[test]
    fn a_rejected_or_disabled_template_is_not_approved() {
        assert_eq!(
            code(judged(&order_update("REJECTED"), &full_parameters())),
            TEMPLATE_NOT_APPROVED
        );
        assert_eq!(
            code(judged(&order_update("DISABLED"), &full_parameters())),
            TEMPLATE_NOT_APPROVED
        );
    }

    #[test]
    fn a_paused_template_waits_until_the_bound_then_fails_or_fails_at_once_when_set_so() {
        let template = order_update(PAUSED);
        let lookup = Lookup::Known(&template);
        let now = Utc::now();

        let waits = judge(KEY, &full_parameters(), lookup, None, POLICY, now);
        let later = judge(
            KEY,
            &full_parameters(),
            lookup,
            Some(now - Duration::hours(11)),
            POLICY,
            now,
        );
        let refuses = PausedPolicy {
            wait: false,
            ..POLICY
        };
        let at_once = judge(KEY, &full_parameters(), lookup, None, refuses, now);

        assert!(matches!(waits, Verdict::Wait { until, .. } if until == now + Duration::hours(10)));
        assert_eq!(code(later), TEMPLATE_PAUSED);
        assert_eq!(code(at_once), TEMPLATE_PAUSED);
    }
}
