//! Soak suite: the real daemon, killed and restarted under traffic, judged only by what the
//! simulators recorded.
//!
//! ```text
//! cargo build --release && cargo run --release --example soak -- kill-loop|faults \
//!     [--records N] [--kills K] [--seed S] [--reconcile off|on] [--rate R] [--settle SECS] [--keep]
//! ```
//!
//! It starts `sfwa sim` and `sfwa run` as separate processes (the `sfwa` binary next to this
//! example's own executable, i.e. `target/release/sfwa`), the daemon's store on disk in a temporary
//! directory kept across restarts. Queued outbound records are inserted into the simulated org at a
//! steady rate (the org's Flow emulation publishes the platform events), customers write in through
//! the WhatsApp simulator, and status webhooks flow back. Meanwhile the daemon is SIGKILLed and
//! restarted `K` times: at random moments, right after WhatsApp accepted a send (seen in
//! `/__sim/attempts`), and while an inbound webhook is in flight.
//!
//! - `kill-loop`: only the kills.
//! - `faults`: the kills plus a bad day on both sides — Salesforce 500s, dropped connections, locked
//!   rows, expiring sessions; WhatsApp 5xx, answers lost after acceptance (cut, or held past the
//!   client timeout), latency spikes past the timeout, duplicated / out-of-order / delayed webhooks
//!   (delays kept under `dispatch.unknown_outcome_grace`), and a number granted 20 msg/s while sfwa
//!   is set to 80.
//!
//! A fifth of the records are free-form texts, half of them to customers who never wrote (their
//! window is closed: the right outcome is Failed OUTSIDE_SESSION_WINDOW without a send). The verdict
//! comes only from the simulators' own records (`/__sim/attempts`, `/__sim/messages`, the org's
//! rows), never from the daemon's store or logs:
//! - `duplicates`: records with more than one accepted send (`biz_opaque_callback_data` = record Id);
//! - `lost`: records that should have gone and did not, or first went more than 60 s after creation;
//! - `not_written_back`: after the settle period, the record's Status__c is not the furthest status
//!   (by the contract's rank) WhatsApp emitted for it, or is still Queued / Sending;
//! - `window_violations`: free-form sends accepted while the simulated window was closed;
//! - `failed_wrongly`: records Failed for a reason that is not about the message itself (e.g.
//!   WA_130429, SEND_OUTCOME_UNKNOWN, WA_131000) — a failure of the run in both modes.
//!
//! One summary line on stdout; exit status 1 if any count is non-zero, 2 if the harness itself
//! could not run. Loopback only; bounded by a hard overall deadline; child processes are killed on
//! exit, on Ctrl-C and on panic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const USAGE: &str = "\
usage: cargo run --release --example soak -- kill-loop|faults [options]

  --records N       outbound records to insert (default 1000)
  --kills K         SIGKILLs of the daemon, each followed by a restart (default 10)
  --seed S          seed for every random choice of the harness (default 1)
  --reconcile on|off  off sets schedule.reconcile = \"\" so only the stream path delivers (default off)
  --rate R          records inserted per second (default 25)
  --settle SECS     how long to wait after the last insert for every record to finish (default 90)
  --grace SECS      the daemon's dispatch.unknown_outcome_grace (default 30; webhook delays stay
                    under 3 s). A kill between Sending and the request makes a record wait it out.
  --keep            keep the temporary directory (daemon logs, store, sim state) and print its path

Needs target/release/sfwa: run `cargo build --release` first.
Prints one summary line; exits 1 if any duplicates, lost, not_written_back, window_violations or
failed_wrongly, 2 if the harness could not run.";

/// A record whose first accepted send comes later than this after its creation counts as lost.
const LATE_AFTER: Duration = Duration::from_secs(60);
/// What the faults run grants the number, and what sfwa is told it may send.
const GRANTED_PER_SECOND: u32 = 20;
const SFWA_THROUGHPUT: u32 = 80;
/// Webhook events are delayed up to this in the faults run: well under the grace.
const WEBHOOK_DELAY_MS: u64 = 3_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    KillLoop,
    Faults,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::KillLoop => "kill-loop",
            Mode::Faults => "faults",
        }
    }
}

#[derive(Clone, Debug)]
struct Options {
    mode: Mode,
    records: usize,
    kills: usize,
    seed: u64,
    reconcile: bool,
    rate: f64,
    settle: Duration,
    /// The daemon's `dispatch.unknown_outcome_grace`. A kill between the journal's `Sending` and
    /// the request reaching Meta leaves a send nobody can know about: the record waits the whole
    /// grace, so a grace over 60 s makes such a record count as lost (late).
    grace: Duration,
    keep: bool,
}

