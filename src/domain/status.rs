//! The `Status__c` picklist as a ranked type: statuses only ever move forward.
//!
//! Rank (DESIGN.md guarantee 3): Queued < Waiting for Reply < Sending < Sent < Failed < Delivered
//! < Read. Waiting for Reply is a Queued free-form message held (by sfwa) until the customer answers
//! the re-engagement template sent for it (`pipeline::reengage`). Failed ranks
//! below Delivered because Meta may report `failed` for a message it then delivers (a retry on its
//! side); a message that reached the customer is the truth a rep needs. Canceled is set by a person
//! on a Queued (or scheduled) or Waiting for Reply message and is final: sfwa never sends it,
//! nothing moves it on (a person may set it back to Queued; the package's validation rules allow
//! that, and intake treats it as new work). The package's `Canceled_Is_Final` rule refuses sfwa's
//! own writes that would change Status away from Canceled; sfwa recognises that refusal
//! ([`is_canceled_is_final`]) and lets the write go. Received is the inbound state and never
//! mixes with the outbound ladder.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Queued,
    WaitingForReply,
    Sending,
    Sent,
    Failed,
    Delivered,
    Read,
    Canceled,
    Received,
}

impl MessageStatus {
    /// Position on the outbound ladder.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Queued => 0,
            MessageStatus::WaitingForReply => 1,
            MessageStatus::Sending => 2,
            MessageStatus::Sent => 3,
            MessageStatus::Failed => 4,
            MessageStatus::Delivered => 5,
            MessageStatus::Read => 6,
            MessageStatus::Canceled => 7,
            MessageStatus::Received => 8,
        }
    }

    /// Whether moving from `self` to `next` is progress (equal is not: duplicates are no-ops).
    pub fn advances_to(self, next: MessageStatus) -> bool {
        match (self, next) {
            // Only a message not yet on its way can be canceled, and a canceled one stays so.
            (_, MessageStatus::Canceled) => {
                matches!(self, MessageStatus::Queued | MessageStatus::WaitingForReply)
            }
            (MessageStatus::Canceled, _) => false,
            _ => next.rank() > self.rank(),
        }
    }

    /// Final and never sent: a record showing it is not sfwa's to send.
    pub fn is_canceled(self) -> bool {
        self == MessageStatus::Canceled
    }

    /// The picklist value written to Salesforce.
    pub fn as_salesforce(self) -> &'static str {
        match self {
            MessageStatus::Queued => "Queued",
            MessageStatus::WaitingForReply => "Waiting for Reply",
            MessageStatus::Sending => "Sending",
            MessageStatus::Sent => "Sent",
            MessageStatus::Failed => "Failed",
            MessageStatus::Delivered => "Delivered",
            MessageStatus::Read => "Read",
            MessageStatus::Canceled => "Canceled",
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

    pub const ALL: [MessageStatus; 9] = [
        MessageStatus::Queued,
        MessageStatus::WaitingForReply,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Failed,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Canceled,
        MessageStatus::Received,
    ];
}

/// The start of the package's `Canceled_Is_Final` validation message: Salesforce refused a write
/// of sfwa's because a person canceled the record. Not a dead letter: the rep's Canceled wins.
pub const CANCELED_IS_FINAL: &str = "CANCELED_IS_FINAL";

/// Whether a per-record refusal (`FIELD_CUSTOM_VALIDATION_EXCEPTION` and its message) is the
/// package's `Canceled_Is_Final` rule.
pub fn is_canceled_is_final(status_code: &str, message: &str) -> bool {
    status_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" && message.starts_with(CANCELED_IS_FINAL)
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
    fn only_a_queued_message_can_be_canceled_and_a_canceled_one_never_moves_on() {
        assert!(Queued.advances_to(Canceled));
        assert!(WaitingForReply.advances_to(Canceled));
        assert!(WaitingForReply.advances_to(Sending));
        assert!(!Sending.advances_to(WaitingForReply));
        assert!(!Sending.advances_to(Canceled));
        assert!(!Read.advances_to(Canceled));
        assert!(!Canceled.advances_to(Sent));
        assert!(!Canceled.advances_to(Read));
        assert_eq!(MessageStatus::from_salesforce("Canceled"), Some(Canceled));
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
