#!/usr/bin/env bash
# Start a throwaway Postgres cluster on a free local port; print its URL.
# Usage: eval "$(scripts/pg_throwaway.sh start DIR)"   -> exports STRATA_TEST_POSTGRES_URL
#        scripts/pg_throwaway.sh stop DIR
# Installs Debian's postgresql when no server binaries exist. Runs the server
# as the `postgres` user when invoked as root (initdb refuses to run as root).
set -euo pipefail
action=${1:?start|stop}
dir=${2:?data directory}

find_bin() {
  local found
  found=$(command -v initdb 2>/dev/null || true)
  [ -n "$found" ] && { dirname "$(readlink -f "$found")"; return; }
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$found" ] && echo "$found"
}

bin=$(find_bin)
if [ -z "$bin" ]; then
  echo "installing postgresql from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  bin=$(find_bin)
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U strata --auth=trust -E UTF8 >/dev/null
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U strata strata_test
    echo "export STRATA_TEST_POSTGRES_URL=postgresql+psycopg://strata@127.0.0.1:$port/strata_test"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
    ;;
esac
