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

use super::channels::{
    self, ChannelError, ChannelMember, Channels, CustomChannel, DeliveryAllocation,
};
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

#[derive(Debug)]
struct BusState {
    channels: HashMap<String, ChannelLog>,
    /// Custom channels (`/event/X__chn`) by subscription path; their events are their members'.
    custom: Channels,
    /// The last replay id handed out, on any channel. Ids only grow, so "-1" is "after this one".
    last_replay_id: i64,
    clients: ClientRegistry,
    delivery: DeliveryAllocation,
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
            state: Mutex::new(BusState {
                channels: HashMap::new(),
                custom: Channels::new(),
                last_replay_id: 0,
                clients: ClientRegistry::default(),
                delivery: DeliveryAllocation::new(channels::DEFAULT_DAILY_DELIVERIES),
            }),
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

    /// Creates a custom channel (`full_name` like `Sfwa_Shard_A__chn`), as a `PlatformEventChannel`
    /// create or deploy does. It has no members (and delivers nothing) until some are added.
    pub fn create_channel(&self, full_name: &str, label: &str) -> Result<(), ChannelError> {
        if !channels::is_channel_name(full_name) {
            return Err(ChannelError::BadName(full_name.to_owned()));
        }
        let path = channels::subscription_path(full_name);
        let mut state = self.lock();
        if state.custom.contains_key(&path) {
            return Err(ChannelError::Duplicate(full_name.to_owned()));
        }
        state.custom.insert(
            path,
            CustomChannel {
                label: label.to_owned(),
                members: Vec::new(),
            },
        );
        Ok(())
    }

    /// Adds a member to a custom channel, as a `PlatformEventChannelMember` create does. Its
    /// filter applies to deliveries from then on, including to clients already subscribed.
    pub fn add_member(&self, channel: &str, member: ChannelMember) -> Result<(), ChannelError> {
        let mut state = self.lock();
        let custom = state
            .custom
            .get_mut(&channels::subscription_path(channel))
            .ok_or_else(|| ChannelError::NoSuchChannel(channel.to_owned()))?;
        if custom
            .members
            .iter()
            .any(|m| m.selected_entity == member.selected_entity)
        {
            return Err(ChannelError::DuplicateMember {
                channel: channel.to_owned(),
                entity: member.selected_entity,
            });
        }
        let source = member.source_channel();
        custom.members.push(member);
        // The member's event becomes subscribable too (it exists once deployed).
        state
            .channels
            .entry(source.clone())
            .or_insert_with(|| ChannelLog::new(&source));
        Ok(())
    }

    /// The custom channels by subscription path, with their members.
    pub fn custom_channels(&self) -> Channels {
        self.lock().custom.clone()
    }

    /// `DailyDeliveredPlatformEvents`: (Max, Remaining) today.
    pub fn delivery_allocation(&self) -> (u64, u64) {
        let now = self.clock.now();
        let mut state = self.lock();
        state.delivery.roll_day(now);
        (state.delivery.max, state.delivery.remaining())
    }

