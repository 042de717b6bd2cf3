#!/usr/bin/env sh
# Builds the worker (worker/build/index.js + wasm) with pinned local tools: worker-build's own
# downloads of wasm-bindgen, esbuild and wasm-opt are replaced by the versions this repo pins
# (wasm-bindgen-cli from cargo at the Cargo.lock version, esbuild and binaryen from npm).
# Usage: scripts/build-worker.sh [--release|--dev]   (default --release)
# A release build drops the wasm names section (about 25 KB of the gzipped bundle); set
# CLEAVE_KEEP_NAMES=1 to keep it, e.g. to profile the worker with readable frames.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${1:---release}
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen || echo "$HOME/.cargo/bin/wasm-bindgen")}"
export ESBUILD_BIN="${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
cd "$root/worker"
worker-build "$profile"
if [ "$profile" = "--release" ] && [ -z "${CLEAVE_KEEP_NAMES:-}" ]; then
  # The same features worker-build enables, so nothing newer than workerd reads is emitted.
  "$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm --strip-debug --strip-producers \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
fi
