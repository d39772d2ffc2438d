#!/usr/bin/env bash
# Fault tests under load, on loopback, each bounded in time. For every fault: what the server
# answered meanwhile (status counts), whether it answers normally afterwards, and how long that
# took. Faults:
#   pg-stop      PostgreSQL stopped for 5 s under load, then started again
#   pg-kill      all server backends of the REST server killed (pg_terminate_backend) under load
#   pack-trunc   the pack file of a profile truncated in the middle of an object while objects
#                of that pack (found in its packs.idx) are downloaded
#   archive-swap the served archive replaced on disk (by a different file) while served
#   temp-full    the temporary folder (TMPDIR, a tiny tmpfs) too small for the database copy of
#                an archive: with several databases that one answers a JSON 503 naming the cause
#                and the others are served; alone, the server refuses to start with that message
#   disconnect   clients that drop the connection in the middle of a large download, in rounds
#                (DISCONNECTS, default 200): anonymous memory must level off, not grow per round
#
#   bench/faults.sh [FAULT ...]          (default: all; pg-* need PostgreSQL's initdb/pg_ctl,
#                                         temp-full needs to mount a tmpfs, i.e. root)
#
# Every fault checks its expected outcome; each miss prints "FAIL: ..." and the script exits 1.
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
TMPFS=
FAILS=0
fail() { echo "    FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { [ -n "${QUIET:-}" ] || echo "    ok: $*"; }
PGBIN=$(dirname "$(command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -1)")
AS_PG=()
[ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)
cleanup() {
    stop_server
    [ -n "$PGDATA" ] && "${AS_PG[@]}" "$PGBIN/pg_ctl" stop -D "$PGDATA" -m immediate >/dev/null 2>&1
    [ -n "$TMPFS" ] && umount "$TMPFS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # STORAGE [ARGS...]   (the environment of the call is the server's)
    PORT=$(free_port)
    BASE=http://127.0.0.1:$PORT
    "$BIN" serve "$@" --port "$PORT" --statement-timeout 5 2>"$WORK/server.log" &
    SERVER=$!
    for _ in $(seq 100); do curl -fs "$BASE/health" >/dev/null && return 0; sleep 0.1; done
    fail "server did not start:"; cat "$WORK/server.log"; return 1
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
# The statuses answered during the fault are among ALLOWED (e.g. "200 503"), and there were some.
expect_statuses() {
    local allowed=" $1 " line code bad=
    line=$(grep -o 'fault: [0-9: ]*' "$WORK/load.out" | sed 's/fault://')
    [ -n "${line// /}" ] || { fail "no answers during the fault"; return; }
    for pair in $line; do
        code=${pair%%:*}
        [[ $allowed == *" $code "* ]] || bad="$bad $pair"
    done
    if [ -n "$bad" ]; then fail "unexpected statuses during the fault:$bad (allowed: $1)"; else ok "statuses during the fault among: $1"; fi
}
no_socket_errors() {
    local errors
    errors=$(grep -o 'socket errors [0-9]*' "$WORK/load.out" | grep -o '[0-9]*$')
    [ "${errors:-1}" = 0 ] && ok "no socket errors" || fail "socket errors during the fault: ${errors:-?}"
}

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
    fail "$1 still answers $code after 30 s"
    return 1
}
alive() {
    if kill -0 "$SERVER" 2>/dev/null; then echo "    server alive, RssAnon $(awk '/RssAnon/ {print $2/1024 " MB"}' /proc/$SERVER/status)";
    else fail "the server died"; fi
    local panics
    panics=$(grep -ci panic "$WORK/server.log")
    echo "    log: $(wc -l <"$WORK/server.log") lines, $panics panics"
    [ "$panics" = 0 ] || fail "$panics panics in the log"
}
# The answer to PATH: status, content type and body, in $ANSWER_CODE, $ANSWER_TYPE, $WORK/answer.
answer() {
    local out
    out=$(curl -s -o "$WORK/answer" -w '%{http_code} %{content_type}' --max-time 10 "$BASE$1")
    ANSWER_CODE=${out%% *}
    ANSWER_TYPE=${out#* }
}
# A JSON error: PATH answers STATUS, application/json, and a "message" containing each WORD.
expect_json_error() { # PATH STATUS WORD...
    local path=$1 status=$2; shift 2
    answer "$path"
    local message
    message=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["message"])' "$WORK/answer" 2>/dev/null)
    if [ "$ANSWER_CODE" != "$status" ] || [ "$ANSWER_TYPE" != application/json ] || [ -z "$message" ]; then
        fail "$path: $ANSWER_CODE $ANSWER_TYPE $(head -c 300 "$WORK/answer") (expected a JSON $status)"
        return
    fi
    for word in "$@"; do
        [[ $message == *"$word"* ]] || { fail "$path: the message does not name '$word': $message"; return; }
    done
    ok "$path: $status, JSON naming $*"
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
    expect_statuses "200 503"
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
    expect_statuses "200 503"
    alive
    stop_server
}

# The objects of pack 0 that nodes reference, one line each: "damaged|intact HASHKEY URL", for a
# pack cut at CUT bytes (an object is damaged when it does not end before the cut).
packed_objects() { # PROFILE CUT
    python3 - "$1" "$2" <<'PY'
import json, sqlite3, sys, urllib.parse
root, cut = sys.argv[1], int(sys.argv[2])
index = sqlite3.connect(f"file:{root}/container/packs.idx?mode=ro", uri=True)
packed = {k: o + n for k, o, n in index.execute('SELECT hashkey, "offset", length FROM db_object WHERE pack_id = 0')}
db = sqlite3.connect(f"file:{root}/database.sqlite?mode=ro", uri=True)
seen = set()
def files(tree, prefix):
    for name, entry in (tree.get("o") or {}).items():
        if "k" in entry:
            yield prefix + name, entry["k"]
        else:
            yield from files(entry, prefix + name + "/")
for uuid, metadata in db.execute("SELECT uuid, repository_metadata FROM db_dbnode ORDER BY id"):
    for path, key in files(json.loads(metadata or "{}"), ""):
        if key in packed and key not in seen:
            seen.add(key)
            filename = urllib.parse.quote(json.dumps(path, ensure_ascii=False))
            state = "intact" if packed[key] <= cut else "damaged"
            print(state, key, f"/api/v4/nodes/{uuid}/repo/contents?filename={filename}")
PY
}

fault_pack_trunc() {
    echo "pack-trunc: the pack file cut in the middle of an object (found in packs.idx) under load"
    cp -r tests/fixtures/ref-profile "$WORK/profile"
    local pack=$WORK/profile/container/packs/0 cut
    # Cut in the middle of the object in the middle of the pack: objects past the cut, one
    # straddling it, and objects before it.
    cut=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT \"offset\" + length / 2 FROM db_object WHERE pack_id = 0 ORDER BY \"offset\" LIMIT 1 OFFSET (SELECT count(*) / 2 FROM db_object WHERE pack_id = 0)").fetchone()[0])' "$WORK/profile/container/packs.idx")
    packed_objects "$WORK/profile" "$cut" >"$WORK/objects"
    local damaged intact
    damaged=$(grep -c '^damaged' "$WORK/objects")
    intact=$(grep -c '^intact' "$WORK/objects")
    echo "    pack of $(stat -c %s "$pack") bytes cut at $cut: $damaged referenced objects past the cut, $intact before it"
    [ "$damaged" -gt 0 ] && [ "$intact" -gt 0 ] || { fail "no objects on both sides of the cut"; return 1; }
    local first_damaged first_intact
    first_damaged=$(awk '/^damaged/ {print $3; exit}' "$WORK/objects")
    first_intact=$(awk '/^intact/ {print $3; exit}' "$WORK/objects")
    start_server "$WORK/profile" || return 1
    answer "$first_damaged"
    [ "$ANSWER_CODE" = 200 ] || fail "before the cut: $first_damaged answers $ANSWER_CODE"
    load 6 "$NODES" "$first_damaged" "$first_intact"
    sleep 2
    truncate -s "$cut" "$pack"
    load_report
    # Downloads under way at the cut may end short (a failed chunked body); answers are 200 or 500.
    expect_statuses "200 500"
    local state key url bad=0
    while read -r state key url; do
        if [ "$state" = damaged ]; then
            local before=$FAILS
            QUIET=1 expect_json_error "$url" 500 "$key" damaged
            [ "$FAILS" = "$before" ] || { bad=$((bad + 1)); echo "      ($key)"; }
        else
            answer "$url"
            if [ "$ANSWER_CODE" != 200 ] || [ "$(sha256sum <"$WORK/answer" | cut -c1-64)" != "$key" ]; then
                fail "$url: $ANSWER_CODE, or the content is not the object $key"
                bad=$((bad + 1))
            fi
        fi
    done <"$WORK/objects"
    [ "$bad" = 0 ] && ok "$damaged damaged objects: JSON 500 naming the object; $intact intact ones: 200 with their exact content (sha256)"
    grep -q "$(awk '/^damaged/ {print $2; exit}' "$WORK/objects")" "$WORK/server.log" && ok "the damage is logged" ||
        fail "the damaged object is not named in the log"
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
    # The open archive (its file handle and database copy) keeps being served.
    expect_statuses "200"
    recovery "$NODES"
    alive
    stop_server
}

