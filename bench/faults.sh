#!/usr/bin/env bash
# Fault tests under load, on loopback, each bounded in time. For every fault: what the server
# answered meanwhile (status counts), whether it answers normally afterwards, and how long that
# took. Faults:
#   pg-stop      PostgreSQL stopped for 5 s under load, then started again
#   pg-kill      all server backends of the REST server killed (pg_terminate_backend) under load
#   pack-trunc   a pack file of a profile truncated while objects of it are downloaded
#   archive-swap the served archive replaced on disk (by a different file) while served
#   disconnect   clients that drop the connection in the middle of a large download
#
#   bench/faults.sh [FAULT ...]          (default: all; pg-* need PostgreSQL's initdb/pg_ctl)
#
# Works on copies in a temporary folder; the fixtures are never touched. Needs wrk, curl, python3.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${AIIDA_REST_BIN:-target/release/aiida-rest}
[ -x "$BIN" ] || BIN=target/debug/aiida-rest
BIN=$ROOT/$BIN
WORK=$(mktemp -d /tmp/aiida-rest-faults.XXXXXX)
chmod 755 "$WORK"
SERVER=
PGDATA=
PGBIN=$(dirname "$(command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -1)")
AS_PG=()
[ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)
cleanup() {
    stop_server
    [ -n "$PGDATA" ] && "${AS_PG[@]}" "$PGBIN/pg_ctl" stop -D "$PGDATA" -m immediate >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # STORAGE [ARGS...]
    PORT=$(free_port)
    BASE=http://127.0.0.1:$PORT
    "$BIN" serve "$@" --port "$PORT" --statement-timeout 5 2>"$WORK/server.log" &
    SERVER=$!
    for _ in $(seq 100); do curl -fs "$BASE/api/v4/server" >/dev/null && return 0; sleep 0.1; done
    echo "server did not start:"; cat "$WORK/server.log"; return 1
}
stop_server() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; SERVER=; fi
}

