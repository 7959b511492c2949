//! What every pipeline step shares.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::salesforce::SalesforceClient;
use crate::store::Store;
use crate::whatsapp::WhatsAppClient;

use super::report::Reporter;

/// The shared state of the pipeline. Cheap to clone (everything is behind `Arc`s).
#[derive(Clone)]
pub struct Pipeline {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub store: Store,
    pub salesforce: SalesforceClient,
    pub whatsapp: WhatsAppClient,
    /// Per business number: how fast sends go, adapting to Meta's refusals; per customer: the
    /// pair-rate waits (see [`super::pacing`]).
    pub pacer: Arc<super::pacing::Pacer>,
    /// Records a dispatch in this process is working on (from before its claim is handed over
    /// until its outcome is journaled): the orphan scan leaves them alone.
    pub in_flight: Arc<InFlight>,
    /// When this pipeline started: a claim older than that is nobody's in this process.
    pub started_at: DateTime<Utc>,
    /// Set when Meta says every send will fail (token expired, account blocked): sending pauses
    /// until then, messages stay queued and are never failed for it.
    hold: Arc<Mutex<Option<Hold>>>,
    /// Reaches the write-back worker: "a batch is ready", "flush now and tell me" (see
    /// [`super::flush`]).
    pub flush: super::flush::FlushHandle,
    /// Recent answers of the Contact/Lead lookup for inbound messages (see `inbound_links`).
    pub link_cache: Arc<super::inbound_links::LinkCache>,
    /// Case owners and the inbound queue's Id, for inbound records' owners (see `inbound_owner`).
    pub owner_cache: Arc<super::owner_cache::OwnerCache>,
    pub default_region: Option<phonenumber::country::Id>,
    /// Who hears what the pipeline does (the metrics, the intake's health; see
    /// [`super::report`]).
    pub reporter: Arc<dyn Reporter>,
}

#[derive(Clone, Debug)]
pub struct Hold {
    pub until: DateTime<Utc>,
    pub reason: String,
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
        let pacer = super::pacing::Pacer::new(settings.whatsapp.throughput_per_second);
        let started_at = clock.now();
        let default_region = crate::domain::phone::region(&settings.whatsapp.default_region).ok();
        Pipeline {
            settings,
            clock,
            store,
            salesforce,
            whatsapp,
            pacer: Arc::new(pacer),
            in_flight: Arc::default(),
            started_at,
            hold: Arc::new(Mutex::new(None)),
            flush: super::flush::FlushHandle::default(),
            link_cache: Arc::default(),
            owner_cache: Arc::default(),
            default_region,
            reporter,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Waits for a send slot of `business_number_id` (see [`super::pacing`]).
    pub async fn throttle(&self, business_number_id: &str) {
        self.pacer.slot(business_number_id).await;
    }

    pub fn current_hold(&self) -> Option<Hold> {
        let mut hold = self.hold.lock().unwrap_or_else(|e| e.into_inner());
        if hold.as_ref().is_some_and(|h| h.until <= self.now()) {
            *hold = None;
        }
        hold.clone()
    }

    pub fn hold_until(&self, until: DateTime<Utc>, reason: String) {
        *self.hold.lock().unwrap_or_else(|e| e.into_inner()) = Some(Hold { until, reason });
    }

    /// The business number a message goes from.
    pub fn business_number<'a>(&'a self, requested: Option<&'a str>) -> &'a str {
        requested.unwrap_or(&self.settings.whatsapp.default_phone_number_id)
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
