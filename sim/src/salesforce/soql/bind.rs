//! Resolves a parsed query against the org's schema: canonical names, type checks, and literals
//! converted once into the form rows are compared in.
//!
//! Checks run in the order Salesforce reports them: the object first (INVALID_TYPE), then the
//! select list, the filter and the sort keys (INVALID_FIELD), so a query with several faults earns the
//! same first error as on a real org.

use super::error::{SoqlError, INVALID_FIELD, INVALID_QUERY_FILTER_OPERATOR, INVALID_TYPE};
use super::eval::{Filter, KeyLookup, LikePattern, Scalar, SortKey, Test};
use super::parser::{Condition, Literal, LiteralValue, Name, Operator, Query, Select};
use crate::salesforce::ids;
use crate::salesforce::schema::{FieldDef, FieldType, ObjectDef, Schema};

/// A query resolved against a schema, ready to run over rows of its object.
#[derive(Clone, Debug)]
pub struct BoundQuery {
    pub(crate) object: String,
    pub(crate) fields: Vec<String>,
    /// Fields of records the query's lookups point to (`Contact__r.Name`), one per lookup.
    pub(crate) relations: Vec<Relation>,
    pub(crate) count: bool,
    pub(crate) filter: Option<Filter>,
    /// The filter's primary-key form, when it names its records by Id ([`Filter::key_lookup`]).
    pub(crate) keys: Option<KeyLookup>,
    pub(crate) order_by: Vec<SortKey>,
    pub(crate) limit: Option<usize>,
}

/// A lookup followed in the select list: `Contact__r.Email` reads `Email` of the Contact whose Id
/// is in `Contact__c`. Salesforce answers it as a nested record under `Contact__r` (with its own
/// `attributes`), or `null` when the lookup is empty.
#[derive(Clone, Debug)]
pub(crate) struct Relation {
    /// `Contact__r`.
    pub name: String,
    /// `Contact__c`: the lookup field holding the related Id.
    pub via: String,
    /// `Contact`: the object the lookup points to.
    pub object: String,
    /// The related record's fields selected, canonical names, in SELECT order.
    pub fields: Vec<String>,
}

/// How a column's values are read from a row and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Case-insensitive text: strings, picklists, phones, emails, URLs.
    Text,
    /// Record Ids and lookups: 15- and 18-character forms are the same record.
    Id,
    Number,
    Boolean,
    DateTime,
    Date,
}

impl Kind {
    fn of(field_type: FieldType) -> Kind {
        match field_type {
            FieldType::Id | FieldType::Reference => Kind::Id,
            FieldType::Double => Kind::Number,
            FieldType::Boolean => Kind::Boolean,
            FieldType::DateTime => Kind::DateTime,
            FieldType::Date => Kind::Date,
            FieldType::String
            | FieldType::TextArea
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Email
            | FieldType::Picklist => Kind::Text,
        }
    }

    /// The type name in "value of filter criterion" messages.
    fn soap_name(self) -> &'static str {
        match self {
            Kind::Text => "string",
            Kind::Id => "id",
            Kind::Number => "double",
            Kind::Boolean => "boolean",
            Kind::DateTime => "dateTime",
            Kind::Date => "date",
        }
    }
}

/// A resolved column: canonical name and how to read it.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    pub kind: Kind,
}

impl Query {
    /// Resolves object and field names against the schema (INVALID_TYPE for an unknown object,
    /// INVALID_FIELD for unknown columns and type-mismatched literals) and returns a plan with
    /// canonical names.
    pub fn bind(&self, schema: &Schema) -> Result<BoundQuery, SoqlError> {
        self.bind_on(schema, false)
    }

    /// [`bind`](Self::bind) for a platform-event channel member's filter expression, which is
    /// written in SOQL's WHERE grammar over the event's fields: the object may be a platform event
    /// (which plain SOQL refuses, events are never stored).
    pub fn bind_event_filter(&self, schema: &Schema) -> Result<BoundQuery, SoqlError> {
        self.bind_on(schema, true)
    }

