#!/usr/bin/env bash
# scripts/bench.sh export [N]: `bulkflow export` against simple-salesforce + pyarrow on one
# simulator with N Account rows (default 1000000); see scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
FIELDS="Id,Name,Type,Industry,AnnualRevenue,CreatedDate,LastModifiedDate"
SOQL="SELECT Id, Name, Type, Industry, AnnualRevenue, CreatedDate, LastModifiedDate FROM Account"

python3 -c 'import simple_salesforce, pyarrow' 2>/dev/null || python3 -m pip install -q simple-salesforce pyarrow
# shellcheck source=scripts/bench/common.sh
source scripts/bench/common.sh
start_sim --records "Account=$N"
CREDS="$work/creds/etc/sfdc/credentials.json"
sim_cpu() { proc_cpu "$SIM_PID"; }

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
measure bulkflow_parquet "$BIN" export --credentials "$CREDS" "${fields_opt[@]}" --out "$work/bf"
measure python_parquet python3 scripts/bench/export_python.py "$CREDS" "$SOQL" "$work/py"
measure bulkflow_download "$BIN" export --credentials "$CREDS" "${fields_opt[@]}" --discard --out "$work/none"
measure python_download python3 scripts/bench/export_python.py "$CREDS" "$SOQL" "$work/pyd" --download-only

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
