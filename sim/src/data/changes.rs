//! Applying a batch of modifications and inserts.

use super::objects::{ObjectKind, RecordState};
use super::{ChangeBatch, Dataset, rng};

const TAG_CHANGE: u64 = 0xc4a9;

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

pub(super) fn apply(data: &mut Dataset, batch: &ChangeBatch) {
    let seed = data.ctx.seed;
    for _ in 0..batch.modifications {
        let h = rng::hash(&[seed, TAG_CHANGE, data.change_seq]);
        data.change_seq += 1;
        let Some(kind) = pick_kind(h, |k| data.states(k).len() as u64) else {
            return;
        };
        let states = &mut data.objects[kind.index()].states;
        let idx = (rng::hash(&[h]) % states.len() as u64) as usize;
        let st = &mut states[idx];
        st.version += 1;
        st.modified = batch.now.max(st.created);
    }
    for _ in 0..batch.inserts {
        let h = rng::hash(&[seed, TAG_CHANGE, data.change_seq]);
        data.change_seq += 1;
        let Some(kind) = pick_kind(h, |k| u64::from(data.ctx.base_counts[k.index()])) else {
            return;
        };
        let states = &mut data.objects[kind.index()].states;
        let Ok(idx) = u32::try_from(states.len()) else {
            return;
        };
        if states.len() >= super::MAX_RECORDS {
            return;
        }
        states.push(RecordState { idx, version: 0, created: batch.now, modified: batch.now });
    }
}
