//! Marketing consent: whom sfwa may send marketing templates to, per customer (the person of
//! `store::identity`, not one phone key) and business number.
//!
//! Where it learns a customer's choice:
//! - a **keyword** the customer wrote (STOP, UNSUBSCRIBE, … and START; per language in
//!   `[consent.keywords]`), read from inbound texts in the webhook's transaction
//!   ([`keyword_changes`], [`apply_keywords`]);
//! - Meta's **`user_preferences`** webhook: they stopped or resumed marketing in WhatsApp
//!   ([`apply_preference`]);
//! - Meta's **131050** ("the user stopped marketing messages"), on a send or a failed status
//!   ([`after_send`], [`on_failed_status`]);
//! - **Salesforce**: `WhatsApp_Marketing_Opt_Out__c` on the record's Contact or Lead, read through
//!   the lookups in the query sfwa already makes (`salesforce::rows::MessageRow`), on every send.
//!
//! What it decides: [`judge`], pure and read-only, says whether a template may go — a marketing
//! template to an opted-out customer is refused `OPTED_OUT`, one to a +1 (US) number
//! `MARKETING_TO_US_NUMBER` (Meta has not delivered them since 2025-04-01; a setting) — before
//! WhatsApp is called. The send path asks it right before the window check ([`check`]) and
//! applies the verdict; `sfwa plan` can gather the same facts ([`gather`]) and ask it without a
//! write. Service and utility messages are never refused here. After a send, 131050 marks the
//! customer opted out (never retried), and 131049 (Meta's marketing limit per customer) is tried
//! again no sooner than `consent.marketing_cap_wait`, at most `consent.marketing_cap_retries`
//! times ([`after_send`]).

use chrono::{DateTime, Duration, Utc};
use tracing::info;

use crate::config::types::ConsentSettings;
use crate::domain::ids::{BusinessNumberId, CustomerId};
use crate::domain::message::{MessageKind, OutboundMessage, QueuedRecord};
use crate::domain::sf_id::SfId;
use crate::domain::webhook_event::{InboundKind, InboundMessage, PreferenceUpdate, WebhookEvent};
use crate::pipeline::dispatch::decide::Next;
use crate::pipeline::Dispatcher;
use crate::store::consent::{self as store, Choice, Source};
use crate::store::{journal, StoreError};
use crate::whatsapp::{Accepted, SendError};

/// Error_Code__c of a marketing template refused because the customer opted out (Meta's 131050
/// reads the same, `whatsapp::error`).
pub use crate::whatsapp::OPTED_OUT;
/// Error_Code__c of a marketing template refused because it goes to a +1 (US) number.
pub const MARKETING_TO_US: &str = "MARKETING_TO_US_NUMBER";
const MARKETING_TO_US_MESSAGE: &str = "Not sent: WhatsApp does not deliver marketing templates to US (+1) phone numbers. Use a utility template if the message is about an existing order or account, or reach this customer another way. (An admin can turn this check off with consent.refuse_marketing_to_us once WhatsApp delivers them again.)";
/// Meta's "the user stopped marketing messages".
const STOPPED_MARKETING: i64 = 131050;
/// Meta's per-customer marketing limit.
const MARKETING_CAP: i64 = 131049;

/// What the consent check knows about one send: everything [`judge`] needs, read beforehand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Whether the message is a marketing template: `None` when it is a template of unknown
    /// category (the listing failed or does not have it: it goes, and Meta judges).
    pub marketing: Option<bool>,
    /// Where it goes (the person's current key).
    pub to: CustomerId,
    /// What sfwa learned from WhatsApp (keyword, `user_preferences`, 131050).
    pub stored: Option<Choice>,
    /// The record's Contact or Lead has `WhatsApp_Marketing_Opt_Out__c` checked.
    pub salesforce_opt_out: bool,
    /// `consent.refuse_marketing_to_us`.
    pub refuse_marketing_to_us: bool,
}

/// What the consent check says about a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// Failed with this code and sentence, without calling WhatsApp.
    Refuse {
        code: &'static str,
        message: String,
    },
}

