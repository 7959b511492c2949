//! Benchmark: a backlog of Queued messages through the real daemon and both simulators.
//!
//! `cargo run --release --example throughput -- [MESSAGES]` (default 2000). Prints wall time,
//! messages per second, Salesforce REST calls per message (by endpoint) and the median time from
//! start to a record showing Sent. Loopback only; the simulators' customers deliver and read at
//! human speed (1 s, +2 s), so the run ends when every record shows Read.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfwa::app::App;
use support::{get_json, Bench, CHECK_EVERY};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let messages: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2000);
    anyhow::ensure!(
        messages <= 39_996,
        "at most 39,996 distinct simulated customers"
    );
    let bench = Bench::start().await?;
    let Bench {
        org,
        wa,
        clock,
        settings,
        ..
    } = &bench;
    settings.validate().map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let app = App::build(settings.clone(), Arc::new(clock.clone())).await?;
    wa.set_webhook_url(Some(app.webhook_url()));

    let http = reqwest::Client::new();
    let records: Vec<Value> = (0..messages)
        .map(|i| {
            let area = ["650", "415", "212", "312"][i / 9999 % 4];
            json!({"To_Phone__c": format!("+1{area}555{:04}", i % 9999 + 1), "Message_Type__c": "Template",
                   "Template_Name__c": "hello_world", "Status__c": "Queued"})
        })
        .collect();
    for chunk in records.chunks(1000) {
        http.post(format!("{}/__sim/records/WhatsApp_Message__c", org.url()))
            .json(&chunk)
            .send()
            .await?
            .error_for_status()?;
    }

    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let mut sent_at: Vec<Duration> = Vec::new();
    let mut all_sent = None;
    loop {
        let listed = get_json(
            &http,
            &format!("{}/__sim/records/WhatsApp_Message__c", org.url()),
        )
        .await?;
        let statuses: Vec<&str> = listed["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["Status__c"].as_str())
            .collect();
        let shown_sent = statuses
            .iter()
            .filter(|s| matches!(**s, "Sent" | "Delivered" | "Read"))
            .count();
        while sent_at.len() < shown_sent {
            sent_at.push(started.elapsed());
        }
        if shown_sent == messages && all_sent.is_none() {
            all_sent = Some(started.elapsed());
        }
        if std::env::var_os("BENCH_PROGRESS").is_some() {
            let mut counts = std::collections::BTreeMap::new();
            for s in &statuses {
                *counts.entry(*s).or_insert(0) += 1;
            }
            eprintln!("{:.1}s {counts:?}", started.elapsed().as_secs_f64());
        }
        let failed = statuses.iter().filter(|s| **s == "Failed").count();
        anyhow::ensure!(
            failed == 0,
            "{failed} records failed: {}",
            listed["records"][0]["Error_Message__c"]
        );
        if statuses.iter().all(|s| *s == "Read") {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "not finished after 300 s"
        );
        tokio::time::sleep(CHECK_EVERY).await;
    }
    let total = started.elapsed();
    shutdown.cancel();
    daemon.await??;

    let stats = get_json(&http, &format!("{}/__sim/stats", org.url())).await?;
    let calls = stats["rest_calls"]["total"].as_u64().unwrap_or(0);
    let all_sent = all_sent.unwrap_or(total);
    println!("messages:                     {messages}");
    println!(
        "all shown Sent on records:    {:.2} s ({:.0} messages/s)",
        all_sent.as_secs_f64(),
        messages as f64 / all_sent.as_secs_f64()
    );
    println!(
        "median record shown Sent:     {:.2} s after start",
        sent_at[sent_at.len() / 2].as_secs_f64()
    );
    println!(
        "all shown Read:               {:.2} s (customers read at human speed: ~3 s)",
        total.as_secs_f64()
    );
    println!(
        "Salesforce REST calls:        {calls} ({:.4} per message)",
        calls as f64 / messages as f64
    );
    println!(
        "  by endpoint:                {}",
        stats["rest_calls"]["by_endpoint"]
    );
    bench.clean_up();
    Ok(())
}
