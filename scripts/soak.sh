#!/usr/bin/env bash
# Soak test: the compiled worker in workerd under steady load on loopback for a few minutes
# while cleave-admin publishes a new signed version every few seconds and, now and then, a
# corrupt one lands in KV. Fails unless: zero 5xx, every proxied request reached the origin,
# every answer after the first publish carried assignments, and workerd's memory stayed flat.
#   scripts/soak.sh [minutes, default 3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false
scripts/setup.sh
cargo build -p cleave-admin --locked
scripts/build-worker.sh --release
DATABASE_URL=$(scripts/postgres.sh)
export DATABASE_URL
exec node tests/soak/soak.mjs "${1:-3}"
