//! Splits a SOQL string into tokens, decoding string escapes and date/datetime literals on the way.
//!
//! Keywords are not distinguished here: SOQL keywords are case-insensitive and some double as field
//! names elsewhere, so the parser decides what a [`TokenKind::Word`] means from where it stands.

use chrono::{DateTime, NaiveDate};

use super::error::SoqlError;

/// A comparison operator as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Symbol {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One character of a string literal and whether it was written with a backslash escape, which
/// matters to LIKE: `\%` is a percent sign, `%` a wildcard.
pub(crate) type StrChar = (char, bool);

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    /// An identifier or keyword; its text is the token's slice of the source.
    Word,
    Str(Vec<StrChar>),
    Number(f64),
    Date(NaiveDate),
    /// Milliseconds since the Unix epoch.
    DateTime(i64),
    Comparison(Symbol),
    Comma,
    LeftParen,
    RightParen,
    Colon,
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte offsets into the query.
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token as Salesforce names it in `unexpected token:` messages.
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        match self.kind {
            TokenKind::Eof => "<EOF>",
            _ => &source[self.start..self.end],
        }
    }
}

/// Tokenises the whole query up front; the query is short and the parser then needs no lookahead
/// machinery.
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, SoqlError> {
    let mut lexer = Lexer {
        source,
        chars: source.char_indices().peekable(),
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.kind == TokenKind::Eof;
        tokens.push(token);
        if done {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    source: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn offset(&mut self) -> usize {
        self.chars.peek().map_or(self.source.len(), |&(i, _)| i)
    }

    /// Consumes characters while `keep` holds and returns where the run ends.
    fn eat_while(&mut self, keep: impl Fn(char) -> bool) -> usize {
        while self.peek().is_some_and(&keep) {
            self.chars.next();
        }
        self.offset()
    }

    fn next_token(&mut self) -> Result<Token, SoqlError> {
        self.eat_while(char::is_whitespace);
        let start = self.offset();
        let Some((_, c)) = self.chars.next() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                start,
                end: start,
            });
        };
        let single = |kind| {
            Ok(Token {
                kind,
                start,
                end: start + c.len_utf8(),
            })
        };
        match c {
            ',' => single(TokenKind::Comma),
            '(' => single(TokenKind::LeftParen),
            ')' => single(TokenKind::RightParen),
            ':' => single(TokenKind::Colon),
            '=' => single(TokenKind::Comparison(Symbol::Eq)),
            '<' | '>' | '!' => self.comparison(c, start),
            '\'' => self.string(start),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
                Ok(Token {
                    kind: TokenKind::Word,
                    start,
                    end,
                })
            }
            c if c.is_ascii_digit() => self.number(start),
            '-' | '+' if self.peek().is_some_and(|c| c.is_ascii_digit()) => self.number(start),
            other => Err(self.no_viable_alternative(start, &other.to_string())),
        }
    }

    fn no_viable_alternative(&self, at: usize, what: &str) -> SoqlError {
        SoqlError::lexical(
            self.source,
            at,
            &format!("no viable alternative at character '{what}'"),
        )
    }

    fn comparison(&mut self, first: char, start: usize) -> Result<Token, SoqlError> {
        let second = self.peek();
        let (symbol, two_chars) = match (first, second) {
            ('<', Some('=')) => (Symbol::Le, true),
            ('<', Some('>')) => (Symbol::Ne, true),
            ('<', _) => (Symbol::Lt, false),
            ('>', Some('=')) => (Symbol::Ge, true),
            ('>', _) => (Symbol::Gt, false),
            ('!', Some('=')) => (Symbol::Ne, true),
            _ => return Err(self.no_viable_alternative(start, "!")),
        };
        if two_chars {
            self.chars.next();
        }
        Ok(Token {
            kind: TokenKind::Comparison(symbol),
            start,
            end: start + if two_chars { 2 } else { 1 },
        })
    }

    /// A single-quoted string. SOQL escapes with backslashes only (a doubled quote ends the string).
    fn string(&mut self, start: usize) -> Result<Token, SoqlError> {
        let mut chars = Vec::new();
        loop {
            let Some((at, c)) = self.chars.next() else {
                return Err(SoqlError::lexical(
                    self.source,
                    self.source.len(),
                    "mismatched character '<EOF>' expecting '''",
                ));
            };
            match c {
                '\'' => {
                    return Ok(Token {
                        kind: TokenKind::Str(chars),
                        start,
                        end: at + 1,
                    })
                }
                '\\' => {
                    let escaped = match self.chars.next() {
                        Some((_, 'n')) => '\n',
                        Some((_, 't')) => '\t',
                        Some((_, 'r')) => '\r',
                        Some((_, 'b')) => '\u{8}',
                        Some((_, 'f')) => '\u{c}',
                        Some((_, c @ ('\'' | '"' | '\\' | '%' | '_'))) => c,
                        Some((_, other)) => {
                            let end = self.eat_while(|c| c != '\'');
                            let literal = &self.source[start..(end + 1).min(self.source.len())];
                            return Err(SoqlError::malformed(
                                self.source,
                                start,
                                &format!(
                                    "Invalid string literal {literal}. Illegal character sequence \
                                     '\\{other}' in string literal."
                                ),
                            ));
                        }
                        None => continue,
                    };
                    chars.push((escaped, true));
                }
                c => chars.push((c, false)),
            }
        }
    }

    /// Integers, decimals, and the date (`2026-11-24`) and datetime (`2026-11-24T15:00:00Z`) literals
    /// that also start with digits.
    fn number(&mut self, start: usize) -> Result<Token, SoqlError> {
        let digits_end = self.eat_while(|c| c.is_ascii_digit());
        let unsigned_start = match &self.source[start..start + 1] {
            "-" | "+" => start + 1,
            _ => start,
        };
        if unsigned_start == start && digits_end - start == 4 && self.peek() == Some('-') {
            let mut end = self.eat_while(|c| c.is_ascii_digit() || c == '-');
            let is_datetime = self.peek() == Some('T');
            if is_datetime {
                end = self.eat_while(|c| {
                    c.is_ascii_digit() || matches!(c, 'T' | ':' | '.' | '+' | '-' | 'Z')
                });
            }
            let text = &self.source[start..end];
            let kind = if is_datetime {
                parse_datetime_literal(text).map(TokenKind::DateTime)
            } else {
                parse_date(text).map(TokenKind::Date)
            };
            return match kind {
                Some(kind) => Ok(Token { kind, start, end }),
                None => Err(SoqlError::malformed(
                    self.source,
                    start,
                    &format!(
                        "Invalid {}: {text}",
                        if is_datetime { "datetime" } else { "date" }
                    ),
                )),
            };
        }
        let mut end = digits_end;
        if self.peek() == Some('.') {
            self.chars.next();
            end = self.eat_while(|c| c.is_ascii_digit());
        }
        let text = &self.source[start..end];
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() && !text.ends_with('.') => Ok(Token {
                kind: TokenKind::Number(value),
                start,
                end,
            }),
            _ => Err(self.no_viable_alternative(end, ".")),
        }
    }
}

