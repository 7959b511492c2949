//! Number leases: the proof that one instance, and only one, serves each business number.
//!
//! Instances sharding an org by business number (`whatsapp.phone_number_ids`, intake's number
//! filter [`super::intake::ServedNumbers`]) must have disjoint sets, or both would send the same
//! records. Each instance therefore holds a lease per number in Salesforce, a
//! `WhatsApp_Number_Lease__c` record (and one on [`BLANK`] where it takes the blank-number
//! records):
//!
//! - Salesforce has no compare-and-swap on custom objects, but creating a record whose unique
//!   External ID exists already fails (`DUPLICATE_VALUE`): of two instances creating
//!   `Lease_Key__c = <number>/<generation>` at once, exactly one wins. Every change of holder
//!   creates the next generation; a holder only ever renews its own generation.
//! - **At start** ([`acquire`]): one query for the leases of my numbers; per number ([`decide`]):
//!   none → create generation 1; my live lease → renew it; another holder's, released or expired
//!   for longer than [`SKEW_GRACE`], or my own expired one → create the next generation; another
//!   holder's live lease → **refuse to start** ([`Taken`] names the number, the holder, when its
//!   lease ends, the record and the fix). Nothing is created before every number is known to be
//!   free, and a lost race releases what was taken.
//! - **While running** ([`run_leases`]): every quarter of `shard.lease_ttl`, one query and one
//!   collections PATCH renew every lease ([`renew_once`]). A number whose lease expired unrenewed
//!   (Salesforce unreachable) or that another holder has taken is held
//!   (`Dispatcher::hold_number`, an error logged, `sfwa_business_number_lease` 0) until it is
//!   this instance's again; it is retaken as soon as it is free.
//! - **On a graceful stop** ([`Leases::release`]): one PATCH sets `Released__c` and ends the
//!   leases now, so the next instance takes the numbers at once.
//!
//! The holder is `shard.name` (or the host name) and an id kept in the store's cursors: a restart
//! on the same volume is the same holder (it renews its own lease), two processes on one host
//! are not. A holder stops sending a number at its own expiry; another takes it only
//! [`SKEW_GRACE`] later, so clocks that differ by less than that never let two send.
//!
//! **API calls**: 2 per renewal (a query and a PATCH), every `lease_ttl / 4`: with the default
//! 10 minutes, 2 × 576 = 1,152 calls a day per instance, whatever the number of numbers; 2–4 at
//! start, 1 at a graceful stop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::domain::message::parse_salesforce_datetime;
use crate::salesforce::{
    soql_datetime, soql_string, RecordResult, SalesforceClient, SalesforceError,
};

use super::{Dispatcher, Pipeline};

/// The lease object (package `salesforce/`; its fields: `salesforce::contract::LEASE_FIELDS`).
pub const OBJECT: &str = crate::salesforce::contract::LEASE_OBJECT;
/// The lease of the records whose `Business_Number_Id__c` is blank (`shard.takes_blank_numbers`).
pub const BLANK: &str = "BLANK";
/// How long after another holder's lease ended it may be taken: the clocks of two instances may
/// differ by this much without both sending.
pub const SKEW_GRACE: Duration = Duration::seconds(30);
/// The store cursor keeping this instance's holder id across restarts.
const HOLDER_CURSOR: &str = "shard.holder_id";

/// One lease record as read.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct LeaseRow {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Phone_Number_Id__c")]
    pub number: Option<String>,
    #[serde(rename = "Generation__c")]
    pub generation: Option<f64>,
    #[serde(rename = "Holder__c")]
    pub holder: Option<String>,
    #[serde(rename = "Expires_At__c")]
    pub expires_at: Option<String>,
    #[serde(rename = "Released__c")]
    pub released: Option<bool>,
}

impl LeaseRow {
    fn generation(&self) -> u64 {
        self.generation.map_or(0, |g| g.max(0.0) as u64)
    }

    fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
            .as_deref()
            .and_then(parse_salesforce_datetime)
    }
}

