//! Phone numbers in E.164, parsed with libphonenumber's rules (the `phonenumber` crate).
//!
//! Reps type numbers any way (`(650) 555-1234`, `+44 20 7946 0958`, `0049 30 1234567`); WhatsApp
//! wants digits with the country code. A number without a country code is read in the configured
//! default region.

use std::collections::HashMap;
use std::fmt;
use std::sync::{mpsc, LazyLock, Mutex};

use phonenumber::country::Id as Country;

use super::phone_rules;

/// A valid phone number in E.164 (`+16505551234`), with its national significant number read in
/// the same parse (the write-back's phone search asks for it for every number it links, and a
/// second libphonenumber parse cost as much as the first). Both fields are the one number, so
/// comparing them compares the text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164 {
    text: String,
    national: String,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error("'{0}' is not a phone number")]
    Unparseable(String),
    #[error("'{0}' is not a valid number for its country (check the digits and the country code)")]
    Invalid(String),
    #[error("'{0}' is not a known region code (use ISO 3166 letters such as US, GB, DE)")]
    UnknownRegion(String),
}

/// Parses an ISO 3166 region code such as `US` for numbers written without a country code.
pub fn region(code: &str) -> Result<Country, PhoneError> {
    code.trim()
        .to_ascii_uppercase()
        .parse::<Country>()
        .map_err(|_| PhoneError::UnknownRegion(code.to_string()))
}

/// Loads `default_region`'s rules (its calling code's, [`phone_rules`]) and compiles what the first
/// parse of its numbers would, on [`PARSER`]'s thread: every parse meanwhile waits, holding its
/// caller's thread. Call it off the async runtime before the first record. Without a default
/// region nothing is known of the numbers to come: each calling code loads at its first number
/// (a few ms). Bypasses the wa_id memo, so no sample number is kept.
pub fn load_rules(default_region: Option<Country>) {
    if default_region.is_some() {
        let _ = E164::parse_uncached("6505551234", default_region);
    }
}

impl E164 {
    /// Parses a number as a person wrote it. `default_region` applies when it has no country code.
    ///
    /// A number already written as `+` and digits with no default region (how a wa_id is written
    /// on a record, read back for every inbound message the write-back links) is answered from
    /// the memo of [`E164::from_wa_id`]: the same answer, since that is this parse of it.
    pub fn parse(raw: &str, default_region: Option<Country>) -> Result<E164, PhoneError> {
        if default_region.is_none() {
            if let Some(digits) = raw.strip_prefix('+').filter(|d| is_digits(d)) {
                return WA_IDS.answer(digits);
            }
        }
        E164::parse_uncached(raw, default_region)
    }

    /// [`E164::parse`] with libphonenumber, every time, on [`PARSER`]'s thread (on the caller's
    /// own if that thread cannot be had).
    fn parse_uncached(raw: &str, default_region: Option<Country>) -> Result<E164, PhoneError> {
        let raw_owned = raw.to_string();
        on_phone_thread(move || E164::parse_here(&raw_owned, default_region))
            .unwrap_or_else(|| E164::parse_here(raw, default_region))
    }

    /// The country the number belongs to (`+1` numbers: the US, Canada or a Caribbean country,
    /// told apart by area code), read by libphonenumber on [`PARSER`]'s thread.
    pub fn country(&self) -> Option<Country> {
        let text = self.text.clone();
        on_phone_thread(move || phone_rules::country(&text))
            .unwrap_or_else(|| phone_rules::country(&self.text))
    }

