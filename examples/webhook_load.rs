//! Load: signed webhooks into the real daemon, one event per POST, over 32 connections.
//!
//! `cargo run --release --example webhook_load -- [status|inbound] [POSTS]` (default status,
//! 20000). Starts both simulators and the daemon in this process; the load generator runs as a
//! child process (this binary again, `post` mode) so `perf record -g -p <this pid>` sees the
//! daemon and not the generator. `status`: each POST is a new `delivered` status of a message
//! the journal knows (seeded before the daemon starts, its record in the org); `inbound`: each
//! POST is a new customer's text message. Prints POSTs/s and p50/p99 latency, the store's
//! commits (fsyncs) per POST, and checks every POST was answered 200.
//! Minimal on purpose: `sfwa bench webhooks` is the full tool.

#[path = "support/posts.rs"]
mod posts;
#[path = "support/mod.rs"]
#[allow(dead_code)] // the helpers the other benchmarks use
mod support;

use std::io::{BufRead, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use sfwa::app::App;
use sfwa::store::{journal, Store};
use support::Bench;
use tokio_util::sync::CancellationToken;

const CONNECTIONS: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("post") {
        return post_all(&args[1], &args[2]).await;
    }
    let kind = args.first().cloned().unwrap_or_else(|| "status".into());
    let posts: usize = args
        .get(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let bench = Bench::start().await?;
    let settings = &bench.settings;
    let number = bench.wa.phone_number_id().to_string();
    let wamids = if kind == "status" {
        seed(&bench, posts).await?
    } else {
        Vec::new()
    };
    let app = App::build(settings.clone(), Arc::new(bench.clock.clone())).await?;
    let url = app.webhook_url();
    let store = app.pipeline().core.store.clone();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let bodies = bodies(&kind, posts, &number, &wamids);
    let secret = bench.wa.app_secret();
    let file = bench.dir.join("bodies.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    for body in &bodies {
        writeln!(
            out,
            "{} {body}",
            sfwa_sim::whatsapp::signature(body.as_bytes(), secret)
        )?;
    }
    out.flush()?;
    drop(out);
    println!(
        "daemon pid {} ready; posting {posts} {kind} webhooks",
        std::process::id()
    );
    let before = store.commit_counts().commits.load(Ordering::Relaxed);
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .args(["post", &url, &file.display().to_string()])
        .status()
        .await?;
    let commits = store.commit_counts().commits.load(Ordering::Relaxed) - before;
    println!(
        "store commits: {commits} ({:.3} per POST)",
        commits as f64 / posts as f64
    );
    shutdown.cancel();
    let _ = daemon.await;
    bench.clean_up();
    anyhow::ensure!(status.success(), "the load generator failed");
    Ok(())
}

/// Journal rows for `n` sent messages (records inserted in the org as Sent), their wamids.
async fn seed(bench: &Bench, n: usize) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let mut ids: Vec<String> = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(1000) {
        let records: Vec<Value> = (chunk * 1000..n.min(chunk * 1000 + 1000))
            .map(|_| {
                json!({"To_Phone__c": "+16505551234", "Message_Type__c": "Template",
                            "Template_Name__c": "hello_world", "Status__c": "Sent"})
            })
            .collect();
        let created: Value = http
            .post(format!(
                "{}/__sim/records/WhatsApp_Message__c",
                bench.org.url()
            ))
            .json(&records)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for id in created["ids"].as_array().into_iter().flatten() {
            ids.push(id.as_str().unwrap_or_default().to_string());
        }
    }
    let store = Store::open(&bench.settings.store.path)?;
    let number = bench.wa.phone_number_id().to_string();
    let wamids: Vec<String> = (0..ids.len()).map(|i| format!("wamid.bench.{i}")).collect();
    let rows: Vec<(String, String)> = ids.into_iter().zip(wamids.iter().cloned()).collect();
    let now = chrono::Utc::now();
    store
        .write(move |tx| {
            for (id, wamid) in &rows {
                let id = id.parse().expect("the org's record id");
                journal::claim(tx, &id, now)?;
                journal::mark_sending(tx, &id, &number, "16505551234", now)?;
                journal::mark_sent(tx, &id, &wamid.parse().expect("a wamid"), now)?;
            }
            Ok(())
        })
        .await?;
    Ok(wamids)
}

/// One envelope per POST: a `delivered` status of each wamid, or a new customer's message.
fn bodies(kind: &str, posts: usize, number: &str, wamids: &[String]) -> Vec<String> {
    let ts = chrono::Utc::now().timestamp().to_string();
    (0..posts)
        .map(|i| {
            let value = if kind == "status" {
                json!({"messaging_product": "whatsapp",
                       "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
                       "statuses": [{"id": wamids[i % wamids.len()], "status": "delivered",
                                     "timestamp": ts, "recipient_id": "16505551234"}]})
            } else {
                let from = format!("1650{:07}", i);
                json!({"messaging_product": "whatsapp",
                       "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
                       "contacts": [{"profile": {"name": "Bench"}, "wa_id": from}],
                       "messages": [{"from": from, "id": format!("wamid.in.{i}"), "timestamp": ts,
                                     "type": "text", "text": {"body": "hello"}}]})
            };
            json!({"object": "whatsapp_business_account",
                   "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]})
            .to_string()
        })
        .collect()
}

/// The generator (child process): POSTs every signed body, 32 at a time; rate and latency.
async fn post_all(url: &str, file: &str) -> anyhow::Result<()> {
    let lines: Vec<(String, String)> = std::io::BufReader::new(std::fs::File::open(file)?)
        .lines()
        .map(|line| {
            let line = line.expect("bodies file");
            let (signature, body) = line.split_once(' ').expect("signature body");
            (signature.to_string(), body.to_string())
        })
        .collect();
    let started = Instant::now();
    let (mut latencies, failed) = posts::post_signed(url, Arc::new(lines), CONNECTIONS).await?;
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{} POSTs in {:.2} s: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, not 200: {failed}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
    anyhow::ensure!(failed == 0, "{failed} POSTs were not answered 200");
    Ok(())
}