/// `2026-11-24`, exactly as SOQL and the REST API write dates.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A SOQL datetime literal: seconds are required, milliseconds optional, and the zone is `Z`, `+01:00`
/// or `+0100`.
fn parse_datetime_literal(text: &str) -> Option<i64> {
    // `2026-11-24T15:00:00Z` is the shortest valid form.
    if text.len() < 20 {
        return None;
    }
    parse_datetime(text)
}

/// Milliseconds since the epoch of a datetime as SOQL or the REST API writes it
/// (`2026-11-24T15:00:00.000+0000`, `2026-11-24T15:00:00Z`, `…+01:00`).
pub fn parse_datetime(text: &str) -> Option<i64> {
    let parsed = match text.strip_suffix('Z') {
        Some(utc) => DateTime::parse_from_str(&format!("{utc}+0000"), "%Y-%m-%dT%H:%M:%S%.f%z"),
        None => DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%:z")),
    };
    parsed.ok().map(|at| at.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn datetime_literals_in_every_zone_form_are_the_same_instant() {
        let forms = [
            "2026-11-24T15:00:00Z",
            "2026-11-24T15:00:00.000+0000",
            "2026-11-24T16:00:00+01:00",
            "2026-11-24T10:00:00.000-0500",
        ];

        let instants: Vec<TokenKind> = forms.iter().map(|form| kinds(form)[0].clone()).collect();

        assert!(instants
            .iter()
            .all(|kind| *kind == TokenKind::DateTime(1_795_532_400_000)));
    }

    #[test]
    fn date_literal_is_a_date_and_decimal_is_a_number() {
        let tokens = kinds("2026-11-24 12.5 -3");

        assert_eq!(
            tokens,
            vec![
                TokenKind::Date(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
                TokenKind::Number(12.5),
                TokenKind::Number(-3.0),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn string_escapes_are_decoded_and_wildcard_escapes_remembered() {
        let tokens = kinds(r#"'it\'s\\\n\t\"\%\_'"#);

        assert_eq!(
            tokens[0],
            TokenKind::Str(vec![
                ('i', false),
                ('t', false),
                ('\'', true),
                ('s', false),
                ('\\', true),
                ('\n', true),
                ('\t', true),
                ('"', true),
                ('%', true),
                ('_', true),
            ])
        );
    }

    #[test]
    fn datetime_without_zone_is_malformed() {
        let error = tokenize("2026-11-24T15:00:00").unwrap_err();

        assert_eq!(error.error_code, "MALFORMED_QUERY");
        assert!(error
            .message
            .ends_with("Invalid datetime: 2026-11-24T15:00:00"));
    }
}