fault_temp_full() {
    echo "temp-full: TMPDIR a 64 KiB tmpfs, too small for an archive's database copy"
    TMPFS=$WORK/tmp
    mkdir -p "$TMPFS" "$WORK/archives"
    if ! mount -t tmpfs -o size=64k,mode=1777 tmpfs "$TMPFS" 2>/dev/null; then
        TMPFS=
        echo "    skipped: cannot mount a tmpfs (needs root)"
        return 0
    fi
    cp examples/demo.aiida "$WORK/archives/demo.aiida"
    cp -r tests/fixtures/ref-profile "$WORK/profile"
    # Alone, the archive cannot be served: the program says why and exits (no crash).
    local code
    TMPDIR=$TMPFS timeout 20 "$BIN" serve "$WORK/archives/demo.aiida" --port "$(free_port)" 2>"$WORK/alone.log"
    code=$?
    if [ "$code" -gt 0 ] && [ "$code" -lt 124 ] && grep -q 'No space left on device' "$WORK/alone.log" && grep -q 'temporary folder' "$WORK/alone.log"; then
        ok "alone: exits $code, saying $(grep -o 'cannot .*No space left on device' "$WORK/alone.log" | head -1 | cut -c1-160)"
    else
        fail "alone: exit status $code, $(tail -2 "$WORK/alone.log")"
    fi
    [ -z "$(ls -A "$TMPFS")" ] && ok "nothing left in the temporary folder" || fail "left in the temporary folder: $(ls -A "$TMPFS")"
    # With another database: the archive is a 503 naming the cause, the profile is served.
    TMPDIR=$TMPFS start_server --database demo="$WORK/archives/demo.aiida" --database prof="$WORK/profile" || return 1
    load 6 "/prof$NODES" "/demo$NODES" "/prof/api/v4/nodes?limit=200&attributes=true"
    sleep 1
    expect_json_error "/demo$NODES" 503 demo "No space left on device" "temporary folder"
    answer "/prof$NODES"
    [ "$ANSWER_CODE" = 200 ] && ok "/prof$NODES: 200 meanwhile" || fail "/prof$NODES: $ANSWER_CODE meanwhile"
    load_report
    expect_statuses "200 503"
    no_socket_errors
    [ -z "$(ls -A "$TMPFS")" ] && ok "nothing left in the temporary folder" || fail "left in the temporary folder: $(ls -A "$TMPFS")"
    # Space again: the archive opens on a later request (failed openings are retried after 5 s).
    mount -o remount,size=64m "$TMPFS"
    recovery "/demo$NODES"
    alive
    stop_server
    [ -z "$(ls -A "$TMPFS")" ] && ok "the database copy removed at shutdown" || fail "left in the temporary folder after shutdown: $(ls -A "$TMPFS")"
    umount "$TMPFS" && TMPFS=
}

