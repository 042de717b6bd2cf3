#!/usr/bin/env bash
# Bounded fuzzing of cleave's parsers and encoders with cargo-fuzz (libFuzzer), on the pinned
# stable toolchain (`--sanitizer none`: the code under test is safe Rust, so what is hunted is
# panics and broken properties, see fuzz/src/lib.rs).
#
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
#
# New interesting inputs go to a scratch folder (the committed corpus in fuzz/corpus stays as
# it is unless CLEAVE_FUZZ_KEEP=1). A crash is copied to fuzz/regressions/<target>/, where
# `cargo test -p cleave-fuzz` replays it from then on, and the script exits 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(snapshot_decode assignments_header tokens decide_request redirect_targets pointer)

if ! cargo fuzz --version 2>/dev/null | grep -q '0.13.2'; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
  corpus=("$scratch/$target" "fuzz/corpus/$target")
  [ "${CLEAVE_FUZZ_KEEP:-0}" = 1 ] && corpus=("fuzz/corpus/$target")
  echo "== $target: ${seconds}s" >&2
  log="$scratch/$target.log"
  if cargo fuzz run --sanitizer none "$target" "${corpus[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::new_units_added|cov: ' "$log" | tail -3 >&2
  else
    failed=1
    tail -40 "$log" >&2
    mkdir -p "fuzz/regressions/$target"
    for crash in fuzz/artifacts/"$target"/*; do
      [ -f "$crash" ] && cp "$crash" "fuzz/regressions/$target/" && echo "saved $crash to fuzz/regressions/$target/" >&2
    done
  fi
done
exit $failed
