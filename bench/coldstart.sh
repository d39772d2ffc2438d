#!/usr/bin/env bash
# The first statistics and type trees of a fresh aiida-rest process, with and without a saved
# aggregate cache.
#
#   bench/coldstart.sh STORAGE CACHE_DIR [RUNS]        default: 2 runs
#
# Starts the server on STORAGE (an archive or a profile folder) with `--cache-dir CACHE_DIR`
# (`none`: no cache folder; `-`: no option at all, for builds without it), sends /nodes/statistics, /nodes/full_types and
# /nodes/full_types_count together as soon as /server answers, prints the time of each answer,
# the aggregate statements the server ran over the node table (from its SQLite statement
# trace) and the load average, then stops the server. Run it once with an empty CACHE_DIR (the
# computation, which writes the file) and again (the file read back).
#
# Environment: AIIDA_REST_BIN (default target/release/aiida-rest), PORT (default 5913).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STORAGE=${1:?usage: bench/coldstart.sh STORAGE CACHE_DIR [RUNS]}
CACHE=${2:?usage: bench/coldstart.sh STORAGE CACHE_DIR [RUNS]}
RUNS=${3:-2}
BIN=${AIIDA_REST_BIN:-$ROOT/target/release/aiida-rest}
PORT=${PORT:-5913}
BASE=http://127.0.0.1:$PORT/api/v4
CACHE_OPT=(--cache-dir "$CACHE")
[ "$CACHE" = - ] && CACHE_OPT=()
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

for run in $(seq "$RUNS"); do
    RUST_LOG="aiida_rest=debug,aiida_rest::storage::db::sqlite=trace" \
        "$BIN" serve "$STORAGE" --port "$PORT" ${CACHE_OPT[@]+"${CACHE_OPT[@]}"} 2>"$LOG" &
    pid=$!
    until curl -sf -o /dev/null "$BASE/server"; do
        kill -0 "$pid" 2>/dev/null || { echo "the server did not start:" >&2; cat "$LOG" >&2; exit 1; }
        sleep 0.005
    done
    curls=()
    for p in statistics full_types full_types_count; do
        curl -s -o /dev/null -w "run $run  first /nodes/$p: %{time_total} s (HTTP %{http_code})\n" "$BASE/nodes/$p" &
        curls+=($!)
    done
    wait "${curls[@]}"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "run $run  node-table aggregate statements: $(grep 'SQLite statement' "$LOG" | grep -ci 'group by' || true)"
    grep -o 'statistics warmed up in .*' "$LOG" | sed "s/^/run $run  /" || true
    echo "run $run  $(uptime | sed 's/.*load/load/')"
done
