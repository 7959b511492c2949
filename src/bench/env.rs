//! One run's world: the simulators (`<this binary> sim`) in their own process, set up through
//! their `/__sim/` control APIs, and the daemon (`<binary> run`) in another, with a config written
//! for the run. Everything lives in a temporary directory removed at the end (unless `--keep`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use super::procs::{free_port, Process};

/// How a run's simulators and daemon are set up.
#[derive(Clone, Debug)]
pub struct EnvOptions {
    /// Business numbers the records are spread over (K).
    pub numbers: usize,
    /// Extra delay before every Graph answer (L).
    pub latency_ms: u64,
    /// Sends/s each number is allowed, in the simulator and in the daemon's settings (T).
    pub limit: u32,
    /// How the daemon is tuned: intake mode, batch window, flush interval.
    pub daemon: DaemonTuning,
    /// The simulated customers' delays from sent to delivered and from delivered to read.
    pub delivered_after_ms: u64,
    pub read_after_ms: u64,
    /// No status webhooks from the simulator (the load generator posts them instead).
    pub status_webhooks_off: bool,
    /// Queued template records created before the daemon starts (a backlog waiting for it).
    pub backlog: usize,
}

impl Default for EnvOptions {
    /// One number allowed 1,000/s, answering at once; customers who receive and read within
    /// 100 ms each; no backlog.
    fn default() -> Self {
        EnvOptions {
            numbers: 1,
            latency_ms: 0,
            limit: 1000,
            daemon: DaemonTuning::default(),
            delivered_after_ms: 100,
            read_after_ms: 100,
            status_webhooks_off: false,
            backlog: 0,
        }
    }
}

/// The daemon settings every scenario can change (`#[command(flatten)]`).
#[derive(clap::Args, Clone, Debug)]
pub struct DaemonTuning {
    /// Intake: platform events (`stream`) or SOQL polls (`poll`).
    #[arg(long, default_value = "stream", value_parser = ["stream", "poll"])]
    pub mode: String,
    /// `intake.batch_window` in ms (default: the daemon's).
    #[arg(long)]
    pub batch_window_ms: Option<u64>,
    /// `writeback.flush_interval` in ms (default: the daemon's).
    #[arg(long)]
    pub flush_interval_ms: Option<u64>,
    /// `store.commit_linger` in ms (default: the daemon's, 0: commit at once). A `--baseline`
    /// build older than the setting refuses it at start.
    #[arg(long)]
    pub commit_linger_ms: Option<u64>,
    /// The store starts with this many finished messages of history, as after months of work:
    /// e.g. 1000000. This build writes it, so a `--baseline` build with an older store schema
    /// refuses it at start.
    #[arg(long, default_value_t = 0)]
    pub journal_rows: u64,
    /// `whatsapp.http2`, how sends reach the simulated Graph API: `always` (HTTP/2; the simulator
    /// speaks it in clear text, as Meta speaks it over TLS, where the daemon's default `auto`
    /// chooses it), `auto` (over the simulator's plain http that is HTTP/1.1) or `off`. A
    /// `--baseline` build runs with its default: older builds know no such setting.
    #[arg(long, default_value = "always", value_parser = ["auto", "always", "off"])]
    pub http2: String,
}

impl Default for DaemonTuning {
    fn default() -> Self {
        DaemonTuning {
            mode: "stream".into(),
            batch_window_ms: None,
            flush_interval_ms: None,
            commit_linger_ms: None,
            journal_rows: 0,
            http2: "always".into(),
        }
    }
}

/// The daemon's store, in the run's directory.
const STORE_FILE: &str = "sfwa.db";

/// The simulators and the daemon of one run.
pub struct Env {
    pub dir: PathBuf,
    sim: Process,
    pub daemon: Process,
    pub http: reqwest::Client,
    /// The simulators' base URLs.
    pub sf: String,
    pub wa: String,
    /// Where the daemon takes Meta's webhooks, and the key they are signed with.
    pub webhook_url: String,
    pub app_secret: String,
    /// The business numbers in use: `(phone_number_id, display digits)`.
    pub numbers: Vec<(String, String)>,
    /// When the daemon was started, and the simulators' CPU ms then.
    pub daemon_started: Instant,
    pub sim_cpu_at_start: f64,
}

