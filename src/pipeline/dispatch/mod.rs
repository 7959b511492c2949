//! The send path, one record at a time:
//! validate → address (the person's current key) → hold? → rate limit → consent → **window check, now** → a Salesforce File uploaded ([`media_upload`]) → journal `Sending` → Cloud API → outcome.
//! Each way out is a [`Next`]: the send's result is classified by [`decide()`] (pure), and
//! one function, `apply`, writes any `Next` to the journal and the outbox.
//!
//! The journal row is committed *before* the HTTP send and every send carries the record Id as
//! `biz_opaque_callback_data`, so a send whose outcome is unknown is resolved by Meta's status echo
//! (see `store::journal::apply_status`) and only re-sent after the grace period (guarantee 1).

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use tracing::{info, warn};

use crate::domain::ids::{BusinessNumberId, CustomerId};
use crate::domain::message::{MessageKind, OutboundMessage, QueuedRecord, RecordProblem};
use crate::pipeline::consent;
use crate::pipeline::identity::{self, Need};
use crate::pipeline::{media_upload, record_update, reengage};
use crate::store::{inbound, journal, outbox};
use crate::whatsapp::{
    Accepted, RateLimit, SendError, AUTH_TEMPLATE_TO_USER_ID, AUTH_TEMPLATE_TO_USER_ID_MESSAGE,
    OUTSIDE_WINDOW, OUTSIDE_WINDOW_MESSAGE,
};
use crate::window::{self, Decision};

use super::Dispatcher;

mod apply;
pub mod decide;
pub mod lanes;

pub use apply::finish_failed;
use apply::{apply, Target};
pub use decide::DispatchOutcome;
use decide::{decide, Next, Policy};

pub const OUTCOME_UNKNOWN: &str = "SEND_OUTCOME_UNKNOWN";

#[tracing::instrument(skip_all, fields(record_id = %record.id))]
pub async fn dispatch_record(
    dispatcher: &Dispatcher,
    record: QueuedRecord,
    attempt: u32,
) -> anyhow::Result<DispatchOutcome> {
    let mut target = Target {
        record: &record,
        number: "",
        wa_id: "",
        attempt,
        now: dispatcher.now(),
    };
    let region = dispatcher.core.default_region;
    let mut message = match OutboundMessage::from_record_awaited(&record, region).await {
        Ok(message) => message,
        Err(problem) => return refuse_record(dispatcher, &target, problem).await,
    };
    let number = dispatcher
        .business_number(
            message
                .business_number_id
                .as_ref()
                .map(BusinessNumberId::as_str),
        )
        .to_string();
    if !dispatcher.core.settings.serves(&number) {
        return unserved(dispatcher, &record, &number).await;
    }
    if let Err(refused) = address(dispatcher, &mut message, &number).await? {
        return apply(dispatcher, &target, refused).await;
    }
    let wa_id = message.to.as_str().to_string();
    (target.number, target.wa_id) = (&number, &wa_id);
    if let Some(next) = held_back(dispatcher, &target) {
        return apply(dispatcher, &target, next).await;
    }
    dispatcher.throttle(&number).await;
    // From its pace slot on, the send's time counts toward the lane's round trip (see `lanes`).
    let in_slot = std::time::Instant::now();
    // The window is checked here, right before the send, not when the batch was fetched.
    target.now = dispatcher.now();
    // A hold that began while this send waited for its slot (Meta refused the number meanwhile).
    if let Some(next) = held_back(dispatcher, &target) {
        return apply(dispatcher, &target, next).await;
    }
    let category = match crate::pipeline::catalog::check(dispatcher, &message, &number).await? {
        crate::pipeline::catalog::Step::Go { category } => category,
        crate::pipeline::catalog::Step::Waiting => return Ok(DispatchOutcome::Held),
        crate::pipeline::catalog::Step::Refuse { code, message } => {
            let next = Next::Refuse {
                code,
                message,
                window_expired_at: None,
            };
            return apply(dispatcher, &target, next).await;
        }
    };
    // Marketing consent (`pipeline::consent`): a marketing template to a customer who opted out.
    let asked = (number.as_str(), category.as_deref());
    if let Some(refused) = consent::check(dispatcher, &record, &message, asked).await? {
        return apply(dispatcher, &target, refused).await;
    }
    let window_expires_at = match check_window(dispatcher, &message, &target).await? {
        Ok(window_expires_at) => window_expires_at,
        Err(refused) => return closed_window(dispatcher, &target, refused).await,
    };
    // A Salesforce File goes by media id: uploaded (or its upload reused) once every check passed.
    if let Err(next) = upload_file(dispatcher, &mut message, &target).await? {
        return apply(dispatcher, &target, next).await;
    }
    if !mark_sending(dispatcher, &target).await? {
        return Ok(DispatchOutcome::AlreadySending);
    }
    let outcome = send_and_apply(dispatcher, &target, &message, window_expires_at).await;
    dispatcher.lanes.observed(&number, in_slot.elapsed());
    outcome
}