rss_anon() { awk '/RssAnon/ {print $2}' "/proc/$SERVER/status"; }

fault_disconnect() {
    # At least 100, so that memory is sampled at least twice in between (every 50).
    local rounds=$(( ${DISCONNECTS:-200} < 100 ? 100 : ${DISCONNECTS:-200} ))
    echo "disconnect: $rounds clients, 10 at a time, drop the connection in the middle of a large download"
    start_server tests/fixtures/ref-profile || return 1
    local url="$BASE/api/v4/nodes?limit=-1&attributes=true&extras=true"
    local size
    size=$(curl -s "$url" | wc -c)
    local fds0 threads0 samples=()
    fds0=$(ls "/proc/$SERVER/fd" | wc -l)
    threads0=$(awk '/Threads/ {print $2}' "/proc/$SERVER/status")
    samples+=("$(rss_anon)")
    for round in $(seq $((rounds / 10))); do
        local pids=()
        for _ in $(seq 10); do
            # Reads the first 64 KiB of the answer, then closes the connection.
            curl -s -N "$url" 2>/dev/null | head -c 65536 >/dev/null &
            pids+=($!)
        done
        wait "${pids[@]}"
        (( round % 5 == 0 )) && samples+=("$(rss_anon)")
    done
    sleep 2
    samples+=("$(rss_anon)")
    local fds threads
    fds=$(ls "/proc/$SERVER/fd" | wc -l)
    threads=$(awk '/Threads/ {print $2}' "/proc/$SERVER/status")
    echo "    answer of $((size / 1024)) KiB; RssAnon (KiB) at start, every 50 disconnects, 2 s after: ${samples[*]}"
    echo "    open fds $fds0 -> $fds, threads $threads0 -> $threads"
    # Allocator retention makes the first rounds grow; a leak grows with every round. Over the
    # second half of the rounds, anonymous memory may grow by at most 2 MiB.
    local n=${#samples[@]} half growth
    half=${samples[$((n / 2))]}
    growth=$(( samples[n - 1] - half ))
    if [ "$n" -ge 4 ] && [ "$growth" -le 2048 ]; then ok "RssAnon levels off: ${growth} KiB over the second half"; else fail "RssAnon grows by ${growth} KiB over the second half (a leak per disconnect?)"; fi
    # (More open files is the SQLite pool growing; connections must all be closed.)
    local open
    open=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
    [ "$open" = 0 ] && ok "no connection left open" || fail "$open connections still established"
    [ "$threads" -le $((threads0 + 4)) ] && ok "no threads left behind" || fail "threads grew from $threads0 to $threads"
    recovery "$NODES"
    alive
    stop_server
}

FAULTS=${*:-pg-stop pg-kill pack-trunc archive-swap temp-full disconnect}
for fault in $FAULTS; do
    "fault_${fault//-/_}"
done
if [ "$FAILS" -gt 0 ]; then
    echo "$FAILS failed checks"
    exit 1
fi
echo "all checks passed"
