#!/usr/bin/env bash
# make bench-scaling: does the cost of a write or a read grow with the store?
# One fresh yongjind (release build, full durability); the 100k-member forest
# of make bench; then, at each size (entries in the journal), `paid` (16
# streams) and `read` (GetBalance, 16 streams) for BENCH_SECONDS each, and
# the store's size and the server's RSS. Between sizes the store is filled
# with `batch` Appends of 1000 OrderPaid (their rate is printed too).
#   env: BENCH_SECONDS (10), BENCH_SIZES ("100000 1000000 10000000")
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-10}; sizes=${BENCH_SIZES:-"100000 1000000 10000000"}; members=100000
dir=$(mktemp -d)
port=$(( 30000 + RANDOM % 20000 ))
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

bin/yongjind --listen 127.0.0.1:$port --data "$dir/data" --log-level warn 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do bin/yj-bench --target 127.0.0.1:$port --mode read --duration 0.01 --warmup 0 >/dev/null 2>&1 && break; sleep 0.05; done
bin/yj-bench --target 127.0.0.1:$port --mode bind --members "$members" >/dev/null
entries=$members  # the binds (one entry each)
seed=100

field() { sed -n "s|^$1 \([0-9]*\).*|\1|p"; }  # calls/s N
events() { sed -n 's|.*events/s \([0-9]*\).*|\1|p'; }
lat() { sed -n 's/^latency_us p50 \([0-9]*\) p99 \([0-9]*\).*/\1 \2/p'; }

printf '%-12s %10s %8s %8s %10s %8s %10s %9s %9s %9s\n' entries "paid/s" "p50 ms" "p99 ms" "read/s" "p99 ms" "fill ev/s" \
  "store MiB" "heap MiB" "file MiB"
fill_rate=-
for target in $sizes; do
  # fill up to the target with batches of 1000 (about 16-18k events/s here)
  if [ "$entries" -lt "$target" ]; then
    need=$((target - entries))
    start=$(date +%s)
    while [ "$entries" -lt "$target" ]; do
      seed=$((seed + 1))
      out=$(bin/yj-bench --target 127.0.0.1:$port --members "$members" --mode batch --batch 1000 --streams 4 \
              --duration 20 --warmup 0 --seed $seed)
      entries=$((entries + $(events <<<"$out") * 20))
    done
    fill_rate=$(( need / ( $(date +%s) - start + 1 ) ))
  fi
  seed=$((seed + 1))
  p=$(bin/yj-bench --target 127.0.0.1:$port --members "$members" --mode paid --streams 16 --duration "$secs" --seed $seed)
  seed=$((seed + 1))
  r=$(bin/yj-bench --target 127.0.0.1:$port --members "$members" --mode read --streams 16 --duration "$secs" --seed $seed)
  entries=$((entries + $(field "calls/s" <<<"$p") * (secs + 2)))
  read -r pp50 pp99 < <(lat <<<"$p"); read -r rp50 rp99 < <(lat <<<"$r")
  # heap: RssAnon (the process's own memory); file: RssFile (LMDB's pages in the page cache, shared)
  printf '%-12s %10s %8.2f %8.2f %10s %8.2f %10s %9d %9d %9d\n' "~$entries" "$(field "calls/s" <<<"$p")" \
    "$(bc -l <<<"$pp50/1000")" "$(bc -l <<<"$pp99/1000")" "$(field "calls/s" <<<"$r")" "$(bc -l <<<"$rp99/1000")" \
    "$fill_rate" $(( $(stat -c %s "$dir/data/data.mdb") / 1048576 )) \
    $(( $(awk '/RssAnon/ {print $2}' /proc/$pid/status) / 1024 )) $(( $(awk '/RssFile/ {print $2}' /proc/$pid/status) / 1024 ))
done
printf 'peak RSS (VmHWM, heap and mapped pages): %d MiB\n' $(( $(awk '/VmHWM/ {print $2}' /proc/$pid/status) / 1024 ))
