//! The one way to ask for a write-back flush: [`FlushHandle`]. The write-back worker
//! ([`super::worker::run_writeback`]) serves it while it runs; the other workers tell it that a
//! batch is ready, or ask it to flush now and wait for the answer (the poll drains a backlog that
//! way). When no worker runs (`sfwa sync`, tests) nobody serves the handle and a caller flushes
//! itself — either way there is one flusher per store (see `store::outbox`).

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

/// Requests the worker has not read yet; a full queue already wakes it, so "a batch is ready"
/// is dropped rather than waited for.
const QUEUED_REQUESTS: usize = 16;

/// What a worker is asked.
#[derive(Debug)]
pub enum FlushRequest {
    /// Records were queued in the outbox: flush early if enough are pending.
    BatchReady,
    /// Flush now, and answer on this once the flush ended (whether or not it wrote everything).
    Now(oneshot::Sender<()>),
}

/// A handle on the write-back worker, if one runs. Cheap to clone; clones reach the same worker.
#[derive(Clone, Debug, Default)]
pub struct FlushHandle {
    worker: Arc<Mutex<Option<mpsc::Sender<FlushRequest>>>>,
}

/// How a "flush now" request went.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// The worker flushed (its answer came).
    Flushed,
    /// The worker was asked but did not answer within the wait (or stopped meanwhile).
    NoAnswer,
    /// No worker runs: the caller flushes itself.
    NoWorker,
}

impl FlushHandle {
    /// Tells the worker records were queued; nothing when no worker runs (the caller's own flush,
    /// or the next start, takes them).
    pub fn batch_ready(&self) {
        if let Some(worker) = self.sender() {
            // Full: the worker has requests to read already; closed: it just stopped.
            let _ = worker.try_send(FlushRequest::BatchReady);
        }
    }

    /// Asks the worker to flush now and waits up to `wait` for it to have done so.
    pub async fn ask(&self, wait: std::time::Duration) -> Asked {
        let Some(worker) = self.sender() else {
            return Asked::NoWorker;
        };
        let (reply, flushed) = oneshot::channel();
        // The wait covers the queueing too: a full queue means a busy worker, not a reason to
        // wait longer than the caller allowed.
        let asked = async {
            if worker.send(FlushRequest::Now(reply)).await.is_err() {
                return Asked::NoWorker;
            }
            match flushed.await {
                Ok(()) => Asked::Flushed,
                Err(_) => Asked::NoAnswer,
            }
        };
        tokio::time::timeout(wait, asked)
            .await
            .unwrap_or(Asked::NoAnswer)
    }

    /// Makes the caller the worker: requests come to the returned [`FlushRequests`] until it is
    /// dropped (then callers flush themselves again).
    pub fn serve(&self) -> FlushRequests {
        let (sender, receiver) = mpsc::channel(QUEUED_REQUESTS);
        *self.lock() = Some(sender);
        FlushRequests {
            handle: self.clone(),
            receiver,
            waiting: Vec::new(),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<FlushRequest>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<FlushRequest>>> {
        self.worker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker's end of a [`FlushHandle`].
#[derive(Debug)]
pub struct FlushRequests {
    handle: FlushHandle,
    receiver: mpsc::Receiver<FlushRequest>,
    /// Callers waiting for the next flush to end.
    waiting: Vec<oneshot::Sender<()>>,
}

/// Why the worker woke.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Someone waits for a flush.
    Now,
    /// Records were queued.
    BatchReady,
}

impl FlushRequests {
    /// The next request (cancel-safe: for `select!`).
    pub async fn next(&mut self) -> Wake {
        match self.receiver.recv().await {
            Some(FlushRequest::Now(reply)) => {
                self.waiting.push(reply);
                Wake::Now
            }
            Some(FlushRequest::BatchReady) => Wake::BatchReady,
            // The handle keeps a sender while this lives, so the channel never closes first.
            None => std::future::pending().await,
        }
    }

    /// A flush ended: answers everyone who asked for one before it started.
    pub fn flushed(&mut self) {
        for reply in self.waiting.drain(..) {
            // The caller may have stopped waiting.
            let _ = reply.send(());
        }
    }
}

impl Drop for FlushRequests {
    fn drop(&mut self) {
        *self.handle.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn without_a_worker_the_caller_is_told_to_flush_itself() {
        let handle = FlushHandle::default();

        let asked = handle.ask(Duration::from_secs(1)).await;

        assert_eq!(asked, Asked::NoWorker);
    }

    #[tokio::test]
    async fn a_caller_hears_back_once_the_worker_has_flushed() {
        let handle = FlushHandle::default();
        let mut requests = handle.serve();
        let worker = tokio::spawn(async move {
            assert_eq!(requests.next().await, Wake::Now);
            requests.flushed();
            requests
        });

        let asked = handle.ask(Duration::from_secs(5)).await;

        assert_eq!(asked, Asked::Flushed);
        drop(worker.await.unwrap());
    }

    #[tokio::test]
    async fn once_the_worker_stops_callers_flush_themselves_again() {
        let handle = FlushHandle::default();
        drop(handle.serve());

        let asked = handle.ask(Duration::from_secs(1)).await;

        assert_eq!(asked, Asked::NoWorker);
    }

    #[tokio::test]
    async fn a_worker_that_does_not_flush_in_time_leaves_the_caller_without_an_answer() {
        let handle = FlushHandle::default();
        let _requests = handle.serve();

        let asked = handle.ask(Duration::from_millis(10)).await;

        assert_eq!(asked, Asked::NoAnswer);
    }

    #[tokio::test]
    async fn a_ready_batch_wakes_the_worker() {
        let handle = FlushHandle::default();
        let mut requests = handle.serve();

        handle.batch_ready();

        assert_eq!(requests.next().await, Wake::BatchReady);
    }
}
