//! The simulated org's schema, read from the SFDX metadata that the Salesforce package deploys.
//!
//! `salesforce/force-app/main/default/objects/` is the one source of truth shared by the package, this
//! simulator and the daemon; it is compiled in (see `sim/build.rs`) so `sfwa sim` works from any
//! directory.
//! Standard objects the product touches (Account, Contact, Lead, Case) are described here in code,
//! with the subset of fields a Salesforce org really has, named as its describe names them; the
//! package's custom fields on them (`objects/Contact/fields/…`, no object file) are added to those
//! descriptions. A field the platform derives (a Case's `IsClosed` from its `Status`) is set by
//! [`derive_fields`] on every save.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};

/// The metadata files compiled into the binary: (path below `objects/`, file contents).
const EMBEDDED_METADATA: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/metadata_files.rs"));

/// The most characters a URL field holds, whatever its metadata says.
pub const URL_FIELD_LENGTH: usize = 255;

/// A field's data type, as Salesforce's describe names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Id,
    String,
    TextArea,
    Phone,
    Url,
    Email,
    Picklist,
    DateTime,
    Date,
    Boolean,
    Double,
    Reference,
}

impl FieldType {
    /// The `type` value in a describe result.
    pub fn describe_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Email => "email",
            FieldType::Picklist => "picklist",
            FieldType::DateTime => "datetime",
            FieldType::Date => "date",
            FieldType::Boolean => "boolean",
            FieldType::Double => "double",
            FieldType::Reference => "reference",
        }
    }

    /// True for types whose values are strings in JSON and in SOQL literals.
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            FieldType::Id
                | FieldType::String
                | FieldType::TextArea
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Email
                | FieldType::Picklist
                | FieldType::Reference
        )
    }
}

/// One field of an object.
#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    /// Maximum length for textual fields (0 where Salesforce reports none).
    pub length: usize,
    /// Picklist values in definition order (empty for non-picklists).
    pub picklist_values: Vec<String>,
    /// The value a new record gets when the field is left out.
    pub default_value: Option<String>,
    /// Restricted picklists reject values outside `picklist_values`.
    pub restricted: bool,
    pub external_id: bool,
    pub unique: bool,
    pub required: bool,
    /// False for system fields (Id, CreatedDate…), formula-like fields and auto numbers.
    pub updateable: bool,
    pub createable: bool,
    pub filterable: bool,
    pub sortable: bool,
    /// Target object for lookups.
    pub reference_to: Option<String>,
    /// Auto-number display format such as `WAM-{000000}`.
    pub auto_number: Option<String>,
    pub custom: bool,
}

impl FieldDef {
    fn system(name: &str, label: &str, field_type: FieldType) -> Self {
        FieldDef {
            name: name.to_string(),
            label: label.to_string(),
            field_type,
            length: if field_type == FieldType::Id { 18 } else { 0 },
            picklist_values: Vec::new(),
            default_value: None,
            restricted: false,
            external_id: false,
            unique: false,
            required: false,
            updateable: false,
            createable: false,
            filterable: true,
            sortable: true,
            reference_to: None,
            auto_number: None,
            custom: false,
        }
    }

    fn standard(name: &str, label: &str, field_type: FieldType, length: usize) -> Self {
        FieldDef {
            length,
            updateable: true,
            createable: true,
            ..FieldDef::system(name, label, field_type)
        }
    }
}

/// One sObject type.
#[derive(Clone, Debug)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    /// The three-character Id prefix of this object's records.
    pub key_prefix: String,
    pub custom: bool,
    /// Platform events (`__e`) cannot be queried or written through sObject rows.
    pub is_platform_event: bool,
    fields: Vec<FieldDef>,
}

impl ObjectDef {
    pub fn fields(&self) -> &[FieldDef] {
        &self.fields
    }

    /// Field lookup as Salesforce does it: API names are case-insensitive.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case(name))
    }
}

