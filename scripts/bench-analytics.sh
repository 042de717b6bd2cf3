#!/usr/bin/env bash
# The analytics stores side by side (loopback only; about a quarter of an hour at the default
# 10,000,000 exposures): starts Postgres and the two-shard ClickHouse cluster when they are not
# running, stores the same generated exposures and events in each through the store the ingest
# endpoint calls, times the reads of one results request, writes bench/analytics.json and
# renders BENCHMARKS.md from it and bench/results.json. Fresh databases, dropped after.
#   scripts/bench-analytics.sh [exposures]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
DATABASE_URL=$(scripts/postgres.sh)
CLEAVE_ANALYTICS_URL=$(scripts/clickhouse.sh)
export DATABASE_URL CLEAVE_ANALYTICS_URL
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
cargo build --release --locked -p cleave-admin --example analytics_bench
timeout 3600 target/release/examples/analytics_bench "${1:-10000000}" bench/analytics.json
python3 bench/report.py bench/results.json BENCHMARKS.md bench/chart.png
