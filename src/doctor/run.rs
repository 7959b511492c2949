//! The order of the checks, and what a failure earlier means for the ones after it (see the
//! module docs of [`super`]).

use std::path::Path;

use chrono::NaiveDate;

use super::flow;
use super::local::{
    check_dead_letters, check_store, check_webhook, check_webhook_rejects, DEAD_LETTERS, STORE,
    WEBHOOK,
};
use super::meta::{self, check_numbers, whatsapp_client};
use super::report::{Check, Outcome};
use super::salesforce::{
    check_channel, check_fields, check_inbound_queue, check_login, CHANNEL, FIELDS, INBOUND_QUEUE,
    LOGIN, USAGE,
};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, IntakeMode, Problem, Settings};

const CONFIGURATION: &str = "Configuration";

/// Loads `config` (file and `SFWA_*` environment, as `sfwa run` does) and runs every check.
pub async fn run(config: &Path) -> Vec<Check> {
    match Settings::load_with_problems(config) {
        Ok((settings, problems)) => {
            run_checks(&settings, problems, SystemClock.now().date_naive()).await
        }
        Err(error) => {
            let fix = match &error {
                ConfigError::Read { .. } => "check the path and that this user may read it",
                ConfigError::Syntax { .. } => "correct the TOML at the line shown",
                ConfigError::Env { .. } => "rename or unset that variable",
                ConfigError::Invalid(_) => "fix the settings named",
            };
            let mut checks = vec![Check::fail(CONFIGURATION, error.to_string(), fix)];
            for name in [
                STORE,
                LOGIN,
                FIELDS,
                CHANNEL,
                flow::FLOW,
                "WhatsApp numbers",
                meta::VERSION,
                meta::SUBSCRIBED_APPS,
                meta::SUBSCRIPTION,
                WEBHOOK,
                USAGE,
            ] {
                checks.push(Check::skipped(name, "the configuration did not load"));
            }
            checks
        }
    }
}

/// Every check against settings already loaded (validated here), dated by the system clock.
pub async fn check(settings: &Settings) -> Vec<Check> {
    check_at(settings, &SystemClock).await
}

/// [`check`] with "today" from `clock` (the Graph version's end date is judged on it).
pub async fn check_at(settings: &Settings, clock: &dyn Clock) -> Vec<Check> {
    let problems = settings.validate().err().unwrap_or_default();
    run_checks(settings, problems, clock.now().date_naive()).await
}

async fn run_checks(settings: &Settings, problems: Vec<Problem>, today: NaiveDate) -> Vec<Check> {
    let mut checks = Vec::new();
    if problems.is_empty() {
        checks.push(Check::pass(
            CONFIGURATION,
            format!("every setting valid; intake mode {}", mode_name(settings)),
        ));
    }
    for problem in &problems {
        checks.push(Check::fail(
            CONFIGURATION,
            format!("{} {}", problem.key, problem.problem),
            &problem.fix,
        ));
    }
    // A check whose settings are wrong would only repeat the configuration's complaint.
    let blocked = |prefixes: &[&str]| {
        problems
            .iter()
            .find(|p| prefixes.iter().any(|prefix| p.key.starts_with(prefix)))
            .map(|p| format!("fix {} first", p.key))
    };

    checks.push(match blocked(&["store."]) {
        Some(reason) => Check::skipped(STORE, reason),
        None => check_store(&settings.store.path).await,
    });
    checks.push(match blocked(&["store."]) {
        Some(reason) => Check::skipped(DEAD_LETTERS, reason),
        None => check_dead_letters(&settings.store.path).await,
    });
    if blocked(&["store."]).is_none() {
        checks.extend(check_webhook_rejects(&settings.store.path).await);
    }

    let salesforce = match blocked(&["salesforce."]) {
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
    let not_logged_in = "the Salesforce login failed";
    match &salesforce {
        Some(client) => {
            checks.push(check_fields(client, &settings.salesforce.message_object).await)
        }
        None => checks.push(Check::skipped(FIELDS, not_logged_in)),
    }
    checks.push(match (&salesforce, settings.intake.mode) {
        (_, IntakeMode::Poll) => {
            Check::skipped(CHANNEL, "intake.mode is poll (no platform events)")
        }
        (None, _) => Check::skipped(CHANNEL, not_logged_in),
        (Some(client), IntakeMode::Stream) => match blocked(&["intake.channel"]) {
            Some(reason) => Check::skipped(CHANNEL, reason),
            None => check_channel(client, &settings.intake.channel).await,
        },
    });

    checks.push(match &salesforce {
        None => Check::skipped(flow::FLOW, not_logged_in),
        Some(client) => flow::check_flow(client, settings.intake.mode).await,
    });
    checks.push(match &salesforce {
        None => Check::skipped(INBOUND_QUEUE, not_logged_in),
        Some(client) => check_inbound_queue(client, &settings.salesforce.inbound_queue).await,
    });

    let reachable = blocked(&[
        "whatsapp.api_base",
        "whatsapp.api_version",
        "whatsapp.access_token",
    ]);
    let mut answered_by = None;
    match reachable.clone().or(blocked(&[
        "whatsapp.default_phone_number_id",
        "whatsapp.phone_number_ids",
    ])) {
        Some(reason) => checks.push(Check::skipped("WhatsApp numbers", reason)),
        None => {
            let (number_checks, version) = check_numbers(settings).await;
            checks.extend(number_checks);
            answered_by = version;
        }
    }
    checks.push(match blocked(&["whatsapp.api_version"]) {
        Some(reason) => Check::skipped(meta::VERSION, reason),
        None => meta::version_check(
            &settings.whatsapp.api_version,
            today,
            answered_by.as_deref(),
        ),
    });
    let wa_client = whatsapp_client(settings);
    checks.push(
        match reachable
            .clone()
            .or(blocked(&["whatsapp.business_account_id"]))
        {
            Some(reason) => Check::skipped(meta::SUBSCRIBED_APPS, reason),
            None => meta::check_subscribed_apps(&wa_client, settings).await,
        },
    );
    match reachable.or(blocked(&["whatsapp.app_id", "whatsapp.app_secret"])) {
        Some(reason) => checks.push(Check::skipped(meta::SUBSCRIPTION, reason)),
        None => checks.extend(meta::check_webhook_fields(&wa_client, settings).await),
    }

    checks.push(match blocked(&["webhook."]) {
        Some(reason) => Check::skipped(WEBHOOK, reason),
        None => check_webhook(settings).await,
    });

    checks.push(match salesforce.as_ref().map(|c| c.api_usage()) {
        None => Check::skipped(USAGE, not_logged_in),
        Some(None) => Check::skipped(USAGE, "no REST call answered, so Salesforce reported none"),
        Some(Some(usage)) => {
            let share = usage.used as f64 * 100.0 / usage.max.max(1) as f64;
            let mut text = format!(
                "{} of {} calls used in the last 24 h ({share:.0}%), {} left",
                usage.used,
                usage.max,
                usage.remaining()
            );
            if share >= 80.0 {
                text.push_str(
                    "; close to the limit: prefer intake.mode = stream, or a longer \
                    intake.interval",
                );
            }
            Check::new(USAGE, Outcome::Info(text))
        }
    });
    checks
}

fn mode_name(settings: &Settings) -> &'static str {
    match settings.intake.mode {
        IntakeMode::Stream => "stream",
        IntakeMode::Poll => "poll",
    }
}
