//! `sfwa bench webhooks`: Meta's webhook load, one update per POST, from the load generator in its
//! own process ([`super::load`]). `--kind status`: first N messages are sent through the daemon
//! with the simulator's own status webhooks off (so the journal knows their wamids and nothing
//! has been delivered yet), then `delivered` and `read` are posted for each. `--kind inbound`: N
//! new customer messages, each a new message id. Reports the rate, p50/p99 of the POSTs, non-200
//! answers, the daemon's CPU per update, and checks that every acknowledged event reached
//! Salesforce (each record shows the last status posted; one inbound record per message id),
//! with how long after the load that took.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::env::{customer_phone, queued_templates};
use super::env::{DaemonTuning, Env, EnvOptions};
use super::load::{inbound_body, status_body, LoadResult, LoadSpec, Number};
use super::procs::{busy_percent, cpu_ms, machine_cpu, peak_rss_mb, percent_of_one_core, Process};
use super::report::{compared, figure, Figure, Run};
use super::Common;

#[derive(clap::Args, Clone, Debug)]
pub struct WebhooksArgs {
    /// `status`: updates for messages the daemon sent; `inbound`: new customer messages.
    #[arg(long, default_value = "status", value_parser = ["status", "inbound"])]
    pub kind: String,
    /// Webhook POSTs in all (one update each). `status`: half `delivered`, half `read`.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// POSTs per second in all (default: as fast as the daemon answers).
    #[arg(long)]
    pub rate: Option<f64>,
    #[command(flatten)]
    pub daemon: DaemonTuning,
}

/// The statuses posted for each sent message, in order.
const STATUSES: [&str; 2] = ["delivered", "read"];

impl WebhooksArgs {
    pub fn params(&self) -> Value {
        json!({"kind": self.kind, "count": self.count, "connections": self.connections, "rate": self.rate, "journal_rows": self.daemon.journal_rows, "commit_linger_ms": self.daemon.commit_linger_ms, "http2": self.daemon.http2})
    }

    fn options(&self) -> EnvOptions {
        EnvOptions {
            daemon: self.daemon.clone(),
            delivered_after_ms: 1000,
            read_after_ms: 2000,
            status_webhooks_off: true,
            ..EnvOptions::default()
        }
    }

    pub async fn run_once(
        &self,
        common: &Common,
        sim: &Path,
        daemon: &Path,
    ) -> anyhow::Result<Run> {
        anyhow::ensure!(self.count >= 2, "--count must be at least 2");
        let mut env = Env::start(sim, daemon, &self.options()).await?;
        let result = self.measure(&mut env, common, sim).await;
        env.stop(common.keep || result.is_err()).await;
        result
    }

