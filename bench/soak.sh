#!/usr/bin/env bash
# Soak test: many connections over a mix of real explorer requests (the GET requests of
# tests/fixtures/v4-urls.txt) plus hostile ones (bad filters, %-encodings, traversal, huge ids,
# odd methods, long URLs, QueryBuilder bodies out of range), for a bounded time on loopback.
# Reports errors (5xx and socket errors), p50/p99 latency, and the server's resident and
# anonymous memory over time (RssAnon: the heap, not the SQLite file maps shared by connections).
#
#   bench/soak.sh [DURATION_SECONDS] [CONNECTIONS] [STORAGE]
#   e.g. bench/soak.sh 600 64                      # 10 minutes, 64 connections, the ref profile
#
# Starts its own server (AIIDA_REST_BIN, default target/release/aiida-rest, else target/debug)
# on a free port and stops it at the end. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-120}
CONNS=${2:-64}
STORAGE=${3:-tests/fixtures/ref-profile}
BIN=${AIIDA_REST_BIN:-target/release/aiida-rest}
[ -x "$BIN" ] || BIN=target/debug/aiida-rest
PORT=${PORT:-$((20000 + RANDOM % 20000))}
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" serve "$STORAGE" --port "$PORT" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do curl -fs "$BASE/api/v4/server" >/dev/null && break; sleep 0.1; done
curl -fs "$BASE/api/v4/server" >/dev/null || { echo "server did not start"; cat "$WORK/server.log"; exit 1; }

# The request mix: one line per request, "METHOD PATH [BODY]".
{
    grep -v '^#' tests/fixtures/v4-urls.txt | grep -v '^POST' | awk '{print "GET " $1}'
    grep '^POST ' tests/fixtures/v4-urls.txt
    cat <<'HOSTILE'
GET /api/v4/nodes?id>>3
GET /api/v4/nodes?id=in=1,2,,
GET /api/v4/nodes?attributes.%ff=1
GET /api/v4/nodes?label=like=%22%25%25%25%25%25%25%25%25%22
GET /api/v4/nodes?orderby=-ctime,+mtime,%00
GET /api/v4/nodes/..%2f..%2fetc%2fpasswd
GET /api/v4/nodes/99999999999999999999999
GET /api/v4/nodes/-1/links/incoming
GET /api/v4/nodes?limit=-1&attributes=true
GET /api/v4/nodes?limit=99999999999999999999
GET /api/v4/nodes/page/0
GET /api/v4/nodes?ctime>2024-13-45T99:99
GET /api/v4/users?email=%22a%40b%22
GET /api/v4/computers?hostname=like=%22%5C%22
DELETE /api/v4/nodes
PUT /api/v4/server
POST /api/v4/querybuilder {"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"attributes.value":{">":-1e999}}}}
POST /api/v4/querybuilder {"path":[{"entity_type":"","tag":"n"},{"entity_type":"","tag":"m","with_incoming":"n"},{"entity_type":"","tag":"o","with_incoming":"m"}],"project":{"o":["*"]}}
POST /api/v4/querybuilder {"path":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
POST /api/v4/querybuilder not json
HOSTILE
    printf 'GET /api/v4/nodes?label=%s\n' "$(head -c 60000 /dev/zero | tr '\0' 'a')"
} >"$WORK/requests.txt"
echo "$(wc -l <"$WORK/requests.txt") distinct requests, $CONNS connections, ${DURATION}s, server $BIN on $STORAGE"

cat >"$WORK/mix.lua" <<'LUA'
local requests = {}
local counts = {}
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end
function init(args)
    for line in io.lines(args[1]) do
        local method, rest = line:match("^(%u+) (.*)$")
        local path, body = rest:match("^(%S+) (.*)$")
        if not path then path = rest end
        local headers = {}
        if body then headers["Content-Type"] = "application/json" end
        table.insert(requests, wrk.format(method, path, headers, body))
    end
    math.randomseed(os.time() + math.random(1000000))
    s5xx = 0
end
function request()
    return requests[math.random(#requests)]
end
function response(status, headers, body)
    if status >= 500 then s5xx = s5xx + 1 end
end
function done(summary, latency, requests)
    local total5xx = 0
    for _, t in ipairs(threads) do total5xx = total5xx + (t:get("s5xx") or 0) end
    io.write(string.format("RESULT requests=%d 5xx=%d socket_errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
        summary.requests, total5xx,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

memory() {
    awk -v t="$1" '/^VmRSS/ {rss=$2} /^RssAnon/ {anon=$2} /^RssFile/ {file=$2} /^Threads/ {thr=$2}
        END {printf "t=%4ds  VmRSS %7.1f MB  RssAnon %7.1f MB  RssFile %7.1f MB  threads %d\n", t, rss/1024, anon/1024, file/1024, thr}' \
        "/proc/$SERVER/status"
}
memory 0
wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$WORK/mix.lua" "$BASE" -- "$WORK/requests.txt" >"$WORK/wrk.out" 2>&1 &
LOAD=$!
STEP=$(( DURATION / 12 > 5 ? DURATION / 12 : 5 ))
START=$SECONDS
while kill -0 "$LOAD" 2>/dev/null; do
    sleep "$STEP"
    kill -0 "$LOAD" 2>/dev/null && memory $((SECONDS - START))
done
wait "$LOAD" || true
memory $((SECONDS - START))
grep -E 'RESULT|Requests/sec|Socket errors' "$WORK/wrk.out" || cat "$WORK/wrk.out"
# The server must still answer, and must not have logged panics.
curl -fs -o /dev/null -w 'after the soak: /api/v4/server %{http_code} in %{time_total}s\n' "$BASE/api/v4/server"
echo "server log: $(wc -l <"$WORK/server.log") lines, $(grep -ci panic "$WORK/server.log" || true) panics"
# What the server said of its errors (5xx are logged, at most once a minute each kind).
grep -E 'WARN|ERROR' "$WORK/server.log" | head -10 | cut -c1-300
