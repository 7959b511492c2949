//! Re-engagement that waits for the reply: the send path's answer to a free-form message that
//! meets a closed 24-hour window, when its record names a re-engagement template
//! (`Reengagement_Template__c`, `…_Language__c`, `…_Parameters__c`) or its business number has a
//! default (`[reengage.defaults."<number>"]`).
//!
//! Instead of failing the message `OUTSIDE_SESSION_WINDOW`, sfwa
//! 1. sends the template — once per customer and number per `reengage.period`, however many
//!    messages wait ([`crate::store::waiting::reserve`]) — as a `WhatsApp_Message__c` record of
//!    its own that sfwa creates (Queued, claimed and due at once, so the ordinary send path sends
//!    it, with every check a template gets), linked from each waiting message by
//!    `Reengagement_Message__c`;
//! 2. marks the message `Waiting for Reply`, with `Waiting_Expires_At__c`. Its journal row stays
//!    claimed and due at that expiry, so a restart loses nothing: the retry scan finds it;
//! 3. when the customer's reply opens the window ([`on_reply`], called by
//!    [`super::webhook_apply`] in the webhook's transaction), makes the waiting messages due in
//!    the order they were created, one per-recipient pace apart (Meta's pair rate, 6 s); the
//!    retry scan re-reads each record (a `Canceled` one is let go, never sent) and sends it;
//! 4. if the template fails (refused before sending, or Meta's `failed` status), fails the
//!    waiting messages at once with its reason ([`on_failed`]);
//! 5. after the expiry, fails them `OUTSIDE_SESSION_WINDOW` saying the customer never answered.
//!
//! [`judge`] is the pure core (the verdict from the record, the window and what the store knows),
//! shared with `sfwa plan`; [`window_closed`] applies it on the send path.

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use serde_json::{json, Map, Value};
use tracing::info;

use crate::config::{ReengageDefault, ReengageSettings};
use crate::domain::message::{format_salesforce_datetime, QueuedRecord};
use crate::domain::sf_id::SfId;
use crate::domain::status::MessageStatus;
use crate::domain::template::TemplateParameters;
use crate::pipeline::record_update::{self, Fields};
use crate::pipeline::Dispatcher;
use crate::salesforce::contract;
use crate::store::waiting::{self, Reengagement, Waiting};
use crate::store::{journal, outbox, StoreError};
use crate::whatsapp::{OUTSIDE_WINDOW, PAIR_RATE_BACKOFF};

/// Error_Code__c of a message whose re-engagement parameters cannot be read.
pub const REENGAGEMENT_PARAMETERS_INVALID: &str = "REENGAGEMENT_PARAMETERS_INVALID";

/// The re-engagement template a message asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReengageTemplate {
    pub name: String,
    pub language: String,
    /// As written on the template's record (`Template_Parameters__c`'s JSON form).
    pub parameters_json: Option<String>,
    pub parameters: TemplateParameters,
}

/// What the store knows about a message and its customer (read-only; see [`read_known`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// The message already waits for the reply.
    pub waiting: Option<Waiting>,
    /// The re-engagement last sent to this customer from this number.
    pub reengagement: Option<Reengagement>,
}

/// What [`judge`] says of a free-form message whose window is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not for re-engagement (a template, the window open, or no template asked for): the window
    /// rule's own verdict stands.
    NotAsked,
    /// Send `template` to the customer; the message waits for the reply until `expires_at`.
    Reengage {
        template: ReengageTemplate,
        expires_at: DateTime<Utc>,
    },
    /// A re-engagement is under way for this customer (its record, once known): the message
    /// waits with it until `expires_at`.
    Wait {
        reengagement: Option<SfId>,
        expires_at: DateTime<Utc>,
    },
    /// Fail it now, nothing sent: the parameters cannot be filled, or the wait ran out.
    Refuse { code: String, message: String },
}

/// The store's knowledge for [`judge`], through read-only queries (`sfwa plan` opens the store
/// read-only).
pub fn read_known(
    conn: &Connection,
    record_id: &SfId,
    number: &str,
    customer: &str,
) -> Result<Known, StoreError> {
    Ok(Known {
        waiting: waiting::waiting(conn, record_id)?,
        reengagement: waiting::reengagement(conn, number, customer)?,
    })
}

