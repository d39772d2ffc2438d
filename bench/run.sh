#!/usr/bin/env bash
# Latency and throughput of the endpoints users hit most, with wrk on loopback.
#   bench/run.sh [BASE_URL] [DURATION]    default http://127.0.0.1:5000 (the server's default port), 10s
# Requests are bounded by the duration; 2 threads, 8 connections. The node uuids below are the
# fixture profile's, which bench/make_big_profile.py keeps (README "Performance" says how the
# published numbers were made). bench/compare.sh runs the same kind of load against aiida-rest and
# the Python reference side by side, and measures the cold start; bench/RESULTS.md has its tables.
set -euo pipefail
BASE=${1:-http://127.0.0.1:5000}
DUR=${2:-10s}
QB='{"path":[{"orm_base":"node","tag":"node","entity_type":""}],"filters":{"node":{}},"project":{"node":["id","uuid","node_type","label","ctime","mtime"]},"order_by":[],"limit":5000,"offset":0,"distinct":true}'
LUA=$(mktemp)
trap 'rm -f "$LUA"' EXIT
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$QB" >"$LUA"
run() {
    printf '%-70s ' "$1"
    wrk -t2 -c8 -d"$DUR" --timeout 30s --latency "${@:2}" "$BASE$1" | awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%10s req/s  p50 %8s  p99 %8s\n", rps, p50, p99}'
}
run /api/v4/server
run '/api/v4/nodes?limit=20'
run '/api/v4/nodes/page/1000?perpage=25&orderby=-ctime'
run '/api/v4/nodes/page/2000?perpage=25&orderby=-ctime'
run '/api/v4/nodes?full_type=%22data.core.structure.StructureData.%7C%22&limit=100'
run '/api/v4/nodes?id>500000&limit=50'
run /api/v4/nodes/a55eb0f5-68ab-45a7-8f6a-b22c38e2a583
run /api/v4/nodes/a55eb0f5-68ab-45a7-8f6a-b22c38e2a583/links/incoming
run '/api/v4/nodes/a55eb0f5-68ab-45a7-8f6a-b22c38e2a583/links/tree?in_limit=10&out_limit=10'
run /api/v4/nodes/a55eb0f5-68ab-45a7-8f6a-b22c38e2a583/contents/attributes
run '/api/v4/nodes/bda9c7d7-ddb9-45fe-9094-c679c5f06782/repo/contents?filename=%22aiida.out%22'
run /api/v4/nodes/statistics
run /api/v4/nodes/full_types
run /api/v4/nodes/full_types_count
run /api/v4/querybuilder/ -s "$LUA"