/// Another instance holds a number this one is configured to serve.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "business number {number} is served by another sfwa instance: {holder} holds its lease until \
     {until} (WhatsApp_Number_Lease__c {record_id}). Two instances must never serve one number. \
     Remove {number} from this instance's whatsapp.default_phone_number_id / \
     whatsapp.phone_number_ids (BLANK: set shard.takes_blank_numbers = false), or from the other's; \
     to move a number between instances, drain it there first, stop that instance, then start \
     this one (deploy/README.md)"
)]
pub struct Taken {
    pub number: String,
    pub holder: String,
    pub until: DateTime<Utc>,
    pub record_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("refusing to start: {}", list(.0))]
    Taken(Vec<Taken>),
    #[error(
        "refusing to start: another sfwa instance took business number {0} at the same moment \
         (DUPLICATE_VALUE on WhatsApp_Number_Lease__c.Lease_Key__c); see which holds it in \
         Salesforce and remove the number from one of the two"
    )]
    Raced(String),
    #[error("Salesforce refused lease {key}: {message} (is the package's WhatsApp_Number_Lease__c deployed and in the integration user's permission set?)")]
    Refused { key: String, message: String },
    /// A passing refusal of one lease record (a row lock): tried again like an unreachable
    /// Salesforce, never a reason to stop.
    #[error("Salesforce could not write lease {key} just now ({message}); trying again")]
    Busy { key: String, message: String },
    #[error("reading or writing number leases in Salesforce (is WhatsApp_Number_Lease__c deployed?): {0}")]
    Salesforce(#[from] SalesforceError),
    #[error("keeping this instance's lease holder id in the store: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn list(taken: &[Taken]) -> String {
    let sentences: Vec<String> = taken.iter().map(ToString::to_string).collect();
    sentences.join("; ")
}

/// What to do about one number, given its latest lease.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Create this generation.
    Take { generation: u64 },
    /// My live lease: extend it.
    Renew { id: String, generation: u64 },
    /// Another holder's live lease.
    Refuse(Taken),
}

/// The rule (pure): see the module docs.
pub fn decide(number: &str, latest: Option<&LeaseRow>, me: &str, now: DateTime<Utc>) -> Step {
    let Some(lease) = latest else {
        return Step::Take { generation: 1 };
    };
    let next = Step::Take {
        generation: lease.generation() + 1,
    };
    let released = lease.released.unwrap_or(false);
    let expires_at = lease.expires_at();
    let mine = lease.holder.as_deref() == Some(me);
    if released {
        return next;
    }
    match (mine, expires_at) {
        // My own expired lease: another instance may be taking it right now, so it is not
        // extended (no compare-and-swap) but taken again through the next generation.
        (true, Some(until)) if until > now => Step::Renew {
            id: lease.id.clone(),
            generation: lease.generation(),
        },
        (true, _) => next,
        (false, Some(until)) if until + SKEW_GRACE > now => Step::Refuse(Taken {
            number: number.to_string(),
            holder: lease.holder.clone().unwrap_or_default(),
            until,
            record_id: lease.id.clone(),
        }),
        (false, _) => next,
    }
}

/// The SOQL for every lease of `numbers`, newest generation first.
pub fn leases_query(numbers: &[String]) -> String {
    let quoted: Vec<String> = numbers.iter().map(|n| soql_string(n)).collect();
    format!(
        "SELECT Id, Phone_Number_Id__c, Generation__c, Holder__c, Expires_At__c, Released__c \
         FROM {OBJECT} WHERE Phone_Number_Id__c IN ({}) ORDER BY Generation__c DESC LIMIT 2000",
        quoted.join(",")
    )
}

/// The latest lease per number (the rows come newest generation first).
fn latest_by_number(rows: Vec<LeaseRow>) -> BTreeMap<String, LeaseRow> {
    let mut latest: BTreeMap<String, LeaseRow> = BTreeMap::new();
    for row in rows {
        let Some(number) = row.number.clone() else {
            continue;
        };
        let newer = latest
            .get(&number)
            .is_none_or(|seen| seen.generation() < row.generation());
        if newer {
            latest.insert(number, row);
        }
    }
    latest
}

/// The lease this instance holds on one number.
#[derive(Clone, Debug)]
struct Held {
    id: String,
    generation: u64,
    expires_at: DateTime<Utc>,
    /// Expired unrenewed or taken by another holder: the number is on hold here.
    lost: bool,
}