/// Every object of the org, by API name. Each definition is shared (`Arc`): a request holds the
/// one it writes to without copying its fields, hundreds of times a second under load.
#[derive(Clone, Debug)]
pub struct Schema {
    objects: BTreeMap<String, Arc<ObjectDef>>,
}

impl Schema {
    /// The schema compiled into the binary: the package's metadata plus Account, Contact, Lead and
    /// Case.
    pub fn embedded() -> anyhow::Result<Schema> {
        Self::from_files(
            EMBEDDED_METADATA
                .iter()
                .map(|(p, c)| (p.to_string(), c.to_string())),
        )
    }

    /// Reads an `objects/` folder of SFDX source (for trying unreleased metadata without rebuilding).
    pub fn from_dir(dir: &std::path::Path) -> anyhow::Result<Schema> {
        let mut files = Vec::new();
        for object in
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let object = object?.path();
            if !object.is_dir() {
                continue;
            }
            let name = object
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            // A standard object (Contact, Lead) has only custom fields in the package, no
            // object file: its fields join the object described in code.
            let meta = object.join(format!("{name}.object-meta.xml"));
            if meta.is_file() {
                files.push((
                    format!("{name}/{name}.object-meta.xml"),
                    std::fs::read_to_string(&meta)?,
                ));
            }
            let fields = object.join("fields");
            if fields.is_dir() {
                for field in std::fs::read_dir(&fields)? {
                    let field = field?.path();
                    let file = field
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string();
                    files.push((
                        format!("{name}/fields/{file}"),
                        std::fs::read_to_string(&field)?,
                    ));
                }
            }
        }
        Self::from_files(files.into_iter())
    }

    fn from_files(files: impl Iterator<Item = (String, String)>) -> anyhow::Result<Schema> {
        let mut objects = BTreeMap::new();
        for object in standard_objects().into_iter().chain(owners()) {
            objects.insert(object.name.clone(), object);
        }
        let mut custom_fields: Vec<(String, FieldDef)> = Vec::new();
        for (path, contents) in files {
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                // Standard objects are described in code; a file for one (settings such as
                // its sharing model) adds nothing the simulator models.
                [object, file]
                    if file.ends_with(".object-meta.xml")
                        && objects.get(*object).is_some_and(|o| !o.custom) => {}
                [object, file] if file.ends_with(".object-meta.xml") => {
                    let prefix = custom_key_prefix(objects.values().filter(|o| o.custom).count());
                    let def = parse_object(object, &contents, prefix)
                        .with_context(|| format!("objects/{path}"))?;
                    objects.insert(def.name.clone(), def);
                }
                [object, "fields", file] if file.ends_with(".field-meta.xml") => {
                    let field =
                        parse_field(&contents).with_context(|| format!("objects/{path}"))?;
                    custom_fields.push((object.to_string(), field));
                }
                _ => {}
            }
        }
        for (object, field) in custom_fields {
            let def = objects.get_mut(&object).ok_or_else(|| {
                anyhow!("field {} belongs to unknown object {object}", field.name)
            })?;
            def.fields.push(field);
        }
        for def in objects.values_mut() {
            def.fields
                .sort_by(|a, b| (a.custom, &a.name).cmp(&(b.custom, &b.name)));
        }
        let objects = objects
            .into_iter()
            .map(|(name, def)| (name, Arc::new(def)))
            .collect();
        Ok(Schema { objects })
    }

    /// This schema with a custom Text field added to `object` unless it already has one by that
    /// name: for trying a field another branch of the package adds, without its metadata file.
    pub fn with_text_field(mut self, object: &str, name: &str, length: usize) -> Schema {
        if let Some(def) = self
            .objects
            .values_mut()
            .find(|o| o.name.eq_ignore_ascii_case(object))
        {
            if def.field(name).is_none() {
                Arc::make_mut(def).fields.push(FieldDef {
                    custom: true,
                    ..FieldDef::standard(name, name, FieldType::String, length)
                });
            }
        }
        self
    }

    /// Object lookup, case-insensitive like Salesforce.
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.shared_object(name).map(Arc::as_ref)
    }

    /// [`object`](Self::object) as a shared handle, for a caller that holds the definition while
    /// it writes to the org (which owns the schema).
    pub fn shared_object(&self, name: &str) -> Option<&Arc<ObjectDef>> {
        self.objects
            .values()
            .find(|object| object.name.eq_ignore_ascii_case(name))
    }

    /// The object whose records carry this Id prefix.
    pub fn object_by_prefix(&self, prefix: &str) -> Option<&ObjectDef> {
        self.objects().find(|object| object.key_prefix == prefix)
    }

    pub fn objects(&self) -> impl Iterator<Item = &ObjectDef> {
        self.objects.values().map(Arc::as_ref)
    }
}

