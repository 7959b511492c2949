//! Progress where people wait: a spinner with counts on stderr while `sfwa sync` drains Queued
//! records and flushes write-backs, and while the daemon drains a backlog in poll mode.
//!
//! The pipeline reports to a [`Progress`] (every method defaults to doing nothing, and [`Silent`]
//! is the observer tests and scheduled jobs use), so the step functions keep their shape.
//! [`Spinner`] is the terminal observer. It draws only after the binary called
//! [`show_on_terminal`] and only while stderr is a terminal: tests, CI, pipes, journald and
//! Kubernetes logs never see it.
//!
//! Log lines and the spinner share stderr. [`log_writer`] is the `tracing` writer that clears the
//! spinner, writes the line and redraws it below, so neither garbles the other.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Set once by the binary for a person at a terminal with human-readable logs.
static SHOW: AtomicBool = AtomicBool::new(false);

/// The spinner on screen, if any, so log lines can be written around it.
static ON_SCREEN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Lets spinners draw on stderr when it is a terminal. Only the `sfwa` binary calls this (and
/// not with machine-readable logs); without it every [`Spinner`] stays hidden.
pub fn show_on_terminal() {
    SHOW.store(true, Ordering::Relaxed);
}

/// Told how far a long pass got. Calls are cheap; implementations must not block.
pub trait Progress: Send + Sync {
    /// Queued records a poll returned.
    fn fetched(&self, _records: usize) {}
    /// Records whose dispatch ended (sent, failed, or waiting for a retry).
    fn dispatched(&self, _records: usize) {}
    /// Records Salesforce confirmed in a write-back.
    fn written(&self, _records: usize) {}
    /// What is going on now, in a few words.
    fn phase(&self, _what: &str) {}
}

/// Reports nowhere.
pub struct Silent;

impl Progress for Silent {}

/// A spinner on stderr: `⠙ sfwa sync: 400 fetched, 400 handled, 200 written · writing back [3s]`.
pub struct Spinner {
    bar: ProgressBar,
    fetched: AtomicUsize,
    dispatched: AtomicUsize,
    written: AtomicUsize,
    phase: Mutex<String>,
}

impl Spinner {
    /// Starts a spinner titled `title`; hidden unless [`show_on_terminal`] was called and stderr
    /// is a terminal.
    pub fn start(title: &str) -> Spinner {
        let visible = SHOW.load(Ordering::Relaxed) && std::io::stderr().is_terminal();
        let bar = if visible {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(title.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            *lock(&ON_SCREEN) = Some(bar.clone());
            bar
        } else {
            ProgressBar::hidden()
        };
        Spinner {
            bar,
            fetched: AtomicUsize::new(0),
            dispatched: AtomicUsize::new(0),
            written: AtomicUsize::new(0),
            phase: Mutex::new("starting".into()),
        }
    }

    fn redraw(&self) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.set_message(format!(
            "{} fetched, {} handled, {} written · {}",
            self.fetched.load(Ordering::Relaxed),
            self.dispatched.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
            lock(&self.phase)
        ));
    }
}

impl Progress for Spinner {
    fn fetched(&self, records: usize) {
        self.fetched.fetch_add(records, Ordering::Relaxed);
        self.redraw();
    }

    fn dispatched(&self, records: usize) {
        self.dispatched.fetch_add(records, Ordering::Relaxed);
        self.redraw();
    }

    fn written(&self, records: usize) {
        self.written.fetch_add(records, Ordering::Relaxed);
        self.redraw();
    }

    fn phase(&self, what: &str) {
        *lock(&self.phase) = what.to_string();
        self.redraw();
    }
}

/// Gone from the screen when dropped: the summary or the next log line takes its place.
impl Drop for Spinner {
    fn drop(&mut self) {
        if !self.bar.is_hidden() {
            self.bar.finish_and_clear();
            *lock(&ON_SCREEN) = None;
        }
    }
}

/// The `tracing` writer for stderr: writes around a spinner on screen.
pub fn log_writer() -> LogWriter {
    LogWriter
}

pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Cloned out so the lock is not held while writing.
        let on_screen = lock(&ON_SCREEN).clone();
        match on_screen {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let on_screen = lock(&ON_SCREEN).clone();
        match on_screen {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A poisoned lock only means a panic elsewhere mid-update of plain data.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinner_stays_hidden_unless_the_binary_asked_for_it() {
        let spinner = Spinner::start("test");
        spinner.fetched(200);
        spinner.phase("writing back");

        assert!(spinner.bar.is_hidden());
        assert!(lock(&ON_SCREEN).is_none());
        assert_eq!(spinner.fetched.load(Ordering::Relaxed), 200);
    }
}
