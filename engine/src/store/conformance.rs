//! The behaviour every [`StateStore`] must have, written once and run against each backend with
//! [`conformance_tests!`]. The ledger's correctness rests on exactly these properties: atomic
//! batches across trees, expectations checked before any write, and ordered prefix scans.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Batch, Commit, StateStore, Tree};

/// Expands to one `#[test]` per case, each on a fresh store from `$fixture()` (anything that is
/// `AsRef<dyn StateStore>`), so a failure names the backend and the case.
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::store::conformance::conformance_tests!(@cases $fixture;
            get_missing_is_none,
            put_then_get,
            delete_removes,
            trees_are_separate_keyspaces,
            scan_prefix_is_ordered_and_bounded,
            failed_expectation_writes_nothing_in_any_tree,
            expect_absent_creates_once,
            expect_value_is_compare_and_swap,
            expectations_see_the_state_before_the_batch,
            writes_apply_in_order,
            concurrent_compare_and_swap_loses_no_update
        );
    };
    (@cases $fixture:path; $($case:ident),+) => {
        $(
            #[test]
            fn $case() {
                let fixture = $fixture();
                $crate::store::conformance::$case(fixture.as_ref());
            }
        )+
    };
}
pub(crate) use conformance_tests;

fn commit(store: &dyn StateStore, batch: Batch) -> Commit {
    store.commit(batch).expect("commit")
}

fn put(store: &dyn StateStore, tree: Tree, key: &[u8], value: &[u8]) {
    let mut batch = Batch::new();
    batch.put(tree, key, value.to_vec());
    assert_eq!(commit(store, batch), Commit::Applied);
}

fn get(store: &dyn StateStore, tree: Tree, key: &[u8]) -> Option<Vec<u8>> {
    store.get(tree, key).expect("get")
}

pub(crate) fn get_missing_is_none(store: &dyn StateStore) {
    for tree in Tree::ALL {
        assert_eq!(get(store, tree, b"nope"), None);
        assert!(store.scan_prefix(tree, b"").unwrap().is_empty());
    }
}

pub(crate) fn put_then_get(store: &dyn StateStore) {
    put(store, Tree::Runs, b"a", b"1");
    assert_eq!(get(store, Tree::Runs, b"a"), Some(b"1".to_vec()));
    put(store, Tree::Runs, b"a", b"2");
    assert_eq!(get(store, Tree::Runs, b"a"), Some(b"2".to_vec()));
}

pub(crate) fn delete_removes(store: &dyn StateStore) {
    put(store, Tree::Leases, b"a", b"1");
    let mut batch = Batch::new();
    batch.delete(Tree::Leases, b"a").delete(Tree::Leases, b"never-there");
    assert_eq!(commit(store, batch), Commit::Applied);
    assert_eq!(get(store, Tree::Leases, b"a"), None);
}

pub(crate) fn trees_are_separate_keyspaces(store: &dyn StateStore) {
    for (i, tree) in Tree::ALL.into_iter().enumerate() {
        put(store, tree, b"same", &[i as u8]);
    }
    for (i, tree) in Tree::ALL.into_iter().enumerate() {
        assert_eq!(get(store, tree, b"same"), Some(vec![i as u8]), "{tree}");
        assert_eq!(store.scan_prefix(tree, b"").unwrap().len(), 1, "{tree}");
    }
}

pub(crate) fn scan_prefix_is_ordered_and_bounded(store: &dyn StateStore) {
    for key in [&b"ab\xff"[..], b"b", b"ab", b"a", b"ab\x00z", b"abc", b"aa\xff"] {
        put(store, Tree::Checkpoints, key, key);
    }
    put(store, Tree::Runs, b"abd", b"other tree");
    let scanned = store.scan_prefix(Tree::Checkpoints, b"ab").unwrap();
    let keys: Vec<&[u8]> = scanned.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [&b"ab"[..], b"ab\x00z", b"abc", b"ab\xff"]);
    assert!(scanned.iter().all(|(k, v)| k == v));
    assert_eq!(store.scan_prefix(Tree::Checkpoints, b"").unwrap().len(), 7);
}

