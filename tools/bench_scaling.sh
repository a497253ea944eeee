#!/usr/bin/env bash
# make bench-scaling: does a write or a read cost more as the store grows, how
# long does a large store take to start and to verify, and how much memory
# does the server keep? (issue 16's targets: write cost flat within 20% from
# 100k to 10M entries; restart at 10M <= 5 s; Verify at 10M <= 3 min;
# RssAnon at 1M members and 10M entries <= 1 GiB.)
#
# Each series: one fresh yongjind (release build, full durability: the redo
# log synced per commit, checkpoints every 2 s, the default) on a private mktemp dir;
# bind MEMBERS members (yj-bench --mode bind: member i's parent is i/3); then
# at each size (entries in the journal) `paid` (one OrderPaid per unary
# Append, 16 streams) and `read` (GetBalance, 16 streams), BENCH_SECONDS each
# after yj-bench's 2 s warm-up. Between sizes the store is filled with
# `batch` Appends of 1000 OrderPaid (4 streams). After the last size:
#   restart (clean): SIGTERM, wait for the exit (its time: "stop"), start
#     yongjind on the stopped store and time until it answers a GetBalance;
#   restart (kill -9): paid at 16 streams, kill -9 after 4 s, start again and
#     time until it answers (recovery replays the log's tail: its line quoted);
#   Verify: Finance.Verify through the server (yj call), its wall time, its
#     answer (entries, ok, replay_bytes, rss_growth_bytes) and the server's
#     RssAnon before it and at its peak during it (sampled every 0.25 s).
#
# Table columns:
#   members    the forest bound in this series (its binds are entries too)
#   entries    journal entries when paid starts (exact: the seq of a one-bind
#              Append of tenant "probe", sent just before)
#   paid/s     OrderPaid calls answered per second, 16 streams; p50/p99 ms theirs
#   paid%      paid/s against the series' first row (the target: within +-20%)
#   read/s     GetBalance per second, 16 streams; rp99 ms its p99; read% as paid%
#   fill ev/s  the batch fill's rate from the previous size to this one
#   else%      share of the 2 vCPUs busy outside yongjind and yj-bench while
#              paid and read ran (the machine is shared: other work's share)
#   store MiB  LMDB's pages in data.mdb + wal on disk (the wal is zeroed ahead of its records)
#   B/entry    store bytes per journal entry (state and indexes included)
#   anon MiB   the server's RssAnon (its own heap: layers, maps, buffers) after read
#   peak anon  the largest RssAnon sampled since the previous row (fill included)
#   file MiB   RssFile (LMDB's pages mapped, the page cache: shared, reclaimable)
#
# env: BENCH_SERIES ("MEMBERS:SIZE,SIZE,... ...", default
#        "100000:100000,1000000,10000000 1000000:10000000": the second series
#        binds 1M members, a row at its binds, then one at 10M), or
#      BENCH_MEMBERS (100000) and BENCH_SIZES ("100000 1000000 10000000") for
#        one series; BENCH_SECONDS (10); BENCH_RESTART ("1": the series, by
#        number, that end with the restarts and Verify; "" none: the second
#        series is there for the memory of 1M members at 10M entries);
#        BENCH_SETTLE (0): before each row's paid (and the read after it),
#        wait that many seconds, then until the server has used at most 2
#        clock ticks of CPU in 2 s (at most 60 s more); 0, the default,
#        measures at once, as every session did. At ~10.5M entries paid
#        answered 64% of its 100k rate at once (67% the session before)
#        and 65-85% after 15 s (three runs): a spread, not a cure
#        (docs/performance.md, thirty-third session).
#        BENCH_SERVER_ARGS: more yongjind options (e.g. --keyed-writer: the keyed ledger).
#        Progress goes to stderr, the results to stdout at the end.
# A full run took 51.5 minutes on 2 shared vCPUs (2026-12-03: two fills to
# 10M at ~9k events/s, and Verify of 10M entries 13.3 min; docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/usr/bin/python3}
secs=${BENCH_SECONDS:-10}
settle=${BENCH_SETTLE:-0}
if [ -n "${BENCH_SERIES:-}" ]; then
  series=$BENCH_SERIES
elif [ -n "${BENCH_MEMBERS:-}${BENCH_SIZES:-}" ]; then
  s=${BENCH_SIZES:-"100000 1000000 10000000"}
  series="${BENCH_MEMBERS:-100000}:${s// /,}"
else
  series="100000:100000,1000000,10000000 1000000:10000000"
fi
restart_series=${BENCH_RESTART-1}

