//! Applying a batch of modifications, inserts, deletes and a Recycle Bin purge.

use super::objects::{ObjectKind, RecordState};
use super::{ChangeBatch, Dataset, rng};

const TAG_CHANGE: u64 = 0xc4a9;
const TAG_DELETE: u64 = 0xde1e;

/// Picks an object with probability proportional to `weight(kind)`.
fn pick_kind(h: u64, weight: impl Fn(ObjectKind) -> u64) -> Option<ObjectKind> {
    let kinds = ObjectKind::ALL.into_iter().filter(|k| k.changes());
    let total: u64 = kinds.clone().map(&weight).sum();
    if total == 0 {
        return None;
    }
    let mut point = h % total;
    for kind in kinds {
        let w = weight(kind);
        if point < w {
            return Some(kind);
        }
        point -= w;
    }
    None
}

/// The position of a live record at or after `from` (wrapping), if any is live.
fn live_from(states: &[RecordState], from: usize) -> Option<usize> {
    let n = states.len();
    (0..n).map(|i| (from + i) % n).find(|&i| states[i].is_live())
}

/// Returns the ids of the records deleted.
pub(super) fn apply(data: &mut Dataset, batch: &ChangeBatch) -> Vec<String> {
    let seed = data.ctx.seed;
    let live = |data: &Dataset, k: ObjectKind| data.states(k).iter().filter(|st| st.is_live()).count() as u64;
    for _ in 0..batch.modifications {
        let h = rng::hash(&[seed, TAG_CHANGE, data.change_seq]);
        data.change_seq += 1;
        let Some(kind) = pick_kind(h, |k| data.states(k).len() as u64) else {
            break;
        };
        let states = &mut data.objects[kind.index()].states;
        // A deleted record is not edited: the next live one is.
        let Some(idx) = live_from(states, (rng::hash(&[h]) % states.len() as u64) as usize) else { continue };
        let st = &mut states[idx];
        st.version += 1;
        st.modified = batch.now.max(st.created);
    }
    for _ in 0..batch.inserts {
        let h = rng::hash(&[seed, TAG_CHANGE, data.change_seq]);
        data.change_seq += 1;
        let Some(kind) = pick_kind(h, |k| u64::from(data.ctx.base_counts[k.index()])) else {
            break;
        };
        let states = &mut data.objects[kind.index()].states;
        let Ok(idx) = u32::try_from(states.len()) else {
            break;
        };
        if states.len() >= super::MAX_RECORDS {
            break;
        }
        states.push(RecordState { idx, version: 0, created: batch.now, modified: batch.now, deleted: 0 });
    }
    let only = batch.delete_object.as_deref().and_then(ObjectKind::from_name);
    let mut deleted = Vec::new();
    for _ in 0..batch.deletes {
        let h = rng::hash(&[seed, TAG_DELETE, data.change_seq]);
        data.change_seq += 1;
        let kind = match only {
            Some(kind) => kind,
            None => match pick_kind(h, |k| live(data, k)) {
                Some(kind) => kind,
                None => break,
            },
        };
        let states = &mut data.objects[kind.index()].states;
        if states.is_empty() {
            break;
        }
        let Some(idx) = live_from(states, (rng::hash(&[h]) % states.len() as u64) as usize) else { break };
        states[idx].deleted = batch.now.max(states[idx].modified).max(1);
        deleted.push(data.ctx.record_id(kind, states[idx].idx));
    }
    if let Some(kind) = batch.purge.as_deref().and_then(ObjectKind::from_name) {
        for st in data.objects[kind.index()].states.iter_mut().filter(|st| st.is_recycled()) {
            st.deleted = -st.deleted;
        }
    }
    deleted
}