/// The leases of one running instance.
pub struct Leases {
    salesforce: SalesforceClient,
    holder: String,
    ttl: Duration,
    /// The default number: blank-number records are sent from it, so losing [`BLANK`] holds it.
    default_number: String,
    held: Mutex<BTreeMap<String, Held>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// The numbers an instance leases: its business numbers, and [`BLANK`] when it takes the
/// blank-number records.
pub fn leased_numbers(settings: &crate::config::Settings) -> Vec<String> {
    let mut numbers = settings.business_numbers();
    if settings.shard.takes_blank_numbers {
        numbers.push(BLANK.to_string());
    }
    numbers
}

/// This instance's holder name: `shard.name` (or the host name) and an id kept in the store.
pub async fn holder_name(pipeline: &Pipeline) -> Result<String, crate::store::StoreError> {
    let name = match pipeline.core.settings.shard.name.trim() {
        "" => host_name(),
        name => name.to_string(),
    };
    let now = pipeline.core.now();
    let id = pipeline
        .core
        .store
        .write(move |tx| {
            if let Some(id) = crate::store::cursors::get(tx, HOLDER_CURSOR)? {
                return Ok(id);
            }
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            crate::store::cursors::set(tx, HOLDER_CURSOR, &id, now)?;
            Ok(id)
        })
        .await?;
    Ok(format!("{name}#{id}"))
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "sfwa".to_string())
}

/// Takes or renews the lease of every number this instance serves, or refuses (see the module
/// docs). The `sfwa_business_number_lease` gauge is 1 for each number taken.
pub async fn acquire(pipeline: &Pipeline) -> Result<Arc<Leases>, LeaseError> {
    let settings = &pipeline.core.settings;
    let leases = Leases {
        salesforce: pipeline.intake.salesforce.clone(),
        holder: holder_name(pipeline).await?,
        ttl: Duration::from_std(settings.shard.lease_ttl).unwrap_or(Duration::minutes(10)),
        default_number: settings.whatsapp.default_phone_number_id.clone(),
        held: Mutex::new(BTreeMap::new()),
    };
    let numbers = leased_numbers(settings);
    let now = pipeline.core.now();
    let latest = leases.read_latest(&numbers).await?;
    let steps: Vec<(String, Step)> = numbers
        .iter()
        .map(|n| (n.clone(), decide(n, latest.get(n), &leases.holder, now)))
        .collect();
    let taken: Vec<Taken> = steps
        .iter()
        .filter_map(|(_, step)| match step {
            Step::Refuse(taken) => Some(taken.clone()),
            _ => None,
        })
        .collect();
    if !taken.is_empty() {
        return Err(LeaseError::Taken(taken));
    }
    let failed = leases.apply(&steps, now).await;
    if let Some(error) = failed {
        leases.release(now).await;
        return Err(error);
    }
    for number in &numbers {
        pipeline.core.reporter.business_number_lease(number, true);
    }
    info!(holder = %leases.holder, numbers = ?numbers, "business number leases taken");
    Ok(Arc::new(leases))
}

/// [`acquire`], waiting out a Salesforce that cannot be reached (again after 0.5 s, doubling to
/// every 5 s: a restart meeting one passing 5xx starts half a second later, not five; until it
/// answers or `shutdown`: `None`); a refusal is returned at once.
pub async fn acquire_when_reachable(
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
) -> Result<Option<Arc<Leases>>, LeaseError> {
    let mut wait = std::time::Duration::from_millis(500);
    loop {
        match acquire(pipeline).await {
            Ok(leases) => return Ok(Some(leases)),
            Err(LeaseError::Salesforce(error)) if error.is_transient() => {
                warn!(%error, "cannot take the business number leases yet; sfwa starts once Salesforce answers");
            }
            Err(error @ LeaseError::Busy { .. }) => {
                warn!(%error, "cannot take the business number leases yet");
            }
            Err(error) => return Err(error),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(5));
    }
}

impl Leases {
    pub fn holder(&self) -> &str {
        &self.holder
    }

    async fn read_latest(
        &self,
        numbers: &[String],
    ) -> Result<BTreeMap<String, LeaseRow>, LeaseError> {
        let rows: Vec<LeaseRow> = self.salesforce.query(&leases_query(numbers)).await?;
        Ok(latest_by_number(rows))
    }

