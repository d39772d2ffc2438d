#!/usr/bin/env bash
# Throughput of one request against several builds in turn, for before/after comparisons:
#
#   bench/ab.sh STORE PATH ROUNDS BIN...     e.g. bench/ab.sh /tmp/big-profile /api/v4/server 4 old/aiida-rest new/aiida-rest
#
# Every build serves STORE on a port of its own, all at once; each round runs wrk (2 threads,
# 8 connections, 10 s) on PATH against each build in turn, so that the machine's load drifts
# over all of them alike. One line per run: round, build, req/s, load average. Compare the
# builds within a round; the spread between rounds of one build is the noise.
set -euo pipefail
STORE=$1; P=$2; R=$3; shift 3
declare -A port pid
trap 'for b in "${!pid[@]}"; do kill "${pid[$b]}" 2>/dev/null || true; done' EXIT
for bin in "$@"; do
    port[$bin]=$((30000 + RANDOM % 20000))
    "$bin" serve "$STORE" --port "${port[$bin]}" >/dev/null 2>&1 &
    pid[$bin]=$!
    for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:${port[$bin]}/api/v4/server" && break; sleep 0.1; done
    wrk -t2 -c8 -d2s "http://127.0.0.1:${port[$bin]}$P" >/dev/null
done
for r in $(seq "$R"); do
    for bin in "$@"; do
        rps=$(wrk -t2 -c8 -d10s "http://127.0.0.1:${port[$bin]}$P" | awk '/Requests\/sec/ {print $2}')
        echo "$r $bin $rps load $(cut -d' ' -f1 /proc/loadavg)"
    done
done
