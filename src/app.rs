//! Wiring: [`App::build`] turns settings into clients, the store, the pipeline and two bound
//! listeners — Meta's webhooks (`webhook.listen`, serving `webhook.path` alone) and the observe
//! listener (`observe.listen`: `/metrics`, `/healthz`, `/readyz`), so the public port exposes
//! nothing but the webhook. [`App::run_until_stopped`] starts serving both, takes the business
//! number leases (refusing to start when another instance holds one, `pipeline::lease`; webhooks
//! are stored meanwhile, so a Salesforce outage at start never refuses Meta), runs the workers
//! until the token is cancelled, then shuts down in order: intake stops, in-flight sends finish
//! (they are journaled either way), the outbox is flushed, the leases are released, the servers
//! stop last (so statuses arriving meanwhile are still stored).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::clock::SharedClock;
use crate::config::{parse_schedule, AuthMode, IntakeMode, Settings};
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;
use crate::observe::routes::Probed;
use crate::pipeline::report::{Reporter, Reporters, Silent};
use crate::pipeline::{jobs, lease, stream, worker, Core, Dispatcher, Pipeline};
use crate::salesforce::{Auth, SalesforceClient, SalesforceConfig};
use crate::scheduler::{Job, Scheduler};
use crate::store::{Linger, Store};
use crate::whatsapp::{SendConnections, WhatsAppClient, WhatsAppConfig};

pub struct App {
    pipeline: Pipeline,
    /// The pipeline's observers, read by `/metrics` and `/readyz`.
    metrics: Metrics,
    health: Arc<Health>,
    listener: TcpListener,
    /// `/metrics`, `/healthz`, `/readyz`.
    observe_listener: TcpListener,
}

