//! The simulated org's SOQL: the subset the daemon and its tests send, answered as Salesforce would.
//!
//! `GET /query?q=…` runs in three steps, each its own file:
//! - [`parse`] (`lexer.rs`, `parser.rs`): text to an AST, or `MALFORMED_QUERY` with the row, column
//!   and offending token, as the real parser reports them;
//! - [`Query::bind`] (`bind.rs`): names resolved against the [`Schema`](super::schema::Schema)
//!   case-insensitively, literals type-checked and converted once (`INVALID_TYPE`, `INVALID_FIELD`);
//! - [`BoundQuery::run`] (`eval.rs`): filter, ORDER BY, LIMIT and projection over the stored rows,
//!   with Salesforce's semantics (case-insensitive text, nulls first ascending, `!=` true for null).
//!   A WHERE clause that names its records by Id (`Id IN (…)`, possibly ANDed with more) reads
//!   those records by key ([`BoundQuery::run_table`]) rather than scanning the object: the daemon
//!   fetches events' records 200 Ids at a time, and an org of thousands made that O(records × ids).
//!
//! Supported: `SELECT f, … | COUNT() FROM Object [WHERE …] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST],
//! …] [LIMIT n]` with `= != <> < <= > >= LIKE IN NOT IN`, `AND`/`OR`/`NOT` and parentheses, and
//! `null`, booleans, strings, numbers, dates and datetimes as literals, and in the select list a
//! field of the record a custom lookup points to (`Contact__r.Name`, nested in the answer as
//! Salesforce nests it). Not supported: other relationship paths (in WHERE or ORDER BY, standard
//! relationships, two hops: refused with Salesforce's "Didn't understand relationship" error),
//! and, answered `unexpected token`, subqueries, aggregates other than `COUNT()`, GROUP BY, OFFSET,
//! `FIELDS(…)`, bind variables and relative date literals such as `TODAY` or `LAST_N_DAYS:n`.
//!
//! Errors carry Salesforce's `errorCode` (`MALFORMED_QUERY`, `INVALID_TYPE`, `INVALID_FIELD`, and
//! `INVALID_QUERY_FILTER_OPERATOR` for malformed Id literals) and message; see `error.rs`.

mod bind;
mod error;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

pub use bind::BoundQuery;
pub use error::SoqlError;
pub use eval::Table;
pub use lexer::parse_datetime as parse_datetime_millis;
pub use parser::{parse, Query};