    /// Renews (one PATCH) and takes (one create) as `steps` say, recording what it now holds;
    /// the first error, if any (what succeeded is held all the same).
    async fn apply(&self, steps: &[(String, Step)], now: DateTime<Utc>) -> Option<LeaseError> {
        let expires_at = now + self.ttl;
        let mut renewals = Vec::new();
        let mut takes = Vec::new();
        for (number, step) in steps {
            match step {
                Step::Renew { id, generation } => renewals.push((number, id, *generation)),
                Step::Take { generation } => takes.push((number, *generation)),
                Step::Refuse(_) => {}
            }
        }
        let mut first_error = None;
        if !renewals.is_empty() {
            let records: Vec<(String, Map<String, Value>)> = renewals
                .iter()
                .map(|(_, id, _)| ((*id).clone(), expiry(expires_at, false)))
                .collect();
            match self.salesforce.update(OBJECT, &records).await {
                Ok(results) => {
                    for ((number, id, generation), result) in renewals.iter().zip(&results) {
                        match refusal(result, &format!("{number}/{generation}")) {
                            None => self.hold_lease(number, id, *generation, expires_at),
                            Some(error) => first_error = first_error.or(Some(error)),
                        }
                    }
                }
                Err(error) => first_error = Some(error.into()),
            }
        }
        if !takes.is_empty() {
            first_error = self.take(&takes, expires_at).await.or(first_error);
        }
        first_error
    }

    /// Creates the given generations (one call); a `DUPLICATE_VALUE` means another instance won.
    async fn take(
        &self,
        takes: &[(&String, u64)],
        expires_at: DateTime<Utc>,
    ) -> Option<LeaseError> {
        let records: Vec<Map<String, Value>> = takes
            .iter()
            .map(|(number, generation)| {
                let mut fields = expiry(expires_at, false);
                fields.insert(
                    "Lease_Key__c".into(),
                    json!(format!("{number}/{generation}")),
                );
                fields.insert("Phone_Number_Id__c".into(), json!(number));
                fields.insert("Generation__c".into(), json!(generation));
                fields.insert("Holder__c".into(), json!(self.holder));
                fields
            })
            .collect();
        let results = match self.salesforce.create(OBJECT, &records).await {
            Ok(results) => results,
            Err(error) => return Some(error.into()),
        };
        let mut first_error = None;
        for ((number, generation), result) in takes.iter().zip(&results) {
            match (
                &result.id,
                refusal(result, &format!("{number}/{generation}")),
            ) {
                (Some(id), None) => self.hold_lease(number, id, *generation, expires_at),
                (_, Some(error)) => first_error = first_error.or(Some(error)),
                (None, None) => {}
            }
        }
        first_error
    }

    fn hold_lease(&self, number: &str, id: &str, generation: u64, expires_at: DateTime<Utc>) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(
            number.to_string(),
            Held {
                id: id.to_string(),
                generation,
                expires_at,
                lost: false,
            },
        );
    }

    /// Ends every lease held now (`Released__c`, expiring now), in one call: the next instance
    /// takes the numbers at once. Logged, never failing: an unreleased lease simply expires.
    pub async fn release(&self, now: DateTime<Utc>) {
        let records: Vec<(String, Map<String, Value>)> = {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.values()
                .filter(|h| !h.lost)
                .map(|h| (h.id.clone(), expiry(now, true)))
                .collect()
        };
        if records.is_empty() {
            return;
        }
        match self.salesforce.update(OBJECT, &records).await {
            Ok(results) if results.iter().all(|r| r.success) => {
                info!(count = records.len(), "business number leases released")
            }
            Ok(results) => warn!(
                ?results,
                "some business number leases were not released; they expire by themselves"
            ),
            Err(error) => {
                warn!(%error, "business number leases not released; they expire by themselves")
            }
        }
    }

    /// Each number leased: its generation and whether this instance holds it now (not lost).
    pub fn states(&self) -> Vec<(String, u64, bool)> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.iter()
            .map(|(n, h)| (n.clone(), h.generation, !h.lost))
            .collect()
    }
}

/// The fields that set a lease's end (and whether it is released).
fn expiry(expires_at: DateTime<Utc>, released: bool) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("Expires_At__c".into(), json!(soql_datetime(expires_at)));
    fields.insert("Released__c".into(), json!(released));
    fields
}

/// A record-level failure as a [`LeaseError`].
fn refusal(result: &RecordResult, key: &str) -> Option<LeaseError> {
    if result.success {
        return None;
    }
    let duplicate = result
        .errors
        .iter()
        .any(|e| e.status_code == "DUPLICATE_VALUE");
    let number = key.split('/').next().unwrap_or(key).to_string();
    let passing = result
        .errors
        .iter()
        .all(|e| e.disposition() == crate::salesforce::Disposition::Retry);
    Some(if duplicate {
        LeaseError::Raced(number)
    } else if passing && !result.errors.is_empty() {
        LeaseError::Busy {
            key: key.to_string(),
            message: format!("{:?}", result.errors),
        }
    } else {
        LeaseError::Refused {
            key: key.to_string(),
            message: format!("{:?}", result.errors),
        }
    })
}

