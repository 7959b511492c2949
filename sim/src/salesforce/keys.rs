//! The key pair the simulated External Client App trusts for the JWT bearer flow.
//!
//! A real External Client App holds the certificate an admin uploaded; the simulator makes a fresh
//! RSA key (or reuses the one in `--state-dir`) and writes the private half where a client can read it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// File name of the private key inside the state directory.
pub const PRIVATE_KEY_FILE: &str = "salesforce-jwt-private-key.pem";

/// The trusted key pair: the simulator verifies with the public half, clients sign with the private one.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    /// PKCS#8 PEM of the private key (what `openssl genpkey` writes; jsonwebtoken reads it).
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM of the public key.
    pub public_pem: String,
    /// Where the private key is on disk, when it was written to one.
    pub private_key_path: Option<PathBuf>,
}

impl TrustedKey {
    /// A key for tests: generated once per process (2048-bit generation takes a noticeable moment).
    pub fn for_tests() -> TrustedKey {
        static KEY: OnceLock<TrustedKey> = OnceLock::new();
        KEY.get_or_init(|| {
            TrustedKey::generate().expect("RSA key generation cannot fail with OS randomness")
        })
        .clone()
    }

    pub fn generate() -> anyhow::Result<TrustedKey> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        Self::from_private(&private, None)
    }

    /// Loads `dir/salesforce-jwt-private-key.pem`, creating it (and `dir`) on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<TrustedKey> {
        let path = dir.join(PRIVATE_KEY_FILE);
        if path.exists() {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let private = RsaPrivateKey::from_pkcs8_pem(&pem).with_context(|| {
                format!(
                    "{} is not a PKCS#8 RSA private key; delete it to get a new one",
                    path.display()
                )
            })?;
            return Self::from_private(&private, Some(path));
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let key = Self::generate()?;
        write_private(&path, &key.private_pem)?;
        Ok(TrustedKey {
            private_key_path: Some(path),
            ..key
        })
    }

    /// Writes the private key to `path` (for a caller that needs a file, e.g. a temporary state dir).
    pub fn write_to(&mut self, path: &Path) -> anyhow::Result<()> {
        write_private(path, &self.private_pem)?;
        self.private_key_path = Some(path.to_path_buf());
        Ok(())
    }

    fn from_private(private: &RsaPrivateKey, path: Option<PathBuf>) -> anyhow::Result<TrustedKey> {
        Ok(TrustedKey {
            private_pem: private.to_pkcs8_pem(LineEnding::LF)?.to_string(),
            public_pem: RsaPublicKey::from(private).to_public_key_pem(LineEnding::LF)?,
            private_key_path: path,
        })
    }
}

fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
