//! What [`super::inbound_owner`] remembers between flushes (Case owners, the inbound queue's Id):
//! state the [`Pipeline`](super::Pipeline) holds, in its own file so the pipeline's shared state
//! does not import the module that uses it (which imports the pipeline).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Remembered answers, timed by the pipeline's clock.
#[derive(Debug, Default)]
pub struct OwnerCache {
    inner: Mutex<CacheState>,
}

#[derive(Debug, Default)]
pub(super) struct CacheState {
    /// The configured queue: `Some(Some(id))` found, `Some(None)` looked up and missing, `None`
    /// not looked up yet; trusted for [`CACHE_FOR`](super::inbound_owner::CACHE_FOR) after
    /// `queue_checked`.
    pub(super) queue: Option<Option<String>>,
    pub(super) queue_checked: Option<DateTime<Utc>>,
    /// Outbound record Id → its Case__c (None: no Case), when learned.
    pub(super) cases: HashMap<String, (Option<String>, DateTime<Utc>)>,
    /// Case Id → OwnerId, when learned.
    pub(super) case_owners: HashMap<String, (String, DateTime<Utc>)>,
}

impl OwnerCache {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