    async fn measure(&self, env: &mut Env, common: &Common, sim: &Path) -> anyhow::Result<Run> {
        let deadline = Instant::now() + Duration::from_secs(common.timeout_s);
        let (bodies, expected) = if self.kind == "status" {
            self.status_load(env, deadline).await?
        } else {
            self.inbound_load(env)
        };
        let spec = LoadSpec {
            url: env.webhook_url.clone(),
            app_secret: env.app_secret.clone(),
            connections: self.connections,
            rate: self.rate,
            bodies,
        };
        let (cpu0, sim_cpu0, machine0) = (
            cpu_ms(env.daemon.pid)?,
            cpu_ms(env.sim_pid())?,
            machine_cpu(),
        );
        let result = run_generator(env, sim, &spec, common.timeout_s).await?;
        let cpu_load = cpu_ms(env.daemon.pid)? - cpu0;
        let shares = load_shares(
            &result,
            cpu_load,
            cpu_ms(env.sim_pid())? - sim_cpu0,
            busy_percent(machine0, machine_cpu()),
        );
        let after_load = Instant::now();
        let refused: HashSet<usize> = result.refused.iter().copied().collect();
        let expected: Vec<Expected> = expected
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !refused.contains(i))
            .map(|(_, e)| e)
            .collect();
        self.wait_on_salesforce(env, &expected, deadline).await?;
        let reached = after_load.elapsed().as_secs_f64();
        let cpu_all = cpu_ms(env.daemon.pid)? - cpu0;
        let n = result.posts as f64;
        let mut run = vec![
            compared(
                "webhooks_per_s",
                "webhooks/s (one update per POST)",
                n / result.elapsed_s,
            ),
            figure("p50_ms", "POST latency p50 ms", result.p50_ms),
            figure("p99_ms", "POST latency p99 ms", result.p99_ms),
            figure("max_ms", "POST latency max ms", result.max_ms),
        ];
        run.extend(shares);
        run.extend([
            figure("non_200", "answers other than 200", result.non_200 as f64),
            figure(
                "all_on_salesforce_s",
                "s after the load until all on Salesforce",
                reached,
            ),
            compared(
                "cpu_ms_per_update",
                "daemon CPU ms/update (during the load)",
                cpu_load / n,
            ),
            figure(
                "cpu_ms_per_update_with_writeback",
                "daemon CPU ms/update (until on Salesforce)",
                cpu_all / n,
            ),
            figure(
                "peak_rss_mb",
                "daemon peak RSS MB",
                peak_rss_mb(env.daemon.pid)?,
            ),
        ]);
        Ok(run)
    }

    /// Sends `count / 2` messages with status webhooks off, waits until each shows Sent, then
    /// builds `delivered` for each, then `read` for each.
    async fn status_load(
        &self,
        env: &mut Env,
        deadline: Instant,
    ) -> anyhow::Result<(Vec<String>, Vec<Expected>)> {
        let messages = self.count.div_ceil(STATUSES.len());
        env.create_records(&queued_templates(messages, &env.numbers))
            .await?;
        env.wait_all_sent(messages, deadline).await?;
        let accepted = env.accepted_messages().await?;
        let now = chrono::Utc::now().timestamp();
        let mut bodies = Vec::new();
        let mut expected = Vec::new();
        for status in STATUSES {
            for message in &accepted {
                let text = |key: &str| message[key].as_str().unwrap_or_default().to_string();
                let (id, display) = env
                    .numbers
                    .iter()
                    .find(|(id, _)| *id == text("phone_number_id"))
                    .cloned()
                    .unwrap_or_default();
                let number = Number {
                    id: &id,
                    display: &display,
                };
                bodies.push(status_body(
                    &number,
                    &text("wamid"),
                    &text("wa_id"),
                    status,
                    now,
                ));
                expected.push(Expected::Status {
                    record: text("biz_opaque_callback_data"),
                    status,
                });
            }
        }
        bodies.truncate(self.count);
        expected.truncate(self.count);
        Ok((bodies, expected))
    }

    /// `count` text messages, each with a new id, from customers in turn.
    fn inbound_load(&self, env: &Env) -> (Vec<String>, Vec<Expected>) {
        let (id, display) = env.numbers[0].clone();
        let number = Number {
            id: &id,
            display: &display,
        };
        let now = chrono::Utc::now().timestamp();
        let run = uuid::Uuid::new_v4().simple().to_string();
        (0..self.count)
            .map(|i| {
                let wamid = format!("wamid.bench{run}{i:08}");
                let from = customer_phone(i).trim_start_matches('+').to_string();
                (
                    inbound_body(&number, &wamid, &from, "Hello from the bench", now),
                    Expected::Inbound { wamid },
                )
            })
            .unzip()
    }

    /// Waits until Salesforce shows every expected event.
    async fn wait_on_salesforce(
        &self,
        env: &mut Env,
        expected: &[Expected],
        deadline: Instant,
    ) -> anyhow::Result<()> {
        loop {
            let records = env.records().await?;
            let missing = missing(&records, expected);
            if missing == 0 {
                return Ok(());
            }
            env.keep_waiting(
                deadline,
                &format!("acknowledged events on Salesforce ({missing} missing)"),
            )
            .await?;
        }
    }
}

