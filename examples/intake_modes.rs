//! Benchmark: stream intake (platform events over CometD) against poll intake (SOQL every
//! `intake.interval`), for the same messages arriving the way Flows create them: a steady trickle.
//!
//! `cargo run --release --example intake_modes -- [MESSAGES] [PER_SECOND] [POLL_INTERVAL_S]`
//! (defaults 1000, 100, 10 — the product's default poll interval). For each mode: fresh
//! simulators, the real daemon, `MESSAGES` template records inserted at `PER_SECOND` (each insert
//! runs the package's Flow, which publishes the platform event), until every record shows Read.
//! Prints Salesforce REST calls per message (the org simulator's counters, by endpoint) and the
//! latency from record insert (CreatedDate) to WhatsApp accepting the send (median, p95, max).
//! `BATCH_WINDOW_MS` and `FLUSH_INTERVAL_MS` override `intake.batch_window` and
//! `writeback.flush_interval` to explore the calls/latency trade-off.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfwa::app::App;
use sfwa::config::IntakeMode;
use sfwa::domain::message::parse_salesforce_datetime;
use support::{get_json, Bench, CHECK_EVERY};
use tokio_util::sync::CancellationToken;

struct Run {
    calls: u64,
    by_endpoint: Value,
    latencies_ms: Vec<i64>,
    wall: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = |n: usize, default: u64| -> anyhow::Result<u64> {
        Ok(std::env::args()
            .nth(n)
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(default))
    };
    // RUST_LOG=sfwa=debug shows the daemon at work (stderr).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .init();
    let messages = arg(1, 1000)? as usize;
    let per_second = arg(2, 100)?.max(1) as usize;
    let poll_interval = Duration::from_secs(arg(3, 10)?.max(1));
    anyhow::ensure!(messages <= 9_999, "at most 9,999 simulated customers");
    println!(
        "{messages} template messages inserted at {per_second}/s; poll interval {}s\n",
        poll_interval.as_secs()
    );
    for mode in [IntakeMode::Poll, IntakeMode::Stream] {
        let run = run(mode, messages, per_second, poll_interval).await?;
        let mut latencies = run.latencies_ms.clone();
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        println!("{mode:?} intake:");
        println!(
            "  Salesforce REST calls:  {} ({:.4} per message) {}",
            run.calls,
            run.calls as f64 / messages as f64,
            run.by_endpoint
        );
        println!(
            "  insert → WhatsApp send: median {} ms, p95 {} ms, max {} ms",
            at(0.5),
            at(0.95),
            at(1.0)
        );
        println!(
            "  all Read after {:.1} s (customers read at human speed)\n",
            run.wall.as_secs_f64()
        );
    }
    Ok(())
}

async fn run(
    mode: IntakeMode,
    messages: usize,
    per_second: usize,
    poll_interval: Duration,
) -> anyhow::Result<Run> {
    let bench = Bench::start().await?;
    let (org, wa, clock) = (&bench.org, &bench.wa, &bench.clock);
    let mut settings = bench.settings.clone();
    settings.intake.mode = mode;
    settings.intake.interval = poll_interval;
    // Knobs for exploring the trade-off (defaults are the product's).
    if let Ok(window) = std::env::var("BATCH_WINDOW_MS") {
        settings.intake.batch_window = Duration::from_millis(window.parse()?);
    }
    if let Ok(flush) = std::env::var("FLUSH_INTERVAL_MS") {
        settings.writeback.flush_interval = Duration::from_millis(flush.parse()?);
    }
    settings.validate().map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let app = App::build(settings, Arc::new(clock.clone())).await?;
    wa.set_webhook_url(Some(app.webhook_url()));
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    // Let the daemon log in and subscribe (stream) or take its first, empty poll.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let http = reqwest::Client::new();
    let started = Instant::now();
    let batch = (per_second / 10).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for first in (0..messages).step_by(batch) {
        tick.tick().await;
        let records: Vec<Value> = (first..(first + batch).min(messages))
            .map(|i| {
                json!({"To_Phone__c": format!("+1650555{:04}", i + 1), "Message_Type__c": "Template",
                       "Template_Name__c": "hello_world", "Status__c": "Queued"})
            })
            .collect();
        http.post(format!("{}/__sim/records/WhatsApp_Message__c", org.url()))
            .json(&records)
            .send()
            .await?
            .error_for_status()?;
    }
    loop {
        let listed = get_json(
            &http,
            &format!("{}/__sim/records/WhatsApp_Message__c", org.url()),
        )
        .await?;
        let records = listed["records"].as_array().cloned().unwrap_or_default();
        let failed = records
            .iter()
            .filter(|r| r["Status__c"] == "Failed")
            .count();
        anyhow::ensure!(failed == 0, "{failed} records failed");
        if records.iter().all(|r| r["Status__c"] == "Read") {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not finished after 600 s"
        );
        tokio::time::sleep(CHECK_EVERY).await;
    }
    let wall = started.elapsed();
    shutdown.cancel();
    daemon.await??;

    let listed = get_json(
        &http,
        &format!("{}/__sim/records/WhatsApp_Message__c", org.url()),
    )
    .await?;
    let created: HashMap<String, i64> = listed["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let at = parse_salesforce_datetime(r["CreatedDate"].as_str()?)?;
            Some((r["Id"].as_str()?.to_string(), at.timestamp_millis()))
        })
        .collect();
    let sent = get_json(&http, &format!("{}/__sim/messages", wa.url())).await?;
    let latencies_ms: Vec<i64> = sent["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let inserted = created.get(m["biz_opaque_callback_data"].as_str()?)?;
            Some(m["accepted_at_ms"].as_i64()? - inserted)
        })
        .collect();
    anyhow::ensure!(
        latencies_ms.len() == messages,
        "{} of {messages} sends matched their records",
        latencies_ms.len()
    );
    let stats = get_json(&http, &format!("{}/__sim/stats", org.url())).await?;
    bench.clean_up();
    Ok(Run {
        calls: stats["rest_calls"]["total"].as_u64().unwrap_or(0),
        by_endpoint: stats["rest_calls"]["by_endpoint"].clone(),
        latencies_ms,
        wall,
    })
}