fn parse_args(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        mode: match args.first().map(String::as_str) {
            Some("kill-loop") => Mode::KillLoop,
            Some("faults") => Mode::Faults,
            _ => bail!("the first argument must be kill-loop or faults"),
        },
        records: 1000,
        kills: 10,
        seed: 1,
        reconcile: false,
        rate: 25.0,
        settle: Duration::from_secs(90),
        grace: Duration::from_secs(30),
        keep: false,
    };
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        if flag == "--keep" {
            options.keep = true;
            continue;
        }
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--records" => options.records = value.parse().context("--records")?,
            "--kills" => options.kills = value.parse().context("--kills")?,
            "--seed" => options.seed = value.parse().context("--seed")?,
            "--rate" => options.rate = value.parse().context("--rate")?,
            "--settle" => options.settle = Duration::from_secs(value.parse().context("--settle")?),
            "--grace" => options.grace = Duration::from_secs(value.parse().context("--grace")?),
            "--reconcile" => {
                options.reconcile = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => bail!("--reconcile takes on or off"),
                }
            }
            other => bail!("unknown option {other}"),
        }
    }
    if options.records == 0 || options.rate <= 0.0 {
        bail!("--records and --rate must be positive");
    }
    Ok(options)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("soak: {error:#}\n\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    install_panic_cleanup();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: cannot start the runtime: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(options) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    // Dropping the run future killed its children (kill_on_drop); the hook's list covers the rest.
    kill_registered_children();
    match outcome {
        Ok(verdict) if verdict.clean() => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("soak: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes: killed on drop, and by pid from a panic hook.

static CHILD_PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn register_child(pid: Option<u32>) {
    if let Some(pid) = pid {
        CHILD_PIDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
    }
}

fn forget_child(pid: Option<u32>) {
    if let Some(pid) = pid {
        CHILD_PIDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p != pid);
    }
}

fn kill_registered_children() {
    let pids: Vec<u32> = std::mem::take(&mut *CHILD_PIDS.lock().unwrap_or_else(|e| e.into_inner()));
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

fn install_panic_cleanup() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_registered_children();
        previous(info);
    }));
}

fn log_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `target/release/sfwa` beside `target/release/examples/soak`.
fn sfwa_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("this example is not inside a cargo target directory")?;
    let binary = profile_dir.join(format!("sfwa{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        bail!(
            "{} is missing: build the daemon first with `cargo build --release` \
             (same profile as this example)",
            binary.display()
        );
    }
    Ok(binary)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Where everything is.
struct Setup {
    binary: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    salesforce_url: String,
    whatsapp_url: String,
    health_url: String,
    http: reqwest::Client,
}

/// What one record is meant to be.
#[derive(Clone, Debug)]
struct Planned {
    kind: Kind,
    customer: String,
    created_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Template,
    /// Free-form to a customer who wrote in: must be sent.
    OpenText,
    /// Free-form to a customer who never wrote: must fail OUTSIDE_SESSION_WINDOW without a send.
    ClosedText,
}

async fn run(options: Options) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    let binary = sfwa_binary()?;
    let temp = tempfile::Builder::new().prefix("sfwa-soak-").tempdir()?;
    let dir = temp.path().to_path_buf();
    if options.keep {
        let kept = temp.keep();
        eprintln!("soak: keeping {}", kept.display());
    }
    let insert_time = Duration::from_secs_f64(options.records as f64 / options.rate);
    // Inserts, kills (each restart is a few seconds at worst), settle, and room for start-up.
    let hard_deadline = insert_time
        + options.settle
        + Duration::from_secs(5 * options.kills as u64)
        + Duration::from_secs(120);
    let (mut sim, setup) = start_sim(&binary, &dir, &options).await?;
    let outcome = tokio::time::timeout(hard_deadline, soak(&setup, &options, insert_time)).await;
    let _ = sim.kill().await;
    forget_child(sim.id());
    let verdict = match outcome {
        Ok(verdict) => verdict?,
        Err(_) => bail!(
            "the hard deadline of {}s passed; logs in {}",
            hard_deadline.as_secs(),
            setup.dir.display()
        ),
    };
    println!(
        "soak {mode} seed={seed} records={records} kills={kills} reconcile={reconcile} grace={grace}s: {verdict} elapsed={elapsed}s",
        mode = options.mode.name(),
        seed = options.seed,
        records = options.records,
        kills = verdict.kills,
        reconcile = if options.reconcile { "on" } else { "off" },
        grace = options.grace.as_secs(),
        elapsed = started.elapsed().as_secs(),
    );
    for line in &verdict.examples {
        eprintln!("  {line}");
    }
    Ok(verdict)
}

