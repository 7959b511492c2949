//! The org's data: records by object, validated and typed the way Salesforce's DML layer does it.
//!
//! Every write goes through [`Org::insert`], [`Org::update`] or [`Org::delete`], which return the
//! per-record error Salesforce would (STRING_TOO_LONG, restricted picklists, lookups, duplicates…).
//! Collections with `allOrNone` use a [`Transaction`] whose undo log restores the org on failure.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::ids::{self, IdGenerator};
use super::schema::{FieldDef, FieldType, ObjectDef, Schema};
use super::soql::Table;
use super::validation::{self, Save};

/// A stored record: canonical field API name → value. Absent fields are null.
pub type Record = Map<String, Value>;

/// The user every write is attributed to (the integration user of the sim's JWT flow).
pub const INTEGRATION_USER_ID: &str = "0055g00000SfWaUAAV";
/// A sales rep every simulated org has (more can be inserted into `User` through the control API).
pub const REP_USER_ID: &str = "0055g00000RePuSAAV";
/// The DeveloperName of the queue every simulated org has, sfwa's default `salesforce.inbound_queue`.
pub const INBOUND_QUEUE: &str = "WhatsApp_Inbound";

/// Who makes a DML call: it decides which validation rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Caller {
    /// sfwa's integration user (every REST call): holds the `WhatsApp_Integration_Writes`
    /// custom permission unless the control API took it away.
    #[default]
    Integration,
    /// A sales rep in the UI: never holds it.
    Rep,
}

/// A per-record error in Salesforce's shape (`statusCode`, `message`, `fields`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmlError {
    pub status_code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl DmlError {
    fn new(status_code: &'static str, message: impl Into<String>, fields: &[&str]) -> Self {
        DmlError {
            status_code,
            message: message.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"statusCode": self.status_code, "message": self.message, "fields": self.fields})
    }
}

/// Why a write failed: one record's problem, or a body Salesforce could not even deserialise
/// (which fails the whole request with HTTP 400, as JSON_PARSER_ERROR does on the real API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    Record(DmlError),
    Request {
        error_code: &'static str,
        message: String,
    },
}

impl From<DmlError> for WriteError {
    fn from(error: DmlError) -> Self {
        WriteError::Record(error)
    }
}

/// The years a Salesforce date or datetime field can hold.
const MIN_YEAR: i32 = 1700;
const MAX_YEAR: i32 = 4000;

