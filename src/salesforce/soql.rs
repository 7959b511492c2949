//! SOQL literals. Queries are built as text (there are no bind variables over REST), so every value
//! that comes from outside goes through one of these.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::sf_id::SfId;

/// A single-quoted SOQL string literal: backslashes and quotes escaped, and the control characters
/// SOQL knows (`\n`, `\r`, `\t`, `\b`, `\f`, `"`) written as escapes, so nothing can end the literal.
pub fn soql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A datetime literal (unquoted, UTC, whole seconds: `2026-11-24T15:00:00Z`).
pub fn soql_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The parenthesised list for `Id IN (…)`: `('a01…','a01…')`. Ids are parsed [`SfId`]s, so they
/// need no escaping. An empty list gives `()`, which Salesforce rejects as MALFORMED_QUERY: callers
/// skip the query when there is nothing to ask for.
pub fn soql_id_list<'a>(ids: impl IntoIterator<Item = &'a SfId>) -> String {
    let quoted: Vec<String> = ids
        .into_iter()
        .map(|id| format!("'{}'", id.as_str()))
        .collect();
    format!("({})", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn quotes_and_backslashes_cannot_end_the_literal() {
        assert_eq!(soql_string(r"O'Brien \ Co"), r"'O\'Brien \\ Co'");
        assert_eq!(soql_string("a\\'b"), r"'a\\\'b'");
        assert_eq!(soql_string("line\nbreak"), r"'line\nbreak'");
    }

    #[test]
    fn datetimes_are_unquoted_utc_seconds() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 15, 0, 0).unwrap()
            + chrono::Duration::milliseconds(517);
        assert_eq!(soql_datetime(at), "2026-11-24T15:00:00Z");
    }

    #[test]
    fn id_lists_are_quoted_and_comma_separated() {
        let ids = [
            SfId::parse("a01D000000IRFmaIAH").unwrap(),
            SfId::parse("a01D000000IRFmbIAH").unwrap(),
        ];
        assert_eq!(
            soql_id_list(&ids),
            "('a01D000000IRFmaIAH','a01D000000IRFmbIAH')"
        );
        assert_eq!(soql_id_list(&[]), "()");
    }
}
