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
  stop_server
  rm -rf "$dir/data"
  local ts=(); [ -n "$1" ] && ts=(taskset -c "$1")
  "${ts[@]}" bin/yongjind --listen 127.0.0.1:$port --data "$dir/data" --log-level info 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do bin/yj-bench --target 127.0.0.1:$port --mode read --duration 0.01 --warmup 0 >/dev/null 2>&1 && break; sleep 0.05; done
  bin/yj-bench --target 127.0.0.1:$port --mode bind --members "$members" >/dev/null
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }  # utime + stime of the server

stop_server() {  # stops the server; prints its writer's figures from its closing log line
  [ -n "$pid" ] || return 0
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  local l; l=$(grep -h "store: .* commits" "$dir/log" | tail -n 1) || return 0
  sed -n 's/.*store: \([0-9]*\) commits, \([0-9]*\) entries written (\([0-9.]*\) per commit).*checkpoints; commit p50 \([0-9]*\) us p99 \([0-9]*\) us/\1 \2 \3 \4 \5/p' <<<"$l" |
    while read -r commits entries per p50 p99; do
      printf '  its writer: %s commits, %s entries per commit, commit (apply + log sync + commit) p50 %.2f ms p99 %.2f ms\n' \
        "$commits" "$per" "$(bc -l <<<"$p50/1000")" "$(bc -l <<<"$p99/1000")"
    done
}

run() {  # $1 = label, $2 = client cpu list, then yj-bench options
  local label=$1 cpus=$2; shift 2
  local ts=(); [ -n "$cpus" ] && ts=(taskset -c "$cpus")
  local c0 c1 out; c0=$(cpu_ticks)
  out=$("${ts[@]}" bin/yj-bench --target 127.0.0.1:$port --members "$members" "$@")
  c1=$(cpu_ticks)
  local cps eps p50 p99 p999 max calls
  cps=$(sed -n 's/^calls\/s \([0-9]*\).*/\1/p' <<<"$out"); eps=$(sed -n 's/.*events\/s \([0-9]*\).*/\1/p' <<<"$out")
  read -r p50 p99 p999 max < <(sed -n 's/^latency_us p50 \([0-9]*\) p99 \([0-9]*\) p99.9 \([0-9]*\) max \([0-9]*\)/\1 \2 \3 \4/p' <<<"$out")
  # calls per second of server CPU (user + system), warm-up included in both
  calls=$(sed -n 's/^calls_total \([0-9]*\).*/\1/p' <<<"$out")
  local per_cpu; per_cpu=$(bc -l <<<"$calls / (($c1 - $c0) / $(getconf CLK_TCK) + 0.000001)")
  printf '%-34s %9s %9s %9.2f %9.2f %9.2f %9.2f %10.0f\n' "$label" "$cps" "$eps" "$(bc -l <<<"$p50/1000")" \
    "$(bc -l <<<"$p99/1000")" "$(bc -l <<<"$p999/1000")" "$(bc -l <<<"$max/1000")" "$per_cpu"
  last_cps=$cps
  local errs; errs=$(sed -n 's/.*errors \([0-9]*\).*/\1/p' <<<"$out")
  if [ "${errs:-0}" != 0 ]; then  # not counted above: failed calls, or Appends with a refused event
    echo "  $errs calls failed or carried a refused event; $(grep '^refused' <<<"$out" || echo 'no refused events')"
  fi
}

printf '%-34s %9s %9s %9s %9s %9s %9s %10s\n' "run (2 vCPUs)" "calls/s" "events/s" "p50 ms" "p99 ms" "p99.9 ms" "max ms" "calls/cpu-s"
start ""
run "yongjin paid, $clients streams, unpinned" "" --mode paid --streams "$clients" --duration "$secs"
paid=$last_cps
stop_server
start 0
run "yongjin paid, server cpu0 client cpu1" 1 --mode paid --streams "$clients" --duration "$secs"
stop_server
start 0
run "yongjin paid, both on cpu0" 0 --mode paid --streams "$clients" --duration "$secs"
stop_server
start ""
run "yongjin read (GetBalance)" "" --mode read --streams "$clients" --duration 10
run "yongjin mixed" "" --mode mixed --streams "$clients" --duration 10
run "yongjin batch of 1000 events" "" --mode batch --batch 1000 --streams 4 --duration 10
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
store=$(stat -c %s "$dir/data/data.mdb")
stop_server
entries=$(sed -n 's/.*store: [0-9]* commits, \([0-9]*\) entries written.*/\1/p' "$dir/log" | tail -n 1)
printf 'yongjin peak RSS (VmHWM): %d MiB; store: %d MiB, %d bytes per journal entry (state and indexes included; %d entries)\n' \
  $((rss / 1024)) $((store / 1048576)) $((store / entries)) "$entries"
peer_line=$(bash "$peer" "$clients" "$secs" "$members")
echo "$peer_line"
peer_tps=$(sed -n 's/^pg-peer: TPS \([0-9.]*\).*/\1/p' <<<"$peer_line")
printf 'ratio paid yongjin/peer: %.1f\n' "$(bc -l <<<"$paid/$peer_tps")"
