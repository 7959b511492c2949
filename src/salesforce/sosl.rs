//! SOSL text, for [`SalesforceClient::search`](super::SalesforceClient::search): the search terms
//! inside `FIND {…}` are escaped here, as [`super::soql`] does for SOQL literals.
//!
//! Inside the braces these characters are operators unless preceded by a backslash:
//! `? & | ! { } [ ] ( ) ^ ~ * : \ " ' + -` (Salesforce, SOSL "FIND {SearchQuery}"). A term from
//! outside goes through [`sosl_term`] so it can neither end the search query nor change its logic.
//!
//! Limits that decide how many terms one search may carry: the search query (the text inside the
//! braces) may be 10,000 characters, but **logical operators after the first 4,000 characters are
//! ignored** ([`MAX_SEARCH_QUERY_CHARS`] keeps every `OR` meaningful); a search returns at most
//! 2,000 records ([`MAX_SEARCH_RESULTS`]); the whole GET must stay inside the REST API's 16,384
//! bytes for the URI and headers.

/// Characters SOSL reserves inside `FIND {…}`.
pub const RESERVED: &str = "?&|!{}[]()^~*:\\\"'+-";

/// The longest search query whose `OR`s all count (Salesforce ignores operators past 4,000).
pub const MAX_SEARCH_QUERY_CHARS: usize = 4_000;

/// Most records one SOSL search returns (API 28.0 and later).
pub const MAX_SEARCH_RESULTS: usize = 2_000;

/// `text` as one SOSL search term: every reserved character backslash-escaped.
pub fn sosl_term(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if RESERVED.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `FIND {a OR b OR …}` for `terms` (each escaped); `None` without any term (SOSL refuses an
/// empty search).
pub fn find_any<'a>(terms: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let escaped: Vec<String> = terms.into_iter().map(sosl_term).collect();
    (!escaped.is_empty()).then(|| format!("FIND {{{}}}", escaped.join(" OR ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_character_is_escaped_and_plain_text_is_left_alone() {
        assert_eq!(sosl_term("4155550101"), "4155550101");
        assert_eq!(sosl_term("+1 (415) 555-0101"), r"\+1 \(415\) 555\-0101");
        assert_eq!(sosl_term(r#"a}b{c"d\e"#), r#"a\}b\{c\"d\\e"#);
        for reserved in RESERVED.chars() {
            assert_eq!(sosl_term(&reserved.to_string()), format!("\\{reserved}"));
        }
    }

    #[test]
    fn terms_are_joined_with_or_inside_braces() {
        assert_eq!(
            find_any(["4155550101", "2079460958"]).as_deref(),
            Some("FIND {4155550101 OR 2079460958}")
        );
        assert_eq!(find_any(Vec::<&str>::new()), None);
    }
}
