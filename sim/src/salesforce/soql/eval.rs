//! Runs a bound query over rows: filter, sort, limit, project.
//!
//! Rows hold values as the REST API renders them (datetimes as `2026-11-24T15:00:00.000+0000`,
//! dates as `2026-11-24`), so each value is read into a typed [`Scalar`] before comparing; literals
//! were converted at bind time. Salesforce never stores an empty string, so `""` reads as null.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::bind::{BoundQuery, Column, Kind};
use super::lexer::{parse_date, parse_datetime, StrChar};
use super::parser::Operator;
use crate::salesforce::ids;

type Row = Map<String, Value>;

/// One object's records as the org keeps them: canonical 18-character Id → record. Ids are
/// handed out in increasing order, so key order is creation order, the order of an unsorted answer.
pub type Table = BTreeMap<String, Row>;

/// A value in comparable form.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar {
    Null,
    /// Lower-cased: SOQL compares and sorts text case-insensitively.
    Text(String),
    /// The 18-character form.
    Id(String),
    Number(f64),
    Boolean(bool),
    /// Milliseconds since the epoch.
    Instant(i64),
    Day(NaiveDate),
}

impl Scalar {
    fn read(row: &Row, column: &Column) -> Scalar {
        let Some(value) = row.get(&column.name) else {
            return Scalar::Null;
        };
        match (value, column.kind) {
            (Value::Null, _) => Scalar::Null,
            (Value::String(text), _) if text.is_empty() => Scalar::Null,
            (Value::String(text), Kind::Text) => Scalar::Text(text.to_lowercase()),
            (Value::String(text), Kind::Id) => {
                Scalar::Id(ids::canonical(text).unwrap_or_else(|| text.clone()))
            }
            (Value::String(text), Kind::DateTime) => {
                parse_datetime(text).map_or(Scalar::Null, Scalar::Instant)
            }
            (Value::String(text), Kind::Date) => parse_date(text).map_or(Scalar::Null, Scalar::Day),
            (Value::String(text), Kind::Number) => {
                text.parse().map_or(Scalar::Null, Scalar::Number)
            }
            (Value::Number(number), Kind::Number) => {
                number.as_f64().map_or(Scalar::Null, Scalar::Number)
            }
            (Value::Bool(value), Kind::Boolean) => Scalar::Boolean(*value),
            (other, Kind::Text) => Scalar::Text(other.to_string().to_lowercase()),
            _ => Scalar::Null,
        }
    }

