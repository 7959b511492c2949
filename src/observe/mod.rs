//! Observability: what an operator (or Kubernetes) asks a running sfwa.
//!
//! - [`metrics`] — Prometheus metrics, one registry per [`crate::pipeline::Pipeline`]: counters
//!   and histograms recorded where things happen, gauges read from the store at scrape time.
//! - [`health`] — the intake's state as the workers report it (stream connected, last poll).
//! - [`readiness`] — readiness: store, Salesforce session, intake (stream connected, or a recent
//!   successful poll).
//! - [`routes`] — `GET /metrics` and `GET /readyz`, served beside `/healthz` on the webhook port.
//!
//! The pipeline records into [`metrics::Metrics`] and [`health::Health`], which import nothing from
//! it (the pipeline tells the metrics its outcomes in their own vocabulary,
//! [`metrics::Dispatched`]); [`readiness`] and [`routes`] read the pipeline. So no file here and
//! no file of the pipeline import each other in a circle.

pub mod health;
pub mod metrics;
pub mod readiness;
pub mod routes;