/// A record that cannot be sent as written: logged, and refused with its problem's code and
/// words (they name the field and the fix).
async fn refuse_record(
    dispatcher: &Dispatcher,
    target: &Target<'_>,
    problem: RecordProblem,
) -> anyhow::Result<DispatchOutcome> {
    info!(
        code = problem.code.as_str(),
        field = problem.field,
        "record refused: {}",
        problem.message
    );
    let next = Next::Refuse {
        code: problem.code.as_str().to_string(),
        message: problem.message,
        window_expired_at: None,
    };
    apply(dispatcher, target, next).await
}

/// The Cloud API call for a message journaled `Sending`, and what its answer means, applied.
async fn send_and_apply(
    dispatcher: &Dispatcher,
    target: &Target<'_>,
    message: &OutboundMessage,
    window_expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<DispatchOutcome> {
    let started = std::time::Instant::now();
    let sent = dispatcher.whatsapp.send(target.number, message).await;
    dispatcher.core.reporter.whatsapp_send(started.elapsed());
    media_upload::after_send(dispatcher, target.number, message, &sent).await?;
    log_unsent(&sent);
    let next = decide(
        &sent,
        window_expires_at,
        target.attempt,
        &policy(dispatcher),
        dispatcher.now(),
    );
    let to = (target.number, &message.to, target.attempt);
    let next = consent::after_send(dispatcher, to, &sent, next).await?;
    apply(dispatcher, target, next).await
}

/// A Salesforce File named by the record, uploaded to WhatsApp (or its upload reused) and the
/// message turned into a send by media id ([`media_upload::prepare`]); other messages pass.
async fn upload_file(
    dispatcher: &Dispatcher,
    message: &mut OutboundMessage,
    target: &Target<'_>,
) -> anyhow::Result<Result<(), Next>> {
    let step = (target.attempt, policy(dispatcher));
    media_upload::prepare(dispatcher, message, target.number, step).await
}

/// A defence, never reached while intake keeps to the served numbers (`intake::ServedNumbers`): a
/// record naming a business number this instance does not serve belongs to the instance that
/// serves it (another shard, or the UNKNOWN_BUSINESS_NUMBER sweep if none does). It is let go
/// from the journal unsent (`journal::withdraw`, locally only) and nothing is written to the
/// record: that is the other shard's to send and write. Logged and counted
/// (`sfwa_unserved_records_total`); reported as [`DispatchOutcome::AlreadySending`] (someone else's).
async fn unserved(
    dispatcher: &Dispatcher,
    record: &QueuedRecord,
    number: &str,
) -> anyhow::Result<DispatchOutcome> {
    warn!(
        number,
        "record of a business number this sfwa does not serve let go unsent (another shard serves it); intake should never have claimed it"
    );
    let (id, now) = (record.id.clone(), dispatcher.now());
    dispatcher
        .core
        .store
        .write(move |tx| journal::withdraw(tx, &id, now))
        .await?;
    dispatcher.core.reporter.unserved_record();
    Ok(DispatchOutcome::AlreadySending)
}

/// Sends wait without a call when sending is on hold (Meta refuses the account), or when Meta
/// told us this number (or this customer) must wait: no call that would only be refused again.
fn held_back(dispatcher: &Dispatcher, target: &Target<'_>) -> Option<Next> {
    if let Some(hold) = dispatcher.current_hold(target.number) {
        return Some(Next::Hold {
            until: hold.until,
            hold: None,
        });
    }
    let held = dispatcher
        .pacer
        .held_back(target.number, target.wa_id, target.now)?;
    Some(Next::Wait {
        limit: held.limit,
        code: held_back_code(held.limit),
        meta: None,
        held_until: Some(held.until),
    })
}

/// Where the message goes: the record's address resolved to the person's current key
/// ([`identity::resolve`]; a phone the customer left leads to their new one). An authentication
/// template needs a phone: to a customer known only by BSUID it is refused here, before sending,
/// since Meta would refuse it (131062).
async fn address(
    dispatcher: &Dispatcher,
    message: &mut OutboundMessage,
    number: &str,
) -> anyhow::Result<Result<(), Next>> {
    let need = match template_to_ask(message) {
        Some((name, language)) if dispatcher.is_authentication_template(name, language).await => {
            Need::Phone
        }
        _ => Need::Any,
    };
    let to = match number.parse::<BusinessNumberId>() {
        Ok(number) => {
            let addressed = message.to.clone();
            dispatcher
                .core
                .store
                .lookup(move |conn| identity::resolve(conn, &number, &addressed, need))
                .await?
                .0
        }
        Err(_) => identity::send_to(&message.to, None, need),
    };
    if let Err(refused) = judge_address(need, &to) {
        info!("authentication template to a customer known only by user id; not sent");
        return Ok(Err(refused.into()));
    }
    if to != message.to {
        info!(addressed = %message.to, to = %to, "sent to the customer's current WhatsApp address");
        message.to = to;
    }
    Ok(Ok(()))
}

/// The window rule, now: `Ok(when the window closes)`, or the refusal to apply.
async fn check_window(
    dispatcher: &Dispatcher,
    message: &OutboundMessage,
    target: &Target<'_>,
) -> anyhow::Result<Result<Option<DateTime<Utc>>, Next>> {
    // Both sources of the number are checked before this (the record's by `from_record`, the
    // configured default by `config::validate`); were one not an id, no window is known and only
    // a template could go out.
    let number = target.number.parse::<BusinessNumberId>().ok();
    let customer = message.to.clone();
    let last_inbound = match number {
        Some(number) => {
            dispatcher
                .core
                .store
                .lookup(move |conn| inbound::last_inbound(conn, &number, &customer))
                .await?
        }
        None => None,
    };
    let margin = window_margin(&dispatcher.core.settings);
    Ok(
        judge_window(message.kind.is_template(), last_inbound, target.now, margin).map_err(
            |refused| {
                info!("outside the customer-service window; not sent");
                Next::from(refused)
            },
        ),
    )
}

/// A free-form message the window refused: re-engaged and waiting for the customer's reply when
/// its record or number asks for it ([`reengage::window_closed`]), else refused.
async fn closed_window(
    dispatcher: &Dispatcher,
    target: &Target<'_>,
    refused: Next,
) -> anyhow::Result<DispatchOutcome> {
    let to = reengage::Addressed {
        record: target.record,
        number: target.number,
        customer: target.wa_id,
        now: target.now,
    };
    match reengage::window_closed(dispatcher, &to).await? {
        reengage::Closed::NotAsked => apply(dispatcher, target, refused).await,
        reengage::Closed::Waiting { until } => Ok(DispatchOutcome::WaitingForReply { until }),
        reengage::Closed::Refuse { code, message } => {
            let next = Next::Refuse {
                code,
                message,
                window_expired_at: None,
            };
            apply(dispatcher, target, next).await
        }
    }
}

/// A send refused before WhatsApp is called, as the pure checks say it: the record's
/// Error_Code__c, its sentence, and (for a closed window) when the window closed. The send path
/// applies it as [`Next::Refuse`]; `sfwa plan` ([`crate::pipeline::plan`]) shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
    pub window_expired_at: Option<DateTime<Utc>>,
}

