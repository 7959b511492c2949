//! The org's SOSL: `GET /services/data/vNN.N/search?q=FIND {…} IN PHONE FIELDS RETURNING …`, the
//! subset sfwa sends to find the Contacts and Leads who have a customer's number, answered in
//! Salesforce's shape: `{"searchRecords":[{"attributes":{"type":"Contact","url":…},"Id":…,…}]}`.
//!
//! Supported: `FIND {search query} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Object[(fields
//! [WHERE …] [ORDER BY …] [LIMIT n])], …] [LIMIT n]`. The search query holds words, `"phrases"`,
//! trailing `*` wildcards, `OR`, `AND`, `AND NOT` and parentheses, evaluated left to right;
//! reserved characters (`? & | ! { } [ ] ( ) ^ ~ * : \ " ' + -`) are taken literally after a
//! backslash. Each RETURNING spec is run as the SOQL `SELECT fields FROM Object WHERE …` over the
//! records that matched, so its field and filter errors are SOQL's (`INVALID_FIELD`,
//! `INVALID_TYPE`); a search without RETURNING answers Ids of every searchable object.
//!
//! How terms match, as Salesforce's index does it: text is cut into words (case-insensitive);
//! phone fields compare **digits only**, whatever the punctuation the number was stored with, and
//! a term matches a phone when either digit string ends with the other (at least 7 digits on the
//! shorter side), so `4155550101` finds `(415) 555-0101`, `+1 415 555 0101` and `4155550101`.
//!
//! The search index lags behind writes: a record becomes searchable [`OrgState`]'s
//! `search_index_lag` after its CreatedDate, on the simulator's clock (0 unless a test or the
//! control API `POST /__sim/search {"index_lag_seconds": n}` sets it). Errors: no `{…}` after FIND
//! or an unexpected token is `MALFORMED_SEARCH`; a one-character term is `INVALID_SEARCH`.
//! Not modelled: sharing (the integration user has View All), relevance order, stop words, and the
//! 2,000-result cap per object group beyond a plain overall cap.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::org::{parse_datetime, Record};
use super::rest::{api_error, render};
use super::schema::{FieldType, ObjectDef, Schema};
use super::{soql, OrgState};

/// Most records one search returns (Salesforce: 2,000 from API 28.0).
pub const MAX_RESULTS: usize = 2000;
/// Digits the shorter side of a phone comparison must have.
const PHONE_MATCH_DIGITS: usize = 7;

/// A refused search: the REST error's code and message (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchError {
    pub error_code: &'static str,
    pub message: String,
}

impl SearchError {
    fn malformed(message: impl Into<String>) -> Self {
        SearchError {
            error_code: "MALFORMED_SEARCH",
            message: message.into(),
        }
    }
}

impl From<soql::SoqlError> for SearchError {
    fn from(error: soql::SoqlError) -> Self {
        SearchError {
            error_code: if error.error_code == "MALFORMED_QUERY" {
                "MALFORMED_SEARCH"
            } else {
                error.error_code
            },
            message: error.message,
        }
    }
}

/// Which fields the terms are looked for in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    All,
    Name,
    Email,
    Phone,
}

/// The search query inside the braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A word (lower-cased, escapes resolved; may end in `*`) or a quoted phrase.
    Term {
        text: String,
        phrase: bool,
    },
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    AndNot(Box<Expr>, Box<Expr>),
}

/// One `RETURNING` entry: the object and the SOQL clauses inside its parentheses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Returning {
    pub object: String,
    /// `Id, Phone WHERE …` — empty for a bare object name (then `Id` only).
    pub clauses: String,
}

/// A parsed SOSL statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub expr: Expr,
    pub group: Group,
    pub returning: Vec<Returning>,
    pub limit: Option<usize>,
}

