//! Settings: a TOML file (`--config`, default `sfwa.toml`) layered with `SFWA_SECTION__KEY`
//! environment variables (e.g. `SFWA_WHATSAPP__ACCESS_TOKEN`), secrets optionally read from files
//! (`*_file` keys, for Kubernetes Secrets and systemd credentials), then [`Settings::validate`],
//! which names every bad key and says how to fix it. Secrets are [`Secret`]s: never printed.
//!
//! - [`types`] — the sections, their keys and defaults.
//! - [`load`] — file + environment, layered with `figment` ([`Settings::load`]).
//! - [`secret_files`] — the `*_file` keys.
//! - [`validate`] — every problem at once, each with its key and fix.
//! - [`secret`] — [`Secret`], over `secrecy`.

use std::fmt;
use std::path::PathBuf;

pub mod load;
pub mod secret;
pub mod secret_files;
pub mod types;
pub mod validate;

pub use load::CLI_ENV_VARS;
pub use secret::Secret;
pub use types::{
    parse_schedule, AuthMode, DispatchSettings, ForwardRule, InitialReplay, IntakeMode,
    IntakeSettings, MediaSettings, ObserveSettings, ReengageDefault, ReengageSettings,
    RetentionSettings, SalesforceSettings, ScheduleSettings, Settings, ShardSettings,
    StoreSettings, WebhookSettings, WhatsAppSettings, WindowSettings, WritebackSettings,
};

/// One bad setting: which key, what is wrong, what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} — {}", self.key, self.problem, self.fix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {name} does not name a setting ({message}); use SFWA_<SECTION>__<KEY>, e.g. SFWA_WHATSAPP__ACCESS_TOKEN")]
    Env { name: String, message: String },
    #[error("the settings are incomplete or wrong:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

#[cfg(test)]
mod tests;
