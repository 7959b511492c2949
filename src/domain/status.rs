//! The `Status__c` picklist as a ranked type: statuses only ever move forward.
//!
//! Rank (DESIGN.md guarantee 3): Queued < Sending < Sent < Failed < Delivered < Read. Failed ranks
//! below Delivered because Meta may report `failed` for a message it then delivers (a retry on its
//! side); a message that reached the customer is the truth a rep needs. Received is the inbound
//! state and never mixes with the outbound ladder.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Failed,
    Delivered,
    Read,
    Received,
}

impl MessageStatus {
    /// Position on the outbound ladder.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Queued => 0,
            MessageStatus::Sending => 1,
            MessageStatus::Sent => 2,
            MessageStatus::Failed => 3,
            MessageStatus::Delivered => 4,
            MessageStatus::Read => 5,
            MessageStatus::Received => 6,
        }
    }

    /// Whether moving from `self` to `next` is progress (equal is not: duplicates are no-ops).
    pub fn advances_to(self, next: MessageStatus) -> bool {
        next.rank() > self.rank()
    }

    /// The picklist value written to Salesforce.
    pub fn as_salesforce(self) -> &'static str {
        match self {
            MessageStatus::Queued => "Queued",
            MessageStatus::Sending => "Sending",
            MessageStatus::Sent => "Sent",
            MessageStatus::Failed => "Failed",
            MessageStatus::Delivered => "Delivered",
            MessageStatus::Read => "Read",
            MessageStatus::Received => "Received",
        }
    }

    pub fn from_salesforce(value: &str) -> Option<MessageStatus> {
        MessageStatus::ALL
            .into_iter()
            .find(|s| s.as_salesforce() == value)
    }

    /// A Meta status webhook value (`sent`, `delivered`, `read`, `failed`).
    pub fn from_meta(value: &str) -> Option<MessageStatus> {
        match value {
            "sent" => Some(MessageStatus::Sent),
            "delivered" => Some(MessageStatus::Delivered),
            "read" => Some(MessageStatus::Read),
            "failed" => Some(MessageStatus::Failed),
            _ => None,
        }
    }

    pub const ALL: [MessageStatus; 7] = [
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Failed,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Received,
    ];
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_salesforce())
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::*;

    #[test]
    fn a_late_delivered_never_overwrites_read_and_failed_after_delivered_is_ignored() {
        assert!(!Read.advances_to(Delivered));
        assert!(!Delivered.advances_to(Failed));
        assert!(Failed.advances_to(Delivered));
        assert!(Sent.advances_to(Read));
        assert!(!Sent.advances_to(Sent));
    }

    #[test]
    fn picklist_values_round_trip() {
        for status in MessageStatus::ALL {
            assert_eq!(
                MessageStatus::from_salesforce(status.as_salesforce()),
                Some(status)
            );
        }
        assert_eq!(MessageStatus::from_meta("read"), Some(Read));
        assert_eq!(MessageStatus::from_meta("deleted"), None);
    }
}
