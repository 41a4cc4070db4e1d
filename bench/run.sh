#!/usr/bin/env bash
# Runs the benchmark scenarios of BENCHMARKS.md against release builds of confab and
# confab-ceiling, each started fresh on a loopback port with a temporary data directory,
# and writes each scenario's JSON report to bench/results/<scenario>-<server>.json (and its
# table to the terminal). It builds into $CARGO_TARGET_DIR if set.
#
#   bench/run.sh                       every scenario
#   bench/run.sh fanout idle           only these (fanout, room, idle, writes, resume,
#                                      storm, history, search)
#   bench/run.sh --postgres writes     Confab on PostgreSQL instead of SQLite
#   bench/run.sh --nodes 2 fanout      two Confab nodes on PostgreSQL and Redis, the
#                                      connections spread over both
#
# With --postgres the script starts its own PostgreSQL cluster in a temporary directory on
# a free loopback port (Debian's postgresql package; initdb and the server run as the
# postgres user when the script runs as root), with PostgreSQL's defaults and
# synchronous_commit=on (a confirmed message is on disk), a fresh database per server
# start; its reports are named <scenario>-confab-postgres.json.
#
# With --nodes N the script also starts its own redis-server (Debian's redis-server, no
# persistence) on a free loopback port, and runs N nodes on one fresh database, one shared
# data directory and that Redis; confab-bench spreads each room's members over the nodes,
# adds up the nodes' memory and CPU, and reports PostgreSQL's and Redis's CPU beside them.
# Its reports are named <scenario>-confab-postgres-redis-N.json (N may be 1: one node with
# its events going through Redis).
#
# search is run on Confab alone (the ceiling keeps nothing) and is not among the scenarios
# run by default (seeding a million messages takes minutes); it prints the size of the
# store (the data directory, or the PostgreSQL database) before and after seeding;
# SEARCH_MESSAGES=200000 bench/run.sh --postgres search seeds fewer than a million.
#
# Everything talks to 127.0.0.1 only, and every run is bounded by confab-bench --max-secs.
set -euo pipefail
cd "$(dirname "$0")/.."

store=sqlite
nodes=0
while [ $# -gt 0 ]; do
  case $1 in
    --postgres) store=postgres; shift ;;
    --nodes) store=postgres; nodes=$2; shift 2 ;;
    *) break ;;
  esac
done

cargo build --release --locked --bin confab --bin confab-ceiling --bin confab-bench
bin=${CARGO_TARGET_DIR:-target}/release
results=bench/results
mkdir -p "$results"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(fanout room idle writes resume storm history)