/// Renders a datetime as the REST API does: `2026-11-24T15:00:00.000+0000`.
pub fn format_datetime(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Parses the datetime spellings Salesforce accepts in JSON bodies: those of SOQL literals (`Z`,
/// `+0000` as the API itself renders them, `+00:00`), or no zone at all, which the API takes as
/// UTC. The simulator's own parser, not the daemon's: a witness of what the daemon writes.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    super::soql::parse_datetime_millis(text)
        .and_then(DateTime::from_timestamp_millis)
        .or_else(|| {
            // A datetime without a zone is taken as UTC, like the API does.
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// All records of the org.
#[derive(Debug)]
pub struct Org {
    schema: Arc<Schema>,
    ids: IdGenerator,
    /// Object name → Id → record. A BTreeMap so unordered queries come back in creation order, as a
    /// small real org mostly does.
    records: HashMap<String, BTreeMap<String, Record>>,
    /// Deleted Ids (→ object), so writes to them say ENTITY_IS_DELETED rather than "not found".
    deleted: HashMap<String, String>,
    /// (object, unique field) → value → Id; keeps duplicate checks O(1) on large orgs.
    unique_index: HashMap<(String, String), HashMap<String, String>>,
    auto_numbers: HashMap<String, u64>,
    /// Whether the integration user holds `WhatsApp_Integration_Writes` (the package grants it;
    /// `POST /__sim/permissions` can take it away to show what a missing grant does).
    integration_writes: bool,
    /// The org's own validation rules (see [`validation::OrgRule`]).
    org_rules: Vec<validation::OrgRule>,
}

/// Undo log for an all-or-none batch: (object, id, previous state).
#[derive(Debug, Default)]
pub struct Transaction {
    undo: Vec<(String, String, Option<Record>, bool)>,
}

impl Org {
    pub fn new(schema: Arc<Schema>) -> Org {
        let mut org = Org {
            schema,
            ids: IdGenerator::default(),
            records: HashMap::new(),
            deleted: HashMap::new(),
            unique_index: HashMap::new(),
            auto_numbers: HashMap::new(),
            integration_writes: true,
            org_rules: Vec::new(),
        };
        org.seed_owners();
        org
    }

    /// Whether the integration user holds the custom permission the validation rules exempt.
    pub fn integration_writes(&self) -> bool {
        self.integration_writes
    }

    pub fn set_integration_writes(&mut self, granted: bool) {
        self.integration_writes = granted;
    }

    /// Adds a validation rule of the org's own: it applies to every user, sfwa's too.
    pub fn add_org_rule(&mut self, rule: validation::OrgRule) {
        self.org_rules.push(rule);
    }

    pub fn org_rules(&self) -> &[validation::OrgRule] {
        &self.org_rules
    }

    /// The package's rules (unless `caller` is exempt), then the org's own.
    fn validate(&self, caller: Caller, object: &str, save: &Save) -> Result<(), DmlError> {
        validation::check(object, save, self.exempt(caller))?;
        self.org_rules
            .iter()
            .try_for_each(|rule| rule.check(object, save))
    }

    fn exempt(&self, caller: Caller) -> bool {
        caller == Caller::Integration && self.integration_writes
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Every live record of an object (for SOQL and the control API).
    pub fn rows(&self, object: &str) -> impl Iterator<Item = &Record> {
        self.records
            .get(object)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Every live record of an object by canonical Id, for SOQL's reads by key
    /// ([`super::soql::BoundQuery::run_table`]). Keys are the 18-character form the records' own
    /// `Id` holds: Ids this org's [`IdGenerator`] made, or seeded ones in that same form.
    pub fn table(&self, object: &str) -> &Table {
        static EMPTY: Table = Table::new();
        self.records.get(object).unwrap_or(&EMPTY)
    }

    pub fn count(&self, object: &str) -> usize {
        self.records.get(object).map_or(0, |m| m.len())
    }

    /// The object an Id belongs to, by key prefix.
    pub fn object_of(&self, id: &str) -> Option<&ObjectDef> {
        self.schema.object_by_prefix(id.get(..3)?)
    }

    pub fn get(&self, object: &str, id: &str) -> Result<&Record, DmlError> {
        let id = self.resolve_id(object, id)?;
        self.records
            .get(object)
            .and_then(|m| m.get(&id))
            .ok_or_else(|| self.missing(&id))
    }

    /// Looks a record up by an external-id field value.
    pub fn find_by_unique(&self, object: &str, field: &str, value: &str) -> Option<String> {
        self.unique_index
            .get(&(object.to_string(), field.to_string()))
            .and_then(|index| index.get(value))
            .cloned()
    }

    /// Creates a record as the integration user; returns its new Id.
    pub fn insert(
        &mut self,
        object: &ObjectDef,
        input: &Map<String, Value>,
        now: DateTime<Utc>,
        tx: &mut Transaction,
    ) -> Result<String, WriteError> {
        self.insert_as(Caller::Integration, object, input, now, tx)
    }

    /// Creates a record as `caller`; returns its new Id.
    pub fn insert_as(
        &mut self,
        caller: Caller,
        object: &ObjectDef,
        input: &Map<String, Value>,
        now: DateTime<Utc>,
        tx: &mut Transaction,
    ) -> Result<String, WriteError> {
        let mut values = self.coerce(object, input, true)?;
        for field in object.fields() {
            if !values.contains_key(&field.name) {
                if let Some(default) = &field.default_value {
                    let value = if field.field_type == FieldType::Boolean {
                        Value::Bool(default == "true")
                    } else {
                        Value::String(default.clone())
                    };
                    values.insert(field.name.clone(), value);
                }
            }
        }
        let missing: Vec<&str> = object
            .fields()
            .iter()
            .filter(|f| f.required && values.get(&f.name).is_none_or(Value::is_null))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(DmlError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                &missing,
            )
            .into());
        }
        let id = self.ids.next(&object.key_prefix);
        self.check_unique(object, &id, &values)?;
        let stamp = Value::String(format_datetime(now));
        let mut record = Record::new();
        record.insert("Id".into(), Value::String(id.clone()));
        for field in object.fields() {
            let value = match field.name.as_str() {
                "Id" => continue,
                "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => stamp.clone(),
                "IsDeleted" => Value::Bool(false),
                "CreatedById" => Value::String(INTEGRATION_USER_ID.into()),
                "OwnerId" => values
                    .remove("OwnerId")
                    .filter(|v| !v.is_null())
                    .unwrap_or_else(|| Value::String(INTEGRATION_USER_ID.into())),
                _ => match &field.auto_number {
                    Some(format) => Value::String(self.next_auto_number(&object.name, format)),
                    None => values.remove(&field.name).unwrap_or(Value::Null),
                },
            };
            record.insert(field.name.clone(), value);
        }
        compute_names(object, &mut record);
        let save = Save {
            before: None,
            after: &record,
        };
        self.validate(caller, &object.name, &save)?;
        self.put(&object.name, &id, Some(record), tx);
        Ok(id)
    }

    /// Updates fields of an existing record as the integration user.
    pub fn update(
        &mut self,
        object: &ObjectDef,
        id: &str,
        input: &Map<String, Value>,
        now: DateTime<Utc>,
        tx: &mut Transaction,
    ) -> Result<String, WriteError> {
        self.update_as(Caller::Integration, object, id, input, now, tx)
    }

    /// Updates fields of an existing record as `caller`.
    pub fn update_as(
        &mut self,
        caller: Caller,
        object: &ObjectDef,
        id: &str,
        input: &Map<String, Value>,
        now: DateTime<Utc>,
        tx: &mut Transaction,
    ) -> Result<String, WriteError> {
        let id = self.resolve_id(&object.name, id)?;
        let values = self.coerce(object, input, false)?;
        // Borrowed until the write: one copy of the record (the new version), not two.
        let before = self
            .records
            .get(&object.name)
            .and_then(|m| m.get(&id))
            .ok_or_else(|| self.missing(&id))?;
        let mut record = before.clone();
        for field in object.fields().iter().filter(|f| f.required) {
            if values.get(&field.name).is_some_and(Value::is_null) {
                return Err(DmlError::new(
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", field.name),
                    &[&field.name],
                )
                .into());
            }
        }
        self.check_unique(object, &id, &values)?;
        for (name, value) in values {
            record.insert(name, value);
        }
        let stamp = Value::String(format_datetime(now));
        record.insert("LastModifiedDate".into(), stamp.clone());
        record.insert("SystemModstamp".into(), stamp);
        compute_names(object, &mut record);
        let save = Save {
            before: Some(before),
            after: &record,
        };
        self.validate(caller, &object.name, &save)?;
        self.put(&object.name, &id, Some(record), tx);
        Ok(id)
    }

    pub fn delete(
        &mut self,
        object: &str,
        id: &str,
        tx: &mut Transaction,
    ) -> Result<String, DmlError> {
        let id = self.resolve_id(object, id)?;
        if !self
            .records
            .get(object)
            .is_some_and(|m| m.contains_key(&id))
        {
            return Err(self.missing(&id));
        }
        self.put(object, &id, None, tx);
        self.deleted.insert(id.clone(), object.to_string());
        Ok(id)
    }

    /// Marks a Lead converted (`IsConverted = true`), as `convertLead` would; only the flag, no
    /// Contact or Account is created. For tests: the field is not writable through DML.
    pub fn convert_lead(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), DmlError> {
        let id = self.resolve_id("Lead", id)?;
        let mut record = self.get("Lead", &id)?.clone();
        record.insert("IsConverted".into(), Value::Bool(true));
        record.insert(
            "LastModifiedDate".into(),
            Value::String(format_datetime(now)),
        );
        self.put("Lead", &id, Some(record), &mut Transaction::default());
        Ok(())
    }

    /// Stores a record the platform itself keeps (a flow's definition view, a queue), bypassing
    /// DML: such objects are not writable through the API. Returns its Id (given, or a new one).
    pub fn seed_system_record(&mut self, object: &str, mut record: Record) -> String {
        let id = match record.get("Id").and_then(Value::as_str) {
            Some(id) => {
                // SOQL reads records by key, which must be the canonical form of their Id.
                debug_assert_eq!(ids::canonical(id).as_deref(), Some(id), "non-canonical Id");
                id.to_string()
            }
            None => {
                let prefix = self
                    .schema
                    .object(object)
                    .map_or("000".to_string(), |d| d.key_prefix.clone());
                let id = self.ids.next(&prefix);
                record.insert("Id".into(), Value::String(id.clone()));
                id
            }
        };
        self.put(object, &id, Some(record), &mut Transaction::default());
        id
    }

    /// A fresh Id with `prefix`, unique in this org.
    pub fn new_id(&self, prefix: &str) -> String {
        self.ids.next(prefix)
    }

    /// Undoes every write of a transaction (all-or-none rollback).
    pub fn rollback(&mut self, tx: Transaction) {
        for (object, id, previous, was_deleted) in tx.undo.into_iter().rev() {
            self.put(&object, &id, previous, &mut Transaction::default());
            if !was_deleted {
                self.deleted.remove(&id);
            }
        }
    }

    /// Validates an Id for `object`: malformed or another object's Id is MALFORMED_ID.
    fn resolve_id(&self, object: &str, id: &str) -> Result<String, DmlError> {
        let canonical = ids::canonical(id);
        let def = self.schema.object(object);
        match (canonical, def) {
            (Some(canonical), Some(def)) if canonical.starts_with(&def.key_prefix) => Ok(canonical),
            _ => Err(DmlError::new(
                "MALFORMED_ID",
                format!(
                    "{} ID: id value of incorrect type: {id}",
                    def.map_or(object, |d| d.label.as_str())
                ),
                &["Id"],
            )),
        }
    }

    fn missing(&self, id: &str) -> DmlError {
        if self.deleted.contains_key(id) {
            DmlError::new("ENTITY_IS_DELETED", "entity is deleted", &[])
        } else {
            DmlError::new(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                &[],
            )
        }
    }

    /// Writes (or removes) a record, keeping the unique index and the undo log in step.
    fn put(&mut self, object: &str, id: &str, record: Option<Record>, tx: &mut Transaction) {
        let table = self.records.entry(object.to_string()).or_default();
        let previous = match record {
            Some(record) => table.insert(id.to_string(), record),
            None => table.remove(id),
        };
        let was_deleted = self.deleted.contains_key(id);
        let current = self.records.get(object).and_then(|m| m.get(id));
        if let Some(def) = self.schema.object(object) {
            for field in def.fields().iter().filter(|f| f.unique || f.external_id) {
                let key = (object.to_string(), field.name.clone());
                let index = self.unique_index.entry(key).or_default();
                if let Some(Value::String(old)) = previous.as_ref().and_then(|r| r.get(&field.name))
                {
                    index.remove(old);
                }
                if let Some(Value::String(new)) = current.and_then(|r| r.get(&field.name)) {
                    index.insert(new.clone(), id.to_string());
                }
            }
        }
        tx.undo
            .push((object.to_string(), id.to_string(), previous, was_deleted));
    }

    fn check_unique(&self, object: &ObjectDef, id: &str, values: &Record) -> Result<(), DmlError> {
        for field in object.fields().iter().filter(|f| f.unique) {
            let Some(Value::String(value)) = values.get(&field.name) else {
                continue;
            };
            if let Some(owner) = self.find_by_unique(&object.name, &field.name, value) {
                if owner != id {
                    return Err(DmlError::new(
                        "DUPLICATE_VALUE",
                        format!(
                            "duplicate value found: {} duplicates value on record with id: {owner}",
                            field.name
                        ),
                        &[],
                    ));
                }
            }
        }
        Ok(())
    }

    fn next_auto_number(&mut self, object: &str, format: &str) -> String {
        let counter = self.auto_numbers.entry(object.to_string()).or_insert(0);
        *counter += 1;
        render_auto_number(format, *counter)
    }

    /// Turns request JSON into typed, canonical-named values, enforcing the field rules.
    fn coerce(
        &self,
        object: &ObjectDef,
        input: &Map<String, Value>,
        creating: bool,
    ) -> Result<Record, WriteError> {
        let mut values = Record::new();
        for (name, value) in input {
            if name == "attributes" || name.eq_ignore_ascii_case("id") {
                continue;
            }
            let field = object.field(name).ok_or_else(|| {
                DmlError::new(
                    "INVALID_FIELD",
                    format!("No such column '{name}' on sobject of type {}", object.name),
                    &[],
                )
            })?;
            let writable = if creating {
                field.createable
            } else {
                field.updateable
            };
            if !writable {
                return Err(DmlError::new(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!(
                        "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                        field.name
                    ),
                    &[&field.name],
                )
                .into());
            }
            values.insert(field.name.clone(), self.coerce_value(field, value)?);
        }
        Ok(values)
    }

    fn coerce_value(&self, field: &FieldDef, value: &Value) -> Result<Value, WriteError> {
        let parser_error = |kind: &str| {
            WriteError::Request {
            error_code: "JSON_PARSER_ERROR",
            message: format!(
                "Cannot deserialize instance of {kind} from {} value {} or request may be missing a required field",
                json_token(value),
                value_text(value)
            ),
        }
        };
        // Salesforce stores an empty string as null.
        if value.is_null() || value.as_str() == Some("") {
            return Ok(Value::Null);
        }
        match field.field_type {
            FieldType::Boolean => value
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| parser_error("boolean")),
            FieldType::Double => match value {
                Value::Number(_) => Ok(value.clone()),
                Value::String(s) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| parser_error("double")),
                _ => Err(parser_error("double")),
            },
            FieldType::DateTime => {
                // The API's parser wants a four-digit year: `+58870-01-01T…` (what a timestamp in
                // milliseconds becomes) fails the whole request, like any unreadable value.
                let text = value
                    .as_str()
                    .filter(|t| t.len() > 4 && t.as_bytes()[..4].iter().all(u8::is_ascii_digit))
                    .ok_or_else(|| parser_error("datetime"))?;
                let at = parse_datetime(text).ok_or_else(|| parser_error("datetime"))?;
                // Readable but outside what the database stores: that record alone is refused.
                if !(MIN_YEAR..=MAX_YEAR).contains(&at.year()) {
                    return Err(DmlError::new(
                        "FIELD_INTEGRITY_EXCEPTION",
                        format!(
                            "{}: value outside the valid range (1700-01-01 to 4000-12-31): {text}",
                            field.label
                        ),
                        &[&field.name],
                    )
                    .into());
                }
                Ok(Value::String(format_datetime(at)))
            }
            FieldType::Date => value
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok())
                .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| parser_error("date")),
            _ => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(parser_error("string")),
                };
                self.check_text(field, &text)?;
                Ok(Value::String(text))
            }
        }
    }

    fn check_text(&self, field: &FieldDef, text: &str) -> Result<(), DmlError> {
        let name = field.name.as_str();
        if field.length > 0 && text.chars().count() > field.length {
            return Err(DmlError::new(
                "STRING_TOO_LONG",
                format!(
                    "{}: data value too large: {} (max length={})",
                    field.label,
                    abbreviate(text),
                    field.length
                ),
                &[name],
            ));
        }
        match field.field_type {
            FieldType::Picklist
                if field.restricted && !field.picklist_values.iter().any(|v| v == text) =>
            {
                Err(DmlError::new(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!(
                        "{}: bad value for restricted picklist field: {text}",
                        field.label
                    ),
                    &[name],
                ))
            }
            FieldType::Email if !text.contains('@') => Err(DmlError::new(
                "INVALID_EMAIL_ADDRESS",
                format!("{}: invalid email address: {text}", field.label),
                &[name],
            )),
            FieldType::Reference => self.check_lookup(field, text),
            _ => Ok(()),
        }
    }

    fn check_lookup(&self, field: &FieldDef, text: &str) -> Result<(), DmlError> {
        if field.name == "OwnerId" {
            return self.check_owner(text);
        }
        let target = field.reference_to.as_deref().unwrap_or_default();
        let incorrect = || {
            DmlError::new(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("{}: id value of incorrect type: {text}", field.label),
                &[&field.name],
            )
        };
        let id = ids::canonical(text).ok_or_else(incorrect)?;
        let Some(def) = self.schema.object(target) else {
            // Lookups to objects the sim does not model (User) are accepted as they are.
            return Ok(());
        };
        if !id.starts_with(&def.key_prefix) {
            return Err(incorrect());
        }
        if self
            .records
            .get(&def.name)
            .is_some_and(|m| m.contains_key(&id))
        {
            Ok(())
        } else if self.deleted.contains_key(&id) {
            Err(DmlError::new(
                "ENTITY_IS_DELETED",
                "entity is deleted",
                &[&field.name],
            ))
        } else {
            Err(DmlError::new(
                "INVALID_CROSS_REFERENCE_KEY",
                format!("{}: invalid cross reference id", field.label),
                &[&field.name],
            ))
        }
    }
}

