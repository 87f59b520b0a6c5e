#!/usr/bin/env bash
# scripts/bench.sh pipeline [N]: the engine doing its real job, measured from the outside.
#
# One `bulkflow sim serve --records Account=N` (default job latency, 1 s), nats-server and a private
# PostgreSQL, then one after the other:
#   export        `bulkflow export` of the query flow's SOQL (the same window) to Parquet, cast to
#                 the Account schema: the download's own cost, the baseline;
#   parquet/*     the seed's query and listener flows and its Account writer without the BigQuery
#                 branch, from a fresh state to `written`, on the embedded bus and on nats-server;
#   postgres/*    the same with the PostgreSQL writer variant (Parquet and an upsert by Id);
#   bare COPY     the same rows as CSV through one `COPY` into a staging table and one
#                 `INSERT ... ON CONFLICT ("Id") DO UPDATE` into an empty copy of the table, in one
#                 psql session: what the warehouse itself needs.
# For each engine run: wall time from process start to the run's `written` (its log line, then
# checked with `bulkflow runs list --json`), rows/s, the engine's CPU time and peak RSS, and the
# time its ledger commits took (from /metrics). The rows in the lake are counted after each run.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"

python3 -c 'import pyarrow' 2>/dev/null || python3 -m pip install -q pyarrow
# shellcheck source=scripts/bench/common.sh
source scripts/bench/common.sh

start_sim --records "Account=$N"
start_postgres

# The query flow's own window on a fresh state: everything modified in the last day.
since="$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)"
SOQL="SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate FROM Account WHERE LastModifiedDate >= $since ORDER BY LastModifiedDate ASC"
CREDS="$work/creds/etc/sfdc/credentials.json"
SCHEMA=resources/salesforce/schema_account.json

lake_rows() { python3 -c 'import sys, pyarrow.dataset as ds; print(ds.dataset(sys.argv[1], format="parquet", partitioning="hive").count_rows())' "$1"; }

results=()

start="$(now)"
/usr/bin/time -f "%e %U %S %M" -o "$work/export.time" \
  "$BIN" export --credentials "$CREDS" --query "$SOQL" --schema "$SCHEMA" --out "$work/export" >/dev/null 2>"$work/export.log" \
  || { echo "bulkflow export failed: $(tail -5 "$work/export.log")" >&2; exit 1; }
read -r export_wall user sys rss <"$work/export.time"
rows="$(lake_rows "$work/export")"
[ "$rows" = "$N" ] || { echo "bulkflow export wrote $rows rows, not $N" >&2; exit 1; }
results+=("export $export_wall $(echo "$user + $sys" | bc) $((rss / 1024)) - - $rows")

# name, bus ("embedded" or "nats": a fresh nats-server, so no earlier run's batches are in its
# stream), writer flow, warehouse URL
engine_run() {
  local name="$1" bus="$2" writer="$3" warehouse="$4"
  local nats=""
  if [ "$bus" = nats ]; then start_nats; nats="$NATS_URL_BENCH"; fi
  local dir="$work/${name//\//-}"
  mkdir -p "$dir/wf"
  cp workflows/seed/salesforce_bulkapi_query_account.yaml workflows/seed/salesforce_bulkapi_job_listener.yaml "$dir/wf/"
  # The seed's writer without its BigQuery branch (its last task).
  sed '/- gcp_bigquery_storage_write:/,$d' "$writer" >"$dir/wf/$(basename "$writer")"
  local mport; mport="$(free_port)"
  local start; start="$(now)"
  GCS_BUCKET_PATH="$dir/lake" NATS_URL="$nats" WAREHOUSE_URL="$warehouse" RUST_LOG=info \
    "$BIN" run --workflows "$dir/wf" --resources resources --state "$dir/state" \
    --credentials-root "$work/creds" --metrics-listen "127.0.0.1:$mport" >/dev/null 2>"$dir/log" &
  local pid=$!
  pids+=("$pid")
  written() {
    grep -q 'run written' "$dir/log" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name: the engine exited: $(tail -5 "$dir/log")" >&2; exit 1; }
    return 1
  }
  wait_for 600 "$name to reach written" written
  local wall; wall="$(elapsed "$start")"
  local cpu rss; cpu="$(proc_cpu "$pid")"; rss="$(proc_peak_mb "$pid")"
  local metrics; metrics="$(curl -s "http://127.0.0.1:$mport/metrics")"
  local ledger commits
  ledger="$(awk '/^bulkflow_ledger_commit_seconds_total/ { printf "%.2f", $2 }' <<<"$metrics")"
  commits="$(awk '/^bulkflow_ledger_commits_total/ { print $2 }' <<<"$metrics")"
  local states; states="$("$BIN" runs list --state "$dir/state" --json | python3 -c 'import json, sys; print(",".join(r["state"] for r in json.load(sys.stdin)))')"
  [ "$states" = written ] || { echo "$name: runs list says $states" >&2; exit 1; }
  kill -TERM "$pid"; wait "$pid" || true
  local rows; rows="$(lake_rows "$dir/lake")"
  [ "$rows" = "$N" ] || { echo "$name: the lake holds $rows rows, not $N" >&2; exit 1; }
  results+=("$name $wall $cpu $rss $ledger $commits $rows")
  echo "$name: written in $wall s" >&2
}