    fn bind_on(&self, schema: &Schema, events_allowed: bool) -> Result<BoundQuery, SoqlError> {
        let object = self.resolve_object(schema, events_allowed)?;
        let mut relations = Vec::new();
        let (count, fields) = match &self.select {
            Select::Count => (true, Vec::new()),
            Select::Fields(names) => {
                let mut fields: Vec<String> = Vec::with_capacity(names.len());
                for name in names {
                    if let Some((relation, field)) = self.related_field(schema, object, name)? {
                        add_related(&mut relations, relation, field);
                        continue;
                    }
                    let field = self.resolve_field(object, name)?;
                    if fields.contains(&field.name) {
                        // Sent bare, as the FIELDS() documentation quotes it.
                        return Err(SoqlError::bare(
                            INVALID_FIELD,
                            format!("duplicate field selected: {}", field.name),
                        ));
                    }
                    fields.push(field.name.clone());
                }
                (false, fields)
            }
        };
        let filter = match &self.filter {
            Some(condition) => Some(self.bind_condition(object, condition)?),
            None => None,
        };
        let mut order_by = Vec::with_capacity(self.order_by.len());
        for item in &self.order_by {
            let field = self.resolve_field(object, &item.field)?;
            if !field.sortable {
                return Err(SoqlError::at(
                    INVALID_FIELD,
                    &self.source,
                    item.field.at,
                    &format!("field '{}' can not be sorted in a query call", field.name),
                ));
            }
            order_by.push(SortKey {
                column: column(field),
                descending: item.descending,
                nulls_first: item.nulls_first,
            });
        }
        let keys = filter.as_ref().and_then(Filter::key_lookup);
        Ok(BoundQuery {
            object: object.name.clone(),
            fields,
            relations,
            count,
            filter,
            keys,
            order_by,
            limit: self.limit.map(|limit| limit as usize),
        })
    }