    /// [`E164::parse_uncached`] on the calling thread.
    fn parse_here(raw: &str, default_region: Option<Country>) -> Result<E164, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        // "00" is the international prefix in most of the world; libphonenumber only knows it per
        // region, so rewrite it as "+" before parsing.
        let normalised = match trimmed.strip_prefix("00") {
            Some(rest) if !trimmed.starts_with('+') => format!("+{rest}"),
            _ => trimmed.to_string(),
        };
        let number = phone_rules::parse(&normalised, default_region)
            .map_err(|_| PhoneError::Unparseable(raw.to_string()))?;
        if !number.valid {
            return Err(PhoneError::Invalid(raw.to_string()));
        }
        Ok(E164 {
            text: number.e164,
            national: number.national,
        })
    }

    /// Parses a WhatsApp `wa_id` (digits with the country code, no `+`), as Meta sends it.
    ///
    /// Answered from [`WA_IDS`], a small bounded memo of earlier answers, when this wa_id was
    /// asked recently: libphonenumber's parse and validity check cost more than the rest of an
    /// inbound webhook's handling, and the same customer's wa_id is read again for every message
    /// they send (and more than once per message). The memo holds what [`E164::parse`] answered,
    /// errors included, so the answer is the same either way.
    pub fn from_wa_id(wa_id: &str) -> Result<E164, PhoneError> {
        if !is_digits(wa_id) {
            return Err(PhoneError::Unparseable(wa_id.to_string()));
        }
        WA_IDS.answer(wa_id)
    }

    /// [`E164::parse`], with the caller's task waiting for [`PARSER`]'s thread without holding
    /// its own thread (a runtime worker blocked on the answer runs no other task meanwhile). The
    /// same answer as [`E164::parse`]: a wa_id written as `+` and digits with no default region
    /// goes through the memo, and without the thread (or if the parse panicked on it) the parse
    /// runs here.
    pub async fn parse_awaited(
        raw: &str,
        default_region: Option<Country>,
    ) -> Result<E164, PhoneError> {
        if default_region.is_none() {
            if let Some(digits) = raw.strip_prefix('+').filter(|d| is_digits(d)) {
                E164::parse_ahead([digits]).await;
                return WA_IDS.answer(digits);
            }
        }
        let raw_owned = raw.to_string();
        on_phone_thread_awaited(move || E164::parse_here(&raw_owned, default_region))
            .await
            .unwrap_or_else(|| E164::parse_here(raw, default_region))
    }

    /// Parses the wa_ids [`WA_IDS`] does not know yet, in one job on [`PARSER`]'s thread, while
    /// the caller's task waits without holding its thread; the answers go into the memo, where
    /// [`E164::from_wa_id`] finds them a moment later. The webhook handler calls it before its
    /// write: the store's writer is one thread every write waits for, and it parsed each new
    /// customer's wa_id itself, blocked on this thread meanwhile (docs/performance.md,
    /// fourteenth measurement). Nothing is parsed without the thread: the later parse then
    /// happens where it always did.
    pub async fn parse_ahead<'a>(wa_ids: impl IntoIterator<Item = &'a str>) {
        let unknown: Vec<String> = wa_ids
            .into_iter()
            .filter(|wa_id| is_digits(wa_id) && wa_id.len() <= WA_ID_MEMO_DIGITS)
            .filter(|wa_id| WA_IDS.get(wa_id).is_none())
            .map(str::to_string)
            .collect();
        if unknown.is_empty() {
            return;
        }
        let parse_all = move || {
            let parse = |wa_id: &str| E164::parse_here(&format!("+{wa_id}"), None);
            Vec::from_iter(unknown.into_iter().map(|wa_id| (parse(&wa_id), wa_id)))
        };
        // No thread, or a panic on it: the writer parses as it did before.
        for (number, wa_id) in on_phone_thread_awaited(parse_all)
            .await
            .into_iter()
            .flatten()
        {
            WA_IDS.put(&wa_id, &number);
        }
    }

    /// `+16505551234`
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `16505551234`: what WhatsApp calls the wa_id and accepts in `to`.
    pub fn wa_id(&self) -> &str {
        &self.text[1..]
    }

    /// The national significant number, without country code or trunk prefix (`6505551234` for
    /// `+16505551234`, `2079460958` for `+442079460958`): the digits every written form of the
    /// number ends with, whether or not it was written with its country code. Read when the
    /// number was parsed: what parsing the E.164 text again gives.
    pub fn national_number(&self) -> &str {
        &self.national
    }
}

/// The thread every libphonenumber parse runs on. Its rules are regexes whose matching caches
/// (lazy DFAs) are kept per thread that uses them and grow with the distinct numbers seen, to
/// megabytes: 100,000 distinct US numbers grow them by 4.4 MB on one thread, and parsed on both
/// of the runtime's workers they were 8.8 MB of a 100 k backlog's peak RSS (docs/performance.md,
/// ninth measurement). A caller waits for its answer as it waited for the parse itself (tens of
/// µs); `None` if the thread could not be started.
static PARSER: LazyLock<Option<mpsc::Sender<PhoneJob>>> = LazyLock::new(start_parser);

