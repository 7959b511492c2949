//! The webhook benchmarks' load generator: signed POSTs over kept-alive connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// POSTs each `(signature, body)` of `posts` to `url` as Meta posts a webhook, over `connections`
/// connections each sending its next POST once the last is answered: every POST's latency, and
/// how many were not answered 200.
pub async fn post_signed(
    url: &str,
    posts: Arc<Vec<(String, String)>>,
    connections: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (posts, next, http, url) =
                (posts.clone(), next.clone(), http.clone(), url.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0usize;
                while let Some((signature, body)) = posts.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let sent = Instant::now();
                    let answer = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", signature)
                        .body(body.clone())
                        .send()
                        .await;
                    latencies.push(sent.elapsed());
                    failed += usize::from(!matches!(answer, Ok(a) if a.status() == 200));
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for worker in workers {
        let (seen, refused) = worker.await?;
        latencies.extend(seen);
        failed += refused;
    }
    Ok((latencies, failed))
}
