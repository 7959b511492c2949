//! `sfwa bench backlog`: N Queued template records over K numbers, waiting when the daemon
//! starts, each number limited to T sends/s, every Graph call taking L ms. Measures sends/s (first to last message WhatsApp
//! accepted, from the simulator's acceptance timestamps), the time until every record shows
//! Sent and Read on Salesforce, the daemon's CPU per message until every record shows Read (so
//! the send, its sent/delivered/read webhooks and their write-backs), its peak RSS, and
//! Salesforce REST calls per message — ours and the per-record integration's (see
//! [`per_record_calls`]).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::env::{DaemonTuning, Env, EnvOptions, AREAS};
use super::procs::{cpu_ms, percent_of_one_core, MemoryParts, MemorySampler};
use super::report::{compared, figure, Figure, Run};
use super::Common;

#[derive(clap::Args, Clone, Debug)]
pub struct BacklogArgs {
    /// Queued records (N).
    #[arg(long, default_value_t = 3000)]
    pub records: usize,
    /// Business numbers they are spread over (K).
    #[arg(long, default_value_t = 1)]
    pub numbers: usize,
    /// Every Graph call's latency in ms (L).
    #[arg(long, default_value_t = 200)]
    pub latency_ms: u64,
    /// Sends/s each number is allowed (T), in the simulator and in the daemon's settings.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    #[command(flatten)]
    pub daemon: DaemonTuning,
    /// The simulated customers: ms from sent to delivered, and from delivered to read.
    #[arg(long, default_value_t = 100)]
    pub delivered_after_ms: u64,
    #[arg(long, default_value_t = 100)]
    pub read_after_ms: u64,
}

/// Salesforce calls of the integration most orgs start with, for one record: one query to read
/// it, one PATCH marking it Sending, then one PATCH per status it reached (Sent, Delivered, Read;
/// or Failed) — 5 for a message read by its customer.
pub fn per_record_calls(record: &Value) -> f64 {
    let statuses = [
        "Sent_At__c",
        "Delivered_At__c",
        "Read_At__c",
        "Failed_At__c",
    ]
    .iter()
    .filter(|field| !record[**field].is_null())
    .count();
    2.0 + statuses as f64
}

impl BacklogArgs {
    pub fn params(&self) -> Value {
        json!({"records": self.records, "numbers": self.numbers, "latency_ms": self.latency_ms, "limit": self.limit, "mode": self.daemon.mode, "journal_rows": self.daemon.journal_rows, "commit_linger_ms": self.daemon.commit_linger_ms, "http2": self.daemon.http2})
    }

    fn options(&self) -> EnvOptions {
        EnvOptions {
            numbers: self.numbers.max(1),
            latency_ms: self.latency_ms,
            limit: self.limit,
            daemon: self.daemon.clone(),
            delivered_after_ms: self.delivered_after_ms,
            read_after_ms: self.read_after_ms,
            backlog: self.records,
            ..EnvOptions::default()
        }
    }

    /// One run with fresh processes.
    pub async fn run_once(
        &self,
        common: &Common,
        sim: &Path,
        daemon: &Path,
    ) -> anyhow::Result<Run> {
        anyhow::ensure!(
            self.records >= 2 && self.records <= AREAS.len() * 9999,
            "--records must be 2 to {}",
            AREAS.len() * 9999
        );
        let mut env = Env::start(sim, daemon, &self.options()).await?;
        let result = self.measure(&mut env, common).await;
        env.stop(common.keep || result.is_err()).await;
        result
    }

    /// Waits until every record shows Read; when every one showed Sent.
    async fn wait_all_read(
        &self,
        env: &mut Env,
        started: Instant,
        deadline: Instant,
    ) -> anyhow::Result<Option<Duration>> {
        let mut all_sent = None;
        loop {
            let now = env.outbound_statuses().await?;
            if now.showing(&["Failed"]) > 0 {
                anyhow::bail!("a record failed: {}", env.first_failure().await?);
            }
            if now.showing(&["Sent", "Delivered", "Read"]) >= self.records && all_sent.is_none() {
                all_sent = Some(started.elapsed());
            }
            if now.showing(&["Read"]) >= self.records {
                return Ok(all_sent);
            }
            env.keep_waiting(deadline, "every record to show Read")
                .await?;
        }
    }

