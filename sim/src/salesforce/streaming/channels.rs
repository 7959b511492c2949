//! Custom platform-event channels with filtered members, and the org's daily event-delivery
//! allocation, as Salesforce documents them:
//!
//! - A custom channel (`PlatformEventChannel`, `channelType` event, a name ending `__chn`) is
//!   subscribed to as `/event/Name__chn`. Each member (`PlatformEventChannelMember`) adds one
//!   custom platform event (`selectedEntity`) and optionally a filter expression (SOQL WHERE
//!   grammar over the event's fields); a subscriber receives only the member events that match
//!   ("Filter Your Stream of Platform Events with Custom Channels",
//!   <https://developer.salesforce.com/docs/platform/platform-events/guide/platform-events-filter-section.html>).
//!   Subscribing to a channel that does not exist is refused with
//!   `400::The channel you requested to subscribe to does not exist {…}` (Streaming API error
//!   codes).
//! - The delivery allocation (`DailyDeliveredPlatformEvents` in `GET limits`) counts each event
//!   once per subscriber it is delivered to, **after** filtering: events a filter keeps out cost
//!   nothing ("Event Delivery Usage for Filtered Streams",
//!   <https://developer.salesforce.com/docs/platform/platform-events/guide/platform-events-filter-allocations.html>).
//!   Past the maximum, events are not delivered (they stay retained and replayable). Salesforce's
//!   window is a rolling 24 h; the simulator starts a new day at midnight UTC of its clock, like
//!   its API usage.
//!
//! The filter itself is compiled by whoever creates the member (the REST and control handlers,
//! which have the schema); the bus only calls it, so streaming does not depend on SOQL.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

/// A compiled filter expression: does this event's payload match?
pub type EventFilter = Arc<dyn Fn(&Map<String, Value>) -> bool + Send + Sync>;

/// Developer Edition's daily delivery allocation (Enterprise 25,000; Unlimited 50,000).
pub const DEFAULT_DAILY_DELIVERIES: u64 = 10_000;

/// One member of a custom channel: an event and its optional filter.
#[derive(Clone)]
pub struct ChannelMember {
    /// The member's developer name, e.g. `Sfwa_Shard_A_chn_WhatsApp_Outbound_e`.
    pub developer_name: String,
    /// The event's API name, e.g. `WhatsApp_Outbound__e`.
    pub selected_entity: String,
    /// The filter expression as written, e.g. `Business_Number_Id__c = '111'`.
    pub filter_expression: Option<String>,
    pub filter: Option<EventFilter>,
}

impl fmt::Debug for ChannelMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelMember")
            .field("developer_name", &self.developer_name)
            .field("selected_entity", &self.selected_entity)
            .field("filter_expression", &self.filter_expression)
            .finish()
    }
}

impl ChannelMember {
    /// The channel the member's events are published on, e.g. `/event/WhatsApp_Outbound__e`.
    pub fn source_channel(&self) -> String {
        format!("/event/{}", self.selected_entity)
    }

    /// Whether the member delivers this event.
    pub fn admits(&self, payload: &Map<String, Value>) -> bool {
        self.filter.as_ref().is_none_or(|filter| filter(payload))
    }
}

/// A custom channel: its label and members.
#[derive(Clone, Debug, Default)]
pub struct CustomChannel {
    pub label: String,
    pub members: Vec<ChannelMember>,
}

/// Why a channel or member was not created; the handlers turn each into Salesforce's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum ChannelError {
    BadName(String),
    Duplicate(String),
    NoSuchChannel(String),
    DuplicateMember { channel: String, entity: String },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::BadName(name) => write!(
                f,
                "The channel name must end with __chn and contain only letters, digits and underscores: {name}"
            ),
            ChannelError::Duplicate(name) => write!(f, "A channel named {name} already exists"),
            ChannelError::NoSuchChannel(name) => {
                write!(f, "The event channel {name} does not exist")
            }
            ChannelError::DuplicateMember { channel, entity } => {
                write!(f, "{entity} is already a member of {channel}")
            }
        }
    }
}

/// The subscription path of a channel full name: `Sfwa_Shard_A__chn` → `/event/Sfwa_Shard_A__chn`.
pub fn subscription_path(full_name: &str) -> String {
    format!("/event/{full_name}")
}

/// Whether a full name is a custom channel's (`…__chn`, letters, digits, underscores).
pub fn is_channel_name(full_name: &str) -> bool {
    full_name.strip_suffix("__chn").is_some_and(|stem| {
        stem.starts_with(|c: char| c.is_ascii_alphabetic())
            && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The custom channels by subscription path (`/event/X__chn`).
pub type Channels = BTreeMap<String, CustomChannel>;

/// The daily event-delivery allocation and today's use.
#[derive(Debug)]
pub struct DeliveryAllocation {
    pub max: u64,
    pub used: u64,
    day: Option<NaiveDate>,
}

impl DeliveryAllocation {
    pub fn new(max: u64) -> DeliveryAllocation {
        DeliveryAllocation {
            max,
            used: 0,
            day: None,
        }
    }

    /// Starts a new day's count once the clock has passed midnight UTC.
    pub fn roll_day(&mut self, now: DateTime<Utc>) {
        let today = now.date_naive();
        if self.day != Some(today) {
            self.day = Some(today);
            self.used = 0;
        }
    }

    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_must_end_with_chn_and_start_with_a_letter() {
        assert!(is_channel_name("Sfwa_Shard_A__chn"));
        assert!(!is_channel_name("Sfwa_Shard_A"));
        assert!(!is_channel_name("__chn"));
        assert!(!is_channel_name("1Shard__chn"));
        assert!(!is_channel_name("Shard-A__chn"));
    }

    #[test]
    fn a_new_day_restores_the_allocation() {
        let mut allocation = DeliveryAllocation::new(5);
        let day_one = DateTime::parse_from_rfc3339("2026-11-26T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        allocation.roll_day(day_one);
        allocation.used = 5;

        allocation.roll_day(day_one + chrono::Duration::hours(2));

        assert_eq!(allocation.remaining(), 5);
    }
}
