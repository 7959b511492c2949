//! What the workers depend on: the shared [`Core`], and per worker the rest ([`Intake`],
//! [`Dispatcher`], [`WriteBack`]); [`Pipeline`] wires them together once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::salesforce::SalesforceClient;
use crate::store::Store;
use crate::whatsapp::WhatsAppClient;

use super::report::Reporter;

/// A send that waited this long for its number's pace is one of a backlog: sends then go at the
/// number's rate, ten or more waiting at Meta's highest tier (1,000/s).
pub const PACED_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// What every worker shares: settings, time, the store, the flush handle and the reporter.
/// Cheap to clone (everything is behind `Arc`s); each worker's dependencies hold one.
#[derive(Clone)]
pub struct Core {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub store: Store,
    /// Reaches the write-back worker: "a batch is ready", "flush now and tell me" (see
    /// [`super::flush`]).
    pub flush: super::flush::FlushHandle,
    /// Who hears what the pipeline does (the metrics, the intake's health; see
    /// [`super::report`]).
    pub reporter: Arc<dyn Reporter>,
    /// Where numbers without a country code are from (`whatsapp.default_region`).
    pub default_region: Option<phonenumber::country::Id>,
}

impl Core {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The Salesforce object message records live in (`salesforce.message_object`).
    pub fn message_object(&self) -> &str {
        &self.settings.salesforce.message_object
    }
}

/// What the intake uses (poll, stream, claims, reading records by Id): the shared core and
/// Salesforce.
#[derive(Clone)]
pub struct Intake {
    pub core: Core,
    pub salesforce: SalesforceClient,
}

/// What the send path uses: the shared core, WhatsApp, the pace, the hold, what is in flight.
#[derive(Clone)]
pub struct Dispatcher {
    pub core: Core,
    pub whatsapp: WhatsAppClient,
    /// Creates the re-engagement template's own record (see [`super::reengage`]).
    pub salesforce: SalesforceClient,
    /// Per business number: how fast sends go, adapting to Meta's refusals; per customer: the
    /// pair-rate waits (see [`super::pacing`]).
    pub pacer: Arc<super::pacing::Pacer>,
    /// Records a dispatch in this process is working on (from before its claim is handed over
    /// until its outcome is journaled): the orphan scan leaves them alone.
    pub in_flight: Arc<InFlight>,
    /// Per business number: how many sends may be in flight (from its pace × the latency
    /// measured), and the records waiting for a slot (see [`super::dispatch::lanes`]).
    pub lanes: Arc<super::dispatch::lanes::Lanes>,
    /// When this pipeline started: a claim older than that is nobody's in this process.
    pub started_at: DateTime<Utc>,
    /// The account's template categories (an authentication template cannot go to a BSUID).
    pub templates: Arc<crate::whatsapp::templates::TemplateCategories>,
    /// The template catalog check's memory (fetches, an unreadable catalog): `super::catalog_cache`.
    pub catalog: Arc<super::catalog_cache::Catalog>,
    /// Set when Meta says every send will fail (token expired, account blocked), or every send
    /// from one number will (see [`Holds`]): sending pauses until then, messages stay queued and
    /// are never failed for it.
    holds: Arc<Mutex<Holds>>,
}

/// What the write-back uses: the shared core, Salesforce, and what the inbound records' links
/// and owners remember between flushes.
#[derive(Clone)]
pub struct WriteBack {
    pub core: Core,
    pub salesforce: SalesforceClient,
    /// Recent answers of the Contact/Lead lookup for inbound messages (see `inbound_links`).
    pub link_cache: Arc<super::inbound_links::LinkCache>,
    /// Case owners and the inbound queue's Id, for inbound records' owners (see `inbound_owner`).
    pub owner_cache: Arc<super::owner_cache::OwnerCache>,
}

/// Every worker's dependencies, wired once (by `app`). Functions take the part they use; only
/// the steps that chain workers (poll → dispatch, `sfwa sync`, the jobs) take the whole.
#[derive(Clone)]
pub struct Pipeline {
    pub core: Core,
    pub intake: Intake,
    pub dispatcher: Dispatcher,
    pub write_back: WriteBack,
}

