//! [`Settings::validate`]: every problem at once, each naming its key, what is wrong and the fix —
//! in a fixed order (the Salesforce keys, then WhatsApp's, then timings, schedules and retention).

use std::time::Duration;

use super::{parse_schedule, AuthMode, Problem, SalesforceSettings, Settings, WhatsAppSettings};

/// The longest `store.commit_linger` (and `store.backlog_commit_linger`) accepted: beyond it the wait is felt in every answer.
const MAX_COMMIT_LINGER: Duration = Duration::from_millis(100);

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem with `key` unless `ok`.
    fn need(&mut self, ok: bool, key: &str, problem: &str, fix: &str) {
        if !ok {
            self.0.push(Problem {
                key: key.into(),
                problem: problem.into(),
                fix: fix.into(),
            });
        }
    }
}

impl Settings {
    /// Every problem at once, each naming its key and the fix.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Problems::default();
        salesforce(&self.salesforce, &mut problems);
        salesforce_auth(&self.salesforce, &mut problems);
        whatsapp(&self.whatsapp, &mut problems);
        templates(&self.templates, &mut problems);
        timings(self, &mut problems);
        schedules_and_retention(self, &mut problems);
        webhook_forward(self, &mut problems);
        reengage(self, &mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(problems.0)
        }
    }
}

/// Re-engagement: a wait that ends, and defaults that name a template.
fn reengage(settings: &Settings, p: &mut Problems) {
    let reengage = &settings.reengage;
    p.need(
        !reengage.expiry.is_zero(),
        "reengage.expiry",
        "is zero",
        "set how long a message waits for the customer's reply, e.g. \"7d\"",
    );
    for (number, default) in &reengage.defaults {
        p.need(
            !default.template.trim().is_empty() && !default.language.trim().is_empty(),
            &format!("reengage.defaults.{number}"),
            "names no template or language",
            "set template = \"<approved template name>\" and language = \"en_US\" (or remove the entry)",
        );
    }
}

/// The login URL, the External Client App, the inbound queue and the API version.
fn salesforce(sf: &SalesforceSettings, p: &mut Problems) {
    p.need(
        is_http_url(&sf.login_url),
        "salesforce.login_url",
        "is not an http(s) URL",
        "use https://login.salesforce.com, https://test.salesforce.com or your My Domain URL",
    );
    p.need(!sf.client_id.trim().is_empty(), "salesforce.client_id", "is empty",
            "copy the consumer key of the External Client App (Setup → External Client App Manager → sfwa (WhatsApp) → Settings → OAuth Settings → Consumer Key and Secret)");
    p.need(
            sf.inbound_queue
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "salesforce.inbound_queue",
            "is not a queue's API name (letters, digits and underscores)",
            "write the queue's DeveloperName (Setup → Queues → the queue's API name), e.g. \"WhatsApp_Inbound\", or \"\" to leave inbound records with the integration user",
        );
    p.need(
        is_version(&sf.api_version, false),
        "salesforce.api_version",
        "is not a version like 67.0",
        "write e.g. \"67.0\"",
    );
}

/// What the configured OAuth grant needs.
fn salesforce_auth(sf: &SalesforceSettings, p: &mut Problems) {
    match sf.auth {
        AuthMode::Jwt => {
            p.need(
                !sf.username.trim().is_empty(),
                "salesforce.username",
                "is empty (needed for auth = \"jwt\")",
                "set the integration user's username",
            );
            match &sf.private_key_path {
                    None => p.need(false, "salesforce.private_key_path", "is not set (needed for auth = \"jwt\")",
                        "point it at the PEM private key whose certificate is uploaded to the External Client App"),
                    Some(path) => {
                        let pem = std::fs::read_to_string(path).unwrap_or_default();
                        p.need(pem.contains("PRIVATE KEY-----"), "salesforce.private_key_path",
                            &format!("{} is missing or not a PEM private key", path.display()),
                            "check the path and that the file starts with -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY)");
                    }
                }
        }
        AuthMode::ClientCredentials => {
            p.need(
                !sf.client_secret.is_empty(),
                "salesforce.client_secret",
                "is empty (needed for auth = \"client_credentials\")",
                "set it, or client_secret_file, to the External Client App's consumer secret",
            );
            p.need(
                !sf.login_url.contains("login.salesforce.com")
                    && !sf.login_url.contains("test.salesforce.com"),
                "salesforce.login_url",
                "is a shared login host, which refuses the client credentials flow",
                "use your My Domain URL, e.g. https://acme.my.salesforce.com",
            );
        }
        AuthMode::RefreshToken => {
            p.need(
                !sf.refresh_token.is_empty(),
                "salesforce.refresh_token",
                "is empty (needed for auth = \"refresh_token\")",
                "set it, or refresh_token_file, to a refresh token issued to the integration user",
            );
        }
    }
}

