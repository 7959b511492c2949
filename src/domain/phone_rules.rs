//! libphonenumber's rules, loaded by country calling code as the numbers parsed need them.
//!
//! The `phonenumber` crate loads every country's rules at its first parse: 63 ms of CPU, 1.8 MB
//! kept and 4.9 MB at its height meanwhile (docs/performance.md, twenty-seventh measurement),
//! most of the daemon's start-up, for a business that may only ever write to one country. `build.rs`
//! splits the crate's own rules by calling code; a parse here loads the codes it can need (the
//! default region's, and the one a `+` number starts with) into one `Database` with the codes
//! loaded before. A new code rebuilds it (a few ms); past [`CODES_BEFORE_ALL`] codes every code
//! is loaded at once, as the crate would, so the rebuilds are few.
//!
//! The answers are libphonenumber's, whatever is loaded: a parse finds a number's country code
//! only among the codes loaded, and codes are prefix-free, so one it finds is the one all the
//! rules would find; one it cannot find fails as `InvalidCountryCode`, and is asked again of
//! every code when another code could answer (below, [`other_codes_may_answer`]). Tests compare
//! the answers with the crate's own for every region's example numbers.

use std::sync::{Arc, Mutex};

use phonenumber::country::Id as Country;
use phonenumber::metadata::{loader, Database};
use phonenumber::{ParseError, PhoneNumber};

// `CODES` and `REGIONS`, written by `build.rs`.
include!(concat!(env!("OUT_DIR"), "/phone_rules.rs"));

/// Every calling code's rules, as `build.rs` wrote them ([`CODES`] says where each is).
static RULES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/phone_rules.bin"));

/// How many calling codes are loaded one by one; the next loads them all. A business writing to
/// more countries pays what the crate's own loading costs, once, instead of a rebuild per code.
const CODES_BEFORE_ALL: usize = 16;

/// What a parse answered: whether the number is valid, its E.164 text and national significant
/// number (libphonenumber's `is_valid`, `Mode::E164` and `national()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub valid: bool,
    pub e164: String,
    pub national: String,
}

/// libphonenumber's parse of `text` (`default_region` for a number without its country code),
/// checked and written as E.164.
pub(crate) fn parse(text: &str, default_region: Option<Country>) -> Result<Parsed, ParseError> {
    LOADED.answer(text, default_region, Parsed::of)
}

impl Parsed {
    fn of(database: &Database, number: &PhoneNumber) -> Parsed {
        Parsed {
            valid: phonenumber::is_valid_with(database, number),
            // What `Mode::E164` writes. Not through the crate's formatter: it loads every
            // code's rules whichever database it is given (`unwrap_or(&DATABASE)` derefs the
            // lazy default), and matches the number against its country's formats first,
            // which E.164 does not use.
            e164: format!("+{}{}", number.code().value(), number.national()),
            national: number.national().value().to_string(),
        }
    }
}

/// The country libphonenumber places `text` in (for `+1`: the US, Canada or a Caribbean country,
/// by area code); `None` if it does not parse or names no one country.
pub(crate) fn country(text: &str) -> Option<Country> {
    LOADED
        .answer(text, None, |database, number| {
            number.metadata(database)?.id().parse().ok()
        })
        .ok()
        .flatten()
}

/// The rules loaded so far, shared by every parse (the phone thread's and its callers').
static LOADED: Loaded = Loaded::new();

struct Loaded(Mutex<Option<Arc<Rules>>>);

/// Some calling codes' rules, as one `Database`.
struct Rules {
    /// Ascending.
    codes: Vec<u16>,
    all: bool,
    database: Database,
}

impl Loaded {
    const fn new() -> Loaded {
        Loaded(Mutex::new(None))
    }