/// The verdict for `record`, about to go from `number` (pure: `sfwa plan` asks the same).
/// `window_open`: the window rule allows the message now ([`crate::window::decide`]).
pub fn judge(
    record: &QueuedRecord,
    (is_template, window_open): (bool, bool),
    number: &str,
    known: &Known,
    settings: &ReengageSettings,
    now: DateTime<Utc>,
) -> Verdict {
    if is_template || window_open {
        return Verdict::NotAsked;
    }
    let reengagement = known.reengagement.as_ref();
    if let Some(waiting) = &known.waiting {
        if now >= waiting.expires_at {
            return Verdict::Refuse {
                code: OUTSIDE_WINDOW.to_string(),
                message: never_answered(waiting, reengagement),
            };
        }
        return Verdict::Wait {
            reengagement: reengagement.and_then(|r| r.record_id.clone()),
            expires_at: waiting.expires_at,
        };
    }
    let template = match asked_for(record, settings.defaults.get(number)) {
        None => return Verdict::NotAsked,
        Some(Err(message)) => {
            return Verdict::Refuse {
                code: REENGAGEMENT_PARAMETERS_INVALID.to_string(),
                message,
            }
        }
        Some(Ok(template)) => template,
    };
    let expires_at = now + duration(settings.expiry, Duration::days(7));
    let period = duration(settings.period, Duration::hours(24));
    match reengagement {
        Some(r) if r.started_at + period > now => Verdict::Wait {
            reengagement: r.record_id.clone(),
            expires_at,
        },
        _ => Verdict::Reengage {
            template,
            expires_at,
        },
    }
}

/// The template the record names, else the number's default; `Err` with the sentence when its
/// parameters cannot be read.
fn asked_for(
    record: &QueuedRecord,
    default: Option<&ReengageDefault>,
) -> Option<Result<ReengageTemplate, String>> {
    let (name, language, parameters_json) = match record.reengagement_template.as_deref() {
        Some(name) => (
            name.to_string(),
            record.reengagement_language.clone(),
            record.reengagement_parameters.clone(),
        ),
        None => {
            let default = default?;
            let values = (!default.parameters.is_empty())
                .then(|| Value::from(default.parameters.clone()).to_string());
            (
                default.template.clone(),
                Some(default.language.clone()),
                values,
            )
        }
    };
    let language = language.unwrap_or_else(|| "en_US".to_string());
    Some(
        match TemplateParameters::parse(parameters_json.as_deref()) {
            Ok(parameters) => Ok(ReengageTemplate {
                name,
                language,
                parameters_json,
                parameters,
            }),
            Err(error) => Err(format!(
                "The re-engagement template {name} ({language}) cannot be filled: \
                 Reengagement_Parameters__c {}. Nothing was sent; fix the parameters (a JSON list \
                 such as [\"Ana\"]) and set the message back to Queued.",
                error.0
            )),
        },
    )
}

fn duration(setting: std::time::Duration, fallback: Duration) -> Duration {
    Duration::from_std(setting).unwrap_or(fallback)
}

/// Error_Message__c of a message whose wait ran out.
fn never_answered(waiting: &Waiting, reengagement: Option<&Reengagement>) -> String {
    let template = reengagement
        .map(|r| format!(" ({} in {})", r.template, r.language))
        .unwrap_or_default();
    format!(
        "The customer never answered the re-engagement template{template}: this message waited \
         for a reply from {} to {} UTC and was not sent. WhatsApp allows free-form messages only \
         within 24 hours of the customer's last message; send a template instead.",
        waiting.since.format("%Y-%m-%d %H:%M"),
        waiting.expires_at.format("%Y-%m-%d %H:%M")
    )
}

/// What the send path does with a free-form message whose window is closed.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// No re-engagement: refuse as the window rule says.
    NotAsked,
    /// It waits for the reply (journal and write-back done).
    Waiting { until: DateTime<Utc> },
    /// Fail it with this code and sentence.
    Refuse { code: String, message: String },
}

/// Who the message goes to and from, as the send path resolved it.
pub struct Addressed<'a> {
    pub record: &'a QueuedRecord,
    pub number: &'a str,
    /// The customer's current key (what the window and the reply are keyed on).
    pub customer: &'a str,
    pub now: DateTime<Utc>,
}

