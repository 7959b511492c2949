//! Observability: what an operator (or Kubernetes) asks a running sfwa.
//!
//! - [`metrics`] — Prometheus metrics, one registry per [`crate::pipeline::Pipeline`]: counters
//!   and histograms recorded where things happen, gauges read from the store at scrape time.
//! - [`health`] — readiness: store, Salesforce session, intake (stream connected, or a recent
//!   successful poll).
//! - [`routes`] — `GET /metrics` and `GET /readyz`, served beside `/healthz` on the webhook port.

pub mod health;
pub mod metrics;
pub mod routes;
