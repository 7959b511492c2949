//! `--baseline <rev>`: another commit's `sfwa`, built once in release mode from a git worktree
//! under `<target>/bench-baseline/<commit>/` (its own target directory beside it, so this build's
//! binaries are never touched) and reused by later invocations. Only its daemon is measured; the
//! simulators are always this build's, so both sides face the same simulated services.
//!
//! Cargo applies the `[env]` of every `.cargo/config.toml` above the directory it builds in, and
//! the worktree is inside this checkout: the baseline is given its own commit's values of
//! [`BUILD_ENV`] (none if it sets none), so an old commit is built as it built itself and a
//! comparison does not credit both sides with this build's SQLite flags.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The `[env]` keys of this checkout's `.cargo/config.toml`, given to a baseline build as its
/// own commit sets them.
const BUILD_ENV: [&str; 1] = ["LIBSQLITE3_FLAGS"];

/// The path of `rev`'s release `sfwa`, building it first if needed.
pub async fn build(rev: &str) -> anyhow::Result<PathBuf> {
    let top = git(None, &["rev-parse", "--show-toplevel"])
        .context("--baseline needs to run inside the sfwa git checkout")?;
    let top = PathBuf::from(top);
    let commit = git(
        Some(&top),
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| top.join("target"), PathBuf::from);
    let root = target
        .join("bench-baseline")
        .join(&commit[..12.min(commit.len())]);
    let binary = root.join("target").join("release").join("sfwa");
    if binary.exists() {
        return Ok(binary);
    }
    let source = root.join("src");
    if !source.exists() {
        std::fs::create_dir_all(&root)?;
        git(
            Some(&top),
            &[
                "worktree",
                "add",
                "--detach",
                &source.to_string_lossy(),
                &commit,
            ],
        )?;
    }
    eprintln!(
        "bench: building the baseline {rev} ({commit}) in {} (once)",
        source.display()
    );
    let status =
        tokio::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--bin", "sfwa"])
            .env("CARGO_TARGET_DIR", root.join("target"))
            .envs(BUILD_ENV.map(|key| (key, configured_env(&source, key))))
            .current_dir(&source)
            .status()
            .await
            .context("running cargo")?;
    anyhow::ensure!(status.success() && binary.exists(), "building {rev} failed");
    Ok(binary)
}

/// `git args…` in `dir`; its trimmed stdout.
fn git(dir: Option<&Path>, args: &[&str]) -> anyhow::Result<String> {
    let mut command = std::process::Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.args(args).output().context("running git")?;
    anyhow::ensure!(
        output.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// `key`'s value in the `[env]` of `source/.cargo/config.toml` (a string, or a table's `value`);
/// empty when the file, the table or the key is missing.
fn configured_env(source: &Path, key: &str) -> String {
    let config = std::fs::read_to_string(source.join(".cargo").join("config.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok());
    let value = config
        .as_ref()
        .and_then(|config| config.get("env")?.get(key));
    let text = match value {
        Some(toml::Value::Table(table)) => table.get("value").and_then(toml::Value::as_str),
        Some(value) => value.as_str(),
        None => None,
    };
    text.unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout_with(config: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(config) = config {
            std::fs::create_dir(dir.path().join(".cargo")).unwrap();
            std::fs::write(dir.path().join(".cargo").join("config.toml"), config).unwrap();
        }
        dir
    }

    #[test]
    fn a_baseline_commit_without_a_cargo_config_is_built_without_this_checkouts_sqlite_flags() {
        let old = checkout_with(None);
        assert_eq!(configured_env(old.path(), "LIBSQLITE3_FLAGS"), "");
        let other = checkout_with(Some("[build]\njobs = 2\n"));
        assert_eq!(configured_env(other.path(), "LIBSQLITE3_FLAGS"), "");
    }

    #[test]
    fn a_baseline_commit_that_sets_sqlite_flags_is_built_with_its_own() {
        let plain = checkout_with(Some("[env]\nLIBSQLITE3_FLAGS = \"-DHAVE_FDATASYNC=1\"\n"));
        assert_eq!(
            configured_env(plain.path(), "LIBSQLITE3_FLAGS"),
            "-DHAVE_FDATASYNC=1"
        );
        let table = checkout_with(Some(
            "[env]\nLIBSQLITE3_FLAGS = { value = \"-DSQLITE_X=1\", force = true }\n",
        ));
        assert_eq!(
            configured_env(table.path(), "LIBSQLITE3_FLAGS"),
            "-DSQLITE_X=1"
        );
    }

    #[test]
    fn this_checkouts_cargo_config_is_what_the_baseline_reads_its_keys_from() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        for key in BUILD_ENV {
            assert!(
                !configured_env(here, key).is_empty(),
                "{key} is listed as a build variable but .cargo/config.toml does not set it"
            );
        }
    }
}
