//! Binding a parsed query to the dataset's schemas: field paths become (slot, field) pairs and
//! literals become typed operands, with Salesforce's errors for what does not fit.

use chrono::NaiveDate;

use super::Query;
use super::ast::{Expr, Literal, Path};
use super::error::{INVALID_FIELD, INVALID_QUERY_FILTER_OPERATOR, INVALID_TYPE, INVALIDENTITY, SoqlError};
use super::lexer::{CmpOp, StrChar};
use super::like::LikePattern;
use crate::data::objects::ObjectKind;
use crate::data::{Dataset, FieldType, ObjectSchema, ids};

/// Real objects that exist in every org but that Bulk API 2.0 refuses to query; a sample of
/// the ones export tools keep deny-lists for.
const NOT_IN_BULK: &[&str] = &[
    "AcceptedEventRelation",
    "AttachedContentNote",
    "CaseStatus",
    "ContractStatus",
    "DeclinedEventRelation",
    "FieldSecurityClassification",
    "KnowledgeArticle",
    "OrderStatus",
    "PartnerRole",
    "RecentlyViewed",
    "SolutionStatus",
    "TaskPriority",
    "TaskStatus",
    "UndecidedEventRelation",
];

/// A record a row reaches: the root (slot 0), or a parent through a lookup of another slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Slot {
    pub(crate) kind: ObjectKind,
    /// (child slot, lookup field index) for parents; `None` for the root.
    pub(crate) from: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Column {
    pub(crate) slot: usize,
    pub(crate) field: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    /// Lower-cased: SOQL compares text case-insensitively.
    Text(String),
    /// The 18-character form.
    Id(String),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    /// Milliseconds since the epoch.
    DateTime(i64),
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    IsNull,
    NotNull,
    Cmp(CmpOp, Operand),
    In { values: Vec<Operand>, with_null: bool, negated: bool },
    Like(LikePattern),
}

#[derive(Debug, Clone)]
pub(crate) enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Test { column: Column, ty: FieldType, test: Test },
}

#[derive(Debug, Clone)]
pub(crate) struct SortKey {
    pub(crate) column: Column,
    pub(crate) descending: bool,
    pub(crate) nulls_last: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) kind: ObjectKind,
    pub(crate) slots: Vec<Slot>,
    pub(crate) headers: Vec<String>,
    pub(crate) columns: Vec<Column>,
    pub(crate) filter: Option<Pred>,
    pub(crate) order: Vec<SortKey>,
    pub(crate) limit: Option<u64>,
}

pub(crate) fn resolve(query: &Query, data: &Dataset) -> Result<Plan, SoqlError> {
    let kind = match ObjectKind::from_name(&query.object) {
        Some(kind) => kind,
        None if NOT_IN_BULK.iter().any(|o| o.eq_ignore_ascii_case(&query.object)) => {
            return Err(SoqlError::new(
                INVALIDENTITY,
                format!("Entity '{}' is not supported by the Bulk API.", query.object),
            ));
        }
        None => {
            return Err(SoqlError::at(
                INVALID_TYPE,
                &query.soql,
                query.object_pos,
                format!(
                    "sObject type '{}' is not supported. If you are attempting to use a custom \
                     object, be sure to append the '__c' after the entity name. Please reference \
                     your WSDL or the describe call for the appropriate names.",
                    query.object
                ),
            ));
        }
    };
    let mut binder = Binder { query, data, slots: vec![Slot { kind, from: None }] };
    let mut headers = Vec::new();
    let mut columns = Vec::new();
    for path in &query.select {
        let bound = binder.path(path)?;
        if headers.iter().any(|h: &String| h.eq_ignore_ascii_case(&bound.header)) {
            return Err(SoqlError::at(
                super::error::MALFORMED_QUERY,
                &query.soql,
                path.pos,
                format!("duplicate field selected: {}", bound.header),
            ));
        }
        headers.push(bound.header);
        columns.push(bound.column);
    }
    let filter = query.filter.as_ref().map(|e| binder.expr(e)).transpose()?;
    let mut order = Vec::new();
    for item in &query.order {
        let bound = binder.path(&item.field)?;
        if bound.ty == FieldType::TextArea {
            return Err(
                binder.field_error(&item.field, format!("field '{}' can not be sorted in a query call", bound.name))
            );
        }
        order.push(SortKey { column: bound.column, descending: item.descending, nulls_last: item.nulls_last });
    }
    Ok(Plan { kind, slots: binder.slots, headers, columns, filter, order, limit: query.limit })
}

