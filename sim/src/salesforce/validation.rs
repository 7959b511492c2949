//! The package's validation rules on `WhatsApp_Message__c`, modelled in Rust: one function per rule
//! file in `objects/WhatsApp_Message__c/validationRules/`, same name, same error message, same
//! error field. A test reads the package folder and fails if a rule and its model drift apart.
//!
//! Salesforce runs them on every insert, update and upsert (single rows and collections alike),
//! after the field checks, against the record as it would be saved (`ISNEW()`, `ISCHANGED`,
//! `PRIORVALUE` see the stored record). Every rule but one starts
//! `AND(NOT($Permission.WhatsApp_Integration_Writes), …)`: the integration user holds that custom
//! permission (through the `WhatsApp_Integration` permission set), so sfwa's write-backs and inbound
//! creates never meet them; a person without it does. The one the other way round,
//! `Canceled_Is_Final` (`AND($Permission.WhatsApp_Integration_Writes, …)`), binds sfwa alone: it
//! may never change Status away from Canceled. When several rules fail, Salesforce reports
//! each; the sim reports the first in [`RULES`] order (the daemon reads one error per record).

use serde_json::Value;

use super::org::{DmlError, Record};

/// The object the rules belong to.
pub const OBJECT: &str = "WhatsApp_Message__c";

/// A save being validated.
pub struct Save<'a> {
    /// The stored record; `None` on insert (`ISNEW()`).
    pub before: Option<&'a Record>,
    /// The record as it would be saved.
    pub after: &'a Record,
}

impl Save<'_> {
    fn is_new(&self) -> bool {
        self.before.is_none()
    }

    fn now(&self, field: &str) -> Option<&str> {
        self.after.get(field).and_then(Value::as_str)
    }

    fn prior(&self, field: &str) -> Option<&str> {
        self.before
            .and_then(|b| b.get(field))
            .and_then(Value::as_str)
    }

    /// `ISPICKVAL(field, value)` on the new values.
    fn is(&self, field: &str, value: &str) -> bool {
        self.now(field) == Some(value)
    }

    /// `ISCHANGED(field)`: only on update.
    fn changed(&self, field: &str) -> bool {
        !self.is_new() && self.now(field) != self.prior(field)
    }

    /// `ISPICKVAL(PRIORVALUE(field), value)`.
    fn was(&self, field: &str, value: &str) -> bool {
        self.prior(field) == Some(value)
    }
}

/// Whom a rule binds: its formula's first term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binds {
    /// `NOT($Permission.WhatsApp_Integration_Writes)`: people, not sfwa.
    People,
    /// `$Permission.WhatsApp_Integration_Writes`: sfwa's integration user alone.
    Integration,
}

/// One validation rule: the file's `fullName`, `errorMessage` and `errorDisplayField`, whom it
/// binds, and the condition after that first term.
pub struct Rule {
    pub name: &'static str,
    pub binds: Binds,
    pub error_message: &'static str,
    pub error_display_field: &'static str,
    pub fires: fn(&Save) -> bool,
}

fn outbound_must_start_queued(save: &Save) -> bool {
    save.is_new() && save.is("Direction__c", "Outbound") && !save.is("Status__c", "Queued")
}

fn inbound_created_only_by_sfwa(save: &Save) -> bool {
    save.is_new() && save.is("Direction__c", "Inbound")
}

fn status_set_only_by_sfwa(save: &Save) -> bool {
    save.changed("Status__c")
        && !save.is("Status__c", "Queued")
        && !save.is("Status__c", "Canceled")
}

fn requeue_only_failed_or_canceled(save: &Save) -> bool {
    save.changed("Status__c")
        && save.is("Status__c", "Queued")
        && !save.was("Status__c", "Failed")
        && !save.was("Status__c", "Canceled")
}

fn cancel_only_before_sending(save: &Save) -> bool {
    save.changed("Status__c")
        && save.is("Status__c", "Canceled")
        && !save.was("Status__c", "Queued")
        && !save.was("Status__c", "Waiting for Reply")
}

