//! Per-stage checkpoints: what a restarted engine needs to re-enter a run at a stage and skip
//! the work already done.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::RunId;
use crate::store::record::json_string;
use crate::store::{Record, Tree};

/// A stage's saved position in a run. `stage` is the name of the flow task it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub stage: String,
    /// The event (data + meta) that entered the stage, to replay into the task on resume.
    #[serde(with = "json_string")]
    pub input: serde_json::Value,
    pub progress: StageProgress,
    /// Set by the ledger when the checkpoint is written.
    pub updated_at: DateTime<Utc>,
}

impl Checkpoint {
    pub fn new(stage: impl Into<String>, input: serde_json::Value) -> Self {
        Self { stage: stage.into(), input, progress: StageProgress::default(), updated_at: DateTime::<Utc>::UNIX_EPOCH }
    }
}

impl Record for Checkpoint {
    const TREE: Tree = Tree::Checkpoints;
    /// 2: per-page marks (locator, rows, batches) and the subjects batches were published on.
    /// 3: the bus generation.
    /// 4: where the bus stored each batch (stream and message sequences).
    const VERSION: u16 = 4;

    fn upgrade(version: u16, body: &[u8]) -> Option<Result<Self, String>> {
        use crate::store::record::decode_body;
        match version {
            2 => Some(decode_body::<v2::Checkpoint>(body).map(Self::from)),
            3 => Some(decode_body::<v3::Checkpoint>(body).map(Self::from)),
            _ => None,
        }
    }
}

/// Version 3 of the record, as written by releases before batch locations.
mod v3 {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{DateTime, Utc};
    use serde::Deserialize;

    use super::PageMark;
    use crate::store::record::json_string;

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct Checkpoint {
        pub stage: String,
        #[serde(with = "json_string")]
        pub input: serde_json::Value,
        pub progress: StageProgress,
        pub updated_at: DateTime<Utc>,
    }

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct StageProgress {
        pub next_locator: Option<String>,
        pub pages_fetched: u64,
        pub pages: Vec<PageMark>,
        pub records_fetched: u64,
        pub batches_fetched: u64,
        pub batches_published: BTreeSet<u64>,
        pub subjects: BTreeSet<String>,
        pub batches_written: BTreeMap<String, BTreeSet<u64>>,
        pub bus_generation: u32,
    }
}

impl From<v3::Checkpoint> for Checkpoint {
    fn from(old: v3::Checkpoint) -> Self {
        let p = old.progress;
        Self {
            stage: old.stage,
            input: old.input,
            progress: StageProgress {
                next_locator: p.next_locator,
                pages_fetched: p.pages_fetched,
                pages: p.pages,
                records_fetched: p.records_fetched,
                batches_fetched: p.batches_fetched,
                batches_published: p.batches_published,
                subjects: p.subjects,
                batches_written: p.batches_written,
                bus_generation: p.bus_generation,
                stored: BTreeMap::new(),
            },
            updated_at: old.updated_at,
        }
    }
}

/// Version 2 of the record, as written by releases before the bus generation.
mod v2 {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{DateTime, Utc};
    use serde::Deserialize;

    use super::PageMark;
    use crate::store::record::json_string;

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct Checkpoint {
        pub stage: String,
        #[serde(with = "json_string")]
        pub input: serde_json::Value,
        pub progress: StageProgress,
        pub updated_at: DateTime<Utc>,
    }

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct StageProgress {
        pub next_locator: Option<String>,
        pub pages_fetched: u64,
        pub pages: Vec<PageMark>,
        pub records_fetched: u64,
        pub batches_fetched: u64,
        pub batches_published: BTreeSet<u64>,
        pub subjects: BTreeSet<String>,
        pub batches_written: BTreeMap<String, BTreeSet<u64>>,
    }
}

impl From<v2::Checkpoint> for Checkpoint {
    fn from(old: v2::Checkpoint) -> Self {
        let p = old.progress;
        Self {
            stage: old.stage,
            input: old.input,
            progress: StageProgress {
                next_locator: p.next_locator,
                pages_fetched: p.pages_fetched,
                pages: p.pages,
                records_fetched: p.records_fetched,
                batches_fetched: p.batches_fetched,
                batches_published: p.batches_published,
                subjects: p.subjects,
                batches_written: p.batches_written,
                bus_generation: 0,
                stored: BTreeMap::new(),
            },
            updated_at: old.updated_at,
        }
    }
}

/// The checkpoint an export's results stage keeps: pages fetched, and the progress of their
/// batches through the bus and the sinks. One record per run, so every stage reads one place.
pub const RESULTS_STAGE: &str = "results";
/// Where the intent to create a run's job (its SOQL, operation and options) is recorded before
/// the POST, so a restart adopts the job a lost answer hid instead of making a second.
pub const INTENT_STAGE: &str = "job_intent";
/// Where the intent to replace a run's vanished job is recorded before the new job's POST.
pub const RECREATE_STAGE: &str = "job_recreate";
/// Names (`input.job`) the Bulk job that reads every live `Id` for the run's sweep (see
/// `warehouse::sweep`), so a resumed run reads the same job and sends the same parts.
pub const SWEEP_STAGE: &str = "sweep";

