#!/usr/bin/env bash
# Installs what building and testing cleave needs, skipping whatever is already there:
# the pinned Rust toolchain with the wasm32 target, worker-build, wasm-bindgen-cli at the exact
# wasm-bindgen version in Cargo.lock, and the npm packages in package-lock.json (wrangler,
# esbuild, binaryen's wasm-opt, playwright-core), Debian's chromium for the dashboard test, and
# Debian's clickhouse-server with PyPI's chdb-core for the analytics store tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

lock_version() { # version of crate $1 in Cargo.lock
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "installing Rust $toolchain with wasm32-unknown-unknown"
  rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy --target wasm32-unknown-unknown
fi

worker_version=$(lock_version worker)
if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$worker_version" ]; then
  say "installing worker-build $worker_version"
  cargo install --quiet --force worker-build --version "$worker_version"
fi

bindgen_version=$(lock_version wasm-bindgen)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $NF}')" != "$bindgen_version" ]; then
  say "installing wasm-bindgen-cli $bindgen_version"
  # Not --locked: its lockfile pins a webpki-roots release that no longer builds.
  cargo install --quiet --force wasm-bindgen-cli --version "$bindgen_version"
fi

if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The dashboard's end-to-end test drives Debian's Chromium through playwright-core.
if [ -z "${CLEAVE_CHROMIUM:-}" ] && ! [ -x /usr/bin/chromium ]; then
  say "installing Debian's chromium (dashboard tests)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq chromium >&2
fi

# The analytics conformance test: a two-shard ClickHouse 18.16 cluster from Debian's packages
# (scripts/clickhouse.sh starts it) and a current ClickHouse, embedded, from PyPI's chdb-core.
if ! command -v clickhouse-server >/dev/null 2>&1; then
  say "installing Debian's clickhouse-server (analytics store tests)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq clickhouse-server clickhouse-client >&2
fi
if ! python3 -c "import chdb" >/dev/null 2>&1; then
  say "installing chdb-core (a current ClickHouse engine for the analytics store tests)"
  # A Debian-managed python3 refuses plain installs (PEP 668); the machine's own takes them.
  python3 -m pip install --quiet --disable-pip-version-check chdb-core==26.9.0 >&2 \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages chdb-core==26.9.0 >&2
fi