/// `[templates]`: the per-number keys are phone_number_ids.
fn templates(t: &super::types::TemplateSettings, p: &mut Problems) {
    for number in t.wait_when_paused_per_number.keys() {
        p.need(
            is_digits(number),
            "templates.wait_when_paused_per_number",
            &format!("names {number:?}, not a phone_number_id"),
            "use the number's phone_number_id (digits) as the key",
        );
    }
}

fn whatsapp(wa: &WhatsAppSettings, p: &mut Problems) {
    p.need(
        is_http_url(&wa.api_base),
        "whatsapp.api_base",
        "is not an http(s) URL",
        "use https://graph.facebook.com",
    );
    p.need(
        is_version(&wa.api_version, true),
        "whatsapp.api_version",
        "is not a Graph version like v25.0",
        "write e.g. \"v25.0\"",
    );
    p.need(
            wa.business_account_id.is_empty() || is_digits(&wa.business_account_id),
            "whatsapp.business_account_id",
            "is not a WhatsApp Business Account id (digits)",
            "copy the WhatsApp Business Account ID from WhatsApp Manager → API setup, or leave it empty",
        );
    p.need(
        wa.app_id.is_empty() || is_digits(&wa.app_id),
        "whatsapp.app_id",
        "is not a Meta app id (digits)",
        "copy the App ID from the App Dashboard → App settings → Basic, or leave it empty",
    );
    p.need(!wa.access_token.is_empty(), "whatsapp.access_token", "is empty",
            "set it, or access_token_file, to a system-user access token with whatsapp_business_messaging");
    p.need(
        is_digits(&wa.default_phone_number_id),
        "whatsapp.default_phone_number_id",
        "is not a phone_number_id (digits)",
        "copy the phone number ID from WhatsApp Manager → API setup",
    );
    for (i, id) in wa.phone_number_ids.iter().enumerate() {
        p.need(
            is_digits(id),
            &format!("whatsapp.phone_number_ids[{i}]"),
            "is not a phone_number_id (digits)",
            "remove it or fix the digits",
        );
    }
    p.need(
        !wa.app_secret.is_empty(),
        "whatsapp.app_secret",
        "is empty (webhook signatures cannot be checked)",
        "set it, or app_secret_file, to the Meta app's secret (App settings → Basic)",
    );
    p.need(
        !wa.verify_token.is_empty(),
        "whatsapp.verify_token",
        "is empty",
        "choose any random string and enter the same one when registering the webhook with Meta",
    );
    p.need(
        (1..=1000).contains(&wa.throughput_per_second),
        "whatsapp.throughput_per_second",
        "must be between 1 and 1000",
        "use 80 (Meta's default) unless Meta raised your number's limit",
    );
    for (number, rate) in &wa.throughput_per_number {
        p.need(
            (1..=1000).contains(rate),
            "whatsapp.throughput_per_number",
            &format!("gives {number} {rate}, not between 1 and 1000"),
            "give each number Meta's limit for it (80 by default, 20 for a coexistence number)",
        );
    }
    p.need(
        wa.default_region.is_empty() || crate::domain::phone::region(&wa.default_region).is_ok(),
        "whatsapp.default_region",
        "is not an ISO 3166 region code",
        "use two letters such as US, GB or DE, or leave it empty",
    );
}

