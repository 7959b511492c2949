//! "Graph API version": the configured version against [`crate::whatsapp::versions`] on the
//! injected date, and against the version Meta says answered.

use chrono::NaiveDate;

use crate::doctor::report::{Check, Outcome};
use crate::whatsapp::versions::{self, VersionState};

pub(in crate::doctor) const VERSION: &str = "Graph API version";

/// The version check; pure. `answered_by` is the `facebook-api-version` Meta sent with a number's
/// details (the version that actually answered).
pub fn version_check(version: &str, today: NaiveDate, answered_by: Option<&str>) -> Check {
    let fix = versions::upgrade_fix();
    let replaced = answered_by
        .filter(|answered| {
            versions::find(answered).map(|r| r.version)
                != versions::find(version).map(|r| r.version)
        })
        .filter(|answered| *answered != version);
    let meta_says = replaced
        .map(|answered| format!("; Meta answered it as {answered}"))
        .unwrap_or_default();
    match versions::assess(version, today) {
        VersionState::Ended { ended } => Check::fail(
            VERSION,
            format!(
                "{version} ended on {ended}{meta_says}: Meta answers calls to a retired version as \
                 the oldest one still available, whose behaviour may differ"
            ),
            fix,
        ),
        _ if replaced.is_some() => Check::fail(
            VERSION,
            format!(
                "Meta answered {version} as {}: it no longer serves {version}",
                replaced.unwrap_or_default()
            ),
            fix,
        ),
        VersionState::EndingSoon { ends, days_left } => Check::new(
            VERSION,
            Outcome::Info(format!(
                "{version} ends on {ends}, in {days_left} days; {fix}"
            )),
        ),
        VersionState::Current { ends: Some(ends) } => {
            Check::pass(VERSION, format!("{version}, available until {ends}"))
        }
        VersionState::Current { ends: None } => Check::pass(
            VERSION,
            format!("{version}; Meta has not announced its end yet"),
        ),
        VersionState::Unknown => Check::new(
            VERSION,
            Outcome::Info(format!(
                "{version} is not among the Graph versions this sfwa knows (the newest it knows is \
                 {}); fine if Meta released it since, else {fix}",
                versions::newest_known()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_version_past_its_end_fails_and_one_near_it_is_pointed_out_with_the_fix() {
        let ended = version_check("v20.0", date(2026, 12, 1), Some("v21.0"));
        let Outcome::Fail { problem, fix } = &ended.outcome else {
            panic!("{ended:?}");
        };
        assert!(
            problem.contains("ended on 2026-09-24; Meta answered it as v21.0"),
            "{problem}"
        );
        assert!(fix.contains("whatsapp.api_version = \"v26.0\""), "{fix}");
        let soon = version_check("v21.0", date(2026, 12, 1), Some("v21.0"));
        assert!(
            matches!(&soon.outcome, Outcome::Info(text) if text.contains("ends on 2027-01-21, in 51 days")),
            "{soon:?}"
        );
        let fine = version_check("v25.0", date(2026, 12, 1), Some("v25.0"));
        assert_eq!(
            fine.outcome,
            Outcome::Pass("v25.0, available until 2028-07-29".into())
        );
    }

    #[test]
    fn meta_answering_as_another_version_fails_even_when_the_table_thinks_it_current() {
        let check = version_check("v23.0", date(2026, 12, 1), Some("v24.0"));
        assert!(
            matches!(&check.outcome, Outcome::Fail { problem, .. } if problem.contains("Meta answered v23.0 as v24.0")),
            "{check:?}"
        );
    }
}