/// One fetched results page: enough to fetch it again and to know which batches it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMark {
    /// The locator the page was requested with (`None` for the first page).
    pub locator: Option<String>,
    pub rows: u64,
    pub batches: u64,
}

/// How far a stage got. Batches are numbered from 0 in fetch order; sets rather than counts,
/// because acknowledgements arrive out of order and a resumed stage must redo exactly the gaps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageProgress {
    /// The `Sforce-Locator` of the next results page; `None` before the first page.
    pub next_locator: Option<String>,
    pub pages_fetched: u64,
    /// Each fetched page, in order, so batches the bus lost can be fetched again from Salesforce.
    pub pages: Vec<PageMark>,
    /// Records and batches read from the pages fetched so far, so a resume numbers batches on.
    pub records_fetched: u64,
    pub batches_fetched: u64,
    pub batches_published: BTreeSet<u64>,
    /// The subjects the batches were published on: which writer flows must write them.
    pub subjects: BTreeSet<String>,
    /// Batches written, per sink (a writer flow: its event completes when all its sinks wrote).
    pub batches_written: BTreeMap<String, BTreeSet<u64>>,
    /// How many times the bus lost batches of the run and they were published again. Message
    /// ids carry it past the first time: a purged stream still remembers the ids it deduplicates
    /// (for its `duplicate_window`), and would drop the republished batches as duplicates.
    pub bus_generation: u32,
    /// Where the bus stored each published batch: so a batch is fetched again only once the bus
    /// shows it lost (no longer in its stream), never merely because its writer is slow.
    pub stored: BTreeMap<u64, StoredBatch>,
}

/// A published batch's place on the bus.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBatch {
    pub stream: String,
    /// The stream sequence of each of its messages (a large batch is split in several).
    pub sequences: Vec<u64>,
}

impl StageProgress {
    /// Records that page number `page` was fetched with `locator`, held `rows` rows in `batches`
    /// batches, and that the next one is `next`. Idempotent per page, because a page fetched
    /// again after a restart reports again.
    pub fn page_fetched(&mut self, page: u64, mark: PageMark, next: Option<String>) {
        if page != self.pages_fetched {
            return;
        }
        self.records_fetched += mark.rows;
        self.batches_fetched += mark.batches;
        self.pages.push(mark);
        self.pages_fetched += 1;
        self.next_locator = next;
    }

    /// The sequence number of page `page`'s first batch, the rows before it, and its mark.
    pub fn page_start(&self, page: usize) -> Option<(u64, u64, &PageMark)> {
        let mark = self.pages.get(page)?;
        let before = &self.pages[..page];
        Some((before.iter().map(|p| p.batches).sum(), before.iter().map(|p| p.rows).sum(), mark))
    }

    /// True once the last page was fetched.
    pub fn all_pages_fetched(&self) -> bool {
        self.pages_fetched > 0 && self.next_locator.is_none()
    }

    /// Returns false if the batch was already recorded (a redelivered acknowledgement).
    pub fn mark_published(&mut self, batch: u64) -> bool {
        self.batches_published.insert(batch)
    }

    /// Returns false if the batch was already recorded for this sink.
    pub fn mark_written(&mut self, sink: &str, batch: u64) -> bool {
        self.batches_written.entry(sink.to_owned()).or_default().insert(batch)
    }

    /// The batches of `0..total` not yet acknowledged by the bus.
    pub fn unpublished(&self, total: u64) -> impl Iterator<Item = u64> + '_ {
        (0..total).filter(|b| !self.batches_published.contains(b))
    }

    /// The batches of `0..total` that `sink` has not written.
    pub fn unwritten<'a>(&'a self, sink: &str, total: u64) -> impl Iterator<Item = u64> + 'a {
        let written = self.batches_written.get(sink);
        (0..total).filter(move |b| !written.is_some_and(|w| w.contains(b)))
    }
}

/// Keys start with the run id's length, so one run's prefix can never match another run whose
/// id merely starts with the same text.
pub(crate) fn key_prefix(run: &RunId) -> Vec<u8> {
    let id = run.as_str().as_bytes();
    let len = u32::try_from(id.len()).expect("a run id shorter than 4 GiB");
    [&len.to_be_bytes()[..], id].concat()
}

