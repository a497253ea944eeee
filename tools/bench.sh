#!/usr/bin/env bash
# make bench: yongjin against the PostgreSQL peer (../shared/bench/pg-peer),
# same machine, same run, durable commits on both sides (issue 16, item 10).
#
# paid (one OrderPaid per unary Append; every order pays two levels, as the
# peer's do) is swept over yongjin's streams and the peer's clients. The
# repetitions are interleaved on fresh stores: yongjin rep 1 (every stream
# count, then the read rows, at 16 and 80 streams, and the batch row), the peer rep 1 (every client count),
# yongjin rep 2, ... Each figure is the median over the repetitions. For
# yongjin, the server's CPU (utime + stime from /proc/PID/task/*/stat, before
# and after each run) is given per call and by thread. Then GetBalance is
# measured once more while paid runs at yongjin's peak. yongjin's streams go
# at most 64 to a connection (the server allows 100), the peer's clients are
# one connection each (pgbench -c, as run.sh does it). Prints two tables,
# each side's peak, the CPU's ceiling at yongjin's peak (every vCPU busy
# with the server's and yj-bench's CPU a call), "ratio at 16: X" and, last, exactly
# "ratio paid yongjin/peer: X.X" (peak against peak).
#   env: BENCH_SECONDS (10, per run), BENCH_REPS (3), BENCH_MEMBERS (100000),
#        BENCH_WARMUP (2, yongjin runs), BENCH_STREAMS ("16 64 128 256"),
#        BENCH_PEER_CLIENTS ("16 32 64 128"), BENCH_SERVER_ARGS (more yongjind options,
#        e.g. "--keyed-writer", the keyed ledger, or "--keyed-writer --log-thread auto")
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-10}; reps=${BENCH_REPS:-3}; members=${BENCH_MEMBERS:-100000}; warm=${BENCH_WARMUP:-2}
read -r -a ystreams <<<"${BENCH_STREAMS:-16 64 128 256}"
read -r -a pclients <<<"${BENCH_PEER_CLIENTS:-16 32 64 128}"
peer=../shared/bench/pg-peer/run.sh
dir=$(mktemp -d)  # the default template: a private directory under $TMPDIR or /tmp
port=$(( 30000 + RANDOM % 20000 ))
tck=$(getconf CLK_TCK)
res=$dir/results notes=$dir/notes
: >"$res"; : >"$notes"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

# The peer's p50/p99: run.sh prints pgbench's TPS and average latency only, so
# a pgbench shim ahead on its PATH adds per-transaction logging (-l), and the
# percentiles come from those logs (every transaction of the run).
mkdir -p "$dir/shim" "$dir/pgb"
if real_pgbench=$(command -v pgbench); then
  printf '#!/bin/sh\nexec %q -l --log-prefix=%q "$@"\n' "$real_pgbench" "$dir/pgb/log" >"$dir/shim/pgbench"
  chmod +x "$dir/shim/pgbench"
fi

start() {  # a fresh server on a fresh store, the forest bound
  stop_server
  rm -rf "$dir/data"
  # shellcheck disable=SC2086  # BENCH_SERVER_ARGS: yongjind options, word-split
  bin/yongjind --listen 127.0.0.1:$port --data "$dir/data" --log-level info ${BENCH_SERVER_ARGS:-} 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do bin/yj-bench --target 127.0.0.1:$port --mode read --duration 0.01 --warmup 0 >/dev/null 2>&1 && break; sleep 0.05; done
  bin/yj-bench --target 127.0.0.1:$port --mode bind --members "$members" >/dev/null
}

# Sets wstats to "entries/commit commit-p50-us commit-p99-us log-sync-p99-us" of the paid
# phase, from the server's closing log line (the bind's 20-odd commits of
# 5000 binds taken out of the count; its commit times stay in the quantiles).
stop_server() {
  wstats="- - - -"
  [ -n "$pid" ] || return 0
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  local l; l=$(grep -h "store: .* commits" "$dir/log" | tail -n 1) || return 0
  wstats=$(sed -n 's/.*store: \([0-9]*\) commits, \([0-9]*\) entries written.*commit p50 \([0-9]*\) us p99 \([0-9]*\) us; log sync p50 [0-9]* us p99 \([0-9]*\) us.*/\1 \2 \3 \4 \5/p' <<<"$l" |
    awk -v m="$members" '{bc = int((m - 1 + 4999) / 5000); c = $1 - bc; e = $2 - (m - 1);
                          printf "%.1f %s %s %s\n", (c > 0 ? e / c : 0), $3, $4, $5}')
}