/// Parses `FIND {…} …`.
pub fn parse(text: &str) -> Result<Search, SearchError> {
    let rest = text.trim_start();
    let rest = strip_keyword(rest, "FIND").ok_or_else(|| {
        SearchError::malformed(format!(
            "unexpected token: '{}'",
            rest.split_whitespace().next().unwrap_or("")
        ))
    })?;
    let rest = rest.trim_start();
    let Some(inner_and_rest) = rest.strip_prefix('{') else {
        return Err(SearchError::malformed(
            "No search term found. The search term must be enclosed in braces.",
        ));
    };
    let (inner, rest) = split_braces(inner_and_rest)?;
    let expr = parse_expr(inner)?;
    let (group, rest) = parse_group(rest.trim_start())?;
    let (returning, rest) = parse_returning(rest.trim_start())?;
    let (limit, rest) = parse_limit(rest.trim_start())?;
    if let Some(token) = rest.split_whitespace().next() {
        return Err(SearchError::malformed(format!(
            "unexpected token: '{token}'"
        )));
    }
    Ok(Search {
        expr,
        group,
        returning,
        limit,
    })
}

/// `text` after a leading keyword (case-insensitive, followed by a space, `{`, `(` or the end).
fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let head = text.get(..keyword.len())?;
    let rest = &text[keyword.len()..];
    let boundary = rest
        .chars()
        .next()
        .is_none_or(|c| c.is_whitespace() || c == '{' || c == '(');
    (head.eq_ignore_ascii_case(keyword) && boundary).then_some(rest)
}

/// The search query up to its unescaped closing brace, and what follows it.
fn split_braces(text: &str) -> Result<(&str, &str), SearchError> {
    let mut escaped = false;
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Ok((&text[..at], &text[at + 1..])),
            _ => {}
        }
    }
    Err(SearchError::malformed(
        "No search term found. The search term must be enclosed in braces.",
    ))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Phrase(String),
    Or,
    And,
    Not,
    Open,
    Close,
}

const RESERVED: &str = "?&|!{}[]()^~*:\\\"'+-";

fn tokens(text: &str) -> Result<Vec<Token>, SearchError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut phrase = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => phrase.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => phrase.push(c),
                        None => return Err(SearchError::malformed("unmatched quote")),
                    }
                }
                out.push(Token::Phrase(phrase.to_lowercase()));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        word.extend(chars.next());
                    } else if c == '*' {
                        word.push('*');
                    } else if RESERVED.contains(c) {
                        return Err(SearchError::malformed(format!(
                            "unexpected token: '{c}' (escape reserved characters with a backslash)"
                        )));
                    } else {
                        word.push(c);
                    }
                }
                out.push(match word.to_ascii_uppercase().as_str() {
                    "OR" => Token::Or,
                    "AND" => Token::And,
                    "NOT" => Token::Not,
                    _ => Token::Word(word.to_lowercase()),
                });
            }
        }
    }
    Ok(out)
}

fn parse_expr(text: &str) -> Result<Expr, SearchError> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let expr = parse_sequence(&tokens, &mut at)?;
    match tokens.get(at) {
        None => Ok(expr),
        Some(token) => Err(SearchError::malformed(format!(
            "unexpected token: '{token:?}'"
        ))),
    }
}

/// Terms and operators left to right; two terms side by side mean AND.
fn parse_sequence(tokens: &[Token], at: &mut usize) -> Result<Expr, SearchError> {
    let mut left = parse_operand(tokens, at)?;
    loop {
        match tokens.get(*at) {
            None | Some(Token::Close) => return Ok(left),
            Some(Token::Or) => {
                *at += 1;
                left = Expr::Or(Box::new(left), Box::new(parse_operand(tokens, at)?));
            }
            Some(Token::And) if tokens.get(*at + 1) == Some(&Token::Not) => {
                *at += 2;
                left = Expr::AndNot(Box::new(left), Box::new(parse_operand(tokens, at)?));
            }
            Some(Token::And) => {
                *at += 1;
                left = Expr::And(Box::new(left), Box::new(parse_operand(tokens, at)?));
            }
            Some(_) => {
                left = Expr::And(Box::new(left), Box::new(parse_operand(tokens, at)?));
            }
        }
    }
}

