#!/usr/bin/env bash
# make bench: yongjin against the PostgreSQL peer (../shared/bench/pg-peer),
# same machine, same run, durable commits on both sides. Prints a table and,
# last, exactly "ratio paid yongjin/peer: X.X".
#   env: BENCH_SECONDS (20), BENCH_CLIENTS (16), BENCH_MEMBERS (100000)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-20}; clients=${BENCH_CLIENTS:-16}; members=${BENCH_MEMBERS:-100000}
peer=../shared/bench/pg-peer/run.sh
dir=$(mktemp -d)  # the default template: a private directory under $TMPDIR or /tmp
port=$(( 30000 + RANDOM % 20000 ))
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

start() {  # $1 = taskset cpu list for the server ("" = unpinned)
  [ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
  rm -rf "$dir/data"
  local ts=(); [ -n "$1" ] && ts=(taskset -c "$1")
  "${ts[@]}" bin/yongjind --listen 127.0.0.1:$port --data "$dir/data" --log-level warn 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do bin/yj-bench --target 127.0.0.1:$port --mode read --duration 0.01 --warmup 0 >/dev/null 2>&1 && break; sleep 0.05; done
  bin/yj-bench --target 127.0.0.1:$port --mode bind --members "$members" >/dev/null
}

run() {  # $1 = label, $2 = client cpu list, then yj-bench options
  local label=$1 cpus=$2; shift 2
  local ts=(); [ -n "$cpus" ] && ts=(taskset -c "$cpus")
  local out; out=$("${ts[@]}" bin/yj-bench --target 127.0.0.1:$port --members "$members" "$@")
  local cps eps p50 p99 p999 max
  cps=$(sed -n 's/^calls\/s \([0-9]*\).*/\1/p' <<<"$out"); eps=$(sed -n 's/.*events\/s \([0-9]*\).*/\1/p' <<<"$out")
  read -r p50 p99 p999 max < <(sed -n 's/^latency_us p50 \([0-9]*\) p99 \([0-9]*\) p99.9 \([0-9]*\) max \([0-9]*\)/\1 \2 \3 \4/p' <<<"$out")
  printf '%-34s %9s %9s %9.2f %9.2f %9.2f %9.2f\n' "$label" "$cps" "$eps" "$(bc -l <<<"$p50/1000")" \
    "$(bc -l <<<"$p99/1000")" "$(bc -l <<<"$p999/1000")" "$(bc -l <<<"$max/1000")"
  last_cps=$cps
}

printf '%-34s %9s %9s %9s %9s %9s %9s\n' "run (2 vCPUs)" "calls/s" "events/s" "p50 ms" "p99 ms" "p99.9 ms" "max ms"
start ""
run "yongjin paid, $clients streams, unpinned" "" --mode paid --streams "$clients" --duration "$secs"
paid=$last_cps
start 0
run "yongjin paid, server cpu0 client cpu1" 1 --mode paid --streams "$clients" --duration "$secs"
start 0
run "yongjin paid, both on cpu0" 0 --mode paid --streams "$clients" --duration "$secs"
start ""
run "yongjin read (GetBalance)" "" --mode read --streams "$clients" --duration 10
run "yongjin mixed" "" --mode mixed --streams "$clients" --duration 10
run "yongjin batch of 1000 events" "" --mode batch --batch 1000 --streams 4 --duration 10
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
printf 'yongjin peak RSS (VmHWM): %d MiB; store: %d MiB\n' $((rss / 1024)) $(( $(stat -c %s "$dir/data/data.mdb") / 1048576 ))
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
grep -h "store:" "$dir/log" || true
peer_line=$(bash "$peer" "$clients" "$secs" "$members")
echo "$peer_line"
peer_tps=$(sed -n 's/^pg-peer: TPS \([0-9.]*\).*/\1/p' <<<"$peer_line")
printf 'ratio paid yongjin/peer: %.1f\n' "$(bc -l <<<"$paid/$peer_tps")"