/// What one renewal found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Renewed {
    pub renewed: usize,
    /// Numbers taken again after a loss.
    pub retaken: usize,
    /// Numbers held now because their lease is lost.
    pub lost: usize,
}

/// One renewal (see the module docs): a query, then one PATCH for the live leases and, for a
/// number lost but free again, a create.
pub async fn renew_once(leases: &Leases, dispatcher: &Dispatcher) -> Renewed {
    let now = dispatcher.now();
    let numbers: Vec<String> = {
        let held = leases.held.lock().unwrap_or_else(|e| e.into_inner());
        held.keys().cloned().collect()
    };
    let latest = match leases.read_latest(&numbers).await {
        Ok(latest) => latest,
        Err(error) => {
            warn!(%error, "could not renew the business number leases; retrying at the next renewal");
            expire_unrenewed(leases, dispatcher, now);
            return Renewed {
                lost: lost_numbers(leases).len(),
                ..Renewed::default()
            };
        }
    };
    let steps: Vec<(String, Step)> = numbers
        .iter()
        .map(|n| (n.clone(), decide(n, latest.get(n), &leases.holder, now)))
        .collect();
    let was_lost = lost_numbers(leases);
    if let Some(error) = leases.apply(&steps, now).await {
        warn!(%error, "a business number lease was not renewed");
    }
    let mut renewed = Renewed::default();
    for (number, step) in &steps {
        match step {
            Step::Refuse(taken) => mark_lost(leases, dispatcher, number, now, &taken.to_string()),
            _ if was_lost.contains(number) && !lost_numbers(leases).contains(number) => {
                info!(number, "business number lease taken again; sending resumes");
                dispatcher.release_number(&hold_key(leases, number));
                dispatcher.core.reporter.business_number_lease(number, true);
                renewed.retaken += 1;
            }
            _ => renewed.renewed += 1,
        }
    }
    expire_unrenewed(leases, dispatcher, now);
    renewed.lost = lost_numbers(leases).len();
    renewed
}

fn lost_numbers(leases: &Leases) -> Vec<String> {
    let held = leases.held.lock().unwrap_or_else(|e| e.into_inner());
    held.iter()
        .filter(|(_, h)| h.lost)
        .map(|(n, _)| n.clone())
        .collect()
}

/// The number a lease's hold goes on: blank-number records are sent from the default number.
fn hold_key(leases: &Leases, number: &str) -> String {
    if number == BLANK {
        leases.default_number.clone()
    } else {
        number.to_string()
    }
}

/// Holds every number whose lease has passed its end unrenewed.
/// Numbers lost earlier are held again for a further `lease_ttl` (their hold must not lapse
/// while the lease is someone else's or Salesforce stays unreachable).
fn expire_unrenewed(leases: &Leases, dispatcher: &Dispatcher, now: DateTime<Utc>) {
    let expired: Vec<String> = {
        let held = leases.held.lock().unwrap_or_else(|e| e.into_inner());
        held.iter()
            .filter(|(_, h)| h.expires_at <= now)
            .map(|(n, _)| n.clone())
            .collect()
    };
    for number in &expired {
        let reason = format!("the lease on business number {number} ended without being renewed (Salesforce unreachable, or another instance took it)");
        mark_lost(leases, dispatcher, number, now, &reason);
    }
}

fn mark_lost(
    leases: &Leases,
    dispatcher: &Dispatcher,
    number: &str,
    now: DateTime<Utc>,
    reason: &str,
) {
    let newly = {
        let mut held = leases.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get_mut(number)
            .is_some_and(|h| !std::mem::replace(&mut h.lost, true))
    };
    if newly {
        error!(number, "business number lease lost; its sends are held until it is this instance's again: {reason}");
    }
    dispatcher.hold_number(
        &hold_key(leases, number),
        now + leases.ttl,
        reason.to_string(),
    );
    dispatcher
        .core
        .reporter
        .business_number_lease(number, false);
}