#[derive(Clone, Debug)]
pub struct Hold {
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// What is on hold: everything (the token or the app: every number fails alike), or single
/// business numbers (a number Meta blocked, or one whose lease this instance lost) — one number's
/// problem holds that number only.
#[derive(Debug, Default)]
struct Holds {
    all: Option<Hold>,
    numbers: std::collections::HashMap<String, Hold>,
}

impl Pipeline {
    pub fn new(
        settings: Arc<Settings>,
        clock: SharedClock,
        store: Store,
        salesforce: SalesforceClient,
        whatsapp: WhatsAppClient,
        reporter: Arc<dyn Reporter>,
    ) -> Pipeline {
        let pacer = super::pacing::Pacer::new(settings.whatsapp.throughput_per_second)
            .with_number_ceilings(&settings.whatsapp.throughput_per_number);
        let started_at = clock.now();
        let default_region = crate::domain::phone::region(&settings.whatsapp.default_region).ok();
        let core = Core {
            settings,
            clock,
            store,
            flush: super::flush::FlushHandle::default(),
            reporter,
            default_region,
        };
        Pipeline {
            intake: Intake {
                core: core.clone(),
                salesforce: salesforce.clone(),
            },
            dispatcher: Dispatcher {
                core: core.clone(),
                whatsapp,
                salesforce: salesforce.clone(),
                pacer: Arc::new(pacer),
                in_flight: Arc::default(),
                lanes: Arc::default(),
                started_at,
                templates: Arc::default(),
                catalog: Arc::default(),
                holds: Arc::default(),
            },
            write_back: WriteBack {
                core: core.clone(),
                salesforce,
                link_cache: Arc::default(),
                owner_cache: Arc::default(),
            },
            core,
        }
    }
}

impl Dispatcher {
    pub fn now(&self) -> DateTime<Utc> {
        self.core.now()
    }

    /// Waits for a send slot of `business_number_id` (see [`super::pacing`]). A send that waited
    /// [`PACED_WAIT`] or more tells the store a backlog drains ([`Store::backlog_draining`]).
    pub async fn throttle(&self, business_number_id: &str) {
        if self.pacer.slot(business_number_id).await >= PACED_WAIT {
            self.core.store.backlog_draining();
        }
    }

    /// Whether template `name` in `language` is known to be an authentication template (from the
    /// cached listing; unknown reads as no, and Meta decides).
    pub async fn is_authentication_template(&self, name: &str, language: &str) -> bool {
        let waba_id = &self.core.settings.whatsapp.business_account_id;
        let category = self
            .templates
            .category(&self.whatsapp, waba_id, name, language, self.now())
            .await;
        category == Some(crate::whatsapp::templates::Category::Authentication)
    }

    /// The hold on sends from `number`, if any: a hold on everything, else that number's own.
    pub fn current_hold(&self, number: &str) -> Option<Hold> {
        let now = self.now();
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        if holds.all.as_ref().is_some_and(|h| h.until <= now) {
            holds.all = None;
        }
        if let Some(hold) = &holds.all {
            return Some(hold.clone());
        }
        if holds.numbers.get(number).is_some_and(|h| h.until <= now) {
            holds.numbers.remove(number);
        }
        holds.numbers.get(number).cloned()
    }

    /// The hold on everything (the token, the app), if any.
    pub fn hold_on_all(&self) -> Option<Hold> {
        self.current_hold("")
    }

    /// Holds every send until `until`.
    pub fn hold_until(&self, until: DateTime<Utc>, reason: String) {
        self.holds.lock().unwrap_or_else(|e| e.into_inner()).all = Some(Hold { until, reason });
    }

    /// Holds sends from `number` until `until` (the other numbers go on).
    pub fn hold_number(&self, number: &str, until: DateTime<Utc>, reason: String) {
        let hold = Hold { until, reason };
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        holds.numbers.insert(number.to_string(), hold);
    }

    /// Ends the hold on `number` before its time (e.g. its lease is this instance's again).
    pub fn release_number(&self, number: &str) {
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        holds.numbers.remove(number);
    }

    /// The numbers on hold now, with their holds (for metrics and `/readyz`).
    pub fn held_numbers(&self) -> Vec<(String, Hold)> {
        let now = self.now();
        let holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        holds
            .numbers
            .iter()
            .filter(|(_, hold)| hold.until > now)
            .map(|(number, hold)| (number.clone(), hold.clone()))
            .collect()
    }

    /// The business number a message goes from.
    pub fn business_number<'a>(&'a self, requested: Option<&'a str>) -> &'a str {
        requested.unwrap_or(&self.core.settings.whatsapp.default_phone_number_id)
    }
}

/// The record Ids this process's dispatches are working on.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    /// Marks `record_id` as being worked on until the guard is dropped. `None` if it already is
    /// (another dispatch in this process has it).
    pub fn enter(self: &Arc<Self>, record_id: &str) -> Option<InFlightGuard> {
        let mut ids = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ids.insert(record_id.to_string()).then(|| InFlightGuard {
            set: self.clone(),
            record_id: record_id.to_string(),
        })
    }

    pub fn contains(&self, record_id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(record_id)
    }
}

/// Removes its record from [`InFlight`] when dropped (also when the dispatch panics or is cancelled).
#[derive(Debug)]
pub struct InFlightGuard {
    set: Arc<InFlight>,
    record_id: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.record_id);
    }
}
