//! `--baseline <rev>`: another commit's `sfwa`, built once in release mode from a git worktree
//! under `<target>/bench-baseline/<commit>/` (its own target directory beside it, so this build's
//! binaries are never touched) and reused by later invocations. Only its daemon is measured; the
//! simulators are always this build's, so both sides face the same simulated services.

use std::path::{Path, PathBuf};

use anyhow::Context;

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
