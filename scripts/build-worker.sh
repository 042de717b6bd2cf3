#!/usr/bin/env sh
# Builds the worker (worker/build/index.js + wasm) with pinned local tools: worker-build's own
# downloads of wasm-bindgen, esbuild and wasm-opt are replaced by the versions this repo pins
# (wasm-bindgen-cli from cargo at the Cargo.lock version, esbuild and binaryen from npm).
# Usage: scripts/build-worker.sh [--release|--dev]   (default --release)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${1:---release}
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen || echo "$HOME/.cargo/bin/wasm-bindgen")}"
export ESBUILD_BIN="${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
cd "$root/worker"
exec worker-build "$profile"
