//! Opportunity: stage, probability, closed and won flags stay consistent with each other; an edit
//! moves the deal to another stage and amount.

use super::words::{LEAD_SOURCES, OPPORTUNITY_TYPES, PRODUCTS, STAGES};
use super::{FieldSpec, ObjectKind, Rec, account, chance, common, pick};
use crate::data::schema::FieldType;
use crate::data::value::Value;
use chrono::DateTime;

const TAG_ACCOUNT: u64 = 300;
const TAG_PRODUCT: u64 = 301;
const TAG_STAGE: u64 = 302;
const TAG_AMOUNT: u64 = 303;
const TAG_CLOSE: u64 = 304;
const TAG_TYPE: u64 = 305;
const TAG_SOURCE: u64 = 306;

pub(super) static FIELDS: &[FieldSpec] = &[
    common::ID,
    FieldSpec::reference("AccountId", true, ObjectKind::Account, "Account", account_id),
    FieldSpec::value("Name", FieldType::String, false, name),
    FieldSpec::value("StageName", FieldType::Picklist, false, stage_name),
    FieldSpec::value("Amount", FieldType::Currency, true, amount),
    FieldSpec::value("Probability", FieldType::Percent, true, probability),
    FieldSpec::value("CloseDate", FieldType::Date, false, close_date),
    FieldSpec::value("Type", FieldType::Picklist, true, opportunity_type),
    FieldSpec::value("LeadSource", FieldType::Picklist, true, lead_source),
    FieldSpec::value("IsClosed", FieldType::Boolean, false, is_closed),
    FieldSpec::value("IsWon", FieldType::Boolean, false, is_won),
    common::OWNER_ID,
    common::IS_DELETED,
    common::CREATED_DATE,
    common::CREATED_BY_ID,
    common::LAST_MODIFIED_DATE,
    common::LAST_MODIFIED_BY_ID,
    common::SYSTEM_MODSTAMP,
];

fn account_id(rec: &Rec<'_>) -> Option<u32> {
    common::parent(rec, ObjectKind::Account, TAG_ACCOUNT, 3)
}

/// Named after the account, as sales reps do: "Acme Systems Inc. - 500 Widgets".
fn name(rec: &Rec<'_>) -> Value {
    let product = pick(rec.fixed(TAG_PRODUCT), PRODUCTS);
    Value::Text(match account_id(rec) {
        Some(parent) => format!("{} - {product}", account::account_name(rec.ctx, parent)),
        None => product.to_owned(),
    })
}

fn stage(rec: &Rec<'_>) -> (&'static str, u8) {
    pick(rec.varying(TAG_STAGE), STAGES)
}

fn stage_name(rec: &Rec<'_>) -> Value {
    Value::Text(stage(rec).0.to_owned())
}

/// In cents, so about half the amounts carry a fraction.
fn amount(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_AMOUNT);
    if chance(h, 10) {
        return Value::Null;
    }
    let cents = if chance(h >> 4, 50) { (h % 10_000) * 100 } else { h % 1_000_000 };
    Value::Number(((h >> 20) % 100 * 100_000 + cents) as f64 / 100.0)
}

fn probability(rec: &Rec<'_>) -> Value {
    Value::Number(f64::from(stage(rec).1))
}

/// Within a year either side of creation; moves with each edit, as close dates slip.
fn close_date(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_CLOSE);
    let offset_days = (h % 730) as i64 - 365;
    DateTime::from_timestamp(rec.st.created + offset_days * 86_400, 0)
        .map_or(Value::Null, |t| Value::Date(t.date_naive()))
}

fn opportunity_type(rec: &Rec<'_>) -> Value {
    let h = rec.fixed(TAG_TYPE);
    if chance(h, 20) { Value::Null } else { Value::Text(pick(h, OPPORTUNITY_TYPES).to_owned()) }
}

fn lead_source(rec: &Rec<'_>) -> Value {
    let h = rec.fixed(TAG_SOURCE);
    if chance(h, 30) { Value::Null } else { Value::Text(pick(h, LEAD_SOURCES).to_owned()) }
}

fn is_closed(rec: &Rec<'_>) -> Value {
    Value::Bool(stage(rec).0.starts_with("Closed"))
}

fn is_won(rec: &Rec<'_>) -> Value {
    Value::Bool(stage(rec).0 == "Closed Won")
}
