#!/usr/bin/env bash
# Runs the benchmark scenarios of BENCHMARKS.md against release builds of confab and
# confab-ceiling, each started fresh on a loopback port with a temporary data directory,
# and writes each scenario's JSON report to bench/results/<scenario>-<server>.json (and its
# table to the terminal). It builds into $CARGO_TARGET_DIR if set.
#
#   bench/run.sh                 every scenario
#   bench/run.sh fanout idle     only these (fanout, room, idle, writes, history)
#
# Everything talks to 127.0.0.1 only, and every run is bounded by confab-bench --max-secs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin confab --bin confab-ceiling --bin confab-bench
bin=${CARGO_TARGET_DIR:-target}/release
results=bench/results
mkdir -p "$results"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(fanout room idle writes history)

server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# start_server confab|ceiling: starts it on a free port; sets server_pid and url.
start_server() {
  cleanup
  local port data
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [ "$1" = confab ]; then
    data=$(mktemp -d)
    "$bin/confab" --addr "127.0.0.1:$port" --data-dir "$data" --log warn &
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
  local flags=(--url "$url" --server-pid "$server_pid" --max-secs 1200)
  [ "$server" = ceiling ] && flags+=(--ceiling)
  echo "== $name on $server"
  "$bin/confab-bench" "${flags[@]}" --save "$results/$name-$server.json" "$@"
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
      start_server confab
      bench writes confab writes --writers 64 --rooms 64 --window 16 --secs 15 ;;
    history)
      start_server confab
      bench history confab history --messages 1000000 --requests 2000 --page 100 ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
done
