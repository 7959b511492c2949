//! The "Publish Flow" check: the package's record-triggered Flow that publishes
//! `WhatsApp_Outbound__e` must be active for stream intake. Salesforce deploys flows to production
//! inactive unless "Deploy processes and flows as active" is on *and* the deployment runs Apex tests
//! that launch them — so a package can deploy cleanly and still publish nothing, leaving every
//! message to the reconcile poll. Read from `FlowDefinitionView` (`ActiveVersionId` is null while no
//! version is active); the decision is [`flow_check`], pure.

use serde::Deserialize;

use super::DEPLOY_FIX;
use crate::config::IntakeMode;
use crate::doctor::report::{Check, Outcome};
use crate::salesforce::{SalesforceClient, SalesforceError};

pub(in crate::doctor) const FLOW: &str = "Publish Flow";

/// The Flow's API name in the package.
pub const PUBLISH_FLOW: &str = "WhatsApp_Publish_Outbound";
/// Its label, as Setup → Flows lists it.
pub const PUBLISH_FLOW_LABEL: &str = "WhatsApp: Publish Outbound";
/// The package's Apex test class that launches the Flow (what `--tests` must name for the deploy to
/// activate it).
pub const PUBLISH_FLOW_TEST_CLASS: &str = "WhatsAppPublishOutboundTest";

/// One `FlowDefinitionView` row.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowDefinitionRow {
    #[serde(default)]
    pub active_version_id: Option<String>,
    pub api_name: String,
}

/// How to get the Flow active, both ways.
pub fn activate_fix() -> String {
    format!(
        "activate it, either way: deploy again with \"Deploy processes and flows as active\" on \
         (Setup → Process Automation Settings) and the Apex test that launches it: \
         `sf project deploy start --test-level RunSpecifiedTests --tests {PUBLISH_FLOW_TEST_CLASS}`; \
         or by hand after deploying: Setup → Flows → {PUBLISH_FLOW_LABEL} → Activate"
    )
}

/// The check from what `FlowDefinitionView` answered; pure.
pub fn flow_check(rows: &[FlowDefinitionRow], mode: IntakeMode) -> Check {
    let row = rows.iter().find(|row| row.api_name == PUBLISH_FLOW);
    let stream = mode == IntakeMode::Stream;
    match row {
        None if stream => Check::fail(
            FLOW,
            format!(
                "the {PUBLISH_FLOW} Flow is not deployed: no platform event is published, so \
                 Queued records wait for the reconcile poll"
            ),
            DEPLOY_FIX,
        ),
        None => Check::new(
            FLOW,
            Outcome::Info(format!(
                "{PUBLISH_FLOW} is not deployed; intake.mode = poll does not need it (stream \
                 mode does: {DEPLOY_FIX})"
            )),
        ),
        Some(FlowDefinitionRow {
            active_version_id: Some(version),
            ..
        }) => Check::pass(
            FLOW,
            format!("{PUBLISH_FLOW} is active (version {version})"),
        ),
        Some(_) if stream => Check::fail(
            FLOW,
            format!(
                "{PUBLISH_FLOW} is deployed but inactive: no platform event is published, so \
                 Queued records wait for the reconcile poll (schedule.reconcile)"
            ),
            activate_fix(),
        ),
        Some(_) => Check::new(
            FLOW,
            Outcome::Info(format!(
                "{PUBLISH_FLOW} is inactive; intake.mode = poll does not need it (stream mode \
                 does: {})",
                activate_fix()
            )),
        ),
    }
}

/// Queries `FlowDefinitionView` for the publish Flow.
pub(in crate::doctor) async fn check_flow(client: &SalesforceClient, mode: IntakeMode) -> Check {
    let soql = format!(
        "SELECT ActiveVersionId, ApiName FROM FlowDefinitionView WHERE ApiName = '{PUBLISH_FLOW}'"
    );
    match client.query::<FlowDefinitionRow>(&soql).await {
        Ok(rows) => flow_check(&rows, mode),
        // The object is there in every org, but reading it takes a setup permission: say what is
        // missing rather than fail a setup that may be fine.
        Err(SalesforceError::Api {
            error_code,
            message,
            ..
        }) => Check::skipped(
            FLOW,
            format!(
                "FlowDefinitionView cannot be read ({error_code}: {}); to let sfwa doctor check \
                 that {PUBLISH_FLOW} is active, the integration user needs View Setup and \
                 Configuration",
                first_sentence(&message)
            ),
        ),
        Err(error) => Check::fail(
            FLOW,
            error.to_string(),
            "run sfwa doctor again; if it persists, check the integration user's API access",
        ),
    }
}

/// Salesforce's query errors repeat the query and point at a column before the sentence that
/// matters: keep that sentence.
fn first_sentence(message: &str) -> &str {
    let last = message
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or_default();
    match last.find(". ") {
        Some(end) => &last[..=end],
        None => last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(active: Option<&str>) -> FlowDefinitionRow {
        FlowDefinitionRow {
            active_version_id: active.map(String::from),
            api_name: PUBLISH_FLOW.into(),
        }
    }

    #[test]
    fn an_active_flow_passes_with_its_version() {
        let check = flow_check(&[row(Some("3015g000000abcdAAA"))], IntakeMode::Stream);
        assert_eq!(
            check.outcome,
            Outcome::Pass(format!(
                "{PUBLISH_FLOW} is active (version 3015g000000abcdAAA)"
            ))
        );
    }

    #[test]
    fn an_inactive_flow_fails_in_stream_mode_with_both_ways_to_activate_it() {
        let check = flow_check(&[row(None)], IntakeMode::Stream);
        let Outcome::Fail { problem, fix } = check.outcome else {
            panic!("expected a failure: {check:?}");
        };
        assert!(problem.contains("inactive"), "{problem}");
        assert!(
            fix.contains("Deploy processes and flows as active"),
            "{fix}"
        );
        assert!(
            fix.contains(&format!(
                "--test-level RunSpecifiedTests --tests {PUBLISH_FLOW_TEST_CLASS}"
            )),
            "{fix}"
        );
        assert!(
            fix.contains("Setup → Flows → WhatsApp: Publish Outbound → Activate"),
            "{fix}"
        );
    }

    #[test]
    fn a_missing_flow_fails_in_stream_mode_with_the_deploy_fix() {
        let check = flow_check(&[], IntakeMode::Stream);
        let Outcome::Fail { problem, fix } = check.outcome else {
            panic!("expected a failure: {check:?}");
        };
        assert!(problem.contains("not deployed"), "{problem}");
        assert_eq!(fix, DEPLOY_FIX);
    }

    #[test]
    fn a_query_error_is_shown_by_its_sentence() {
        let message =
            "\nSELECT ActiveVersionId FROM FlowDefinitionView\n      ^\nERROR at Row:1:Column:38\n\
            sObject type 'FlowDefinitionView' is not supported. If you are attempting to use a \
            custom object, be sure to append the '__c' after the entity name.";
        assert_eq!(
            first_sentence(message),
            "sObject type 'FlowDefinitionView' is not supported."
        );
    }

    #[test]
    fn in_poll_mode_an_inactive_or_missing_flow_is_only_worth_knowing() {
        for rows in [vec![row(None)], vec![]] {
            let check = flow_check(&rows, IntakeMode::Poll);
            assert!(matches!(check.outcome, Outcome::Info(_)), "{check:?}");
        }
    }
}
