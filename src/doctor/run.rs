//! The list of checks, in the order they run, and what a failure earlier means for the ones after
//! it (see the module docs of [`super`]). Each check is its own file in [`super::checks`].

use std::path::Path;

use chrono::NaiveDate;

use super::checks::api_usage::{check_api_usage, USAGE};
use super::checks::channel::{check_channel, CHANNEL};
use super::checks::configuration::{check_configuration, not_loaded};
use super::checks::dead_letters::{check_dead_letters, DEAD_LETTERS};
use super::checks::fields::{check_fields, FIELDS};
use super::checks::flow::{self, FLOW};
use super::checks::graph_version::{self, VERSION};
use super::checks::inbound_queue::{check_inbound_queue, INBOUND_QUEUE};
use super::checks::login::{check_login, LOGIN};
use super::checks::numbers::check_numbers;
use super::checks::store::{check_store, STORE};
use super::checks::subscribed_apps::{check_subscribed_apps, SUBSCRIBED_APPS};
use super::checks::template_catalog;
use super::checks::webhook_fields::{check_webhook_fields, SUBSCRIPTION};
use super::checks::webhook_listener::{check_webhook, WEBHOOK};
use super::checks::webhook_rejects::check_webhook_rejects;
use super::clients::whatsapp_client;
use super::report::Check;
use crate::clock::{Clock, SystemClock};
use crate::config::{IntakeMode, Problem, Settings};
use crate::salesforce::SalesforceClient;

const NUMBERS: &str = "WhatsApp numbers";
const NOT_LOGGED_IN: &str = "the Salesforce login failed";

/// Loads `config` (file and `SFWA_*` environment, as `sfwa run` does) and runs every check.
pub async fn run(config: &Path) -> Vec<Check> {
    match Settings::load_with_problems(config) {
        Ok((settings, problems)) => run_checks(&settings, problems, SystemClock.now()).await,
        Err(error) => not_loaded(
            &error,
            &[
                STORE,
                LOGIN,
                FIELDS,
                CHANNEL,
                FLOW,
                NUMBERS,
                VERSION,
                SUBSCRIBED_APPS,
                SUBSCRIPTION,
                WEBHOOK,
                USAGE,
            ],
        ),
    }
}

/// Every check against settings already loaded (validated here), dated by the system clock.
pub async fn check(settings: &Settings) -> Vec<Check> {
    check_at(settings, &SystemClock).await
}

/// [`check`] with "today" from `clock` (the Graph version's end date is judged on it).
pub async fn check_at(settings: &Settings, clock: &dyn Clock) -> Vec<Check> {
    let problems = settings.validate().err().unwrap_or_default();
    run_checks(settings, problems, clock.now()).await
}

/// The configuration's problems, asked by the checks they would make pointless: a check whose
/// settings are wrong would only repeat the configuration's complaint.
struct Blocked(Vec<Problem>);

impl Blocked {
    /// "fix {key} first" for the first problem with a key starting with one of `prefixes`.
    fn by(&self, prefixes: &[&str]) -> Option<String> {
        self.0
            .iter()
            .find(|p| prefixes.iter().any(|prefix| p.key.starts_with(prefix)))
            .map(|p| format!("fix {} first", p.key))
    }
}