fn parse_operand(tokens: &[Token], at: &mut usize) -> Result<Expr, SearchError> {
    let token = tokens.get(*at).cloned();
    *at += 1;
    match token {
        Some(Token::Word(text)) => term(text, false),
        Some(Token::Phrase(text)) => term(text, true),
        Some(Token::Open) => {
            let inner = parse_sequence(tokens, at)?;
            if tokens.get(*at) != Some(&Token::Close) {
                return Err(SearchError::malformed("missing ')' in the search query"));
            }
            *at += 1;
            Ok(inner)
        }
        Some(other) => Err(SearchError::malformed(format!(
            "unexpected token: '{other:?}'"
        ))),
        None => Err(SearchError::malformed(
            "No search term found. The search term must be enclosed in braces.",
        )),
    }
}

fn term(text: String, phrase: bool) -> Result<Expr, SearchError> {
    if text.trim_end_matches('*').chars().count() < 2 {
        return Err(SearchError {
            error_code: "INVALID_SEARCH",
            message: "search term must be longer than one character".into(),
        });
    }
    Ok(Expr::Term { text, phrase })
}

fn parse_group(text: &str) -> Result<(Group, &str), SearchError> {
    let Some(rest) = strip_keyword(text, "IN") else {
        return Ok((Group::All, text));
    };
    let mut words = rest.trim_start().splitn(2, char::is_whitespace);
    let group = match words.next().unwrap_or("").to_ascii_uppercase().as_str() {
        "ALL" => Group::All,
        "NAME" => Group::Name,
        "EMAIL" => Group::Email,
        "PHONE" => Group::Phone,
        other => {
            return Err(SearchError::malformed(format!(
                "unexpected token: '{other}'"
            )))
        }
    };
    let rest = words.next().unwrap_or("").trim_start();
    let rest = strip_keyword(rest, "FIELDS")
        .ok_or_else(|| SearchError::malformed("expecting FIELDS after the search group"))?;
    Ok((group, rest))
}

fn parse_returning(text: &str) -> Result<(Vec<Returning>, &str), SearchError> {
    let Some(mut rest) = strip_keyword(text, "RETURNING") else {
        return Ok((Vec::new(), text));
    };
    let mut specs = Vec::new();
    loop {
        rest = rest.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            return Err(SearchError::malformed(
                "expecting an object name after RETURNING",
            ));
        }
        let object = rest[..end].to_string();
        rest = rest[end..].trim_start();
        let mut clauses = String::new();
        if let Some(inside) = rest.strip_prefix('(') {
            let close = closing_paren(inside)
                .ok_or_else(|| SearchError::malformed(format!("missing ')' after {object}(")))?;
            clauses = inside[..close].trim().to_string();
            rest = inside[close + 1..].trim_start();
        }
        specs.push(Returning { object, clauses });
        match rest.strip_prefix(',') {
            Some(more) => rest = more,
            None => return Ok((specs, rest)),
        }
    }
}

/// The index of the `)` closing a RETURNING spec (quotes and nested parentheses skipped).
fn closing_paren(text: &str) -> Option<usize> {
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth == 0 => return Some(at),
            ')' if !quoted => depth -= 1,
            _ => {}
        }
    }
    None
}

fn parse_limit(text: &str) -> Result<(Option<usize>, &str), SearchError> {
    let Some(rest) = strip_keyword(text, "LIMIT") else {
        return Ok((None, text));
    };
    let mut words = rest.trim_start().splitn(2, char::is_whitespace);
    let number = words.next().unwrap_or("");
    let limit = number
        .parse()
        .map_err(|_| SearchError::malformed(format!("unexpected token: '{number}'")))?;
    Ok((Some(limit), words.next().unwrap_or("")))
}

impl Search {
    /// The SOQL each RETURNING spec stands for (a search without RETURNING: every searchable
    /// object, Ids only).
    fn soql(&self, schema: &Schema) -> Vec<String> {
        if self.returning.is_empty() {
            return schema
                .objects()
                .filter(|o| searchable(o))
                .map(|o| format!("SELECT Id FROM {}", o.name))
                .collect();
        }
        self.returning
            .iter()
            .map(|spec| {
                let (fields, tail) = split_clauses(spec.clauses.trim());
                let fields = if fields.is_empty() { "Id" } else { fields };
                format!("SELECT {fields} FROM {} {tail}", spec.object)
            })
            .collect()
    }

