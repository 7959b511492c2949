//! What [`super::inbound_owner`] remembers between flushes (the Cases of outbound messages, each
//! Case's owner, open state and Account, the inbound queue's Id):
//! state the write-back's dependencies ([`WriteBack`](super::WriteBack)) hold, in its own file so
//! the pipeline's shared state does not import the module that uses it (which imports it).

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
    /// Case Id → what the flush needs of it, when learned. Kept no longer than
    /// [`CACHE_FOR`](super::inbound_owner::CACHE_FOR), like the owners alone before: a Case closed
    /// within that time may still be linked.
    pub(super) case_states: HashMap<String, (CaseState, DateTime<Utc>)>,
}

/// One Case as read by `SELECT Id, OwnerId, IsClosed, AccountId FROM Case`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CaseState {
    pub(super) owner: Option<String>,
    /// A Case whose Status is a closed one (`IsClosed`): replies are not linked to it.
    pub(super) is_closed: bool,
    pub(super) account: Option<String>,
}

impl OwnerCache {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CacheState {
    /// Forgets answers older than `ttl`: they would be asked again anyway, and a daemon that runs
    /// for months must not keep one entry per message ever replied to.
    pub(super) fn forget_older_than(&mut self, ttl: chrono::Duration, now: DateTime<Utc>) {
        self.cases.retain(|_, (_, at)| now - *at < ttl);
        self.case_states.retain(|_, (_, at)| now - *at < ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_older_than_the_ttl_are_forgotten_and_younger_ones_kept() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .to_utc();
        let ttl = chrono::Duration::minutes(15);
        let mut state = CacheState::default();
        state
            .cases
            .insert("old".into(), (None, now - chrono::Duration::minutes(16)));
        state.cases.insert(
            "new".into(),
            (Some("500A".into()), now - chrono::Duration::minutes(1)),
        );
        state
            .case_states
            .insert("500B".into(), (CaseState::default(), now - ttl));

        state.forget_older_than(ttl, now);

        assert_eq!(state.cases.keys().collect::<Vec<_>>(), vec!["new"]);
        assert!(state.case_states.is_empty());
    }
}