    fn resolve_object<'s>(
        &self,
        schema: &'s Schema,
        events_allowed: bool,
    ) -> Result<&'s ObjectDef, SoqlError> {
        let name = &self.object;
        let Some(object) = schema.object(&name.text) else {
            return Err(SoqlError::at(
                INVALID_TYPE,
                &self.source,
                name.at,
                &format!(
                    "sObject type '{}' is not supported. If you are attempting to use a custom \
                     object, be sure to append the '__c' after the entity name. Please reference \
                     your WSDL or the describe call for the appropriate names.",
                    name.text
                ),
            ));
        };
        if object.is_platform_event && !events_allowed {
            // Events are published and streamed, never stored for SOQL; describe says queryable=false.
            return Err(SoqlError::bare(
                INVALID_TYPE,
                format!("entity type {} does not support query", object.name),
            ));
        }
        Ok(object)
    }

    /// A select-list path through one of the object's custom lookups (`Contact__r.Email`):
    /// the lookup (as a [`Relation`] without fields) and the related object's field. `None` for a
    /// path without a relationship; an unknown relationship is left to [`Self::resolve_field`]'s
    /// error.
    fn related_field(
        &self,
        schema: &Schema,
        object: &ObjectDef,
        name: &Name,
    ) -> Result<Option<(Relation, String)>, SoqlError> {
        let mut path = name.text.as_str();
        if let Some((first, rest)) = path.split_once('.') {
            if first.eq_ignore_ascii_case(&object.name) {
                path = rest;
            }
        }
        let Some((relationship, field_name)) = path.split_once('.') else {
            return Ok(None);
        };
        let Some(stem) = relationship
            .get(..relationship.len().saturating_sub(3))
            .filter(|_| relationship.to_ascii_lowercase().ends_with("__r"))
        else {
            return Ok(None);
        };
        let Some(via) = object.field(&format!("{stem}__c")) else {
            return Ok(None);
        };
        let Some(target) = via.reference_to.as_deref().and_then(|t| schema.object(t)) else {
            return Ok(None);
        };
        let field = target.field(field_name).ok_or_else(|| {
            SoqlError::no_such_column(&self.source, name.at, field_name, &target.name)
        })?;
        let relation = Relation {
            name: format!("{}__r", &via.name[..via.name.len() - 3]),
            via: via.name.clone(),
            object: target.name.clone(),
            fields: Vec::new(),
        };
        Ok(Some((relation, field.name.clone())))
    }

    fn resolve_field<'o>(
        &self,
        object: &'o ObjectDef,
        name: &Name,
    ) -> Result<&'o FieldDef, SoqlError> {
        let mut path = name.text.as_str();
        // SOQL accepts fields qualified with the object's own name: `WhatsApp_Message__c.Status__c`.
        if let Some((first, rest)) = path.split_once('.') {
            if first.eq_ignore_ascii_case(&object.name) {
                path = rest;
            }
        }
        if let Some((relationship, _)) = path.split_once('.') {
            return Err(SoqlError::at(
                INVALID_FIELD,
                &self.source,
                name.at,
                &format!(
                    "Didn't understand relationship '{relationship}' in field path. If you are \
                     attempting to use a custom relationship, be sure to append the '__r' after the \
                     custom relationship name. Please reference your WSDL or the describe call for \
                     the appropriate names."
                ),
            ));
        }
        object
            .field(path)
            .ok_or_else(|| SoqlError::no_such_column(&self.source, name.at, path, &object.name))
    }

    fn bind_condition(
        &self,
        object: &ObjectDef,
        condition: &Condition,
    ) -> Result<Filter, SoqlError> {
        let all = |conditions: &[Condition]| {
            conditions
                .iter()
                .map(|c| self.bind_condition(object, c))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match condition {
            Condition::And(conditions) => Filter::And(all(conditions)?),
            Condition::Or(conditions) => Filter::Or(all(conditions)?),
            Condition::Not(inner) => Filter::Not(Box::new(self.bind_condition(object, inner)?)),
            Condition::Compare {
                field,
                operator,
                value,
            } => {
                let field = self.filterable_field(object, field)?;
                let column = column(field);
                let test = if *operator == Operator::Like {
                    self.like(field, column.kind, value)?
                } else {
                    Test::Compare(*operator, self.scalar(field, column.kind, value)?)
                };
                Filter::Test { column, test }
            }
            Condition::In {
                field,
                negated,
                values,
            } => {
                let field = self.filterable_field(object, field)?;
                let column = column(field);
                let values = values
                    .iter()
                    .map(|value| self.scalar(field, column.kind, value))
                    .collect::<Result<Vec<_>, _>>()?;
                Filter::Test {
                    column,
                    test: Test::In {
                        values,
                        negated: *negated,
                    },
                }
            }
        })
    }

    fn filterable_field<'o>(
        &self,
        object: &'o ObjectDef,
        name: &Name,
    ) -> Result<&'o FieldDef, SoqlError> {
        let field = self.resolve_field(object, name)?;
        if !field.filterable {
            return Err(SoqlError::at(
                INVALID_FIELD,
                &self.source,
                name.at,
                &format!("field '{}' can not be filtered in query call", field.name),
            ));
        }
        Ok(field)
    }

    fn like(&self, field: &FieldDef, kind: Kind, value: &Literal) -> Result<Test, SoqlError> {
        match (&value.value, kind) {
            (LiteralValue::Null, _) => Ok(Test::Never),
            (LiteralValue::Text(chars), Kind::Text | Kind::Id) => {
                Ok(Test::Like(LikePattern::compile(chars)))
            }
            // A quoted pattern on a date, number or boolean is refused like any quoted value there.
            _ => Err(self.type_mismatch(field, kind, value.at)),
        }
    }

    /// Converts a literal to the field's type once, so rows are compared without re-parsing.
    fn scalar(&self, field: &FieldDef, kind: Kind, literal: &Literal) -> Result<Scalar, SoqlError> {
        let text = |chars: &[(char, bool)]| chars.iter().map(|(c, _)| *c).collect::<String>();
        match (&literal.value, kind) {
            (LiteralValue::Null, _) => Ok(Scalar::Null),
            (LiteralValue::Text(chars), Kind::Text) => Ok(Scalar::Text(text(chars).to_lowercase())),
            (LiteralValue::Text(chars), Kind::Id) => {
                let id = text(chars);
                // Salesforce checks Id literals before running anything.
                ids::canonical(&id).map(Scalar::Id).ok_or_else(|| {
                    SoqlError::bare(
                        INVALID_QUERY_FILTER_OPERATOR,
                        format!("invalid ID field: {id}"),
                    )
                })
            }
            (LiteralValue::Number(number), Kind::Number) => Ok(Scalar::Number(*number)),
            (LiteralValue::Boolean(value), Kind::Boolean) => Ok(Scalar::Boolean(*value)),
            (LiteralValue::DateTime(millis), Kind::DateTime) => Ok(Scalar::Instant(*millis)),
            (LiteralValue::Date(date), Kind::Date) => Ok(Scalar::Day(*date)),
            _ => Err(self.type_mismatch(field, kind, literal.at)),
        }
    }

    fn type_mismatch(&self, field: &FieldDef, kind: Kind, at: usize) -> SoqlError {
        let quoting = match kind {
            Kind::Text | Kind::Id => "should be enclosed in quotes",
            _ => "should not be enclosed in quotes",
        };
        SoqlError::at(
            INVALID_FIELD,
            &self.source,
            at,
            &format!(
                "value of filter criterion for field '{}' must be of type {} and {quoting}",
                field.name,
                kind.soap_name()
            ),
        )
    }
}

/// Adds `field` of `relation` to the query's relations (one per lookup, fields in SELECT order).
fn add_related(relations: &mut Vec<Relation>, relation: Relation, field: String) {
    match relations.iter_mut().find(|r| r.name == relation.name) {
        Some(known) if !known.fields.contains(&field) => known.fields.push(field),
        Some(_) => {}
        None => relations.push(Relation {
            fields: vec![field],
            ..relation
        }),
    }
}

fn column(field: &FieldDef) -> Column {
    Column {
        name: field.name.clone(),
        kind: Kind::of(field.field_type),
    }
}

impl BoundQuery {
    /// The object's canonical API name.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The canonical select list, in SELECT order (empty for `SELECT COUNT()`).
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// True for `SELECT COUNT()`: the REST layer answers with `totalSize` and no records.
    pub fn is_count(&self) -> bool {
        self.count
    }

    /// Whether one row (e.g. a platform event's fields) passes the WHERE clause.
    pub fn matches(&self, row: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(row))
    }
}