    /// Whether `record` of `object` matches the search query in the searched fields.
    pub fn matches(&self, object: &ObjectDef, record: &Record) -> bool {
        let values: Vec<(FieldType, &str)> = object
            .fields()
            .iter()
            .filter(|f| in_group(self.group, f.name.as_str(), f.field_type))
            .filter_map(|f| Some((f.field_type, record.get(&f.name)?.as_str()?)))
            .collect();
        eval(&self.expr, &values)
    }
}

/// `Id, Phone WHERE …` → (`Id, Phone`, `WHERE …`): the field list and the clauses after it.
fn split_clauses(clauses: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut previous = ' ';
    for (at, c) in clauses.char_indices() {
        if c == '\'' {
            quoted = !quoted;
        }
        let boundary = previous.is_whitespace() || previous == ',';
        if !quoted && boundary {
            let rest = &clauses[at..];
            if ["WHERE", "ORDER", "LIMIT"]
                .iter()
                .any(|k| strip_keyword(rest, k).is_some())
            {
                return (clauses[..at].trim(), rest);
            }
        }
        previous = c;
    }
    (clauses, "")
}

/// Objects a search without RETURNING looks in: records people work with.
fn searchable(object: &ObjectDef) -> bool {
    !object.is_platform_event
        && !matches!(
            object.name.as_str(),
            "User" | "Group" | "FlowDefinitionView"
        )
}

fn in_group(group: Group, name: &str, field_type: FieldType) -> bool {
    match group {
        Group::Phone => field_type == FieldType::Phone,
        Group::Email => field_type == FieldType::Email,
        Group::Name => matches!(name, "Name" | "FirstName" | "LastName" | "Company"),
        Group::All => field_type.is_textual() && field_type != FieldType::Id,
    }
}

fn eval(expr: &Expr, values: &[(FieldType, &str)]) -> bool {
    match expr {
        Expr::Term { text, phrase } => values
            .iter()
            .any(|(field_type, value)| term_matches(text, *phrase, *field_type, value)),
        Expr::Or(a, b) => eval(a, values) || eval(b, values),
        Expr::And(a, b) => eval(a, values) && eval(b, values),
        Expr::AndNot(a, b) => eval(a, values) && !eval(b, values),
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Whether a term matches one field value (see the module docs).
pub fn term_matches(term: &str, phrase: bool, field_type: FieldType, value: &str) -> bool {
    if field_type == FieldType::Phone {
        let (wanted, stored) = (digits(term), digits(value));
        let shorter = wanted.len().min(stored.len());
        return shorter >= PHONE_MATCH_DIGITS
            && (stored.ends_with(&wanted) || wanted.ends_with(&stored));
    }
    let value = value.to_lowercase();
    if phrase {
        return value.contains(term);
    }
    let words = value.split(|c: char| !c.is_alphanumeric());
    match term.strip_suffix('*') {
        Some(prefix) => words.into_iter().any(|w| w.starts_with(prefix)),
        None => words.into_iter().any(|w| w == term),
    }
}

/// Whether a record created at `created` is in the search index at `now`.
fn indexed(record: &Record, lag: chrono::Duration, now: DateTime<Utc>) -> bool {
    let created = record
        .get("CreatedDate")
        .and_then(Value::as_str)
        .and_then(parse_datetime);
    created.is_none_or(|created| created + lag <= now)
}

/// Runs `search` over the org's records at `now`: the rendered `searchRecords`.
pub fn run(
    org: &OrgState,
    version: &str,
    search: &Search,
    now: DateTime<Utc>,
) -> Result<Vec<Value>, SearchError> {
    let lag = org.search_index_lag();
    let guard = org.org();
    let schema = guard.schema();
    let mut out = Vec::new();
    for text in search.soql(schema) {
        let bound = soql::parse(&text).and_then(|q| q.bind(schema))?;
        let object = schema
            .object(bound.object())
            .ok_or_else(|| SearchError::malformed("unknown object"))?;
        let found = guard
            .rows(&object.name)
            .filter(|r| indexed(r, lag, now) && search.matches(object, r));
        for row in bound.run(found) {
            out.push(render(version, &object.name, row));
        }
    }
    out.truncate(search.limit.unwrap_or(MAX_RESULTS).min(MAX_RESULTS));
    Ok(out)
}

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
}

/// `GET search?q=`.
pub async fn handle(
    State(org): State<Arc<OrgState>>,
    Path(version): Path<String>,
    Query(params): Query<SearchParams>,
) -> Response {
    let Some(text) = params.q.filter(|q| !q.trim().is_empty()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_SEARCH",
            "No search term found. The search term must be enclosed in braces.",
        );
    };
    let result = parse(&text).and_then(|search| run(&org, &version, &search, org.clock.now()));
    match result {
        Ok(records) => Json(json!({ "searchRecords": records })).into_response(),
        Err(error) => api_error(StatusCode::BAD_REQUEST, error.error_code, &error.message),
    }
}