/// How many times [`Env::start`] tries.
const START_ATTEMPTS: u32 = 3;

/// The daemon could not listen on a port picked for it: [`free_port`] releases the port it
/// found free, and until the daemon binds it the bench's and the simulators' own connections
/// can be handed it as their local port.
#[derive(Debug, thiserror::Error)]
#[error("the daemon found a port picked for it already in use")]
struct PortTaken;

impl Env {
    /// Starts the simulators from `sim_binary` and the daemon from `daemon_binary`; returns once
    /// the daemon answers `/healthz`. A daemon that found one of its ports taken is started
    /// again, with new ports, up to [`START_ATTEMPTS`] times.
    pub async fn start(
        sim_binary: &Path,
        daemon_binary: &Path,
        options: &EnvOptions,
    ) -> anyhow::Result<Env> {
        let mut attempt = 1;
        loop {
            match Env::start_once(sim_binary, daemon_binary, options).await {
                Err(error) if attempt < START_ATTEMPTS && error.is::<PortTaken>() => {
                    eprintln!("bench: {error}; starting again with other ports");
                    attempt += 1;
                }
                started => return started,
            }
        }
    }

    async fn start_once(
        sim_binary: &Path,
        daemon_binary: &Path,
        options: &EnvOptions,
    ) -> anyhow::Result<Env> {
        let dir =
            std::env::temp_dir().join(format!("sfwa-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let webhook_port = free_port()?;
        let webhook_url = format!("http://127.0.0.1:{webhook_port}/webhook");
        let (sim, info) = start_sim(sim_binary, &dir, &webhook_url).await?;
        let http = reqwest::Client::new();
        let text = |pointer: &str| {
            info.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (sf, wa) = (text("/salesforce_url"), text("/whatsapp_url"));
        let numbers = set_up_sims(&http, &sf, &wa, &info, options).await?;
        let observe_port = free_port()?;
        let config = daemon_config(&info, options, &numbers, &dir, webhook_port, observe_port);
        let config_path = dir.join("sfwa.toml");
        std::fs::write(&config_path, config)?;
        let backlog = queued_templates(options.backlog, &numbers);
        create_records(&http, &sf, &backlog).await?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        super::history::seed(
            &dir.join(STORE_FILE),
            options.daemon.journal_rows,
            &numbers[0].0,
            now_ms,
        )
        .await?;
        let sim_cpu_at_start = super::procs::cpu_ms(sim.pid)?;
        let daemon_started = Instant::now();
        let daemon = Process::start(
            "daemon",
            daemon_binary,
            &[
                OsStr::new("run"),
                OsStr::new("--config"),
                config_path.as_os_str(),
            ],
            &dir.join("daemon.log"),
        )?;
        let mut env = Env {
            app_secret: text("/whatsapp/app_secret"),
            dir,
            sim,
            daemon,
            http,
            sf,
            wa,
            webhook_url,
            numbers,
            daemon_started,
            sim_cpu_at_start,
        };
        if let Err(error) = env.wait_healthy(observe_port).await {
            let log = std::fs::read_to_string(env.dir.join("daemon.log")).unwrap_or_default();
            if log.contains("Address already in use") {
                env.stop(false).await;
                return Err(PortTaken.into());
            }
            return Err(error);
        }
        Ok(env)
    }

    /// Waits (30 s at most) for the daemon's `/healthz`.
    async fn wait_healthy(&mut self, observe_port: u16) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{observe_port}/healthz");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            anyhow::ensure!(
                self.daemon.running(),
                "the daemon exited at start; its log: {}",
                self.dir.join("daemon.log").display()
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "the daemon was not healthy within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn sim_pid(&self) -> u32 {
        self.sim.pid
    }

    /// Whether the daemon is still running (a crash ends a run with an error, not a timeout).
    pub fn daemon_running(&mut self) -> bool {
        self.daemon.running()
    }

    /// Stops the daemon (it flushes on SIGTERM), then the simulators; removes the directory
    /// unless `keep` (the scenarios keep it when a run failed, for the daemon's log).
    pub async fn stop(self, keep: bool) {
        self.daemon.stop(Duration::from_secs(10)).await;
        self.sim.stop(Duration::from_secs(5)).await;
        if keep {
            eprintln!("bench: run directory kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<Value> {
        get(&self.http, url).await
    }

    /// Every WhatsApp_Message__c in the org.
    pub async fn records(&self) -> anyhow::Result<Vec<Value>> {
        let listed = self
            .get(&format!("{}/__sim/records/WhatsApp_Message__c", self.sf))
            .await?;
        Ok(listed["records"].as_array().cloned().unwrap_or_default())
    }

    /// How many outbound WhatsApp_Message__c show each status, counted by the org simulator:
    /// the wait loops poll this, which stays cheap with thousands of records in the org (the
    /// records themselves are read once, at the end).
    pub async fn outbound_statuses(&self) -> anyhow::Result<Statuses> {
        let listed = self
            .get(&format!(
                "{}/__sim/records/WhatsApp_Message__c?group_by=Direction__c,Status__c",
                self.sf
            ))
            .await?;
        let mut by_status = std::collections::HashMap::new();
        for row in listed["counts"].as_array().into_iter().flatten() {
            if row["Direction__c"] != "Inbound" {
                let status = row["Status__c"].as_str().unwrap_or_default().to_string();
                *by_status.entry(status).or_default() +=
                    row["count"].as_u64().unwrap_or(0) as usize;
            }
        }
        Ok(Statuses(by_status))
    }

    /// The first Failed record's error, to explain a run that cannot finish.
    pub async fn first_failure(&self) -> anyhow::Result<String> {
        let records = self.records().await?;
        Ok(records
            .iter()
            .find(|r| r["Status__c"] == "Failed")
            .map(|r| format!("{}: {}", r["Error_Code__c"], r["Error_Message__c"]))
            .unwrap_or_else(|| "(no longer Failed)".into()))
    }

    /// Creates records (1,000 per request); their Ids in order.
    pub async fn create_records(&self, records: &[Value]) -> anyhow::Result<Vec<String>> {
        create_records(&self.http, &self.sf, records).await
    }

    /// The org's REST calls so far: total and by endpoint.
    pub async fn salesforce_calls(&self) -> anyhow::Result<Value> {
        Ok(self.get(&format!("{}/__sim/stats", self.sf)).await?["rest_calls"].clone())
    }

    /// Every message WhatsApp accepted.
    pub async fn accepted_messages(&self) -> anyhow::Result<Vec<Value>> {
        let listed = self.get(&format!("{}/__sim/messages", self.wa)).await?;
        Ok(listed["messages"].as_array().cloned().unwrap_or_default())
    }
}

/// Creates records in the org (1,000 per request); their Ids in order.
async fn create_records(
    http: &reqwest::Client,
    sf: &str,
    records: &[Value],
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(records.len());
    let url = format!("{sf}/__sim/records/WhatsApp_Message__c");
    for chunk in records.chunks(1000) {
        let created = post(http, &url, &json!(chunk)).await?;
        let chunk_ids = created["ids"].as_array().into_iter().flatten();
        ids.extend(chunk_ids.filter_map(|id| id.as_str().map(str::to_string)));
    }
    anyhow::ensure!(
        ids.len() == records.len(),
        "the org created {} of {} records",
        ids.len(),
        records.len()
    );
    Ok(ids)
}

/// Starts `sfwa sim` on free ports; its process and the JSON line it prints first.
async fn start_sim(
    binary: &Path,
    dir: &Path,
    webhook_url: &str,
) -> anyhow::Result<(Process, Value)> {
    let state_dir = dir.join("sim");
    let mut sim = Process::start(
        "simulators",
        binary,
        &[
            OsStr::new("sim"),
            OsStr::new("--salesforce-addr"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--whatsapp-addr"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--webhook-url"),
            OsStr::new(webhook_url),
            OsStr::new("--state-dir"),
            state_dir.as_os_str(),
        ],
        &dir.join("sim.log"),
    )?;
    let line = sim.first_line(Duration::from_secs(60)).await?;
    let info: Value =
        serde_json::from_str(&line).with_context(|| format!("sfwa sim printed {line:?}"))?;
    Ok((sim, info))
}

/// Faults, limits and numbers as the options say; the numbers in use.
async fn set_up_sims(
    http: &reqwest::Client,
    sf: &str,
    wa: &str,
    info: &Value,
    options: &EnvOptions,
) -> anyhow::Result<Vec<(String, String)>> {
    post(
        http,
        &format!("{sf}/__sim/limits"),
        // An org sized for the load (Unlimited Edition with event add-ons): a Developer
        // Edition's 10,000 platform-event deliveries a day would end the stream part-way
        // through a large backlog and leave the rest to the reconcile poll.
        &json!({"daily_api_allowance": 100_000_000u64, "daily_delivered_platform_events": 10_000_000u64}),
    )
    .await?;
    post(
        http,
        &format!("{wa}/__sim/faults"),
        &json!({
            "latency_ms": options.latency_ms,
            "throughput_per_second": options.limit,
            "delivered_after_ms": options.delivered_after_ms,
            "read_after_ms": options.read_after_ms,
            "status_webhooks_off": options.status_webhooks_off,
        }),
    )
    .await?;
    let main = info["whatsapp"]["phone_number_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut ids = vec![main];
    ids.extend(
        info["whatsapp"]["other_phone_number_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_string)),
    );
    while ids.len() < options.numbers {
        let added = post(http, &format!("{wa}/__sim/numbers"), &json!({})).await?;
        ids.push(
            added["phone_number_id"]
                .as_str()
                .context("no phone_number_id for a new number")?
                .to_string(),
        );
    }
    ids.truncate(options.numbers.max(1));
    let listed = get(http, &format!("{wa}/__sim/numbers")).await?;
    let display_of = |id: &str| {
        listed["numbers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["phone_number_id"] == id)
            .and_then(|n| n["display_phone_number"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok(ids.iter().map(|id| (id.clone(), display_of(id))).collect())
}

/// `business_account_id` and `app_id` as the simulators' own daemon config has them (the
/// connection line does not carry them): as in a real setup, so the daemon runs every job.
fn account_ids(info: &Value) -> String {
    let path = info["config_path"].as_str().unwrap_or_default();
    let config: Option<toml::Table> = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse().ok());
    let whatsapp = config.as_ref().and_then(|c| c.get("whatsapp"));
    ["business_account_id", "app_id"]
        .iter()
        .filter_map(|key| {
            let value = whatsapp?.get(*key)?;
            Some(format!("{key} = {value}\n"))
        })
        .collect()
}

/// The daemon's TOML for this run.
fn daemon_config(
    info: &Value,
    options: &EnvOptions,
    numbers: &[(String, String)],
    dir: &Path,
    webhook_port: u16,
    observe_port: u16,
) -> String {
    let text = |pointer: &str| {
        toml::Value::String(
            info.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
        .to_string()
    };
    let quoted = |value: &str| toml::Value::String(value.to_string()).to_string();
    let ids: Vec<String> = numbers.iter().map(|(id, _)| quoted(id)).collect();
    let mut intake = format!(
        "mode = {}\ninterval = \"500ms\"\n",
        quoted(&options.daemon.mode)
    );
    if let Some(window) = options.daemon.batch_window_ms {
        intake.push_str(&format!("batch_window = \"{window}ms\"\n"));
    }
    let http2 = match options.daemon.http2.as_str() {
        "auto" => String::new(),
        other => format!("http2 = {}\n", quoted(other)),
    };
    let writeback = options
        .daemon
        .flush_interval_ms
        .map_or(String::new(), |ms| {
            format!("[writeback]\nflush_interval = \"{ms}ms\"\n")
        });
    let linger = options
        .daemon
        .commit_linger_ms
        .map_or(String::new(), |ms| format!("commit_linger = \"{ms}ms\"\n"));
    format!(
        "[salesforce]\nlogin_url = {login}\nauth = \"jwt\"\nclient_id = {client}\nusername = {user}\nprivate_key_path = {key}\n\n\
         [whatsapp]\napi_base = {api}\naccess_token = {token}\ndefault_phone_number_id = {main}\nphone_number_ids = [{ids}]\n\
         app_secret = {secret}\nverify_token = {verify}\ndefault_region = \"US\"\nthroughput_per_second = {limit}\n{http2}{account}\n\
         [intake]\n{intake}\n[webhook]\nlisten = \"127.0.0.1:{webhook_port}\"\npath = \"/webhook\"\n\n\
         [observe]\nlisten = \"127.0.0.1:{observe_port}\"\n\n[store]\npath = {store}\n{linger}\n{writeback}",
        login = text("/salesforce_url"),
        client = text("/salesforce/client_id"),
        user = text("/salesforce/username"),
        key = text("/salesforce/private_key_path"),
        api = text("/whatsapp_url"),
        token = text("/whatsapp/access_token"),
        main = quoted(&numbers[0].0),
        ids = ids.join(", "),
        secret = text("/whatsapp/app_secret"),
        verify = text("/whatsapp/verify_token"),
        limit = options.limit,
        account = account_ids(info),
        store = quoted(&dir.join(STORE_FILE).to_string_lossy()),
    )
}

pub async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "GET {url} answered {status}");
    Ok(response.json().await?)
}

pub async fn post(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(
        status.is_success(),
        "POST {url} answered {status}: {answer}"
    );
    Ok(answer)
}

/// How often a run looks at the simulators while it waits for the daemon's work.
pub const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Outbound records per status (see [`Env::outbound_statuses`]).
pub struct Statuses(std::collections::HashMap<String, usize>);

impl Statuses {
    /// Records showing any of these statuses.
    pub fn showing(&self, statuses: &[&str]) -> usize {
        statuses
            .iter()
            .map(|s| self.0.get(*s).copied().unwrap_or(0))
            .sum()
    }
}

impl Env {
    /// Waits until `count` outbound records show Sent or a later status; fails on a Failed one.
    pub async fn wait_all_sent(&mut self, count: usize, deadline: Instant) -> anyhow::Result<()> {
        loop {
            let now = self.outbound_statuses().await?;
            if now.showing(&["Failed"]) > 0 {
                anyhow::bail!("a record failed: {}", self.first_failure().await?);
            }
            if now.showing(&["Sent", "Delivered", "Read"]) >= count {
                return Ok(());
            }
            self.keep_waiting(deadline, "every record to show Sent")
                .await?;
        }
    }

    /// Fails when the daemon has exited or `deadline` has passed; else waits [`CHECK_EVERY`].
    /// The scenarios' wait loops call it between checks of their condition.
    pub async fn keep_waiting(&mut self, deadline: Instant, what: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.daemon_running(),
            "the daemon exited while waiting for {what}; its log: {}",
            self.dir.join("daemon.log").display()
        );
        anyhow::ensure!(Instant::now() < deadline, "{what}: not done in time");
        tokio::time::sleep(CHECK_EVERY).await;
        Ok(())
    }
}

/// US area codes the simulated customers' numbers are drawn from (9,999 numbers each, so every
/// record has its own customer and Meta's per-customer pair rate never interferes).
pub const AREAS: [&str; 12] = [
    "650", "415", "212", "312", "213", "305", "404", "617", "702", "206", "303", "512",
];

/// The `index`-th distinct customer phone number (E.164).
pub fn customer_phone(index: usize) -> String {
    let area = AREAS[index / 9999 % AREAS.len()];
    format!("+1{area}555{:04}", index % 9999 + 1)
}

/// `count` Queued template records, round-robin over `numbers`, each to its own customer.
pub fn queued_templates(count: usize, numbers: &[(String, String)]) -> Vec<Value> {
    (0..count)
        .map(|i| {
            json!({"To_Phone__c": customer_phone(i), "Message_Type__c": "Template", "Template_Name__c": "hello_world",
                   "Status__c": "Queued", "Business_Number_Id__c": numbers[i % numbers.len()].0})
        })
        .collect()
}
