//! What the send path's template check (`pipeline::catalog`) remembers between sends: when each
//! template was last fetched from Meta (a burst of records naming a template that does not
//! exist costs one fetch, not one per record), and since when the catalog cannot be read. Its
//! own file so the dispatcher's context can hold it without importing the check.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// A template is fetched from Meta again at most this often.
const REFRESH_EVERY: Duration = Duration::seconds(60);
/// After a fetch failed (Meta unreachable, the token lacks the permission), sends go unchecked
/// this long before the catalog is asked again.
const UNREADABLE_FOR: Duration = Duration::minutes(5);

/// What the send path remembers between sends: when each template was last fetched from Meta,
/// and when the catalog last could not be read.
#[derive(Default)]
pub struct Catalog {
    fetched: Mutex<HashMap<(String, String), DateTime<Utc>>>,
    unreadable_since: Mutex<Option<DateTime<Utc>>>,
    /// Held while a template is fetched (see `pipeline::catalog::check`).
    pub fetching: tokio::sync::Mutex<()>,
}

impl Catalog {
    pub fn unreadable(&self, now: DateTime<Utc>) -> bool {
        let since = self
            .unreadable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        since.is_some_and(|at| now - at < UNREADABLE_FOR)
    }

    pub fn set_unreadable(&self, at: Option<DateTime<Utc>>) {
        *self
            .unreadable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Whether template `name`/`language` may be fetched again now (and notes that it is).
    pub fn may_fetch(&self, key: (&str, &str), now: DateTime<Utc>) -> bool {
        let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        let key = (key.0.to_string(), key.1.to_string());
        if fetched
            .get(&key)
            .is_some_and(|at| now - *at < REFRESH_EVERY)
        {
            return false;
        }
        fetched.insert(key, now);
        true
    }
}