/// Renews every `lease_ttl / 4` until `shutdown` (the release is [`Leases::release`], called by
/// `app` once the sends have finished).
pub async fn run_leases(leases: Arc<Leases>, dispatcher: Dispatcher, shutdown: CancellationToken) {
    let every = (leases.ttl / 4)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        renew_once(&leases, &dispatcher).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn lease(holder: &str, generation: f64, expires_at: &str, released: bool) -> LeaseRow {
        LeaseRow {
            id: "a0X000000000001AAA".into(),
            number: Some("111".into()),
            generation: Some(generation),
            holder: Some(holder.into()),
            expires_at: Some(expires_at.into()),
            released: Some(released),
        }
    }

    const NOW: &str = "2026-11-24T15:00:00Z";

    fn refused_with(code: &str) -> RecordResult {
        serde_json::from_value(json!({
            "success": false,
            "errors": [{"statusCode": code, "message": "…", "fields": []}]
        }))
        .unwrap()
    }

    #[test]
    fn a_row_lock_on_a_lease_is_tried_again_and_a_lost_race_or_a_missing_object_is_not() {
        assert!(matches!(
            refusal(&refused_with("UNABLE_TO_LOCK_ROW"), "111/2"),
            Some(LeaseError::Busy { .. })
        ));
        assert!(matches!(
            refusal(&refused_with("DUPLICATE_VALUE"), "111/2"),
            Some(LeaseError::Raced(number)) if number == "111"
        ));
        assert!(matches!(
            refusal(&refused_with("INVALID_FIELD"), "111/2"),
            Some(LeaseError::Refused { .. })
        ));
    }

    #[test]
    fn a_number_never_leased_is_taken_as_generation_one() {
        assert_eq!(
            decide("111", None, "me", at(NOW)),
            Step::Take { generation: 1 }
        );
    }

    #[test]
    fn my_live_lease_is_renewed_and_my_expired_one_taken_again_as_the_next_generation() {
        let live = lease("me", 3.0, "2026-11-24T15:05:00.000+0000", false);
        let expired = lease("me", 3.0, "2026-11-24T14:59:00.000+0000", false);

        assert_eq!(
            decide("111", Some(&live), "me", at(NOW)),
            Step::Renew {
                id: live.id.clone(),
                generation: 3
            }
        );
        assert_eq!(
            decide("111", Some(&expired), "me", at(NOW)),
            Step::Take { generation: 4 }
        );
    }

    #[test]
    fn another_holders_live_lease_is_refused_naming_the_holder_the_end_and_the_record() {
        let theirs = lease("shard-b#abc", 2.0, "2026-11-24T15:05:00.000+0000", false);

        let step = decide("111", Some(&theirs), "me", at(NOW));

        let Step::Refuse(taken) = step else {
            panic!("{step:?}")
        };
        let text = taken.to_string();
        assert!(
            text.contains("111") && text.contains("shard-b#abc"),
            "{text}"
        );
        assert!(
            text.contains("a0X000000000001AAA") && text.contains("2026-11-24 15:05:00"),
            "{text}"
        );
        assert!(text.contains("whatsapp.phone_number_ids"), "{text}");
    }

    #[test]
    fn another_holders_lease_is_taken_once_released_or_expired_past_the_skew_grace() {
        let released = lease("b", 2.0, "2026-11-24T15:05:00.000+0000", true);
        let within_grace = lease("b", 2.0, "2026-11-24T14:59:50.000+0000", false);
        let past_grace = lease("b", 2.0, "2026-11-24T14:59:00.000+0000", false);

        assert_eq!(
            decide("111", Some(&released), "me", at(NOW)),
            Step::Take { generation: 3 }
        );
        assert!(matches!(
            decide("111", Some(&within_grace), "me", at(NOW)),
            Step::Refuse(_)
        ));
        assert_eq!(
            decide("111", Some(&past_grace), "me", at(NOW)),
            Step::Take { generation: 3 }
        );
    }

    #[test]
    fn the_latest_generation_of_each_number_is_the_one_decided_on() {
        let mut old = lease("a", 1.0, NOW, false);
        old.id = "old".into();
        let new = lease("b", 2.0, NOW, false);

        let latest = latest_by_number(vec![old, new]);

        assert_eq!(latest["111"].holder.as_deref(), Some("b"));
    }

    #[test]
    fn the_lease_query_quotes_each_number() {
        let soql = leases_query(&["111".into(), BLANK.into()]);

        assert!(soql
            .contains("WHERE Phone_Number_Id__c IN ('111','BLANK') ORDER BY Generation__c DESC"));
    }
}