fn sent_needs_whatsapp_id(save: &Save) -> bool {
    ["Sent", "Delivered", "Read"]
        .iter()
        .any(|status| save.is("Status__c", status))
        && save.now("WhatsApp_Message_Id__c").is_none_or(str::is_empty)
}

fn direction_fixed(save: &Save) -> bool {
    save.changed("Direction__c")
}

fn canceled_is_final(save: &Save) -> bool {
    save.changed("Status__c") && save.was("Status__c", "Canceled")
}

/// Every rule of the package, in the order the sim reports them.
pub const RULES: &[Rule] = &[
    Rule {
        name: "Outbound_Must_Start_Queued",
        binds: Binds::People,
        error_message: "Create outbound WhatsApp messages with Status Queued: sfwa sets Sending, Sent, Delivered, Read and Failed itself.",
        error_display_field: "Status__c",
        fires: outbound_must_start_queued,
    },
    Rule {
        name: "Inbound_Created_Only_By_Sfwa",
        binds: Binds::People,
        error_message: "Inbound WhatsApp messages are created by sfwa when a customer writes; to write to a customer, create an Outbound message.",
        error_display_field: "Direction__c",
        fires: inbound_created_only_by_sfwa,
    },
    Rule {
        name: "Status_Set_Only_By_Sfwa",
        binds: Binds::People,
        error_message: "You can set Status only to Queued (to send a failed or canceled message again) or Canceled (to stop a message not yet sent): sfwa sets the other statuses itself.",
        error_display_field: "Status__c",
        fires: status_set_only_by_sfwa,
    },
    Rule {
        name: "Requeue_Only_Failed_Or_Canceled",
        binds: Binds::People,
        error_message: "Only a Failed or Canceled message can be set back to Queued: to send this one again, create a new message.",
        error_display_field: "Status__c",
        fires: requeue_only_failed_or_canceled,
    },
    Rule {
        name: "Cancel_Only_Before_Sending",
        binds: Binds::People,
        error_message: "Only a Queued or Waiting for Reply message can be canceled: this one is already with WhatsApp.",
        error_display_field: "Status__c",
        fires: cancel_only_before_sending,
    },
    Rule {
        name: "Sent_Needs_WhatsApp_Id",
        binds: Binds::People,
        error_message: "A Sent, Delivered or Read message must have the WhatsApp Message ID that WhatsApp gave it: leave these statuses to sfwa.",
        error_display_field: "WhatsApp_Message_Id__c",
        fires: sent_needs_whatsapp_id,
    },
    Rule {
        name: "Direction_Fixed",
        binds: Binds::People,
        error_message: "The direction of a WhatsApp message cannot change: create a new message instead.",
        error_display_field: "Direction__c",
        fires: direction_fixed,
    },
    Rule {
        name: "Canceled_Is_Final",
        binds: Binds::Integration,
        error_message: "CANCELED_IS_FINAL: this message was canceled in Salesforce; sfwa leaves it canceled.",
        error_display_field: "Status__c",
        fires: canceled_is_final,
    },
];

/// A validation rule of the org's own, not the package's (customers' orgs have plenty): refuses,
/// for every user, any save that sets or changes `field` on `object`. Added by a test
/// ([`super::org::Org::add_org_rule`]) or `POST /__sim/validation-rules`, to show that sfwa's
/// writes to records it does not own (a Contact's WhatsApp user id) can be refused.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct OrgRule {
    pub object: String,
    pub field: String,
    pub error_message: String,
}

impl OrgRule {
    pub fn check(&self, object: &str, save: &Save) -> Result<(), DmlError> {
        let changed = match save.before {
            None => save.after.get(&self.field).is_some_and(|v| !v.is_null()),
            Some(before) => before.get(&self.field) != save.after.get(&self.field),
        };
        if object.eq_ignore_ascii_case(&self.object) && changed {
            return Err(DmlError {
                status_code: "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                message: self.error_message.clone(),
                fields: vec![self.field.clone()],
            });
        }
        Ok(())
    }
}