    async fn measure(&self, env: &mut Env, common: &Common) -> anyhow::Result<Run> {
        // The records were created before the daemon started (`EnvOptions::backlog`): its CPU is
        // counted from its start, start-up included (a few ms; it is what an operator pays).
        let (cpu0, sim_cpu0) = (0.0, env.sim_cpu_at_start);
        let started = env.daemon_started;
        let deadline = started + Duration::from_secs(common.timeout_s);
        let memory = MemorySampler::start(env.daemon.pid);
        let all_sent = self.wait_all_read(env, started, deadline).await?;
        let memory = memory.finish()?;
        let all_read = started.elapsed();
        let cpu = cpu_ms(env.daemon.pid)? - cpu0;
        let sim_cpu = cpu_ms(env.sim_pid())? - sim_cpu0;
        let records = env.records().await?;
        let n = self.records as f64;
        let calls = env.salesforce_calls().await?["total"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let anchor = records
            .iter()
            .filter(|r| r["Direction__c"] != "Inbound")
            .map(per_record_calls)
            .sum::<f64>()
            / n;
        let sends_per_s = sends_per_second(&env.accepted_messages().await?);
        let refused = env.get(&format!("{}/__sim/stats", env.wa)).await?["rejected_by_code"]
            ["130429"]
            .as_f64()
            .unwrap_or(0.0);
        let mut figures = vec![
            compared(
                "sends_per_s",
                "sends/s (WhatsApp accepted, first to last)",
                sends_per_s,
            ),
            figure(
                "all_sent_s",
                "s until every record shows Sent",
                all_sent.unwrap_or(all_read).as_secs_f64(),
            ),
            figure(
                "all_read_s",
                "s until every record shows Read",
                all_read.as_secs_f64(),
            ),
            compared(
                "cpu_ms_per_message",
                "daemon CPU ms/message (until Read)",
                cpu / n,
            ),
            figure(
                "daemon_cpu_percent",
                "daemon CPU % of one core",
                percent_of_one_core(cpu, all_read.as_secs_f64()),
            ),
            figure(
                "sim_cpu_percent",
                "simulators' CPU % of one core",
                percent_of_one_core(sim_cpu, all_read.as_secs_f64()),
            ),
        ];
        figures.extend(memory_figures(memory));
        figures.extend([
            figure(
                "sf_calls_per_message",
                "Salesforce REST calls/message",
                calls / n,
            ),
            figure(
                "per_record_calls_per_message",
                "per-record integration calls/message",
                anchor,
            ),
            figure(
                "calls_fewer_than_per_record",
                "× fewer calls than per-record",
                anchor / (calls / n),
            ),
            figure("rejected_130429", "130429 refusals from WhatsApp", refused),
        ]);
        Ok(figures)
    }
}

/// The daemon's peak RSS, and its two parts as [`MemorySampler`] saw them.
fn memory_figures(memory: MemoryParts) -> [Figure; 3] {
    [
        figure("peak_rss_mb", "daemon peak RSS MB", memory.peak_rss_mb),
        figure(
            "peak_anonymous_mb",
            "of it: anonymous MB, peak (sampled every 100 ms)",
            memory.peak_anonymous_mb,
        ),
        figure(
            "file_backed_mb",
            "of it: file-backed MB (the binary's pages)",
            memory.file_backed_mb,
        ),
    ]
}

/// Accepted messages per second from the first acceptance to the last (`accepted_at_ms`).
pub fn sends_per_second(messages: &[Value]) -> f64 {
    let times: Vec<i64> = messages
        .iter()
        .filter_map(|m| m["accepted_at_ms"].as_i64())
        .collect();
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return f64::NAN;
    };
    if last == first {
        return f64::NAN;
    }
    (times.len() - 1) as f64 * 1000.0 / (last - first) as f64
}

#[cfg(test)]
mod tests {
    use super::super::env::customer_phone;
    use super::*;

    #[test]
    fn a_read_message_costs_the_per_record_integration_five_calls_and_a_failed_one_three() {
        let read = json!({"Sent_At__c": "t", "Delivered_At__c": "t", "Read_At__c": "t", "Failed_At__c": null});
        let failed = json!({"Failed_At__c": "t"});
        assert_eq!(per_record_calls(&read), 5.0);
        assert_eq!(per_record_calls(&failed), 3.0);
    }

    #[test]
    fn sends_per_second_counts_intervals_between_the_first_and_last_acceptance() {
        // Arrange: 11 sends 100 ms apart = 10 intervals in 1 s.
        let messages: Vec<Value> = (0..11)
            .map(|i| json!({"accepted_at_ms": 1_000 + i * 100}))
            .collect();

        // Act / Assert
        assert!((sends_per_second(&messages) - 10.0).abs() < 1e-9);
        assert!(sends_per_second(&messages[..1]).is_nan());
    }

    #[test]
    fn every_record_gets_its_own_customer() {
        let phones: std::collections::HashSet<String> = (0..30_000).map(customer_phone).collect();
        assert_eq!(phones.len(), 30_000);
        assert!(
            phones.iter().all(|p| !p.ends_with("0000")),
            "the simulator's not-on-WhatsApp suffix"
        );
    }
}
