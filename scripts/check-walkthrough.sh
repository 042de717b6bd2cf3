#!/usr/bin/env bash
# Runs the README's walkthrough block verbatim against the local stack from scripts/up.sh,
# on a fresh database, and fails if any of its commands fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
base=$(scripts/postgres.sh)
db="cleave_walkthrough_$$"
psql -q "$base" -c "create database $db" >/dev/null
log=$(mktemp)
DATABASE_URL="${base%/*}/$db" CLEAVE_ADMIN_API_TOKEN=demo-api-token CLEAVE_UP_SECONDS=900 \
  setsid scripts/up.sh >"$log" 2>&1 &
up=$!
trap 'kill -TERM -- -$up 2>/dev/null || true; wait $up 2>/dev/null || true; psql -q "$base" -c "drop database if exists $db" >/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  grep -q "cleave is up" "$log" && break
  kill -0 $up 2>/dev/null || { cat "$log" >&2; echo "scripts/up.sh exited" >&2; exit 1; }
  sleep 0.5
done
grep -q "cleave is up" "$log" || { cat "$log" >&2; echo "scripts/up.sh did not come up" >&2; exit 1; }
block=$(awk '/<!-- walkthrough -->/{on=1; next} /<!-- \/walkthrough -->/{on=0} on' README.md | sed '/^```/d')
out=$(timeout 300 bash -euo pipefail -c "$block")
echo "$out" | tail -n 20 >&2
# The run must show the 422, the 409, a decision for the US visitor (user-42 passes the 50%
# traffic gate: gate 1245 of 10000) and none for FR.
grep -q '"code":"invalid_definition"' <<<"$out"
grep -q '"code":"conflict"' <<<"$out"
grep -q '"signup-cta":{"experiment_id"' <<<"$out"
grep -q '"assignments":{}' <<<"$out"
grep -q '"environment":"web"' <<<"$out"
# The flags block: staff see the flag on by their rule, then the kill switch turns it off.
grep -q '"key":"new-nav","reason":"TARGETING_MATCH","value":true,"variant":"on"' <<<"$out"
grep -q '"key":"new-nav","reason":"DISABLED","value":false,"variant":"off"' <<<"$out"
echo "walkthrough ok" >&2
