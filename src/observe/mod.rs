//! Observability: what an operator (or Kubernetes) asks a running sfwa.
//!
//! - [`metrics`] — Prometheus metrics, one registry per running daemon (`app` makes it): counters
//!   and histograms recorded where things happen, gauges read from the store at scrape time.
//! - [`health`] — the intake's state as the workers report it (stream connected, last poll).
//! - [`readiness`] — readiness: store, Salesforce session, intake (stream connected, or a recent
//!   successful poll).
//! - [`routes`] — `GET /metrics` and `GET /readyz`, served beside `/healthz` on the webhook port.
//!
//! [`metrics::Metrics`] and [`health::Health`] are the pipeline's observers: they implement
//! `pipeline::report::Reporter` (the pipeline's own vocabulary of what it reports), and
//! `app` passes them in; [`readiness`] and [`routes`] read the pipeline. So `observe → pipeline`
//! is the only direction: nothing below `observe` imports it.

pub mod health;
pub mod metrics;
pub mod readiness;
pub mod routes;
