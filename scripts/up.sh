#!/usr/bin/env bash
# Brings up cleave's whole local stack and prints requests to try:
#   Postgres (DATABASE_URL if set, else a throwaway cluster under .cleave/), migrations, the
#   admin REST API on :3001, the demo environment seeded through that API and published to the
#   local KV that `wrangler dev` reads, a demo origin on :8788 and the worker on :8787.
# Ctrl-C stops what it started (or set CLEAVE_UP_SECONDS to stop after that many seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false
admin_port=${CLEAVE_ADMIN_PORT:-3001}
worker_port=${CLEAVE_WORKER_PORT:-8787}
origin_port=${CLEAVE_ORIGIN_PORT:-8788}

scripts/setup.sh
DATABASE_URL=$(scripts/postgres.sh)
export DATABASE_URL

# Local secrets (never used outside this machine): .dev.vars for the worker, and the admin's
# API token next to it.
if [ ! -f .dev.vars ]; then
  printf 'CLEAVE_SIGNING_KEY="demo-signing-key"\nCLEAVE_ADMIN_TOKEN="demo-admin-token"\n' > .dev.vars
fi
signing_key=$(sed -n 's/^CLEAVE_SIGNING_KEY="\(.*\)"/\1/p' .dev.vars)
admin_token=$(sed -n 's/^CLEAVE_ADMIN_TOKEN="\(.*\)"/\1/p' .dev.vars)
export CLEAVE_ADMIN_API_TOKEN=${CLEAVE_ADMIN_API_TOKEN:-demo-api-token}

echo "[up] building cleave-admin" >&2
cargo build -q -p cleave-admin
admin=./target/debug/cleave-admin

# Each service runs in its own process group, so stopping it stops its children too
# (wrangler runs workerd and esbuild underneath).
pids=()
start() { setsid "$@" & pids+=($!); }
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

start "$admin" --sink wrangler-local serve --port "$admin_port"
for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$admin_port/environments" && break; sleep 0.2; done

node scripts/seed-demo.mjs "http://127.0.0.1:$admin_port"
# Re-send the version in service, so a local KV that was wiped catches up with the database.
current=$("$admin" environments list | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const e=JSON.parse(s).find(x=>x.name==="demo");console.log(e?.currentVersion??"")})')
if [ -n "$current" ]; then
  CLEAVE_ACTOR=up.sh "$admin" --sink wrangler-local rollback --env demo --to "$current" >/dev/null
fi

# The origin verifies headers with the derived header key, never the signing secret itself.
header_key=$("$admin" header-key --signing-key "$signing_key")
CLEAVE_HEADER_KEY=$header_key start node scripts/demo-origin.mjs "$origin_port"
start node node_modules/wrangler/bin/wrangler.js dev --ip 127.0.0.1 --port "$worker_port" \
  --show-interactive-dev-session=false --var "ORIGIN_URL:http://127.0.0.1:${origin_port}"

url="http://127.0.0.1:${worker_port}"
for _ in $(seq 1 600); do curl -sf -o /dev/null "$url/_cleave/health" && break; sleep 0.5; done

cat <<TXT

cleave is up:
  worker   $url   (environment demo, version $current)
  admin    http://127.0.0.1:${admin_port}   (token: $CLEAVE_ADMIN_API_TOKEN)
  dashboard http://127.0.0.1:${admin_port}/ui/   (sign in with that token)
  origin   http://127.0.0.1:${origin_port}
  postgres $DATABASE_URL

  # a decision
  curl -s '$url/_cleave/v1/decide?id.user=user-123&ctx.country=US'
  # the same as POST
  curl -s -X POST $url/_cleave/v1/decide -d '{"units":{"user":"user-123"},"attributes":{"country":"CA"}}'
  # a proxied request: the origin echoes the assignments it received and checks the signature
  curl -s -i --cookie 'cleave_uid=user-123' $url/products/42
  # health, and why a unit got what it got
  curl -s $url/_cleave/health
  curl -s -H 'authorization: Bearer ${admin_token}' '$url/_cleave/v1/decide?id.user=user-123&explain=1'
  # the control plane
  curl -s http://127.0.0.1:${admin_port}/environments

The README walks through creating and starting an experiment with curl. Ctrl-C stops the stack.
TXT

if [ -n "${CLEAVE_UP_SECONDS:-}" ]; then
  sleep "$CLEAVE_UP_SECONDS"
else
  wait
fi
