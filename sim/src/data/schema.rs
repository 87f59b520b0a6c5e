//! The describe-like view of an object: what a client may select and filter on.

use serde::{Deserialize, Serialize};

/// A field's Salesforce type, as far as query semantics and CSV formatting care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldType {
    Id,
    String,
    /// A long text area: selectable, but Salesforce refuses to filter or sort on it.
    TextArea,
    Picklist,
    Email,
    Phone,
    Url,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    DateTime,
    Reference,
}

impl FieldType {
    /// The type name Salesforce uses in filter-criterion errors.
    pub(crate) fn soql_name(self) -> &'static str {
        match self {
            Self::Id | Self::Reference => "id",
            Self::String | Self::TextArea | Self::Email | Self::Phone | Self::Url => "string",
            Self::Picklist => "picklist",
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Double => "double",
            Self::Currency => "currency",
            Self::Percent => "percent",
            Self::Date => "date",
            Self::DateTime => "dateTime",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Canonical case, e.g. `LastModifiedDate`.
    pub name: String,
    pub ty: FieldType,
    pub nullable: bool,
    /// The parent object of a `Reference`, e.g. `User` for `OwnerId`.
    pub reference_to: Option<String>,
    /// The name a dot path uses for the parent, e.g. `Owner` for `OwnerId`.
    pub relationship_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSchema {
    /// Canonical case, e.g. `Account`.
    pub name: String,
    pub key_prefix: String,
    pub fields: Vec<FieldDef>,
    /// Compound address/location fields (e.g. `BillingAddress`). They exist on the object, but the
    /// Bulk API refuses to select them, so they are listed apart from `fields`.
    pub compound_fields: Vec<String>,
}

impl ObjectSchema {
    /// The field named `name`, compared case-insensitively as Salesforce does.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The reference field whose relationship is called `relationship` (case-insensitive).
    pub(crate) fn relationship_index(&self, relationship: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(relationship)))
    }
}