/// Custom objects get prefixes a00, a01, … in load order, as a fresh org hands them out.
fn custom_key_prefix(index: usize) -> String {
    format!("a{:02}", index)
}

fn system_fields(name_field: FieldDef) -> Vec<FieldDef> {
    vec![
        FieldDef::system("Id", "Record ID", FieldType::Id),
        name_field,
        FieldDef::system("CreatedDate", "Created Date", FieldType::DateTime),
        FieldDef::system(
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::DateTime,
        ),
        FieldDef::system("SystemModstamp", "System Modstamp", FieldType::DateTime),
        FieldDef::system("IsDeleted", "Deleted", FieldType::Boolean),
        FieldDef {
            length: 18,
            reference_to: Some("User".into()),
            ..FieldDef::system("CreatedById", "Created By ID", FieldType::Reference)
        },
        // A user (005…) or a queue (00G…); checked by the org on write.
        FieldDef {
            length: 18,
            reference_to: Some("User".into()),
            createable: true,
            updateable: true,
            ..FieldDef::system("OwnerId", "Owner ID", FieldType::Reference)
        },
    ]
}

/// Users and groups, as far as record ownership needs them: a record is owned by a user or a
/// queue (a Group of Type `Queue`).
fn owners() -> Vec<ObjectDef> {
    let object = |name: &str, plural: &str, prefix: &str, fields: Vec<FieldDef>| ObjectDef {
        name: name.into(),
        label: name.into(),
        label_plural: plural.into(),
        key_prefix: prefix.into(),
        custom: false,
        is_platform_event: false,
        fields,
    };
    vec![
        object(
            "User",
            "Users",
            "005",
            vec![
                FieldDef::system("Id", "User ID", FieldType::Id),
                FieldDef::standard("Name", "Full Name", FieldType::String, 121),
                FieldDef::standard("Username", "Username", FieldType::String, 80),
            ],
        ),
        object(
            "Group",
            "Groups",
            "00G",
            vec![
                FieldDef::system("Id", "Group ID", FieldType::Id),
                FieldDef::standard("Name", "Name", FieldType::String, 40),
                FieldDef::standard("DeveloperName", "Developer Name", FieldType::String, 80),
                FieldDef::standard("Type", "Type", FieldType::String, 40),
            ],
        ),
    ]
}