/// Intake, write-back, dispatch and the window margin.
fn timings(s: &Settings, p: &mut Problems) {
    p.need(
        !s.intake.interval.is_zero(),
        "intake.interval",
        "must be more than zero",
        "use e.g. \"10s\"",
    );
    p.need(
        (1..=2000).contains(&s.intake.batch_size),
        "intake.batch_size",
        "must be between 1 and 2000",
        "use 200",
    );
    p.need(
        (1..=200).contains(&s.writeback.batch_size),
        "writeback.batch_size",
        "must be between 1 and 200 (Salesforce collections take at most 200 records)",
        "use 200",
    );
    p.need(
        !s.writeback.flush_interval.is_zero(),
        "writeback.flush_interval",
        "must be more than zero",
        "use e.g. \"2s\"",
    );
    p.need(
        (1..=super::types::MEDIA_MAX_BYTES_LIMIT).contains(&s.media.max_bytes),
        "media.max_bytes",
        "must be between 1 and 28125000 (a file goes to Salesforce as at most 37.5 MB of base64)",
        "use 26214400 (25 MB)",
    );
    p.need(
        s.consent.marketing_cap_wait >= Duration::from_secs(24 * 3600),
        "consent.marketing_cap_wait",
        "is shorter than 24 hours, which Meta asks to wait after 131049",
        "use \"24h\"",
    );
    p.need(
        s.dispatch.max_attempts >= 1,
        "dispatch.max_attempts",
        "must be at least 1",
        "use 5",
    );
    p.need(
        s.window.margin < Duration::from_secs(6 * 3600),
        "window.margin",
        "is longer than 6 hours, which would refuse most messages inside the window",
        "use \"2m\"",
    );
    p.need(
            s.intake.batch_window <= Duration::from_secs(30),
            "intake.batch_window",
            "is longer than 30 s (Salesforce forgets a streaming client that does not reconnect within 40 s of receiving events)",
            "use \"500ms\"",
        );
    p.need(
        s.store.commit_linger <= MAX_COMMIT_LINGER,
        "store.commit_linger",
        "is longer than 100 ms: every write and every webhook answer would wait that long",
        "use \"0s\" (commit at once), or a few ms under a sustained send backlog, e.g. \"4ms\"",
    );
    p.need(
        s.store.backlog_commit_linger <= MAX_COMMIT_LINGER,
        "store.backlog_commit_linger",
        "is longer than 100 ms: every write and every webhook answer would wait that long while a backlog drains",
        "use \"20ms\" (the default), or \"0s\" to commit at once during a backlog too",
    );
    p.need(
        s.intake.channel.starts_with("/event/"),
        "intake.channel",
        "is not a platform-event channel",
        "use \"/event/WhatsApp_Outbound__e\"",
    );
}

fn schedules_and_retention(s: &Settings, p: &mut Problems) {
    for (key, expression) in s.schedule.jobs() {
        if let Err(error) = parse_schedule(expression) {
            p.need(
                    false,
                    &format!("schedule.{key}"),
                    &format!("is not a cron expression ({error})"),
                    "use six fields, seconds first, e.g. \"0 */5 * * * *\" (every 5 minutes), or \"\" to turn the job off",
                );
        }
    }
    p.need(
        s.retention.webhook_dedupe >= Duration::from_secs(7 * 86_400),
        "retention.webhook_dedupe",
        "is shorter than the 7 days Meta keeps redelivering webhooks",
        "use \"14d\"",
    );
    p.need(
        s.retention.journal >= s.dispatch.unknown_outcome_grace,
        "retention.journal",
        "is shorter than dispatch.unknown_outcome_grace",
        "use \"30d\"",
    );
    // The Case of a reply is found through the journal: a window longer than the journal is kept
    // would silently end at the retention instead.
    let window = s.salesforce.case_link_window;
    p.need(
        !window.is_zero() && window <= s.retention.journal,
        "salesforce.case_link_window",
        "is zero or longer than retention.journal (the sent messages it is measured from are gone by then)",
        "use \"7d\" (the time a re-engagement waits), at most retention.journal",
    );
    p.need(
        s.webhook.path.starts_with('/'),
        "webhook.path",
        "must start with /",
        "use \"/webhook\"",
    );
}

/// `[[webhook.forward]]`: each rule names numbers this instance does not serve (a served number's
/// parts are applied here) and an http(s) URL; no number goes to two places.
fn webhook_forward(s: &Settings, p: &mut Problems) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, rule) in s.webhook.forward.iter().enumerate() {
        let key = format!("webhook.forward[{i}]");
        p.need(
            is_http_url(&rule.url),
            &format!("{key}.url"),
            "is not an http(s) URL",
            "write the other shard's webhook URL, e.g. \"http://sfwa-b.sfwa.svc:8080/webhook\"",
        );
        p.need(
            !rule.numbers.is_empty() && rule.numbers.iter().all(|n| is_digits(n)),
            &format!("{key}.numbers"),
            "must list phone_number_ids (digits)",
            "list the phone_number_ids the other shard serves, e.g. [\"222\"]",
        );
        for number in &rule.numbers {
            p.need(
                !s.serves(number),
                &format!("{key}.numbers"),
                &format!("names {number}, which this instance serves"),
                "forward only numbers another shard serves; remove it from the rule",
            );
            p.need(
                !seen.contains(&number.as_str()),
                &format!("{key}.numbers"),
                &format!("names {number}, which an earlier rule already forwards"),
                "forward each number to one shard only",
            );
            seen.push(number);
        }
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn is_version(text: &str, with_v: bool) -> bool {
    let number = if with_v {
        text.strip_prefix('v')
    } else {
        Some(text)
    };
    number.is_some_and(|n| {
        let mut parts = n.split('.');
        matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
            if !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
    })
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}
