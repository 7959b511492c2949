//! "Configuration": every problem [`Settings::validate`] finds, one line per key with its fix; or,
//! when the settings did not load at all, why (and every other check skipped).

use crate::config::{ConfigError, IntakeMode, Problem, Settings};
use crate::doctor::report::Check;

pub(in crate::doctor) const CONFIGURATION: &str = "Configuration";

/// A pass naming the intake mode, or a failure per problem.
pub(in crate::doctor) fn check_configuration(
    settings: &Settings,
    problems: &[Problem],
) -> Vec<Check> {
    if problems.is_empty() {
        return vec![Check::pass(
            CONFIGURATION,
            format!("every setting valid; intake mode {}", mode_name(settings)),
        )];
    }
    problems
        .iter()
        .map(|problem| {
            Check::fail(
                CONFIGURATION,
                format!("{} {}", problem.key, problem.problem),
                &problem.fix,
            )
        })
        .collect()
}

/// The settings did not load: the failure, then each of `others` skipped.
pub(in crate::doctor) fn not_loaded(error: &ConfigError, others: &[&str]) -> Vec<Check> {
    let fix = match error {
        ConfigError::Read { .. } => "check the path and that this user may read it",
        ConfigError::Syntax { .. } => "correct the TOML at the line shown",
        ConfigError::Env { .. } => "rename or unset that variable",
        ConfigError::Invalid(_) => "fix the settings named",
    };
    let mut checks = vec![Check::fail(CONFIGURATION, error.to_string(), fix)];
    for name in others {
        checks.push(Check::skipped(*name, "the configuration did not load"));
    }
    checks
}

fn mode_name(settings: &Settings) -> &'static str {
    match settings.intake.mode {
        IntakeMode::Stream => "stream",
        IntakeMode::Poll => "poll",
    }
}
