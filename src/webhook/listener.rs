//! The webhook port's HTTP server: HTTP/1.1, as Meta posts, with the limits an internet-facing
//! port needs and `axum::serve` does not set.
//!
//! - **Headers in time**: a connection must send a request's headers within
//!   [`Limits::header_timeout`] of being ready for one. A client that trickles its headers is cut off, and so is a
//!   keep-alive connection left idle that long: a sender's unused connections do not stay open
//!   (each holds about 16 KB of buffers here).
//! - **A soft cap on kept connections**: once [`Limits::keep_alive_connections`] are open, a new one
//!   serves its request with `Connection: close` and closes. A burst of webhooks (Meta opens a
//!   connection per POST in flight) then leaves at most that many behind. There is no hard cap:
//!   a connection that is not accepted would hold its sender's requests until they time out.
//!
//! On `stop` the server stops accepting, lets every request in flight finish (each connection
//! closes once its answer is written) and returns when all have, or after [`DRAIN`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The limits the webhook port is served with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a request's headers once it is ready for one —
    /// idle keep-alive time included.
    pub header_timeout: Duration,
    /// Open connections beyond which a new one is not kept alive after its request.
    pub keep_alive_connections: usize,
}

/// The daemon's: Meta answers within seconds or retries, so 10 s covers any honest sender; 256
/// kept connections (≈ 4 MB) are far more than Meta's steady rate needs at a few ms per answer.
pub const LIMITS: Limits = Limits {
    header_timeout: Duration::from_secs(10),
    keep_alive_connections: 256,
};

/// How long a stop waits for the requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// After a failed accept (e.g. out of file descriptors), a pause before the next: the error
/// would otherwise repeat at once, in a busy loop.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop` (see the module docs).
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let open = Arc::new(AtomicUsize::new(0));
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "the webhook port could not accept a connection");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        // Answers are small and written whole: no reason to let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let count = OpenConnection::new(&open);
        let keep_alive = count.then <= limits.keep_alive_connections;
        let service = TowerToHyperService::new(router.clone());
        let closing = closing.clone();
        connections.spawn(async move {
            let _count = count;
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(keep_alive)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => return log_end(served),
                _ = closing.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            log_end(connection.await);
        });
    }
    drop(listener);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = open.load(Ordering::Relaxed),
            "webhook connections still open after the drain; stopping without them"
        );
    }
}

fn log_end(served: hyper::Result<()>) {
    if let Err(error) = served {
        // A client that went away or was too slow: its own business, not the daemon's.
        tracing::debug!(%error, "webhook connection ended");
    }
}

/// One open connection, counted while it lives.
struct OpenConnection {
    open: Arc<AtomicUsize>,
    /// Connections open when this one was counted, itself included.
    then: usize,
}

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        let then = open.fetch_add(1, Ordering::Relaxed) + 1;
        OpenConnection {
            open: open.clone(),
            then,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const REQUEST: &[u8] = b"POST /webhook HTTP/1.1\r\nhost: sfwa\r\ncontent-length: 2\r\n\r\n{}";

    /// A server of one route answering `ok`, with `limits`; its address and its stop.
    async fn server(limits: Limits) -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let router = Router::new().route("/webhook", post(|| async { "ok" }));
        tokio::spawn(serve(listener, router, limits, stop.clone()));
        (addr, stop)
    }

    /// Sends one request on `stream` and reads its answer's head and body (`ok`).
    async fn exchange(stream: &mut TcpStream) -> String {
        stream.write_all(REQUEST).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer");
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(answer).unwrap().to_ascii_lowercase()
    }

    /// Whether the server closed `stream` (end of file) rather than sending anything more.
    async fn closed_by_server(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        matches!(stream.read(&mut buf).await, Ok(0) | Err(_))
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_connection_left_idle_past_the_header_timeout_is_closed() {
        let (addr, stop) = server(LIMITS).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();

        let answer = exchange(&mut stream).await;
        assert!(!answer.contains("connection: close"), "{answer}");
        let idle_from = tokio::time::Instant::now();

        // The paused clock jumps to the server's timer once nothing else can happen.
        assert!(closed_by_server(&mut stream).await);
        assert!(idle_from.elapsed() >= LIMITS.header_timeout);
        stop.cancel();
    }

    #[tokio::test]
    async fn above_the_soft_cap_a_new_connection_serves_its_request_and_closes() {
        let limits = Limits {
            keep_alive_connections: 2,
            ..LIMITS
        };
        let (addr, stop) = server(limits).await;
        let mut kept = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let answer = exchange(&mut stream).await;
            assert!(!answer.contains("connection: close"), "{answer}");
            kept.push(stream);
        }

        let mut third = TcpStream::connect(addr).await.unwrap();
        let answer = exchange(&mut third).await;

        assert!(answer.starts_with("http/1.1 200"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(closed_by_server(&mut third).await);
        // The kept ones still serve, and once one is gone a new connection is kept again.
        let again = exchange(&mut kept[0]).await;
        assert!(!again.contains("connection: close"), "{again}");
        drop(kept.pop());
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        let answer = wait_for_keep_alive(addr, &mut fourth).await;
        assert!(!answer.contains("connection: close"), "{answer}");
        stop.cancel();
    }

    /// The answer on `stream` once the server has counted a dropped connection out (it learns of
    /// the close on its own task): reconnects until an answer keeps the connection, 5 s at most.
    async fn wait_for_keep_alive(addr: std::net::SocketAddr, stream: &mut TcpStream) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let answer = exchange(stream).await;
            if !answer.contains("connection: close") || std::time::Instant::now() > deadline {
                return answer;
            }
            *stream = TcpStream::connect(addr).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_stop_lets_the_request_in_flight_finish_and_refuses_new_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let (entered, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let entered = Arc::new(std::sync::Mutex::new(Some(entered)));
        let release = Arc::new(tokio::sync::Notify::new());
        let router = Router::new().route(
            "/webhook",
            post({
                let release = release.clone();
                move || {
                    let (release, entered) = (release.clone(), entered.clone());
                    async move {
                        if let Some(entered) = entered.lock().unwrap().take() {
                            let _ = entered.send(());
                        }
                        release.notified().await;
                        "ok"
                    }
                }
            }),
        );
        let server = tokio::spawn(serve(listener, router, LIMITS, stop.clone()));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(REQUEST).await.unwrap();
        entered_rx.await.unwrap();

        stop.cancel();
        release.notify_one();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();

        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        server.await.unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
