#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs and starts what the tests need (each service on
# loopback, stopped on exit), then formatting, lints and every test. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds are reused across clones when CARGO_TARGET_DIR is kept outside the work tree.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulkflow-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo is not installed (https://rustup.rs)" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