/// Work for [`PARSER`]'s thread; it answers through the channel the closure holds.
type PhoneJob = Box<dyn FnOnce() + Send>;

/// Runs `work` on [`PARSER`]'s thread and waits for its answer; `None` if that thread is not
/// there or `work` panicked on it (the caller then does the work itself, and meets the same
/// panic on its own thread).
fn on_phone_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let jobs = PARSER.as_ref()?;
    let (answer, answered) = mpsc::sync_channel(1);
    let job: PhoneJob = Box::new(move || {
        let _ = answer.send(work());
    });
    jobs.send(job).ok()?;
    answered.recv().ok()
}

/// [`on_phone_thread`] for a task: it waits for the answer without holding its thread (a
/// runtime worker blocked on the answer would run no other task meanwhile). `None` as there.
async fn on_phone_thread_awaited<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let jobs = PARSER.as_ref()?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: PhoneJob = Box::new(move || {
        let _ = answer.send(work());
    });
    jobs.send(job).ok()?;
    answered.await.ok()
}

fn start_parser() -> Option<mpsc::Sender<PhoneJob>> {
    let (jobs, queue) = mpsc::channel::<PhoneJob>();
    let run_all = move || {
        for job in queue {
            // A panic drops the job's answer channel; the thread goes on with the next job.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
    };
    match std::thread::Builder::new()
        .name("sfwa-phone".into())
        .spawn(run_all)
    {
        Ok(_) => Some(jobs),
        Err(error) => {
            tracing::warn!(%error, "no thread for phone parsing; parsing on the callers' threads");
            None
        }
    }
}

/// How many wa_ids [`WA_IDS`] remembers, at most. A busy number hears from a few thousand
/// customers an hour; the memo keeps two generations of half this each and drops the older one
/// when the newer is full (a bound, not an eviction policy: a miss only costs one parse), so the
/// wa_ids asked last are always there — the write-back asks again for each inbound record a
/// moment after its webhook did, and a memo that started afresh in between missed them all.
const WA_ID_MEMO_ENTRIES: usize = 8192;
/// Longer wa_ids (never a phone: E.164 has at most 15 digits) are parsed without the memo, so
/// what it holds is bounded in bytes too.
const WA_ID_MEMO_DIGITS: usize = 20;

/// One or more ASCII digits.
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `from_wa_id`'s answers by wa_id: see [`E164::from_wa_id`].
static WA_IDS: WaIdMemo = WaIdMemo::new();

struct WaIdMemo(Mutex<Generations>);

/// The memo's answers: the newer generation, and the one before it.
struct Generations {
    newer: Option<HashMap<String, Result<E164, PhoneError>>>,
    older: Option<HashMap<String, Result<E164, PhoneError>>>,
}

impl WaIdMemo {
    const fn new() -> WaIdMemo {
        WaIdMemo(Mutex::new(Generations {
            newer: None,
            older: None,
        }))
    }

    /// `E164::parse("+{wa_id}")`, remembered; `wa_id` is digits.
    fn answer(&self, wa_id: &str) -> Result<E164, PhoneError> {
        let parse = || E164::parse_uncached(&format!("+{wa_id}"), None);
        if wa_id.len() > WA_ID_MEMO_DIGITS {
            return parse();
        }
        if let Some(known) = self.get(wa_id) {
            return known;
        }
        let parsed = parse();
        self.put(wa_id, &parsed);
        parsed
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let len = [&memo.newer, &memo.older]
            .into_iter()
            .map(|map| map.as_ref().map_or(0, HashMap::len))
            .sum();
        len
    }

    fn get(&self, wa_id: &str) -> Option<Result<E164, PhoneError>> {
        // A poisoned lock only means another thread panicked holding it; the maps are still whole
        // (every insert is one call).
        let memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let found = [&memo.newer, &memo.older]
            .into_iter()
            .find_map(|map| map.as_ref()?.get(wa_id).cloned());
        found
    }

    fn put(&self, wa_id: &str, answer: &Result<E164, PhoneError>) {
        let mut memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if memo
            .newer
            .as_ref()
            .is_some_and(|newer| newer.len() >= WA_ID_MEMO_ENTRIES / 2)
        {
            memo.older = memo.newer.take();
        }
        memo.newer
            .get_or_insert_with(HashMap::new)
            .insert(wa_id.to_string(), answer.clone());
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Option<Country> {
        Some(region("us").unwrap())
    }

    #[test]
    fn human_formats_normalise_to_e164() {
        assert_eq!(
            E164::parse("(650) 253-0000", us()).unwrap().as_str(),
            "+16502530000"
        );
        assert_eq!(
            E164::parse("+44 20 7946 0958", us()).unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            E164::parse("0044 20 7946 0958", us()).unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            E164::parse("+1 650-253-0000", None).unwrap().wa_id(),
            "16502530000"
        );
    }

    #[test]
    fn garbage_short_and_empty_numbers_are_refused() {
        assert_eq!(E164::parse("  ", us()), Err(PhoneError::Empty));
        assert!(E164::parse("call me", us()).is_err());
        assert!(E164::parse("12", us()).is_err());
        assert!(
            E164::parse("650 253 0000", None).is_err(),
            "no country code and no default region"
        );
    }

    #[test]
    fn wa_ids_parse_back_to_the_same_number() {
        let number = E164::from_wa_id("16502530000").unwrap();
        assert_eq!(number.as_str(), "+16502530000");
        assert!(E164::from_wa_id("+1650").is_err());
    }

    #[test]
    fn a_wa_id_answered_from_the_memo_is_exactly_what_libphonenumber_answers() {
        let wa_ids = [
            "16502530000",      // US
            "442079460958",     // GB
            "4402079460958",    // GB with its trunk 0: libphonenumber drops it
            "390612345678",     // IT, leading zero kept
            "5491123456789",    // AR mobile
            "4930123456",       // DE
            "8613800138000",    // CN mobile
            "919876543210",     // IN
            "15555550100",      // NANP fictional range
            "1650253000",       // one digit short
            "165025300001",     // one digit long
            "999123456789",     // no such country code
            "12",               // too short to be anything
            "1234567890123456", // longer than E.164
            "000000000",
            "0016502530000",
        ];
        let memo = WaIdMemo::new();
        for wa_id in wa_ids {
            let direct = E164::parse_uncached(&format!("+{wa_id}"), None);

            let first = memo.answer(wa_id);
            let remembered = memo.answer(wa_id);

            assert_eq!(first, direct, "{wa_id}");
            assert_eq!(remembered, direct, "{wa_id} from the memo");
            assert_eq!(
                E164::from_wa_id(wa_id),
                direct,
                "{wa_id} through from_wa_id"
            );
            assert_eq!(
                E164::parse(&format!("+{wa_id}"), None),
                direct,
                "+{wa_id} through parse"
            );
            if let Ok(number) = &direct {
                assert_eq!(
                    number.national_number(),
                    national_of_e164(number.as_str()),
                    "{wa_id}: the national number read in the parse is the E.164 text's"
                );
            }
        }
        assert!(
            memo.get("16502530000").is_some(),
            "valid answers are remembered"
        );
        assert!(memo.get("999123456789").is_some(), "errors too");
        assert!(
            memo.get("1234567890123456").is_some(),
            "16 digits are still remembered"
        );
    }

    #[tokio::test]
    async fn wa_ids_parsed_ahead_are_answered_from_the_memo_as_libphonenumber_answers() {
        // Numbers no other test asks for: the memo is shared by the whole test binary.
        let (valid, invalid) = ("16505550177", "999765432101");
        assert!(WA_IDS.get(valid).is_none() && WA_IDS.get(invalid).is_none());

        E164::parse_ahead([valid, invalid, "+16505550178", "1".repeat(21).as_str()]).await;

        assert_eq!(
            WA_IDS.get(valid),
            Some(E164::parse_here(&format!("+{valid}"), None))
        );
        assert_eq!(
            WA_IDS.get(invalid),
            Some(E164::parse_here(&format!("+{invalid}"), None)),
            "errors are remembered too"
        );
        assert!(WA_IDS.get(invalid).unwrap().is_err());
        assert!(
            WA_IDS.get("+16505550178").is_none(),
            "not a wa_id: left to the parse that refuses it"
        );
        assert_eq!(E164::from_wa_id(valid).unwrap().as_str(), "+16505550177");
    }

    #[test]
    fn the_memo_of_wa_ids_stays_bounded_and_refuses_non_digits_before_it() {
        let memo = WaIdMemo::new();
        for n in 0..(WA_ID_MEMO_ENTRIES + 10) {
            let _ = memo.answer(&format!("1650{n:07}"));
            assert!(memo.len() <= WA_ID_MEMO_ENTRIES, "{}", memo.len());
        }
        assert!(memo.len() > 0);
        let last = format!("1650{:07}", WA_ID_MEMO_ENTRIES + 9);
        let half_ago = format!("1650{:07}", WA_ID_MEMO_ENTRIES / 2 + 9);
        assert!(memo.get(&last).is_some(), "the last asked is remembered");
        assert!(
            memo.get(&half_ago).is_some(),
            "so is the one asked half the memo ago"
        );

        assert_eq!(
            E164::from_wa_id("+16502530000"),
            Err(PhoneError::Unparseable("+16502530000".into()))
        );
        assert_eq!(
            E164::from_wa_id(""),
            Err(PhoneError::Unparseable(String::new()))
        );
        let long = "1".repeat(WA_ID_MEMO_DIGITS + 1);
        assert!(memo.answer(&long).is_err());
        assert!(memo.get(&long).is_none(), "too long to be remembered");
    }

    /// The national number as reading the E.164 text again gives it.
    fn national_of_e164(e164: &str) -> String {
        phonenumber::parse(None, e164)
            .map(|number| number.national().value().to_string())
            .unwrap()
    }

    #[test]
    fn the_phone_thread_answers_as_a_parse_on_the_callers_thread_would() {
        assert!(PARSER.is_some(), "the phone thread started");
        let cases = [
            ("(650) 253-0000", us()),
            ("+44 20 7946 0958", None),
            ("0049 30 1234567", us()),
            ("+1 650 555", None),
            ("not a number", us()),
            ("   ", None),
        ];
        for (raw, region) in cases {
            assert_eq!(
                E164::parse_uncached(raw, region),
                E164::parse_here(raw, region),
                "{raw}"
            );
        }
    }

    #[tokio::test]
    async fn a_parse_awaited_answers_as_a_parse_on_the_callers_thread_would() {
        let cases = [
            ("(650) 253-0000", us()),
            ("+44 20 7946 0958", None),
            ("0049 30 1234567", us()),
            ("+1 650 555", None),
            ("+16505550179", None),
            ("+999765432102", None),
            ("not a number", us()),
            ("   ", None),
        ];
        for (raw, region) in cases {
            assert_eq!(
                E164::parse_awaited(raw, region).await,
                E164::parse_here(raw, region),
                "{raw}"
            );
        }
        assert!(
            WA_IDS.get("16505550179").is_some(),
            "a wa_id written with + is answered through the memo, as by parse"
        );
    }

    #[test]
    fn the_national_number_read_in_the_parse_is_the_one_of_the_e164_text_for_written_numbers() {
        let written = [
            ("(650) 253-0000", "US"),
            ("+44 20 7946 0958", "US"),
            ("0044 20 7946 0958", "US"),
            ("020 7946 0958", "GB"),
            ("06 1234 5678", "IT"),
            ("+39 06 1234 5678", "US"),
            ("030 1234567", "DE"),
            ("011 15 2345-6789", "AR"),
            ("+1 650-253-0000", "DE"),
        ];
        for (raw, code) in written {
            let number = E164::parse(raw, Some(region(code).unwrap())).unwrap();
            assert_eq!(
                number.national_number(),
                national_of_e164(number.as_str()),
                "{raw} in {code}"
            );
        }
    }

    #[test]
    fn the_national_number_drops_the_country_code() {
        assert_eq!(
            E164::from_wa_id("16502530000").unwrap().national_number(),
            "6502530000"
        );
        assert_eq!(
            E164::parse("0044 20 7946 0958", us())
                .unwrap()
                .national_number(),
            "2079460958"
        );
    }

    #[test]
    fn unknown_region_codes_are_named() {
        assert_eq!(region("XX"), Err(PhoneError::UnknownRegion("XX".into())));
    }
}
