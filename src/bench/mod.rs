//! `sfwa bench`: measures this machine and this build the way an operator runs sfwa — the
//! simulators (`sfwa sim`) in one process, the daemon (`sfwa run`) in another, a load generator
//! (`sfwa bench load`, hidden) in a third — so the daemon's own CPU (`/proc/<pid>/stat`) and peak
//! RSS are its alone. Scenarios: `backlog` (sends/s through the send path and every status back
//! onto the records), `webhooks` (signed status or inbound webhooks, one per POST) and `trickle`
//! (latency from record created to WhatsApp and to Sent on the record). `--baseline <rev>` runs
//! the same scenario against another commit's build in the same invocation and prints ratios.
//!
//! Part of the binary, not the library (it drives the simulators): built with the `sim` feature.
//! `docs/performance.md` says what each figure means.
//!
//! - [`env`]: one run's processes (simulators, daemon) and the control-API calls that set them up.
//! - [`procs`]: free ports, child processes, CPU and RSS read from `/proc`.
//! - [`backlog`], [`webhooks`], [`trickle`]: the scenarios; [`load`]: the webhook load generator.
//! - [`report`]: figures, medians, ratios, the table and the JSON.
//! - [`baseline`]: builds another commit's `sfwa` in a git worktree under `target/bench-baseline`.

mod backlog;
mod baseline;
mod env;
mod history;
mod load;
mod procs;
mod report;
mod trickle;
mod webhooks;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use load::LoadArgs;

/// `sfwa bench …`: the options every scenario shares, then the scenario.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
    #[command(flatten)]
    pub common: Common,
}

/// Options of every scenario.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// One JSON object per scenario run on stdout instead of the table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Repeat the scenario this many times (each with fresh processes) and report medians.
    #[arg(long, global = true, default_value_t = 1)]
    pub runs: usize,
    /// Also run the scenario against this git revision's build (`cargo build --release` in a
    /// worktree under target/bench-baseline/<rev>, reused once built) and print new/old ratios.
    #[arg(long, global = true, value_name = "GIT_REV")]
    pub baseline: Option<String>,
    /// The daemon binary to measure (default: this `sfwa`). The simulators are always this one's.
    #[arg(long, global = true, value_name = "PATH")]
    pub daemon_binary: Option<PathBuf>,
    /// Give up on a run after this many seconds.
    #[arg(long, global = true, default_value_t = 300)]
    pub timeout_s: u64,
    /// Keep the run's directory (daemon log, config, store) and print where it is.
    #[arg(long, global = true)]
    pub keep: bool,
}

#[derive(Subcommand, Clone, Debug)]
pub enum Scenario {
    /// N Queued template records spread over K numbers, each number limited to T sends/s, every
    /// Graph call taking L ms: sends/s, time until every record shows Read, daemon CPU per message,
    /// peak RSS, Salesforce calls per message (and the per-record integration's, for comparison).
    Backlog(backlog::BacklogArgs),
    /// A signed webhook load, one update per POST over C connections: status updates for messages
    /// the daemon sent, or new inbound customer messages. Rate, p50/p99 of the POSTs, and a check
    /// that every acknowledged event reached Salesforce.
    Webhooks(webhooks::WebhooksArgs),
    /// Records created at R/s for S seconds: p50/p99 from record created to WhatsApp accepting
    /// the message, and to Sent shown on the record.
    Trickle(trickle::TrickleArgs),
    /// The webhook load generator (run by `bench webhooks` as its own process).
    #[command(hide = true)]
    Load(LoadArgs),
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Backlog(_) => "backlog",
            Scenario::Webhooks(_) => "webhooks",
            Scenario::Trickle(_) => "trickle",
            Scenario::Load(_) => "load",
        }
    }

    fn params(&self) -> serde_json::Value {
        match self {
            Scenario::Backlog(args) => args.params(),
            Scenario::Webhooks(args) => args.params(),
            Scenario::Trickle(args) => args.params(),
            Scenario::Load(_) => serde_json::Value::Null,
        }
    }

    /// The same scenario for a `--baseline` build: the daemon's settings at their defaults where
    /// an older build would refuse the key (`whatsapp.http2`).
    fn for_baseline(&self) -> Scenario {
        let mut scenario = self.clone();
        match &mut scenario {
            Scenario::Backlog(args) => args.daemon.http2 = "auto".into(),
            Scenario::Webhooks(args) => args.daemon.http2 = "auto".into(),
            Scenario::Trickle(args) => args.daemon.http2 = "auto".into(),
            Scenario::Load(_) => {}
        }
        scenario
    }

    /// One run with fresh simulators (from `sim`) and a fresh daemon (from `daemon`).
    async fn run_once(
        &self,
        common: &Common,
        sim: &std::path::Path,
        daemon: &std::path::Path,
    ) -> anyhow::Result<report::Run> {
        match self {
            Scenario::Backlog(args) => args.run_once(common, sim, daemon).await,
            Scenario::Webhooks(args) => args.run_once(common, sim, daemon).await,
            Scenario::Trickle(args) => args.run_once(common, sim, daemon).await,
            Scenario::Load(_) => anyhow::bail!("`bench load` is not a scenario"),
        }
    }
}

/// Runs `sfwa bench …`; prints the table or the JSON. Fails when a run fails.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let common = args.common;
    let scenario = args.scenario;
    if let Scenario::Load(load) = scenario {
        return load::run(load).await;
    }
    let this = std::env::current_exe()?;
    let daemon = common.daemon_binary.clone().unwrap_or_else(|| this.clone());
    let ours = report::repeat(&scenario, &common, &this, &daemon, "this build").await?;
    let theirs = match &common.baseline {
        Some(rev) => {
            let built = baseline::build(rev).await?;
            let label = format!("baseline {rev}");
            let scenario = scenario.for_baseline();
            Some(report::repeat(&scenario, &common, &this, &built, &label).await?)
        }
        None => None,
    };
    let summary = report::Summary::new(&scenario, ours, theirs);
    if common.json {
        println!("{}", summary.to_json());
    } else {
        print!("{}", summary.table());
    }
    Ok(())
}