/// The consent rule, without I/O: a marketing template to a customer who opted out (in
/// Salesforce or in WhatsApp) is refused, and one to a +1 (US) number while that is refused;
/// everything else goes.
pub fn judge(facts: &Facts) -> Verdict {
    if facts.marketing != Some(true) {
        return Verdict::Go;
    }
    if facts.salesforce_opt_out {
        return Verdict::Refuse {
            code: OPTED_OUT,
            message: "Not sent: WhatsApp Marketing Opt Out is checked on this message's Contact or Lead, so no marketing templates go to them. Service and utility templates still go.".into(),
        };
    }
    if let Some(choice) = facts.stored.filter(|c| c.opted_out) {
        let how = match choice.source {
            Source::Keyword => "replied with a stop word",
            Source::UserPreferences => "turned off marketing messages from this number in WhatsApp",
            Source::Meta131050 => {
                "stopped marketing messages from this number (WhatsApp said so on an earlier send)"
            }
        };
        return Verdict::Refuse {
            code: OPTED_OUT,
            message: format!(
                "Not sent: the customer {how} on {}, so no marketing templates go to them. Service and utility templates still go; marketing resumes when they reply START or turn marketing messages back on in WhatsApp.",
                choice.changed_at.format("%Y-%m-%d %H:%M UTC")
            ),
        };
    }
    if facts.refuse_marketing_to_us && is_us(&facts.to) {
        return Verdict::Refuse {
            code: MARKETING_TO_US,
            message: MARKETING_TO_US_MESSAGE.into(),
        };
    }
    Verdict::Go
}

/// A US number: +1 and a US area code (Canada and the Caribbean share +1 and are not refused).
fn is_us(to: &CustomerId) -> bool {
    let Some(phone) = to.phone() else {
        return false;
    };
    phone.country() == Some(phonenumber::country::Id::US)
}

/// Whether template `name` in `language` is a marketing template (`None`: unknown): the template
/// catalog's category (`store::templates`, kept live by its webhooks), else the account's
/// listing. The one place the send path asks for a category for consent.
pub async fn is_marketing(dispatcher: &Dispatcher, name: &str, language: &str) -> Option<bool> {
    let waba_id = &dispatcher.core.settings.whatsapp.business_account_id;
    if waba_id.trim().is_empty() {
        // No account: neither a catalog nor a listing to ask (and no store read per send).
        return None;
    }
    let (n, l) = (name.to_string(), language.to_string());
    let cataloged = dispatcher
        .core
        .store
        .lookup(move |conn| crate::store::templates::get(conn, &n, &l))
        .await
        .ok()
        .flatten();
    if let Some(template) = cataloged {
        return Some(template.category.eq_ignore_ascii_case("MARKETING"));
    }
    dispatcher
        .templates
        .category(
            &dispatcher.whatsapp,
            waba_id,
            name,
            language,
            dispatcher.now(),
        )
        .await
        .map(|category| category == crate::whatsapp::templates::Category::Marketing)
}

/// The facts of sending `message` (of `record`) from `number`, read without writing anything;
/// `None` for a message consent has nothing to say about (not a template). `category`: the
/// template's, when the catalog check already read it (else it is asked, [`is_marketing`]).
pub async fn gather(
    dispatcher: &Dispatcher,
    record: &QueuedRecord,
    message: &OutboundMessage,
    (number, category): (&str, Option<&str>),
) -> anyhow::Result<Option<Facts>> {
    let MessageKind::Template { name, language, .. } = &message.kind else {
        return Ok(None);
    };
    let marketing = match category {
        Some(category) => Some(category.eq_ignore_ascii_case("MARKETING")),
        None => is_marketing(dispatcher, name, language).await,
    };
    let to = message.to.clone();
    let stored = match (marketing, number.parse::<BusinessNumberId>()) {
        (Some(true), Ok(number)) => {
            let customer = to.clone();
            dispatcher
                .core
                .store
                .lookup(move |conn| store::choice(conn, &number, &customer))
                .await?
        }
        _ => None,
    };
    Ok(Some(Facts {
        marketing,
        to,
        stored,
        salesforce_opt_out: record.marketing_opt_out,
        refuse_marketing_to_us: dispatcher.core.settings.consent.refuse_marketing_to_us,
    }))
}

/// The send path's consent check, right before the window's: `Some(refusal)` to apply.
/// `asked`: the sending number, and the template's category if the catalog check read it.
pub async fn check(
    dispatcher: &Dispatcher,
    record: &QueuedRecord,
    message: &OutboundMessage,
    asked: (&str, Option<&str>),
) -> anyhow::Result<Option<Next>> {
    let Some(facts) = gather(dispatcher, record, message, asked).await? else {
        return Ok(None);
    };
    Ok(match judge(&facts) {
        Verdict::Go => None,
        Verdict::Refuse { code, message } => {
            info!(code, "marketing template refused before sending");
            Some(Next::Refuse {
                code: code.to_string(),
                message,
                window_expired_at: None,
            })
        }
    })
}