async fn start_sim(binary: &Path, dir: &Path, options: &Options) -> anyhow::Result<(Child, Setup)> {
    let port = free_port()?;
    let webhook_url = format!("http://127.0.0.1:{port}/webhook");
    // /healthz is on the observe listener, apart from the webhook port.
    let observe_port = free_port()?;
    let mut child = Command::new(binary)
        .args([
            "sim",
            "--salesforce-addr",
            "127.0.0.1:0",
            "--whatsapp-addr",
            "127.0.0.1:0",
        ])
        .arg("--webhook-url")
        .arg(&webhook_url)
        .arg("--state-dir")
        .arg(dir.join("sim"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(&dir.join("sim.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting sfwa sim")?;
    register_child(child.id());
    let stdout = child.stdout.take().context("sim stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("sfwa sim did not print its connection line within 60 s")??
        .context("sfwa sim exited before printing its connection line (see sim.log)")?;
    let info: Value = serde_json::from_str(&first).context("sfwa sim's first line")?;
    let text = |key: &str| -> anyhow::Result<String> {
        info[key]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("sfwa sim's connection line has no {key}"))
    };
    let sim_config = PathBuf::from(text("config_path")?);
    let config = dir.join("sfwa.toml");
    write_daemon_config(&sim_config, &config, dir, options, observe_port)?;
    let setup = Setup {
        binary: binary.to_path_buf(),
        dir: dir.to_path_buf(),
        config,
        salesforce_url: text("salesforce_url")?,
        whatsapp_url: text("whatsapp_url")?,
        health_url: format!("http://127.0.0.1:{observe_port}/healthz"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
    };
    Ok((child, setup))
}

/// The sandbox's ready config, adapted: store on disk in the run's directory, stream intake with
/// short local intervals, reconcile as asked, a client timeout short enough that held answers
/// pass it, (faults) sfwa believing it may send 80 msg/s, and `/healthz` on `observe_port`.
fn write_daemon_config(
    from: &Path,
    to: &Path,
    dir: &Path,
    options: &Options,
    observe_port: u16,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
    let mut config: toml::Table = text.parse().context("the sandbox's sfwa.toml")?;
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let entry = config
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(table) = entry.as_table_mut() {
            table.insert(key.to_owned(), value);
        }
    };
    let s = |v: &str| toml::Value::String(v.to_owned());
    set(
        "store",
        "path",
        s(&dir.join("store").join("sfwa.db").to_string_lossy()),
    );
    set("observe", "listen", s(&format!("127.0.0.1:{observe_port}")));
    set("intake", "mode", s("stream"));
    set("intake", "interval", s("1s"));
    set("intake", "batch_window", s("200ms"));
    set(
        "schedule",
        "reconcile",
        s(if options.reconcile {
            "0 */5 * * * *"
        } else {
            ""
        }),
    );
    set("writeback", "flush_interval", s("1s"));
    set("whatsapp", "timeout", s("5s"));
    set(
        "whatsapp",
        "throughput_per_second",
        toml::Value::Integer(i64::from(SFWA_THROUGHPUT)),
    );
    set(
        "dispatch",
        "unknown_outcome_grace",
        s(&format!("{}s", options.grace.as_secs())),
    );
    std::fs::create_dir_all(dir.join("store"))?;
    std::fs::write(to, toml::to_string(&config)?)?;
    Ok(())
}

impl Setup {
    async fn post(&self, url: String, body: &Value) -> anyhow::Result<Value> {
        let response = self.http.post(&url).json(body).send().await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {url}: {status} {answer}");
        }
        Ok(answer)
    }

    async fn get(&self, url: String) -> anyhow::Result<Value> {
        let response = self.http.get(&url).send().await?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {url}: {status}");
        }
        Ok(response.json().await?)
    }

    async fn wa_post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.post(format!("{}{path}", self.whatsapp_url), body)
            .await
    }

    async fn sf_post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.post(format!("{}{path}", self.salesforce_url), body)
            .await
    }

    fn start_daemon(&self, run: usize) -> anyhow::Result<Child> {
        let child = Command::new(&self.binary)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file(&self.dir.join("daemon.log"))?)
            .stderr(log_file(&self.dir.join("daemon.log"))?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting sfwa run (start {run})"))?;
        register_child(child.id());
        Ok(child)
    }

    /// Polls `/healthz` until it answers or the daemon died.
    async fn wait_healthy(&self, daemon: &mut Child) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self.http.get(&self.health_url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(status) = daemon.try_wait()? {
                bail!(
                    "sfwa run exited with {status} (see {})",
                    self.dir.join("daemon.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("sfwa run was not healthy within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Customers: `open` wrote in before the run (their window is open); `closed` never did.
struct Customers {
    open: Vec<String>,
    closed: Vec<String>,
}

fn customers(records: usize) -> Customers {
    // Enough customers that Meta's pair rate (about one message per 6 s each) is never the limit.
    let count = (records / 3).clamp(30, 6000);
    let number = |i: usize| format!("+1650{:07}", 2_000_001 + i * 3);
    let open: Vec<String> = (0..count).map(number).collect();
    let closed: Vec<String> = (count..count + count / 4 + 5).map(number).collect();
    Customers { open, closed }
}

async fn soak(setup: &Setup, options: &Options, insert_time: Duration) -> anyhow::Result<Verdict> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    // Webhooks are retried for 10 minutes, every ≤ 5 s: a killed daemon gets them after restart.
    setup
        .wa_post(
            "/__sim/faults",
            &json!({"webhook_retry_max_attempts": 100_000, "webhook_retry_horizon_ms": 600_000}),
        )
        .await?;
    let mut daemon = setup.start_daemon(0)?;
    setup.wait_healthy(&mut daemon).await?;

    // Open-window customers write in first; the daemon learns their windows from the webhooks.
    let people = customers(options.records);
    for customer in &people.open {
        setup
            .wa_post(
                "/__sim/inbound",
                &json!({"from": customer, "type": "text", "text": "hello"}),
            )
            .await?;
    }
    wait_for_inbound_records(setup, people.open.len()).await?;

    if options.mode == Mode::Faults {
        setup
            .wa_post(
                "/__sim/faults",
                &json!({
                    "error_rate": 0.05, "error_status": 500,
                    "accepted_then_lost_rate": 0.03, "accepted_then_lost_mode": "cut",
                    "accepted_then_lost_hold_ms": 8_000,
                    "webhook_duplicate_rate": 0.1, "webhook_out_of_order": true,
                    "webhook_delay_ms": WEBHOOK_DELAY_MS,
                    "throughput_per_second": GRANTED_PER_SECOND,
                }),
            )
            .await?;
        setup
            .sf_post(
                "/__sim/faults",
                &json!({"error_500_rate": 0.03, "lock_row_rate": 0.05, "drop_connection_rate": 0.02}),
            )
            .await?;
    }

    let attempts = AttemptLog::default();
    let (accepted_tx, accepted_rx) = watch::channel(0u64);
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(watch_attempts(
        setup.http.clone(),
        setup.whatsapp_url.clone(),
        attempts.clone(),
        accepted_tx,
        stop.clone(),
    ));

    let plan = Arc::new(Mutex::new(HashMap::<String, Planned>::new()));
    let feeder_seed: u64 = rng.gen();
    let feed = feed_records(
        setup,
        options,
        &people,
        plan.clone(),
        feeder_seed,
        insert_time,
    );
    let chaos = chaos(
        setup,
        options,
        &people,
        &mut daemon,
        accepted_rx,
        &mut rng,
        insert_time,
    );
    let (fed, kills) = tokio::join!(feed, chaos);
    fed?;
    let kills = kills?;

    // Settle: the daemon keeps running (faults stay on) until every record is final or time is up.
    let ids: HashSet<String> = plan
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect();
    let settle_deadline = Instant::now() + options.settle;
    loop {
        let rows = org_rows(setup).await?;
        let pending = rows
            .iter()
            .filter(|row| row["Id"].as_str().is_some_and(|id| ids.contains(id)))
            .filter(|row| {
                !matches!(
                    row["Status__c"].as_str(),
                    Some("Read" | "Failed" | "Canceled")
                )
            })
            .count();
        if pending == 0 || Instant::now() > settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.cancel();
    let _ = watcher.await;
    let _ = daemon.kill().await;
    forget_child(daemon.id());

    let all_attempts = fetch_all_attempts(setup).await?;
    let messages = setup
        .get(format!("{}/__sim/messages", setup.whatsapp_url))
        .await?;
    let rows = org_rows(setup).await?;
    let plan = plan.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let granted = (options.mode == Mode::Faults).then_some(GRANTED_PER_SECOND);
    Ok(judge(
        &plan,
        &all_attempts,
        &messages,
        &rows,
        granted,
        kills,
    ))
}

async fn org_rows(setup: &Setup) -> anyhow::Result<Vec<Value>> {
    let listed = setup
        .get(format!(
            "{}/__sim/records/WhatsApp_Message__c",
            setup.salesforce_url
        ))
        .await?;
    Ok(listed["records"].as_array().cloned().unwrap_or_default())
}

/// Waits until the org holds an inbound record per customer who wrote: the daemon has the window.
async fn wait_for_inbound_records(setup: &Setup, expected: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let inbound = org_rows(setup)
            .await?
            .iter()
            .filter(|row| row["Direction__c"] == "Inbound")
            .count();
        if inbound >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {inbound} of {expected} inbound messages reached the org within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Inserts the records at a steady rate, in small batches, remembering what each is meant to be.
async fn feed_records(
    setup: &Setup,
    options: &Options,
    people: &Customers,
    plan: Arc<Mutex<HashMap<String, Planned>>>,
    seed: u64,
    insert_time: Duration,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let tick = Duration::from_millis(200);
    let start = Instant::now();
    let mut inserted = 0usize;
    while inserted < options.records {
        let due = ((start.elapsed().as_secs_f64() / insert_time.as_secs_f64().max(0.001))
            * options.records as f64)
            .ceil() as usize;
        let batch = due.min(options.records).saturating_sub(inserted).min(200);
        if batch > 0 {
            let mut bodies = Vec::with_capacity(batch);
            let mut planned = Vec::with_capacity(batch);
            for _ in 0..batch {
                let roll: f64 = rng.gen();
                // 80 % templates; 20 % free-form, half of those to closed windows.
                let (kind, customer) = if roll < 0.8 {
                    (Kind::Template, pick(&mut rng, &people.open))
                } else if roll < 0.9 {
                    (Kind::OpenText, pick(&mut rng, &people.open))
                } else {
                    (Kind::ClosedText, pick(&mut rng, &people.closed))
                };
                let mut body = json!({
                    "Direction__c": "Outbound",
                    "Status__c": "Queued",
                    "To_Phone__c": customer,
                });
                if kind == Kind::Template {
                    body["Message_Type__c"] = json!("Template");
                    body["Template_Name__c"] = json!("hello_world");
                    body["Template_Language__c"] = json!("en_US");
                } else {
                    body["Message_Type__c"] = json!("Text");
                    body["Body__c"] = json!("Your order is on its way");
                }
                bodies.push(body);
                planned.push((kind, customer));
            }
            let created_ms = now_ms();
            let answer = setup
                .sf_post("/__sim/records/WhatsApp_Message__c", &Value::Array(bodies))
                .await?;
            let ids = answer["ids"].as_array().cloned().unwrap_or_default();
            if ids.len() != planned.len() {
                bail!(
                    "the org answered {} ids for {} records",
                    ids.len(),
                    planned.len()
                );
            }
            let mut plan = plan.lock().unwrap_or_else(|e| e.into_inner());
            for (id, (kind, customer)) in ids.iter().zip(planned) {
                if let Some(id) = id.as_str() {
                    plan.insert(
                        id.to_owned(),
                        Planned {
                            kind,
                            customer,
                            created_ms,
                        },
                    );
                }
            }
            inserted += batch;
        }
        tokio::time::sleep(tick).await;
    }
    Ok(())
}

fn pick(rng: &mut StdRng, list: &[String]) -> String {
    list[rng.gen_range(0..list.len())].clone()
}

/// Kills and restarts the daemon `kills` times over the insert period; in faults mode also expires
/// Salesforce sessions and adds latency spikes past the client timeout now and then.
#[allow(clippy::too_many_arguments)]
async fn chaos(
    setup: &Setup,
    options: &Options,
    people: &Customers,
    daemon: &mut Child,
    mut accepted: watch::Receiver<u64>,
    rng: &mut StdRng,
    insert_time: Duration,
) -> anyhow::Result<usize> {
    let gap = insert_time.as_secs_f64() / (options.kills as f64 + 1.0);
    let mut kills = 0;
    let mut next_fault = Instant::now() + Duration::from_secs(10);
    let mut fault_round = 0u32;
    for round in 0..options.kills {
        let wait = Duration::from_secs_f64(gap * rng.gen_range(0.5..1.5));
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if options.mode == Mode::Faults && Instant::now() >= next_fault {
                stage_fault_round(setup, fault_round).await?;
                fault_round += 1;
                next_fault = Instant::now() + Duration::from_secs(10);
            }
            tokio::time::sleep(
                Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        match round % 3 {
            // At a random moment.
            0 => {}
            // Right after WhatsApp accepted a send.
            1 => {
                accepted.borrow_and_update();
                let _ = tokio::time::timeout(Duration::from_secs(5), accepted.changed()).await;
            }
            // While an inbound webhook is on its way to (or inside) the daemon.
            _ => {
                let customer = pick(rng, &people.open);
                setup
                    .wa_post(
                        "/__sim/inbound",
                        &json!({"from": customer, "type": "text", "text": "are you there?"}),
                    )
                    .await?;
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..5))).await;
            }
        }
        daemon.kill().await.context("SIGKILL of sfwa run")?;
        forget_child(daemon.id());
        kills += 1;
        *daemon = setup.start_daemon(kills)?;
        setup.wait_healthy(daemon).await?;
    }
    Ok(kills)
}

/// Faults that come and go: every round expires the org's sessions; every third a latency spike
/// past the daemon's 5 s client timeout for a moment; every other one switches lost answers
/// between cut connections and answers held past the timeout.
async fn stage_fault_round(setup: &Setup, round: u32) -> anyhow::Result<()> {
    setup.sf_post("/__sim/sessions/expire", &json!({})).await?;
    let mode = if round.is_multiple_of(2) {
        "timeout"
    } else {
        "cut"
    };
    setup
        .wa_post("/__sim/faults", &json!({"accepted_then_lost_mode": mode}))
        .await?;
    if round % 3 == 2 {
        setup
            .wa_post("/__sim/faults", &json!({"latency_ms": 6_000}))
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        setup
            .wa_post("/__sim/faults", &json!({"latency_ms": 0}))
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Watching and judging.

#[derive(Clone, Default)]
struct AttemptLog(Arc<Mutex<Vec<Value>>>);

/// Follows `/__sim/attempts` closely so an aimed kill lands right after an acceptance.
async fn watch_attempts(
    http: reqwest::Client,
    whatsapp_url: String,
    log: AttemptLog,
    accepted: watch::Sender<u64>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut since = 0u64;
    while !stop.is_cancelled() {
        let url = format!("{whatsapp_url}/__sim/attempts?since={since}");
        if let Ok(response) = http.get(&url).send().await {
            if let Ok(page) = response.json::<Value>().await {
                let list = page["attempts"].as_array().cloned().unwrap_or_default();
                if list.iter().any(|a| a["outcome"] == "accepted") {
                    accepted.send_modify(|count| *count += 1);
                }
                since = page["next_since"].as_u64().unwrap_or(since);
                log.0.lock().unwrap_or_else(|e| e.into_inner()).extend(list);
            }
        }
        // A few ms: an aimed kill lands while the daemon is still acting on that answer.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

async fn fetch_all_attempts(setup: &Setup) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut since = 0u64;
    loop {
        let page = setup
            .get(format!(
                "{}/__sim/attempts?since={since}",
                setup.whatsapp_url
            ))
            .await?;
        if since == 0
            && page["oldest_kept"]
                .as_u64()
                .is_some_and(|oldest| oldest > 1)
        {
            bail!("the simulator's attempt log overflowed; lower --records");
        }
        all.extend(page["attempts"].as_array().cloned().unwrap_or_default());
        since = page["next_since"].as_u64().unwrap_or(since);
        if page["more"] != true {
            return Ok(all);
        }
    }
}

#[derive(Debug, Default)]
struct Verdict {
    kills: usize,
    duplicates: usize,
    lost: usize,
    not_written_back: usize,
    window_violations: usize,
    failed_wrongly: usize,
    max_late_s: f64,
    p50_send_s: f64,
    attempts: usize,
    rate_limited: usize,
    /// Attempts, and 130429 refusals among them, from 10 s after the first attempt on.
    attempts_after_10s: usize,
    rate_limited_after_10s: usize,
    /// Faults: the most send attempts in any 5-second window after the first 10 s, and what
    /// WhatsApp grants in 5 s.
    max_per_5s: Option<(usize, u32)>,
    /// A few examples per problem, for the person reading the run.
    examples: Vec<String>,
}

impl Verdict {
    fn clean(&self) -> bool {
        self.duplicates == 0
            && self.lost == 0
            && self.not_written_back == 0
            && self.window_violations == 0
            && self.failed_wrongly == 0
    }

    /// Keeps the first few examples of each kind (the text before the first `:`).
    fn example(&mut self, line: String) {
        let kind = line.split(':').next().unwrap_or("");
        let same = self
            .examples
            .iter()
            .filter(|known| known.split(':').next() == Some(kind))
            .count();
        if same < 5 {
            self.examples.push(line);
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let percent = if self.attempts == 0 {
            0.0
        } else {
            100.0 * self.rate_limited as f64 / self.attempts as f64
        };
        write!(
            f,
            "duplicates={} lost={} not_written_back={} window_violations={} failed_wrongly={} \
             max_late_s={:.1} p50_send_s={:.1} attempts={} 130429={:.1}%",
            self.duplicates,
            self.lost,
            self.not_written_back,
            self.window_violations,
            self.failed_wrongly,
            self.max_late_s,
            self.p50_send_s,
            self.attempts,
            percent,
        )?;
        let after = if self.attempts_after_10s == 0 {
            0.0
        } else {
            100.0 * self.rate_limited_after_10s as f64 / self.attempts_after_10s as f64
        };
        write!(f, " 130429_after_10s={after:.1}%")?;
        if let Some((max, granted)) = self.max_per_5s {
            write!(
                f,
                " max_sends_per_5s={max}/{} ({:.0}%)",
                granted * 5,
                100.0 * max as f64 / f64::from(granted * 5)
            )?;
        }
        Ok(())
    }
}

/// The contract's rank of a status (statuses only move forward).
fn rank(status: &str) -> u8 {
    match status {
        "Queued" => 0,
        "Waiting for Reply" => 1,
        "Sending" => 2,
        "Sent" => 3,
        "Failed" => 4,
        "Delivered" => 5,
        "Read" => 6,
        _ => 0,
    }
}

fn salesforce_status(webhook_status: &str) -> Option<&'static str> {
    match webhook_status {
        "sent" => Some("Sent"),
        "delivered" => Some("Delivered"),
        "read" => Some("Read"),
        "failed" => Some("Failed"),
        _ => None,
    }
}

/// Failure codes that are about the message itself (a correct final outcome). Anything else —
/// throughput refusals, unknown outcomes, Meta's transient errors — is a failure of the run.
fn failure_about_the_message(code: &str) -> bool {
    matches!(
        code,
        "OUTSIDE_SESSION_WINDOW"
            | "INVALID_PHONE"
            | "MISSING_TEMPLATE"
            | "INVALID_TEMPLATE_PARAMETERS"
            | "BODY_TOO_LONG"
            | "UNSUPPORTED_TYPE"
            | "WA_131026"
            | "WA_131047"
            | "WA_131051"
            | "WA_131021"
    ) || code.starts_with("WA_132")
}

fn judge(
    plan: &HashMap<String, Planned>,
    attempts: &[Value],
    messages: &Value,
    rows: &[Value],
    granted: Option<u32>,
    kills: usize,
) -> Verdict {
    let mut verdict = Verdict {
        kills,
        attempts: attempts.len(),
        ..Verdict::default()
    };
    verdict.rate_limited = attempts.iter().filter(|a| a["code"] == 130429).count();
    // The pace's target holds "after 10 s of adapting": counted from the first attempt on.
    let first_ms = attempts.iter().filter_map(|a| a["at_ms"].as_i64()).min();
    let adapted: Vec<&Value> = attempts
        .iter()
        .filter(|a| {
            first_ms.is_some_and(|first| a["at_ms"].as_i64().is_some_and(|at| at >= first + 10_000))
        })
        .collect();
    verdict.attempts_after_10s = adapted.len();
    verdict.rate_limited_after_10s = adapted.iter().filter(|a| a["code"] == 130429).count();

    // Accepted sends per record, in order.
    let mut accepted: HashMap<&str, Vec<&Value>> = HashMap::new();
    for attempt in attempts.iter().filter(|a| a["outcome"] == "accepted") {
        if attempt["window_open"] == false {
            verdict.window_violations += 1;
            verdict.example(format!(
                "window violation: {} to {} (record {})",
                attempt["wamid"], attempt["wa_id"], attempt["biz_opaque_callback_data"]
            ));
        }
        if let Some(id) = attempt["biz_opaque_callback_data"].as_str() {
            accepted.entry(id).or_default().push(attempt);
        }
    }
    // The furthest status WhatsApp emitted per wamid.
    let mut emitted: HashMap<&str, &'static str> = HashMap::new();
    for message in messages["messages"].as_array().into_iter().flatten() {
        let Some(wamid) = message["wamid"].as_str() else {
            continue;
        };
        for status in message["statuses"].as_array().into_iter().flatten() {
            if let Some(status) = status["status"].as_str().and_then(salesforce_status) {
                let entry = emitted.entry(wamid).or_insert(status);
                if rank(status) > rank(entry) {
                    *entry = status;
                }
            }
        }
    }
    let rows: HashMap<&str, &Value> = rows
        .iter()
        .filter_map(|row| row["Id"].as_str().map(|id| (id, row)))
        .collect();

    let mut send_delays = Vec::new();
    let mut ids: Vec<&String> = plan.keys().collect();
    ids.sort();
    for id in ids {
        let planned = &plan[id];
        let sends = accepted.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let row = rows.get(id.as_str());
        let status = row
            .and_then(|r| r["Status__c"].as_str())
            .unwrap_or("(missing)");
        let code = row.and_then(|r| r["Error_Code__c"].as_str()).unwrap_or("");
        if sends.len() > 1 {
            verdict.duplicates += 1;
            verdict.example(format!("duplicate: {id} accepted {} times", sends.len()));
        }
        if planned.kind == Kind::ClosedText {
            // Correct: Failed OUTSIDE_SESSION_WINDOW with no send (a send is a window violation,
            // counted above).
            if sends.is_empty() && !(status == "Failed" && code == "OUTSIDE_SESSION_WINDOW") {
                if matches!(status, "Queued" | "Sending") {
                    verdict.lost += 1;
                    verdict.example(format!("lost: {id} (closed window) still {status}"));
                } else {
                    verdict.failed_wrongly += 1;
                    verdict.example(format!(
                        "wrong outcome: {id} (closed window) ended {status} {code}"
                    ));
                }
            }
            continue;
        }
        let Some(first) = sends.first() else {
            if status == "Failed" && failure_about_the_message(code) {
                continue;
            }
            if status == "Failed" {
                verdict.failed_wrongly += 1;
                verdict.example(format!("failed wrongly: {id} {code} (never accepted)"));
            } else {
                verdict.lost += 1;
                verdict.example(format!("lost: {id} never sent, {status} in Salesforce"));
            }
            continue;
        };
        let delay_ms = first["at_ms"].as_i64().unwrap_or(0) - planned.created_ms;
        send_delays.push(delay_ms);
        if delay_ms > LATE_AFTER.as_millis() as i64 {
            verdict.lost += 1;
            verdict.example(format!(
                "late: {id} first accepted {:.1} s after creation",
                delay_ms as f64 / 1000.0
            ));
        }
        // The furthest status of any of its sends (one, unless duplicated).
        let expected = sends
            .iter()
            .filter_map(|s| s["wamid"].as_str())
            .filter_map(|w| emitted.get(w).copied())
            .max_by_key(|s| rank(s));
        let written = match expected {
            Some(expected) => status == expected,
            None => false,
        };
        if !written {
            verdict.not_written_back += 1;
            verdict.example(format!(
                "not written back: {id} is {status} {code}, WhatsApp said {}",
                expected.unwrap_or("nothing")
            ));
        } else if status == "Failed" && !failure_about_the_message(code) {
            verdict.failed_wrongly += 1;
            verdict.example(format!("failed wrongly: {id} {code}"));
        }
        let _ = &planned.customer;
    }
    // Records Failed in Salesforce before any send for a throughput reason are caught above; a
    // record Failed after an accepted send is written back as WhatsApp said, unless its code is not
    // about the message.
    send_delays.sort_unstable();
    if let Some(max) = send_delays.last() {
        verdict.max_late_s = *max as f64 / 1000.0;
        verdict.p50_send_s = send_delays[send_delays.len() / 2] as f64 / 1000.0;
    }
    if let Some(granted) = granted {
        verdict.max_per_5s = Some((max_per_window(attempts, 5_000, 10_000), granted));
    }
    verdict
}

/// The most send attempts (accepted or refused: every call WhatsApp had to answer) in any
/// `window_ms` bucket, skipping the first `skip_ms` of sending.
fn max_per_window(attempts: &[Value], window_ms: i64, skip_ms: i64) -> usize {
    let times: Vec<i64> = attempts
        .iter()
        .filter(|a| a["type"] != Value::Null)
        .filter_map(|a| a["at_ms"].as_i64())
        .collect();
    let Some(first) = times.iter().min().copied() else {
        return 0;
    };
    let mut buckets: BTreeMap<i64, usize> = BTreeMap::new();
    for at in times.iter().filter(|at| **at >= first + skip_ms) {
        *buckets
            .entry((at - first - skip_ms) / window_ms)
            .or_default() += 1;
    }
    buckets.values().copied().max().unwrap_or(0)
}
