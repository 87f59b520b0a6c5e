//! User: the small staff that owns, creates and edits the data. Users are not spread over the
//! export window: they were set up long before it.

use super::words::{FIRST_NAMES, LAST_NAMES, USERS, email_part};
use super::{FieldSpec, GenContext, ObjectKind, Rec, RecordState, chance, common, pick, rng};
use crate::data::schema::FieldType;
use crate::data::value::Value;

const TAG_NAME: u64 = 400;
const TAG_ACTIVE: u64 = 401;
const TAG_AGE: u64 = 402;

pub(super) static FIELDS: &[FieldSpec] = &[
    common::ID,
    FieldSpec::value("Username", FieldType::String, false, username),
    FieldSpec::value("FirstName", FieldType::String, true, first_name),
    FieldSpec::value("LastName", FieldType::String, false, last_name),
    FieldSpec::value("Name", FieldType::String, false, name),
    FieldSpec::value("Email", FieldType::Email, false, email),
    FieldSpec::value("IsActive", FieldType::Boolean, false, is_active),
    common::CREATED_DATE,
    common::CREATED_BY_ID,
    common::LAST_MODIFIED_DATE,
    common::LAST_MODIFIED_BY_ID,
    common::SYSTEM_MODSTAMP,
];

/// Set up between one and two years before the start; last edited at least a month before it.
pub(super) fn initial_state(ctx: &GenContext, idx: u32) -> RecordState {
    let h = rng::hash(&[ctx.seed, ObjectKind::User as u64, u64::from(idx), TAG_AGE]);
    const DAY: i64 = 86_400;
    let created = ctx.start - 365 * DAY - (h % (365 * 86_400)) as i64;
    let modified = (created + ((h >> 20) % (300 * 86_400)) as i64).min(ctx.start - 30 * DAY);
    RecordState { idx, version: 0, created, modified: modified.max(created), deleted: 0 }
}

fn names(rec: &Rec<'_>) -> (&'static str, &'static str) {
    match USERS.get(rec.st.idx as usize) {
        Some(&pair) => pair,
        None => {
            let h = rec.fixed(TAG_NAME);
            (pick(h, FIRST_NAMES), pick(h >> 16, LAST_NAMES))
        }
    }
}

fn username(rec: &Rec<'_>) -> Value {
    let (first, last) = names(rec);
    Value::Text(format!("{}.{}{}@sim.example.com", email_part(first), email_part(last), rec.st.idx))
}

fn first_name(rec: &Rec<'_>) -> Value {
    Value::Text(names(rec).0.to_owned())
}

fn last_name(rec: &Rec<'_>) -> Value {
    Value::Text(names(rec).1.to_owned())
}

fn name(rec: &Rec<'_>) -> Value {
    let (first, last) = names(rec);
    Value::Text(format!("{first} {last}"))
}

fn email(rec: &Rec<'_>) -> Value {
    let (first, last) = names(rec);
    Value::Text(format!("{}.{}@example.com", email_part(first), email_part(last)))
}

/// The fixed users are active; one generated user in ten has left.
fn is_active(rec: &Rec<'_>) -> Value {
    Value::Bool(rec.st.idx < USERS.len() as u32 || !chance(rec.fixed(TAG_ACTIVE), 10))
}