async fn run_checks(
    settings: &Settings,
    problems: Vec<Problem>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Check> {
    let mut checks = check_configuration(settings, &problems);
    let blocked = Blocked(problems);
    store_checks(settings, &blocked, &mut checks).await;
    let salesforce = salesforce_checks(settings, &blocked, &mut checks).await;
    if let Some(client) = &salesforce {
        checks.push(super::checks::leases::check_leases(client, settings, now).await);
    }
    meta_checks(settings, &blocked, now.date_naive(), &mut checks).await;
    checks.push(match blocked.by(&["webhook."]) {
        Some(reason) => Check::skipped(WEBHOOK, reason),
        None => check_webhook(settings).await,
    });
    checks.push(check_api_usage(salesforce.as_ref()));
    checks
}

/// The store, its dead letters and its refused webhook events.
async fn store_checks(settings: &Settings, blocked: &Blocked, checks: &mut Vec<Check>) {
    let path = &settings.store.path;
    match blocked.by(&["store."]) {
        Some(reason) => {
            checks.push(Check::skipped(STORE, reason.clone()));
            checks.push(Check::skipped(DEAD_LETTERS, reason));
        }
        None => {
            checks.push(check_store(path).await);
            checks.push(check_dead_letters(path).await);
            checks.extend(check_webhook_rejects(path).await);
        }
    }
}

/// The login, then what needs it; returns the logged-in client for the API usage line.
async fn salesforce_checks(
    settings: &Settings,
    blocked: &Blocked,
    checks: &mut Vec<Check>,
) -> Option<SalesforceClient> {
    let salesforce = match blocked.by(&["salesforce."]) {
        Some(reason) => {
            checks.push(Check::skipped(LOGIN, reason));
            None
        }
        None => {
            let (check, client) = check_login(settings).await;
            checks.push(check);
            client
        }
    };
    let Some(client) = &salesforce else {
        for name in [FIELDS, CHANNEL, FLOW, INBOUND_QUEUE] {
            checks.push(match (name, settings.intake.mode) {
                (CHANNEL, IntakeMode::Poll) => poll_skips_channel(),
                _ => Check::skipped(name, NOT_LOGGED_IN),
            });
        }
        return None;
    };
    checks.push(check_fields(client, &settings.salesforce.message_object).await);
    checks.push(
        match (settings.intake.mode, blocked.by(&["intake.channel"])) {
            (IntakeMode::Poll, _) => poll_skips_channel(),
            (IntakeMode::Stream, Some(reason)) => Check::skipped(CHANNEL, reason),
            (IntakeMode::Stream, None) => check_channel(client, &settings.intake.channel).await,
        },
    );
    checks.push(flow::check_flow(client, settings.intake.mode).await);
    checks.push(check_inbound_queue(client, &settings.salesforce.inbound_queue).await);
    checks.push(super::checks::user_id_fields::check_user_id_fields(client).await);
    salesforce
}

fn poll_skips_channel() -> Check {
    Check::skipped(CHANNEL, "intake.mode is poll (no platform events)")
}

/// Each number, the Graph version (against the one Meta answered as), the account's subscribed
/// apps and the app's webhook fields.
async fn meta_checks(
    settings: &Settings,
    blocked: &Blocked,
    today: NaiveDate,
    checks: &mut Vec<Check>,
) {
    let reachable = blocked.by(&[
        "whatsapp.api_base",
        "whatsapp.api_version",
        "whatsapp.access_token",
    ]);
    let mut answered_by = None;
    let numbers = blocked.by(&[
        "whatsapp.default_phone_number_id",
        "whatsapp.phone_number_ids",
    ]);
    match reachable.clone().or(numbers) {
        Some(reason) => checks.push(Check::skipped(NUMBERS, reason)),
        None => {
            let (number_checks, version) = check_numbers(settings).await;
            checks.extend(number_checks);
            answered_by = version;
        }
    }
    checks.push(match blocked.by(&["whatsapp.api_version"]) {
        Some(reason) => Check::skipped(VERSION, reason),
        None => graph_version::version_check(
            &settings.whatsapp.api_version,
            today,
            answered_by.as_deref(),
        ),
    });
    let wa_client = whatsapp_client(settings);
    checks.push(
        match reachable
            .clone()
            .or(blocked.by(&["whatsapp.business_account_id"]))
        {
            Some(reason) => Check::skipped(SUBSCRIBED_APPS, reason),
            None => check_subscribed_apps(&wa_client, settings).await,
        },
    );
    checks.push(match reachable.clone() {
        Some(reason) => Check::skipped(template_catalog::TEMPLATE_CATALOG, reason),
        None => template_catalog::check_template_catalog(&wa_client, settings).await,
    });
    match reachable.or(blocked.by(&["whatsapp.app_id", "whatsapp.app_secret"])) {
        Some(reason) => checks.push(Check::skipped(SUBSCRIPTION, reason)),
        None => checks.extend(check_webhook_fields(&wa_client, settings).await),
    }
}