# "loop writer sync total" ticks of the server: the event loop is the main
# thread (tid = pid), the writer and the checkpoint sync thread are named;
# total is the process's (threads that exited included).
ticks() {
  local loop=0 writer=0 sync=0 t v c
  for t in /proc/$pid/task/*; do
    v=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
    [ -n "$v" ] || continue
    c=$(cat "$t/comm" 2>/dev/null) || continue
    if [ "${t##*/}" = "$pid" ]; then loop=$v
    elif [ "$c" = yj-writer ]; then writer=$v
    elif [ "$c" = yj-sync ]; then sync=$v
    fi
  done
  echo "$loop $writer $sync $(sed 's/.*) //' /proc/$pid/stat | awk '{print $12 + $13}')"
}

# The machine's busy ticks (user, nice, system, irq, softirq, steal), all CPUs.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# Runs yj-bench against the server; sets out (its output) and fig ("calls/s
# events/s p50 p99 p99.9 max" in µs, "loop writer sync other total client"
# CPU µs per call, or per event with --batch, commissions per order, and the
# share of the machine's 2 vCPUs busy outside the server and yj-bench during
# the run, in %: other engineers' work, or the kernel's writeback threads).
bench() {  # $1 = kind for notes, then yj-bench options
  local what=$1; shift
  local t0 t1 b0 b1 w0 w1; t0=$(ticks); b0=$(busy); w0=$(date +%s%N)
  out=$(bin/yj-bench --target 127.0.0.1:$port --members "$members" --warmup "$warm" "$@")
  t1=$(ticks); b1=$(busy); w1=$(date +%s%N)
  local per=1; [[ " $* " == *" --mode batch "* ]] && per=$(sed -n 's/.*--batch \([0-9]*\).*/\1/p' <<<"$*")
  local cps eps lat calls cli cpo
  cps=$(sed -n 's/^calls\/s \([0-9]*\).*/\1/p' <<<"$out"); eps=$(sed -n 's/.*events\/s \([0-9]*\).*/\1/p' <<<"$out")
  lat=$(sed -n 's/^latency_us p50 \([0-9]*\) p99 \([0-9]*\) p99.9 \([0-9]*\) max \([0-9]*\)/\1 \2 \3 \4/p' <<<"$out")
  calls=$(sed -n 's/^calls_total \([0-9]*\).*/\1/p' <<<"$out")
  cli=$(sed -n 's/^client_cpu_us_per_call \([0-9.]*\).*/\1/p' <<<"$out")
  cpo=$(sed -n 's/^commissions per paid order \([0-9.]*\).*/\1/p' <<<"$out")
  local ctot; ctot=$(sed -n 's/^client_cpu_s_total \([0-9.]*\).*/\1/p' <<<"$out")
  local else_pct; else_pct=$(awk -v a="$t0" -v b="$t1" -v b0="$b0" -v b1="$b1" -v w="$(( (w1 - w0) / 1000000 ))" -v c="$ctot" \
      -v tck="$tck" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ")
      e = ((b1 - b0) - (y[4] - x[4]) - c * tck) / (w / 1000 * tck * n) * 100; printf "%.0f", e < 0 ? 0 : e }')
  local cpu; cpu=$(awk -v a="$t0" -v b="$t1" -v n="$calls" -v per="$per" -v tck="$tck" -v cli="$cli" 'BEGIN {
      split(a, x, " "); split(b, y, " "); u = 1e6 / tck / (n * per + 1e-9)
      lo = (y[1] - x[1]) * u; wr = (y[2] - x[2]) * u; sy = (y[3] - x[3]) * u; to = (y[4] - x[4]) * u
      ot = to - lo - wr - sy; if (ot < 0) { to -= ot; ot = 0 }  # the files are read one after another: a tick apart
      printf "%.1f %.1f %.1f %.1f %.1f %.1f", lo, wr, sy, ot, to, cli / per }')
  fig="$cps $eps $lat $cpu ${cpo:--} $else_pct"
  local errs; errs=$(sed -n 's/.*errors \([0-9]*\).*/\1/p' <<<"$out")
  if [ "${errs:-0}" != 0 ]; then  # not counted above: failed calls, or Appends with a refused event
    echo "$what: $errs calls failed or carried a refused event; $(grep '^refused' <<<"$out" || echo 'no refused events')" >>"$notes"
  fi
  if grep -q 'the pool ran out' <<<"$out"; then echo "$what: $(grep '^pool' <<<"$out")" >>"$notes"; fi
}