    /// Sets the daily delivery allocation and/or today's use (control API).
    pub fn set_delivery_allocation(&self, max: Option<u64>, used: Option<u64>) {
        let now = self.clock.now();
        {
            let mut state = self.lock();
            state.delivery.roll_day(now);
            if let Some(max) = max {
                state.delivery.max = max;
            }
            if let Some(used) = used {
                state.delivery.used = used;
            }
        }
        // Held connects may now be able to deliver what the allocation held back.
        self.changed.notify_waiters();
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
            custom,
            last_replay_id,
            clients,
            ..
        } = &mut *state;
        let client = clients
            .get_mut(client_id, now, idle_limit)
            .ok_or(SubscribeError::UnknownClient)?;
        // A custom channel replays from its members' events (replay ids are per org here).
        let sources: Vec<&ChannelLog> = match custom.get(channel) {
            Some(custom) => custom
                .members
                .iter()
                .filter_map(|m| channels.get(&m.source_channel()))
                .collect(),
            None => vec![channels.get(channel).ok_or(SubscribeError::NoSuchChannel)?],
        };
        let retained = |id: i64| {
            sources
                .iter()
                .any(|log| log.events.iter().any(|e| e.replay_id == id))
        };
        let position = match from {
            ReplayFrom::New => *last_replay_id,
            // Ids start at 1, so 0 is before every event.
            ReplayFrom::AllRetained => 0,
            ReplayFrom::After(id) if retained(id) => id,
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

    /// Takes the events the client has not received yet on its subscriptions, in replay order,
    /// and marks them delivered. On a custom channel only the members' events its filters admit
    /// are delivered (the others are passed over, at no cost). Each delivery spends one of the
    /// day's allocation; once it is spent nothing more is delivered, and the subscription stays
    /// where it was so the events come once the allocation allows.
    pub(super) fn take_pending(&self, client_id: &str) -> Result<Vec<EventMessage>, UnknownClient> {
        let now = self.clock.now();
        let mut state = self.lock();
        self.expire_events(&mut state, now);
        state.delivery.roll_day(now);
        let BusState {
            channels,
            custom,
            clients,
            delivery,
            ..
        } = &mut *state;
        // A client in a connect is never idle, so no idle limit here; a dropped client is gone.
        let client = clients.get_any_mut(client_id).ok_or(UnknownClient)?;
        let mut candidates: Vec<(i64, String, EventMessage, bool)> = Vec::new();
        for (channel, position) in client.subscriptions.iter() {
            let from = *position;
            let sources: Vec<(&ChannelLog, Option<&ChannelMember>)> = match custom.get(channel) {
                Some(custom) => custom
                    .members
                    .iter()
                    .filter_map(|m| channels.get(&m.source_channel()).map(|log| (log, Some(m))))
                    .collect(),
                None => channels
                    .get(channel)
                    .map(|log| (log, None))
                    .into_iter()
                    .collect(),
            };
            for (log, member) in sources {
                for event in log.events.iter().filter(|e| e.replay_id > from) {
                    let admitted = member.is_none_or(|m| m.admits(&event.fields));
                    let message = EventMessage::new(channel, &log.schema, event);
                    candidates.push((event.replay_id, channel.clone(), message, admitted));
                }
            }
        }
        // Across channels, deliver in publishing order (replay ids are global and increasing).
        candidates.sort_by_key(|(replay_id, ..)| *replay_id);
        let mut out = Vec::new();
        let mut blocked: Vec<String> = Vec::new();
        for (replay_id, channel, message, admitted) in candidates {
            if blocked.contains(&channel) {
                continue;
            }
            if admitted {
                if delivery.remaining() == 0 {
                    blocked.push(channel);
                    continue;
                }
                delivery.used += 1;
                out.push(message);
            }
            if let Some(position) = client.subscriptions.get_mut(&channel) {
                *position = replay_id;
            }
        }
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

    fn number_member(number: &'static str) -> ChannelMember {
        ChannelMember {
            developer_name: "M".into(),
            selected_entity: "E__e".into(),
            filter_expression: Some(format!("Business_Number_Id__c = '{number}'")),
            filter: Some(Arc::new(move |payload: &Map<String, Value>| {
                payload.get("Business_Number_Id__c").and_then(Value::as_str) == Some(number)
            })),
        }
    }

    fn numbered(id: &str, number: &str) -> Map<String, Value> {
        let mut m = fields(id);
        m.insert("Business_Number_Id__c".into(), Value::String(number.into()));
        m
    }

    #[test]
    fn a_custom_channel_delivers_only_what_its_member_admits_and_counts_only_that() {
        let bus = EventBus::new(SimClock::new(), Duration::hours(72));
        bus.create_channel("A__chn", "A").unwrap();
        bus.add_member("A__chn", number_member("111")).unwrap();
        let client = bus.open_client();
        bus.subscribe(
            &client,
            "/event/A__chn",
            ReplayFrom::New,
            Duration::seconds(40),
        )
        .unwrap();
        bus.set_delivery_allocation(Some(10), None);

        bus.publish("/event/E__e", numbered("a", "111"));
        bus.publish("/event/E__e", numbered("b", "222"));
        bus.publish("/event/E__e", numbered("c", "111"));
        let delivered = bus.take_pending(&client).unwrap();

        let ids: Vec<_> = delivered
            .iter()
            .map(|m| {
                m.data
                    .payload
                    .0
                    .iter()
                    .find(|(k, _)| k == "Message_Id__c")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        assert_eq!(ids, [Some(Value::from("a")), Some(Value::from("c"))]);
        assert!(delivered.iter().all(|m| m.channel == "/event/A__chn"));
        assert_eq!(bus.delivery_allocation(), (10, 8));
    }

    #[test]
    fn past_the_allocation_nothing_is_delivered_until_it_allows_again() {
        let bus = EventBus::new(SimClock::new(), Duration::hours(72));
        bus.register_channel("/event/E__e");
        let client = bus.open_client();
        bus.subscribe(
            &client,
            "/event/E__e",
            ReplayFrom::New,
            Duration::seconds(40),
        )
        .unwrap();
        bus.set_delivery_allocation(Some(1), None);
        bus.publish("/event/E__e", fields("a"));
        bus.publish("/event/E__e", fields("b"));

        let first = bus.take_pending(&client).unwrap();
        let held = bus.take_pending(&client).unwrap();
        bus.set_delivery_allocation(Some(2), None);
        let later = bus.take_pending(&client).unwrap();

        assert_eq!(first.len(), 1);
        assert!(held.is_empty());
        assert_eq!(later.len(), 1);
        assert_eq!(bus.delivery_allocation(), (2, 0));
    }

    #[test]
    fn subscribing_to_a_channel_nobody_created_is_refused() {
        let bus = EventBus::new(SimClock::new(), Duration::hours(72));
        let client = bus.open_client();

        let result = bus.subscribe(
            &client,
            "/event/Nope__chn",
            ReplayFrom::New,
            Duration::seconds(40),
        );

        assert_eq!(result, Err(SubscribeError::NoSuchChannel));
    }
}
