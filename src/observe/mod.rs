//! Observability: what an operator (or Kubernetes, or Prometheus) asks a running sfwa, on its own
//! listener (`observe.listen`, default 127.0.0.1:9464) apart from Meta's public webhook port.
//!
//! - [`metrics`] — Prometheus metrics, one registry per running daemon (`app` makes it): counters
//!   and histograms recorded where things happen, gauges read from the store at scrape time.
//! - [`health`] — the intake's state as the workers report it (stream connected, last poll), and
//!   the org's platform-event allocation as [`limits`] read it.
//! - [`limits`] — `DailyDeliveredPlatformEvents` from Salesforce's `GET limits`, on a slow timer.
//! - [`readiness`] — readiness: the store accepts writes (what routing Meta's webhooks needs);
//!   Salesforce session, intake and held numbers reported beside it.
//! - [`routes`] — `GET /metrics`, `GET /healthz` and `GET /readyz`.
//! - [`healthcheck`] — `sfwa healthcheck`: the client side of `/healthz`, for the image's
//!   `HEALTHCHECK` (the slim image has no curl) and `sfwa doctor`.
//!
//! [`metrics::Metrics`] and [`health::Health`] are the pipeline's observers: they implement
//! `pipeline::report::Reporter` (the pipeline's own vocabulary of what it reports), and
//! `app` passes them in; [`readiness`] and [`routes`] read the pipeline. So `observe → pipeline`
//! is the only direction: nothing below `observe` imports it.

pub mod health;
pub mod healthcheck;
pub mod limits;
pub mod metrics;
pub mod readiness;
pub mod routes;
