#!/usr/bin/env bash
# The Python package, end to end: builds the manylinux wheel (the command README.md documents),
# installs it into a fresh virtual environment that has only pip, and runs `aiida-rest serve` from
# there on
#   1. the fixture archive examples/demo.aiida, named on the command line;
#   2. nothing, with an AIIDA_PATH that holds no configuration: the demo archive;
#   3. nothing, with an AIIDA_PATH whose config.json has a default core.sqlite_dos profile
#      (tests/fixtures/ref-profile): that profile.
# Each is checked by one request, /api/v4/nodes?limit=1 -> 200 and JSON, and by the startup log
# line. The build tools (maturin, ziglang) come from the package index into target/wheel-tools;
# the build reuses cargo's target folder, so a second run only relinks what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS

unset AIIDA_REST_PROFILE AIIDA_REST_HOST AIIDA_REST_PORT
python=${PYTHON:-python3}
tools=target/wheel-tools
work=$(mktemp -d "${TMPDIR:-/tmp}/aiida-rest-wheel.XXXXXX")
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "test_wheel: FAILED: $*" >&2
    [ -f "$work/server.log" ] && sed 's/^/    server: /' "$work/server.log" >&2
    exit 1
}

# Build tools, pinned: maturin builds the wheel, zig links it against glibc 2.17 (manylinux2014).
if [ ! -x "$tools/bin/maturin" ] || [ ! -f "$tools/.pinned-1" ]; then
    rm -rf "$tools"
    "$python" -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check "maturin==1.16.0" "ziglang==0.17.1"
    touch "$tools/.pinned-1"
fi

echo "test_wheel: building the wheel"
build_start=$SECONDS
if ! PATH="$root/$tools/bin:$PATH" nice -n 10 maturin build --release --zig --compatibility manylinux2014 \
    --out "$work/dist" >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    fail "maturin build"
fi
grep -v '^ *Compiling ' "$work/build.log" | tail -5
build_time=$((SECONDS - build_start))
wheel=$(ls "$work"/dist/*.whl)
case "$wheel" in
    *manylinux_2_17_x86_64*) ;;
    *) fail "the wheel is not tagged manylinux_2_17: $wheel" ;;
esac

# A fresh environment with only pip; --no-index proves the wheel needs nothing else.
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check --no-index "$wheel"
bin="$work/venv/bin/aiida-rest"
[ -x "$bin" ] || fail "the wheel put no aiida-rest into the environment's bin/"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
"$bin" --version | grep -qx "aiida-rest $version" || fail "aiida-rest --version is not $version"
glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
[ "$(printf '%s\n' "$glibc" GLIBC_2.17 | sort -V | tail -1)" = GLIBC_2.17 ] ||
    fail "the binary needs $glibc, more than manylinux2014's GLIBC_2.17"
size=$(stat -c %s "$bin")

# serve NAME EXPECTED-LOG [ARG...]: starts the installed server (environment from the caller),
# checks the startup log line and one answer, stops it.
serve() {
    local name=$1 expected=$2
    shift 2
    : >"$work/server.log"
    "$bin" serve "$@" --host 127.0.0.1 --port 0 </dev/null >/dev/null 2>"$work/server.log" &
    server=$!
    local address=""
    for _ in $(seq 1 300); do
        address=$(sed -n 's|.*REST API running on http://\([^/ ]*\).*|\1|p' "$work/server.log" | head -1)
        [ -n "$address" ] && break
        kill -0 "$server" 2>/dev/null || fail "$name: the server stopped"
        sleep 0.1
    done
    [ -n "$address" ] || fail "$name: the server did not start within 30 s"
    grep -qF "$expected" "$work/server.log" || fail "$name: the log does not say it serves $expected"
    "$work/venv/bin/python" - "http://$address/api/v4/nodes?limit=1" <<'EOF' || fail "$name: bad answer"
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=30) as r:
    assert r.status == 200, r.status
    assert r.headers["Content-Type"].startswith("application/json"), r.headers["Content-Type"]
    body = json.load(r)
    assert len(body["data"]["nodes"]) == 1, body
EOF
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
    echo "test_wheel: ok: $name"
}

mkdir -p "$work/none" "$work/aiida/.aiida"
AIIDA_PATH="$work/none" serve "the archive named" "archive $root/examples/demo.aiida" "$root/examples/demo.aiida"
AIIDA_PATH="$work/none" serve "no configuration" "the demo archive built into the program"

"$python" - "$work/aiida/.aiida/config.json" "$root/tests/fixtures/ref-profile" <<'EOF'
import json, sys
config = {
    "CONFIG_VERSION": {"CURRENT": 9, "OLDEST_COMPATIBLE": 9},
    "default_profile": "fixture",
    "profiles": {
        "other": {"storage": {"backend": "core.sqlite_dos", "config": {"filepath": "/nonexistent"}}},
        "fixture": {"storage": {"backend": "core.sqlite_dos", "config": {"filepath": sys.argv[2]}}},
    },
}
with open(sys.argv[1], "w") as f:
    json.dump(config, f, indent=4)
EOF
AIIDA_PATH="$work/aiida" serve "the default profile" "the default profile 'fixture' of $work/aiida/.aiida/config.json"

echo "test_wheel: $(basename "$wheel"), binary $size bytes, needs $glibc; build ${build_time} s, all $((SECONDS - start)) s"