dir=$(mktemp -d)
port=$(( 30000 + RANDOM % 20000 ))
addr=127.0.0.1:$port
pid= spid= bpid=
cleanup() {
  [ -n "$bpid" ] && kill "$bpid" 2>/dev/null
  [ -n "$spid" ] && kill "$spid" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

say() { echo "# $(date -u +%H:%M:%S) $*" >&2; }
now_us() { echo "${EPOCHREALTIME/./}"; }
field() { sed -n "s|^$1 \([0-9]*\).*|\1|p"; }  # calls/s N
events() { sed -n 's|.*events/s \([0-9]*\).*|\1|p'; }
lat() { sed -n 's/^latency_us p50 \([0-9]*\) p99 \([0-9]*\).*/\1 \2/p'; }
ms() { printf '%.2f' "$(bc -l <<<"$1/1000")"; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$pid/status; }
mib() { echo $(( $1 / 1024 )); }  # kB to MiB
cpu_busy() { local _c u n s i w q sq st _r; read -r _c u n s i w q sq st _r </proc/stat; echo $((u + n + s + q + sq + st)); }
cpu_proc() { local f; read -ra f </proc/$pid/stat; echo $((f[13] + f[14])); }
# LMDB's pages (data.mdb is allocated on disk ahead of them: docs/storage.md) and the log
lmdb_bytes() { mdb_stat -e "$data" | awk '/Number of pages used/ {u = $5} /Page size/ {p = $3} END {printf "%.0f\n", u * p}'; }
store_bytes() { echo $(( $(lmdb_bytes) + $(stat -c %s "$data/wal" 2>/dev/null || echo 0) )); }
# Waits as BENCH_SETTLE says; prints the seconds waited
settle_server() {
  local t0 i a b; t0=$(now_us)
  if [ "$settle" != 0 ]; then
    sleep "$settle"
    a=$(cpu_proc)
    for ((i = 0; i < 30; i++)); do
      sleep 2; b=$(cpu_proc)
      [ $((b - a)) -le 2 ] && break  # 2 clock ticks of CPU in 2 s: idle
      a=$b
    done
  fi
  echo $(( ($(now_us) - t0) / 1000000 ))
}
pct() { [ "$2" -gt 0 ] && echo $(( ($1 * 100 + $2 / 2) / $2 )) || echo -; }

# RssAnon of the current server, every 0.25 s: "time_us kB" lines
sample() {
  local p=$1 k v _r
  while [ -r /proc/$p/status ]; do
    while read -r k v _r; do [ "$k" = RssAnon: ] && echo "$(now_us) $v"; done </proc/$p/status 2>/dev/null || true
    sleep 0.25
  done >>"$dir/rss"
}
peak_anon() { awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b && $2 > m {m = $2} END {print int(m / 1024)}' "$dir/rss"; }

# Starts yongjind on $data; sets pid, ready_ms (the start until it answers a
# Health/Check: it listens only once its store is open and recovered) and
# read_ms (until its first GetBalance of m1 answers, once bound)
start_server() {
  local t0 i; t0=$(now_us)
  # shellcheck disable=SC2086  # BENCH_SERVER_ARGS: yongjind options, word-split
  bin/yongjind --listen "$addr" --data "$data" --log-level info ${BENCH_SERVER_ARGS:-} 2>>"$dir/log" &
  pid=$!
  for ((i = 0; ; i++)); do
    bin/yj call --addr "$addr" --timeout-ms 1000 grpc.health.v1.Health/Check '{}' >/dev/null 2>&1 && break
    if ! kill -0 "$pid" 2>/dev/null; then echo "yongjind exited while starting:" >&2; tail -20 "$dir/log" >&2; exit 1; fi
    if [ $i -gt 30000 ]; then echo "yongjind did not answer in 5 min" >&2; tail -20 "$dir/log" >&2; exit 1; fi
    sleep 0.01
  done
  ready_ms=$(( ($(now_us) - t0) / 1000 ))
  read_ms=-
  if [ "${1:-}" = bound ]; then
    bin/yj call --addr "$addr" --tenant bench --timeout-ms 60000 yongjin.v1.Query/GetBalance '{"member":"m1"}' >/dev/null
    read_ms=$(( ($(now_us) - t0) / 1000 ))
  fi
  sample "$pid" & spid=$!
}
stop_server() {  # SIGTERM; sets stop_ms
  local t0; t0=$(now_us)
  kill "$pid"; wait "$pid" || { echo "yongjind exited $? on SIGTERM:" >&2; tail -20 "$dir/log" >&2; exit 1; }
  stop_ms=$(( ($(now_us) - t0) / 1000 ))
  pid=; kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; spid=
}
head_seq() {  # appends one bind of tenant "probe"; prints its seq (the journal's head)
  local probes; probes=$(now_us)
  bin/yj call --addr "$addr" --tenant probe yongjin.v1.Ledger/Append \
    "{\"events\":[{\"request_id\":\"probe-$probes\",\"event_time_ms\":1761955200000,\"bind\":{\"member\":\"p$probes\",\"referrer\":\"proot\"}}]}" |
    sed -n 's/.*"seq":\([0-9]*\).*/\1/p' | grep . || { echo "the probe Append failed" >&2; exit 1; }
}

table=$dir/table; lines=$dir/lines
printf '%-8s %-10s %7s %6s %6s %5s %7s %6s %5s %9s %5s %9s %7s %8s %9s %8s\n' members entries "paid/s" p50 p99 "paid%" \
  "read/s" rp99 "read%" "fill ev/s" "else%" "store MiB" "B/entry" "anon MiB" "peak anon" "file MiB" >"$table"
: >"$lines"
case $settle in 0) settle_says="no wait";; *) settle_says="a wait ($settle s, then until the server is idle)";; esac
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) vCPUs; series: $series; $secs s per measurement; before each row: $settle_says" >>"$lines"
t_start=$(date +%s)
seed=100
sn=0
for s in $series; do
  sn=$((sn + 1))
  members=${s%%:*}; sizes=${s#*:}; sizes=${sizes//,/ }
  data=$dir/s$sn
  say "series $sn: $members members, sizes $sizes"
  start_server
  t_row=$(now_us)
  out=$(bin/yj-bench --target "$addr" --mode bind --members "$members")
  say "$out"
  entries=$(head_seq)
  first_paid=0 first_read=0 last_row=-1 fill_rate=-
  for target in $sizes; do
    if [ "$entries" -lt "$target" ]; then  # fill with batches of 1000
      need=$((target - entries)); t0=$(now_us)
      while [ "$entries" -lt "$target" ]; do
        seed=$((seed + 1))
        d=$(( (target - entries) / 20000 + 1 )); [ $d -gt 30 ] && d=30
        out=$(bin/yj-bench --target "$addr" --members "$members" --mode batch --batch 1000 --streams 4 \
                --duration $d --warmup 0 --prepare $((d * 40 + 8)) --seed $seed)
        if [ "$(sed -n 's/.*errors \([0-9]*\).*/\1/p' <<<"$out")" != 0 ] || grep -q '^refused' <<<"$out"; then
          echo "fill: errors or refusals:" >&2; echo "$out" >&2; tail -20 "$dir/log" >&2; exit 1
        fi
        prev=$entries; entries=$(head_seq)
        [ "$entries" -gt "$prev" ] || { echo "fill: the journal did not grow ($prev, $entries)" >&2; exit 1; }
        say "fill: $(events <<<"$out") events/s, entries $entries, RssAnon $(mib "$(status_kb RssAnon)") MiB"
      done
      fill_rate=$(( (entries - target + need) * 1000000 / ($(now_us) - t0) ))
    fi
    [ "$entries" = "$last_row" ] && continue  # a size the binds already passed
    settled=$(settle_server)
    c0=$(cpu_busy); p0=$(cpu_proc); w0=$(now_us)
    seed=$((seed + 1))
    p=$(bin/yj-bench --target "$addr" --members "$members" --mode paid --streams 16 --duration "$secs" --seed $seed)
    seed=$((seed + 1))
    r=$(bin/yj-bench --target "$addr" --members "$members" --mode read --streams 16 --duration "$secs" --seed $seed)
    c1=$(cpu_busy); p1=$(cpu_proc); w1=$(now_us)
    client=$(bc <<<"($(sed -n 's/^client_cpu_s_total \([0-9.]*\).*/\1/p' <<<"$p") + $(sed -n 's/^client_cpu_s_total \([0-9.]*\).*/\1/p' <<<"$r")) * 100 / 1")
    tck=$(getconf CLK_TCK)
    else_pct=$(( ((c1 - c0) - (p1 - p0) - client * tck / 100) * 100 * 1000000 / (tck * $(nproc) * (w1 - w0)) ))
    [ $else_pct -lt 0 ] && else_pct=0
    pc=$(field "calls/s" <<<"$p"); rc=$(field "calls/s" <<<"$r")
    for o in "$p" "$r"; do
      if [ "$(sed -n 's/.*errors \([0-9]*\).*/\1/p' <<<"$o")" != 0 ] || grep -q '^refused' <<<"$o"; then
        echo "paid/read: errors or refusals:" >&2; echo "$o" >&2; tail -20 "$dir/log" >&2; exit 1
      fi
    done
    [ "$first_paid" = 0 ] && first_paid=$pc first_read=$rc
    read -r pp50 pp99 < <(lat <<<"$p"); read -r _ rp99 < <(lat <<<"$r")
    sb=$(store_bytes); t_now=$(now_us)
    printf '%-8s %-10s %7s %6s %6s %5s %7s %6s %5s %9s %5s %9s %7s %8s %9s %8s\n' "$members" "$entries" "$pc" \
      "$(ms "$pp50")" "$(ms "$pp99")" "$(pct "$pc" "$first_paid")" "$rc" "$(ms "$rp99")" "$(pct "$rc" "$first_read")" \
      "$fill_rate" "$else_pct" $((sb / 1048576)) $((sb / entries)) "$(mib "$(status_kb RssAnon)")" \
      "$(peak_anon "$t_row" "$t_now")" "$(mib "$(status_kb RssFile)")" >>"$table"
    say "$(tail -1 "$table")"
    echo "series $sn row at $entries entries: waited $settled s before paid (BENCH_SETTLE)" >>"$lines"
    t_row=$t_now; last_row=$entries
    entries=$(head_seq)
  done
  if [[ " $restart_series " == *" $sn "* ]]; then
    # clean stop, then start on the stopped store
    sb=$(store_bytes); stop_server
    start_server bound
    echo "series $sn restart after SIGTERM at $entries entries (store $((sb / 1048576)) MiB): stop $stop_ms ms," \
      "start until it answers $ready_ms ms (its first GetBalance $read_ms ms); RssAnon then $(mib "$(status_kb RssAnon)") MiB" >>"$lines"
    say "$(tail -1 "$lines")"
    # kill -9 under paid load, then start: recovery replays the log's tail
    seed=$((seed + 1))
    # (--prepare 0: requests encoded as they go, so writes start at once; a
    # run's default of encoding them all first took longer than the 4 s)
    bin/yj-bench --target "$addr" --members "$members" --mode paid --streams 16 --duration 20 --warmup 0 \
      --prepare 0 --seed $seed >"$dir/killed-bench" 2>&1 & bpid=$!
    sleep 4
    wal=$(stat -c %s "$data/wal"); kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
    kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; spid=
    wait "$bpid" 2>/dev/null || true; bpid=
    start_server bound
    # (no line when the last checkpoint held every logged entry; a grep
    # that finds none must not end the run under set -e)
    rec=$(grep 'recovery: [0-9]* logged entries' "$dir/log" | tail -1 | sed 's/^[^ ]* [A-Z]* //') || true
    [ -n "$rec" ] || rec="no logged entry to apply again"
    entries=$(head_seq)
    echo "series $sn restart after kill -9 under paid load (log file $((wal / 1048576)) MiB): start until it answers" \
      "$ready_ms ms (its first GetBalance $read_ms ms; $rec); RssAnon then $(mib "$(status_kb RssAnon)") MiB" >>"$lines"
    say "$(tail -1 "$lines")"
    # Verify through the server
    a0=$(mib "$(status_kb RssAnon)"); t0=$(now_us)
    v=$(bin/yj call --addr "$addr" --timeout-ms 1800000 yongjin.v1.Finance/Verify '{}') || { echo "Verify failed: $v" >&2; tail -20 "$dir/log" >&2; exit 1; }
    t1=$(now_us); sleep 0.3
    read -r ok ve rb rg prob < <($PY -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d.get("ok",False), d.get("entries",0), d.get("replay_bytes",0), d.get("rss_growth_bytes",0), repr(d.get("problem","")))' <<<"$v")
    echo "series $sn Verify at $ve entries: ok $ok, $(bc <<<"scale=1; ($t1 - $t0) / 1000000") s; replay_bytes $((rb / 1048576)) MiB," \
      "rss_growth_bytes $((rg / 1048576)) MiB; server RssAnon $a0 MiB before, peak $(peak_anon "$t0" "$t1") MiB during," \
      "$(mib "$(status_kb RssAnon)") MiB after; problem $prob" >>"$lines"
    say "$(tail -1 "$lines")"
  fi
  echo "series $sn: server VmHWM $(mib "$(status_kb VmHWM)") MiB (heap and mapped pages); store $(( $(store_bytes) / 1048576 )) MiB" >>"$lines"
  stop_server
  grep 'store: [0-9]* commits' "$dir/log" | tail -1 | sed "s/^[^ ]* [A-Z]* /series $sn closing line: /" >>"$lines" || true
  rm -rf "$data"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - t_start )) s in all" >>"$lines"
cat "$table" "$lines"