# yongjin's N streams: at most 64 on one connection (the server allows 100
# per connection), so 128 are 2 connections of 64 and 256 are 4
shape() { local c=$(( ($1 + 63) / 64 )); echo "--connections $c --streams $(( ($1 + c - 1) / c ))"; }
ylabel() { local c=$(( ($1 + 63) / 64 )); [ "$c" = 1 ] && echo "yongjin paid, $1 streams" || echo "yongjin paid, $1 streams (${c}x$(( ($1 + c - 1) / c )))"; }

peer_run() {  # $1 = clients, $2 = rep: appends the peer's line to the results
  rm -f "$dir"/pgb/log*
  local line; line=$(PATH="$dir/shim:$PATH" bash "$peer" "$1" "$secs" "$members")
  local tps; tps=$(sed -n 's/^pg-peer: TPS \([0-9.]*\).*/\1/p' <<<"$line")
  local q="- - - -"
  if ls "$dir"/pgb/log* >/dev/null 2>&1; then  # pgbench's log: client txno latency_us script epoch us
    q=$(cat "$dir"/pgb/log* | awk '{print $3}' | sort -n | awk '{v[NR] = $1} END {
        i = int(NR * 0.5 + 0.999999); j = int(NR * 0.99 + 0.999999); k = int(NR * 0.999 + 0.999999)
        print v[i], v[j], v[k], v[NR] }')
    rm -f "$dir"/pgb/log*
  fi
  echo "peer $1 $2 $tps $tps $q - - - - - - - - - - -" >>"$res"
}

t_start=$(date +%s); load0=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
  for s in "${ystreams[@]}"; do
    start
    bench "yongjin paid, $s streams, rep $rep" --mode paid $(shape "$s") --duration "$secs"
    stop_server
    echo "paid $s $rep $fig $wstats" >>"$res"
  done
  start
  bench "yongjin read, rep $rep" --mode read --streams 16 --duration "$secs"
  echo "read 16 $rep $fig - - - -" >>"$res"
  # one connection's 80 streams: the event loop reads and answers them in
  # batches (the reads' throughput target is met here, not at 16, where
  # the one client thread waits on each answer)
  bench "yongjin read 80, rep $rep" --mode read --streams 80 --duration "$secs"
  echo "read 80 $rep $fig - - - -" >>"$res"
  bench "yongjin batch, rep $rep" --mode batch --batch 1000 --streams 4 --duration "$secs"
  echo "batch 4 $rep $fig - - - -" >>"$res"
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  # LMDB's pages (data.mdb is allocated on disk ahead of them: docs/storage.md)
  store=$(mdb_stat -e "$dir/data" | awk '/Number of pages used/ {u = $5} /Page size/ {p = $3} END {printf "%.0f\n", u * p}')
  stop_server
  entries=$(sed -n 's/.*store: [0-9]* commits, \([0-9]*\) entries written.*/\1/p' "$dir/log" | tail -n 1)
  for c in "${pclients[@]}"; do peer_run "$c" "$rep"; done
done