/// What a send's answer means for consent: 131050 marks the customer opted out (the record fails
/// `OPTED_OUT`, never retried); 131049 is tried again after `marketing_cap_wait` while attempts
/// remain ([`marketing_cap`]). Any other answer leaves `next` as decided.
pub async fn after_send(
    dispatcher: &Dispatcher,
    (number, to, attempt): (&str, &CustomerId, u32),
    sent: &Result<Accepted, SendError>,
    next: Next,
) -> anyhow::Result<Next> {
    let code = match sent {
        Err(SendError::Meta(error)) => error.code,
        _ => return Ok(next),
    };
    let now = dispatcher.now();
    if code == STOPPED_MARKETING {
        if let Ok(number) = number.parse::<BusinessNumberId>() {
            let to = to.clone();
            dispatcher
                .core
                .store
                .write(move |tx| store::set(tx, &number, &to, true, Source::Meta131050, now))
                .await?;
            info!("WhatsApp says the customer stopped marketing messages; marked opted out");
        }
        return Ok(next);
    }
    if code == MARKETING_CAP {
        return Ok(marketing_cap(
            next,
            attempt,
            &dispatcher.core.settings.consent,
            now,
        ));
    }
    Ok(next)
}

/// 131049 at attempt `attempt`: tried again at `now + marketing_cap_wait` (Meta: no sooner than
/// 24 h) while fewer than `marketing_cap_retries` retries were made, else `failed` as decided.
pub fn marketing_cap(
    failed: Next,
    attempt: u32,
    settings: &ConsentSettings,
    now: DateTime<Utc>,
) -> Next {
    if attempt >= settings.marketing_cap_retries {
        return failed;
    }
    let wait = Duration::from_std(settings.marketing_cap_wait).unwrap_or(Duration::hours(24));
    Next::Retry {
        at: now + wait.max(Duration::hours(24)),
        attempts: attempt + 1,
        code: format!("WA_{MARKETING_CAP}"),
    }
}

/// A stop or start keyword a customer wrote, to store in the webhook's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeywordChange {
    pub number: BusinessNumberId,
    pub customer: CustomerId,
    pub opted_out: bool,
    pub at: DateTime<Utc>,
    /// The language whose list matched (logged).
    pub language: String,
}

/// The keyword changes among a POST's events: 1:1 texts (and quick-reply buttons) that are
/// exactly one of `[consent.keywords]`' words.
pub fn keyword_changes(settings: &ConsentSettings, events: &[WebhookEvent]) -> Vec<KeywordChange> {
    events
        .iter()
        .filter_map(|event| match event {
            WebhookEvent::Inbound(message) => keyword_change(settings, message),
            _ => None,
        })
        .collect()
}

/// The keyword change `message` makes, if its text is a stop or start word.
pub fn keyword_change(
    settings: &ConsentSettings,
    message: &InboundMessage,
) -> Option<KeywordChange> {
    if message.group_id.is_some() {
        return None;
    }
    let text = match &message.kind {
        InboundKind::Text { body } => body,
        InboundKind::Button { text, .. } => text,
        _ => return None,
    };
    // Compared as they are normalised, with no string built: most texts differ from every word
    // at their first letter, and every inbound text of every POST is compared with every word.
    let is = |words: &[String]| words.iter().any(|w| normalised(w).eq(normalised(text)));
    let (language, opted_out) = settings.keywords.iter().find_map(|(language, set)| {
        if is(&set.stop) {
            Some((language, true))
        } else if is(&set.start) {
            Some((language, false))
        } else {
            None
        }
    })?;
    Some(KeywordChange {
        number: message.business_number_id.clone(),
        customer: message.from.clone(),
        opted_out,
        at: message.timestamp,
        language: language.clone(),
    })
}

/// Upper case, words separated by one space, punctuation around the words dropped.
fn normalised(text: &str) -> impl Iterator<Item = char> + '_ {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|word| !word.is_empty())
        .enumerate()
        .flat_map(|(i, word)| {
            let space = (i > 0).then_some(' ');
            space
                .into_iter()
                .chain(word.chars().flat_map(char::to_uppercase))
        })
}

/// Stores the keyword changes (in the webhook's transaction).
pub fn apply_keywords(
    tx: &rusqlite::Connection,
    changes: &[KeywordChange],
) -> Result<(), StoreError> {
    for change in changes {
        let stored = store::set(
            tx,
            &change.number,
            &change.customer,
            change.opted_out,
            Source::Keyword,
            change.at,
        )?;
        if stored {
            info!(opted_out = change.opted_out, language = %change.language, "the customer wrote a marketing stop / start word");
        }
    }
    Ok(())
}

/// Stores a `user_preferences` stop or resume (in the webhook's transaction).
pub fn apply_preference(
    tx: &rusqlite::Connection,
    update: &PreferenceUpdate,
) -> Result<(), StoreError> {
    store::set(
        tx,
        &update.business_number_id,
        &update.customer,
        update.opted_out,
        Source::UserPreferences,
        update.timestamp,
    )?;
    Ok(())
}