impl From<Refusal> for Next {
    fn from(refused: Refusal) -> Next {
        Next::Refuse {
            code: refused.code,
            message: refused.message,
            window_expired_at: refused.window_expired_at,
        }
    }
}

/// The window rule for a message now, given when its customer last wrote in: `Ok(when the
/// window closes)` (`None`: unknown, a template), or the refusal. Pure: the send path asks it
/// right before sending (`check_window`) and `sfwa plan` asks it the same way.
pub fn judge_window(
    is_template: bool,
    last_inbound: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    margin: Duration,
) -> Result<Option<DateTime<Utc>>, Refusal> {
    match window::decide(is_template, last_inbound, now, margin) {
        Decision::Allowed { window_expires_at } => Ok(window_expires_at),
        Decision::Refused { window_expired_at } => Err(Refusal {
            code: OUTSIDE_WINDOW.into(),
            message: OUTSIDE_WINDOW_MESSAGE.into(),
            window_expired_at,
        }),
    }
}

/// `window.margin`, as [`judge_window`] takes it.
pub fn window_margin(settings: &crate::config::Settings) -> Duration {
    Duration::from_std(settings.window.margin).unwrap_or(Duration::minutes(2))
}

/// The template whose category decides where a message may go: a template to a BSUID address
/// (an authentication template needs a phone, 131062). Only a BSUID address can meet 131062, so
/// no listing is asked for sends to a phone.
pub fn template_to_ask(message: &OutboundMessage) -> Option<(&str, &str)> {
    match &message.kind {
        MessageKind::Template { name, language, .. } if message.to.is_user_id() => {
            Some((name.as_str(), language.as_str()))
        }
        _ => None,
    }
}

