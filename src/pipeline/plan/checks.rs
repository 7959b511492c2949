//! The send path's decisions for one record, asked in its order and acted on nowhere: what the
//! journal says (being sent, waiting for a retry or a rate limit, already accepted), the
//! schedule, the record's validity (`OutboundMessage::from_record`), the business number, the
//! address (`identity::resolve`, `dispatch::judge_address`), then [`CHECKS`] — the checks the
//! send path runs right before sending, ending with the window (`dispatch::judge_window`).
//!
//! Everything is read through one read-only SQLite connection; nothing here writes.
//!
//! **Adding a check.** A check of the send path with a pure core (a `judge` function taking the
//! message and what the store knows) is one more entry in [`CHECKS`], placed where the send
//! path asks it: a function of type [`Check`] that reads what its `judge` needs through the
//! connection and returns its verdict, or `None` to let the message go on to the next check.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::config::Settings;
use crate::domain::ids::BusinessNumberId;
use crate::domain::message::{MessageKind, OutboundMessage, QueuedRecord};
use crate::pipeline::claim;
use crate::pipeline::dispatch::{judge_address, judge_window, template_to_ask, window_margin};
use crate::pipeline::identity::{self, Need};
use crate::pipeline::{catalog, consent as consent_check, reengage};
use crate::pipeline::{record_update, unknown_numbers};
use crate::salesforce::contract;
use crate::store::journal::{self, JournalEntry, JournalState};
use crate::store::{consent as consent_store, inbound, outbox, templates, StoreError};

use super::verdict::{Entry, Verdict};

/// What every record is judged against: the settings, the moment, and what was learned before
/// (which templates are authentication ones, from Meta's listing).
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub now: DateTime<Utc>,
    pub default_region: Option<phonenumber::country::Id>,
    /// `(name, language)` of the account's authentication templates that records address to a
    /// BSUID (the only ones whose category matters, see `dispatch::template_to_ask`).
    pub authentication: &'a HashSet<(String, String)>,
    /// Business numbers no instance serves (not the account's, in no lease): their records are
    /// failed UNKNOWN_BUSINESS_NUMBER by the sweep (`pipeline::unknown_numbers`).
    pub unknown_numbers: &'a HashSet<String>,
}

/// A valid message on its way, as the checks of [`CHECKS`] see it.
pub struct Subject<'a> {
    pub record: &'a QueuedRecord,
    /// Addressed: `to` is the person's current key.
    pub message: &'a OutboundMessage,
    /// The business number it goes from.
    pub number: &'a str,
    pub now: DateTime<Utc>,
    pub settings: &'a Settings,
}

