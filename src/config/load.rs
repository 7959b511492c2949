//! Reading the settings: the TOML file, then `SFWA_SECTION__KEY` environment variables over it,
//! layered with `figment` (a crate made for exactly this: merged providers, typed extraction,
//! errors that name the key and the layer it came from), then the `*_file` secrets and validation.
//!
//! The environment layer is ours, not `figment::providers::Env`: that provider parses every
//! value, so a `default_phone_number_id` of digits would arrive as a number and be refused; here
//! a key whose default is text stays text, and only numbers, booleans and lists are parsed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{ConfigError, Problem, Settings};

const ENV_PREFIX: &str = "SFWA_";

/// `SFWA_*` variables that set command-line options (see `src/main.rs`), not settings: the layering
/// below leaves them to clap instead of refusing them as unknown keys.
pub const CLI_ENV_VARS: &[&str] = &["SFWA_LOG_FORMAT"];

impl Settings {
    /// Reads `path` (a missing file is fine when the environment provides everything), layers the
    /// `SFWA_*` environment over it, reads `*_file` secrets and validates.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let (settings, problems) = Settings::load_with_problems(path)?;
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// [`Settings::load`] without refusing invalid settings: the settings as read, with every
    /// problem [`Settings::validate`] finds (a missing file is named first when there are any).
    /// `sfwa doctor` uses it to go on checking what the problems do not touch.
    pub fn load_with_problems(path: &Path) -> Result<(Settings, Vec<Problem>), ConfigError> {
        let (text, missing_file) = match std::fs::read_to_string(path) {
            Ok(text) => (text, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let mut settings = Settings::from_layers(&text, &env).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        settings.read_secret_files()?;
        let mut problems = settings.validate().err().unwrap_or_default();
        if missing_file && !problems.is_empty() {
            problems.insert(
                0,
                Problem {
                    key: "--config".into(),
                    problem: format!("{} does not exist", path.display()),
                    fix: "copy sfwa.example.toml there and fill it in, or set SFWA_<SECTION>__<KEY> variables".into(),
                },
            );
        }
        Ok((settings, problems))
    }

    /// TOML text with environment overrides (no files read, no validation): the testable core.
    pub fn from_layers(
        toml_text: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let file = Figment::from(FileLayer(toml_text));
        // The file alone first: its syntax errors come before any complaint about a variable.
        let file_table: Dict = file.extract().map_err(syntax)?;
        let env = EnvLayer::from_vars(env, &file_table)?;
        file.merge(env).extract().map_err(syntax)
    }
}

/// Every `figment` error is the file's or a variable's content not fitting the settings.
fn syntax(error: figment::Error) -> ConfigError {
    ConfigError::Syntax {
        path: PathBuf::new(),
        message: error.to_string(),
    }
}

/// Keys in errors as they are written in the file (`whatsapp.access_token`), without a profile.
fn named(name: &'static str) -> Metadata {
    Metadata::named(name).interpolater(|_: &Profile, keys: &[&str]| keys.join("."))
}

/// The config file's text as a `figment` layer.
struct FileLayer<'t>(&'t str);

impl Provider for FileLayer<'_> {
    fn metadata(&self) -> Metadata {
        named("the config file")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(self.0).data()
    }
}

/// The `SFWA_SECTION__KEY` variables as a `figment` layer over the file.
struct EnvLayer(Dict);

impl EnvLayer {
    /// Checks each name and types each value: environment values are text, and the defaults say
    /// which keys want numbers, booleans or lists.
    fn from_vars(env: &BTreeMap<String, String>, file: &Dict) -> Result<EnvLayer, ConfigError> {
        let defaults = Value::serialize(Settings::default()).ok();
        let mut sections = Dict::new();
        for (name, value) in env {
            if CLI_ENV_VARS.contains(&name.as_str()) {
                continue;
            }
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let refused = |message: &str| ConfigError::Env {
                name: name.clone(),
                message: message.into(),
            };
            let Some((section, key)) = rest.split_once("__") else {
                return Err(refused(
                    "missing the double underscore between section and key",
                ));
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            if file.get(&section).is_some_and(|s| s.as_dict().is_none()) {
                return Err(refused("that section is not a table"));
            }
            let typed = defaults
                .as_ref()
                .and_then(|d| d.find_ref(&format!("{section}.{key}")))
                .is_some_and(|v| !matches!(v, Value::String(..) | Value::Empty(..)));
            let value = if typed {
                value.parse().unwrap_or_else(|never| match never {})
            } else {
                Value::from(value.clone())
            };
            if let Value::Dict(_, keys) = sections
                .entry(section)
                .or_insert_with(|| Value::from(Dict::new()))
            {
                keys.insert(key, value);
            }
        }
        Ok(EnvLayer(sections))
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        named("the SFWA_* environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}
