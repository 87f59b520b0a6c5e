//! Fault points: the places in an export run where a crash matters, so tests can kill the process
//! exactly there and show that a restart loses nothing and doubles nothing.
//!
//! They exist in every build as names ([`POINTS`], listed by `bulkflow debug failpoints`), but
//! only a build with the `failpoints` feature acts on them; without it [`point`] is an empty
//! inline function. With it, `BULKFLOW_CRASH_AT=<point>[@<n>]` makes the process SIGKILL itself
//! the n-th time (default the first) it reaches `<point>`: no destructor, no flush, no goodbye,
//! as a power cut or the OOM killer would end it.
//!
//! Error points are the other kind: places where the machine, not the process, fails (a disk
//! full, a file system gone read-only), which root cannot provoke with `chmod` and a test cannot
//! provoke on a real disk without filling it. `BULKFLOW_FAIL_WHILE=<point>:<file>[,...]` makes
//! [`error_point`] answer the point's operating-system error while `<file>` exists, so a test turns
//! the fault on and off from outside by creating and removing the file.

/// The environment variable that arms a point.
pub const CRASH_AT_ENV: &str = "BULKFLOW_CRASH_AT";

/// Every fault point, `<stage>.<what>`, with where it sits. DURABILITY.md has a row for each.
pub const POINTS: &[(&str, &str)] = &[
    ("scheduler.run_opened", "a tick opened its run; its event has not reached the flow"),
    ("query.intent_recorded", "the job intent is recorded; the job POST is not sent"),
    ("query.job_created", "the job POST answered; the job is not recorded on the run"),
    ("pubsub.event_received", "a Pub/Sub event arrived; its replay id is not stored"),
    ("listener.event_received", "a completion event reached get_results; the ledger has not recorded it"),
    ("results.mid_page", "part of a results page's body is read"),
    ("results.page_parsed", "a page is parsed and its batches emitted; its locator is not checkpointed"),
    ("results.last_page_recorded", "the last page is checkpointed; the run does not know its batch total yet"),
    ("publish.acked", "the bus acknowledged a batch; the ack is not recorded"),
    ("publish.recorded", "a batch's ack is recorded; the next batch is not published"),
    ("lake.staged", "a Parquet file is written to its staging name, not renamed into place"),
    ("lake.renamed", "a Parquet file is renamed into place; the batch is not recorded written"),
    ("warehouse.postgres_committed", "a PostgreSQL upsert committed; the batch is not recorded written"),
    ("warehouse.bigquery_appended", "a BigQuery append succeeded; the batch is not recorded written"),
    ("writer.recorded", "a writer flow recorded a batch written; the bus message is not acked"),
    ("ledger.written", "the run is `written` and the watermark moved (one commit); nothing after"),
    ("retention.mid_compaction", "compaction removed a finished run; others may remain"),
];

/// The environment variable that arms error points.
pub const FAIL_WHILE_ENV: &str = "BULKFLOW_FAIL_WHILE";

/// Every error point, with the errno it answers and where it sits.
pub const ERROR_POINTS: &[(&str, i32, &str)] = &[
    ("store.commit", 28, "every state store commit answers ENOSPC (no space left on device); nothing is written"),
    ("lake.write", 30, "every local lake file write answers EROFS (read-only file system); nothing is written"),
];

/// Marks an error point: `Err` with the point's operating-system error while it is armed and its
/// file exists, else `Ok`. `name` must be one of [`ERROR_POINTS`].
#[inline(always)]
pub fn error_point(name: &'static str) -> std::io::Result<()> {
    debug_assert!(ERROR_POINTS.iter().any(|(p, ..)| *p == name), "unknown error point {name}");
    #[cfg(feature = "failpoints")]
    if let Some((_, errno, file)) = FAILING.get().and_then(|armed| armed.iter().find(|(p, ..)| *p == name))
        && file.exists()
    {
        return Err(std::io::Error::from_raw_os_error(*errno));
    }
    let _ = name;
    Ok(())
}

/// The armed error points: name, errno, the file whose existence turns the point on.
#[cfg(feature = "failpoints")]
static FAILING: std::sync::OnceLock<Vec<(&'static str, i32, std::path::PathBuf)>> = std::sync::OnceLock::new();

/// The error points `spec` (`point:file[,point:file]`) arms, with their errno.
pub fn parse_fail_while(spec: &str) -> Result<Vec<(&'static str, i32, std::path::PathBuf)>, ArmError> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|one| {
            let (name, file) =
                one.trim().split_once(':').filter(|(_, f)| !f.is_empty()).ok_or(ArmError::BadFailWhile(one.into()))?;
            let (name, errno, _) = ERROR_POINTS
                .iter()
                .find(|(p, ..)| *p == name)
                .ok_or_else(|| ArmError::UnknownErrorPoint(name.into()))?;
            Ok((*name, *errno, std::path::PathBuf::from(file)))
        })
        .collect()
}

/// The names of [`ERROR_POINTS`], for an error that lists them.
fn error_point_names() -> String {
    ERROR_POINTS.iter().map(|(name, ..)| *name).collect::<Vec<_>>().join(", ")
}

