#!/usr/bin/env bash
# Runs the benchmark scenarios of BENCHMARKS.md against release builds of confab and
# confab-ceiling, each started fresh on a loopback port with a temporary data directory,
# and writes each scenario's JSON report to bench/results/<scenario>-<server>.json (and its
# table to the terminal). It builds into $CARGO_TARGET_DIR if set.
#
#   bench/run.sh                       every scenario
#   bench/run.sh fanout idle           only these (fanout, room, idle, writes, history)
#   bench/run.sh --postgres writes     Confab on PostgreSQL instead of SQLite
#
# With --postgres the script starts its own PostgreSQL cluster in a temporary directory on
# a free loopback port (Debian's postgresql package; initdb and the server run as the
# postgres user when the script runs as root), with PostgreSQL's defaults and
# synchronous_commit=on (a confirmed message is on disk), a fresh database per server
# start; its reports are named <scenario>-confab-postgres.json.
#
# Everything talks to 127.0.0.1 only, and every run is bounded by confab-bench --max-secs.
set -euo pipefail
cd "$(dirname "$0")/.."

store=sqlite
if [ "${1:-}" = --postgres ]; then
  store=postgres
  shift
fi

cargo build --release --locked --bin confab --bin confab-ceiling --bin confab-bench
bin=${CARGO_TARGET_DIR:-target}/release
results=bench/results
mkdir -p "$results"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(fanout room idle writes history)

server_pid=
pg_dir=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; }
stop_postgres() {
  if [ -n "$pg_dir" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap 'cleanup; stop_postgres' EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# as_postgres CMD...: runs CMD as the postgres user when root (initdb refuses root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres: a throwaway cluster; sets pg_bin, pg_dir and pg_port.
start_postgres() {
  pg_bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  pg_dir=$(mktemp -d)
  [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
  pg_port=$(free_port)
  as_postgres "$pg_bin/initdb" -D "$pg_dir/data" -E UTF8 --locale=C -A trust -U postgres >/dev/null
  as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c synchronous_commit=on -c max_connections=200" >/dev/null
  echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (defaults, synchronous_commit=on)"
}
[ "$store" = postgres ] && start_postgres
database=0

# start_server confab|ceiling: starts it on a free port; sets server_pid and url.
start_server() {
  cleanup
  local port data flags=()
  port=$(free_port)
  if [ "$1" = confab ]; then
    data=$(mktemp -d)
    if [ "$store" = postgres ]; then
      database=$((database + 1))
      "$(command -v psql || echo "$pg_bin/psql")" -qh 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE bench$database" postgres
      flags=(--database-url "postgres://postgres@127.0.0.1:$pg_port/bench$database")
    fi
    "$bin/confab" --addr "127.0.0.1:$port" --data-dir "$data" --log warn "${flags[@]}" &
  else
    "$bin/confab-ceiling" --addr "127.0.0.1:$port" >/dev/null &
  fi
  server_pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
  echo "server did not start" >&2
  exit 1
}

# bench NAME SERVER ARGS...: one run, its table on the terminal, its JSON in results/.
bench() {
  local name=$1 server=$2
  shift 2
  local flags=(--url "$url" --server-pid "$server_pid" --max-secs 1200) report=$server
  [ "$server" = ceiling ] && flags+=(--ceiling)
  [ "$server" = confab ] && [ "$store" = postgres ] && report=confab-postgres
  echo "== $name on $report"
  "$bin/confab-bench" "${flags[@]}" --save "$results/$name-$report.json" "$@"
}

for scenario in "${scenarios[@]}"; do
  case $scenario in
    fanout)
      # 10,000 connections in 100 rooms of 100, one sender per room.
      for server in ceiling confab; do
        start_server "$server"
        bench fanout "$server" fanout --connections 10000 --rooms 100 \
          --rates 5,10,15,20,30,40,60,80 --step-secs 10 --warmup-secs 2
      done ;;
    room)
      # One room of 5,000, one sender.
      for server in ceiling confab; do
        start_server "$server"
        bench room "$server" fanout --connections 5000 --rooms 1 \
          --rates 5,10,20,40 --step-secs 10 --warmup-secs 2 --max-p99-ms 2000
      done ;;
    idle)
      # As many idle connections as this machine's open-files limit allows.
      limit=$(ulimit -n)
      connections=$(( (limit - 200) / 1000 * 1000 ))
      for server in ceiling confab; do
        start_server "$server"
        bench idle "$server" idle --connections "$connections" --rooms 200 --hold-secs 20
      done ;;
    writes)
      # Many in flight over many rooms, many in one room, one each, one alone.
      for shape in "64 64 16" "16 1 64" "64 64 1" "1 1 1"; do
        read -r writers rooms window <<<"$shape"
        start_server confab
        bench "writes-$writers-$rooms-$window" confab writes --writers "$writers" --rooms "$rooms" \
          --window "$window" --secs 15
      done ;;
    history)
      start_server confab
      bench history confab history --messages 1000000 --requests 2000 --page 100 ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
done
