//! The org's event bus: registered channels, their retained events, and the subscribed clients.
//!
//! The org simulator publishes here (a record-triggered flow publishing `WhatsApp_Outbound__e`); the
//! Bayeux handlers read here. One mutex guards events and clients together so that a connect's
//! "anything pending?" and a concurrent publish cannot miss each other; a [`Notify`] wakes held
//! connects after every change.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::clients::ClientRegistry;
use super::messages::EventMessage;
use crate::clock::SimClock;
use crate::salesforce::ids;

/// One published event as the bus retains it.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedEvent {
    pub replay_id: i64,
    pub event_uuid: String,
    /// Sim-clock time of publishing; serialised as `CreatedDate` with milliseconds.
    pub created_date: DateTime<Utc>,
    /// The publishing user, serialised as `CreatedById`.
    pub created_by_id: String,
    /// The publisher's fields, e.g. `Message_Id__c`.
    pub fields: Map<String, Value>,
}

impl PublishedEvent {
    /// The `payload` object's entries in Salesforce's order: `CreatedDate`, `CreatedById`, then fields.
    pub fn payload_fields(&self) -> Vec<(String, Value)> {
        let mut out = Vec::with_capacity(self.fields.len() + 2);
        out.push((
            "CreatedDate".to_owned(),
            Value::String(
                self.created_date
                    .to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
        ));
        out.push((
            "CreatedById".to_owned(),
            Value::String(self.created_by_id.clone()),
        ));
        out.extend(
            self.fields
                .iter()
                .filter(|(k, _)| *k != "CreatedDate" && *k != "CreatedById")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }
}

/// Where a subscription starts, from the subscribe's `ext.replay` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// `-1`: only events published after subscribing.
    New,
    /// `-2`: every retained event.
    AllRetained,
    /// A replay id the client stored: the events after it.
    After(i64),
}

/// Why a subscribe was refused; the Bayeux layer turns each into Salesforce's error text.
#[derive(Debug, PartialEq, Eq)]
pub enum SubscribeError {
    UnknownClient,
    NoSuchChannel,
    /// The replay id is not one of the channel's retained events (expired, or never issued).
    InvalidReplayId(i64),
}

/// The client id is unknown, expired, or was dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownClient;

/// The event bus of one simulated org. Share it as `Arc<EventBus>`.
#[derive(Debug)]
pub struct EventBus {
    clock: SimClock,
    /// How long events stay replayable (72 h for high-volume platform events).
    retention: Duration,
    /// `CreatedById` stamped on every event: the org's integration user.
    created_by_id: String,
    /// The `sfdc-stream` cookie value: names "the app server" that holds this bus's clients.
    route_cookie: String,
    state: Mutex<BusState>,
    /// Woken (notify_waiters) on every publish and client drop. Held connects create their
    /// `Notified` before looking at the state, so a change between look and wait is not lost.
    changed: Notify,
}

#[derive(Debug, Default)]
struct BusState {
    channels: HashMap<String, ChannelLog>,
    /// The last replay id handed out, on any channel. Ids only grow, so "-1" is "after this one".
    last_replay_id: i64,
    clients: ClientRegistry,
}

#[derive(Debug)]
struct ChannelLog {
    /// The payload schema id; stable per channel, like Salesforce's per-event-definition hash.
    schema: String,
    /// Oldest first; replay ids increase along it.
    events: VecDeque<PublishedEvent>,
}

impl ChannelLog {
    fn new(channel: &str) -> Self {
        // Salesforce's schema id is a 22-character URL-safe hash of the event definition; hashing the
        // channel name gives the same look and keeps it stable across runs.
        let digest = Sha256::digest(channel.as_bytes());
        let mut schema = URL_SAFE_NO_PAD.encode(digest);
        schema.truncate(22);
        ChannelLog {
            schema,
            events: VecDeque::new(),
        }
    }
}

impl EventBus {
    /// A bus whose events stay replayable for `retention` of sim-clock time.
    pub fn new(clock: SimClock, retention: Duration) -> Arc<EventBus> {
        let mut route = [0u8; 48];
        rand::thread_rng().fill(&mut route[..]);
        Arc::new(EventBus {
            clock,
            retention,
            created_by_id: integration_user_id(),
            // Real values look like `!AhRbZGptLQqU…==`: a bang and base64.
            route_cookie: format!(
                "!{}",
                base64::engine::general_purpose::STANDARD.encode(route)
            ),
            state: Mutex::new(BusState::default()),
            changed: Notify::new(),
        })
    }

