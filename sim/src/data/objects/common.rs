//! Fields every data object shares: id, audit fields, ownership, the soft-delete flag.

use super::{FieldSpec, GenContext, ObjectKind, Rec, RecordState, chance, rng};
use crate::data::schema::FieldType;
use crate::data::value::Value;

const TAG_MODIFIED: u64 = 1;
const TAG_TIE: u64 = 2;
const TAG_AGE: u64 = 3;
const TAG_MODSTAMP: u64 = 4;
const TAG_OWNER: u64 = 5;
const TAG_CREATED_BY: u64 = 6;
const TAG_MODIFIED_BY: u64 = 7;

/// Up to three years between creation and the last modification.
const MAX_AGE_SECS: u64 = 3 * 365 * 86_400;
/// How late a system job may touch a record after its last user edit.
const MAX_MODSTAMP_LAG_SECS: u64 = 600;

fn seeded_modified(ctx: &GenContext, kind: ObjectKind, idx: u32) -> i64 {
    let h = rng::hash(&[ctx.seed, kind as u64, u64::from(idx), TAG_MODIFIED]);
    let offset = h % ctx.spread.max(1).unsigned_abs();
    ctx.start - ctx.spread + offset as i64
}

/// Modification times fall in `[start - spread, start)`; one record in twenty shares its
/// predecessor's second, because equal timestamps at a window edge are where exports lose rows.
pub(super) fn initial_state(ctx: &GenContext, kind: ObjectKind, idx: u32) -> RecordState {
    let h = rng::hash(&[ctx.seed, kind as u64, u64::from(idx), TAG_TIE]);
    let modified =
        if idx > 0 && chance(h, 5) { seeded_modified(ctx, kind, idx - 1) } else { seeded_modified(ctx, kind, idx) };
    let age = rng::hash(&[ctx.seed, kind as u64, u64::from(idx), TAG_AGE]);
    // One record in five was never edited after creation.
    let created = if chance(age, 20) { modified } else { modified - (age % MAX_AGE_SECS) as i64 };
    RecordState { idx, version: 0, created, modified, deleted: 0 }
}

pub(super) fn id(rec: &Rec<'_>) -> Value {
    Value::Text(rec.ctx.record_id(rec.kind, rec.st.idx))
}

pub(super) fn is_deleted(rec: &Rec<'_>) -> Value {
    Value::Bool(!rec.st.is_live())
}

pub(super) fn created_date(rec: &Rec<'_>) -> Value {
    Value::DateTime(rec.st.created)
}

pub(super) fn last_modified_date(rec: &Rec<'_>) -> Value {
    Value::DateTime(rec.st.modified)
}

/// Equal to LastModifiedDate, except that a tenth of the seeded records were later touched by a
/// system process, which moves SystemModstamp alone (never past the start time), and that a
/// delete moves it to the deletion time (LastModifiedDate stays): an incremental window on
/// SystemModstamp sees deletes.
pub(super) fn system_modstamp(rec: &Rec<'_>) -> Value {
    Value::DateTime(seeded_modstamp(rec).max(rec.st.deleted_at().unwrap_or(i64::MIN)))
}

fn seeded_modstamp(rec: &Rec<'_>) -> i64 {
    let modified = rec.st.modified;
    if rec.st.version > 0 || rec.kind == ObjectKind::User {
        return modified;
    }
    let h = rec.fixed(TAG_MODSTAMP);
    if !chance(h, 10) {
        return modified;
    }
    let latest = (rec.ctx.start - 1).max(modified);
    (modified + (h % MAX_MODSTAMP_LAG_SECS) as i64).min(latest)
}

fn user(rec: &Rec<'_>, h: u64) -> Option<u32> {
    let users = u64::from(rec.ctx.base_counts[ObjectKind::User.index()]).max(1);
    Some((h % users) as u32)
}

/// Ownership may change with an edit, as reassignments do.
pub(super) fn owner(rec: &Rec<'_>) -> Option<u32> {
    user(rec, rec.varying(TAG_OWNER))
}

pub(super) fn created_by(rec: &Rec<'_>) -> Option<u32> {
    user(rec, rec.fixed(TAG_CREATED_BY))
}

pub(super) fn last_modified_by(rec: &Rec<'_>) -> Option<u32> {
    if rec.st.version == 0 && rec.st.created == rec.st.modified {
        created_by(rec)
    } else {
        user(rec, rec.varying(TAG_MODIFIED_BY))
    }
}

/// A parent drawn from the parents seeded at generation; `None` for `null_percent` of records or
/// when there are no parents.
pub(super) fn parent(rec: &Rec<'_>, to: ObjectKind, tag: u64, null_percent: u64) -> Option<u32> {
    let parents = u64::from(rec.ctx.base_counts[to.index()]);
    let h = rec.fixed(tag);
    if parents == 0 || chance(h, null_percent) {
        return None;
    }
    Some((h % parents) as u32)
}

pub(super) const ID: FieldSpec = FieldSpec::value("Id", FieldType::Id, false, id);
pub(super) const OWNER_ID: FieldSpec = FieldSpec::reference("OwnerId", false, ObjectKind::User, "Owner", owner);
pub(super) const IS_DELETED: FieldSpec = FieldSpec::value("IsDeleted", FieldType::Boolean, false, is_deleted);
pub(super) const CREATED_DATE: FieldSpec = FieldSpec::value("CreatedDate", FieldType::DateTime, false, created_date);
pub(super) const CREATED_BY_ID: FieldSpec =
    FieldSpec::reference("CreatedById", false, ObjectKind::User, "CreatedBy", created_by);
pub(super) const LAST_MODIFIED_DATE: FieldSpec =
    FieldSpec::value("LastModifiedDate", FieldType::DateTime, false, last_modified_date);
pub(super) const LAST_MODIFIED_BY_ID: FieldSpec =
    FieldSpec::reference("LastModifiedById", false, ObjectKind::User, "LastModifiedBy", last_modified_by);
pub(super) const SYSTEM_MODSTAMP: FieldSpec =
    FieldSpec::value("SystemModstamp", FieldType::DateTime, false, system_modstamp);