fn standard_objects() -> Vec<ObjectDef> {
    let person = |name: &str, label: &str, plural: &str, prefix: &str, extra: Vec<FieldDef>| {
        let mut fields = system_fields(FieldDef {
            length: 121,
            ..FieldDef::system("Name", "Full Name", FieldType::String)
        });
        fields.extend([
            FieldDef::standard("FirstName", "First Name", FieldType::String, 40),
            FieldDef {
                required: true,
                ..FieldDef::standard("LastName", "Last Name", FieldType::String, 80)
            },
            FieldDef::standard("Phone", "Phone", FieldType::Phone, 40),
            FieldDef::standard("MobilePhone", "Mobile Phone", FieldType::Phone, 40),
            FieldDef::standard("Email", "Email", FieldType::Email, 80),
        ]);
        fields.extend(extra);
        ObjectDef {
            name: name.into(),
            label: label.into(),
            label_plural: plural.into(),
            key_prefix: prefix.into(),
            custom: false,
            is_platform_event: false,
            fields,
        }
    };
    let mut case_fields = system_fields(FieldDef {
        length: 30,
        ..FieldDef::system("CaseNumber", "Case Number", FieldType::String)
    });
    case_fields.extend([
        FieldDef::standard("Subject", "Subject", FieldType::String, 255),
        FieldDef {
            reference_to: Some("Contact".into()),
            length: 18,
            ..FieldDef::standard("ContactId", "Contact ID", FieldType::Reference, 18)
        },
        FieldDef {
            reference_to: Some("Account".into()),
            ..FieldDef::standard("AccountId", "Account ID", FieldType::Reference, 18)
        },
        // The org's default Case statuses; an org may add its own (not restricted). Which are
        // closed is the CaseStatus setup's `IsClosed`: here, `Closed` alone.
        FieldDef {
            picklist_values: ["New", "Working", "Escalated", CLOSED_CASE_STATUS]
                .map(String::from)
                .to_vec(),
            default_value: Some("New".into()),
            ..FieldDef::standard("Status", "Status", FieldType::Picklist, 40)
        },
        // Read-only, derived from Status by the platform (see `derive_fields`).
        FieldDef {
            default_value: Some("false".into()),
            ..FieldDef::system("IsClosed", "Closed", FieldType::Boolean)
        },
    ]);
    // A read-only view of the org's flows (Tooling-free: SOQL on the REST API), as sfwa doctor
    // reads it: ActiveVersionId is null while no version of the flow is active.
    let flow_view = |name: &str, label: &str, length: usize| FieldDef {
        length,
        ..FieldDef::system(name, label, FieldType::String)
    };
    let flow_definitions = ObjectDef {
        name: "FlowDefinitionView".into(),
        label: "Flow Definition View".into(),
        label_plural: "Flow Definition Views".into(),
        key_prefix: "300".into(),
        custom: false,
        is_platform_event: false,
        fields: vec![
            FieldDef::system("Id", "Flow Definition View ID", FieldType::Id),
            flow_view("DurableId", "Durable Identifier", 18),
            flow_view("ApiName", "API Name", 80),
            flow_view("Label", "Label", 255),
            flow_view("ActiveVersionId", "Active Version ID", 18),
            flow_view("LatestVersionId", "Latest Version ID", 18),
            flow_view("ProcessType", "Process Type", 40),
            flow_view("TriggerType", "Trigger Type", 40),
            FieldDef::system("IsActive", "Is Active", FieldType::Boolean),
        ],
    };
    vec![
        flow_definitions,
        account(),
        person(
            "Contact",
            "Contact",
            "Contacts",
            "003",
            vec![FieldDef {
                reference_to: Some("Account".into()),
                ..FieldDef::standard("AccountId", "Account ID", FieldType::Reference, 18)
            }],
        ),
        person(
            "Lead",
            "Lead",
            "Leads",
            "00Q",
            vec![
                FieldDef {
                    required: true,
                    ..FieldDef::standard("Company", "Company", FieldType::String, 255)
                },
                // Set by lead conversion, never by DML: read-only through the API, false on
                // create. sfwa links inbound messages only to unconverted Leads.
                FieldDef {
                    default_value: Some("false".into()),
                    ..FieldDef::system("IsConverted", "Converted", FieldType::Boolean)
                },
            ],
        ),
        ObjectDef {
            name: "Case".into(),
            label: "Case".into(),
            label_plural: "Cases".into(),
            key_prefix: "500".into(),
            custom: false,
            is_platform_event: false,
            fields: case_fields,
        },
        content_version(),
    ]
}

/// The Case status that closes a Case in the simulated org.
pub const CLOSED_CASE_STATUS: &str = "Closed";

/// Sets the fields the platform derives on save: a Case's `IsClosed` follows its `Status`
/// (`Closed`), as CaseStatus's IsClosed does in an org. Other objects are left as they are.
pub fn derive_fields(object: &ObjectDef, record: &mut Map<String, Value>) {
    if object.name == "Case" {
        let closed = record.get("Status").and_then(Value::as_str) == Some(CLOSED_CASE_STATUS);
        record.insert("IsClosed".into(), Value::Bool(closed));
    }
}