server_pids=()
pg_dir=
redis_dir=
redis_pid=
cleanup() {
  if [ ${#server_pids[@]} -gt 0 ]; then
    kill "${server_pids[@]}" 2>/dev/null || true
    wait "${server_pids[@]}" 2>/dev/null || true
  fi
  server_pids=()
}
stop_postgres() {
  if [ -n "$pg_dir" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
stop_redis() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  # An if, not `[ … ] && …`: as the exit trap's last command, a false test would make the
  # script's exit status 1 after every run without Redis.
  if [ -n "$redis_dir" ]; then rm -rf "$redis_dir"; fi
}
trap 'cleanup; stop_postgres; stop_redis' EXIT

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
# start_redis: a throwaway redis-server without persistence; sets redis_pid and redis_port.
start_redis() {
  redis_dir=$(mktemp -d)
  redis_port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$redis_dir" --save "" \
    --appendonly no --logfile "$redis_dir/log" &
  redis_pid=$!
  wait_for_port "$redis_port"
  echo "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$redis_port (no persistence)"
}

wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

[ "$store" = postgres ] && start_postgres
[ "$nodes" -gt 0 ] && start_redis
database=0
# The ceiling is one process: it runs beside Confab on one node only.
servers="ceiling confab"
[ "$nodes" -gt 0 ] && servers=confab

# start_server confab|ceiling: starts it (or, with --nodes, each node) on a free port;
# sets server_pids and urls, and for Confab data (its data directory) and database_name
# (on PostgreSQL).
start_server() {
  cleanup
  local port flags=() count=1
  urls=()
  if [ "$1" = confab ]; then
    data=$(mktemp -d)
    database_name=
    if [ "$store" = postgres ]; then
      database=$((database + 1))
      "$(command -v psql || echo "$pg_bin/psql")" -qh 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE bench$database" postgres
      database_name=bench$database
      flags=(--database-url "postgres://postgres@127.0.0.1:$pg_port/$database_name")
    fi
    if [ "$nodes" -gt 0 ]; then
      flags+=(--redis-url "redis://127.0.0.1:$redis_port")
      count=$nodes
    fi
    for _ in $(seq "$count"); do
      port=$(free_port)
      # The generator connects from a few loopback addresses only, and measures how many
      # connections a node serves, and its users send as fast as the server takes: the
      # connection and rate limits are lifted.
      "$bin/confab" --addr "127.0.0.1:$port" --data-dir "$data" --log warn "${flags[@]}" \
        --max-connections 10000000 --max-connections-per-address 10000000 \
        --limit all=off --max-sockets-per-user 0 &
      server_pids+=($!)
      urls+=("http://127.0.0.1:$port")
      # The first node migrates the new database before the others start.
      wait_for_port "$port"
    done
  else
    port=$(free_port)
    "$bin/confab-ceiling" --addr "127.0.0.1:$port" >/dev/null &
    server_pids+=($!)
    urls+=("http://127.0.0.1:$port")
    wait_for_port "$port"
  fi
}

# store_size: the size of Confab's data directory, and of its database on PostgreSQL.
store_size() {
  local size
  size="data directory $(du -sm "$data" | cut -f1) MB"
  if [ -n "$database_name" ]; then
    size+=", database $("$(command -v psql || echo "$pg_bin/psql")" -qtAh 127.0.0.1 -p "$pg_port" \
      -U postgres -c "SELECT pg_database_size('$database_name') / 1048576" postgres) MB"
  fi
  echo "$size"
}

# bench NAME SERVER ARGS...: one run, its table on the terminal, its JSON in results/.
bench() {
  local name=$1 server=$2
  shift 2
  local flags=(--max-secs "${max_secs:-1200}") report=$server url pid
  for url in "${urls[@]}"; do flags+=(--url "$url"); done
  for pid in "${server_pids[@]}"; do flags+=(--server-pid "$pid"); done
  [ "$server" = ceiling ] && flags+=(--ceiling)
  if [ "$server" = confab ] && [ "$store" = postgres ]; then
    report=confab-postgres
    flags+=(--other-pid "$(head -1 "$pg_dir/data/postmaster.pid")")
    if [ "$nodes" -gt 0 ]; then
      report=confab-postgres-redis-$nodes
      flags+=(--other-pid "$redis_pid")
    fi
  fi
  echo "== $name on $report"
  "$bin/confab-bench" "${flags[@]}" --save "$results/$name-$report.json" "$@"
}

for scenario in "${scenarios[@]}"; do
  case $scenario in
    fanout)
      # 10,000 connections in 100 rooms of 100, one sender per room.
      for server in $servers; do
        start_server "$server"
        bench fanout "$server" fanout --connections 10000 --rooms 100 \
          --rates 5,10,15,20,30,40,60,80 --step-secs 10 --warmup-secs 2
      done ;;
    room)
      # One room of 5,000, one sender.
      for server in $servers; do
        start_server "$server"
        bench room "$server" fanout --connections 5000 --rooms 1 \
          --rates 5,10,20,40 --step-secs 10 --warmup-secs 2 --max-p99-ms 2000
      done ;;
    idle)
      # As many idle connections as this machine's open-files limit allows.
      limit=$(ulimit -n)
      connections=$(( (limit - 200) / 1000 * 1000 ))
      for server in $servers; do
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
    resume)
      # A user in 200 rooms: time to ready; then a sync after 3,000 messages missed in one.
      start_server confab
      bench resume confab resume --rooms 200 --connects 200 --missed 3000 --syncs 50 ;;
    storm)
      # 10,000 connections in 100 rooms of 100; in each step 5,000 of them (50 a room, never
      # a sender) drop their sockets at once 10 s into the counted time and reconnect at
      # once, resuming with sync; the 30 s after leave room for the storm to pass. Confab
      # only (the ceiling has no sync). At most 15,000 sockets at once on the server (the
      # old ones and the new), under its 20,000 files.
      start_server confab
      bench storm confab fanout --connections 10000 --rooms 100 --storm 5000 \
        --rates 2.5,5 --step-secs 40 --storm-at 0.25 --warmup-secs 2 --drain-secs 5 \
        --max-p99-ms 60000 ;;
    history)
      start_server confab
      bench history confab history --messages 1000000 --requests 2000 --page 100 ;;
    search)
      # A million messages in 100 rooms, searched by a member of 10 of them; seeding is
      # the longest part, and on PostgreSQL it is slower.
      # SEARCH_MESSAGES=… asks for fewer.
      start_server confab
      echo "store before seeding: $(store_size)"
      max_secs=7200 bench search confab search --messages "${SEARCH_MESSAGES:-1000000}" \
        --rooms 100 --member-rooms 10 --queries 200
      echo "store after seeding: $(store_size)" ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
done
