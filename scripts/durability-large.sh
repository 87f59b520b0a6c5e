#!/usr/bin/env bash
# The SIGKILL matrix on a large org (not in CI): every fault point on the embedded bus and on
# nats-server, the seeded random kills and the demo, with N Account records (default 200,000) in
# five results pages. Needs what scripts/test.sh installs. Prints each test's outcome and the
# totals; DURABILITY.md records a run.
#
#   scripts/durability-large.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulkflow-target}"
records="${1:-200000}"
log="${TMPDIR:-/tmp}/bulkflow-durability-large.log"

cargo test -p bulkflow --locked --features failpoints --test durability_kill --no-run
started=$(date +%s)
status=0
BULKFLOW_MATRIX_RECORDS="$records" cargo test -p bulkflow --locked --features failpoints --test durability_kill \
  -- --test-threads 1 >"$log" 2>&1 || status=$?
ended=$(date +%s)
grep -E '^test |^test result' "$log" || true
passed=$(grep -c '^test .* ok$' "$log" || true)
echo "records=$records tests_passed=$passed seconds=$((ended - started)) exit=$status log=$log"
exit "$status"