/// Accounts: business accounts, and the fields a Person Account org adds. A Person Account's
/// Contact (`PersonContactId`) has the account as its `AccountId`, which is how sfwa links a
/// person's messages to it; the platform sets `IsPersonAccount` and `PersonContactId` (read-only).
fn account() -> ObjectDef {
    let mut fields = system_fields(FieldDef {
        required: true,
        ..FieldDef::standard("Name", "Account Name", FieldType::String, 255)
    });
    fields.extend([
        FieldDef::standard("Phone", "Account Phone", FieldType::Phone, 40),
        FieldDef {
            default_value: Some("false".into()),
            ..FieldDef::system("IsPersonAccount", "Is Person Account", FieldType::Boolean)
        },
        FieldDef {
            length: 18,
            reference_to: Some("Contact".into()),
            ..FieldDef::system("PersonContactId", "Person Contact ID", FieldType::Reference)
        },
        FieldDef::standard("PersonMobilePhone", "Mobile", FieldType::Phone, 40),
    ]);
    ObjectDef {
        name: "Account".into(),
        label: "Account".into(),
        label_plural: "Accounts".into(),
        key_prefix: "001".into(),
        custom: false,
        is_platform_event: false,
        fields,
    }
}

/// Salesforce Files: a `ContentVersion` created with `FirstPublishLocationId` shows on that
/// record. `VersionData` is the file (base64 in, its URL out); `ContentSize`, `FileExtension`,
/// `FileType`, `IsLatest` and `ContentDocumentId` are set by the platform (see `files`).
fn content_version() -> ObjectDef {
    let mut fields = system_fields(FieldDef {
        required: true,
        ..FieldDef::standard("Title", "Title", FieldType::String, 255)
    });
    fields.extend([
        FieldDef {
            required: true,
            updateable: false,
            ..FieldDef::standard("PathOnClient", "Path On Client", FieldType::String, 500)
        },
        FieldDef {
            updateable: false,
            ..FieldDef::standard("VersionData", "Version Data", FieldType::TextArea, 0)
        },
        FieldDef {
            updateable: false,
            ..FieldDef::standard(
                "FirstPublishLocationId",
                "First Publish Location ID",
                FieldType::Reference,
                18,
            )
        },
        FieldDef::system("ContentSize", "Size", FieldType::Double),
        FieldDef {
            length: 40,
            ..FieldDef::system("FileExtension", "File Extension", FieldType::String)
        },
        // Given on create, it adds a new version to that document (see `files`).
        FieldDef {
            length: 18,
            reference_to: Some("ContentDocument".into()),
            createable: true,
            ..FieldDef::system(
                "ContentDocumentId",
                "ContentDocument ID",
                FieldType::Reference,
            )
        },
        FieldDef::system("IsLatest", "Is Latest", FieldType::Boolean),
        FieldDef {
            length: 20,
            ..FieldDef::system("FileType", "File Type", FieldType::String)
        },
    ]);
    ObjectDef {
        name: "ContentVersion".into(),
        label: "Content Version".into(),
        label_plural: "Content Versions".into(),
        key_prefix: "068".into(),
        custom: false,
        is_platform_event: false,
        fields,
    }
}

fn child_text<'a>(node: roxmltree::Node<'a, 'a>, tag: &str) -> Option<&'a str> {
    node.children()
        .find(|child| child.has_tag_name(tag))
        .and_then(|child| child.text())
        .map(str::trim)
}