impl App {
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<App> {
        let listen = settings.webhook.listen;
        let observe = settings.observe.listen;
        let metrics = Metrics::new(settings.intake.mode == IntakeMode::Stream);
        metrics.started(clock.now());
        let health = Arc::new(Health::new());
        let observers: Vec<Arc<dyn Reporter>> = vec![Arc::new(metrics.clone()), health.clone()];
        let pipeline = build_pipeline_reporting(settings, clock, Arc::new(Reporters(observers)))?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("webhook.listen: cannot listen on {listen}"))?;
        let observe_listener = TcpListener::bind(observe)
            .await
            .with_context(|| format!("observe.listen: cannot listen on {observe}"))?;
        Ok(App {
            pipeline,
            metrics,
            health,
            listener,
            observe_listener,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The metrics the pipeline records into (what `/metrics` renders).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn webhook_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn observe_addr(&self) -> SocketAddr {
        self.observe_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The observe listener's state (what the platform-event reading is kept in).
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The URL to register with Meta (here: loopback address and the configured path).
    pub fn webhook_url(&self) -> String {
        format!(
            "http://{}{}",
            self.webhook_addr(),
            self.pipeline.core.settings.webhook.path
        )
    }

    /// Serves the webhook receiver and the observe routes until `stop`, without the workers
    /// (tests drive the workers' steps themselves). The task ends when both servers have.
    pub fn spawn_webhook_server(
        self,
        stop: CancellationToken,
    ) -> (Pipeline, tokio::task::JoinHandle<std::io::Result<()>>) {
        let App {
            pipeline,
            metrics,
            health,
            listener,
            observe_listener,
        } = self;
        let probed = Probed {
            pipeline: pipeline.clone(),
            metrics,
            health,
        };
        let webhook = crate::webhook::server::router(pipeline.core.clone());
        let observe = crate::observe::routes::routes(probed);
        let observe_stop = stop.clone();
        let server = tokio::spawn(async move {
            let webhook = crate::webhook::listener::serve(
                listener,
                webhook,
                crate::webhook::listener::LIMITS,
                stop,
            );
            let observe = axum::serve(observe_listener, observe)
                .with_graceful_shutdown(async move { observe_stop.cancelled().await });
            let (_, observed) = tokio::join!(webhook, async move { observe.await });
            observed
        });
        (pipeline, server)
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        info!(webhook = %self.webhook_addr(), observe = %self.observe_addr(), "sfwa running");
        let health = self.health.clone();
        let server_stop = CancellationToken::new();
        let (pipeline, server) = self.spawn_webhook_server(server_stop.clone());
        // Before anything is sent: a number another instance serves stops us here.
        let leases = match lease::acquire_when_reachable(&pipeline, &shutdown).await {
            Ok(Some(leases)) => leases,
            refused_or_stopped => {
                // What Meta sent meanwhile is stored; its write-backs go before we stop.
                worker::final_flush(&pipeline.write_back).await;
                server_stop.cancel();
                server.await.context("webhook server task")??;
                refused_or_stopped?;
                return Ok(());
            }
        };
        warn_if_graph_version_ends(&pipeline.core);
        let workers = TaskTracker::new();
        match pipeline.core.settings.intake.mode {
            IntakeMode::Stream => {
                workers.spawn(stream::run_stream(pipeline.clone(), shutdown.clone()));
                workers.spawn(stream::run_retries(pipeline.clone(), shutdown.clone()));
            }
            IntakeMode::Poll => {
                workers.spawn(worker::run_dispatch(pipeline.clone(), shutdown.clone()));
            }
        }
        workers.spawn(worker::run_writeback(
            pipeline.write_back.clone(),
            shutdown.clone(),
        ));
        workers.spawn(read_throughput_levels(pipeline.dispatcher.clone()));
        workers.spawn(crate::pipeline::catalog_sync::sync_at_start(
            pipeline.dispatcher.clone(),
        ));
        if pipeline.core.settings.intake.mode == IntakeMode::Stream {
            workers.spawn(crate::observe::limits::run_limits(
                pipeline.clone(),
                health,
                shutdown.clone(),
            ));
        }
        workers.spawn(crate::pipeline::media::run_media(
            pipeline.clone(),
            shutdown.clone(),
        ));
        workers.spawn(lease::run_leases(
            leases.clone(),
            pipeline.dispatcher.clone(),
            shutdown.clone(),
        ));
        workers.spawn(crate::pipeline::unknown_numbers::run_unknown_numbers(
            pipeline.clone(),
            shutdown.clone(),
        ));
        let scheduler = Scheduler::new(pipeline.core.clock.clone(), scheduled_jobs(&pipeline)?);
        workers.spawn(scheduler.run(shutdown.clone()));
        workers.close();
        shutdown.cancelled().await;
        info!("shutting down: stopping intake, finishing sends");
        workers.wait().await;
        worker::final_flush(&pipeline.write_back).await;
        // The sends have finished: the next instance may take the numbers now.
        leases.release(pipeline.core.now()).await;
        server_stop.cancel();
        server
            .await
            .context("webhook server task")?
            .context("webhook server")?;
        info!("stopped");
        Ok(())
    }
}

/// One warning at start-up when `whatsapp.api_version` ends within 90 days or has ended (the
/// decision: [`crate::whatsapp::versions::startup_warning`], on the injected clock).
pub fn warn_if_graph_version_ends(core: &Core) {
    let version = &core.settings.whatsapp.api_version;
    if let Some(warning) =
        crate::whatsapp::versions::startup_warning(version, core.now().date_naive())
    {
        tracing::warn!(api_version = %version, "{warning}");
    }
}

/// Primes each business number's pace: the rate Meta's refusals taught the previous run (if
/// recent), then Meta's throughput level as a cap (a hint only: refusals still decide, see
/// `pipeline::pacing`). Warns when `whatsapp.throughput_per_second` (or the number's
/// `throughput_per_number`) is higher. A number Meta does not answer for keeps the configured pace.
pub async fn read_throughput_levels(dispatcher: Dispatcher) {
    let whatsapp = &dispatcher.core.settings.whatsapp;
    for number in dispatcher.core.settings.business_numbers() {
        let configured = whatsapp
            .throughput_per_number
            .get(&number)
            .copied()
            .unwrap_or(whatsapp.throughput_per_second);
        resume_learned_pace(&dispatcher, &number).await;
        match dispatcher.whatsapp.phone_number(&number).await {
            Ok(info) => {
                let Some(rate) = info.throughput_per_second() else {
                    continue;
                };
                dispatcher.pacer.set_level(&number, rate);
                let level = info.throughput_level().unwrap_or("?");
                if configured > rate {
                    tracing::warn!(number, level, "the configured throughput is {configured} but the number's throughput level allows {rate} messages a second; pacing at {rate}/s");
                } else {
                    info!(number, level, "throughput level read");
                }
            }
            Err(error) => {
                tracing::warn!(number, %error, "could not read the number's throughput level; pacing at whatsapp.throughput_per_second")
            }
        }
    }
}

/// Starts `number` at the rate Meta's refusals taught the previous run, if that was recent (see
/// `pipeline::pacing::pace_cursor`).
async fn resume_learned_pace(dispatcher: &Dispatcher, number: &str) {
    let name = crate::pipeline::pacing::pace_cursor(number);
    let stored = dispatcher
        .core
        .store
        .read(move |conn| {
            Ok((
                crate::store::cursors::get(conn, &name)?,
                crate::store::cursors::updated_at(conn, &name)?,
            ))
        })
        .await;
    let Ok((Some(rate), Some(at))) = stored else {
        return;
    };
    if dispatcher.now() - at > crate::pipeline::pacing::LEARNED_PACE_KEPT {
        return;
    }
    if let Ok(rate) = rate.parse::<f64>() {
        dispatcher.pacer.resume_learned(number, rate);
        info!(number, rate, "resuming the pace learned before the restart");
    }
}

/// The clients, the store and the pipeline, without the webhook listener (`sfwa sync` runs beside
/// a `sfwa run` that holds the port).
pub fn build_pipeline(settings: Settings, clock: SharedClock) -> anyhow::Result<Pipeline> {
    build_pipeline_reporting(settings, clock, Arc::new(Silent))
}

/// [`build_pipeline`], reporting to `reporter`.
fn build_pipeline_reporting(
    settings: Settings,
    clock: SharedClock,
    reporter: Arc<dyn Reporter>,
) -> anyhow::Result<Pipeline> {
    let settings = Arc::new(settings);
    // Salesforce and the occasional Graph calls stay on HTTP/1.1; sends go over their own
    // connections, HTTP/2 where Meta speaks it (`whatsapp::connections`).
    let http = reqwest::Client::builder()
        .user_agent(concat!("sfwa/", env!("CARGO_PKG_VERSION")))
        .http1_only()
        .build()
        .context("building the HTTP client")?;
    let sends = SendConnections::new(settings.whatsapp.http2)
        .context("building the HTTP client for sends")?;
    let salesforce = SalesforceClient::new(http.clone(), salesforce_config(&settings)?)
        .context("setting up the Salesforce client")?;
    let whatsapp = WhatsAppClient::new(
        http,
        WhatsAppConfig {
            api_base: settings.whatsapp.api_base.clone(),
            api_version: settings.whatsapp.api_version.clone(),
            access_token: settings.whatsapp.access_token.expose().to_string(),
            timeout: settings.whatsapp.timeout,
        },
    )
    .with_send_connections(Arc::new(sends));
    let linger = Linger {
        always: settings.store.commit_linger,
        backlog: settings.store.backlog_commit_linger,
    };
    let store = Store::open_lingering(&settings.store.path, linger)
        .with_context(|| format!("opening the store at {}", settings.store.path.display()))?;
    Ok(Pipeline::new(
        settings, clock, store, salesforce, whatsapp, reporter,
    ))
}

/// The scheduled jobs `[schedule]` turns on. Reconcile and scheduled sends only make sense beside
/// the stream: a poll already finds every due record.
pub fn scheduled_jobs(pipeline: &Pipeline) -> anyhow::Result<Vec<Job>> {
    let settings = &pipeline.core.settings;
    let streaming = settings.intake.mode == IntakeMode::Stream;
    let mut jobs = Vec::new();
    for (name, expression) in settings.schedule.jobs() {
        let Some(schedule) = parse_schedule(expression)
            .with_context(|| format!("schedule.{name}: {expression:?} is not a cron expression"))?
        else {
            continue;
        };
        let p = pipeline.clone();
        let job = match name {
            "reconcile" if streaming => Job::new(name, schedule, move || {
                let p = p.clone();
                async move { Ok(jobs::reconcile(&p).await?.to_string()) }
            }),
            "scheduled_sends" if streaming => Job::new(name, schedule, move || {
                let p = p.clone();
                async move { Ok(jobs::scheduled_sends(&p).await?.to_string()) }
            }),
            "inbound_mirror" => Job::new(name, schedule, move || {
                let p = p.clone();
                async move { Ok(jobs::inbound_mirror(&p.intake).await?.to_string()) }
            }),
            "relink" => Job::new(name, schedule, move || {
                let p = p.clone();
                async move {
                    Ok(crate::pipeline::relink::relink(&p.write_back)
                        .await?
                        .to_string())
                }
            }),
            "retention" => Job::new(name, schedule, move || {
                let p = p.clone();
                async move { Ok(jobs::retention(&p.core).await?.to_string()) }
            }),
            // The catalog is the account's: without one there is nothing to list.
            "template_catalog" if !settings.whatsapp.business_account_id.trim().is_empty() => {
                Job::new(name, schedule, move || {
                    let p = p.clone();
                    async move {
                        Ok(crate::pipeline::catalog_sync::sync(&p.dispatcher)
                            .await?
                            .to_string())
                    }
                })
            }
            _ => continue,
        };
        jobs.push(job);
    }
    Ok(jobs)
}

/// The Salesforce client's settings (the JWT key read from `private_key_path`).
pub fn salesforce_config(settings: &Settings) -> anyhow::Result<SalesforceConfig> {
    let sf = &settings.salesforce;
    let auth = match sf.auth {
        AuthMode::Jwt => {
            let path = sf
                .private_key_path
                .as_ref()
                .context("salesforce.private_key_path is not set")?;
            Auth::JwtBearer {
                client_id: sf.client_id.clone(),
                username: sf.username.clone(),
                private_key_pem: std::fs::read_to_string(path).with_context(|| {
                    format!("salesforce.private_key_path: reading {}", path.display())
                })?,
                audience: sf.jwt_audience(),
            }
        }
        AuthMode::ClientCredentials => Auth::ClientCredentials {
            client_id: sf.client_id.clone(),
            client_secret: sf.client_secret.expose().to_string(),
        },
        AuthMode::RefreshToken => Auth::RefreshToken {
            client_id: sf.client_id.clone(),
            client_secret: (!sf.client_secret.is_empty())
                .then(|| sf.client_secret.expose().to_string()),
            refresh_token: sf.refresh_token.expose().to_string(),
        },
    };
    Ok(SalesforceConfig {
        login_url: sf.login_url.clone(),
        api_version: sf.api_version.clone(),
        auth,
        timeout: sf.timeout,
    })
}