/// Runs the rules of `object` for a user with or without `WhatsApp_Integration_Writes`.
pub fn check(object: &str, save: &Save, has_integration_writes: bool) -> Result<(), DmlError> {
    if object != OBJECT {
        return Ok(());
    }
    let binds = if has_integration_writes {
        Binds::Integration
    } else {
        Binds::People
    };
    match RULES
        .iter()
        .find(|rule| rule.binds == binds && (rule.fires)(save))
    {
        Some(rule) => Err(DmlError {
            status_code: "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            message: rule.error_message.to_string(),
            fields: vec![rule.error_display_field.to_string()],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value) -> Record {
        value.as_object().unwrap().clone()
    }

    fn fired(before: Option<Value>, after: Value) -> Option<&'static str> {
        let before = before.map(record);
        let after = record(after);
        let save = Save {
            before: before.as_ref(),
            after: &after,
        };
        RULES
            .iter()
            .find(|r| r.binds == Binds::People && (r.fires)(&save))
            .map(|r| r.name)
    }

    #[test]
    fn each_rule_fires_on_what_it_forbids_and_nothing_else() {
        let out = |status: &str| json!({"Direction__c": "Outbound", "Status__c": status});
        assert_eq!(fired(None, out("Queued")), None);
        assert_eq!(fired(None, out("Read")), Some("Outbound_Must_Start_Queued"));
        assert_eq!(
            fired(
                None,
                json!({"Direction__c": "Inbound", "Status__c": "Received"})
            ),
            Some("Inbound_Created_Only_By_Sfwa")
        );
        assert_eq!(
            fired(Some(out("Queued")), out("Sent")),
            Some("Status_Set_Only_By_Sfwa")
        );
        assert_eq!(fired(Some(out("Failed")), out("Queued")), None);
        assert_eq!(fired(Some(out("Canceled")), out("Queued")), None);
        assert_eq!(
            fired(Some(out("Delivered")), out("Queued")),
            Some("Requeue_Only_Failed_Or_Canceled")
        );
        assert_eq!(fired(Some(out("Queued")), out("Canceled")), None);
        assert_eq!(
            fired(Some(out("Sending")), out("Canceled")),
            Some("Cancel_Only_Before_Sending")
        );
        assert_eq!(
            fired(
                Some(out("Sent")),
                json!({"Direction__c": "Outbound", "Status__c": "Sent", "Body__c": "x"})
            ),
            Some("Sent_Needs_WhatsApp_Id")
        );
        assert_eq!(
            fired(
                Some(out("Queued")),
                json!({"Direction__c": "Inbound", "Status__c": "Queued"})
            ),
            Some("Direction_Fixed")
        );
    }

    #[test]
    fn canceled_is_final_binds_the_integration_user_and_lets_a_rep_requeue() {
        let out = |status: &str| record(json!({"Direction__c": "Outbound", "Status__c": status}));
        let (canceled, failed, queued) = (out("Canceled"), out("Failed"), out("Queued"));
        let overwrite = Save {
            before: Some(&canceled),
            after: &failed,
        };
        let requeue = Save {
            before: Some(&canceled),
            after: &queued,
        };

        let by_sfwa = check(OBJECT, &overwrite, true).unwrap_err();

        assert!(by_sfwa.message.starts_with("CANCELED_IS_FINAL"));
        assert!(check(OBJECT, &requeue, false).is_ok());
        assert!(check(OBJECT, &requeue, true).is_err());
    }

    #[test]
    fn the_integration_permission_exempts_every_rule_for_people() {
        let after = record(json!({"Direction__c": "Outbound", "Status__c": "Read"}));
        let save = Save {
            before: None,
            after: &after,
        };

        let as_rep = check(OBJECT, &save, false).unwrap_err();

        assert!(check(OBJECT, &save, true).is_ok());
        assert_eq!(as_rep.status_code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
        assert_eq!(as_rep.fields, ["Status__c"]);
    }
}