impl Org {
    /// OwnerId takes a user or a queue, as on the platform: another object's Id is the wrong
    /// type; an Id of no user and no queue (a public group is not a queue) is refused.
    fn check_owner(&self, text: &str) -> Result<(), DmlError> {
        let id = ids::canonical(text).filter(|id| id.starts_with("005") || id.starts_with("00G"));
        let Some(id) = id else {
            return Err(DmlError::new(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("Owner ID: id value of incorrect type: {text}"),
                &["OwnerId"],
            ));
        };
        let is_owner = match &id[..3] {
            "005" => self
                .records
                .get("User")
                .is_some_and(|m| m.contains_key(&id)),
            _ => self
                .records
                .get("Group")
                .and_then(|m| m.get(&id))
                .is_some_and(|g| g.get("Type").and_then(Value::as_str) == Some("Queue")),
        };
        if is_owner {
            Ok(())
        } else {
            Err(DmlError::new(
                "INVALID_CROSS_REFERENCE_KEY",
                "Owner ID: invalid cross reference id",
                &["OwnerId"],
            ))
        }
    }

    /// The users and the queue every simulated org starts with: the integration user, a sales rep
    /// ([`REP_USER_ID`]) and the package's default inbound queue ([`INBOUND_QUEUE`]).
    fn seed_owners(&mut self) {
        let user = |id: &str, name: &str, username: &str| {
            let mut r = Record::new();
            r.insert("Id".into(), Value::String(id.into()));
            r.insert("Name".into(), Value::String(name.into()));
            r.insert("Username".into(), Value::String(username.into()));
            r
        };
        self.seed_system_record(
            "User",
            user(
                INTEGRATION_USER_ID,
                "sfwa Integration",
                "integration@sfwa.example",
            ),
        );
        self.seed_system_record("User", user(REP_USER_ID, "Rita Rep", "rita@sfwa.example"));
        let mut queue = Record::new();
        queue.insert("Name".into(), Value::String("WhatsApp Inbound".into()));
        queue.insert("DeveloperName".into(), Value::String(INBOUND_QUEUE.into()));
        queue.insert("Type".into(), Value::String("Queue".into()));
        self.seed_system_record("Group", queue);
    }
}