/// One check of the send path: its verdict, or `None` to go on to the next check.
pub type Check = fn(&Subject<'_>, &Connection) -> Result<Option<Verdict>, StoreError>;

/// The checks the send path runs right before sending (`dispatch_record`, after the address and
/// the holds), in its order; the last, the window, always answers. A message no check stops is
/// sent.
pub const CHECKS: &[(&str, Check)] = &[
    ("template catalog", template_catalog),
    ("consent", consent),
    ("window", window),
];

/// What sfwa would do with `record` now.
pub fn judge(
    record: &QueuedRecord,
    context: &Context<'_>,
    conn: &Connection,
) -> Result<Entry, StoreError> {
    let settings = context.settings;
    let default_number = &settings.whatsapp.default_phone_number_id;
    let mut entry = Entry {
        record_id: record.id.to_string(),
        status: record.status.clone(),
        number: record
            .business_number_id
            .clone()
            .unwrap_or_else(|| default_number.clone()),
        to: record
            .to_phone
            .clone()
            .or_else(|| record.to_user_id.clone()),
        message: describe(record),
        verdict: Verdict::Send {
            window_expires_at: None,
        },
    };
    if let Some(verdict) = journaled(record, conn, context.now)? {
        entry.verdict = verdict;
        return Ok(entry);
    }
    if let Some(at) = claim::scheduled_later(record, context.now) {
        entry.verdict = Verdict::wait(Some(at), None, "scheduled (Scheduled_At__c)".into());
        return Ok(entry);
    }
    let mut message = match OutboundMessage::from_record(record, context.default_region) {
        Ok(message) => message,
        Err(problem) => {
            entry.verdict = Verdict::Refuse {
                code: problem.code.as_str().to_string(),
                message: problem.message,
            };
            return Ok(entry);
        }
    };
    let number = message
        .business_number_id
        .as_ref()
        .map_or(default_number.as_str(), BusinessNumberId::as_str)
        .to_string();
    entry.number.clone_from(&number);
    entry.verdict = addressed(record, &mut message, &number, context, conn)?;
    entry.to = Some(message.to.to_string());
    Ok(entry)
}

/// The verdict for a valid message from `number`: the number served here, the address, then
/// [`CHECKS`] in order.
fn addressed(
    record: &QueuedRecord,
    message: &mut OutboundMessage,
    number: &str,
    context: &Context<'_>,
    conn: &Connection,
) -> Result<Verdict, StoreError> {
    let settings = context.settings;
    if context.unknown_numbers.contains(number) {
        return Ok(Verdict::Refuse {
            code: unknown_numbers::UNKNOWN_BUSINESS_NUMBER.into(),
            message: unknown_numbers::unknown_message(number),
        });
    }
    if !settings.serves(number) {
        return Ok(Verdict::Skip {
            reason: format!(
                "business number {number} is not served by this instance \
                 (whatsapp.phone_number_ids): the instance serving it sends it, or the \
                 UNKNOWN_BUSINESS_NUMBER sweep fails it if none does"
            ),
        });
    }
    let need = match template_to_ask(message) {
        Some((name, language))
            if context
                .authentication
                .contains(&(name.to_string(), language.to_string())) =>
        {
            Need::Phone
        }
        _ => Need::Any,
    };
    let to = match number.parse::<BusinessNumberId>() {
        Ok(number) => identity::resolve(conn, &number, &message.to, need)?.0,
        Err(_) => identity::send_to(&message.to, None, need),
    };
    if let Err(refused) = judge_address(need, &to) {
        return Ok(refused.into());
    }
    message.to = to;
    let subject = Subject {
        record,
        message,
        number,
        now: context.now,
        settings,
    };
    for (_, check) in CHECKS {
        if let Some(verdict) = check(&subject, conn)? {
            return Ok(verdict);
        }
    }
    Ok(Verdict::Send {
        window_expires_at: None,
    })
}

/// The template catalog (`catalog::judge`, as `catalog::check` asks it), from the catalog as the
/// store holds it. Where the send path would fetch a template the store does not know before
/// refusing it, the plan says so instead of fetching.
fn template_catalog(
    subject: &Subject<'_>,
    conn: &Connection,
) -> Result<Option<Verdict>, StoreError> {
    let MessageKind::Template {
        name,
        language,
        parameters,
    } = &subject.message.kind
    else {
        return Ok(None);
    };
    if subject
        .settings
        .whatsapp
        .business_account_id
        .trim()
        .is_empty()
    {
        return Ok(None);
    }
    let stored = templates::get(conn, name, language)?;
    let since = templates::wait_since(conn, &subject.record.id)?;
    let lookup = stored
        .as_ref()
        .map_or(catalog::Lookup::Missing, catalog::Lookup::Known);
    let policy = catalog::paused_policy(&subject.settings.templates, subject.number);
    let key = (name.as_str(), language.as_str());
    Ok(
        match catalog::judge(key, parameters, lookup, since, policy, subject.now) {
            catalog::Verdict::Go => None,
            catalog::Verdict::Refuse { code, message } => Some(Verdict::Refuse {
                code: code.to_string(),
                message: match stored {
                    Some(_) => message,
                    None => format!(
                        "{message} (sfwa run asks WhatsApp for the template once before \
                         refusing: one created since the last catalog sync still goes)"
                    ),
                },
            }),
            catalog::Verdict::Wait { until, message } => Some(Verdict::wait(
                Some(until),
                Some(catalog::TEMPLATE_PAUSED.to_string()),
                message,
            )),
        },
    )
}

/// Marketing consent (`consent::judge`, as `consent::check` asks it); the template's category
/// comes from the catalog as the store holds it (unknown: the template goes, as it would).
fn consent(subject: &Subject<'_>, conn: &Connection) -> Result<Option<Verdict>, StoreError> {
    let MessageKind::Template { name, language, .. } = &subject.message.kind else {
        return Ok(None);
    };
    let marketing = templates::get(conn, name, language)?
        .map(|template| template.category.eq_ignore_ascii_case("MARKETING"));
    let stored = match (marketing, subject.number.parse::<BusinessNumberId>()) {
        (Some(true), Ok(number)) => consent_store::choice(conn, &number, &subject.message.to)?,
        _ => None,
    };
    let facts = consent_check::Facts {
        marketing,
        to: subject.message.to.clone(),
        stored,
        salesforce_opt_out: subject.record.marketing_opt_out,
        refuse_marketing_to_us: subject.settings.consent.refuse_marketing_to_us,
    };
    Ok(match consent_check::judge(&facts) {
        consent_check::Verdict::Go => None,
        consent_check::Verdict::Refuse { code, message } => Some(Verdict::Refuse {
            code: code.to_string(),
            message,
        }),
    })
}

/// The window rule, now (`dispatch::judge_window`, as `check_window` asks it): send, with when
/// the window closes; or, for a free-form message whose window is closed, what re-engagement
/// says (`reengage::judge`, as `reengage::window_closed` asks it), else refuse
/// OUTSIDE_SESSION_WINDOW.
fn window(subject: &Subject<'_>, conn: &Connection) -> Result<Option<Verdict>, StoreError> {
    let last_inbound = match subject.number.parse::<BusinessNumberId>() {
        Ok(number) => inbound::last_inbound(conn, &number, &subject.message.to)?,
        Err(_) => None,
    };
    let margin = window_margin(subject.settings);
    let is_template = subject.message.kind.is_template();
    let refused = match judge_window(is_template, last_inbound, subject.now, margin) {
        Ok(window_expires_at) => return Ok(Some(Verdict::Send { window_expires_at })),
        Err(refused) => refused,
    };
    let (record, number) = (subject.record, subject.number);
    let known = reengage::read_known(conn, &record.id, number, subject.message.to.as_str())?;
    let settings = &subject.settings.reengage;
    let verdict = reengage::judge(
        record,
        (is_template, false),
        number,
        &known,
        settings,
        subject.now,
    );
    Ok(Some(match verdict {
        reengage::Verdict::NotAsked => refused.into(),
        reengage::Verdict::Reengage {
            template,
            expires_at,
        } => Verdict::Reengage {
            reason: format!(
                "the customer's window is closed: the template goes first, and this message \
                 waits for their reply (Waiting for Reply) until {expires_at}"
            ),
            template: template.name,
            language: template.language,
        },
        reengage::Verdict::Wait {
            reengagement,
            expires_at,
        } => Verdict::wait(
            Some(expires_at),
            None,
            match reengagement {
                Some(id) => format!("waiting for the customer's reply to re-engagement {id}"),
                None => "waiting for the customer's reply to a re-engagement".to_string(),
            },
        ),
        reengage::Verdict::Refuse { code, message } => Verdict::Refuse { code, message },
    }))
}

/// What the journal says before anything else: a record being sent, waiting for its time, or
/// finished; `None` when it is new (or claimed and due, or re-queued without ever having been
/// accepted), to be judged like a new one.
fn journaled(
    record: &QueuedRecord,
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<Option<Verdict>, StoreError> {
    let Some(entry) = journal::get(conn, &record.id)? else {
        // A wamid but no journal row: retention deleted the row of a message WhatsApp accepted.
        return Ok(record
            .wamid
            .as_ref()
            .map(|wamid| already_sent(JournalState::Sent, wamid.as_str(), now)));
    };
    Ok(match entry.state {
        JournalState::Sending => Some(Verdict::Skip {
            reason: "being sent now (its outcome is not known yet)".into(),
        }),
        JournalState::Claimed => claim::due_later(&entry, now)
            .map(|until| Verdict::wait(Some(until), entry.error_code.clone(), waiting(&entry))),
        state if outbox::is_pending(conn, record.id.as_str())? => Some(Verdict::Skip {
            reason: format!(
                "{} in sfwa; the write-back to Salesforce is on its way",
                state.as_status().as_salesforce()
            ),
        }),
        state => {
            let wamid = entry
                .wamid
                .as_deref()
                .or(record.wamid.as_ref().map(|w| w.as_str()));
            // Never accepted by WhatsApp: set back to Queued by a person, sent again like new.
            wamid.map(|wamid| already_sent(state, wamid, now))
        }
    })
}

/// Why a claimed record waits for its `next_attempt_at`.
fn waiting(entry: &JournalEntry) -> String {
    if entry.rate_limited_since.is_some() {
        format!(
            "waiting out WhatsApp's rate limit ({} refusals so far; they are not counted as attempts)",
            entry.rate_limited_count
        )
    } else if entry.attempts > 0 {
        format!("attempt {} after a failed one", entry.attempts + 1)
    } else {
        "scheduled (Scheduled_At__c)".into()
    }
}

/// A record WhatsApp accepted once, Queued again: marked ALREADY_SENT, never sent again.
fn already_sent(state: JournalState, wamid: &str, now: DateTime<Utc>) -> Verdict {
    let fields = record_update::already_sent(state.as_status(), wamid, None, now);
    let message = fields
        .get(contract::ERROR_MESSAGE)
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    Verdict::Refuse {
        code: record_update::ALREADY_SENT.into(),
        message,
    }
}

/// The message as the table shows it: its type, and a template's name and language.
fn describe(record: &QueuedRecord) -> String {
    let kind = record.message_type.as_deref().unwrap_or("Text");
    match (&record.template_name, kind) {
        (Some(name), "Template") => format!(
            "Template {name} ({})",
            record.template_language.as_deref().unwrap_or("-")
        ),
        _ => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::sf_id::SfId;
    use crate::store::db::test_connection;

    const NUMBER: &str = "106540352242922";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn settings() -> Settings {
        let mut settings = Settings::default();
        settings.whatsapp.default_phone_number_id = NUMBER.into();
        settings
    }

    fn record(id: &str, to: &str) -> QueuedRecord {
        let mut record = QueuedRecord::new(SfId::parse(id).unwrap());
        record.to_phone = Some(to.into());
        record.message_type = Some("Template".into());
        record.template_name = Some("hello_world".into());
        record
    }

    fn judged(record: &QueuedRecord, conn: &Connection) -> Verdict {
        let settings = settings();
        let none = HashSet::new();
        let unknown = HashSet::from(["888".to_string()]);
        let context = Context {
            settings: &settings,
            now: now(),
            default_region: None,
            authentication: &none,
            unknown_numbers: &unknown,
        };
        judge(record, &context, conn).unwrap().verdict
    }

    #[test]
    fn a_record_the_journal_is_sending_or_waiting_for_is_left_to_it() {
        let conn = test_connection();
        let sending = record("a005g0000012345AAA", "+16505551234");
        let waiting = record("a005g0000012346AAA", "+16505551234");
        let due = now() + chrono::Duration::minutes(3);
        journal::claim(&conn, &sending.id, now()).unwrap();
        journal::mark_sending(&conn, &sending.id, NUMBER, "16505551234", now()).unwrap();
        journal::claim(&conn, &waiting.id, now()).unwrap();
        journal::schedule_retry(&conn, &waiting.id, 1, due, now()).unwrap();

        let sending = judged(&sending, &conn);
        let waiting = judged(&waiting, &conn);

        assert_eq!(sending.action(), "skip", "{sending:?}");
        assert_eq!(
            waiting,
            Verdict::wait(Some(due), None, "attempt 2 after a failed one".into())
        );
    }

    #[test]
    fn a_record_whatsapp_accepted_is_never_sent_again_another_instances_is_left_alone_and_nobodys_refused(
    ) {
        let conn = test_connection();
        let mut accepted = record("a005g0000012345AAA", "+16505551234");
        accepted.wamid = Some("wamid.OLD".parse().unwrap());
        let mut elsewhere = record("a005g0000012346AAA", "+16505551234");
        elsewhere.business_number_id = Some("999".into());
        let mut nowhere = record("a005g0000012347AAA", "+16505551234");
        nowhere.business_number_id = Some("888".into());

        let accepted = judged(&accepted, &conn);
        let elsewhere = judged(&elsewhere, &conn);
        let nowhere = judged(&nowhere, &conn);

        assert!(
            matches!(&accepted, Verdict::Refuse { code, .. } if code == "ALREADY_SENT"),
            "{accepted:?}"
        );
        assert_eq!(elsewhere.action(), "skip", "{elsewhere:?}");
        assert!(
            matches!(&nowhere, Verdict::Refuse { code, .. } if code == "UNKNOWN_BUSINESS_NUMBER"),
            "{nowhere:?}"
        );
    }

    #[test]
    fn a_template_goes_whatever_the_window_and_a_bad_record_is_refused_with_its_code() {
        let conn = test_connection();
        let template = record("a005g0000012345AAA", "+16505551234");
        let mut no_name = record("a005g0000012346AAA", "+16505551234");
        no_name.template_name = None;

        assert_eq!(
            judged(&template, &conn),
            Verdict::Send {
                window_expires_at: None
            }
        );
        assert!(matches!(
            judged(&no_name, &conn),
            Verdict::Refuse { code, .. } if code == "MISSING_TEMPLATE"
        ));
    }
}
