#!/usr/bin/env bash
# scripts/bench.sh restart [FINISHED]: how long a start takes to get back to work on a store with
# history. The store holds FINISHED written runs of the seed's Account query flow (default 10,000,
# five batches each) and 10 newer runs a crash left at `scheduled` (engine/examples/restart_store.rs).
# `bulkflow run` starts on it with the seed's flows (the writer without its BigQuery branch, the
# embedded bus) against a simulator; printed: the time from process start to the log's `starting`,
# to the first interrupted run resumed, and to that run's Bulk job created (the first resumed
# progress), best and median of 5 starts (each on a fresh copy of the store).
set -euo pipefail
cd "$(dirname "$0")/../.."
FINISHED="${1:-10000}"
UNFINISHED=10
STARTS=5

# shellcheck source=scripts/bench/common.sh
source scripts/bench/common.sh
# Built beside the binary so both see the same dependency features (no second build of them).
cargo build --release -q -p bulkflow -p bulkflow-engine --example restart_store

start_sim --records "Account=1000"
mkdir -p "$work/wf"
cp workflows/seed/salesforce_bulkapi_query_account.yaml workflows/seed/salesforce_bulkapi_job_listener.yaml "$work/wf/"
sed '/- gcp_bigquery_storage_write:/,$d' workflows/seed/salesforce_bulkapi_writer_account.yaml >"$work/wf/salesforce_bulkapi_writer_account.yaml"

"$CARGO_TARGET_DIR/release/examples/restart_store" "$work/store" "$FINISHED" "$UNFINISHED"
store_mb="$(du -sm "$work/store" | cut -f1)"

# Seconds from `start` to the first log line matching `pattern`, from the log's own timestamps.
since_start() { # log, start (epoch seconds), pattern
  local line; line="$(grep -m1 "$3" "$1")" || { echo "no '$3' in the log:" >&2; tail -5 "$1" >&2; exit 1; }
  local at; at="$(date -d "$(awk '{print $1}' <<<"$line")" +%s.%N)"
  echo "scale=3; ($at - $2) / 1" | bc
}

starting=() resumed=() progress=()
for i in $(seq 1 "$STARTS"); do
  rm -rf "$work/state" && cp -r "$work/store" "$work/state"
  log="$work/run$i.log"
  start="$(now)"
  GCS_BUCKET_PATH="$work/lake" NATS_URL="" RUST_LOG=info \
    "$BIN" run --workflows "$work/wf" --resources resources --state "$work/state" --credentials-root "$work/creds" \
    >/dev/null 2>"$log" &
  pid=$!
  pids+=("$pid")
  wait_for 120 "the first resumed run's job" grep -q 'created Bulk API query job' "$log"
  kill -TERM "$pid"; wait "$pid" || true
  starting+=("$(since_start "$log" "$start" ' starting')")
  resumed+=("$(since_start "$log" "$start" 'resuming a run interrupted')")
  progress+=("$(since_start "$log" "$start" 'created Bulk API query job')")
done

stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%8.3f %8.3f", a[1], a[int((NR + 1) / 2)] }'; }
echo
echo "bulkflow bench restart: $FINISHED written runs + $UNFINISHED at scheduled ($store_mb MB of store), $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD)"
printf '%-40s %8s %8s\n' "from process start to" best_s median_s
printf '%-40s %s\n' "the engine starting (store open)" "$(stats "${starting[@]}")"
printf '%-40s %s\n' "the first interrupted run resumed" "$(stats "${resumed[@]}")"
printf '%-40s %s\n' "its Bulk job created (target < 1 s)" "$(stats "${progress[@]}")"
