//! The simulator's configuration: credentials the daemon must present, and behaviour knobs.
//!
//! Defaults mirror Meta's production behaviour (80 msg/s, about one message per 6 s per customer with
//! bursts, delivery after a second, a read after two more). Tests shorten the delays and tighten limits.

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;

use crate::clock::SimClock;

/// Everything [`super::start`] needs. `Default` gives random-looking but valid credentials on
/// `127.0.0.1:0`.
#[derive(Clone, Debug)]
pub struct WhatsAppSimConfig {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Where status and inbound-message webhooks are POSTed; `None` records them without delivering.
    pub webhook_url: Option<String>,
    /// Shared simulated time; webhook timestamps and the 24 h window are measured on it.
    pub clock: SimClock,
    /// The bearer token the Graph endpoints accept.
    pub access_token: String,
    /// The account's main business phone number (the one the daemon is usually configured with).
    pub phone_number_id: String,
    /// Digits only, as Meta puts it in webhook `metadata.display_phone_number`.
    pub display_phone_number: String,
    /// Further business numbers on the same account. Meta posts their webhooks to the same
    /// callback URL (the app is subscribed per account, not per number), so a daemon serving only
    /// some of them must recognise and leave alone the others'. Default: one.
    pub other_phone_numbers: Vec<BusinessNumber>,
    /// The WhatsApp Business Account id, used as `entry[].id` in webhooks.
    pub waba_id: String,
    /// The Meta app's id: with `app_secret` it makes the app token (`{app_id}|{app_secret}`)
    /// `GET /{version}/{app_id}/subscriptions` wants, and it is the app `subscribed_apps` lists.
    pub app_id: String,
    /// The app's name as `subscribed_apps` reports it.
    pub app_name: String,
    /// Key of the `X-Hub-Signature-256` HMAC on webhooks.
    pub app_secret: String,
    /// The token the daemon expects in Meta's `hub.verify_token` handshake.
    pub verify_token: String,
    /// The business name `GET /{version}/{phone_number_id}` reports.
    pub verified_name: String,
    /// `true`: a free-form message outside the window is a synchronous 400 (131047) instead of the
    /// usual 200 followed by a `failed` webhook.
    pub window_violation_sync: bool,
    /// Messages per second per business number before 130429; also the burst size.
    pub throughput_per_second: u32,
    /// Per-customer rate before 131056.
    pub pair_rate: PairRate,
    /// Real time between `sent` and `delivered`.
    pub delivered_after: Duration,
    /// Real time between `delivered` and `read` (the simulated customer opening the chat).
    pub read_after: Duration,
    /// Whether simulated customers read their messages at all (read receipts on).
    pub customers_read: bool,
    /// How status updates are grouped into POSTs.
    pub webhook_batch: WebhookBatch,
    /// Probability (0.0–1.0) that a webhook POST is delivered a second time, as Meta sometimes does.
    pub webhook_duplicate_rate: f64,
    /// `true`: `read` is reported before `delivered` (Meta does not guarantee order).
    pub webhook_out_of_order: bool,
    /// Each webhook event is held back a further uniform 0..=this (zero: none), so statuses and
    /// inbound messages arrive late and out of order (`webhook_delay_ms` at run time).
    pub webhook_delay_max: Duration,
    /// Retries of webhook POSTs answered non-2xx or not answered.
    pub webhook_retry: WebhookRetry,
    /// How many send attempts `GET /__sim/attempts` keeps (the oldest go first). About 300 bytes
    /// each: the default holds a long soak run in well under 100 MB.
    pub attempts_kept: usize,
    /// Recipients whose number ends with this suffix are "not on WhatsApp" (131026 by webhook).
    /// More numbers can be added through `POST /__sim/faults`.
    pub not_on_whatsapp_suffix: Option<String>,
}

/// A business phone number: its Graph id and its digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessNumber {
    pub phone_number_id: String,
    pub display_phone_number: String,
}

