#!/usr/bin/env bash
# CPU time the server spends per request under load, user and kernel (system) time apart:
#
#   bench/cpu.sh BIN PATH [DURATION] [STORE]     e.g. bench/cpu.sh target/release/aiida-rest /api/v4/server 3s
#
# wrk (2 threads, 8 connections) sends GET PATH for DURATION; the server's utime and stime
# (/proc/PID/stat) before and after, divided by the requests answered. Unlike requests per
# second this hardly moves with the machine's other load, and unlike callgrind's instruction
# counts it sees what instructions do not show: system calls, thread switches, cache misses.
# Env: SERVE_EXTRA (more `serve` options).
set -euo pipefail
BIN=$1; P=$2; DUR=${3:-3s}; STORE=${4:-$(dirname "$0")/../tests/fixtures/ref-profile}
PORT=$((30000 + RANDOM % 20000))
# shellcheck disable=SC2086
"$BIN" serve "$STORE" --port "$PORT" ${SERVE_EXTRA:-} >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/v4/server" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$PORT$P"
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
n=$(wrk -t2 -c8 -d"$DUR" "http://127.0.0.1:$PORT$P" | awk '/requests in/ {print $1}')
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
python3 - "$n" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)" "$(basename "$BIN")" "$P" <<'PY'
import sys
n, u0, s0, u1, s1, tck = (int(x) for x in sys.argv[1:7])
us = lambda ticks: ticks / tck * 1e6 / n
print(f"{sys.argv[7]} {sys.argv[8]}: {n} requests, {us(u1 - u0 + s1 - s0):.1f} us CPU/request "
      f"(user {us(u1 - u0):.1f}, system {us(s1 - s0):.1f})")
PY
