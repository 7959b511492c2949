//! TEMPORARY stand-in until the SOQL branch merges (same public API, SELECT … FROM … only).
use serde_json::{Map, Value};

use super::schema::Schema;

#[derive(Debug)]
pub struct SoqlError {
    pub error_code: &'static str,
    pub message: String,
}

pub struct Query {
    object: String,
    fields: Vec<String>,
}

pub struct BoundQuery {
    object: String,
    fields: Vec<String>,
}

pub fn parse(soql: &str) -> Result<Query, SoqlError> {
    let bad = || SoqlError {
        error_code: "MALFORMED_QUERY",
        message: "unexpected token".into(),
    };
    let rest = soql.trim().strip_prefix("SELECT ").ok_or_else(bad)?;
    let (fields, object) = rest.split_once(" FROM ").ok_or_else(bad)?;
    Ok(Query {
        object: object
            .split_whitespace()
            .next()
            .ok_or_else(bad)?
            .to_string(),
        fields: fields.split(',').map(|f| f.trim().to_string()).collect(),
    })
}

impl Query {
    pub fn object(&self) -> &str {
        &self.object
    }
    pub fn bind(&self, schema: &Schema) -> Result<BoundQuery, SoqlError> {
        let object = schema.object(&self.object).ok_or(SoqlError {
            error_code: "INVALID_TYPE",
            message: "bad".into(),
        })?;
        let mut fields = Vec::new();
        for f in &self.fields {
            fields.push(
                object
                    .field(f)
                    .ok_or(SoqlError {
                        error_code: "INVALID_FIELD",
                        message: "bad".into(),
                    })?
                    .name
                    .clone(),
            );
        }
        Ok(BoundQuery {
            object: object.name.clone(),
            fields,
        })
    }
}

impl BoundQuery {
    pub fn object(&self) -> &str {
        &self.object
    }
    pub fn fields(&self) -> &[String] {
        &self.fields
    }
    pub fn run<'a>(
        &self,
        rows: impl Iterator<Item = &'a Map<String, Value>>,
    ) -> Vec<Map<String, Value>> {
        rows.map(|r| {
            self.fields
                .iter()
                .map(|f| (f.clone(), r.get(f).cloned().unwrap_or(Value::Null)))
                .collect()
        })
        .collect()
    }
}