pg_url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"; }
for db in pg_embedded pg_nats; do "${PSQL[@]}" -c "CREATE DATABASE $db"; done

engine_run parquet/embedded embedded workflows/seed/salesforce_bulkapi_writer_account.yaml ""
engine_run parquet/nats nats workflows/seed/salesforce_bulkapi_writer_account.yaml ""
engine_run postgres/embedded embedded workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml "$(pg_url pg_embedded)"
engine_run postgres/nats nats workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml "$(pg_url pg_nats)"

for db in pg_embedded pg_nats; do
  n="$("${PSQL[@]}" -d "$db" -c 'SELECT count(*) FROM salesforce.account')"
  [ "$n" = "$N" ] || { echo "$db: salesforce.account holds $n rows, not $N" >&2; exit 1; }
done

# The warehouse's own bound: the same rows as CSV, one COPY + one upsert into an empty table
# shaped like the one the writer made.
"$BIN" export --credentials "$CREDS" --query "$SOQL" --format csv --out "$work/csv" >/dev/null 2>"$work/csv.log"
cols='"Id","Name","Type","Industry","AnnualRevenue","CreatedDate","LastModifiedDate"'
{
  echo 'CREATE SCHEMA bare; CREATE TABLE bare.account (LIKE salesforce.account INCLUDING ALL);'
  echo 'BEGIN; CREATE TEMP TABLE staging (LIKE bare.account) ON COMMIT DROP;'
  for f in "$work"/csv/*.csv; do echo "\\copy staging ($cols) FROM '$f' WITH (FORMAT csv, HEADER true)"; done
  sets="$(tr ',' '\n' <<<"$cols" | sed 's/.*/&=EXCLUDED.&/' | paste -sd,)"
  echo "INSERT INTO bare.account SELECT * FROM staging ON CONFLICT (\"Id\") DO UPDATE SET $sets;"
  echo 'COMMIT;'
} >"$work/bare.sql"
start="$(now)"
"${PSQL[@]}" -d pg_embedded -f "$work/bare.sql"
bare_wall="$(elapsed "$start")"
n="$("${PSQL[@]}" -d pg_embedded -c 'SELECT count(*) FROM bare.account')"
[ "$n" = "$N" ] || { echo "bare COPY: bare.account holds $n rows, not $N" >&2; exit 1; }
results+=("bare_COPY+upsert $bare_wall - - - - $n")

echo
echo "bulkflow bench pipeline: $N Account rows, $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD), $(nats-server --version)"
printf '%-18s %8s %9s %8s %8s %10s %8s %8s %10s\n' what wall_s rows/s cpu_s rss_MB ledger_s commits ledger% rows
for r in "${results[@]}"; do
  read -r name wall cpu rss ledger commits rows <<<"$r"
  rps=$(echo "$N / $wall" | bc)
  pct=$([ "$ledger" != - ] && echo "scale=1; 100 * $ledger / $wall" | bc || echo -)
  printf '%-18s %8s %9s %8s %8s %10s %8s %8s %10s\n' "$name" "$wall" "$rps" "$cpu" "$rss" "$ledger" "$commits" "$pct" "$rows"
done
wall_of() { for r in "${results[@]}"; do read -r n w _ <<<"$r"; [ "$n" = "$1" ] && echo "$w"; done; }
ratio() { echo "scale=2; $(wall_of "$1") / $2" | bc; }
echo "(engine figures from its start to \`written\`; export's CPU and RSS are the whole process)"
echo "parquet/embedded / export:       $(ratio parquet/embedded "$export_wall")x   (target <= 1.5x)"
echo "parquet/nats / export:           $(ratio parquet/nats "$export_wall")x"
echo "postgres/embedded / bare COPY:   $(ratio postgres/embedded "$bare_wall")x   (target <= 1.5x)"
echo "postgres/nats / bare COPY:       $(ratio postgres/nats "$bare_wall")x"
