//! The errors a SOQL query can earn, worded and laid out as Salesforce's REST API writes them.
//!
//! Position-bearing errors echo the offending line of the query with a caret under the column, then
//! `ERROR at Row:r:Column:c` and the reason, each on its own line: clients such as simple-salesforce
//! and jsforce show this text verbatim, and tests in the daemon match on it.
//!
//! One simplification: Salesforce trims the echo to a window of a few tokens around the error; the
//! simulator echoes the whole line instead. The row, column and reason are what clients parse.

use std::fmt;

/// A rejected query: the `errorCode` and `message` of the REST error body (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoqlError {
    /// `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE` or `INVALID_QUERY_FILTER_OPERATOR`.
    pub error_code: &'static str,
    pub message: String,
}

impl fmt::Display for SoqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code, self.message)
    }
}

impl std::error::Error for SoqlError {}

pub(crate) const MALFORMED_QUERY: &str = "MALFORMED_QUERY";
pub(crate) const INVALID_FIELD: &str = "INVALID_FIELD";
pub(crate) const INVALID_TYPE: &str = "INVALID_TYPE";
pub(crate) const INVALID_QUERY_FILTER_OPERATOR: &str = "INVALID_QUERY_FILTER_OPERATOR";

impl SoqlError {
    /// An error without a position (Salesforce sends some, such as unqueryable entities, bare).
    pub(crate) fn bare(error_code: &'static str, message: impl Into<String>) -> Self {
        SoqlError {
            error_code,
            message: message.into(),
        }
    }

    /// An error pointing at byte offset `at` of `source`.
    pub(crate) fn at(error_code: &'static str, source: &str, at: usize, reason: &str) -> Self {
        let location = Location::of(source, at);
        let caret = " ".repeat(location.column - 1);
        SoqlError {
            error_code,
            message: format!(
                "\n{}\n{caret}^\nERROR at Row:{}:Column:{}\n{reason}",
                location.line, location.row, location.column
            ),
        }
    }

    pub(crate) fn malformed(source: &str, at: usize, reason: &str) -> Self {
        Self::at(MALFORMED_QUERY, source, at, reason)
    }

    /// `unexpected token: 'X'`, the parser's answer to anything out of place.
    pub(crate) fn unexpected(source: &str, at: usize, token: &str) -> Self {
        Self::malformed(source, at, &format!("unexpected token: '{token}'"))
    }

    /// A lexer error, in the ANTLR form Salesforce passes through: `line 1:75 no viable alternative
    /// at character '#'`. ANTLR counts columns from 0 and Salesforce reports that number as the
    /// Column too, with the caret one character to the left (as a real `<EOF>` error shows).
    pub(crate) fn lexical(source: &str, at: usize, reason: &str) -> Self {
        let at = at.min(source.len());
        let location = Location::of(source, at);
        let before = source[..at].char_indices().last().map_or(0, |(i, _)| i);
        Self::malformed(
            source,
            before,
            &format!("line {}:{} {reason}", location.row, location.column - 1),
        )
    }

    pub(crate) fn no_such_column(source: &str, at: usize, field: &str, object: &str) -> Self {
        Self::at(
            INVALID_FIELD,
            source,
            at,
            &format!(
                "No such column '{field}' on entity '{object}'. If you are attempting to use a custom \
                 field, be sure to append the '__c' after the custom field name. Please reference \
                 your WSDL or the describe call for the appropriate names."
            ),
        )
    }
}

/// Where a byte offset falls: 1-based row and column (in characters) and the text of that row.
struct Location<'a> {
    row: usize,
    column: usize,
    line: &'a str,
}

impl<'a> Location<'a> {
    fn of(source: &'a str, at: usize) -> Self {
        let mut at = at.min(source.len());
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[at..].find('\n').map_or(source.len(), |i| at + i);
        Location {
            row: source[..line_start].matches('\n').count() + 1,
            column: source[line_start..at].chars().count() + 1,
            line: source[line_start..line_end].trim_end_matches('\r'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_sits_under_the_column_of_the_offending_row() {
        let error = SoqlError::unexpected("SELECT Id\nFRM Contact", 10, "FRM");

        assert_eq!(error.error_code, "MALFORMED_QUERY");
        assert_eq!(
            error.message,
            "\nFRM Contact\n^\nERROR at Row:2:Column:1\nunexpected token: 'FRM'"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let error = SoqlError::malformed("é = x", 3, "why");

        assert!(error.message.contains("ERROR at Row:1:Column:3"));
    }
}
