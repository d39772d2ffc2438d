#!/usr/bin/env bash
# aiida-rest against the Python reference (aiida-core's REST API) on the same profile, in one run.
#
#   bench/compare.sh PROFILE_DIR [DURATION] [REPEATS]        default: 4s, 3 repeats
#
# PROFILE_DIR is a core.sqlite_dos profile folder (database.sqlite + container/), for instance
# one made by `python3 bench/make_big_profile.py /tmp/p100k 100000` (10^5 nodes, under a minute;
# the fixture's nodes are copied with new ids, and the fixture's own nodes, whose uuids the
# requests below use, are kept).
#
# Prints, in this order:
#  1. cold start: the first /nodes/statistics, /nodes/full_types and /nodes/full_types_count
#     sent together right after the server answers (the background warm-up; they must wait for
#     it, not compute again), the warm-up time the server logs, and the first (uncached) and
#     second explorer landing query (POST /querybuilder/, 5000 rows) of a fresh process;
#  2. per endpoint: requests/s, p50 and p99 (median over REPEATS runs of wrk, 2 threads,
#     8 connections, DURATION each; the two servers take turns endpoint by endpoint so that a
#     change of machine load hits both), and the ratio of the requests/s;
#  3. a mixed explorer workload (the endpoints of 2. in turn) at 64 connections;
#  4. resident memory (VmRSS, and its anonymous and file-mapped parts) of both servers,
#     idle and after the load; and the load average of the machine before and after.
#
# Environment:
#   AIIDA_REST_BIN  aiida-rest binary (default target/release/aiida-rest)
#   PORT            aiida-rest's port (default 5911); REF_PORT the reference's (default 5912)
#   REF             0 to skip the reference; otherwise it runs when its virtualenv exists
#   REF_HOME        the reference's home (default $HOME/.aiida-reference); a virtualenv in
#                   $REF_HOME/venv (a symlink to an installed one will do). The start script
#                   stops the server whose pid is in $REF_HOME/server.pid and the run stops the
#                   one it started: where others run a reference too, use a REF_HOME of your own
#                   (mkdir -p /tmp/ref-me && ln -s ~/.aiida-reference/venv /tmp/ref-me/venv)
#   REF_SETUP       the reference's start script (default ../shared/tools/setup_reference.sh,
#                   then /work/shared/tools/setup_reference.sh); it serves a copy of PROFILE_DIR
#   MIX_CONNS       connections of the mixed workload (default 64)
#   WRK_THREADS     wrk threads (default 2)
#   PG_URL          aiida-rest serves this core.psql_dos database instead (the same rows, e.g. made
#                   from PROFILE_DIR by bench/make_big_pg.py), with PROFILE_DIR/container as its
#                   repository; the reference, which would read SQLite, is then not run
# Needs wrk, curl and python3. The reference is slow: with it a run takes a few minutes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROFILE=$(realpath "${1:?usage: bench/compare.sh PROFILE_DIR [DURATION] [REPEATS]}")
DUR=${2:-4s}
REPEATS=${3:-3}
BIN=${AIIDA_REST_BIN:-$ROOT/target/release/aiida-rest}
PORT=${PORT:-5911}
REF_PORT=${REF_PORT:-5912}
REF_HOME=${REF_HOME:-$HOME/.aiida-reference}
MIX_CONNS=${MIX_CONNS:-64}
THREADS=${WRK_THREADS:-2}
REF_SETUP=${REF_SETUP:-}
if [[ -z $REF_SETUP ]]; then
    for s in "$ROOT/../shared/tools/setup_reference.sh" /work/shared/tools/setup_reference.sh; do
        [[ -f $s ]] && { REF_SETUP=$s; break; }
    done
fi
WITH_REF=0
if [[ ${REF:-1} != 0 && -z ${PG_URL:-} && -x $REF_HOME/venv/bin/verdi && -n $REF_SETUP ]]; then WITH_REF=1; fi
[[ -x $BIN ]] || { echo "no aiida-rest binary at $BIN (cargo build --release)" >&2; exit 1; }
[[ -f $PROFILE/database.sqlite ]] || { echo "$PROFILE is not a core.sqlite_dos profile folder" >&2; exit 1; }