/// Whether a message that needs `need` can go to `to` (the person's current key): an
/// authentication template to a customer known only by BSUID cannot (Meta would refuse it,
/// 131062). Pure: the send path and `sfwa plan` ask it.
pub fn judge_address(need: Need, to: &CustomerId) -> Result<(), Refusal> {
    if need == Need::Phone && to.is_user_id() {
        return Err(Refusal {
            code: AUTH_TEMPLATE_TO_USER_ID.into(),
            message: AUTH_TEMPLATE_TO_USER_ID_MESSAGE.into(),
            window_expired_at: None,
        });
    }
    Ok(())
}

/// Journals `Sending` (and queues it for the record) before the call; `false` when another
/// worker or process already has it: the reconcile poll, the stream and `sfwa sync` can all see
/// one record, and the journal's claim → sending step admits exactly one of them.
async fn mark_sending(dispatcher: &Dispatcher, target: &Target<'_>) -> anyhow::Result<bool> {
    let (id, number, to, now) = (
        target.record.id.clone(),
        target.number.to_string(),
        target.wa_id.to_string(),
        target.now,
    );
    let object = dispatcher.core.message_object().to_string();
    let marked = dispatcher
        .core
        .store
        .write(move |tx| {
            journal::mark_sending(tx, &id, &number, &to, now)?;
            outbox::enqueue(tx, &object, id.as_str(), &record_update::sending(), now)
        })
        .await;
    match marked {
        Ok(()) => Ok(true),
        Err(crate::store::StoreError::NotClaimed { state, .. }) => {
            info!(%state, "already being sent elsewhere; skipped");
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// One line per send WhatsApp did not accept (what it means for the record is [`decide`]'s).
fn log_unsent(sent: &Result<Accepted, SendError>) {
    match sent {
        Ok(_) => {}
        Err(SendError::Meta(error)) => {
            warn!(code = %error.error_code(), action = ?error.action(), "WhatsApp refused the send: {}", error.message)
        }
        Err(SendError::NotSent(reason)) => {
            warn!("WhatsApp unreachable, nothing was sent: {reason}")
        }
        Err(SendError::OutcomeUnknown(reason) | SendError::BadResponse(reason)) => {
            // Left in Sending: Meta's status echo (biz_opaque_callback_data) or the grace period decides.
            warn!("send outcome unknown ({reason}); waiting for WhatsApp's status echo")
        }
    }
}

/// `[dispatch]`'s retry policy, with this decision's jitter.
fn policy(dispatcher: &Dispatcher) -> Policy {
    let settings = &dispatcher.core.settings.dispatch;
    Policy {
        max_attempts: settings.max_attempts,
        initial_backoff: settings.initial_backoff,
        max_backoff: settings.max_backoff,
        jitter: rand::thread_rng().gen_range(0.8..1.2),
    }
}

/// The code a send held back for `limit` would have met.
fn held_back_code(limit: RateLimit) -> String {
    match limit {
        RateLimit::Throughput => "WA_130429",
        RateLimit::Pair => "WA_131056",
        RateLimit::Spam => "WA_131048",
        RateLimit::App => "WA_80007",
    }
    .to_string()
}