/// Arms the error points `BULKFLOW_FAIL_WHILE` names, if set; returns their names.
pub fn arm_errors_from_env() -> Result<Vec<&'static str>, ArmError> {
    let Some(spec) = std::env::var(FAIL_WHILE_ENV).ok().filter(|s| !s.trim().is_empty()) else { return Ok(vec![]) };
    let armed = parse_fail_while(&spec)?;
    let names: Vec<&'static str> = armed.iter().map(|(n, ..)| *n).collect();
    #[cfg(feature = "failpoints")]
    {
        let _ = FAILING.set(armed);
        Ok(names)
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = (armed, names);
        Err(ArmError::NotBuiltIn)
    }
}

/// Marks a fault point. `name` must be one of [`POINTS`] (checked in tests and debug builds).
#[inline(always)]
pub fn point(name: &'static str) {
    debug_assert!(POINTS.iter().any(|(p, _)| *p == name), "unknown fault point {name}");
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArmError {
    #[error(
        "{CRASH_AT_ENV} or {FAIL_WHILE_ENV} is set, but this build has no fault points (build with `--features failpoints`)"
    )]
    NotBuiltIn,
    #[error("{CRASH_AT_ENV}=`{0}`: no such fault point (`bulkflow debug failpoints` lists them)")]
    Unknown(String),
    #[error("{CRASH_AT_ENV}=`{0}`: the hit count after `@` must be a whole number from 1")]
    BadCount(String),
    #[error("{FAIL_WHILE_ENV}: `{0}` is not `<error point>:<file>`")]
    BadFailWhile(String),
    #[error("{FAIL_WHILE_ENV}: no such error point `{0}` (there are: {points})", points = error_point_names())]
    UnknownErrorPoint(String),
}

/// The point and hit count `spec` (`name` or `name@n`) names.
pub fn parse(spec: &str) -> Result<(&'static str, u64), ArmError> {
    let (name, count) = match spec.split_once('@') {
        Some((name, n)) => (name, n.parse::<u64>().ok().filter(|n| *n >= 1).ok_or(ArmError::BadCount(spec.into()))?),
        None => (spec, 1),
    };
    let name = POINTS.iter().map(|(p, _)| *p).find(|p| *p == name).ok_or_else(|| ArmError::Unknown(spec.into()))?;
    Ok((name, count))
}

/// Arms the point `BULKFLOW_CRASH_AT` names, if set; returns it. Called once at process start.
pub fn arm_from_env() -> Result<Option<(&'static str, u64)>, ArmError> {
    let Some(spec) = std::env::var(CRASH_AT_ENV).ok().filter(|s| !s.trim().is_empty()) else { return Ok(None) };
    let (name, count) = parse(spec.trim())?;
    arm(name, count)?;
    Ok(Some((name, count)))
}

#[cfg(feature = "failpoints")]
fn arm(name: &'static str, count: u64) -> Result<(), ArmError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let hits = AtomicU64::new(0);
    fail::cfg_callback(name, move || {
        if hits.fetch_add(1, Ordering::SeqCst) + 1 == count {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "crash point {name} reached (hit {count}): SIGKILL");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
            // The signal is delivered before kill returns for the calling process; never go on.
            std::process::abort();
        }
    })
    .map_err(|_| ArmError::Unknown(name.into()))
}

#[cfg(not(feature = "failpoints"))]
fn arm(_: &'static str, _: u64) -> Result<(), ArmError> {
    Err(ArmError::NotBuiltIn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stage_dot_what_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, _) in POINTS {
            let (stage, what) = name.split_once('.').unwrap();
            let ok = |s: &str| {
                !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.".contains(c))
            };
            assert!(ok(stage) && !stage.contains('.') && ok(what), "{name}");
            assert!(seen.insert(*name), "{name} twice");
        }
        assert!(POINTS.len() >= 14);
    }

    #[test]
    fn specs_name_a_point_and_a_hit() {
        assert_eq!(parse("lake.staged"), Ok(("lake.staged", 1)));
        assert_eq!(parse("lake.staged@3"), Ok(("lake.staged", 3)));
        assert_eq!(parse("lake.staged@0"), Err(ArmError::BadCount("lake.staged@0".into())));
        assert_eq!(parse("lake.staged@x"), Err(ArmError::BadCount("lake.staged@x".into())));
        assert_eq!(parse("lake.nowhere"), Err(ArmError::Unknown("lake.nowhere".into())));
    }

    #[test]
    fn fail_while_names_error_points_and_files() {
        let armed = parse_fail_while("store.commit:/tmp/full, lake.write:/tmp/ro").unwrap();
        assert_eq!(armed, [("store.commit", 28, "/tmp/full".into()), ("lake.write", 30, "/tmp/ro".into())]);
        assert_eq!(parse_fail_while("store.commit"), Err(ArmError::BadFailWhile("store.commit".into())));
        assert_eq!(parse_fail_while("store.commit:"), Err(ArmError::BadFailWhile("store.commit:".into())));
        assert_eq!(parse_fail_while("disk.melt:/x"), Err(ArmError::UnknownErrorPoint("disk.melt".into())));
        let unknown = ArmError::UnknownErrorPoint("disk.melt".into()).to_string();
        assert!(unknown.contains("`disk.melt` (there are: store.commit, lake.write)"), "{unknown}");
        // Unarmed (and in a build without fault points) an error point never fails.
        assert!(error_point("store.commit").is_ok());
    }
}
