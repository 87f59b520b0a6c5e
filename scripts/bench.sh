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
  pipeline | restart | demo) shift; exec bash "scripts/bench/$what.sh" "$@" ;;
  export) ;;
  *) echo "usage: scripts/bench.sh export|pipeline|restart|demo [N]" >&2; exit 2 ;;
esac
N="${2:-1000000}"
FIELDS="Id,Name,Type,Industry,AnnualRevenue,CreatedDate,LastModifiedDate"
SOQL="SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate FROM Account"

python3 -c 'import simple_salesforce, pyarrow' 2>/dev/null || python3 -m pip install -q simple-salesforce pyarrow
cargo build --release -q -p bulkflow
BIN="$CARGO_TARGET_DIR/release/bulkflow"

work="$(mktemp -d)"
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$BIN" sim serve --records "Account=$N" --credentials-out "$work/creds.json" >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 600); do grep -q '^ready' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$work/sim.out" || { echo "the simulator did not start: $(cat "$work/sim.log")" >&2; exit 1; }

# The simulator's CPU seconds so far (utime + stime of its process).
sim_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$sim_pid/stat"; }

results=()
measure() { # name, command...
  local name="$1"; shift
  local before after
  sync; before="$(sim_cpu)"
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" || {
    echo "$name failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
  after="$(sim_cpu)"
  read -r wall user sys rss <"$work/time"
  results+=("$name $wall $user $sys $rss $(echo "$after - $before" | bc)")
}

fields_opt=(--object Account --fields "$FIELDS")
measure bulkflow_parquet "$BIN" export --credentials "$work/creds.json" "${fields_opt[@]}" --out "$work/bf"
measure python_parquet python3 scripts/bench/export_python.py "$work/creds.json" "$SOQL" "$work/py"
measure bulkflow_download "$BIN" export --credentials "$work/creds.json" "${fields_opt[@]}" --discard --out "$work/none"
measure python_download python3 scripts/bench/export_python.py "$work/creds.json" "$SOQL" "$work/pyd" --download-only

csv_bytes=$(cat "$work"/pyd/csv/*.csv | wc -c)
echo
echo "bulkflow bench export: $N Account rows (7 columns, $(echo "scale=1; $csv_bytes / 1000000" | bc) MB of CSV), $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD)"
printf '%-18s %8s %8s %8s %9s %8s %8s %6s %14s\n' pipeline wall_s cpu_s rss_MB rows/s MB/s sim_cpu_s share read_rows/s
for r in "${results[@]}"; do
  read -r name wall user sys rss simcpu <<<"$r"
  cpu=$(echo "$user + $sys" | bc)
  rps=$(echo "$N / $wall" | bc)
  mbs=$(echo "scale=1; $csv_bytes / 1000000 / $wall" | bc)
  share=$(echo "scale=0; 100 * $simcpu / ($cpu + $simcpu)" | bc)
  # bulkflow logs how long reading the results took once the job was complete.
  read_s=$(grep -o 'read_seconds="*[0-9.]*' "$work/$name.err" | tr -dc '0-9.\n' | tail -1 || true)
  read_rps=$([ -n "$read_s" ] && echo "$N / $read_s" | bc || echo -)
  printf '%-18s %8s %8s %8s %9s %8s %8s %5s%% %14s\n' "$name" "$wall" "$cpu" "$((rss / 1024))" "$rps" "$mbs" "$simcpu" "$share" "$read_rps"
done
echo "(rows/s and MB/s over the wall time, job included; read_rows/s over the reading once the job was complete)"
wall_of() { for r in "${results[@]}"; do read -r n w _ <<<"$r"; [ "$n" = "$1" ] && echo "$w"; done; }
echo "ratio, Parquet pipeline (python / bulkflow): $(echo "scale=2; $(wall_of python_parquet) / $(wall_of bulkflow_parquet)" | bc)x"
echo "ratio, download alone (python / bulkflow):  $(echo "scale=2; $(wall_of python_download) / $(wall_of bulkflow_download)" | bc)x"
