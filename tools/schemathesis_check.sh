#!/usr/bin/env bash
# The OpenAPI documents against the server that serves them: schemathesis generates requests
# from /api/v4/openapi.json and /api/v2/openapi.json (the fixture profile tests/fixtures/ref-profile
# served by the debug build) and from a database's /<name>/api/v4/openapi.json (several databases),
# and checks every answer: no 5xx (not_a_server_error), a status the document lists
# (status_code_conformance), its content type (content_type_conformance) and body schema
# (response_schema_conformance).
#
#   bash tools/schemathesis_check.sh            # all three documents
#   MAX_EXAMPLES=50 bash tools/schemathesis_check.sh
#
# schemathesis (pinned) is installed from the package index into target/schemathesis-venv.
# The number of examples per operation is bounded (MAX_EXAMPLES, default 8), to keep the run
# near two minutes; the seed is fixed (SEED=N draws other cases).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

python=${PYTHON:-python3}
venv=target/schemathesis-venv
max_examples=${MAX_EXAMPLES:-8}
seed=${SEED:-20261206}
work=$(mktemp -d "${TMPDIR:-/tmp}/aiida-rest-schemathesis.XXXXXX")
servers=()
cleanup() {
    for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "schemathesis_check: FAILED: $*" >&2
    for log in "$work"/server-*.log; do [ -f "$log" ] && tail -20 "$log" | sed 's/^/    server: /' >&2; done
    exit 1
}

if [ ! -x "$venv/bin/st" ] || [ ! -f "$venv/.pinned-1" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"
    touch "$venv/.pinned-1"
fi

cargo build -q --bin aiida-rest
binary=target/debug/aiida-rest

# free_port and start
source "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"

# A copy of the fixture profile, so that nothing the server does can touch the fixture.
cp -r tests/fixtures/ref-profile "$work/profile"
rm -f "$work/profile"/database.sqlite-{wal,shm} "$work/profile"/container/packs.idx-{wal,shm}

start one "$work/profile"
one=$url
start several --database "archive=$root/examples/demo.aiida" --database "profile=$work/profile"
several=$url

# Test data: the dictionaries of real values that schemathesis mixes into what it generates (half
# of the identifiers, a third of the other values), so that answers about real nodes of each type
# are checked too, not only 404s: a node of each node type, the users, download formats, file
# names, orderings.
"$python" - "$one" >"$work/schemathesis.toml" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path) as answer:
        return json.load(answer)["data"]
by_type = {}
for node in get("/api/v4/nodes?limit=400&orderby=id")["nodes"]:
    by_type.setdefault(node["node_type"], node["uuid"])
uuids = sorted(by_type.values()) + [u[:8] for u in sorted(by_type.values())[:3]]
users = [str(u["id"]) for u in get("/api/v4/users")["users"]]
formats = sorted({f for fs in get("/api/v4/nodes/download_formats").values() for f in fs})
def strings(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"
print(f"""
[dictionaries.uuids]
values = {strings(uuids)}
[dictionaries.users]
values = {strings(users)}
[dictionaries.formats]
values = {strings(formats)}
[dictionaries.files]
values = {strings(['"aiida.in"', '"_aiidasubmit.sh"', '"sub"', '"sub/a.txt"', '""', "aiida.out"])}
[dictionaries.orderby]
values = {strings(["id", "-id", "+ctime", "-mtime,id", "label", "uuid", "node_type", "name", "first_name"])}

[parameters]
"path.id" = {{ dictionary = "uuids", probability = 0.5 }}
"query.download_format" = {{ dictionary = "formats", probability = 0.5 }}
"query.format" = {{ dictionary = "formats", probability = 0.5 }}
"query.filename" = {{ dictionary = "files", probability = 0.3 }}
"query.orderby" = {{ dictionary = "orderby", probability = 0.3 }}

# 501 Not Implemented is the answer for a download format this server does not produce (v4's
# mpl_pdf and mpl_png of bands, which need matplotlib) and for what v2 never offered for a node
# type (a download of kpoints, the visualization of a Dict); the documents list it for those
# operations only (status_code_conformance fails it anywhere else). Every other 5xx fails.
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "501"]

[[operations]]
include-path-regex = "^/users/"
parameters = {{ "path.id" = {{ dictionary = "users", probability = 0.5 }} }}
""")
PY

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
status=0
for document in "$one/api/v4/openapi.json" "$one/api/v2/openapi.json" "$several/profile/api/v4/openapi.json"; do
    echo "schemathesis_check: $document"
    # From the scratch folder: schemathesis keeps a cache (.schemathesis/) in the current one.
    if ! (cd "$work" && "$root/$venv/bin/st" --config-file "$work/schemathesis.toml" run "$document" \
        --checks "$checks" \
        --phases examples,coverage,fuzzing \
        --mode all \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --generation-database none \
        --workers 1 \
        --request-timeout 30 \
        --suppress-health-check all \
        --warnings off \
        --no-color) >"$work/st.log" 2>&1; then
        status=1
    fi
    # The summary, and any failure in full.
    if [ "$status" -ne 0 ]; then sed -n '/^=* *\(FAILURES\|ERRORS\)/,$p' "$work/st.log" | cut -c1-300 | head -200; else sed -n '/SUMMARY/,$p' "$work/st.log" | grep -vE '^\s*$|Test Phases|Examples|Coverage|Fuzzing|Stateful'; fi
    [ "$status" -eq 0 ] || fail "schemathesis found answers that contradict $document"
done
echo "schemathesis_check: 3 passed, 0 failed"