    /// Makes `channel` (e.g. `/event/WhatsApp_Outbound__e`) subscribable. Idempotent.
    pub fn register_channel(&self, channel: &str) {
        self.lock()
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| ChannelLog::new(channel));
    }

    /// Publishes an event with the given fields and returns its replay id.
    ///
    /// Publishing on an unregistered channel registers it: an event type that has events exists.
    pub fn publish(&self, channel: &str, payload: Map<String, Value>) -> i64 {
        let now = self.clock.now();
        let replay_id = {
            let mut state = self.lock();
            // Random steps: replay ids are opaque; a client that computes with them should break here.
            state.last_replay_id += rand::thread_rng().gen_range(1..=5);
            let replay_id = state.last_replay_id;
            let log = state
                .channels
                .entry(channel.to_owned())
                .or_insert_with(|| ChannelLog::new(channel));
            log.events.push_back(PublishedEvent {
                replay_id,
                event_uuid: uuid::Uuid::new_v4().to_string(),
                created_date: now,
                created_by_id: self.created_by_id.clone(),
                fields: payload,
            });
            self.expire_events(&mut state, now);
            replay_id
        };
        tracing::debug!(channel, replay_id, "platform event published");
        self.changed.notify_waiters();
        replay_id
    }

    /// The retained events of `channel`, oldest first (empty for an unknown channel).
    pub fn events(&self, channel: &str) -> Vec<PublishedEvent> {
        let now = self.clock.now();
        let mut state = self.lock();
        self.expire_events(&mut state, now);
        state
            .channels
            .get(channel)
            .map(|log| log.events.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets every client, as a server restart does: their next subscribe or connect (including
    /// one being held now) is answered `403::Unknown client`.
    pub fn drop_all_clients(&self) {
        self.lock().clients.clear();
        self.changed.notify_waiters();
    }

    /// How many clients are currently known (expired ones may still count until looked up).
    pub fn client_count(&self) -> usize {
        self.lock().clients.len()
    }

    /// How many connects are being held right now (for the control API, and for tests that must know
    /// a long poll is parked before publishing).
    pub fn held_connects(&self) -> usize {
        self.lock().clients.held_connects()
    }

    /// The `sfdc-stream` cookie value a handshake hands out and later requests must carry.
    pub fn route_cookie(&self) -> &str {
        &self.route_cookie
    }

    pub(super) fn changed(&self) -> &Notify {
        &self.changed
    }

    pub(super) fn open_client(&self) -> String {
        let now = self.clock.now();
        self.lock().clients.open(now)
    }

    pub(super) fn subscribe(
        &self,
        client_id: &str,
        channel: &str,
        from: ReplayFrom,
        idle_limit: Duration,
    ) -> Result<(), SubscribeError> {
        let now = self.clock.now();
        let mut state = self.lock();
        self.expire_events(&mut state, now);
        let BusState {
            channels,
            last_replay_id,
            clients,
        } = &mut *state;
        let client = clients
            .get_mut(client_id, now, idle_limit)
            .ok_or(SubscribeError::UnknownClient)?;
        let log = channels.get(channel).ok_or(SubscribeError::NoSuchChannel)?;
        let position = match from {
            ReplayFrom::New => *last_replay_id,
            // Ids start at 1, so 0 is before every event.
            ReplayFrom::AllRetained => 0,
            ReplayFrom::After(id) if log.events.iter().any(|e| e.replay_id == id) => id,
            ReplayFrom::After(id) => return Err(SubscribeError::InvalidReplayId(id)),
        };
        client.subscriptions.insert(channel.to_owned(), position);
        Ok(())
    }

    pub(super) fn unsubscribe(
        &self,
        client_id: &str,
        channel: &str,
        idle_limit: Duration,
    ) -> Result<(), UnknownClient> {
        let now = self.clock.now();
        let mut state = self.lock();
        let client = state
            .clients
            .get_mut(client_id, now, idle_limit)
            .ok_or(UnknownClient)?;
        client.subscriptions.remove(channel);
        Ok(())
    }

    pub(super) fn disconnect(&self, client_id: &str) -> Result<(), UnknownClient> {
        let removed = self.lock().clients.remove(client_id);
        self.changed.notify_waiters();
        removed.then_some(()).ok_or(UnknownClient)
    }

    /// Starts a connect: the client counts as active until [`EventBus::end_connect`]. Returns whether
    /// this is the client's first connect (which carries the polling advice).
    pub(super) fn begin_connect(
        &self,
        client_id: &str,
        idle_limit: Duration,
    ) -> Result<bool, UnknownClient> {
        let now = self.clock.now();
        let mut state = self.lock();
        let client = state
            .clients
            .get_mut(client_id, now, idle_limit)
            .ok_or(UnknownClient)?;
        client.connects_in_flight += 1;
        let first = !client.connected_once;
        client.connected_once = true;
        Ok(first)
    }

    pub(super) fn end_connect(&self, client_id: &str) {
        let now = self.clock.now();
        if let Some(client) = self.lock().clients.get_any_mut(client_id) {
            client.connects_in_flight = client.connects_in_flight.saturating_sub(1);
            client.last_seen = now;
        }
    }

    /// Takes the events the client has not received yet on its subscriptions, in replay order per
    /// channel, and marks them delivered.
    pub(super) fn take_pending(&self, client_id: &str) -> Result<Vec<EventMessage>, UnknownClient> {
        let now = self.clock.now();
        let mut state = self.lock();
        self.expire_events(&mut state, now);
        let BusState {
            channels, clients, ..
        } = &mut *state;
        // A client in a connect is never idle, so no idle limit here; a dropped client is gone.
        let client = clients.get_any_mut(client_id).ok_or(UnknownClient)?;
        let mut out = Vec::new();
        for (channel, position) in client.subscriptions.iter_mut() {
            let Some(log) = channels.get(channel) else {
                continue;
            };
            let from = *position;
            for event in log.events.iter().filter(|e| e.replay_id > from) {
                out.push(EventMessage::new(channel, &log.schema, event));
                *position = event.replay_id;
            }
        }
        // Across channels, deliver in publishing order (replay ids are global and increasing).
        out.sort_by_key(|message| message.data.event.replay_id);
        Ok(out)
    }

    fn expire_events(&self, state: &mut BusState, now: DateTime<Utc>) {
        let cutoff = now - self.retention;
        for log in state.channels.values_mut() {
            log.events.retain(|e| e.created_date >= cutoff);
        }
    }

    fn lock(&self) -> MutexGuard<'_, BusState> {
        // A panic while holding the lock leaves consistent data (every update is a single step), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The simulated integration user's Id (`005…`, 18 characters).
fn integration_user_id() -> String {
    let id15 = "005Hs00000Ab3Xy";
    format!("{id15}{}", ids::checksum(id15))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(id: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("Message_Id__c".into(), Value::String(id.into()));
        m
    }

    #[test]
    fn replay_ids_increase_but_are_not_contiguous_over_many_publishes() {
        let bus = EventBus::new(SimClock::new(), Duration::hours(72));
        let ids: Vec<i64> = (0..50)
            .map(|i| bus.publish("/event/E__e", fields(&i.to_string())))
            .collect();
        assert!(ids.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= 5));
        assert!(ids.windows(2).any(|w| w[1] - w[0] > 1));
    }

    #[test]
    fn events_older_than_the_retention_are_dropped() {
        let clock = SimClock::new();
        let bus = EventBus::new(clock.clone(), Duration::hours(72));
        bus.publish("/event/E__e", fields("old"));
        clock.shift(Duration::hours(73));
        bus.publish("/event/E__e", fields("new"));
        let events = bus.events("/event/E__e");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].fields["Message_Id__c"], "new");
    }

    #[test]
    fn payload_starts_with_created_date_and_created_by_id() {
        let bus = EventBus::new(SimClock::new(), Duration::hours(72));
        bus.publish("/event/E__e", fields("a00"));
        let event = &bus.events("/event/E__e")[0];
        let keys: Vec<String> = event.payload_fields().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["CreatedDate", "CreatedById", "Message_Id__c"]);
        assert!(event.created_by_id.starts_with("005") && event.created_by_id.len() == 18);
    }
}
