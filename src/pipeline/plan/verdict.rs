//! What `sfwa plan` says of one record: the [`Verdict`] (what sfwa would do with it now) and the
//! [`Entry`] it is shown in.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::pipeline::dispatch::Refusal;

/// What sfwa would do with a record now, and why. The same outcomes the send path reaches,
/// without reaching them: nothing is sent, claimed or written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Verdict {
    /// Sent now. `window_expires_at`: when the customer's window closes (free-form messages; a
    /// template goes whatever the window).
    Send {
        window_expires_at: Option<DateTime<Utc>>,
    },
    /// Failed without calling WhatsApp, with this Error_Code__c and sentence.
    Refuse { code: String, message: String },
    /// Left Queued until `until` (a schedule, a retry, a rate limit, a paused template); `code`
    /// is the error that made it wait, if one did.
    Wait {
        until: Option<DateTime<Utc>>,
        code: Option<String>,
        reason: String,
    },
    /// The customer's window is closed: the re-engagement template `template` (`language`) goes
    /// first, and the message waits for the reply.
    Reengage {
        template: String,
        language: String,
        reason: String,
    },
    /// Not this run's to send: already being sent, finished with its write-back on the way, or a
    /// business number another instance serves.
    Skip { reason: String },
}

impl Verdict {
    /// The action, as the table's column and `--json`'s `action` say it.
    pub fn action(&self) -> &'static str {
        match self {
            Verdict::Send { .. } => "send",
            Verdict::Refuse { .. } => "refuse",
            Verdict::Wait { .. } => "wait",
            Verdict::Reengage { .. } => "reengage",
            Verdict::Skip { .. } => "skip",
        }
    }

    /// Waits until `until` for `reason`.
    pub fn wait(until: Option<DateTime<Utc>>, code: Option<String>, reason: String) -> Verdict {
        Verdict::Wait {
            until,
            code,
            reason,
        }
    }
}

impl From<Refusal> for Verdict {
    fn from(refused: Refusal) -> Verdict {
        Verdict::Refuse {
            code: refused.code,
            message: refused.message,
        }
    }
}

/// One record of the plan: what it is and what sfwa would do with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub record_id: String,
    /// `Status__c` as Salesforce shows it.
    pub status: Option<String>,
    /// The business number it would go from (the record's, else the default).
    pub number: String,
    /// Where it would go: the customer's current address (phone or BSUID), else what the record
    /// says.
    pub to: Option<String>,
    /// `Text`, `Template hello_world (en_US)`, `Image`…
    pub message: String,
    pub verdict: Verdict,
}
