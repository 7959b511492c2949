//! The SOQL subset's grammar, as a recursive-descent parser producing an unresolved AST.
//!
//! ```text
//! query      := SELECT select FROM word [WHERE condition] [ORDER BY order (, order)*] [LIMIT integer]
//! select     := COUNT ( ) | word (, word)*
//! condition  := unary (AND unary)* | unary (OR unary)*
//! unary      := NOT unary | ( condition ) | word operator value | word [NOT] IN ( value (, value)* )
//! order      := word [ASC | DESC] [NULLS (FIRST | LAST)]
//! ```
//!
//! AND and OR cannot share a level without parentheses: real SOQL refuses the ambiguity with
//! `unexpected token: 'OR'` rather than applying a precedence, and so does this parser.

use chrono::NaiveDate;

use super::error::SoqlError;
use super::lexer::{tokenize, StrChar, Symbol, Token, TokenKind};

/// A parsed query whose names are not yet checked against a schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The query text, kept for the echo in bind-time errors.
    pub(crate) source: String,
    pub(crate) select: Select,
    pub(crate) object: Name,
    pub(crate) filter: Option<Condition>,
    pub(crate) order_by: Vec<OrderItem>,
    pub(crate) limit: Option<u32>,
}

/// A name as written, with its byte offset for error carets.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Name {
    pub text: String,
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Select {
    /// `SELECT COUNT()`: only the number of matching rows is returned.
    Count,
    Fields(Vec<Name>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        field: Name,
        operator: Operator,
        value: Literal,
    },
    In {
        field: Name,
        negated: bool,
        values: Vec<Literal>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Literal {
    pub value: LiteralValue,
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LiteralValue {
    Null,
    Boolean(bool),
    Text(Vec<StrChar>),
    Number(f64),
    Date(NaiveDate),
    /// Milliseconds since the epoch.
    DateTime(i64),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OrderItem {
    pub field: Name,
    pub descending: bool,
    pub nulls_first: bool,
}

/// Words that end a field list or condition; they cannot be used as field or object names.
const RESERVED: &[&str] = &[
    "AND", "ASC", "BY", "DESC", "FIRST", "FROM", "GROUP", "HAVING", "IN", "LAST", "LIKE", "LIMIT",
    "NOT", "NULL", "NULLS", "OFFSET", "OR", "ORDER", "SELECT", "WHERE", "WITH",
];

/// Parses a SOQL query of the supported subset.
pub fn parse(soql: &str) -> Result<Query, SoqlError> {
    let tokens = tokenize(soql)?;
    let mut parser = Parser {
        source: soql,
        tokens,
        position: 0,
    };
    parser.query()
}

struct Parser<'a> {
    source: &'a str,
    /// Always ends with an `Eof` token, so `peek` never runs off the end.
    tokens: Vec<Token>,
    position: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.position.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::Eof {
            self.position += 1;
        }
        token
    }

    fn unexpected(&self) -> SoqlError {
        let token = self.peek();
        SoqlError::unexpected(self.source, token.start, token.text(self.source))
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        let token = self.peek();
        token.kind == TokenKind::Word && token.text(self.source).eq_ignore_ascii_case(keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.position += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SoqlError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, kind: &TokenKind) -> Result<(), SoqlError> {
        if self.peek().kind == *kind {
            self.position += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A field or object name: any word that is not a keyword.
    fn name(&mut self) -> Result<Name, SoqlError> {
        let token = self.peek();
        let text = token.text(self.source);
        if token.kind != TokenKind::Word || RESERVED.iter().any(|k| k.eq_ignore_ascii_case(text)) {
            return Err(self.unexpected());
        }
        let name = Name {
            text: text.to_string(),
            at: token.start,
        };
        self.position += 1;
        Ok(name)
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.expect_keyword("SELECT")?;
        let select = self.select()?;
        self.expect_keyword("FROM")?;
        // `Group` is an object (users' groups and queues) as well as a keyword: right after FROM
        // it can only be the object, as Salesforce reads it.
        let object = if self.at_keyword("GROUP") {
            let token = self.advance();
            Name {
                text: token.text(self.source).to_string(),
                at: token.start,
            }
        } else {
            self.name()?
        };
        let filter = if self.eat_keyword("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            order_by.push(self.order_item()?);
            while self.peek().kind == TokenKind::Comma {
                self.advance();
                order_by.push(self.order_item()?);
            }
        }
        let limit = if self.eat_keyword("LIMIT") {
            Some(self.limit()?)
        } else {
            None
        };
        if self.peek().kind != TokenKind::Eof {
            return Err(self.unexpected());
        }
        Ok(Query {
            source: self.source.to_string(),
            select,
            object,
            filter,
            order_by,
            limit,
        })
    }

    fn select(&mut self) -> Result<Select, SoqlError> {
        let count_follows =
            self.tokens.get(self.position + 1).map(|t| &t.kind) == Some(&TokenKind::LeftParen);
        if self.at_keyword("COUNT") && count_follows {
            self.advance();
            self.advance();
            self.expect(&TokenKind::RightParen)?;
            return Ok(Select::Count);
        }
        let mut fields = vec![self.name()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            fields.push(self.name()?);
        }
        Ok(Select::Fields(fields))
    }

    fn limit(&mut self) -> Result<u32, SoqlError> {
        let token = self.peek();
        let text = token.text(self.source);
        let value = match token.kind {
            TokenKind::Number(_) if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
            _ => None,
        };
        match value {
            Some(value) => {
                self.advance();
                Ok(value)
            }
            None => Err(self.unexpected()),
        }
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let field = self.name()?;
        let descending = if self.eat_keyword("DESC") {
            true
        } else {
            self.eat_keyword("ASC");
            false
        };
        // Salesforce's default: nulls first ascending, last descending.
        let mut nulls_first = !descending;
        if self.eat_keyword("NULLS") {
            if self.eat_keyword("FIRST") {
                nulls_first = true;
            } else {
                self.expect_keyword("LAST")?;
                nulls_first = false;
            }
        }
        Ok(OrderItem {
            field,
            descending,
            nulls_first,
        })
    }

    fn condition(&mut self) -> Result<Condition, SoqlError> {
        let first = self.unary()?;
        let joiner = if self.at_keyword("AND") {
            "AND"
        } else if self.at_keyword("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut operands = vec![first];
        while self.eat_keyword(joiner) {
            operands.push(self.unary()?);
        }
        // The other joiner here would need a precedence SOQL refuses to pick.
        Ok(if joiner == "AND" {
            Condition::And(operands)
        } else {
            Condition::Or(operands)
        })
    }

    fn unary(&mut self) -> Result<Condition, SoqlError> {
        if self.eat_keyword("NOT") {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.peek().kind == TokenKind::LeftParen {
            self.advance();
            let inner = self.condition()?;
            self.expect(&TokenKind::RightParen)?;
            return Ok(inner);
        }
        let field = self.name()?;
        if self.eat_keyword("IN") {
            return self.in_list(field, false);
        }
        if self.eat_keyword("NOT") {
            self.expect_keyword("IN")?;
            return self.in_list(field, true);
        }
        let operator = match self.peek().kind {
            TokenKind::Comparison(symbol) => match symbol {
                Symbol::Eq => Operator::Eq,
                Symbol::Ne => Operator::Ne,
                Symbol::Lt => Operator::Lt,
                Symbol::Le => Operator::Le,
                Symbol::Gt => Operator::Gt,
                Symbol::Ge => Operator::Ge,
            },
            TokenKind::Word if self.at_keyword("LIKE") => Operator::Like,
            _ => return Err(self.unexpected()),
        };
        self.advance();
        let value = self.literal()?;
        Ok(Condition::Compare {
            field,
            operator,
            value,
        })
    }

    fn in_list(&mut self, field: Name, negated: bool) -> Result<Condition, SoqlError> {
        self.expect(&TokenKind::LeftParen)?;
        let mut values = vec![self.literal()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            values.push(self.literal()?);
        }
        self.expect(&TokenKind::RightParen)?;
        Ok(Condition::In {
            field,
            negated,
            values,
        })
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let token = self.peek();
        let value = match &token.kind {
            TokenKind::Str(chars) => LiteralValue::Text(chars.clone()),
            TokenKind::Number(number) => LiteralValue::Number(*number),
            TokenKind::Date(date) => LiteralValue::Date(*date),
            TokenKind::DateTime(millis) => LiteralValue::DateTime(*millis),
            TokenKind::Word if self.at_keyword("null") => LiteralValue::Null,
            TokenKind::Word if self.at_keyword("true") => LiteralValue::Boolean(true),
            TokenKind::Word if self.at_keyword("false") => LiteralValue::Boolean(false),
            _ => return Err(self.unexpected()),
        };
        let at = token.start;
        self.advance();
        Ok(Literal { value, at })
    }
}

impl Query {
    /// The object name as written in the FROM clause.
    pub fn object(&self) -> &str {
        &self.object.text
    }
}
