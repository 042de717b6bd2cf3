#!/usr/bin/env bash
# Regenerates config-snapshots/demo.json the way every snapshot is made: a scratch database,
# the demo seeded through the admin REST API, and the `file` sink publishing into
# config-snapshots/. The per-version copies the sink also writes are dropped afterwards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
base=$(scripts/postgres.sh)
db="cleave_demo_$$"
psql -q "$base" -c "create database $db" >/dev/null
url="${base%/*}/$db"
cargo build -q -p cleave-admin
export CLEAVE_ADMIN_API_TOKEN="regen-$$"
port=${CLEAVE_REGEN_PORT:-3011}
./target/debug/cleave-admin --database-url "$url" --sink file --sink-dir config-snapshots serve --port "$port" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; psql -q "$base" -c "drop database if exists $db" >/dev/null; rm -rf config-snapshots/demo' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/environments" && break; sleep 0.2; done
node scripts/seed-demo.mjs "http://127.0.0.1:$port"
./target/debug/cleave-admin validate config-snapshots/demo.json
