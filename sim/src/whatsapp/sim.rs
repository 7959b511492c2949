//! Starting and stopping the simulator: the HTTP server plus the webhook worker.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::WhatsAppSimConfig;
use super::number_control::{self, NewNumberSpec};
use super::numbers::SimNumber;
use super::state::SimState;
use super::webhooks::{Delivered, Take};
use super::{control, graph_api, subscriptions, webhooks};
use crate::clock::SimClock;
use crate::server::RunningServer;

/// A running WhatsApp Cloud API simulator. Dropping it stops the server; call
/// [`WhatsAppSim::stop`] to also wait for the webhook worker.
#[derive(Debug)]
pub struct WhatsAppSim {
    state: Arc<SimState>,
    /// `Option` only so `stop(self)` can take it out despite the `Drop` impl.
    server: Option<RunningServer>,
    /// Stops the webhook worker and any delivery in flight.
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// Binds `config.addr`, starts the webhook worker and serves the Graph and control APIs.
pub async fn start(config: WhatsAppSimConfig) -> anyhow::Result<WhatsAppSim> {
    let http = reqwest::Client::builder()
        // A webhook receiver that hangs must not hold deliveries forever; Meta times out too.
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the webhook HTTP client")?;
    let addr = config.addr;
    let state = Arc::new(SimState::new(config, http));
    let router = graph_api::routes(state.clone())
        .merge(control::routes())
        .merge(super::number_control::routes())
        .merge(subscriptions::control_routes())
        .merge(super::media::routes())
        .merge(super::template_listing::routes())
        .merge(super::marketing_control::routes())
        .with_state(state.clone());
    let server = RunningServer::bind(addr, router).await?;
    let stop = state.outbox.stop_token().clone();
    let tasks = TaskTracker::new();
    tasks.spawn(webhooks::run_worker(
        state.clone(),
        stop.clone(),
        tasks.clone(),
    ));
    tracing::info!(url = %server.url(), "WhatsApp simulator listening");
    Ok(WhatsAppSim {
        state,
        server: Some(server),
        stop,
        tasks,
    })
}

impl WhatsAppSim {
    /// `http://127.0.0.1:PORT`: the `api_base` to give the daemon instead of graph.facebook.com.
    pub fn url(&self) -> String {
        self.server
            .as_ref()
            .map(RunningServer::url)
            .unwrap_or_default()
    }

    /// The configuration it was started with. The webhook URL may since have changed through
    /// [`WhatsAppSim::set_webhook_url`] or the control API; [`WhatsAppSim::webhook_url`] has the current.
    pub fn config(&self) -> &WhatsAppSimConfig {
        &self.state.config
    }

    pub fn access_token(&self) -> &str {
        &self.state.config.access_token
    }

    pub fn phone_number_id(&self) -> &str {
        &self.state.config.phone_number_id
    }

    pub fn app_secret(&self) -> &str {
        &self.state.config.app_secret
    }

    pub fn verify_token(&self) -> &str {
        &self.state.config.verify_token
    }

    pub fn waba_id(&self) -> &str {
        &self.state.config.waba_id
    }

    /// The Meta app's id (its token is `{app_id}|{app_secret}`).
    pub fn app_id(&self) -> &str {
        &self.state.config.app_id
    }

    /// The BSUID of the customer with number `wa_id` in this account's portfolio (the customer is
    /// registered if new, as Meta knows every WhatsApp user): what their webhooks carry as
    /// `from_user_id` and what a send by `recipient` addresses.
    pub fn user_id_of(&self, wa_id: &str) -> String {
        let digits = wa_id.trim_start_matches('+');
        self.state.lock().customers.register(digits).user_id.clone()
    }

    /// Every business number of the account, the main one first.
    pub fn numbers(&self) -> Vec<SimNumber> {
        self.state.numbers.all()
    }

    /// Adds a business number to the account with its own throughput (`None`: the account's
    /// `throughput_per_second`), as `POST /__sim/numbers` does; its ids are made up.
    pub fn add_number(&self, throughput_per_second: Option<u32>) -> anyhow::Result<SimNumber> {
        let spec = NewNumberSpec {
            throughput_per_second,
            ..NewNumberSpec::default()
        };
        number_control::add_number(&self.state, spec).map_err(anyhow::Error::msg)
    }

    /// Makes every send from `phone_number_id` fail with Meta's `code` (368, 131031, 133010), or
    /// (`None`) lets it send again, as `PATCH /__sim/numbers/{id}` `hold_error` does.
    pub fn set_number_hold(&self, phone_number_id: &str, code: Option<u32>) -> anyhow::Result<()> {
        number_control::set_hold(&self.state, phone_number_id, code).map_err(anyhow::Error::msg)
    }

    /// Grants `phone_number_id` its own throughput (`None`: the account's again).
    pub fn set_number_throughput(
        &self,
        phone_number_id: &str,
        per_second: Option<u32>,
    ) -> anyhow::Result<()> {
        number_control::set_throughput(&self.state, phone_number_id, per_second)
            .map_err(anyhow::Error::msg)
    }

    /// The shared simulated clock.
    pub fn clock(&self) -> SimClock {
        self.state.clock.clone()
    }

    /// Where webhooks go from now on (`None`: recorded but not delivered).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.state.lock().webhook_url = url;
    }

    pub fn webhook_url(&self) -> Option<String> {
        self.state.lock().webhook_url.clone()
    }

    /// Delivers every scheduled webhook now, whatever its due time: takes them out of the outbox
    /// (the worker will not send them), POSTs them in due order as the worker would (batching,
    /// signature, duplicates, retries on non-2xx) and returns once every POST — these and any the
    /// worker had already started — has been answered. A test then sees at once what would have
    /// arrived after `delivered_after`/`read_after`, without waiting or polling.
    pub async fn deliver_webhooks_now(&self) -> Delivered {
        webhooks::deliver_now(&self.state, Take::Everything).await
    }

    /// Like [`WhatsAppSim::deliver_webhooks_now`], for the events already due only (e.g. `sent`,
    /// not a `delivered` still `delivered_after` away): the state a receiver is in once the
    /// worker has caught up.
    pub async fn deliver_due_webhooks(&self) -> Delivered {
        webhooks::deliver_now(&self.state, Take::Due).await
    }

    /// Stops serving, stops the webhook worker and waits for both.
    pub async fn stop(mut self) {
        self.stop.cancel();
        self.tasks.close();
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.tasks.wait().await;
    }
}

impl Drop for WhatsAppSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