    /// Ordering between two non-null values of the same kind; `None` across kinds.
    fn compare(&self, other: &Scalar) -> Option<Ordering> {
        match (self, other) {
            (Scalar::Text(a), Scalar::Text(b)) | (Scalar::Id(a), Scalar::Id(b)) => Some(a.cmp(b)),
            (Scalar::Number(a), Scalar::Number(b)) => a.partial_cmp(b),
            (Scalar::Boolean(a), Scalar::Boolean(b)) => Some(a.cmp(b)),
            (Scalar::Instant(a), Scalar::Instant(b)) => Some(a.cmp(b)),
            (Scalar::Day(a), Scalar::Day(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    fn equals(&self, other: &Scalar) -> bool {
        match (self, other) {
            (Scalar::Null, Scalar::Null) => true,
            (Scalar::Null, _) | (_, Scalar::Null) => false,
            _ => self.compare(other) == Some(Ordering::Equal),
        }
    }
}

/// A WHERE clause with its literals converted.
#[derive(Clone, Debug)]
pub(crate) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Test { column: Column, test: Test },
}

#[derive(Clone, Debug)]
pub(crate) enum Test {
    /// Never `Like`: that operator compiles to [`Test::Like`].
    Compare(Operator, Scalar),
    Like(LikePattern),
    In {
        values: Vec<Scalar>,
        negated: bool,
    },
    /// `LIKE null` matches nothing.
    Never,
}

impl Filter {
    pub(crate) fn matches(&self, row: &Row) -> bool {
        match self {
            Filter::And(all) => all.iter().all(|filter| filter.matches(row)),
            Filter::Or(any) => any.iter().any(|filter| filter.matches(row)),
            Filter::Not(inner) => !inner.matches(row),
            Filter::Test { column, test } => test.holds(&Scalar::read(row, column)),
        }
    }

    /// The records this WHERE clause can match named by primary key: `Id = 'x'` or `Id IN (…)`,
    /// alone or as one operand of a top-level AND (the first such operand; the others, including
    /// any further Id test, stay in [`KeyLookup::rest`]). `None` when any record may match, e.g.
    /// under OR or NOT, with `!=` or `NOT IN`, or with a null among the values.
    pub(crate) fn key_lookup(&self) -> Option<KeyLookup> {
        match self {
            Filter::Test { .. } => Some(KeyLookup {
                ids: self.key_ids()?,
                rest: None,
            }),
            Filter::And(all) => {
                let (at, ids) = all
                    .iter()
                    .enumerate()
                    .find_map(|(at, filter)| Some((at, filter.key_ids()?)))?;
                let rest: Vec<Filter> = all
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != at)
                    .map(|(_, filter)| filter.clone())
                    .collect();
                Some(KeyLookup {
                    ids,
                    rest: (!rest.is_empty()).then_some(Filter::And(rest)),
                })
            }
            Filter::Or(_) | Filter::Not(_) => None,
        }
    }

    /// The canonical Ids an `Id = 'x'` or `Id IN (…)` test admits (bind converted each literal to
    /// its 18-character form, so `Scalar::Id` values are canonical).
    fn key_ids(&self) -> Option<BTreeSet<String>> {
        let Filter::Test { column, test } = self else {
            return None;
        };
        if column.name != "Id" || column.kind != Kind::Id {
            return None;
        }
        let literals: &[Scalar] = match test {
            Test::Compare(Operator::Eq, literal) => std::slice::from_ref(literal),
            Test::In {
                values,
                negated: false,
            } => values,
            _ => return None,
        };
        literals
            .iter()
            .map(|literal| match literal {
                Scalar::Id(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A WHERE clause that names its records by Id: read those by key, then test the rest of the
/// clause on them alone (O(ids) rather than O(records × ids) for the daemon's 200-Id fetches).
#[derive(Clone, Debug)]
pub(crate) struct KeyLookup {
    /// Canonical Ids, in key order: the order a scan of the [`Table`] would meet them in.
    ids: BTreeSet<String>,
    /// The other operands of the AND, if any.
    rest: Option<Filter>,
}

impl Test {
    /// SOQL null semantics: `= null` and `!= null` test presence; `!=` and `NOT IN` with a value are
    /// true for null fields (unlike SQL); ordering comparisons and LIKE are false for them.
    fn holds(&self, value: &Scalar) -> bool {
        match self {
            Test::Compare(operator, literal) => match operator {
                Operator::Eq => value.equals(literal),
                Operator::Ne => !value.equals(literal),
                Operator::Like => false,
                Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                    let Some(ordering) = value.compare(literal) else {
                        return false;
                    };
                    match operator {
                        Operator::Lt => ordering.is_lt(),
                        Operator::Le => ordering.is_le(),
                        Operator::Gt => ordering.is_gt(),
                        _ => ordering.is_ge(),
                    }
                }
            },
            Test::Like(pattern) => match value {
                Scalar::Text(text) | Scalar::Id(text) => pattern.matches(text),
                _ => false,
            },
            Test::In { values, negated } => {
                values.iter().any(|literal| value.equals(literal)) != *negated
            }
            Test::Never => false,
        }
    }
}

/// A LIKE pattern, lower-cased: `%` is any run of characters, `_` exactly one, unless escaped.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LikePattern(Vec<LikePart>);

#[derive(Clone, Copy, Debug, PartialEq)]
enum LikePart {
    Char(char),
    AnyOne,
    AnyRun,
}

impl LikePattern {
    pub(crate) fn compile(chars: &[StrChar]) -> Self {
        let mut parts = Vec::with_capacity(chars.len());
        for &(c, escaped) in chars {
            match (c, escaped) {
                ('%', false) => parts.push(LikePart::AnyRun),
                ('_', false) => parts.push(LikePart::AnyOne),
                _ => parts.extend(c.to_lowercase().map(LikePart::Char)),
            }
        }
        LikePattern(parts)
    }

    /// Wildcard matching with single-star backtracking: linear for the usual `abc%` and `%abc%`.
    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.to_lowercase().chars().collect();
        let pattern = &self.0;
        let (mut p, mut t) = (0, 0);
        let mut resume: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some(LikePart::AnyRun) => {
                    resume = Some((p, t));
                    p += 1;
                }
                Some(LikePart::AnyOne) => {
                    p += 1;
                    t += 1;
                }
                Some(LikePart::Char(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match resume {
                    Some((star, from)) => {
                        p = star + 1;
                        t = from + 1;
                        resume = Some((star, from + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|part| *part == LikePart::AnyRun)
    }
}

/// One ORDER BY key.
#[derive(Clone, Debug)]
pub(crate) struct SortKey {
    pub column: Column,
    pub descending: bool,
    pub nulls_first: bool,
}

impl SortKey {
    fn order(&self, a: &Scalar, b: &Scalar) -> Ordering {
        // Null placement is independent of the direction: NULLS FIRST means first, even for DESC.
        match (a, b) {
            (Scalar::Null, Scalar::Null) => Ordering::Equal,
            (Scalar::Null, _) if self.nulls_first => Ordering::Less,
            (Scalar::Null, _) => Ordering::Greater,
            (_, Scalar::Null) if self.nulls_first => Ordering::Greater,
            (_, Scalar::Null) => Ordering::Less,
            _ => {
                let ordering = a.compare(b).unwrap_or(Ordering::Equal);
                if self.descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            }
        }
    }
}

impl BoundQuery {
    /// Filters, sorts and limits `rows` (all of this query's object) and returns them projected: each
    /// a map of the selected fields in SELECT order, missing fields as null. For `SELECT COUNT()`
    /// the maps are empty and only their number matters.
    pub fn run<'a>(&self, rows: impl Iterator<Item = &'a Row>) -> Vec<Row> {
        self.run_filtered(rows, self.filter.as_ref())
    }

    /// [`run`](Self::run) over all of an object's records, `run(table.values())`, with the same
    /// rows in the same order; a WHERE clause naming its records by Id (see [`KeyLookup`]) reads
    /// just those, by key, instead of scanning the table.
    pub fn run_table(&self, table: &Table) -> Vec<Row> {
        match &self.keys {
            Some(lookup) => self.run_filtered(
                lookup.ids.iter().filter_map(|id| table.get(id)),
                lookup.rest.as_ref(),
            ),
            None => self.run(table.values()),
        }
    }

    fn run_filtered<'a>(
        &self,
        rows: impl Iterator<Item = &'a Row>,
        filter: Option<&Filter>,
    ) -> Vec<Row> {
        let limit = self.limit.unwrap_or(usize::MAX);
        let matching = rows.filter(|row| filter.is_none_or(|f| f.matches(row)));
        if self.order_by.is_empty() {
            return matching.take(limit).map(|row| self.project(row)).collect();
        }
        // Read each sort key once per row rather than once per comparison.
        let mut keyed: Vec<(Vec<Scalar>, &Row)> = matching
            .map(|row| {
                let keys = self
                    .order_by
                    .iter()
                    .map(|key| Scalar::read(row, &key.column))
                    .collect();
                (keys, row)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            self.order_by
                .iter()
                .zip(a.iter().zip(b))
                .map(|(key, (a, b))| key.order(a, b))
                .find(|ordering| ordering.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        keyed
            .into_iter()
            .take(limit)
            .map(|(_, row)| self.project(row))
            .collect()
    }

    fn project(&self, row: &Row) -> Row {
        let mut projected: Row = self
            .fields
            .iter()
            .map(|field| {
                (
                    field.clone(),
                    row.get(field).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        // The lookup's Id for now; [`BoundQuery::attach_relations`] puts the related record there.
        for relation in &self.relations {
            let id = row.get(&relation.via).cloned().unwrap_or(Value::Null);
            projected.insert(relation.name.clone(), id);
        }
        projected
    }

    /// Replaces each row's related Ids with the related records' selected fields, as Salesforce
    /// nests them (`"Contact__r": {"attributes": {"type": "Contact", …}, "Email": …}`, or `null`
    /// when the lookup is empty or its record is gone). `fetch(object, id)` reads a record.
    pub fn attach_relations<'r>(
        &self,
        rows: &mut [Row],
        fetch: impl Fn(&str, &str) -> Option<&'r Row>,
    ) {
        for row in rows.iter_mut() {
            for relation in &self.relations {
                let related = row
                    .get(&relation.name)
                    .and_then(Value::as_str)
                    .and_then(|id| fetch(&relation.object, id));
                let nested = match related {
                    Some(record) => {
                        let mut nested = Row::new();
                        nested.insert(
                            "attributes".into(),
                            serde_json::json!({"type": relation.object}),
                        );
                        for field in &relation.fields {
                            nested.insert(
                                field.clone(),
                                record.get(field).cloned().unwrap_or(Value::Null),
                            );
                        }
                        Value::Object(nested)
                    }
                    None => Value::Null,
                };
                row.insert(relation.name.clone(), nested);
            }
        }
    }
}
