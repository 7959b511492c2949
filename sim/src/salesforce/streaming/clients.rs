//! The Bayeux clients a handshake created, with their subscriptions and replay positions.
//!
//! Lives inside the [`EventBus`](super::bus::EventBus) lock, next to the events, so that "which events
//! has this client not seen yet" is answered atomically with publishing.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;

/// One handshaken client.
#[derive(Debug)]
pub struct Client {
    /// Channel → replay id of the last event delivered (or the position subscribed from); events with
    /// a larger replay id are pending.
    pub subscriptions: HashMap<String, i64>,
    /// When the client last finished a connect (or handshook). Sim-clock time, so tests can idle a
    /// client out by shifting the clock.
    pub last_seen: DateTime<Utc>,
    /// Connects being held right now. A client in a long poll is never idle, however long the poll.
    pub connects_in_flight: u32,
    /// Whether a connect has been answered: the first one carries the polling advice.
    pub connected_once: bool,
}

/// All known clients by id.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: HashMap<String, Client>,
}

impl ClientRegistry {
    /// Registers a new client and returns its id.
    pub fn open(&mut self, now: DateTime<Utc>) -> String {
        let id = new_client_id();
        self.clients.insert(
            id.clone(),
            Client {
                subscriptions: HashMap::new(),
                last_seen: now,
                connects_in_flight: 0,
                connected_once: false,
            },
        );
        id
    }

    /// The client, unless it is unknown or has been idle for longer than `idle_limit`.
    ///
    /// Expiry is lazy: checked whenever a client is looked up, which is the only time it matters.
    pub fn get_mut(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
        idle_limit: Duration,
    ) -> Option<&mut Client> {
        let expired = self
            .clients
            .get(id)
            .is_some_and(|c| c.connects_in_flight == 0 && now - c.last_seen > idle_limit);
        if expired {
            self.clients.remove(id);
            return None;
        }
        self.clients.get_mut(id)
    }

    /// A client regardless of idleness: for bookkeeping at the end of a connect.
    pub fn get_any_mut(&mut self, id: &str) -> Option<&mut Client> {
        self.clients.get_mut(id)
    }

    pub fn remove(&mut self, id: &str) -> bool {
        self.clients.remove(id).is_some()
    }

    pub fn clear(&mut self) {
        self.clients.clear();
    }

    pub fn held_connects(&self) -> usize {
        self.clients
            .values()
            .map(|c| c.connects_in_flight as usize)
            .sum()
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// A CometD-style client id: 26–28 lower-case base-36 characters, like `1cyu4qyi7xk1f8jyx8ox7lm9ulg`.
fn new_client_id() -> String {
    let mut rng = rand::thread_rng();
    let len = rng.gen_range(26..=28);
    rng.sample_iter(&Alphanumeric)
        .map(|b| (b as char).to_ascii_lowercase())
        .take(len)
        .collect()
}
