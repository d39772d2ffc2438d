#!/usr/bin/env bash
# Runs optimade-validator (the Python package optimade 1.5.0, the specification's reference
# tools) against aiida-rest serving the demo archive, at the versioned and the unversioned base
# URL. Exits non-zero when the validator reports a failure.
#
#   bash tools/optimade_validate.sh            # venv in target/optimade-venv, debug binary
#   OPTIMADE_VENV=/path AIIDA_REST_BIN=target/release/aiida-rest bash tools/optimade_validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${OPTIMADE_VENV:-target/optimade-venv}
if ! "$venv/bin/python" -c 'import optimade, sys; sys.exit(optimade.__version__ != "1.5.0")' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'optimade==1.5.0'
fi

bin=${AIIDA_REST_BIN:-}
if [ -z "$bin" ]; then
    cargo build -q --bin aiida-rest
    bin=target/debug/aiida-rest
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"$bin" serve examples/demo.aiida --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/optimade/versions')" 2>/dev/null; then
        break
    fi
    sleep 0.2
done

status=0
for base in "http://127.0.0.1:$port/optimade/v1" "http://127.0.0.1:$port/optimade"; do
    echo "optimade-validator $base"
    if ! "$venv/bin/optimade-validator" "$base"; then
        status=1
    fi
done
if [ "$status" != 0 ]; then
    echo "optimade-validator reported failures; server log:" >&2
    tail -n 50 "$log" >&2
fi
exit "$status"