    /// `answer` of `text` parsed with the rules it can need; asked again of every code's rules
    /// when those loaded do not know its code and another code could answer.
    fn answer<T>(
        &self,
        text: &str,
        default_region: Option<Country>,
        answer: impl Fn(&Database, &PhoneNumber) -> T,
    ) -> Result<T, ParseError> {
        let parse = |rules: &Rules| {
            let number = phonenumber::parse_with(&rules.database, default_region, text)?;
            Ok(answer(&rules.database, &number))
        };
        let rules = self.with_codes(codes_needed(text, default_region));
        match parse(&rules) {
            Err(ParseError::InvalidCountryCode)
                if !rules.all && other_codes_may_answer(text, default_region) =>
            {
                parse(&self.all())
            }
            answered => answered,
        }
    }

    /// The rules loaded, with `codes` among them.
    fn with_codes(&self, codes: [Option<u16>; 2]) -> Arc<Rules> {
        let mut loaded = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let known = |code: &u16| CODES.binary_search_by_key(code, |c| c.0).is_ok();
        let had: &[u16] = loaded.as_ref().map_or(&[], |rules| &rules.codes);
        let missing: Vec<u16> = codes
            .into_iter()
            .flatten()
            .filter(|code| known(code) && had.binary_search(code).is_err())
            .collect();
        match loaded.as_ref() {
            Some(rules) if missing.is_empty() || rules.all => return Arc::clone(rules),
            _ => {}
        }
        let mut codes: Vec<u16> = had.iter().copied().chain(missing).collect();
        codes.sort_unstable();
        codes.dedup();
        let rules = Arc::new(if codes.len() > CODES_BEFORE_ALL {
            Rules::all()
        } else {
            Rules::of(codes)
        });
        *loaded = Some(Arc::clone(&rules));
        rules
    }

    /// Every code's rules, loaded from now on.
    fn all(&self) -> Arc<Rules> {
        let mut loaded = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match loaded.as_ref() {
            Some(rules) if rules.all => Arc::clone(rules),
            _ => {
                let rules = Arc::new(Rules::all());
                *loaded = Some(Arc::clone(&rules));
                rules
            }
        }
    }
}

impl Rules {
    fn all() -> Rules {
        let mut rules = Rules::of(CODES.iter().map(|c| c.0).collect());
        rules.all = true;
        rules
    }

    /// The rules of `codes` (ascending, each one of [`CODES`]).
    fn of(codes: Vec<u16>) -> Rules {
        let metadata: Vec<loader::Metadata> = codes
            .iter()
            .filter_map(|code| CODES.binary_search_by_key(code, |c| c.0).ok())
            .flat_map(|i| {
                let (code, start, end) = CODES[i];
                postcard::from_bytes::<Vec<loader::Metadata>>(&RULES[start..end])
                    .unwrap_or_else(|e| panic!("the rules of +{code} do not read: {e}"))
            })
            .collect();
        let database = Database::from(metadata)
            .unwrap_or_else(|e| panic!("the rules of {codes:?} do not load: {e}"));
        Rules {
            codes,
            all: false,
            database,
        }
    }
}

/// The calling codes a parse of `text` can need: the default region's, and the one the digits
/// after a leading `+` start with (either may be none).
fn codes_needed(text: &str, default_region: Option<Country>) -> [Option<u16>; 2] {
    let of_region = default_region.and_then(|region| {
        let region = region.as_ref();
        let i = REGIONS.binary_search_by_key(&region, |r| r.0).ok()?;
        Some(REGIONS[i].1)
    });
    let written = text
        .trim_start()
        .strip_prefix('+')
        .and_then(|rest| code_at_start(rest.chars().filter(char::is_ascii_digit)));
    [of_region, written]
}

/// The calling code `digits` start with: codes are prefix-free, so at most one of their first
/// one, two and three digits is one.
fn code_at_start(digits: impl Iterator<Item = char>) -> Option<u16> {
    let mut code = 0u16;
    for digit in digits.take(3) {
        code = code * 10 + digit.to_digit(10)? as u16;
        if CODES.binary_search_by_key(&code, |c| c.0).is_ok() {
            return Some(code);
        }
    }
    None
}

