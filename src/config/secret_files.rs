//! `*_file` keys: a secret read from a file instead of the config file or the environment — for
//! Kubernetes Secrets and systemd credentials, which mount each secret as a file.

use std::path::PathBuf;

use super::{ConfigError, Secret, Settings};

/// `path`'s contents (trailing newline trimmed) replace `target`, when a path is set.
fn read(path: &Option<PathBuf>, target: &mut Secret) -> Result<(), ConfigError> {
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        *target = Secret::new(text.trim_end_matches(['\n', '\r']));
    }
    Ok(())
}

impl Settings {
    /// `*_file` keys replace their secret with the file's contents (trailing newline trimmed).
    pub fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let (sf, wa) = (&mut self.salesforce, &mut self.whatsapp);
        read(&sf.client_secret_file, &mut sf.client_secret)?;
        read(&sf.refresh_token_file, &mut sf.refresh_token)?;
        read(&wa.access_token_file, &mut wa.access_token)?;
        read(&wa.app_secret_file, &mut wa.app_secret)?;
        read(&wa.verify_token_file, &mut wa.verify_token)?;
        Ok(())
    }
}
