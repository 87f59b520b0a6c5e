#!/usr/bin/env bash
# scripts/bench.sh demo [N...]: `bulkflow demo --records N --until-idle` in a fresh directory (the
# in-process simulator, a private PostgreSQL initialised and started, the first export of
# Account, Contact and Opportunity, N each, to Parquet, PostgreSQL and the BigQuery fake), wall time
# and the process's peak RSS, for each N (default: 100000 1000000).
#
# The demo's simulator runs inside the demo's process, so its memory is in that peak. Its share is
# measured apart: `bulkflow sim serve` with the same records, each object exported once through it
# (`bulkflow export --discard`, as the demo's query flows read them), and that process's peak RSS.
# That leaves out the BigQuery fake's copy of the rows written to it, so the engine's share is at
# most the difference.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- 100000 1000000

# shellcheck source=scripts/bench/common.sh
source scripts/bench/common.sh

rows=()
for N in "$@"; do
  dir="$work/demo$N"
  /usr/bin/time -f "%e %U %S %M" -o "$work/demo.time" \
    "$BIN" demo --records "$N" --dir "$dir" --until-idle >"$work/demo$N.out" 2>"$work/demo$N.err" \
    || { echo "bulkflow demo --records $N failed:" >&2; tail -5 "$work/demo$N.err" >&2; exit 1; }
  "$BIN" demo --dir "$dir" --stop >/dev/null 2>&1 || true
  read -r wall user sys rss <"$work/demo.time"

  start_sim --records "Account=$N,Contact=$N,Opportunity=$N"
  for object in Account Contact Opportunity; do
    "$BIN" export --credentials "$work/creds/etc/sfdc/credentials.json" --object "$object" --fields Id,Name,LastModifiedDate \
      --discard --out "$work/none" >/dev/null 2>&1
  done
  sim_rss="$(proc_peak_mb "$SIM_PID")"
  kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
  rows+=("$N $wall $(echo "$user + $sys" | bc) $((rss / 1024)) $sim_rss")
done

echo
echo "bulkflow bench demo: first export of 3 x N records, $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD)"
printf '%10s %8s %8s %12s %14s %18s\n' N wall_s cpu_s peak_rss_MB simulator_MB rest_at_most_MB
for r in "${rows[@]}"; do
  read -r n wall cpu rss sim <<<"$r"
  printf '%10s %8s %8s %12s %14s %18s\n' "$n" "$wall" "$cpu" "$rss" "$sim" "$((rss - sim))"
done
