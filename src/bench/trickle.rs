//! `sfwa bench trickle`: records created one by one at R/s for S seconds, as Flows create them in
//! a working day. For each: from its `CreatedDate` to WhatsApp accepting the message (the
//! simulator's `accepted_at_ms`; the record is found by its Id, echoed as
//! `biz_opaque_callback_data`), and to Sent shown on the record (its `LastModifiedDate` once it
//! shows Sent — the customers take an hour to receive, so Sent is the record's last change).
//! Both simulators share one clock, so the two timestamps compare.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::env::queued_templates;
use super::env::{DaemonTuning, Env, EnvOptions};
use super::procs::cpu_ms;
use super::report::{figure, quantile, Run};
use super::Common;

#[derive(clap::Args, Clone, Debug)]
pub struct TrickleArgs {
    /// Records created per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of creating.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Every Graph call's latency in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    #[command(flatten)]
    pub daemon: DaemonTuning,
}

impl TrickleArgs {
    pub fn params(&self) -> Value {
        json!({"rate": self.rate, "duration": self.duration, "batch_window_ms": self.daemon.batch_window_ms, "latency_ms": self.latency_ms, "mode": self.daemon.mode, "commit_linger_ms": self.daemon.commit_linger_ms, "http2": self.daemon.http2})
    }

    fn options(&self) -> EnvOptions {
        EnvOptions {
            latency_ms: self.latency_ms,
            daemon: self.daemon.clone(),
            // The customers take an hour to receive: Sent is each record's last change.
            delivered_after_ms: 3_600_000,
            read_after_ms: 0,
            ..EnvOptions::default()
        }
    }

    pub async fn run_once(
        &self,
        common: &Common,
        sim: &Path,
        daemon: &Path,
    ) -> anyhow::Result<Run> {
        anyhow::ensure!(
            self.rate > 0.0 && self.duration > 0,
            "--rate and --duration must be positive"
        );
        let mut env = Env::start(sim, daemon, &self.options()).await?;
        let result = self.measure(&mut env, common).await;
        env.stop(common.keep || result.is_err()).await;
        result
    }

    async fn measure(&self, env: &mut Env, common: &Common) -> anyhow::Result<Run> {
        let count = (self.rate * self.duration as f64).round().max(1.0) as usize;
        let cpu0 = cpu_ms(env.daemon.pid)?;
        self.create_paced(env, count).await?;
        let deadline = Instant::now() + Duration::from_secs(common.timeout_s);
        env.wait_all_sent(count, deadline).await?;
        let cpu = cpu_ms(env.daemon.pid)? - cpu0;
        let records = env.records().await?;
        let accepted = env.accepted_messages().await?;
        let (to_whatsapp, to_sent) = latencies(&records, &accepted);
        Ok(vec![
            figure(
                "to_whatsapp_p50_ms",
                "created → WhatsApp accepted p50 ms",
                quantile(&to_whatsapp, 0.5),
            ),
            figure(
                "to_whatsapp_p99_ms",
                "created → WhatsApp accepted p99 ms",
                quantile(&to_whatsapp, 0.99),
            ),
            figure(
                "to_sent_p50_ms",
                "created → Sent on the record p50 ms",
                quantile(&to_sent, 0.5),
            ),
            figure(
                "to_sent_p99_ms",
                "created → Sent on the record p99 ms",
                quantile(&to_sent, 0.99),
            ),
            figure(
                "cpu_ms_per_message",
                "daemon CPU ms/message (until Sent)",
                cpu / count as f64,
            ),
            figure(
                "sf_calls_per_message",
                "Salesforce REST calls/message",
                env.salesforce_calls().await?["total"]
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    / count as f64,
            ),
        ])
    }

    /// Creates `count` records, one per request, started at `rate`/s whatever each takes.
    async fn create_paced(&self, env: &Env, count: usize) -> anyhow::Result<()> {
        let records = queued_templates(count, &env.numbers);
        let url = format!("{}/__sim/records/WhatsApp_Message__c", env.sf);
        let started = tokio::time::Instant::now();
        let mut creations = tokio::task::JoinSet::new();
        for (index, record) in records.into_iter().enumerate() {
            tokio::time::sleep_until(started + Duration::from_secs_f64(index as f64 / self.rate))
                .await;
            let (http, url) = (env.http.clone(), url.clone());
            creations.spawn(async move { super::env::post(&http, &url, &record).await });
        }
        while let Some(created) = creations.join_next().await {
            created??;
        }
        Ok(())
    }
}

/// A Salesforce datetime (`2026-11-26T06:55:14.123+0000`) in Unix ms.
pub fn salesforce_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .ok()
        .map(|at| at.with_timezone(&Utc).timestamp_millis())
}

/// Sorted ms from created to accepted, and from created to Sent shown, per outbound record.
pub fn latencies(records: &[Value], accepted: &[Value]) -> (Vec<f64>, Vec<f64>) {
    let accepted_at: std::collections::HashMap<&str, i64> = accepted
        .iter()
        .filter_map(|m| {
            Some((
                m["biz_opaque_callback_data"].as_str()?,
                m["accepted_at_ms"].as_i64()?,
            ))
        })
        .collect();
    let mut to_whatsapp = Vec::new();
    let mut to_sent = Vec::new();
    for record in records.iter().filter(|r| r["Direction__c"] != "Inbound") {
        let Some(created) = record["CreatedDate"].as_str().and_then(salesforce_ms) else {
            continue;
        };
        if let Some(at) = record["Id"].as_str().and_then(|id| accepted_at.get(id)) {
            to_whatsapp.push((at - created) as f64);
        }
        if let Some(modified) = record["LastModifiedDate"].as_str().and_then(salesforce_ms) {
            to_sent.push((modified - created) as f64);
        }
    }
    to_whatsapp.sort_by(f64::total_cmp);
    to_sent.sort_by(f64::total_cmp);
    (to_whatsapp, to_sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_datetimes_are_read_to_the_millisecond() {
        assert_eq!(salesforce_ms("1970-01-01T00:00:01.250+0000"), Some(1250));
        assert_eq!(salesforce_ms("not a date"), None);
    }

    #[test]
    fn latencies_run_from_created_to_accepted_and_to_the_last_change() {
        // Arrange
        let records = vec![
            json!({"Id": "a01", "CreatedDate": "1970-01-01T00:00:01.000+0000", "LastModifiedDate": "1970-01-01T00:00:01.300+0000"}),
        ];
        let accepted = vec![json!({"biz_opaque_callback_data": "a01", "accepted_at_ms": 1040})];

        // Act
        let (to_whatsapp, to_sent) = latencies(&records, &accepted);

        // Assert
        assert_eq!((to_whatsapp, to_sent), (vec![40.0], vec![300.0]));
    }
}