/// Name on Contact and Lead is derived from FirstName and LastName, as on the platform; so are the
/// fields [`super::schema::derive_fields`] derives (a Case's IsClosed).
fn compute_names(object: &ObjectDef, record: &mut Record) {
    super::schema::derive_fields(object, record);
    if object.field("FirstName").is_some() && object.field("LastName").is_some() {
        let name = ["FirstName", "LastName"]
            .iter()
            .filter_map(|f| record.get(*f).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        record.insert("Name".into(), Value::String(name));
    }
}

/// `WAM-{000000}` with 42 → `WAM-000042`.
fn render_auto_number(format: &str, n: u64) -> String {
    match (format.find('{'), format.find('}')) {
        (Some(open), Some(close)) if close > open => {
            let width = close - open - 1;
            format!("{}{:0width$}{}", &format[..open], n, &format[close + 1..])
        }
        _ => format!("{format}{n}"),
    }
}

fn json_token(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "VALUE_STRING",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
        Value::Null => "VALUE_NULL",
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Salesforce echoes long values shortened in STRING_TOO_LONG messages.
fn abbreviate(text: &str) -> String {
    if text.chars().count() <= 20 {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(17).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn org() -> (Org, Arc<Schema>) {
        let schema = Arc::new(Schema::embedded().unwrap());
        (Org::new(schema.clone()), schema)
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn datetimes_are_read_in_each_spelling_the_api_accepts() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T15:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        for text in [
            "2026-11-24T15:00:00.250Z",
            "2026-11-24T15:00:00.250+0000",
            "2026-11-24T16:00:00.250+01:00",
            "2026-11-24T15:00:00.250",
        ] {
            assert_eq!(parse_datetime(text), Some(at), "{text}");
        }
        assert_eq!(parse_datetime("2026-11-24"), None);
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn insert_fills_defaults_system_fields_and_the_auto_number() {
        let (mut org, schema) = org();
        let object = schema.object("WhatsApp_Message__c").unwrap();
        let id = org
            .insert(
                object,
                &map(json!({"To_Phone__c": "+1 650 555 1234"})),
                Utc::now(),
                &mut Transaction::default(),
            )
            .unwrap();
        let record = org.get("WhatsApp_Message__c", &id).unwrap();
        assert_eq!(record["Status__c"], "Queued");
        assert_eq!(record["Direction__c"], "Outbound");
        assert_eq!(record["Name"], "WAM-000001");
        assert_eq!(record["OwnerId"], INTEGRATION_USER_ID);
    }

    #[test]
    fn rollback_restores_updates_and_removes_inserts() {
        let (mut org, schema) = org();
        let object = schema.object("WhatsApp_Message__c").unwrap();
        let id = org
            .insert(
                object,
                &map(json!({"Status__c": "Queued"})),
                Utc::now(),
                &mut Transaction::default(),
            )
            .unwrap();
        let mut tx = Transaction::default();
        org.update(
            object,
            &id,
            &map(json!({"Status__c": "Sent", "WhatsApp_Message_Id__c": "wamid.1"})),
            Utc::now(),
            &mut tx,
        )
        .unwrap();
        let created = org
            .insert(object, &map(json!({})), Utc::now(), &mut tx)
            .unwrap();
        org.rollback(tx);
        assert_eq!(
            org.get("WhatsApp_Message__c", &id).unwrap()["Status__c"],
            "Queued"
        );
        assert!(org.get("WhatsApp_Message__c", &created).is_err());
        assert!(org
            .find_by_unique("WhatsApp_Message__c", "WhatsApp_Message_Id__c", "wamid.1")
            .is_none());
    }

    #[test]
    fn auto_numbers_are_zero_padded_to_the_display_format() {
        assert_eq!(render_auto_number("WAM-{000000}", 42), "WAM-000042");
    }
}