/// Applies [`judge`] to a free-form message the window rule refused: sends nothing itself; a
/// re-engagement is a record created in Salesforce and claimed due now for the retry scan.
pub async fn window_closed(dispatcher: &Dispatcher, to: &Addressed<'_>) -> anyhow::Result<Closed> {
    let (id, number, customer) = (
        to.record.id.clone(),
        to.number.to_string(),
        to.customer.to_string(),
    );
    let known = dispatcher
        .core
        .store
        .read(move |conn| read_known(conn, &id, &number, &customer))
        .await?;
    let settings = &dispatcher.core.settings.reengage;
    match judge(
        to.record,
        (false, false),
        to.number,
        &known,
        settings,
        to.now,
    ) {
        Verdict::NotAsked => Ok(Closed::NotAsked),
        Verdict::Refuse { code, message } => Ok(Closed::Refuse { code, message }),
        Verdict::Wait {
            reengagement,
            expires_at,
        } => wait(dispatcher, to, reengagement, expires_at).await,
        Verdict::Reengage {
            template,
            expires_at,
        } => reengage(dispatcher, to, &template, expires_at).await,
    }
}

/// The message waits with the customer's re-engagement already under way.
async fn wait(
    dispatcher: &Dispatcher,
    to: &Addressed<'_>,
    reengagement: Option<SfId>,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<Closed> {
    let row = waiting_row(to, expires_at);
    let object = dispatcher.core.message_object().to_string();
    let now = to.now;
    let waits = dispatcher
        .core
        .store
        .write(move |tx| put_to_wait(tx, &object, &row, reengagement.as_ref(), now))
        .await?;
    dispatcher.core.flush.batch_ready();
    Ok(match waits {
        true => Closed::Waiting { until: expires_at },
        // The journal row moved on meanwhile (another send path has it).
        false => Closed::Waiting { until: to.now },
    })
}

/// Reserves the customer's re-engagement, creates the template's record in Salesforce, claims it
/// due now, and puts the message to wait linked to it. Another message of the same customer that
/// reserved first makes this one a plain [`wait`].
async fn reengage(
    dispatcher: &Dispatcher,
    to: &Addressed<'_>,
    template: &ReengageTemplate,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<Closed> {
    let (number, customer, now) = (to.number.to_string(), to.customer.to_string(), to.now);
    let period = duration(
        dispatcher.core.settings.reengage.period,
        Duration::hours(24),
    );
    let names = (template.name.clone(), template.language.clone());
    let reserved = dispatcher
        .core
        .store
        .write(move |tx| {
            waiting::reserve(tx, &number, &customer, (&names.0, &names.1), period, now)
        })
        .await?;
    if !reserved {
        return wait(dispatcher, to, None, expires_at).await;
    }
    let object = dispatcher.core.message_object().to_string();
    let created = dispatcher
        .salesforce
        .create(&object, &[template_record(to, template)])
        .await;
    let created_id = match &created {
        Ok(results) => results
            .first()
            .filter(|r| r.success)
            .and_then(|r| r.id.as_deref())
            .and_then(|id| SfId::parse(id).ok()),
        Err(_) => None,
    };
    let Some(template_id) = created_id else {
        let (number, customer) = (to.number.to_string(), to.customer.to_string());
        dispatcher
            .core
            .store
            .write(move |tx| waiting::release(tx, &number, &customer))
            .await?;
        // The record stays claimed; the orphan scan dispatches it again.
        anyhow::bail!("the re-engagement template's record could not be created: {created:?}");
    };
    info!(template = %template.name, template_record = %template_id, "re-engagement template queued; the message waits for the reply");
    let row = waiting_row(to, expires_at);
    let (number, customer) = (to.number.to_string(), to.customer.to_string());
    dispatcher
        .core
        .store
        .write(move |tx| {
            waiting::set_record(tx, &number, &customer, &template_id)?;
            // Due now for the retry scan; an intake that claimed it first sends it itself.
            if journal::claim(tx, &template_id, now)? == journal::Claim::New {
                journal::schedule_retry(tx, &template_id, 0, now, now)?;
            }
            for other in waiting::waiting_for(tx, &number, &customer)? {
                let link = link_fields(&template_id);
                outbox::enqueue(tx, &object, other.record_id.as_str(), &link, now)?;
            }
            put_to_wait(tx, &object, &row, Some(&template_id), now)
        })
        .await?;
    dispatcher.core.flush.batch_ready();
    Ok(Closed::Waiting { until: expires_at })
}

/// One of each write this module makes, every field filled (`sfwa doctor` checks them against
/// the contract).
pub fn every_write(now: DateTime<Utc>) -> Vec<Fields> {
    let id = SfId::parse("a00000000000001AAA").expect("an Id");
    let mut record = QueuedRecord::new(id.clone());
    record.to_phone = Some("+14155550101".into());
    record.to_user_id = Some("US.1".into());
    let to = Addressed {
        record: &record,
        number: "1",
        customer: "14155550101",
        now,
    };
    let template = ReengageTemplate {
        name: "doctor".into(),
        language: "en_US".into(),
        parameters_json: Some("[\"a\"]".into()),
        parameters: TemplateParameters::default(),
    };
    vec![
        template_record(&to, &template),
        waiting_fields(now, Some(&id)),
    ]
}

fn waiting_row(to: &Addressed<'_>, expires_at: DateTime<Utc>) -> Waiting {
    Waiting {
        record_id: to.record.id.clone(),
        business_number_id: to.number.to_string(),
        customer: to.customer.to_string(),
        created_at: to.record.created_at.unwrap_or(to.now),
        since: to.now,
        expires_at,
    }
}

/// The template's own record: Outbound, Queued, from the same number to the same customer.
fn template_record(to: &Addressed<'_>, template: &ReengageTemplate) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut put = |name: &str, value: Value| {
        fields.insert(name.to_string(), value);
    };
    put(contract::DIRECTION, json!("Outbound"));
    put(
        contract::STATUS,
        json!(MessageStatus::Queued.as_salesforce()),
    );
    put(contract::MESSAGE_TYPE, json!("Template"));
    put(contract::TEMPLATE_NAME, json!(template.name));
    put(contract::TEMPLATE_LANGUAGE, json!(template.language));
    if let Some(parameters) = &template.parameters_json {
        put(contract::TEMPLATE_PARAMETERS, json!(parameters));
    }
    put(contract::BUSINESS_NUMBER_ID, json!(to.number));
    if let Some(phone) = &to.record.to_phone {
        put(contract::TO_PHONE, json!(phone));
    }
    if let Some(user_id) = &to.record.to_user_id {
        put(contract::TO_USER_ID, json!(user_id));
    }
    fields
}

fn link_fields(template_id: &SfId) -> Fields {
    let mut fields = Fields::new();
    fields.insert(
        contract::REENGAGEMENT_MESSAGE.to_string(),
        json!(template_id.as_str()),
    );
    fields
}

/// Journals the wait and queues `Waiting for Reply` for the record; `false` when the journal row
/// moved on (then nothing is written).
fn put_to_wait(
    tx: &Connection,
    object: &str,
    row: &Waiting,
    reengagement: Option<&SfId>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !waiting::wait(tx, row, now)? {
        return Ok(false);
    }
    // A second wait keeps the first one's expiry.
    let expires_at = waiting::waiting(tx, &row.record_id)?.map_or(row.expires_at, |w| w.expires_at);
    // Linked to the customer's re-engagement record when it is known: here, or (created later)
    // by the message that reserved it, which links every waiting message of the customer.
    let known = match reengagement {
        Some(id) => Some(id.clone()),
        None => waiting::reengagement(tx, &row.business_number_id, &row.customer)?
            .and_then(|r| r.record_id),
    };
    let fields = waiting_fields(expires_at, known.as_ref());
    outbox::enqueue(tx, object, row.record_id.as_str(), &fields, now)?;
    Ok(true)
}

/// `Waiting for Reply`, until when, why, and the re-engagement record when known.
fn waiting_fields(expires_at: DateTime<Utc>, reengagement: Option<&SfId>) -> Fields {
    let mut fields = Fields::new();
    fields.insert(
        contract::STATUS.to_string(),
        json!(MessageStatus::WaitingForReply.as_salesforce()),
    );
    fields.insert(
        contract::WAITING_EXPIRES_AT.to_string(),
        json!(format_salesforce_datetime(expires_at)),
    );
    fields.insert(
        contract::ERROR_MESSAGE.to_string(),
        json!(format!(
            "The customer's 24-hour window is closed: sfwa sent a re-engagement template and \
             sends this message as soon as the customer answers, until {} UTC.",
            expires_at.format("%Y-%m-%d %H:%M")
        )),
    );
    if let Some(template_id) = reengagement {
        fields.extend(link_fields(template_id));
    }
    fields
}

/// The customer's reply opened the window (in the webhook's transaction): their waiting messages
/// become due, oldest first, one pair-rate pace apart. Returns how many.
pub fn on_reply(
    tx: &Connection,
    number: &str,
    customer: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let pace = Duration::from_std(PAIR_RATE_BACKOFF).unwrap_or(Duration::seconds(6));
    let woken = waiting::wake(tx, number, customer, pace, now)?;
    if !woken.is_empty() {
        info!(
            count = woken.len(),
            "the customer answered; their messages waiting for the reply go now"
        );
    }
    Ok(woken.len())
}

/// Record `record_id` failed with `code` and `message` (in the transaction that fails it): it no
/// longer waits; and if it was a re-engagement template, the messages waiting on it fail now with
/// its reason.
pub fn on_failed(
    tx: &Connection,
    object: &str,
    record_id: &SfId,
    (code, message): (&str, &str),
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    waiting::remove(tx, record_id)?;
    for row in waiting::reengagement_failed(tx, record_id)? {
        let sentence = format!(
            "The re-engagement template sent to reopen the conversation failed ({code}: \
             {message}), so this message, which waited for the customer's reply, was not sent."
        );
        journal::mark_failed(tx, &row.record_id, code, now)?;
        let fields = record_update::failed(code, &sentence, now, None);
        outbox::enqueue(tx, object, row.record_id.as_str(), &fields, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn text(template: Option<&str>) -> QueuedRecord {
        let mut record = QueuedRecord::new(SfId::parse("a00000000000001AAA").unwrap());
        record.reengagement_template = template.map(String::from);
        record
    }

    fn judged(record: &QueuedRecord, known: &Known, settings: &ReengageSettings) -> Verdict {
        judge(record, (false, false), "111", known, settings, now())
    }

    #[test]
    fn a_text_naming_a_template_reengages_and_waits_seven_days_by_default() {
        let verdict = judged(&text(Some("hello")), &Known::default(), &Default::default());

        let Verdict::Reengage {
            template,
            expires_at,
        } = verdict
        else {
            panic!("{verdict:?}")
        };
        assert_eq!(
            (template.name.as_str(), template.language.as_str()),
            ("hello", "en_US")
        );
        assert_eq!(expires_at, now() + Duration::days(7));
    }

    #[test]
    fn a_template_an_open_window_or_no_template_asked_for_is_not_reengaged() {
        let record = text(Some("hello"));
        let settings = ReengageSettings::default();
        let known = Known::default();

        assert_eq!(
            judge(&record, (true, false), "111", &known, &settings, now()),
            Verdict::NotAsked
        );
        assert_eq!(
            judge(&record, (false, true), "111", &known, &settings, now()),
            Verdict::NotAsked
        );
        assert_eq!(judged(&text(None), &known, &settings), Verdict::NotAsked);
    }

    #[test]
    fn the_numbers_default_template_serves_a_record_naming_none_with_its_fixed_parameters() {
        let mut settings = ReengageSettings::default();
        settings.defaults.insert(
            "111".into(),
            ReengageDefault {
                template: "reconnect".into(),
                language: "pt_BR".into(),
                parameters: vec!["Ana".into()],
            },
        );

        let verdict = judged(&text(None), &Known::default(), &settings);

        let Verdict::Reengage { template, .. } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(template.name, "reconnect");
        assert_eq!(template.parameters_json.as_deref(), Some("[\"Ana\"]"));
        assert_eq!(template.parameters.body.len(), 1);
    }

    #[test]
    fn a_second_text_within_the_period_waits_with_the_first_reengagement() {
        let started = Reengagement {
            business_number_id: "111".into(),
            customer: "1650".into(),
            record_id: Some(SfId::parse("a00000000000002AAA").unwrap()),
            template: "hello".into(),
            language: "en_US".into(),
            started_at: now() - Duration::hours(1),
        };
        let known = Known {
            waiting: None,
            reengagement: Some(started.clone()),
        };

        let verdict = judged(&text(Some("hello")), &known, &Default::default());

        assert_eq!(
            verdict,
            Verdict::Wait {
                reengagement: started.record_id,
                expires_at: now() + Duration::days(7)
            }
        );
    }

    #[test]
    fn a_wait_that_ran_out_is_refused_outside_the_window_saying_the_customer_never_answered() {
        let known = Known {
            waiting: Some(Waiting {
                record_id: SfId::parse("a00000000000001AAA").unwrap(),
                business_number_id: "111".into(),
                customer: "1650".into(),
                created_at: now() - Duration::days(8),
                since: now() - Duration::days(8),
                expires_at: now() - Duration::days(1),
            }),
            reengagement: None,
        };

        let verdict = judged(&text(Some("hello")), &known, &Default::default());

        let Verdict::Refuse { code, message } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(code, OUTSIDE_WINDOW);
        assert!(message.contains("never answered"), "{message}");
    }
}
