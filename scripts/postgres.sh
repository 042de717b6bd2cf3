#!/usr/bin/env bash
# Prints a DATABASE_URL for cleave to use. With DATABASE_URL already set, prints it unchanged.
# Otherwise makes sure a throwaway local cluster is running (installing Debian's postgresql
# packages when the server binaries are missing) under .cleave/postgres, listening only on a
# unix socket and 127.0.0.1:${CLEAVE_PG_PORT:-54329}, and prints its URL (as root, under
# /var/tmp/cleave-postgres when the postgres user cannot enter the checkout).
#   scripts/postgres.sh          start (if needed) and print the URL
#   scripts/postgres.sh stop     stop the throwaway cluster
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/.cleave/postgres"
port=${CLEAVE_PG_PORT:-54329}
say() { printf '[postgres] %s\n' "$*" >&2; }

if [ "${1:-}" != "stop" ] && [ -n "${DATABASE_URL:-}" ]; then
  echo "$DATABASE_URL"
  exit 0
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  say "installing Debian's postgresql packages"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# initdb and postgres refuse to run as root; run them as the owner of the data directory.
as_owner() {
  # From /: the postgres user may not be allowed into the current directory.
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# As root the cluster runs as `postgres`, which cannot enter a checkout inside a private
# directory (a `mktemp -d` clone is 0700): keep the cluster under /var/tmp then, one per checkout.
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$root" 2>/dev/null; then
  data="/var/tmp/cleave-postgres/$(printf %s "$root" | cksum | cut -d' ' -f1)"
fi

if [ "${1:-}" = "stop" ]; then
  [ -f "$data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$data" -m fast stop >&2
  exit 0
fi

if [ ! -f "$data/PG_VERSION" ]; then
  say "creating a throwaway cluster in $data"
  mkdir -p "$data"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$data"
  as_owner "$bindir/initdb" -D "$data" -U cleave --auth=trust -E UTF8 >/dev/null
fi
if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  say "starting it on 127.0.0.1:$port"
  as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $data -c fsync=off -c max_connections=200" start >/dev/null
fi
echo "postgres://cleave@127.0.0.1:$port/postgres"