/// Runs the load generator (`sfwa bench load`, its own process) on `spec`; what it saw.
async fn run_generator(
    env: &Env,
    sim: &Path,
    spec: &LoadSpec,
    timeout_s: u64,
) -> anyhow::Result<LoadResult> {
    let spec_path = env.dir.join("load.json");
    std::fs::write(&spec_path, serde_json::to_vec(spec)?)?;
    let load = Process::start(
        "load generator",
        sim,
        &[
            OsStr::new("bench"),
            OsStr::new("load"),
            OsStr::new("--spec"),
            spec_path.as_os_str(),
        ],
        &env.dir.join("load.log"),
    )?;
    let (output, ok) = load.output(Duration::from_secs(timeout_s)).await?;
    anyhow::ensure!(
        ok,
        "the load generator failed; see {}",
        env.dir.join("load.log").display()
    );
    Ok(serde_json::from_str(output.trim())?)
}

/// What one acknowledged webhook must leave on Salesforce.
pub enum Expected {
    /// The record shows this status or a later one.
    Status {
        record: String,
        status: &'static str,
    },
    /// An inbound record with this message id exists.
    Inbound { wamid: String },
}

/// How many expected events Salesforce does not show yet.
pub fn missing(records: &[Value], expected: &[Expected]) -> usize {
    let rank = |status: &str| {
        ["Queued", "Sending", "Sent", "Delivered", "Read"]
            .iter()
            .position(|s| *s == status)
    };
    let by_id: std::collections::HashMap<&str, &Value> = records
        .iter()
        .filter_map(|r| Some((r["Id"].as_str()?, r)))
        .collect();
    let inbound: HashSet<&str> = records
        .iter()
        .filter(|r| r["Direction__c"] == "Inbound")
        .filter_map(|r| r["WhatsApp_Message_Id__c"].as_str())
        .collect();
    expected
        .iter()
        .filter(|e| match e {
            Expected::Status { record, status } => {
                let shown = by_id
                    .get(record.as_str())
                    .and_then(|r| r["Status__c"].as_str())
                    .and_then(rank);
                let wanted = match *status {
                    "delivered" => rank("Delivered"),
                    _ => rank("Read"),
                };
                shown < wanted
            }
            Expected::Inbound { wamid } => !inbound.contains(wamid.as_str()),
        })
        .count()
}

/// Who spent the machine while the load ran: the generator's, the daemon's and the simulators'
/// CPU (ms, each over the load's wall time) and how busy all cores were — whether the rate was
/// bound by the machine the three processes share, or by the round trips of senders each waiting
/// for its answer.
fn load_shares(result: &LoadResult, daemon_ms: f64, sim_ms: f64, machine_busy: f64) -> [Figure; 4] {
    let share = |ms| percent_of_one_core(ms, result.elapsed_s);
    [
        figure(
            "load_cpu_percent",
            "load generator CPU % of one core",
            share(result.cpu_ms),
        ),
        figure(
            "daemon_cpu_percent",
            "daemon CPU % of one core (during the load)",
            share(daemon_ms),
        ),
        figure(
            "sim_cpu_percent",
            "simulators' CPU % of one core (during the load)",
            share(sim_ms),
        ),
        figure(
            "machine_busy_percent",
            "machine CPU busy % of all cores (during the load)",
            machine_busy,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_missing_until_salesforce_shows_its_status_or_a_later_one_or_its_inbound_record()
    {
        // Arrange
        let records = vec![
            json!({"Id": "a01", "Status__c": "Delivered", "Direction__c": "Outbound"}),
            json!({"Id": "a02", "Status__c": "Read", "Direction__c": "Outbound"}),
            json!({"Id": "a03", "Status__c": "Received", "Direction__c": "Inbound", "WhatsApp_Message_Id__c": "wamid.in1"}),
        ];
        let expected = vec![
            Expected::Status {
                record: "a01".into(),
                status: "delivered",
            },
            Expected::Status {
                record: "a01".into(),
                status: "read",
            },
            Expected::Status {
                record: "a02".into(),
                status: "delivered",
            },
            Expected::Inbound {
                wamid: "wamid.in1".into(),
            },
            Expected::Inbound {
                wamid: "wamid.in2".into(),
            },
        ];

        // Act
        let count = missing(&records, &expected);

        // Assert: a01's read and wamid.in2.
        assert_eq!(count, 2);
    }
}
