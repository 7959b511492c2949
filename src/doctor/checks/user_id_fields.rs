//! "Contact/Lead user id fields": `WhatsApp_User_Id__c` on Contact and Lead, where sfwa stores a
//! customer's business-scoped WhatsApp user id (BSUID) so messages without a phone still link
//! (see `pipeline::inbound_links`). Without it, linking falls back to phone numbers alone and
//! customers with a WhatsApp username are recorded unlinked.
//!
//! What the REST API cannot show is the Lead conversion mapping (Lead's field → Contact's field,
//! Metadata API `LeadConvertSettings`): the passing line says the one setup step.

use super::{ACCESS_FIX, DEPLOY_FIX};
use crate::doctor::report::Check;
use crate::pipeline::inbound_links::{Person, USER_ID_FIELD};
use crate::salesforce::SalesforceClient;

pub(in crate::doctor) const USER_ID_FIELDS: &str = "Contact/Lead user id fields";

/// The one step an admin takes so a converted Lead's Contact keeps the BSUID.
pub const LEAD_MAPPING_STEP: &str = "Setup → Object Manager → Lead → Fields & Relationships → \
     Map Lead Fields: map WhatsApp User Id to Contact's WhatsApp User Id";

/// Describes Contact and Lead and checks the BSUID field on each.
pub(in crate::doctor) async fn check_user_id_fields(client: &SalesforceClient) -> Check {
    let mut deploy = Vec::new();
    let mut access = Vec::new();
    for person in Person::BOTH {
        let object = person.object();
        match client.describe(object).await {
            Ok(describe) => match describe.field(USER_ID_FIELD) {
                None => deploy.push(format!("{object}.{USER_ID_FIELD} is missing")),
                Some(field) if !field.external_id => deploy.push(format!(
                    "{object}.{USER_ID_FIELD} is not an External ID (the lookup by it would scan \
                     every {object})"
                )),
                Some(field) if !field.updateable => access.push(format!(
                    "{object}.{USER_ID_FIELD} is read-only for the integration user (sfwa \
                     stores the user id there, and needs Edit on {object})"
                )),
                Some(_) => {}
            },
            Err(error) => {
                return Check::fail(
                    USER_ID_FIELDS,
                    format!("describing {object}: {error}"),
                    "check the integration user's access to Contact and Lead",
                )
            }
        }
    }
    if deploy.is_empty() && access.is_empty() {
        return Check::pass(
            USER_ID_FIELDS,
            format!(
                "Contact and Lead have {USER_ID_FIELD}: messages from customers who hide their \
                 number behind a WhatsApp username link by it. Keep it on Lead conversion (sfwa \
                 cannot check this): {LEAD_MAPPING_STEP}"
            ),
        );
    }
    let fix = match (deploy.is_empty(), access.is_empty()) {
        (false, true) => DEPLOY_FIX.to_string(),
        (true, false) => ACCESS_FIX.to_string(),
        _ => format!("{DEPLOY_FIX}; then {ACCESS_FIX}"),
    };
    let problem = format!(
        "{}; until then messages link by phone only, and customers with a WhatsApp username are \
         recorded unlinked",
        [deploy, access].concat().join("; ")
    );
    Check::fail(USER_ID_FIELDS, problem, fix)
}