# Load with status counts: load SECONDS PATH... (paths picked at random), in the background.
LOAD_LUA=$WORK/load.lua
cat >"$LOAD_LUA" <<'LUA'
local paths, threads = {}, {}
function setup(t) table.insert(threads, t) end
function init(args) for i = 1, #args do paths[i] = args[i] end codes = {} end
function request() return wrk.format("GET", paths[math.random(#paths)]) end
function response(status) codes[status] = (codes[status] or 0) + 1 end
function done(summary)
    local all = {}
    for _, t in ipairs(threads) do
        for code, n in pairs(t:get("codes")) do all[code] = (all[code] or 0) + n end
    end
    local parts = {}
    for code, n in pairs(all) do table.insert(parts, code .. ":" .. n) end
    table.sort(parts)
    io.write("    statuses during the fault: " .. table.concat(parts, " ") ..
        string.format("  (socket errors %d)\n", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
load() {
    local seconds=$1; shift
    wrk -t2 -c16 -d"${seconds}s" --timeout 10s -s "$LOAD_LUA" "$BASE" -- "$@" >"$WORK/load.out" 2>&1 &
    LOAD=$!
}
load_report() { wait "$LOAD"; grep 'statuses' "$WORK/load.out" || tail -3 "$WORK/load.out"; }

# Time until PATH answers 200 again (at most 30 s).
recovery() {
    local start=$SECONDS.$(date +%N | cut -c1-2) t0 code
    t0=$(date +%s.%N)
    for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE$1")
        if [ "$code" = 200 ]; then
            printf '    %s answers 200 again after %.2f s\n' "$1" "$(echo "$(date +%s.%N) - $t0" | bc)"
            return 0
        fi
        sleep 0.1
    done
    echo "    FAIL: $1 still answers $code after 30 s"
    return 1
}
alive() {
    if kill -0 "$SERVER" 2>/dev/null; then echo "    server alive, RssAnon $(awk '/RssAnon/ {print $2/1024 " MB"}' /proc/$SERVER/status)";
    else echo "    FAIL: the server died"; fi
    echo "    log: $(wc -l <"$WORK/server.log") lines, $(grep -ci panic "$WORK/server.log") panics"
}

NODES='/api/v4/nodes?limit=20'
COUNT='/api/v4/nodes/statistics'

pg_cluster() {
    [ -n "$PGDATA" ] && return 0
    [ -x "$PGBIN/initdb" ] || { echo "    skipped: no PostgreSQL binaries"; return 1; }
    PGDATA=$WORK/pg
    mkdir -p "$PGDATA" && chown "${AS_PG:+postgres}" "$WORK" "$PGDATA" 2>/dev/null
    PGPORT=$(free_port)
    "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --no-sync >/dev/null || return 1
    printf "listen_addresses='127.0.0.1'\nport=%s\nunix_socket_directories='%s'\nfsync=off\n" "$PGPORT" "$PGDATA" >>"$PGDATA/postgresql.conf"
    "${AS_PG[@]}" "$PGBIN/pg_ctl" start -D "$PGDATA" -l "$PGDATA/log" -w >/dev/null || return 1
    PSQL=("$(command -v psql || echo "$PGBIN/psql")" -q -h 127.0.0.1 -p "$PGPORT" -U postgres)
    "${PSQL[@]}" -c 'CREATE DATABASE fault' postgres && "${PSQL[@]}" -f tests/fixtures/psql_dos-schema.sql fault >/dev/null && "${PSQL[@]}" -f tests/fixtures/ref-profile.pg.sql fault >/dev/null
}

fault_pg_stop() {
    echo "pg-stop: PostgreSQL stopped for 5 s under load"
    pg_cluster || return 0
    start_server "postgresql://postgres@127.0.0.1:$PGPORT/fault" --repository tests/fixtures/ref-profile/container || return 1
    load 12 "$NODES" "$COUNT"
    sleep 2
    "${AS_PG[@]}" "$PGBIN/pg_ctl" stop -D "$PGDATA" -m fast -w >/dev/null
    sleep 5
    "${AS_PG[@]}" "$PGBIN/pg_ctl" start -D "$PGDATA" -l "$PGDATA/log" -w >/dev/null
    recovery "$NODES"
    load_report
    alive
    stop_server
}

fault_pg_kill() {
    echo "pg-kill: every backend of the server killed, 3 times, under load"
    pg_cluster || return 0
    start_server "postgresql://postgres@127.0.0.1:$PGPORT/fault" --repository tests/fixtures/ref-profile/container || return 1
    load 8 "$NODES" "$COUNT"
    for _ in 1 2 3; do
        sleep 2
        "${PSQL[@]}" -At -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'aiida-rest'" postgres |
            sed 's/^/    killed backends: /'
    done
    recovery "$NODES"
    load_report
    alive
    stop_server
}

fault_pack_trunc() {
    echo "pack-trunc: the profile's pack files truncated to half under load"
    cp -r tests/fixtures/ref-profile "$WORK/profile"
    start_server "$WORK/profile" || return 1
    local uuid=bda9c7d7-ddb9-45fe-9094-c679c5f06782
    local repo="/api/v4/nodes/$uuid/repo/contents?filename=%22aiida.out%22"
    load 6 "$NODES" "$repo" "/api/v4/nodes/$uuid/repo/list"
    sleep 2
    for pack in "$WORK"/profile/container/packs/*; do
        [ -f "$pack" ] && truncate -s $(( $(stat -c %s "$pack") / 2 )) "$pack"
    done
    load_report
    curl -s -o /dev/null -w "    after truncation: repo/contents %{http_code}\n" "$BASE$repo"
    recovery "$NODES"
    alive
    stop_server
}

fault_archive_swap() {
    echo "archive-swap: the served archive replaced on disk (by another file, then by garbage) under load"
    cp examples/demo.aiida "$WORK/served.aiida"
    start_server "$WORK/served.aiida" || return 1
    load 8 "$NODES" "$COUNT" "/api/v4/nodes?limit=5&attributes=true"
    sleep 2
    python3 - "$WORK/served.aiida" <<'PY'
import os, shutil, sys, zipfile
path = sys.argv[1]
# A different, valid zip written to a new file and renamed over (as a copy tool would).
with zipfile.ZipFile(path + ".new", "w") as z:
    z.writestr("metadata.json", "{}")
os.replace(path + ".new", path)
PY
    sleep 2
    head -c 1000000 /dev/urandom >"$WORK/served.aiida.new" && mv "$WORK/served.aiida.new" "$WORK/served.aiida"
    load_report
    recovery "$NODES"
    alive
    stop_server
}

fault_disconnect() {
    echo "disconnect: 200 clients drop the connection in the middle of a large download"
    start_server tests/fixtures/ref-profile || return 1
    local before after
    before=$(awk '/RssAnon/ {print $2}' /proc/$SERVER/status)
    for _ in $(seq 20); do
        local pids=()
        for _ in $(seq 10); do
            curl -s --max-time 0.05 -o /dev/null "$BASE/api/v4/nodes?limit=-1&attributes=true&extras=true" &
            pids+=($!)
        done
        wait "${pids[@]}"
    done
    sleep 2
    after=$(awk '/RssAnon/ {print $2}' /proc/$SERVER/status)
    echo "    RssAnon before $((before / 1024)) MB, after $((after / 1024)) MB; open fds $(ls /proc/$SERVER/fd | wc -l), threads $(awk '/Threads/ {print $2}' /proc/$SERVER/status)"
    recovery "$NODES"
    alive
    stop_server
}

FAULTS=${*:-pg-stop pg-kill pack-trunc archive-swap disconnect}
for fault in $FAULTS; do
    "fault_${fault//-/_}"
done
