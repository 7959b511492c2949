//! Lenient repair of a signed webhook body that strict JSON refuses, so one broken character never
//! refuses a whole POST (and with it every other event Meta batched into it).
//!
//! Two things a customer's text can carry that `serde_json` rejects:
//! - **lone UTF-16 surrogate escapes**: JSON writes characters outside the BMP as a pair of
//!   `\uD8xx\uDCxx` escapes; a text cut in the middle of an emoji leaves one half (`"\ud83d"`), which
//!   is no character at all. Each lone half becomes `\ufffd` (U+FFFD, the replacement character) —
//!   exactly six bytes for six, so nothing else in the body moves.
//! - **bytes that are not UTF-8**: replaced by U+FFFD too ([`String::from_utf8_lossy`]).
//!
//! The receiver calls this only after the signature was checked on the untouched bytes, and only
//! when strict parsing failed ([`super::parse`]): a body Meta sends correctly is never rewritten.

use std::borrow::Cow;

/// The escape written in place of a lone surrogate escape: U+FFFD, the same length as `\uXXXX`.
const REPLACEMENT_ESCAPE: &[u8; 6] = b"\\ufffd";

/// `body` with every lone surrogate escape replaced by `\ufffd` and every invalid UTF-8 sequence by
/// U+FFFD; borrowed (unchanged) when there was nothing to repair.
///
/// Escapes are read left to right as JSON reads them, so `\\ud83d` (an escaped backslash followed
/// by the letters `ud83d`) is left alone, and a high surrogate is kept only when the very next
/// escape is a low one. Malformed escapes (`\u12`, `\x`) are left for the JSON parser to report.
pub fn repair(body: &[u8]) -> Cow<'_, [u8]> {
    let surrogates = repair_surrogates(body);
    match std::str::from_utf8(&surrogates) {
        Ok(_) => surrogates,
        Err(_) => Cow::Owned(
            String::from_utf8_lossy(&surrogates)
                .into_owned()
                .into_bytes(),
        ),
    }
}

fn repair_surrogates(body: &[u8]) -> Cow<'_, [u8]> {
    let mut repaired: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(offset) = body[i..].iter().position(|&b| b == b'\\') {
        let at = i + offset;
        match body.get(at + 1) {
            Some(b'u') => {
                let Some(unit) = hex_unit(body, at + 2) else {
                    // Not four hex digits: not ours to fix; serde_json says what is wrong.
                    i = at + 2;
                    continue;
                };
                let lone = if is_high_surrogate(unit) {
                    let pair = body.get(at + 6) == Some(&b'\\')
                        && body.get(at + 7) == Some(&b'u')
                        && hex_unit(body, at + 8).is_some_and(is_low_surrogate);
                    if pair {
                        // A whole character: skip both escapes.
                        i = at + 12;
                        continue;
                    }
                    true
                } else {
                    is_low_surrogate(unit)
                };
                if lone {
                    let out = repaired.get_or_insert_with(|| body.to_vec());
                    out[at..at + 6].copy_from_slice(REPLACEMENT_ESCAPE);
                }
                i = at + 6;
            }
            // Any other escape, `\\` and `\"` included: both bytes belong together.
            Some(_) => i = at + 2,
            None => break,
        }
    }
    repaired.map_or(Cow::Borrowed(body), Cow::Owned)
}

/// The UTF-16 code unit written as four hex digits at `body[at..at + 4]`, if they are that.
fn hex_unit(body: &[u8], at: usize) -> Option<u16> {
    let digits = body.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(text, 16).ok()
}

fn is_high_surrogate(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

fn is_low_surrogate(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(input: &str) -> String {
        String::from_utf8(repair(input.as_bytes()).into_owned()).expect("UTF-8")
    }

    fn decoded(input: &str) -> String {
        let value: serde_json::Value =
            serde_json::from_slice(&repair(input.as_bytes())).expect("JSON after repair");
        value.as_str().expect("a string").to_string()
    }

    #[test]
    fn a_lone_surrogate_becomes_a_replacement_character() {
        assert!(serde_json::from_str::<serde_json::Value>(r#""half \ud83d""#).is_err());

        assert_eq!(decoded(r#""half \ud83d""#), "half \u{fffd}");
        assert_eq!(decoded(r#""\uDE00 low first""#), "\u{fffd} low first");
        assert_eq!(decoded(r#""\ud83d""#), "\u{fffd}");
    }

    #[test]
    fn a_whole_surrogate_pair_is_left_as_the_character_it_encodes() {
        let input = r#""smile \ud83d\ude00 and \uD83D\uDE00""#;

        assert!(matches!(repair(input.as_bytes()), Cow::Borrowed(_)));
        assert_eq!(decoded(input), "smile 😀 and 😀");
    }

    #[test]
    fn an_escaped_backslash_before_u_is_not_an_escape() {
        let input = r#""path \\ud83d and \\\ud83d""#;

        // The first is `\` + "ud83d"; the second is `\` + a lone surrogate escape.
        assert_eq!(repaired(input), r#""path \\ud83d and \\\ufffd""#);
        assert_eq!(decoded(input), "path \\ud83d and \\\u{fffd}");
    }

    #[test]
    fn two_high_surrogates_in_a_row_are_both_lone_unless_the_second_is_paired() {
        assert_eq!(decoded(r#""\ud83d\ud83d""#), "\u{fffd}\u{fffd}");
        assert_eq!(decoded(r#""\ud83d\ud83d\ude00""#), "\u{fffd}😀");
        assert_eq!(decoded(r#""\ude00\ud83d""#), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn a_surrogate_at_the_very_end_or_before_a_malformed_escape_is_handled() {
        assert_eq!(repaired(r#"\ud83d"#), r#"\ufffd"#);
        assert_eq!(repaired(r#""\ud83d\u12""#), r#""\ufffd\u12""#);
        assert_eq!(repaired(r#""\ud83d\"#), r#""\ufffd\"#);
        assert_eq!(repaired(r#"\u12"#), r#"\u12"#);
        assert_eq!(repaired("\\"), "\\");
    }

    #[test]
    fn a_body_without_anything_to_repair_is_borrowed_unchanged() {
        let input = r#"{"text":{"body":"caf\u00e9 \"quoted\" \\ back ✓"}}"#;

        assert!(matches!(repair(input.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let mut input = b"\"bad ".to_vec();
        input.extend_from_slice(&[0xff, 0xed, 0xa0, 0x80]);
        input.extend_from_slice(b" end\"");

        let value: serde_json::Value = serde_json::from_slice(&repair(&input)).expect("JSON");

        let text = value.as_str().unwrap();
        assert!(text.starts_with("bad \u{fffd}"), "{text}");
        assert!(text.ends_with(" end"), "{text}");
    }
}
