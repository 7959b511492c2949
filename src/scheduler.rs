//! Scheduled jobs (cron expressions from `[schedule]`), timed by the injectable clock.
//!
//! [`Scheduler::tick`] is the one-step function: it starts every job whose next run time has come
//! by the clock's `now`, unless that job's previous run is still going (a job never overlaps
//! itself; the run is skipped and logged, and the job is due again at its next time). A failed run
//! is logged and simply runs again at its next time. [`Scheduler::run`] calls `tick` once a second
//! until shutdown, then waits for running jobs to finish (they are journaled work, like sends).
//!
//! A clock that jumps (a suspended laptop, a test shifting time) runs a job once, not once per
//! missed time: the next run time is always computed after `now`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::clock::SharedClock;

type JobFuture = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send>>;

/// A named piece of work on a cron schedule. The work returns a one-line summary for the log.
pub struct Job {
    name: String,
    schedule: cron::Schedule,
    work: Box<dyn Fn() -> JobFuture + Send + Sync>,
}

impl Job {
    pub fn new<F, Fut>(name: impl Into<String>, schedule: cron::Schedule, work: F) -> Job
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<String>> + Send + 'static,
    {
        Job {
            name: name.into(),
            schedule,
            work: Box::new(move || Box::pin(work())),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

struct Slot {
    job: Job,
    next_run: Option<DateTime<Utc>>,
    running: Arc<AtomicBool>,
}

/// What one [`Scheduler::tick`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Jobs started by this tick.
    pub started: Vec<String>,
    /// Jobs that were due but still running from an earlier time.
    pub skipped: Vec<String>,
}

pub struct Scheduler {
    clock: SharedClock,
    slots: Vec<Slot>,
    tasks: TaskTracker,
    /// Signalled whenever a run ends.
    finished: Arc<tokio::sync::Notify>,
}

impl Scheduler {
    /// Every job's first run is its first scheduled time after the clock's `now`.
    pub fn new(clock: SharedClock, jobs: Vec<Job>) -> Scheduler {
        let now = clock.now();
        let slots = jobs
            .into_iter()
            .map(|job| Slot {
                next_run: job.schedule.after(&now).next(),
                job,
                running: Arc::new(AtomicBool::new(false)),
            })
            .collect();
        Scheduler {
            clock,
            slots,
            tasks: TaskTracker::new(),
            finished: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The next time any job is due, if any job has one.
    pub fn next_run(&self) -> Option<DateTime<Utc>> {
        self.slots.iter().filter_map(|s| s.next_run).min()
    }

    /// Starts the due jobs (each on its own task) and moves their next run time past `now`.
    pub fn tick(&mut self) -> Tick {
        let now = self.clock.now();
        let mut tick = Tick::default();
        for slot in &mut self.slots {
            if slot.next_run.is_none_or(|at| at > now) {
                continue;
            }
            slot.next_run = slot.job.schedule.after(&now).next();
            let name = slot.job.name.clone();
            if slot.running.swap(true, Ordering::AcqRel) {
                warn!(job = %name, "still running from its previous time; this run is skipped");
                tick.skipped.push(name);
                continue;
            }
            let (running, finished) = (slot.running.clone(), self.finished.clone());
            let work = (slot.job.work)();
            let job = name.clone();
            self.tasks.spawn(async move {
                match work.await {
                    Ok(summary) => info!(%job, "{summary}"),
                    Err(error) => {
                        warn!(%job, error = %format!("{error:#}"), "job failed; it runs again at its next time")
                    }
                }
                running.store(false, Ordering::Release);
                finished.notify_waiters();
            });
            tick.started.push(name);
        }
        tick
    }

    /// Whether any job is running now.
    pub fn busy(&self) -> bool {
        self.slots.iter().any(|s| s.running.load(Ordering::Acquire))
    }

    /// Waits until no job is running.
    pub async fn idle(&self) {
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if !self.busy() {
                return;
            }
            finished.await;
        }
    }

    /// Ticks once a second until `shutdown`, then waits for running jobs to finish.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if self.slots.is_empty() {
            return;
        }
        for slot in &self.slots {
            if let Some(at) = slot.next_run {
                info!(job = %slot.job.name, first_run = %at, "scheduled");
            }
        }
        loop {
            self.tick();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
        info!("scheduled jobs stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    /// A clock the test moves by hand; clones share it.
    #[derive(Clone, Debug)]
    struct TestClock(Arc<Mutex<DateTime<Utc>>>);

    impl TestClock {
        fn new() -> Self {
            let start = "2026-11-24T15:00:30Z".parse().expect("a valid instant");
            TestClock(Arc::new(Mutex::new(start)))
        }

        fn shift(&self, by: chrono::Duration) {
            *self.0.lock().expect("not poisoned") += by;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().expect("not poisoned")
        }
    }

    fn every_minute() -> cron::Schedule {
        "0 * * * * *".parse().unwrap()
    }

    fn counting_job(runs: Arc<AtomicUsize>) -> Job {
        Job::new("count", every_minute(), move || {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok("counted".to_string())
            }
        })
    }

    #[tokio::test]
    async fn a_job_runs_only_once_its_time_has_come_on_the_clock() {
        let clock = TestClock::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut scheduler =
            Scheduler::new(Arc::new(clock.clone()), vec![counting_job(runs.clone())]);

        assert_eq!(scheduler.tick(), Tick::default());
        clock.shift(chrono::Duration::seconds(61));
        assert_eq!(scheduler.tick().started, vec!["count".to_string()]);
        scheduler.idle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            scheduler.tick(),
            Tick::default(),
            "not due again within the minute"
        );
    }

    #[tokio::test]
    async fn a_clock_jump_over_many_times_runs_the_job_once() {
        let clock = TestClock::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut scheduler =
            Scheduler::new(Arc::new(clock.clone()), vec![counting_job(runs.clone())]);

        clock.shift(chrono::Duration::hours(5));
        scheduler.tick();
        scheduler.idle().await;
        scheduler.tick();
        scheduler.idle().await;

        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(scheduler.next_run().unwrap() > clock.now());
    }

    #[tokio::test]
    async fn a_job_still_running_at_its_next_time_is_skipped_not_overlapped() {
        let clock = TestClock::new();
        let release = Arc::new(tokio::sync::Notify::new());
        let concurrent = Arc::new(AtomicUsize::new(0));
        let (gate, live) = (release.clone(), concurrent.clone());
        let slow = Job::new("slow", every_minute(), move || {
            let (gate, live) = (gate.clone(), live.clone());
            async move {
                live.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                live.fetch_sub(1, Ordering::SeqCst);
                Ok("done".to_string())
            }
        });
        let mut scheduler = Scheduler::new(Arc::new(clock.clone()), vec![slow]);

        clock.shift(chrono::Duration::seconds(61));
        assert_eq!(scheduler.tick().started, vec!["slow".to_string()]);
        clock.shift(chrono::Duration::seconds(60));
        let second = scheduler.tick();

        assert_eq!(second.skipped, vec!["slow".to_string()]);
        assert!(second.started.is_empty());
        release.notify_one();
        scheduler.idle().await;
        assert_eq!(concurrent.load(Ordering::SeqCst), 0);
        clock.shift(chrono::Duration::seconds(60));
        assert_eq!(scheduler.tick().started, vec!["slow".to_string()]);
        release.notify_one();
        scheduler.idle().await;
    }

    #[tokio::test]
    async fn a_failed_run_is_tried_again_at_the_next_time() {
        let clock = TestClock::new();
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let flaky = Job::new("flaky", every_minute(), move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    anyhow::bail!("Salesforce is down");
                }
                Ok("ok".to_string())
            }
        });
        let mut scheduler = Scheduler::new(Arc::new(clock.clone()), vec![flaky]);

        for _ in 0..2 {
            clock.shift(chrono::Duration::seconds(60));
            assert_eq!(scheduler.tick().started.len(), 1);
            scheduler.idle().await;
        }

        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }
}