fn parse_object(folder: &str, xml: &str, key_prefix: String) -> anyhow::Result<ObjectDef> {
    let doc = roxmltree::Document::parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("CustomObject") {
        bail!(
            "expected <CustomObject>, found <{}>",
            root.tag_name().name()
        );
    }
    let label = child_text(root, "label").unwrap_or(folder).to_string();
    let label_plural = child_text(root, "pluralLabel")
        .unwrap_or(&label)
        .to_string();
    let is_platform_event = folder.ends_with("__e");
    let fields = if is_platform_event {
        // Events carry ReplayId, CreatedDate and CreatedById instead of the record system fields.
        vec![
            FieldDef::system("ReplayId", "Replay ID", FieldType::String),
            FieldDef::system("CreatedDate", "Created Date", FieldType::DateTime),
            FieldDef {
                reference_to: Some("User".into()),
                ..FieldDef::system("CreatedById", "Created By ID", FieldType::Reference)
            },
        ]
    } else {
        let name_node = root.children().find(|c| c.has_tag_name("nameField"));
        let name_label = name_node
            .and_then(|n| child_text(n, "label"))
            .unwrap_or("Name");
        let auto_number = name_node
            .filter(|n| child_text(*n, "type") == Some("AutoNumber"))
            .and_then(|n| child_text(n, "displayFormat"))
            .map(str::to_string);
        let writable = auto_number.is_none();
        system_fields(FieldDef {
            length: 80,
            auto_number,
            updateable: writable,
            createable: writable,
            ..FieldDef::system("Name", name_label, FieldType::String)
        })
    };
    Ok(ObjectDef {
        name: folder.to_string(),
        label,
        label_plural,
        key_prefix: if is_platform_event {
            "e00".into()
        } else {
            key_prefix
        },
        custom: true,
        is_platform_event,
        fields,
    })
}