pub(crate) fn key(run: &RunId, stage: &str) -> Vec<u8> {
    [key_prefix(run), stage.as_bytes().to_vec()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{decode, encode};

    #[test]
    fn progress_tracks_gaps_per_sink() {
        let mut p = StageProgress::default();
        assert!(p.mark_published(2));
        assert!(p.mark_published(0));
        assert!(!p.mark_published(2));
        assert_eq!(p.unpublished(4).collect::<Vec<_>>(), [1, 3]);
        assert!(p.mark_written("parquet", 1));
        assert!(!p.mark_written("parquet", 1));
        assert_eq!(p.unwritten("parquet", 3).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(p.unwritten("postgres", 2).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn pages_are_recorded_once_and_locate_their_batches() {
        let mut p = StageProgress::default();
        p.page_fetched(0, PageMark { locator: None, rows: 25, batches: 3 }, Some("L1".into()));
        p.page_fetched(0, PageMark { locator: None, rows: 25, batches: 3 }, Some("L1".into()));
        p.page_fetched(1, PageMark { locator: Some("L1".into()), rows: 7, batches: 1 }, None);
        assert_eq!((p.pages_fetched, p.records_fetched, p.batches_fetched), (2, 32, 4));
        assert!(p.all_pages_fetched());
        let (first, rows, mark) = p.page_start(1).unwrap();
        assert_eq!((first, rows, mark.locator.as_deref()), (3, 25, Some("L1")));
        assert!(p.page_start(2).is_none());
    }

    /// A store written by the previous release (checkpoint version 2) is read on upgrade, so runs
    /// in flight resume.
    #[test]
    fn a_version_2_checkpoint_is_read_with_bus_generation_0() {
        let mark = PageMark { locator: Some("L1".into()), rows: 10, batches: 2 };
        let old = v2::Checkpoint {
            stage: RESULTS_STAGE.into(),
            input: serde_json::json!({"data": {"id": "750A"}}),
            progress: v2::StageProgress {
                next_locator: None,
                pages_fetched: 1,
                pages: vec![mark.clone()],
                records_fetched: 10,
                batches_fetched: 2,
                batches_published: [0, 1].into(),
                subjects: ["s".to_string()].into(),
                batches_written: [("w".to_string(), [1].into())].into(),
            },
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let mut bytes = 2u16.to_be_bytes().to_vec();
        bytes.extend(bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap());
        let cp: Checkpoint = decode(b"k", &bytes).unwrap();
        assert_eq!(cp.input, old.input);
        assert_eq!(cp.progress.pages, vec![mark]);
        assert_eq!(cp.progress.batches_published, [0, 1].into());
        assert_eq!(cp.progress.batches_written["w"], [1].into());
        assert_eq!(cp.progress.bus_generation, 0);
        let mut newer = 5u16.to_be_bytes().to_vec();
        newer.extend_from_slice(&bytes[2..]);
        assert!(decode::<Checkpoint>(b"k", &newer).is_err(), "a newer record is refused");
    }

    /// A store written before batch locations (version 3) is read with none: its batches are
    /// treated as the previous release did.
    #[test]
    fn a_version_3_checkpoint_is_read_without_batch_locations() {
        let old = v3::Checkpoint {
            stage: RESULTS_STAGE.into(),
            input: serde_json::json!({"data": {"id": "750A"}}),
            progress: v3::StageProgress {
                next_locator: None,
                pages_fetched: 1,
                pages: vec![PageMark { locator: None, rows: 10, batches: 2 }],
                records_fetched: 10,
                batches_fetched: 2,
                batches_published: [0, 1].into(),
                subjects: ["s".to_string()].into(),
                batches_written: [("w".to_string(), [1].into())].into(),
                bus_generation: 2,
            },
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let mut bytes = 3u16.to_be_bytes().to_vec();
        bytes.extend(bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap());
        let cp: Checkpoint = decode(b"k", &bytes).unwrap();
        assert_eq!(cp.progress.bus_generation, 2);
        assert_eq!(cp.progress.batches_written["w"], [1].into());
        assert!(cp.progress.stored.is_empty());
    }

    #[test]
    fn checkpoint_round_trips_with_its_json_input() {
        let mut cp = Checkpoint::new(
            "fetch_results",
            serde_json::json!({"data": {"jobId": "750xx", "n": [1, 2.5, null]}, "meta": {"run_id": "f@t"}}),
        );
        cp.progress.page_fetched(0, PageMark { locator: None, rows: 10, batches: 1 }, Some("MjAwMDA".into()));
        cp.progress.mark_written("s3", 0);
        cp.progress.stored.insert(0, StoredBatch { stream: "salesforce_bulkapi".into(), sequences: vec![7, 8] });
        let bytes = encode(b"k", &cp).unwrap();
        assert_eq!(decode::<Checkpoint>(b"k", &bytes).unwrap(), cp);
    }

    #[test]
    fn a_run_prefix_does_not_cover_a_longer_run_id() {
        let t = "2026-11-25T09:05:00Z".parse().unwrap();
        let short = RunId::new("a", t);
        let long = RunId::new("a@2026-11-25T09:05:00Z", t);
        assert!(key(&short, "s").starts_with(&key_prefix(&short)));
        assert!(!key(&long, "s").starts_with(&key_prefix(&short)));
    }
}
