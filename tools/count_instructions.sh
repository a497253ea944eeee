#!/bin/bash
# count_instructions.sh — instructions a paid call costs each thread of a
# live yongjind, counted by valgrind's callgrind (docs/performance.md,
# "thirtieth session": on this VM an instruction count repeats within
# 1-2% where a timed run varies by 5%, so a change of a few percent shows).
#
#   usage: tools/count_instructions.sh [BINDIR]   (default: bin)
#   environment: MEMBERS (5000), STREAMS (64 a connection, at most 100:
#   the server's stream limit), CONNECTIONS (1), SECONDS_RUN (6), KEEP (a
#   directory to copy the callgrind files into, for callgrind_annotate)
#
# It starts BINDIR/yongjind under callgrind on a fresh store in a temporary
# directory, binds MEMBERS members with yj-bench, counts only while a paid
# load of STREAMS streams runs for SECONDS_RUN seconds, then prints each
# thread's instructions and instructions per call answered (calls that
# answered OK: it stops if any failed, or if none did).
#
# What it is not: a benchmark. Under valgrind OpenSSL's SHA-256 runs its
# generic code (no SHA-NI: about a quarter of the writer's count), the
# server is ~50 times slower (a group holds fewer orders than in a real
# run at the same streams: at 64 streams ~23, `make bench` 31; a
# checkpoint's cost, syncer_main, is spread over as many fewer calls), and
# no time is measured. Needs Debian's valgrind (apt-get install valgrind).
set -euo pipefail
BIN=${1:-bin}
# BINDIR and KEEP as the caller named them, before the cd to the repository
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
if [ -n "${KEEP:-}" ]; then case "$KEEP" in /*) ;; *) KEEP="$PWD/$KEEP" ;; esac; fi
cd "$(dirname "$0")/.."
[ "${1:-}" ] || BIN="$PWD/bin"
MEMBERS=${MEMBERS:-5000}
STREAMS=${STREAMS:-64}
CONNECTIONS=${CONNECTIONS:-1}
SECONDS_RUN=${SECONDS_RUN:-6}
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "count_instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
[ -x "$BIN/yongjind" ] && [ -x "$BIN/yj-bench" ] || { echo "count_instructions.sh: no $BIN/yongjind or $BIN/yj-bench (make all)" >&2; exit 2; }
[ "$STREAMS" -ge 1 ] && [ "$STREAMS" -le 100 ] || { echo "count_instructions.sh: STREAMS must be 1..100 (more: CONNECTIONS)" >&2; exit 2; }
dir=$(mktemp -d) # (a fresh directory under $TMPDIR or /tmp)
pid=
cleanup() {
    local rc=$?
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    if [ "$rc" -ne 0 ] && [ -s "$dir/log" ]; then
        echo "count_instructions.sh: failed; the server's log:" >&2
        tail -20 "$dir/log" >&2
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
port=
for _ in $(seq 1 50); do # a port nothing answers on, so that the readiness probe reaches our server
    p=$((56000 + RANDOM % 1000))
    if ! (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "count_instructions.sh: no free port in 56000..56999" >&2; exit 1; }
valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
    "$BIN/yongjind" --listen 127.0.0.1:$port --data "$dir/data" --log-level warn 2>"$dir/log" &
pid=$!
up=
for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { echo "count_instructions.sh: yongjind did not start" >&2; exit 1; }
    if (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; then up=1; break; fi
    sleep 0.2
done
[ -n "$up" ] || { echo "count_instructions.sh: yongjind did not answer on port $port within 60 s" >&2; exit 1; }
"$BIN/yj-bench" --target 127.0.0.1:$port --mode bind --members "$MEMBERS" >/dev/null
callgrind_control -i on "$pid" >/dev/null 2>"$dir/ctl" || { cat "$dir/ctl" >&2; exit 1; }
"$BIN/yj-bench" --target 127.0.0.1:$port --mode paid --streams "$STREAMS" --connections "$CONNECTIONS" \
    --duration "$SECONDS_RUN" --warmup 0 --members "$MEMBERS" >"$dir/out"
callgrind_control -i off "$pid" >/dev/null 2>"$dir/ctl" || { cat "$dir/ctl" >&2; exit 1; }
calls=$(awk '/^calls_total/ {print $2}' "$dir/out")
errors=$(awk '/^calls\/s/ {print $6}' "$dir/out")
[ -n "$calls" ] && [ "$calls" -gt 0 ] || { echo "count_instructions.sh: no call answered" >&2; cat "$dir/out" >&2; exit 1; }
[ "${errors:-0}" = 0 ] || { echo "count_instructions.sh: $errors calls failed" >&2; cat "$dir/out" >&2; exit 1; }
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
pid=
echo "paid at $CONNECTIONS x $STREAMS streams, $MEMBERS members, ${SECONDS_RUN} s under callgrind: $calls calls"
for f in "$dir"/cg.out-*; do
    total=$(callgrind_annotate "$f" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    case "$total" in "" | *[!0-9]*) continue ;; esac
    [ "$total" -gt 0 ] || continue
    top=$(callgrind_annotate --inclusive=yes "$f" |
        grep -oE '(writer_main|syncer_main|logger_main|zeroer_main|pages_main|job_thread|event_base_loop)' | head -1 || true)
    echo "  ${top:-thread $(basename "$f")}: $total instructions, $((total / calls)) a call"
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$f" "$KEEP/"; fi
done