struct Bound {
    column: Column,
    header: String,
    name: String,
    ty: FieldType,
}

struct Binder<'a> {
    query: &'a Query,
    data: &'a Dataset,
    slots: Vec<Slot>,
}

impl Binder<'_> {
    fn schema(&self, kind: ObjectKind) -> &ObjectSchema {
        // Every kind has a schema in every dataset.
        self.data.schema(kind.name()).unwrap_or_else(|| unreachable!("{kind:?} has a schema"))
    }

    fn field_error(&self, path: &Path, reason: String) -> SoqlError {
        SoqlError::at(INVALID_FIELD, &self.query.soql, path.pos, reason)
    }

    fn slot(&mut self, slot: Slot) -> usize {
        match self.slots.iter().position(|s| *s == slot) {
            Some(i) => i,
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }

    fn path(&mut self, path: &Path) -> Result<Bound, SoqlError> {
        let root = self.slots[0].kind;
        let mut parts: &[String] = &path.parts;
        if let [first, rest @ ..] = parts {
            let is_alias = self.query.alias.as_ref().is_some_and(|a| a.eq_ignore_ascii_case(first));
            let is_object =
                first.eq_ignore_ascii_case(root.name()) && self.schema(root).relationship_index(first).is_none();
            if !rest.is_empty() && (is_alias || is_object) {
                parts = rest;
            }
        }
        let (relationships, [field]) = parts.split_at(parts.len().saturating_sub(1)) else {
            return Err(self.field_error(path, "empty field path".to_owned()));
        };
        let mut slot = 0;
        let mut kind = root;
        let mut header = Vec::new();
        for relationship in relationships {
            let schema = self.schema(kind);
            let Some(index) = schema.relationship_index(relationship) else {
                return Err(self.field_error(
                    path,
                    format!(
                        "Didn't understand relationship '{relationship}' in field path. If you \
                         are attempting to use a custom relationship, be sure to append the \
                         '__r' after the custom relationship name. Please reference your WSDL or \
                         the describe call for the appropriate names."
                    ),
                ));
            };
            let def = &schema.fields[index];
            header.push(def.relationship_name.clone().unwrap_or_default());
            let target = def
                .reference_to
                .as_deref()
                .and_then(ObjectKind::from_name)
                .unwrap_or_else(|| unreachable!("lookup {} has a known target", def.name));
            slot = self.slot(Slot { kind: target, from: Some((slot, index)) });
            kind = target;
        }
        let schema = self.schema(kind);
        let Some(index) = schema.field_index(field) else {
            if schema.compound_fields.iter().any(|c| c.eq_ignore_ascii_case(field)) {
                return Err(SoqlError::not_in_bulk("Selecting compound data"));
            }
            return Err(self.field_error(
                path,
                format!(
                    "No such column '{field}' on entity '{}'. If you are attempting to use a \
                     custom field, be sure to append the '__c' after the custom field name. \
                     Please reference your WSDL or the describe call for the appropriate names.",
                    schema.name
                ),
            ));
        };
        let def = &schema.fields[index];
        header.push(def.name.clone());
        Ok(Bound {
            column: Column { slot, field: index },
            header: header.join("."),
            name: def.name.clone(),
            ty: def.ty,
        })
    }

    fn expr(&mut self, expr: &Expr) -> Result<Pred, SoqlError> {
        Ok(match expr {
            Expr::And(terms) => Pred::And(terms.iter().map(|t| self.expr(t)).collect::<Result<_, _>>()?),
            Expr::Or(terms) => Pred::Or(terms.iter().map(|t| self.expr(t)).collect::<Result<_, _>>()?),
            Expr::Not(inner) => Pred::Not(Box::new(self.expr(inner)?)),
            Expr::Cmp { field, op, value, value_pos } => {
                let bound = self.filterable(field)?;
                let test = match (value, op) {
                    // Salesforce treats a null boolean as false.
                    (Literal::Null, CmpOp::Eq) if bound.ty == FieldType::Boolean => {
                        Test::Cmp(CmpOp::Eq, Operand::Bool(false))
                    }
                    (Literal::Null, CmpOp::Ne) if bound.ty == FieldType::Boolean => {
                        Test::Cmp(CmpOp::Eq, Operand::Bool(true))
                    }
                    (Literal::Null, CmpOp::Eq) => Test::IsNull,
                    (Literal::Null, CmpOp::Ne) => Test::NotNull,
                    (Literal::Null, _) => {
                        return Err(self.operator_error(*value_pos, &bound, "null"));
                    }
                    _ => {
                        let operand = self.operand(&bound, value, *value_pos)?;
                        if bound.ty == FieldType::Boolean && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                            return Err(self.operator_error(*value_pos, &bound, "boolean"));
                        }
                        Test::Cmp(*op, operand)
                    }
                };
                Pred::Test { column: bound.column, ty: bound.ty, test }
            }
            Expr::In { field, negated, values, value_pos } => {
                let bound = self.filterable(field)?;
                let mut operands = Vec::new();
                let mut with_null = false;
                for value in values {
                    match value {
                        Literal::Null => with_null = true,
                        value => operands.push(self.operand(&bound, value, *value_pos)?),
                    }
                }
                let test = Test::In { values: operands, with_null, negated: *negated };
                Pred::Test { column: bound.column, ty: bound.ty, test }
            }
            Expr::Like { field, pattern } => {
                let bound = self.filterable(field)?;
                if !is_text(bound.ty) {
                    return Err(SoqlError::at(
                        INVALID_FIELD,
                        &self.query.soql,
                        field.pos,
                        format!("invalid operator on {} field: LIKE", bound.ty.soql_name()),
                    ));
                }
                let test = Test::Like(LikePattern::new(pattern));
                Pred::Test { column: bound.column, ty: bound.ty, test }
            }
        })
    }

    fn filterable(&mut self, path: &Path) -> Result<Bound, SoqlError> {
        let bound = self.path(path)?;
        if bound.ty == FieldType::TextArea {
            return Err(self.field_error(path, format!("field '{}' can not be filtered in a query call", bound.name)));
        }
        Ok(bound)
    }

    fn operator_error(&self, pos: usize, bound: &Bound, what: &str) -> SoqlError {
        SoqlError::at(
            INVALID_QUERY_FILTER_OPERATOR,
            &self.query.soql,
            pos,
            format!("invalid operator on {what} value for field {}", bound.name),
        )
    }

    fn operand(&self, bound: &Bound, value: &Literal, pos: usize) -> Result<Operand, SoqlError> {
        let ty = bound.ty;
        let mismatch = || {
            let quoted = if is_text(ty) || matches!(ty, FieldType::Id | FieldType::Reference) {
                "should be enclosed in quotes"
            } else {
                "should not be enclosed in quotes"
            };
            SoqlError::at(
                INVALID_FIELD,
                &self.query.soql,
                pos,
                format!(
                    "value of filter criterion for field '{}' must be of type {} and {quoted}",
                    bound.name,
                    ty.soql_name()
                ),
            )
        };
        Ok(match (ty, value) {
            (FieldType::Id | FieldType::Reference, Literal::Str(chars)) => {
                let text = Literal::text(chars);
                let id = ids::to_18(&text).ok_or_else(|| {
                    SoqlError::at(
                        INVALID_QUERY_FILTER_OPERATOR,
                        &self.query.soql,
                        pos,
                        format!("invalid ID field: {text}"),
                    )
                })?;
                Operand::Id(id)
            }
            (ty, Literal::Str(chars)) if is_text(ty) => Operand::Text(lower(chars)),
            (FieldType::Boolean, Literal::Bool(b)) => Operand::Bool(*b),
            (FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent, Literal::Num(n)) => {
                Operand::Num(*n)
            }
            (FieldType::Date, Literal::Date(d)) => Operand::Date(*d),
            (FieldType::DateTime, Literal::DateTime(ms)) => Operand::DateTime(*ms),
            _ => return Err(mismatch()),
        })
    }
}

fn is_text(ty: FieldType) -> bool {
    matches!(
        ty,
        FieldType::String
            | FieldType::TextArea
            | FieldType::Picklist
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
    )
}

fn lower(chars: &[StrChar]) -> String {
    Literal::text(chars).to_lowercase()
}
