#!/usr/bin/env sh
# Builds the worker: worker/build/index.js (worker/js/entry.mjs bundled with wasm-bindgen's
# glue) and worker/build/index_bg.wasm, with the tools this repo pins (wasm-bindgen-cli at the
# Cargo.lock version; esbuild and binaryen's wasm-opt from npm).
# Usage: scripts/build-worker.sh [--release|--dev]   (default --release)
# A release build is optimised with wasm-opt -O3 (about 5% faster snapshot decoding than -O
# for about 2% more gzipped bytes) and drops the wasm names section (about 25 KB gzipped); set
# CLEAVE_KEEP_NAMES=1 to keep it, e.g. to profile the worker with readable frames.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${1:---release}
bindgen="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen || echo "$HOME/.cargo/bin/wasm-bindgen")}"
esbuild="${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}"
wasm_opt="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
cd "$root"
case "$profile" in
  --release) cargo build -p cleave-worker --target wasm32-unknown-unknown --release --locked; out=release ;;
  --dev) cargo build -p cleave-worker --target wasm32-unknown-unknown --locked; out=debug ;;
  *) echo "usage: $0 [--release|--dev]" >&2; exit 2 ;;
esac
build=worker/build
rm -rf "$build"
mkdir -p "$build"
# The reset-state function and abort handler let the glue start a fresh instance after a trap.
"$bindgen" --target module --no-typescript --out-dir "$build/glue" --out-name index \
  --experimental-reset-state-function --force-enable-abort-handler \
  "target/wasm32-unknown-unknown/$out/cleave_worker.wasm"
# workerd imports a wasm module as a compiled module with a plain import.
sed -i 's/^import source wasmModule from/import wasmModule from/' "$build/glue/index.js"
if [ "$profile" = "--release" ]; then
  names="--strip-debug"
  [ -n "${CLEAVE_KEEP_NAMES:-}" ] && names="--debuginfo"
  # Only features workerd reads.
  "$wasm_opt" -O3 $names --strip-producers "$build/glue/index_bg.wasm" -o "$build/index_bg.wasm" \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
    --enable-simd
  rm "$build/glue/index_bg.wasm"
else
  mv "$build/glue/index_bg.wasm" "$build/index_bg.wasm"
fi
minify="--minify"
[ "$profile" = "--dev" ] && minify=""
"$esbuild" worker/js/entry.mjs --bundle --format=esm --log-level=warning \
  --external:./index_bg.wasm --external:cloudflare:* $minify --outfile="$build/index.js"
