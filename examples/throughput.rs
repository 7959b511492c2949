//! Benchmark: a backlog of Queued messages through the real daemon and both simulators.
//!
//! `cargo run --release --example throughput -- [MESSAGES] [--latency-ms L] [--limit T]
//! [--mode stream|poll] [--batch-window-ms W]` (defaults: 2000 messages, 0 ms, 1,000/s, stream,
//! the configured window). `--latency-ms` holds every Graph call that long (the WhatsApp
//! simulator's `latency_ms` fault: a real network is ~200 ms); `--limit` is the number's
//! throughput at Meta and the daemon's `whatsapp.throughput_per_second`. Prints sends per second
//! from the first send WhatsApp accepted to the last, wall time, Salesforce REST calls per
//! message (by endpoint) and the median time from start to a record showing Sent. Loopback only;
//! the simulators' customers deliver and read at human speed (1 s, +2 s), so the run ends when
//! every record shows Read.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfwa::app::App;
use sfwa::config::IntakeMode;
use support::{get_json, Bench, CHECK_EVERY};
use tokio_util::sync::CancellationToken;

/// The command line.
struct Args {
    messages: usize,
    latency_ms: u64,
    limit: u32,
    mode: IntakeMode,
    batch_window_ms: Option<u64>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        messages: 2000,
        latency_ms: 0,
        limit: 1000,
        mode: IntakeMode::Stream,
        batch_window_ms: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = || {
            given
                .next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--latency-ms" => args.latency_ms = value()?.parse()?,
            "--limit" => args.limit = value()?.parse()?,
            "--batch-window-ms" => args.batch_window_ms = Some(value()?.parse()?),
            "--messages" => args.messages = value()?.parse()?,
            "--mode" => {
                args.mode = match value()?.as_str() {
                    "stream" => IntakeMode::Stream,
                    "poll" => IntakeMode::Poll,
                    other => anyhow::bail!("--mode stream|poll, not {other}"),
                }
            }
            number => args.messages = number.parse()?,
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let messages = args.messages;
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
    let mut settings = settings.clone();
    settings.intake.mode = args.mode;
    settings.whatsapp.throughput_per_second = args.limit;
    if let Some(window) = args.batch_window_ms {
        settings.intake.batch_window = Duration::from_millis(window);
    }
    settings.validate().map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let app = App::build(settings.clone(), Arc::new(clock.clone())).await?;
    wa.set_webhook_url(Some(app.webhook_url()));

    let http = reqwest::Client::new();
    http.post(format!("{}/__sim/faults", wa.url()))
        .json(&json!({"latency_ms": args.latency_ms}))
        .send()
        .await?
        .error_for_status()?;
    http.patch(format!(
        "{}/__sim/numbers/{}",
        wa.url(),
        wa.phone_number_id()
    ))
    .json(&json!({"throughput_per_second": args.limit}))
    .send()
    .await?
    .error_for_status()?;
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
    let sends_per_second = wait_for_sends(&http, &wa.url(), messages).await?;
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
    println!(
        "messages:                     {messages} ({:?} mode, Graph latency {} ms, limit {}/s)",
        args.mode, args.latency_ms, args.limit
    );
    println!("sends/s (first to last accepted): {sends_per_second:.0}");
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

/// Waits until WhatsApp accepted `messages` sends (reading the simulator's cheap counters, so the
/// check costs the daemon little CPU), then returns sends per second from the first accepted to
/// the last, from the simulator's acceptance times.
async fn wait_for_sends(http: &reqwest::Client, wa: &str, messages: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        let stats = get_json(http, &format!("{wa}/__sim/stats")).await?;
        let accepted = stats["messages_by_outcome"]["accepted"]
            .as_u64()
            .unwrap_or(0);
        if accepted as usize >= messages {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "{accepted} of {messages} sends accepted after 300 s"
        );
        tokio::time::sleep(CHECK_EVERY).await;
    }
    let listed = get_json(http, &format!("{wa}/__sim/messages")).await?;
    let times: Vec<i64> = listed["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["accepted_at_ms"].as_i64())
        .collect();
    let (first, last) = (
        times.iter().min().copied().unwrap_or(0),
        times.iter().max().copied().unwrap_or(0),
    );
    let span = ((last - first) as f64 / 1000.0).max(0.001);
    Ok((times.len().saturating_sub(1)) as f64 / span)
}