# median over the repetitions of field $3 of the rows "$1 $2"; "-" if none
med() {
  awk -v k="$1 $2" -v f="$3" '$1 " " $2 == k && $f != "-" {print $f}' "$res" | sort -g |
    awk '{v[NR] = $1} END {if (!NR) print "-"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
span() { awk -v k="$1 $2" -v f="$3" '$1 " " $2 == k && $f != "-" {v = $f + 0; if (!n++ || v < lo) lo = v; if (n == 1 || v > hi) hi = v}
                                     END {if (n) printf "%.0f-%.0f", lo, hi; else print "-"}' "$res"; }
ms() { [ "$1" = - ] && echo - || awk -v v="$1" 'BEGIN {printf "%.2f", v / 1000}'; }
r0() { [ "$1" = - ] && echo - || awk -v v="$1" 'BEGIN {printf "%.0f", v}'; }
r1() { [ "$1" = - ] && echo - || awk -v v="$1" 'BEGIN {printf "%.1f", v}'; }
r2() { [ "$1" = - ] && echo - || awk -v v="$1" 'BEGIN {printf "%.2f", v}'; }

row() {  # $1 = label, $2 $3 = the rows' key
  printf '%-38s %8s %13s %9s %8s %8s %9s %7s\n' "$1" "$(r0 "$(med "$2" "$3" 4)")" "$(span "$2" "$3" 4)" "$(r0 "$(med "$2" "$3" 5)")" \
    "$(ms "$(med "$2" "$3" 6)")" "$(ms "$(med "$2" "$3" 7)")" "$(ms "$(med "$2" "$3" 8)")" "$(r2 "$(med "$2" "$3" 16)")"
}
cpurow() {  # $1 = label, $2 $3 = the rows' key
  local c="" f; for f in 10 11 12 13 14 15; do c+=" $(r1 "$(med "$2" "$3" $f)")"; done
  read -r lo wr sy ot to cl <<<"$c"
  printf '%-38s %7s %7s %7s %7s %7s %7s %10s %8s %8s %8s %6s\n' "$1" "$lo" "$wr" "$sy" "$ot" "$to" "$cl" \
    "$(r1 "$(med "$2" "$3" 18)")" "$(ms "$(med "$2" "$3" 19)")" "$(ms "$(med "$2" "$3" 20)")" \
    "$(ms "$(med "$2" "$3" 21)")" "$(med "$2" "$3" 17)"
}

echo "make bench: 2 vCPUs, $members members bound (member i's parent is i/3); paid = one OrderPaid per unary Append,"
echo "two levels paid on every order on both sides; $reps interleaved repetitions of $secs s on fresh stores"
echo "(yongjin after a $warm s warm-up; the peer's pgbench counts its whole run); median per row, calls/s range over the repetitions"
printf '%-38s %8s %13s %9s %8s %8s %9s %7s\n' "run" "calls/s" "range" "events/s" "p50 ms" "p99 ms" "p99.9 ms" "comm/o"
for s in "${ystreams[@]}"; do row "$(ylabel "$s")" paid "$s"; done
for c in "${pclients[@]}"; do row "peer paid, $c clients (TPS)" peer "$c"; done
row "yongjin read (GetBalance), 16 streams" read 16
row "yongjin read (GetBalance), 80 streams" read 80
row "yongjin batch of 1000 events, 4 str." batch 4

echo
echo "yongjin server CPU per call, utime + stime by thread in µs (batch: per event), warm-up included; client = yj-bench's own"
printf '%-38s %7s %7s %7s %7s %7s %7s %10s %8s %8s %8s %6s\n' "run" "loop" "writer" "sync" "other" "total" "client" "ent/commit" "cmt p50" "cmt p99" "fsync99" "else %"
for s in "${ystreams[@]}"; do cpurow "$(ylabel "$s")" paid "$s"; done
cpurow "yongjin read (GetBalance), 16 streams" read 16
cpurow "yongjin read (GetBalance), 80 streams" read 80
cpurow "yongjin batch of 1000 events, 4 str." batch 4
echo "(loop: the event loop, the main thread; writer: yj-writer, apply in memory + log sync + publish; sync: yj-sync,"
echo " the checkpoint thread writing LMDB; other: the rest, e.g. the long-read workers; cmt: a commit's apply + log sync + publish, ms;"
echo " fsync99: the p99 of the log's fdatasync alone, ms, while checkpoints write LMDB beside it;"
echo " else: the share of the 2 vCPUs busy outside yongjind and yj-bench during the run: other work on the machine)"
printf 'yongjin peak RSS (VmHWM, after rep %d'"'"'s read and batch): %d MiB; store: %d MiB, %d bytes per journal entry (%d entries)\n' \
  "$reps" $((rss / 1024)) $((store / 1048576)) $((store / entries)) "$entries"

# yongjin's peak and the peer's: the point with the highest median calls/s
peak() {  # $1 = kind, then the points: prints "point calls/s"
  local k=$1 best="" bv=0 p v; shift
  for p in "$@"; do v=$(med "$k" "$p" 4); [ "$v" = - ] && continue
    if [ -z "$best" ] || awk -v a="$v" -v b="$bv" 'BEGIN {exit !(a > b)}'; then best=$p bv=$v; fi; done
  echo "$best $bv"
}
read -r ypk ycps <<<"$(peak paid "${ystreams[@]}")"
read -r ppk ptps <<<"$(peak peer "${pclients[@]}")"

# GetBalance while paid runs at yongjin's peak (one run): one read stream, so
# each read's latency is its own wait behind the writes, not behind other
# reads; the paid load's measured span covers the reads' one
start
bin/yj-bench --target 127.0.0.1:$port --members "$members" --mode paid $(shape "$ypk") --warmup 2 \
  --duration $((secs + 4)) >"$dir/bg" &
bg=$!
bench "yongjin read under paid load" --mode read --streams 1 --warmup 4 --duration "$secs"
wait "$bg"
stop_server
read -r rc re r50 r99 r999 _ <<<"$fig"
bo=$(cat "$dir/bg")
echo
printf 'yongjin GetBalance, 1 stream, while paid runs at %s streams (one run): %s calls/s, p50 %s ms, p99 %s ms, p99.9 %s ms\n' \
  "$ypk" "$rc" "$(ms "$r50")" "$(ms "$r99")" "$(ms "$r999")"
printf '  the paid load meanwhile: %s calls/s, p50 %s ms, p99 %s ms\n' "$(sed -n 's/^calls\/s \([0-9]*\).*/\1/p' <<<"$bo")" \
  "$(ms "$(sed -n 's/^latency_us p50 \([0-9]*\).*/\1/p' <<<"$bo")")" "$(ms "$(sed -n 's/^latency_us p50 [0-9]* p99 \([0-9]*\).*/\1/p' <<<"$bo")")"
echo "load average before the run: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - t_start )) s in all"
if [ -s "$notes" ]; then echo; echo "notes:"; sed 's/^/  /' "$notes"; fi

echo
printf 'yongjin peak: %s streams, %s calls/s, p50 %s ms, p99 %s ms\n' "$ypk" "$(r0 "$ycps")" "$(ms "$(med paid "$ypk" 6)")" "$(ms "$(med paid "$ypk" 7)")"
printf 'peer peak: %s clients, %s TPS, p50 %s ms, p99 %s ms\n' "$ppk" "$(r0 "$ptps")" "$(ms "$(med peer "$ppk" 6)")" "$(ms "$(med peer "$ppk" 7)")"
# what the CPU allows at that point: every vCPU busy with the server's and
# the client's CPU a call as measured (the issue's "measured ceiling")
yt=$(med paid "$ypk" 14); yc=$(med paid "$ypk" 15); ncpu=$(nproc)
if [ "$yt" != - ] && [ "$yc" != - ] && awk -v a="$yt" -v b="$yc" 'BEGIN {exit !(a + b > 0)}'; then
  ceil=$(awk -v n="$ncpu" -v a="$yt" -v b="$yc" 'BEGIN {printf "%.0f", n * 1e6 / (a + b)}')
  printf 'ceiling at the peak: %s vCPUs / (%s µs server + %s µs client a call) = %s calls/s, %.1fx the peer peak; the peak is %.0f%% of it\n' \
    "$ncpu" "$(r1 "$yt")" "$(r1 "$yc")" "$ceil" "$(bc -l <<<"$ceil/$ptps")" "$(bc -l <<<"100*$ycps/$ceil")"
fi
y16=$(med paid 16 4); p16=$(med peer 16 4)
if [ "$y16" != - ] && [ "$p16" != - ]; then printf 'ratio at 16: %.1f\n' "$(bc -l <<<"$y16/$p16")"; else echo "ratio at 16: - (16 is not in both sweeps)"; fi
printf 'ratio paid yongjin/peer: %.1f\n' "$(bc -l <<<"$ycps/$ptps")"
