#!/usr/bin/env bash
# What an idle WebSocket holds in the server's heap, allocation by allocation (BENCHMARKS.md,
# "Idle connections, by heap profile"):
#
#   bench/heap.sh [CONNECTIONS]        default 10,000
#
# Builds confab on the system's allocator (mimalloc does not go through malloc, so
# heaptrack would not see it), starts it under heaptrack (Debian's heaptrack) on a free
# loopback port with a temporary data directory, has confab-bench open CONNECTIONS idle
# WebSockets and hold them, and kills the server while they are held: what heaptrack
# reports as leaked is what was live at that moment. It prints the largest live
# allocations by call stack, and keeps the whole profile in bench/results/heap.zst for
# `heaptrack --analyze`. Loopback only; bounded by confab-bench --max-secs.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-10000}
command -v heaptrack >/dev/null || { echo "heaptrack is not installed (apt-get install heaptrack)" >&2; exit 1; }

target=${CARGO_TARGET_DIR:-target}/heap
CARGO_TARGET_DIR=$target cargo build --release --locked --features system-allocator --bin confab
cargo build --release --locked --bin confab-bench
bench=${CARGO_TARGET_DIR:-target}/release/confab-bench
results=bench/results
mkdir -p "$results"
data=$(mktemp -d)
bench_pid=
cleanup() {
  [ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

heaptrack -o "$results/heap" "$target/release/confab" --addr "127.0.0.1:$port" --data-dir "$data" \
  --log warn --max-connections 10000000 --max-connections-per-address 10000000 \
  --limit all=off --max-sockets-per-user 0 > "$results/heap.log" 2>&1 &
for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
server=$(pgrep -x confab -n)
"$bench" --url "http://127.0.0.1:$port" --server-pid "$server" --max-secs 600 \
  idle --connections "$connections" --rooms 200 --hold-secs 120 > /dev/null &
bench_pid=$!
# Held once the server has them all established, and a little longer for their `ready`.
for _ in $(seq 600); do
  [ "$(ss -tnH state established "( sport = :$port )" | wc -l)" -ge "$connections" ] && break
  sleep 1
done
sleep 15
kill -9 "$server"
wait "$server" 2>/dev/null || true
# heaptrack's own process finishes writing the profile after the server is gone.
for _ in $(seq 120); do grep -q "Heaptrack finished" "$results/heap.log" && break; sleep 1; done
heaptrack_print -f "$results/heap.zst" --print-peaks 0 --print-allocators 0 \
  --print-temporary 0 --print-leaks 1 --peak-limit 10 --sub-peak-limit 30 2>/dev/null \
  | awk -v n="$connections" '
      # The total of an allocation function ("calls from") only heads its call sites
      # ("calls from:"), which are what is printed.
      /leaked over/ { if (head) print head frames; head = ""; frames = ""; k = 0 }
      /leaked over.*calls from:$/ { head = sprintf("%8.0f B per connection  %s", bytes($1) / n, $0) }
      /leaked over/ { next }
      head && /^ *at / && k < 6 && !/library\/(alloc|core|std)/ && !/tokio-[0-9.]*\/src\/(runtime|task)\// { sub(/^ *at /, ""); sub(/.*index.crates.io-[0-9a-f]*\//, ""); frames = frames "\n            " $0; k++ }
      function bytes(s) { m = 1; if (s ~ /K$/) m = 1e3; if (s ~ /M$/) m = 1e6; if (s ~ /G$/) m = 1e9; sub(/[KMGB]$/, "", s); return s * m }
      END { if (head) print head frames }' \
  | awk '/B per connection/ { keep = ($1 >= 20) } keep'
grep "total memory leaked" <(heaptrack_print -f "$results/heap.zst" --print-leaks 1 2>/dev/null) || true