impl WhatsAppSimConfig {
    /// The display number of `phone_number_id` when the account owns it.
    pub fn display_number_of(&self, phone_number_id: &str) -> Option<&str> {
        if phone_number_id == self.phone_number_id {
            return Some(&self.display_phone_number);
        }
        self.other_phone_numbers
            .iter()
            .find(|number| number.phone_number_id == phone_number_id)
            .map(|number| number.display_phone_number.as_str())
    }

    /// Whether `digits` is one of the account's own numbers (a business cannot message itself).
    pub fn is_own_number(&self, digits: &str) -> bool {
        digits == self.display_phone_number
            || self
                .other_phone_numbers
                .iter()
                .any(|number| number.display_phone_number == digits)
    }
}

/// Token bucket per (business number, customer): `burst` messages at once, then one per
/// `refill_every`. Meta: about one every 6 s, bursts up to 45 borrowing from future quota.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRate {
    pub burst: u32,
    pub refill_every: Duration,
}

impl Default for PairRate {
    fn default() -> Self {
        Self {
            burst: 45,
            refill_every: Duration::from_secs(6),
        }
    }
}

/// Batching of status updates: up to `max_statuses` statuses that are due within `linger` of each
/// other go into one POST (Meta allows up to 1000 per POST). `max_statuses = 1` disables batching.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookBatch {
    pub max_statuses: usize,
    pub linger: Duration,
}

impl Default for WebhookBatch {
    fn default() -> Self {
        Self {
            max_statuses: 1,
            linger: Duration::ZERO,
        }
    }
}

/// Exponential back-off for webhook deliveries: `initial_backoff`, doubled per attempt up to
/// `max_backoff`, at most `max_attempts` POSTs in all and none later than `horizon` after the
/// first. Meta retries for up to 7 days; tests want milliseconds. Both bounds can be changed at
/// run time (`webhook_retry_max_attempts`, `webhook_retry_horizon_ms` in `POST /__sim/faults`).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookRetry {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub horizon: Duration,
}

impl Default for WebhookRetry {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            horizon: Duration::from_secs(7 * 86_400),
        }
    }
}

impl Default for WhatsAppSimConfig {
    fn default() -> Self {
        let mut rng = rand::thread_rng();
        // Shapes copied from real accounts: 15-digit numeric ids, an `EAA…` token, 32-hex app secret.
        let numeric_id = |rng: &mut rand::rngs::ThreadRng| {
            format!("1{:014}", rng.gen_range(0..100_000_000_000_000u64))
        };
        let phone_number_id = numeric_id(&mut rng);
        let second_number = BusinessNumber {
            phone_number_id: numeric_id(&mut rng),
            display_phone_number: format!("1555{:07}", rng.gen_range(0..10_000_000u32)),
        };
        let waba_id = numeric_id(&mut rng);
        let app_id = numeric_id(&mut rng);
        let token_tail: String = (0..120)
            .map(|_| {
                const ALPHABET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                ALPHABET[rng.gen_range(0..ALPHABET.len())] as char
            })
            .collect();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_url: None,
            clock: SimClock::new(),
            access_token: format!("EAAG{token_tail}"),
            phone_number_id,
            display_phone_number: format!("1555{:07}", rng.gen_range(0..10_000_000u32)),
            other_phone_numbers: vec![second_number],
            waba_id,
            app_id,
            app_name: "sfwa Simulated App".to_owned(),
            app_secret: hex::encode(rng.gen::<[u8; 16]>()),
            verify_token: format!("verify-{}", hex::encode(rng.gen::<[u8; 8]>())),
            verified_name: "sfwa Simulated Business".to_owned(),
            window_violation_sync: false,
            throughput_per_second: 80,
            pair_rate: PairRate::default(),
            delivered_after: Duration::from_secs(1),
            read_after: Duration::from_secs(2),
            customers_read: true,
            webhook_batch: WebhookBatch::default(),
            webhook_duplicate_rate: 0.0,
            webhook_out_of_order: false,
            webhook_delay_max: Duration::ZERO,
            webhook_retry: WebhookRetry::default(),
            attempts_kept: 250_000,
            not_on_whatsapp_suffix: Some("0000".to_owned()),
        }
    }
}
