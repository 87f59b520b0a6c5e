//! The in-order completion window: events finish their flows in any order, but a replay id may be
//! stored only once its event and every earlier one finished, or a crash would skip the
//! unfinished ones. Events are numbered as they arrive; the window answers "up to which replay id
//! is everything done?".

use std::collections::VecDeque;

/// Arrival numbers are local to one process; replay ids are Salesforce's opaque bytes.
#[derive(Debug, Default)]
pub struct CompletionWindow {
    /// Arrival number of `slots[0]`.
    base: u64,
    /// Per event from `base` on: its replay id and whether it is done.
    slots: VecDeque<(Vec<u8>, bool)>,
}

impl CompletionWindow {
    /// Records an arriving event; returns its arrival number.
    pub fn push(&mut self, replay_id: Vec<u8>) -> u64 {
        self.slots.push_back((replay_id, false));
        self.base + self.slots.len() as u64 - 1
    }

    /// Marks event `seq` done. Returns the replay id of the newest event such that it and
    /// every earlier one are done, when that moved.
    pub fn complete(&mut self, seq: u64) -> Option<Vec<u8>> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(index)?.1 = true;
        let mut newest = None;
        while self.slots.front().is_some_and(|(_, done)| *done) {
            newest = self.slots.pop_front().map(|(id, _)| id);
            self.base += 1;
        }
        newest
    }

    /// Events that arrived and are not yet known done (the head of the window included).
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|(_, done)| !done).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_over_a_contiguous_done_prefix() {
        let mut w = CompletionWindow::default();
        let a = w.push(vec![1]);
        let b = w.push(vec![2]);
        let c = w.push(vec![3]);
        assert_eq!(w.complete(b), None, "the first event is still running");
        assert_eq!(w.complete(c), None);
        assert_eq!(w.in_flight(), 1);
        assert_eq!(w.complete(a), Some(vec![3]), "all three done at once");
        assert_eq!(w.in_flight(), 0);
        let d = w.push(vec![4]);
        assert_eq!(w.complete(d), Some(vec![4]));
    }

    #[test]
    fn unknown_or_repeated_numbers_change_nothing() {
        let mut w = CompletionWindow::default();
        let a = w.push(vec![1]);
        assert_eq!(w.complete(a + 5), None);
        assert_eq!(w.complete(a), Some(vec![1]));
        assert_eq!(w.complete(a), None);
    }
}
