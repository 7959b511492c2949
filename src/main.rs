//! The `sfwa` command line: thin on purpose; the work lives in the library. With the `sim` feature
//! (on by default) it also carries the simulators: `sfwa sim` and `sfwa demo` ([`demo`]), the only
//! code of the package that uses the `sfwa-sim` crate.

// A function longer than clippy.toml's threshold (80 lines) is split into named steps; any
// `#[allow(clippy::too_many_lines)]` carries a comment saying why.
#![warn(clippy::too_many_lines)]

#[cfg(feature = "sim")]
mod bench;
#[cfg(feature = "sim")]
mod demo;

#[cfg(feature = "sim")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// jemalloc rather than the system allocator: the daemon allocates and frees small buffers for
/// every message, webhook and write-back on several threads, and glibc's malloc spent 25-30 % of
/// its CPU there (`perf`, see docs/performance.md); jemalloc's thread caches cut CPU per message
/// by about a sixth in `sfwa bench backlog`. It is `malloc` for the whole process
/// (tikv-jemallocator's `unprefixed_malloc_on_supported_platforms`), SQLite's C code included: left
/// to glibc, SQLite's page caches sat in a glibc arena per thread that touched them (≈ 6 MB of
/// a 100 k backlog's peak, `sfwa bench` in docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (`MALLOC_CONF` in the environment overrides
/// them): one arena, since the daemon's threads are few and a second arena only grew the peak
/// RSS; freed pages go back to the system within a second, not jemalloc's default 10 s.
#[allow(non_upper_case_globals)]
#[export_name = "malloc_conf"]
pub static malloc_conf: &[u8] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(
    name = "sfwa",
    version,
    about = "Salesforce ↔ WhatsApp Business Cloud API daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines for people (`human`) or one JSON object per line for a log pipeline (`json`).
    #[arg(long, global = true, env = "SFWA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: Queued records → window check → WhatsApp → statuses on the records.
    Run {
        /// The TOML settings file; `SFWA_SECTION__KEY` environment variables override it.
        #[arg(long, default_value = "sfwa.toml")]
        config: PathBuf,
    },
    /// One pass for system cron or a Kubernetes CronJob: poll Queued records, send what is allowed,
    /// flush the write-backs, print a summary. Exits 1 if Salesforce or WhatsApp could not be
    /// reached. Safe beside a running `sfwa run` on the same store.
    Sync {
        /// The TOML settings file; `SFWA_SECTION__KEY` environment variables override it.
        #[arg(long, default_value = "sfwa.toml")]
        config: PathBuf,
    },
    /// Checks a setup: settings, store, Salesforce login, the deployed package, the event channel,
    /// each WhatsApp number, the webhook port. Prints one line per check, each failure with its
    /// fix; exits 1 if any check failed. Changes nothing; safe beside a running `sfwa run`.
    Doctor {
        /// The TOML settings file; `SFWA_SECTION__KEY` environment variables override it.
        #[arg(long, default_value = "sfwa.toml")]
        config: PathBuf,
    },
    /// A dry run: for every Queued record, what sfwa would do now and why — send, refuse with
    /// which code, wait until when, re-engage with which template. Changes nothing: reads
    /// Salesforce and the store (opened read-only), sends nothing, claims nothing; safe beside a
    /// running `sfwa run`.
    Plan {
        /// The TOML settings file; `SFWA_SECTION__KEY` environment variables override it.
        #[arg(long, default_value = "sfwa.toml")]
        config: PathBuf,
        /// Only the records this SOQL condition selects among them, e.g.
        /// "CreatedDate = TODAY" or "Template_Name__c = 'order_update'".
        #[arg(long = "where", value_name = "SOQL")]
        filter: Option<String>,
        /// One JSON document for machines instead of the table.
        #[arg(long)]
        json: bool,
        /// At most this many records, oldest first.
        #[arg(long, default_value_t = 2000)]
        limit: usize,
    },
    /// Asks a running sfwa whether it is alive: `GET /healthz` on its observe listener
    /// (`observe.listen` from the settings, or `--url`). Exits 0 on a 200, else 1 with one line
    /// saying why. For container health checks: the image has no curl.
    Healthcheck {
        /// The TOML settings file (only `observe.listen` is used; a missing file means the
        /// defaults, with `SFWA_OBSERVE__LISTEN` applied).
        #[arg(long, default_value = "sfwa.toml")]
        config: PathBuf,
        /// Ask this URL instead (e.g. `http://127.0.0.1:9464/healthz`).
        #[arg(long)]
        url: Option<String>,
    },
    /// Write-backs Salesforce refused for good (a value it cannot store, a field an admin must
    /// fix): list them, put them back into the outbox for the next flush, or drop them. Safe
    /// beside a running `sfwa run` on the same store.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// The whole flow on built-in simulators, as a sales rep would see it. No configuration.
    #[cfg(feature = "sim")]
    Demo {
        /// Leave the simulators and the daemon running for exploring (Ctrl-C to stop).
        #[arg(long)]
        keep_running: bool,
    },
    /// Measures this machine and build: simulators, daemon and load generator as separate
    /// processes; sends/s, webhooks/s, latency, daemon CPU per message, peak RSS, Salesforce
    /// calls per message; `--baseline <rev>` compares with another commit (docs/performance.md).
    #[cfg(feature = "sim")]
    Bench(bench::BenchArgs),
    /// Run a simulated Salesforce org and WhatsApp Cloud API until Ctrl-C (tests, demos, sandbox).
    #[cfg(feature = "sim")]
    Sim {
        /// Where the Salesforce org simulator listens (port 0 = any free port).
        #[arg(long, default_value = "127.0.0.1:7701")]
        salesforce_addr: SocketAddr,
        /// Where the WhatsApp Cloud API simulator listens (port 0 = any free port).
        #[arg(long, default_value = "127.0.0.1:7702")]
        whatsapp_addr: SocketAddr,
        /// Where the WhatsApp simulator delivers webhooks (sfwa's webhook URL).
        #[arg(long)]
        webhook_url: Option<String>,
        /// Keeps the JWT key pair and credentials across restarts.
        #[arg(long, default_value = ".sfwa-sim")]
        state_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// Show dead letters, newest first: key, record, when, reason, fields (the newest 50 unless
    /// KEYs or --all are given).
    List {
        #[command(flatten)]
        target: DeadLetterTarget,
    },
    /// Move dead letters back into the outbox (merged with any pending write-back for the same
    /// record, whose values win); a running sfwa writes them at its next flush.
    Retry {
        #[command(flatten)]
        target: RequiredDeadLetterTarget,
    },
    /// Delete dead letters for good.
    Drop {
        #[command(flatten)]
        target: RequiredDeadLetterTarget,
    },
}

#[derive(clap::Args)]
struct DeadLetterTarget {
    /// The TOML settings file (only `store.path` is used); `SFWA_STORE__PATH` overrides it.
    #[arg(long, default_value = "sfwa.toml")]
    config: PathBuf,
    /// Dead letters by key, as `list` shows them (a record Id, or an `upsert/…` key).
    #[arg(value_name = "KEY", conflicts_with = "all")]
    keys: Vec<String>,
    /// Every dead letter.
    #[arg(long)]
    all: bool,
}

#[derive(clap::Args)]
struct RequiredDeadLetterTarget {
    /// The TOML settings file (only `store.path` is used); `SFWA_STORE__PATH` overrides it.
    #[arg(long, default_value = "sfwa.toml")]
    config: PathBuf,
    /// Dead letters by key, as `list` shows them (a record Id, or an `upsert/…` key).
    #[arg(
        value_name = "KEY",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    keys: Vec<String>,
    /// Every dead letter.
    #[arg(long)]
    all: bool,
}

/// Threads for blocking work (the store's reads): the store has two read connections and one
/// writer thread, so more threads would only wait for a connection while each holds its stack
/// and allocator memory (tokio's default allows 512; a 3,000-record backlog reached 68 threads).
const BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(async_main()),
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn async_main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(error) => {
            // The chain of contexts, not a backtrace: operators need the cause and the fix.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // The demo's output is its table; the daemon's own logs only show problems there.
    let default_filter = match cli.command {
        #[cfg(feature = "sim")]
        Command::Demo { .. } | Command::Bench(_) => "error",
        Command::Doctor { .. }
        | Command::DeadLetters(_)
        | Command::Healthcheck { .. }
        | Command::Plan { .. } => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_filter);
    let human = cli.log_format == LogFormat::Human;
    match cli.command {
        Command::Run { config } => run_daemon(&config, human).await,
        Command::Sync { config } => sync(&config, human).await,
        Command::Doctor { config } => doctor(&config).await,
        Command::Plan {
            config,
            filter,
            json,
            limit,
        } => {
            plan(
                &config,
                sfwa::pipeline::plan::PlanOptions { filter, limit },
                json,
            )
            .await
        }
        Command::DeadLetters(command) => dead_letters(command).await,
        Command::Healthcheck { config, url } => healthcheck(&config, url).await,
        #[cfg(feature = "sim")]
        Command::Demo { keep_running } => {
            demo::run(keep_running).await?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::Bench(args) => {
            bench::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::Sim {
            salesforce_addr,
            whatsapp_addr,
            webhook_url,
            state_dir,
        } => {
            let options = sfwa_sim::sandbox::SandboxOptions {
                salesforce_addr,
                whatsapp_addr,
                webhook_url,
                state_dir,
            };
            sim(&options).await
        }
    }
}

/// `sfwa run`: the daemon until SIGTERM or Ctrl-C.
async fn run_daemon(config: &std::path::Path, human: bool) -> anyhow::Result<ExitCode> {
    if human {
        sfwa::progress::show_on_terminal();
    }
    let signalled = shutdown_signal().context("installing signal handlers")?;
    let settings = sfwa::config::Settings::load(config)?;
    let app =
        sfwa::app::App::build(settings, std::sync::Arc::new(sfwa::clock::SystemClock)).await?;
    eprintln!(
        "sfwa running; Meta webhooks go to {} (register your public URL for it); /metrics, /healthz and /readyz on http://{}",
        app.webhook_url(),
        app.observe_addr()
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        signalled.await;
        trigger.cancel();
    });
    app.run_until_stopped(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// `sfwa sync`: one pass, its summary printed; fails if a service could not be reached.
async fn sync(config: &std::path::Path, human: bool) -> anyhow::Result<ExitCode> {
    if human {
        sfwa::progress::show_on_terminal();
    }
    let settings = sfwa::config::Settings::load(config)?;
    let pipeline =
        sfwa::app::build_pipeline(settings, std::sync::Arc::new(sfwa::clock::SystemClock))?;
    let spinner = sfwa::progress::Spinner::start("sfwa sync");
    let summary = sfwa::pipeline::jobs::sync_once_with(&pipeline, &spinner).await;
    drop(spinner);
    print!("{summary}");
    Ok(exit_code(summary.healthy()))
}

/// `sfwa doctor`: one line per check; fails if any check failed.
async fn doctor(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let checks = sfwa::doctor::run(config).await;
    let unicode = std::io::IsTerminal::is_terminal(&std::io::stdout());
    print!("{}", sfwa::doctor::render(&checks, unicode));
    Ok(exit_code(sfwa::doctor::all_passed(&checks)))
}

/// `sfwa plan`: the dry run's table (or JSON); fails only if it could not read.
async fn plan(
    config: &std::path::Path,
    options: sfwa::pipeline::plan::PlanOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let settings = std::sync::Arc::new(sfwa::config::Settings::load(config)?);
    let http = reqwest::Client::builder()
        .user_agent(concat!("sfwa-plan/", env!("CARGO_PKG_VERSION")))
        .http1_only()
        .build()
        .context("building the HTTP client")?;
    let salesforce = sfwa::salesforce::SalesforceClient::new(
        http.clone(),
        sfwa::app::salesforce_config(&settings)?,
    )
    .context("setting up the Salesforce client")?;
    let wa = &settings.whatsapp;
    let whatsapp = sfwa::whatsapp::WhatsAppClient::new(
        http,
        sfwa::whatsapp::WhatsAppConfig {
            api_base: wa.api_base.clone(),
            api_version: wa.api_version.clone(),
            access_token: wa.access_token.expose().to_string(),
            timeout: wa.timeout,
        },
    );
    let planner = sfwa::pipeline::plan::Planner {
        settings,
        clock: std::sync::Arc::new(sfwa::clock::SystemClock),
        salesforce,
        whatsapp,
    };
    let plan = sfwa::pipeline::plan::plan(&planner, &options).await?;
    if json {
        println!("{}", sfwa::pipeline::plan::render_json(&plan));
    } else {
        print!("{}", sfwa::pipeline::plan::render_table(&plan));
    }
    Ok(ExitCode::SUCCESS)
}

/// `sfwa healthcheck`: 0 on a 200 from `/healthz`, else 1 and one line why.
async fn healthcheck(config: &std::path::Path, url: Option<String>) -> anyhow::Result<ExitCode> {
    let url = match url {
        Some(url) => url,
        None => {
            // Only observe.listen is needed: problems elsewhere in the settings do not matter here.
            let (settings, _) = sfwa::config::Settings::load_with_problems(config)?;
            sfwa::observe::healthcheck::healthz_url(settings.observe.listen)
        }
    };
    match sfwa::observe::healthcheck::check(&url).await {
        Ok(()) => {
            println!("ok: {url}");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("unhealthy: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `sfwa dead-letters list|retry|drop`.
async fn dead_letters(command: DeadLettersCommand) -> anyhow::Result<ExitCode> {
    use sfwa::pipeline::dead_letters::{self, Action};
    let (action, config, keys, all) = match command {
        DeadLettersCommand::List { target: t } => (Action::List, t.config, t.keys, t.all),
        DeadLettersCommand::Retry { target: t } => (Action::Retry, t.config, t.keys, t.all),
        DeadLettersCommand::Drop { target: t } => (Action::Drop, t.config, t.keys, t.all),
    };
    // Only the store is needed: settings problems elsewhere must not stand in the way.
    let (settings, _) = sfwa::config::Settings::load_with_problems(&config)?;
    let selection = if all {
        sfwa::store::outbox::Selection::All
    } else {
        sfwa::store::outbox::Selection::Keys(keys)
    };
    let output =
        dead_letters::run_on_file(&settings.store.path, action, selection, chrono::Utc::now())
            .await?;
    print!("{output}");
    Ok(ExitCode::SUCCESS)
}

/// `sfwa sim`: both simulators until SIGTERM or Ctrl-C.
#[cfg(feature = "sim")]
async fn sim(options: &sfwa_sim::sandbox::SandboxOptions) -> anyhow::Result<ExitCode> {
    let sandbox = sfwa_sim::sandbox::Sandbox::start(options).await?;
    // Machines read the first stdout line; people read stderr.
    let signalled = shutdown_signal().context("installing signal handlers")?;
    println!("{}", sandbox.connection_info());
    eprintln!("{}", sandbox.summary());
    signalled.await;
    eprintln!("stopping simulators");
    sandbox.stop().await;
    Ok(ExitCode::SUCCESS)
}

fn exit_code(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Logs go to stderr (stdout is for output machines read), filtered by `RUST_LOG` or
/// `default_filter`.
fn init_logging(format: LogFormat, default_filter: &str) {
    let logs = tracing_subscriber::fmt()
        // Writes around a progress spinner when one is showing (human format on a terminal).
        .with_writer(sfwa::progress::log_writer)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        );
    match format {
        LogFormat::Human => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Span fields included, so `record_id` and friends reach the log pipeline as fields.
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

/// Installs the Ctrl-C / SIGTERM handlers now and returns a future that resolves on either.
/// Installing before announcing readiness means a signal sent right after can never kill the
/// process uncleanly.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
