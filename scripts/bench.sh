#!/usr/bin/env bash
# Benchmarks that need more than `cargo bench`: real processes side by side on one simulator.
#
#   scripts/bench.sh export [N]     (N Account rows, default 1000000)
#   scripts/bench.sh pipeline [N]   (N Account rows, default 1000000)
#   scripts/bench.sh restart [RUNS] (finished runs in the store, default 10000)
#   scripts/bench.sh demo [N]       (N records per object, default 100000)
#
# `export`: on one `bulkflow sim serve` with the default job latency, runs
#   1. `bulkflow export` of the seed's 7 Account columns to Parquet,
#   2. simple-salesforce's Bulk 2.0 download to CSV, then pyarrow CSV -> Parquet (zstd),
#   3. `bulkflow export --discard`: the download alone, into Arrow batches, no file,
#   4. simple-salesforce's download alone,
# and prints wall and CPU time, peak RSS, rows/s and MB/s (of CSV as served) for each, the
# simulator's CPU during each, and the ratios. Release build; installs simple-salesforce and
# pyarrow with pip when missing.
# See scripts/bench/export.sh.
#
# `pipeline`: the engine doing its real job. The seed's query and listener flows with a writer,
# from a fresh state (the first tick fires at once) to the run's `written`, once per writer
# (the seed's lake writer without its BigQuery branch; the PostgreSQL variant) and bus (embedded;
# nats-server), beside `bulkflow export` of the same query to Parquet and a bare `COPY` + one
# `INSERT ... ON CONFLICT` of the same rows into the same PostgreSQL. See scripts/bench/pipeline.sh.
#
# `restart`: a store with RUNS finished runs and 10 left at `scheduled` by a crash; the time from
# `bulkflow run` starting to the first of them making progress. See scripts/bench/restart.sh.
#
# `demo`: `bulkflow demo --records N --until-idle` (the first export of 3 x N), wall and peak RSS,
# and the simulator's own peak RSS serving the same records. See scripts/bench/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulkflow-target}"

what="${1:-}"
case "$what" in
  export | pipeline | restart | demo) shift; exec bash "scripts/bench/$what.sh" "$@" ;;
  *) echo "usage: scripts/bench.sh export|pipeline|restart|demo [N]" >&2; exit 2 ;;
esac
