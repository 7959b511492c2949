//! The report: one [`Check`] per line, its [`Outcome`], and the closing verdict.

use std::fmt;

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Works; what was found.
    Pass(String),
    /// Broken: what is wrong and what to do about it.
    Fail { problem: String, fix: String },
    /// Not checked, because of an earlier failure or a setting that makes it moot.
    Skipped(String),
    /// Worth knowing; neither pass nor fail.
    Info(String),
}

impl Check {
    pub(super) fn new(name: impl Into<String>, outcome: Outcome) -> Check {
        Check {
            name: name.into(),
            outcome,
        }
    }

    pub(super) fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Outcome::Pass(detail.into()))
    }

    pub(super) fn fail(
        name: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(
            name,
            Outcome::Fail {
                problem: problem.into(),
                fix: fix.into(),
            },
        )
    }

    pub(super) fn skipped(name: impl Into<String>, reason: impl Into<String>) -> Check {
        Check::new(name, Outcome::Skipped(reason.into()))
    }

    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }

    /// The report line; `unicode` picks ✔ ✘ – • over ASCII words (for pipes and old terminals).
    pub fn line(&self, unicode: bool) -> String {
        let mark = |fancy: &'static str, plain: &'static str| if unicode { fancy } else { plain };
        match &self.outcome {
            Outcome::Pass(detail) => format!("{} {} ({detail})", mark("✔", "[ok]  "), self.name),
            Outcome::Fail { problem, fix } => format!(
                "{} {}: {problem} {} fix: {fix}",
                mark("✘", "[FAIL]"),
                self.name,
                mark("—", "--")
            ),
            Outcome::Skipped(reason) => {
                format!("{} {}: skipped, {reason}", mark("–", "[skip]"), self.name)
            }
            Outcome::Info(text) => format!("{} {}: {text}", mark("•", "[info]"), self.name),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line(true))
    }
}

/// The whole report, one line per check and a closing verdict.
pub fn render(checks: &[Check], unicode: bool) -> String {
    let mut out: String = checks.iter().map(|c| c.line(unicode) + "\n").collect();
    let failed = checks.iter().filter(|c| c.failed()).count();
    out.push_str(&match failed {
        0 => "All checks passed.\n".to_string(),
        1 => "1 check failed.\n".to_string(),
        n => format!("{n} checks failed.\n"),
    });
    out
}

/// Whether nothing failed (the exit status of `sfwa doctor`).
pub fn all_passed(checks: &[Check]) -> bool {
    !checks.iter().any(Check::failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_prints_its_problem_and_fix_on_one_line() {
        let check = Check::fail(
            "Message object fields",
            "missing Error_Message__c",
            "deploy",
        );
        assert_eq!(
            check.line(true),
            "✘ Message object fields: missing Error_Message__c — fix: deploy"
        );
        assert_eq!(
            check.line(false),
            "[FAIL] Message object fields: missing Error_Message__c -- fix: deploy"
        );
    }
}
