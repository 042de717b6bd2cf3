#!/usr/bin/env bash
# Prints a CLEAVE_ANALYTICS_URL for a throwaway two-shard ClickHouse cluster on loopback, starting
# it first when it is not running (installing Debian's clickhouse-server when it is missing).
# Each shard is its own clickhouse-server under .cleave/clickhouse/shard<N>, listening only on
# 127.0.0.1 (HTTP ${CLEAVE_CH_PORT:-18101}+N-1, native TCP ${CLEAVE_CH_PORT:-18101}+100+N-1); both know the
# cluster `cleave` of the two, which the Distributed tables route inserts through.
#   scripts/clickhouse.sh         start (if needed) and print the URL
#   scripts/clickhouse.sh stop    stop both shards by their PIDs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base="$root/.cleave/clickhouse"
port=${CLEAVE_CH_PORT:-18101}
shards=2
say() { printf '[clickhouse] %s\n' "$*" >&2; }

http_port() { echo $((port + $1 - 1)); }
tcp_port() { echo $((port + 100 + $1 - 1)); }

stop_shard() {
  local pidfile="$base/shard$1/pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

if [ "${1:-}" = "stop" ]; then
  for n in $(seq 1 $shards); do stop_shard "$n"; done
  exit 0
fi

if ! command -v clickhouse-server >/dev/null 2>&1; then
  say "installing Debian's clickhouse-server"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq clickhouse-server clickhouse-client >&2
fi

write_config() {
  local n=$1 dir="$base/shard$1"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/log"
  local remote=""
  for s in $(seq 1 $shards); do
    remote+="<shard><replica><host>127.0.0.1</host><port>$(tcp_port "$s")</port></replica></shard>"
  done
  cat > "$dir/users.xml" <<XML
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
XML
  cat > "$dir/config.xml" <<XML
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$(http_port "$n")</http_port>
  <tcp_port>$(tcp_port "$n")</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <users_config>$dir/users.xml</users_config>
  <mark_cache_size>268435456</mark_cache_size>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <remote_servers><cleave>$remote</cleave></remote_servers>
</yandex>
XML
}

start_shard() {
  local n=$1 dir="$base/shard$1"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then return 0; fi
  write_config "$n"
  say "starting shard $n on 127.0.0.1:$(http_port "$n")"
  clickhouse-server --config-file="$dir/config.xml" --pid-file="$dir/pid" --daemon >&2
}

for n in $(seq 1 $shards); do start_shard "$n"; done
for n in $(seq 1 $shards); do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$(http_port "$n")/ping" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$(http_port "$n")/ping" >/dev/null || { say "shard $n did not start"; cat "$base/shard$n/log/error.log" >&2; exit 1; }
done
hosts=""
for n in $(seq 1 $shards); do hosts+="${hosts:+,}127.0.0.1:$(http_port "$n")"; done
echo "clickhouse://$hosts/cleave"