fn parse_field(xml: &str) -> anyhow::Result<FieldDef> {
    let doc = roxmltree::Document::parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("CustomField") {
        bail!("expected <CustomField>, found <{}>", root.tag_name().name());
    }
    let name = child_text(root, "fullName").ok_or_else(|| anyhow!("<fullName> missing"))?;
    let label = child_text(root, "label").unwrap_or(name);
    let metadata_type = child_text(root, "type").ok_or_else(|| anyhow!("<type> missing"))?;
    let flag = |tag| child_text(root, tag) == Some("true");
    let declared_length = child_text(root, "length").and_then(|l| l.parse().ok());
    let (field_type, length) = match metadata_type {
        "Text" => (FieldType::String, declared_length.unwrap_or(255)),
        "LongTextArea" | "TextArea" => (FieldType::TextArea, declared_length.unwrap_or(255)),
        "Phone" => (FieldType::Phone, 40),
        // Salesforce's fixed limit for URL fields: a URL field has no length setting, and a
        // `<length>` in the file changes nothing (a longer value is STRING_TOO_LONG).
        "Url" => (FieldType::Url, URL_FIELD_LENGTH),
        "Email" => (FieldType::Email, 80),
        "Picklist" => (FieldType::Picklist, 255),
        "DateTime" => (FieldType::DateTime, 0),
        "Date" => (FieldType::Date, 0),
        "Checkbox" => (FieldType::Boolean, 0),
        "Number" | "Currency" | "Percent" => (FieldType::Double, 0),
        "Lookup" | "MasterDetail" => (FieldType::Reference, 18),
        other => bail!("field {name}: metadata type {other} is not simulated"),
    };
    let mut picklist_values = Vec::new();
    let mut default_value = None;
    let mut restricted = false;
    if let Some(value_set) = root.children().find(|c| c.has_tag_name("valueSet")) {
        restricted = child_text(value_set, "restricted") == Some("true");
        for value in value_set.descendants().filter(|n| n.has_tag_name("value")) {
            let Some(full_name) = child_text(value, "fullName") else {
                continue;
            };
            if child_text(value, "default") == Some("true") {
                default_value = Some(full_name.to_string());
            }
            picklist_values.push(full_name.to_string());
        }
    }
    if field_type == FieldType::Boolean {
        default_value = Some(
            child_text(root, "defaultValue")
                .unwrap_or("false")
                .to_string(),
        );
    }
    Ok(FieldDef {
        name: name.to_string(),
        label: label.to_string(),
        field_type,
        length,
        picklist_values,
        default_value,
        restricted,
        external_id: flag("externalId"),
        unique: flag("unique"),
        required: flag("required"),
        updateable: true,
        createable: true,
        filterable: field_type != FieldType::TextArea,
        sortable: field_type != FieldType::TextArea,
        reference_to: child_text(root, "referenceTo").map(str::to_string),
        auto_number: None,
        custom: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_metadata_describes_the_message_object_and_the_event() {
        let schema = Schema::embedded().unwrap();
        let message = schema.object("whatsapp_message__c").unwrap();
        assert_eq!(message.name, "WhatsApp_Message__c");
        assert_eq!(message.key_prefix, "a00");
        let status = message.field("Status__c").unwrap();
        assert!(status.restricted);
        assert_eq!(status.picklist_values.len(), 9);
        assert_eq!(message.field("Body__c").unwrap().length, 4096);
        assert_eq!(message.field("Media_URL__c").unwrap().length, 255);
        assert!(message.field("WhatsApp_Message_Id__c").unwrap().external_id);
        assert_eq!(
            message.field("Contact__c").unwrap().reference_to.as_deref(),
            Some("Contact")
        );
        assert_eq!(
            message.field("Name").unwrap().auto_number.as_deref(),
            Some("WAM-{000000}")
        );
        let event = schema.object("WhatsApp_Outbound__e").unwrap();
        assert!(event.is_platform_event);
        assert_eq!(event.field("Message_Id__c").unwrap().length, 18);
        assert_eq!(schema.object_by_prefix("003").unwrap().name, "Contact");
    }

    #[test]
    fn account_contact_and_case_carry_the_lookups_and_the_closed_flag_an_org_describes() {
        let schema = Schema::embedded().unwrap();
        let account = schema.object("Account").unwrap();
        let contact = schema.object("Contact").unwrap();
        let case = schema.object("Case").unwrap();
        let reference = |def: &ObjectDef, field: &str| {
            def.field(field)
                .and_then(|f| f.reference_to.clone())
                .unwrap_or_default()
        };

        assert_eq!(account.key_prefix, "001");
        assert!(account.field("Name").unwrap().required);
        assert!(!account.field("IsPersonAccount").unwrap().createable);
        assert_eq!(reference(account, "PersonContactId"), "Contact");
        assert_eq!(reference(contact, "AccountId"), "Account");
        assert_eq!(reference(case, "AccountId"), "Account");
        assert_eq!(reference(case, "ContactId"), "Contact");
        assert!(!case.field("IsClosed").unwrap().updateable);
        assert_eq!(
            case.field("Status").unwrap().default_value.as_deref(),
            Some("New")
        );
    }

    #[test]
    fn a_case_is_closed_exactly_when_its_status_is_closed() {
        let schema = Schema::embedded().unwrap();
        let case = schema.object("Case").unwrap();
        let saved = |status: &str| {
            let mut record = Map::new();
            record.insert("Status".into(), Value::String(status.into()));
            record.insert("IsClosed".into(), Value::Bool(status == "New"));
            derive_fields(case, &mut record);
            record["IsClosed"].clone()
        };

        assert_eq!(saved("Closed"), Value::Bool(true));
        assert_eq!(saved("New"), Value::Bool(false));
        assert_eq!(saved("Working"), Value::Bool(false));
    }

    #[test]
    fn the_packages_custom_fields_on_contact_and_lead_join_the_standard_objects() {
        let schema = Schema::embedded().unwrap();

        for object in ["Contact", "Lead"] {
            let def = schema.object(object).unwrap();
            let user_id = def.field("WhatsApp_User_Id__c").unwrap();

            assert!(!def.custom, "{object} stays a standard object");
            assert_eq!(
                def.key_prefix,
                if object == "Contact" { "003" } else { "00Q" }
            );
            assert!(user_id.custom && user_id.external_id && !user_id.unique);
            assert_eq!(user_id.length, 140);
            assert!(
                def.field("Phone").is_some(),
                "{object} keeps its standard fields"
            );
        }
    }
}
