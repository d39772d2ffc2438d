#!/usr/bin/env bash
# Instructions per request, measured with callgrind (repeatable on a busy machine, unlike
# requests per second):
#
#   bench/callgrind.sh BIN PATH [N1 N2]     -> (instructions after N2 requests - after N1) / (N2 - N1)
#
# The server runs under valgrind on STORE (default: the fixture profile) and gets N1, then N2
# keep-alive GET requests from one curl; startup and warm-up cancel out in the difference. The
# callgrind files stay in $OUT (default: target/callgrind) for bench/cgdiff.py.
# Env: STORE, PORT (random), SERVE_EXTRA (more `serve` options, e.g. --no-metrics), CURL_EXTRA.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$1; P=$2; N1=${3:-100}; N2=${4:-600}; PORT=${PORT:-$((30000 + RANDOM % 20000))}
STORE=${STORE:-$HERE/../tests/fixtures/ref-profile}
OUT=${OUT:-$HERE/../target/callgrind}
mkdir -p "$OUT"
run() {
  local n=$1; local out=$OUT/out.$1.$$
  # shellcheck disable=SC2086
  valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" serve "$STORE" --port "$PORT" ${SERVE_EXTRA:-} >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/v4/server" && break; sleep 0.2; done
  local urls=(); for _ in $(seq "$n"); do urls+=("http://127.0.0.1:$PORT$P"); done
  # shellcheck disable=SC2086
  curl -s "${urls[@]}" ${CURL_EXTRA:-} >/dev/null
  kill -TERM $pid; wait $pid 2>/dev/null || true
  grep -m1 '^summary:' "$out" | awk '{print $2}'
}
a=$(run "$N1"); b=$(run "$N2")
echo "$P: $(( (b - a) / (N2 - N1) )) instructions/request (files: $OUT/out.{$N1,$N2}.$$)"