pub(crate) fn failed_expectation_writes_nothing_in_any_tree(store: &dyn StateStore) {
    put(store, Tree::Runs, b"run", b"v1");
    let mut batch = Batch::new();
    batch
        .expect(Tree::Runs, b"run", Some(b"v1".to_vec()))
        .expect(Tree::JobRuns, b"job", Some(b"stale".to_vec()))
        .put(Tree::Runs, b"run", b"v2".to_vec())
        .put(Tree::Checkpoints, b"cp", b"x".to_vec())
        .delete(Tree::Runs, b"run");
    assert_eq!(commit(store, batch), Commit::Conflict { tree: Tree::JobRuns, key: b"job".to_vec() });
    assert_eq!(get(store, Tree::Runs, b"run"), Some(b"v1".to_vec()));
    assert_eq!(get(store, Tree::Checkpoints, b"cp"), None);
}

pub(crate) fn expect_absent_creates_once(store: &dyn StateStore) {
    let create = |value: &[u8]| {
        let mut batch = Batch::new();
        batch.expect(Tree::Runs, b"tick", None).put(Tree::Runs, b"tick", value.to_vec());
        commit(store, batch)
    };
    assert_eq!(create(b"first"), Commit::Applied);
    assert_eq!(create(b"second"), Commit::Conflict { tree: Tree::Runs, key: b"tick".to_vec() });
    assert_eq!(get(store, Tree::Runs, b"tick"), Some(b"first".to_vec()));
}

pub(crate) fn expect_value_is_compare_and_swap(store: &dyn StateStore) {
    put(store, Tree::Flows, b"f", b"1");
    let swap = |from: &[u8], to: &[u8]| {
        let mut batch = Batch::new();
        batch.expect(Tree::Flows, b"f", Some(from.to_vec())).put(Tree::Flows, b"f", to.to_vec());
        commit(store, batch)
    };
    assert_eq!(swap(b"1", b"2"), Commit::Applied);
    assert!(matches!(swap(b"1", b"3"), Commit::Conflict { .. }));
    assert_eq!(get(store, Tree::Flows, b"f"), Some(b"2".to_vec()));
}

pub(crate) fn expectations_see_the_state_before_the_batch(store: &dyn StateStore) {
    let mut batch = Batch::new();
    batch.put(Tree::ReplayIds, b"c", b"1".to_vec()).expect(Tree::ReplayIds, b"c", None);
    assert_eq!(commit(store, batch), Commit::Applied);
    assert_eq!(get(store, Tree::ReplayIds, b"c"), Some(b"1".to_vec()));
}

pub(crate) fn writes_apply_in_order(store: &dyn StateStore) {
    let mut batch = Batch::new();
    batch
        .put(Tree::Runs, b"deleted", b"x".to_vec())
        .delete(Tree::Runs, b"deleted")
        .delete(Tree::Runs, b"kept")
        .put(Tree::Runs, b"kept", b"y".to_vec())
        .put(Tree::Runs, b"kept", b"z".to_vec());
    assert_eq!(commit(store, batch), Commit::Applied);
    assert_eq!(get(store, Tree::Runs, b"deleted"), None);
    assert_eq!(get(store, Tree::Runs, b"kept"), Some(b"z".to_vec()));
}

pub(crate) fn concurrent_compare_and_swap_loses_no_update(store: &dyn StateStore) {
    const THREADS: usize = 4;
    const INCREMENTS: u64 = 25;
    let conflicts = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..INCREMENTS {
                    loop {
                        let current = get(store, Tree::Flows, b"counter");
                        let n = current.as_deref().map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
                        let mut batch = Batch::new();
                        batch.expect(Tree::Flows, b"counter", current).put(
                            Tree::Flows,
                            b"counter",
                            (n + 1).to_be_bytes().to_vec(),
                        );
                        match commit(store, batch) {
                            Commit::Applied => break,
                            Commit::Conflict { .. } => conflicts.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            });
        }
    });
    let total = get(store, Tree::Flows, b"counter").unwrap();
    assert_eq!(
        u64::from_be_bytes(total.try_into().unwrap()),
        THREADS as u64 * INCREMENTS,
        "{} conflicts were retried",
        conflicts.load(Ordering::Relaxed)
    );
}
