#!/usr/bin/env bash
# Brings up cleave's local stack: installs what is missing, loads config-snapshots/demo.json
# into the local KV that `wrangler dev` reads, starts a demo origin on :8788 and the worker on
# :8787, and prints requests to try. Ctrl-C stops everything (or set CLEAVE_UP_SECONDS).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false
worker_port=${CLEAVE_WORKER_PORT:-8787}
origin_port=${CLEAVE_ORIGIN_PORT:-8788}

scripts/setup.sh

# Local secrets for `wrangler dev` (never used outside this machine).
if [ ! -f .dev.vars ]; then
  printf 'CLEAVE_SIGNING_KEY="demo-signing-key"\nCLEAVE_ADMIN_TOKEN="demo-admin-token"\n' > .dev.vars
fi
signing_key=$(sed -n 's/^CLEAVE_SIGNING_KEY="\(.*\)"/\1/p' .dev.vars)
admin_token=$(sed -n 's/^CLEAVE_ADMIN_TOKEN="\(.*\)"/\1/p' .dev.vars)

echo "[up] loading config-snapshots/demo.json into local KV" >&2
version=$(node -e 'console.log(JSON.parse(require("fs").readFileSync("config-snapshots/demo.json","utf8")).version)')
npx wrangler kv key put --local --binding SNAPSHOTS "snapshot:demo:v${version}" --path config-snapshots/demo.json >/dev/null
npx wrangler kv key put --local --binding SNAPSHOTS "snapshot:demo:current" "{\"version\":${version}}" >/dev/null

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

CLEAVE_SIGNING_KEY=$signing_key node scripts/demo-origin.mjs "$origin_port" &
pids+=($!)
npx wrangler dev --ip 127.0.0.1 --port "$worker_port" --show-interactive-dev-session=false \
  --var "ORIGIN_URL:http://127.0.0.1:${origin_port}" &
pids+=($!)

url="http://127.0.0.1:${worker_port}"
for _ in $(seq 1 600); do
  curl -sf -o /dev/null "$url/_cleave/health" && break
  sleep 0.5
done

cat <<TXT

cleave is up: worker $url (environment demo), origin http://127.0.0.1:${origin_port}

  # a decision
  curl -s '$url/_cleave/v1/decide?id.user=user-123&ctx.country=US'
  # the same as POST
  curl -s -X POST $url/_cleave/v1/decide -d '{"units":{"user":"user-123"},"attributes":{"country":"CA"}}'
  # a proxied request: the origin echoes the assignments it received and checks the signature
  curl -s -i --cookie 'cleave_uid=user-123' $url/products/42
  # health, and why a unit got what it got (admin token from .dev.vars)
  curl -s $url/_cleave/health
  curl -s -H 'authorization: Bearer ${admin_token}' '$url/_cleave/v1/decide?id.user=user-123&explain=1'

Ctrl-C stops the stack.
TXT

if [ -n "${CLEAVE_UP_SECONDS:-}" ]; then
  sleep "$CLEAVE_UP_SECONDS"
else
  wait
fi