/// The control API's view of search settings: `{"index_lag_seconds": n}`.
pub fn settings_json(org: &OrgState) -> Value {
    let mut body = Map::new();
    body.insert(
        "index_lag_seconds".into(),
        json!(org.search_index_lag().num_seconds()),
    );
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term_of(text: &str) -> Expr {
        Expr::Term {
            text: text.into(),
            phrase: false,
        }
    }

    #[test]
    fn the_search_sfwa_sends_parses_into_terms_group_and_returning_specs() {
        let search = parse(
            "FIND {4155550101 OR 4155550102} IN PHONE FIELDS RETURNING \
             Contact(Id, Phone, MobilePhone, OwnerId), Lead(Id, Phone WHERE IsConverted = false)",
        )
        .unwrap();

        assert_eq!(
            search.expr,
            Expr::Or(
                Box::new(term_of("4155550101")),
                Box::new(term_of("4155550102"))
            )
        );
        assert_eq!(search.group, Group::Phone);
        assert_eq!(search.returning.len(), 2);
        assert_eq!(
            search.returning[1].clauses,
            "Id, Phone WHERE IsConverted = false"
        );
    }

    #[test]
    fn escaped_reserved_characters_are_literal_and_unescaped_ones_are_refused() {
        let escaped = parse(r"FIND {\+1\-415} IN ALL FIELDS").unwrap();
        let refused = parse("FIND {+1-415} IN ALL FIELDS").unwrap_err();

        assert_eq!(escaped.expr, term_of("+1-415"));
        assert_eq!(refused.error_code, "MALFORMED_SEARCH");
    }

    #[test]
    fn a_search_without_braces_or_with_a_one_letter_term_is_refused_as_salesforce_does() {
        let no_braces = parse("FIND 4155550101 IN PHONE FIELDS").unwrap_err();
        let short = parse("FIND {a}").unwrap_err();
        let trailing = parse("FIND {abc} IN PHONE FIELDS BOGUS").unwrap_err();

        assert_eq!(no_braces.error_code, "MALFORMED_SEARCH");
        assert!(no_braces.message.contains("enclosed in braces"));
        assert_eq!(short.error_code, "INVALID_SEARCH");
        assert_eq!(trailing.error_code, "MALFORMED_SEARCH");
    }

    #[test]
    fn phone_terms_match_digits_in_any_format_and_text_terms_match_words() {
        let phone = |value| term_matches("4155550101", false, FieldType::Phone, value);

        assert!(phone("(415) 555-0101"));
        assert!(phone("+1 415 555 0101"));
        assert!(phone("4155550101"));
        assert!(!phone("(650) 555-0101"));
        assert!(!phone("555-0101 ext 4"));
        assert!(term_matches("riv*", false, FieldType::String, "Ana Rivera"));
        assert!(!term_matches("riv", false, FieldType::String, "Ana Rivera"));
    }
}