/// A `failed` status of record `record_id` with Meta's `code`: 131050 marks the customer the
/// journal sent it to as opted out.
pub fn on_failed_status(
    tx: &rusqlite::Connection,
    record_id: &SfId,
    code: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if code != STOPPED_MARKETING {
        return Ok(());
    }
    let Some(entry) = journal::get(tx, record_id)? else {
        return Ok(());
    };
    let number = entry.business_number_id.and_then(|n| n.parse().ok());
    let to = entry.wa_id.and_then(|w| w.parse().ok());
    if let (Some(number), Some(to)) = (number, to) {
        store::set(tx, &number, &to, true, Source::Meta131050, at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(marketing: Option<bool>, to: &str) -> Facts {
        Facts {
            marketing,
            to: to.parse().unwrap(),
            stored: None,
            salesforce_opt_out: false,
            refuse_marketing_to_us: true,
        }
    }

    fn stopped(source: Source) -> Option<Choice> {
        Some(Choice {
            opted_out: true,
            source,
            changed_at: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        })
    }

    const UK: &str = "447911123456";
    const US: &str = "16505551234";

    #[test]
    fn a_marketing_template_to_a_customer_who_stopped_is_refused_opted_out() {
        let mut facts = facts(Some(true), UK);
        facts.stored = stopped(Source::Keyword);

        let verdict = judge(&facts);

        assert!(
            matches!(&verdict, Verdict::Refuse { code, message } if *code == OPTED_OUT && message.contains("stop word")),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_utility_or_unknown_template_goes_to_a_customer_who_stopped_marketing() {
        for marketing in [Some(false), None] {
            let mut facts = facts(marketing, US);
            facts.stored = stopped(Source::UserPreferences);
            facts.salesforce_opt_out = true;

            assert_eq!(judge(&facts), Verdict::Go, "{marketing:?}");
        }
    }

    #[test]
    fn an_opt_out_checked_in_salesforce_refuses_marketing() {
        let mut facts = facts(Some(true), UK);
        facts.salesforce_opt_out = true;

        assert!(matches!(judge(&facts), Verdict::Refuse { code, .. } if code == OPTED_OUT));
    }

    #[test]
    fn a_start_after_a_stop_lets_marketing_go() {
        let mut facts = facts(Some(true), UK);
        facts.stored = stopped(Source::Keyword).map(|c| Choice {
            opted_out: false,
            ..c
        });

        assert_eq!(judge(&facts), Verdict::Go);
    }

    #[test]
    fn marketing_to_a_us_number_is_refused_while_the_setting_is_on_and_canada_is_not() {
        let us = judge(&facts(Some(true), US));
        let canada = judge(&facts(Some(true), "14165550123"));
        let mut off = facts(Some(true), US);
        off.refuse_marketing_to_us = false;

        assert!(matches!(us, Verdict::Refuse { code, .. } if code == MARKETING_TO_US));
        assert_eq!(canada, Verdict::Go);
        assert_eq!(judge(&off), Verdict::Go);
    }

    #[test]
    fn a_marketing_cap_waits_at_least_a_day_and_gives_up_after_the_retries() {
        let settings = ConsentSettings::default();
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let failed = Next::Fail {
            code: "WA_131049".into(),
            message: "held back".into(),
            window_expires_at: None,
        };

        let first = marketing_cap(failed.clone(), 0, &settings, now);
        let last = marketing_cap(
            failed.clone(),
            settings.marketing_cap_retries,
            &settings,
            now,
        );

        assert!(
            matches!(&first, Next::Retry { at, attempts: 1, .. } if *at - now >= Duration::hours(24)),
            "{first:?}"
        );
        assert_eq!(last, failed);
    }

    #[test]
    fn a_text_is_normalised_to_its_words_in_capitals_joined_by_one_space() {
        // What comparing used to build for every word: the words, trimmed of punctuation,
        // joined and upper-cased as one string.
        let built = |text: &str| {
            text.split_whitespace()
                .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()))
                .filter(|word| !word.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        };
        for text in [
            "Stop.",
            "  stop   all  ",
            "¡Baja!",
            "straße",
            "İstanbul ıi",
            "... --- ...",
            "",
            "ǆ ﬁ",
            "stop\tsending\nme",
        ] {
            assert_eq!(
                normalised(text).collect::<String>(),
                built(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn stop_and_start_words_match_whole_messages_in_any_case_and_language() {
        let settings = ConsentSettings::default();
        let cases = [
            ("Stop.", Some(true)),
            ("  unsubscribe ", Some(true)),
            ("baja", Some(true)),
            ("START", Some(false)),
            ("stop sending me offers", None),
            ("Where is my order?", None),
        ];
        for (text, expected) in cases {
            let message = InboundMessage::new(
                "wamid.K".parse().unwrap(),
                "106540352242922".parse().unwrap(),
                UK.parse().unwrap(),
                DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
                InboundKind::Text { body: text.into() },
            );

            let change = keyword_change(&settings, &message);

            assert_eq!(change.map(|c| c.opted_out), expected, "{text}");
        }
    }
}