/// Whether a code other than those [`codes_needed`] names can make `text` parse: not for `+` and
/// digits written plainly (the code is read from those digits, as the parse reads it), nor for a
/// national number without a default region (no code at all); yes for a number that may start
/// with the default region's international prefix (`011 44 …` in the US), name its code in an
/// RFC 3966 `phone-context`, or write its digits or plus other than in ASCII.
fn other_codes_may_answer(text: &str, default_region: Option<Country>) -> bool {
    let plain = |c: char| c.is_ascii_digit() || " ()-./".contains(c);
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix('+') {
        return !rest.chars().all(plain);
    }
    !text.is_ascii()
        || text.to_ascii_lowercase().contains("phone-context")
        || default_region.is_some()
}

/// `build.rs`'s split of the crate's rules, which the tests check against the crate's own.
#[cfg(test)]
#[path = "../../build/phone_rules.rs"]
mod split;

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::metadata::DATABASE;

    #[test]
    fn every_code_s_rules_read_back_as_the_crate_holds_them() {
        for &(code, start, end) in CODES {
            let ours = Rules::of(vec![code]);
            let theirs = DATABASE.by_code(&code).expect("a code the crate knows");
            let ours = ours.database.by_code(&code).expect("loaded");
            let as_loaded = |m: Vec<&phonenumber::Metadata>| {
                format!(
                    "{:?}",
                    m.into_iter().map(split::to_loader).collect::<Vec<_>>()
                )
            };
            assert_eq!(as_loaded(ours), as_loaded(theirs), "+{code}");
            assert!(end > start, "+{code} has rules");
        }
        // And they are the crate's at the version built against (`build.rs` splits it again
        // whenever the crate changes).
        let split = split::by_code(&DATABASE);
        let codes: Vec<u16> = split.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes, Vec::from_iter(CODES.iter().map(|c| c.0)));
        let bytes: Vec<u8> = split.into_iter().flat_map(|(_, rules)| rules).collect();
        assert!(bytes == RULES, "the embedded rules are the crate's");
        assert_eq!(
            DATABASE.iter().count(),
            REGIONS.len() + 1,
            "every region, and 001"
        );
    }

    /// What the crate answers with all its rules loaded.
    fn theirs(text: &str, region: Option<Country>) -> Result<Parsed, ParseError> {
        let number = phonenumber::parse(region, text)?;
        Ok(Parsed {
            valid: phonenumber::is_valid(&number),
            e164: number.format().mode(phonenumber::Mode::E164).to_string(),
            national: number.national().value().to_string(),
        })
    }

    /// Numbers of `region` written every way a record may hold them, valid or not; from a few
    /// regions, also numbers of other countries written with its international prefix (each
    /// loads every code: from every region, the test would take minutes unoptimised).
    fn written_in(metadata: &phonenumber::Metadata) -> Vec<String> {
        let code = metadata.country_code();
        let d = metadata.descriptors();
        let mut examples: Vec<&str> = [d.general()]
            .into_iter()
            .chain(d.mobile())
            .chain(d.fixed_line())
            .chain(d.toll_free())
            .chain(d.shared_cost())
            .chain(d.premium_rate())
            .chain(d.voip())
            .chain(d.uan())
            .filter_map(|descriptor| descriptor.example())
            .collect();
        examples.dedup();
        let mut texts = Vec::new();
        for example in examples {
            texts.push(format!("+{code}{example}"));
            texts.push(format!("+{code} ({example})"));
            texts.push(example.to_string());
            texts.push(format!(
                "{}{example}",
                metadata.national_prefix().unwrap_or("")
            ));
            texts.push(format!("+{code}{}", &example[..example.len() / 2]));
            texts.push(format!("{example}99"));
        }
        if !["US", "GB", "DE", "JP", "BR", "IN"].contains(&metadata.id()) {
            return texts;
        }
        let idd = metadata.preferred_international_prefix().unwrap_or("00");
        texts.push(format!("{idd} 44 7911 123456"));
        texts.push(format!("{idd}16505551234"));
        texts.push(format!("{idd} 999 123456"));
        texts
    }

    #[test]
    fn a_number_parses_as_with_every_code_loaded_whichever_codes_are_loaded() {
        let mut compared = 0;
        // Every region of every code, the non-geographic entities (+800, +882, …) among them.
        for &(code, _, _) in CODES {
            for metadata in DATABASE.by_code(&code).expect("a code the crate knows") {
                let region = metadata.id().parse::<Country>().ok();
                // A fresh start for each: only what its numbers need gets loaded.
                let loaded = Loaded::new();
                for text in written_in(metadata) {
                    for default in [region, None] {
                        let ours = loaded.answer(&text, default, Parsed::of);
                        assert_eq!(
                            ours.map_err(|e| e.to_string()),
                            theirs(&text, default).map_err(|e| e.to_string()),
                            "{text:?} in {default:?}"
                        );
                        compared += 1;
                    }
                }
                let codes = loaded.0.lock().unwrap().as_ref().map(|r| r.codes.clone());
                assert!(codes.is_some_and(|c| c.contains(&code)), "+{code}");
            }
        }
        assert!(compared > 4000, "{compared}");
    }

    #[test]
    fn only_the_codes_numbers_name_are_loaded_until_there_are_many() {
        let loaded = Loaded::new();
        let us = "US".parse().ok();
        let codes = || {
            loaded
                .0
                .lock()
                .unwrap()
                .as_ref()
                .map(|r| (r.codes.clone(), r.all))
        };
        assert!(
            loaded
                .answer("(650) 253-0000", us, Parsed::of)
                .unwrap()
                .valid
        );
        assert_eq!(codes(), Some((vec![1], false)));
        assert!(
            loaded
                .answer("+44 20 7946 0958", None, Parsed::of)
                .unwrap()
                .valid
        );
        assert_eq!(codes(), Some((vec![1, 44], false)));
        // Not a code: nothing more is loaded, and it fails as with every code loaded.
        assert!(matches!(
            loaded.answer("+999 1234 5678", None, Parsed::of),
            Err(ParseError::InvalidCountryCode)
        ));
        assert_eq!(codes(), Some((vec![1, 44], false)));
        // A national number without a region has no code, whatever is loaded.
        assert!(loaded.answer("2079460958", None, Parsed::of).is_err());
        assert_eq!(codes(), Some((vec![1, 44], false)));
        // Written from the US with its international prefix: every code may be the one.
        let german = loaded.answer("011 49 30 1234567", us, Parsed::of).unwrap();
        assert_eq!(german.e164, "+49301234567");
        assert_eq!(codes(), Some((CODES.iter().map(|c| c.0).collect(), true)));
    }

    #[test]
    fn past_sixteen_codes_every_code_is_loaded_at_once() {
        let loaded = Loaded::new();
        let firsts: Vec<u16> = CODES
            .iter()
            .map(|c| c.0)
            .take(CODES_BEFORE_ALL + 1)
            .collect();
        for (i, code) in firsts.iter().enumerate() {
            let _ = loaded.answer(&format!("+{code}123456789"), None, Parsed::of);
            let rules = loaded.0.lock().unwrap().clone().unwrap();
            assert_eq!(rules.all, i == CODES_BEFORE_ALL, "after {} codes", i + 1);
        }
    }

    #[test]
    fn a_country_is_named_as_the_crate_names_it() {
        for text in [
            "+16505551234",
            "+14165550123",
            "+18765550123",
            "+447911123456",
            "+999",
        ] {
            let theirs = phonenumber::parse(None, text)
                .ok()
                .and_then(|n| n.country().id());
            assert_eq!(country(text), theirs, "{text}");
        }
    }
}
