//! Benchmark: three business numbers at their own limits at once, then one of them blocked.
//!
//! `cargo run --release --example numbers -- [SECONDS]` (default 5). The WhatsApp simulator
//! serves three numbers at 20, 80 and 200 messages a second (130429 past that, Graph latency 0);
//! the daemon is told each number's ceiling (`whatsapp.throughput_per_number`). A backlog of
//! SECONDS worth of messages per number is dispatched in one step, so the numbers' send slots and
//! paces run side by side: each number should reach at least 90 % of its own limit, without a
//! 130429, whatever the others do. Then the 80/s number is blocked (368) and a second backlog
//! goes: its sends are held after the first refusals, the other two go on at their limits.
//! Prints, per number and phase: accepted sends, refusals by code, and accepted sends per second
//! (from the simulator's attempt log, first to last accepted send).

#[path = "support/mod.rs"]
#[allow(dead_code)] // shared by the benchmarks; this one polls nothing
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use sfwa::app::App;
use sfwa::pipeline::worker;
use support::{get_json, Bench};
use tokio_util::sync::CancellationToken;

/// The three numbers' limits, messages per second.
const LIMITS: [u32; 3] = [20, 80, 200];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(5);
    let bench = Bench::start().await?;
    let mut numbers = Vec::new();
    for limit in LIMITS {
        numbers.push((bench.wa.add_number(Some(limit))?.phone_number_id, limit));
    }
    let mut settings = bench.settings.clone();
    settings.whatsapp.default_phone_number_id = numbers[0].0.clone();
    settings.whatsapp.phone_number_ids = numbers[1..].iter().map(|(id, _)| id.clone()).collect();
    settings.whatsapp.throughput_per_number = numbers.iter().cloned().collect();
    // One step takes every record: the backlogs are dispatched together.
    settings.intake.batch_size = 2000;
    settings.validate().map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let app = App::build(settings, Arc::new(bench.clock.clone())).await?;
    // No status webhooks: the run measures sends, and the daemon's store serves them alone.
    bench.wa.set_webhook_url(None);
    let stop = CancellationToken::new();
    let (pipeline, _server) = app.spawn_webhook_server(stop.clone());
    let http = reqwest::Client::new();

    println!("phase 1: three numbers at 20, 80 and 200 msg/s, {seconds} s of backlog each");
    queue(&http, &bench, &numbers, seconds, 0).await?;
    let seen = report_after_step(&http, &bench, &pipeline, &numbers, 0).await?;

    // Phase 1's records leave Salesforce's Queued list once their write-backs land.
    while sfwa::pipeline::writeback::flush_once(&pipeline.write_back)
        .await?
        .written
        > 0
    {}

    let blocked = &numbers[1].0;
    bench.wa.set_number_hold(blocked, Some(368))?;
    println!("phase 2: the 80/s number is blocked (368); another backlog for all three");
    queue(&http, &bench, &numbers, seconds, 1).await?;
    report_after_step(&http, &bench, &pipeline, &numbers, seen).await?;

    stop.cancel();
    bench.clean_up();
    Ok(())
}

/// Queues `seconds` × limit template records per number, to distinct customers.
async fn queue(
    http: &reqwest::Client,
    bench: &Bench,
    numbers: &[(String, u32)],
    seconds: u32,
    phase: usize,
) -> anyhow::Result<()> {
    let mut records = Vec::new();
    for (n, (id, limit)) in numbers.iter().enumerate() {
        for i in 0..(limit * seconds) as usize {
            records.push(json!({
                "To_Phone__c": format!("+1{}555{:04}", ["650", "415", "212"][n], phase * 5000 + i + 1),
                "Message_Type__c": "Template", "Template_Name__c": "hello_world",
                "Business_Number_Id__c": id, "Status__c": "Queued",
            }));
        }
    }
    for chunk in records.chunks(1000) {
        http.post(format!(
            "{}/__sim/records/WhatsApp_Message__c",
            bench.org.url()
        ))
        .json(&chunk)
        .send()
        .await?
        .error_for_status()?;
    }
    Ok(())
}

/// Runs one dispatch step and prints each number's sends from the attempt log (attempts after
/// `since`); returns the last attempt seen.
async fn report_after_step(
    http: &reqwest::Client,
    bench: &Bench,
    pipeline: &sfwa::pipeline::Pipeline,
    numbers: &[(String, u32)],
    since: u64,
) -> anyhow::Result<u64> {
    let started = std::time::Instant::now();
    let step = worker::dispatch_step(pipeline).await?;
    println!(
        "  one step: {} records in {:.2} s",
        step.outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    let attempts = all_attempts(http, bench, since).await?;
    for (id, limit) in numbers {
        let mine: Vec<&Value> = attempts
            .iter()
            .filter(|a| a["phone_number_id"] == id.as_str())
            .collect();
        let accepted: Vec<i64> = mine
            .iter()
            .filter(|a| a["outcome"] == "accepted")
            .filter_map(|a| a["at_ms"].as_i64())
            .collect();
        let mut refused: BTreeMap<String, usize> = BTreeMap::new();
        for a in mine.iter().filter(|a| a["outcome"] != "accepted") {
            *refused.entry(a["code"].to_string()).or_default() += 1;
        }
        let rate = match (accepted.first(), accepted.last()) {
            (Some(first), Some(last)) if last > first => {
                (accepted.len() - 1) as f64 * 1000.0 / (last - first) as f64
            }
            _ => 0.0,
        };
        println!(
            "  {limit:>3}/s number: {:>5} accepted, {:>6.1} sends/s ({:>5.1} % of its limit), refused {refused:?}",
            accepted.len(),
            rate,
            rate * 100.0 / f64::from(*limit)
        );
    }
    Ok(attempts
        .last()
        .and_then(|a| a["seq"].as_u64())
        .unwrap_or(since))
}

/// Every attempt after `since`, page by page.
async fn all_attempts(
    http: &reqwest::Client,
    bench: &Bench,
    mut since: u64,
) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    loop {
        let page = get_json(
            http,
            &format!("{}/__sim/attempts?since={since}", bench.wa.url()),
        )
        .await?;
        all.extend(page["attempts"].as_array().cloned().unwrap_or_default());
        since = page["next_since"].as_u64().unwrap_or(since);
        if page["more"] != true {
            return Ok(all);
        }
    }
}
