#!/usr/bin/env bash
# cleave's benchmark: installs what it needs (wrk, matplotlib), builds the worker, the floor
# worker and the wasm harness, runs bench/run.mjs, and rewrites BENCHMARKS.md, bench/results.json
# and bench/chart.png. BENCH_ROUNDS and BENCH_SECONDS tune the HTTP rounds (default 3 x 5 s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false
scripts/setup.sh
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -qq wrk >&2 || { $sudo_cmd apt-get update -qq >&2; $sudo_cmd apt-get install -y -qq wrk >&2; }
fi
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
scripts/build-worker.sh --release
(cd bench/floor && WASM_BINDGEN_BIN="$(command -v wasm-bindgen)" ESBUILD_BIN="$root/node_modules/.bin/esbuild" \
  WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt" worker-build --release)
node bench/run.mjs