STORAGE=("$PROFILE")
[[ -n ${PG_URL:-} ]] && STORAGE=("$PG_URL" --repository "$PROFILE/container")
WORK=$(mktemp -d)
SERVER=
REF_PID=
cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    [[ -n $REF_PID ]] && kill "$REF_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

NODES=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True).execute("select count(*) from db_dbnode").fetchone()[0])' "$PROFILE/database.sqlite")
# The deep page: page 2000 of 25 (offset 50,000), or the middle page of a database without it.
PAGE=$(( NODES / 25 < 2000 ? NODES / 25 / 2 : 2000 ))
(( PAGE >= 1 )) || PAGE=1
UUID=a55eb0f5-68ab-45a7-8f6a-b22c38e2a583
QB='{"path":[{"orm_base":"node","tag":"node","entity_type":""}],"filters":{"node":{}},"project":{"node":["id","uuid","node_type","label","ctime","mtime"]},"order_by":[],"limit":5000,"offset":0,"distinct":true}'
# name|method|path
ENDPOINTS=(
    "/nodes/<uuid>|GET|/api/v4/nodes/$UUID"
    "/nodes?limit=20|GET|/api/v4/nodes?limit=20"
    "/nodes/<uuid>/links/incoming|GET|/api/v4/nodes/$UUID/links/incoming"
    "/nodes/<uuid>/contents/attributes|GET|/api/v4/nodes/$UUID/contents/attributes"
    "/nodes/page/$PAGE?perpage=25&orderby=-ctime|GET|/api/v4/nodes/page/$PAGE?perpage=25&orderby=-ctime"
    "/nodes/full_types|GET|/api/v4/nodes/full_types"
    "/nodes/statistics|GET|/api/v4/nodes/statistics"
    "POST /querybuilder/ (landing, 5000 rows)|POST|/api/v4/querybuilder/"
    "/server|GET|/api/v4/server"
)
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$QB" >"$WORK/post.lua"
{
    echo 'local paths = {'
    for e in "${ENDPOINTS[@]}"; do
        IFS='|' read -r _ method path <<<"$e"
        [[ $method == GET ]] && printf '  "%s",\n' "$path"
    done
    echo '}'
    printf 'local qb = [[%s]]\n' "$QB"
    cat <<'LUA'
local reqs = {}
local i = 0
init = function(args)
  for _, p in ipairs(paths) do reqs[#reqs + 1] = wrk.format("GET", p) end
  reqs[#reqs + 1] = wrk.format("POST", "/api/v4/querybuilder/", {["Content-Type"] = "application/json"}, qb)
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
LUA
} >"$WORK/mix.lua"

rss() { # pid -> "VmRSS RssAnon RssFile" in MB
    awk '/^(VmRSS|RssAnon|RssFile):/ {v[$1]=$2} END {printf "%.1f %.1f %.1f", v["VmRSS:"]/1024, v["RssAnon:"]/1024, v["RssFile:"]/1024}' "/proc/$1/status"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_idle() { # pid: until it has used less than 2 ticks of CPU in 0.3 s (at most 60 s), so that
    # the reference's queue of abandoned requests does not run into the next measurement
    local a b
    for _ in $(seq 200); do
        a=$(cpu_ticks "$1"); sleep 0.3; b=$(cpu_ticks "$1")
        (( b - a < 2 )) && return 0
    done
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
wait_up() { # url, tries of 0.1 s
    for _ in $(seq "$2"); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
    return 1
}
start_rest() { # [RUST_LOG]
    # The statistics cache folder is the run's own: the first start below finds it empty.
    RUST_LOG=${1:-aiida_rest=info} "$BIN" serve "${STORAGE[@]}" --port "$PORT" --host 127.0.0.1 \
        --cache-dir "$WORK/cache" 2>"$WORK/server.log" >&2 &
    SERVER=$!
    wait_up "http://127.0.0.1:$PORT/api/v4/server" 600 || { echo "aiida-rest did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
}
stop_rest() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; SERVER=; }
# wrk -> "rps p50_ms p99_ms non2xx errors"
wrk_run() { # base method path connections
    local lua=()
    [[ $2 == POST ]] && lua=(-s "$WORK/post.lua")
    [[ $2 == MIX ]] && lua=(-s "$WORK/mix.lua")
    wrk -t"$THREADS" -c"$4" -d"$DUR" --timeout 30s --latency "${lua[@]}" "$1$3" 2>&1 | awk '
        function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0; if (s ~ /m$/) return s * 60000; if (s ~ /s$/) return s * 1000; return s }
        /Requests\/sec/ {rps = $2} /^ +50%/ {p50 = ms($2)} /^ +99%/ {p99 = ms($2)}
        /Non-2xx/ {bad = $NF} /Socket errors/ {err = $0}
        END {gsub(/[ ,]+/, " ", err); printf "%s %s %s %s %s\n", rps + 0, p50 + 0, p99 + 0, bad + 0, (err == "" ? "-" : "\"" err "\"")}'
}

echo "# aiida-rest compare: $PROFILE${PG_URL:+ (aiida-rest serving $PG_URL)}"
echo "nodes: $NODES," \
    "database.sqlite $(du -m "$PROFILE/database.sqlite" | cut -f1) MB"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average at start $(loadavg)"
echo "aiida-rest: $BIN ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')); wrk $THREADS threads, $DUR per run, $REPEATS runs"

# 1. Cold start: first without a statistics cache file, then with the one that start saved.
echo
echo "## Cold start (fresh process, one request at a time unless said)"
for cache in "no cache file" "cache file"; do
start_rest "aiida_rest=debug,aiida_rest::storage::db::sqlite=trace"
pids=()
for p in statistics full_types full_types_count; do
    curl -s -o /dev/null -w "%{http_code} %{time_total}\n" "http://127.0.0.1:$PORT/api/v4/nodes/$p" >"$WORK/cold.$p" &
    pids+=($!)
done
wait "${pids[@]}" || true
for p in statistics full_types full_types_count; do
    read -r code t <"$WORK/cold.$p"
    printf '%-48s %8.1f ms (HTTP %s)\n' "first /nodes/$p ($cache; sent together)" "$(python3 -c "print($t*1000)")" "$code"
done
sleep 0.2
# The aggregate statements (GROUP BY) should have run once, by the warm-up, with the requests
# waiting for it; not at all with a cache file. SQLite statements are traced.
sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" >"$WORK/cold.log"
{ grep 'SQLite statement' "$WORK/cold.log" | grep -i 'group by' | sed 's/.*sql=//' | sort | uniq -c || true; } |
    while read -r n sql; do printf '  run %s time(s): %s\n' "$n" "${sql:0:90}"; done
warm=$(grep -o 'statistics warmed up in .*' "$WORK/cold.log" | tail -1 | sed 's/statistics warmed up in //' || true)
printf '%-48s %8s\n' "background warm-up (server log)" "${warm:-not logged}"
[[ $cache == "cache file" ]] || stop_rest
done
for n in first second; do
    t=$(curl -s -o /dev/null -w "%{time_total}" -H 'Content-Type: application/json' -d "$QB" "http://127.0.0.1:$PORT/api/v4/querybuilder/")
    printf '%-48s %8.1f ms\n' "$n landing query (POST /querybuilder/)" "$(python3 -c "print($t*1000)")"
done
for n in first second; do
    t=$(curl -s -o /dev/null -w "%{time_total}" "http://127.0.0.1:$PORT/api/v4/nodes/page/$PAGE?perpage=25&orderby=-ctime")
    printf '%-48s %8.1f ms\n' "$n /nodes/page/$PAGE?perpage=25&orderby=-ctime" "$(python3 -c "print($t*1000)")"
done
stop_rest

# 2. Endpoints, the two servers in turn.
start_rest
REST_IDLE=$(rss "$SERVER")
if [[ $WITH_REF == 1 ]]; then
    REF_HOME=$REF_HOME bash "$REF_SETUP" "$PROFILE" "$REF_PORT" >"$WORK/ref-setup.log" 2>&1 || { cat "$WORK/ref-setup.log" >&2; exit 1; }
    REF_PID=$(cat "$REF_HOME/server.pid")
    wait_up "http://127.0.0.1:$REF_PORT/api/v4/server" 300 || { echo "reference did not start" >&2; exit 1; }
    REF_IDLE=$(rss "$REF_PID")
fi
RES=$WORK/results.tsv
for r in $(seq "$REPEATS"); do
    for i in "${!ENDPOINTS[@]}"; do
        IFS='|' read -r _ method path <<<"${ENDPOINTS[$i]}"
        echo "$i rest $(wrk_run "http://127.0.0.1:$PORT" "$method" "$path" 8)" >>"$RES"
        if [[ $WITH_REF == 1 ]]; then
            echo "$i ref $(wrk_run "http://127.0.0.1:$REF_PORT" "$method" "$path" 8)" >>"$RES"
            wait_idle "$REF_PID"
        fi
    done
    echo "$(date -u +%T) run $r of $REPEATS done, load average $(loadavg)" >&2
done
# 3. The mixed workload.
for r in $(seq "$REPEATS"); do
    echo "mix rest $(wrk_run "http://127.0.0.1:$PORT" MIX /api/v4/server "$MIX_CONNS")" >>"$RES"
done
if [[ $WITH_REF == 1 ]]; then
    echo "mix ref $(wrk_run "http://127.0.0.1:$REF_PORT" MIX /api/v4/server "$MIX_CONNS")" >>"$RES"
    REF_LOAD=$(rss "$REF_PID")
    wait_idle "$REF_PID"
fi
REST_LOAD=$(rss "$SERVER")

python3 - "$RES" "$MIX_CONNS" "${ENDPOINTS[@]}" <<'PY'
import shlex, statistics, sys
res, conns, names = sys.argv[1], sys.argv[2], [e.split('|')[0] for e in sys.argv[3:]]
runs = {}
for line in open(res):
    k, who, rps, p50, p99, bad, err = shlex.split(line)
    runs.setdefault((k, who), []).append((float(rps), float(p50), float(p99), int(bad), err))
def med(k, who):
    r = runs.get((k, who))
    if not r:
        return None
    notes = sum(x[3] for x in r), [x[4] for x in r if x[4] != '-']
    return [statistics.median(x[i] for x in r) for i in range(3)] + list(notes)
def fmt(v):
    if v is None:
        return '', '', ''
    rps, p50, p99, bad, errs = v
    extra = (f' ({bad} non-2xx)' if bad else '') + (f' ({errs[0]})' if errs else '')
    return f'{rps:,.1f}' if rps < 100 else f'{rps:,.0f}', f'{p50:.2f} ms', f'{p99:.2f} ms{extra}'
def table(rows):
    print('| request | aiida-rest req/s | p50 | p99 | reference req/s | p50 | p99 | ratio |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for name, k in rows:
        a, b = med(k, 'rest'), med(k, 'ref')
        ratio = f'{a[0] / b[0]:,.0f}x' if a and b and b[0] > 0 else ''
        print('| `%s` | %s | %s | %s | %s | %s | %s | %s |' % ((name,) + fmt(a) + fmt(b) + (ratio,)))
print(f'\n## Endpoints (wrk, 8 connections; medians of {len(runs.get(("0", "rest"), []))} runs)\n')
table([(n, str(i)) for i, n in enumerate(names)])
print(f'\n## Mixed explorer workload ({conns} connections, the endpoints above in turn)\n')
table([('mix of the above', 'mix')])
PY
echo
echo "## Resident memory (MB: VmRSS / anonymous / file-mapped)"
echo "aiida-rest: idle $REST_IDLE, after the load $REST_LOAD"
[[ $WITH_REF == 1 ]] && echo "reference:  idle $REF_IDLE, after the load $REF_LOAD"
echo "load average at the end: $(loadavg)"
