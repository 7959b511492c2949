//! "Inbound queue": the queue `salesforce.inbound_queue` names exists.

use super::DEPLOY_FIX;
use crate::doctor::report::{Check, Outcome};
use crate::salesforce::{soql_string, SalesforceClient};

pub(in crate::doctor) const INBOUND_QUEUE: &str = "Inbound queue";

/// The queue `salesforce.inbound_queue` names: where inbound records go when they answer no Case
/// and match no Contact or Lead (see `pipeline::inbound_owner`). Without it they stay the
/// integration user's, which reps cannot see under the package's Private sharing.
pub(in crate::doctor) async fn check_inbound_queue(
    client: &SalesforceClient,
    queue: &str,
) -> Check {
    let queue = queue.trim();
    if queue.is_empty() {
        return Check::new(
            INBOUND_QUEUE,
            Outcome::Info(
                "salesforce.inbound_queue is blank: inbound records matching no Case, Contact or \
                 Lead stay owned by the integration user (reps see them only through a sharing \
                 rule)"
                    .into(),
            ),
        );
    }
    let soql = format!(
        "SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = {}",
        soql_string(queue)
    );
    #[derive(serde::Deserialize)]
    struct Row {
        #[serde(rename = "Id")]
        id: String,
    }
    match client.query::<Row>(&soql).await {
        Ok(rows) => match rows.first() {
            Some(row) => Check::pass(
                INBOUND_QUEUE,
                format!(
                    "{queue} ({}) owns inbound records that answer no Case and match no Contact \
                     or Lead",
                    row.id
                ),
            ),
            None => Check::fail(
                INBOUND_QUEUE,
                format!(
                    "no queue with the API name {queue} (salesforce.inbound_queue): inbound \
                     records matching no Case, Contact or Lead would stay the integration \
                     user's, invisible to reps"
                ),
                format!(
                    "{DEPLOY_FIX} (it ships the queue WhatsApp_Inbound), or create a queue \
                     (Setup → Queues, supported object WhatsApp Message) and set \
                     salesforce.inbound_queue to its API name"
                ),
            ),
        },
        Err(error) => Check::fail(
            INBOUND_QUEUE,
            error.to_string(),
            "run sfwa doctor again; if it persists, check the integration user's API access",
        ),
    }
}
