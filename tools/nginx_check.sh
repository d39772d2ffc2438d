#!/usr/bin/env bash
# The nginx configurations of docs/deploy.md, exercised: nginx (from the distribution's
# packages; install it with `apt-get install -y nginx`) runs the two configuration blocks
# marked `<!-- nginx_check: root -->` and `<!-- nginx_check: subpath -->` as the page shows
# them (only the ports are changed, to free ones), in front of aiida-rest, and the golden
# answers (tests/fixtures/*.jsonl) are replayed through the proxy:
#   - at the root: one archive, /api/v4/...;
#   - under /aiida/ (aiida-rest with --base-url /aiida): two databases, /aiida/django/api/v4/...
#     and /aiida/sqlalchemy/api/v4/... (the seed document's URLs), the default one at /aiida/api/v4.
# Exits non-zero on any failure. Uses target/debug/aiida-rest (built if missing), or $AIIDA_REST_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "nginx_check: nginx is not installed (apt-get install -y nginx)" >&2
    exit 1
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
BIN=${AIIDA_REST_BIN:-target/debug/aiida-rest}
if [ ! -x "$BIN" ]; then
    cargo build -q --bin aiida-rest
fi

work=$(mktemp -d /tmp/aiida-rest-nginx.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    if [ -f "$work/nginx.pid" ]; then
        kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The fenced block after `<!-- nginx_check: NAME -->` in docs/deploy.md.
block() {
    python3 - "$1" <<'EOF'
import re, sys
text = open('docs/deploy.md').read()
match = re.search(r'<!-- nginx_check: ' + re.escape(sys.argv[1]) + r' -->\s*```nginx\n(.*?)```', text, re.S)
if not match:
    sys.exit(f'docs/deploy.md has no nginx block marked {sys.argv[1]}')
print(match.group(1))
EOF
}

wait_for() {
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nginx_check: $1 does not answer" >&2
    return 1
}

root_app=$(free_port)
sub_app=$(free_port)
"$BIN" serve -H 127.0.0.1 -P "$root_app" examples/demo.aiida 2>"$work/root.log" &
pids+=($!)
printf '[[database]]\nname = "django"\nstorage = "%s"\ndefault = true\n[[database]]\nname = "sqlalchemy"\nstorage = "%s"\n' \
    "$PWD/examples/demo.aiida" "$PWD/tests/fixtures/ref-profile" >"$work/aiida-rest.toml"
"$BIN" serve -H 127.0.0.1 -P "$sub_app" --base-url /aiida --config "$work/aiida-rest.toml" 2>"$work/sub.log" &
pids+=($!)

root_proxy=$(free_port)
sub_proxy=$(free_port)
{
    echo "worker_processes 1;"
    echo "pid $work/nginx.pid;"
    echo "error_log $work/error.log;"
    echo "events { worker_connections 512; }"
    echo "http {"
    echo "    access_log $work/access.log;"
    for temp in client_body proxy fastcgi uwsgi scgi; do
        echo "    ${temp}_temp_path $work/$temp;"
    done
    block root | sed -e "s/listen 80;/listen 127.0.0.1:$root_proxy;/" -e "s/127\.0\.0\.1:5000/127.0.0.1:$root_app/"
    block subpath | sed -e "s/listen 80;/listen 127.0.0.1:$sub_proxy;/" -e "s/127\.0\.0\.1:5000/127.0.0.1:$sub_app/" \
        -e "s/aiida_rest\b/aiida_rest_subpath/g"
    echo "}"
} >"$work/nginx.conf"

wait_for "http://127.0.0.1:$root_app/health"
wait_for "http://127.0.0.1:$sub_app/aiida/health"
"$NGINX" -t -q -p "$work" -c "$work/nginx.conf"
"$NGINX" -p "$work" -c "$work/nginx.conf"
wait_for "http://127.0.0.1:$root_proxy/health"

status=0
run() {
    echo "nginx_check: golden_compare.py $*"
    local out
    if out=$(python3 tools/golden_compare.py "$@"); then
        echo "$out" | tail -n 1
    else
        echo "$out" | tail -n 20
        status=1
    fi
}
for golden in tests/fixtures/v4.jsonl tests/fixtures/querybuilder.jsonl; do
    run --base "http://127.0.0.1:$root_proxy" --golden "$golden"
    run --base "http://127.0.0.1:$sub_proxy" --base-path /aiida --golden "$golden"
    run --base "http://127.0.0.1:$sub_proxy" --base-path /aiida --mount /django --golden "$golden"
    run --base "http://127.0.0.1:$sub_proxy" --base-path /aiida --mount /sqlalchemy --golden "$golden"
done

# What the proxy adds: the request id reaches aiida-rest and comes back; the seed's URLs; the
# sub-path's answers name it; /metrics is refused to others than the local network.
check() {
    if [ "$2" != "$3" ]; then
        echo "nginx_check: FAIL $1: got '$2', expected '$3'" >&2
        status=1
    else
        echo "nginx_check: ok $1"
    fi
}
id=$(curl -sS -D - -o /dev/null "http://127.0.0.1:$root_proxy/api/v4/server" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-request-id" {print $2}')
[[ $id =~ ^[0-9a-f]{32}$ ]] && id_ok=yes || id_ok=no
check "nginx's request id ($id) echoed by aiida-rest" "$id_ok" "yes"
check "/aiida/django/api/v2/computers" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$sub_proxy/aiida/django/api/v2/computers")" "200"
check "/aiida/sqlalchemy/api/v2/computers" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$sub_proxy/aiida/sqlalchemy/api/v2/computers")" "200"
root=$(curl -s "http://127.0.0.1:$sub_proxy/aiida/api/v4/server" | python3 -c 'import json, sys; print(json.load(sys.stdin)["url_root"])')
check "url_root under the sub-path" "$root" "http://127.0.0.1:$sub_proxy/aiida/"
check "/aiida redirects to /aiida/" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$sub_proxy/aiida")" "301"
check "/metrics through the proxy" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$root_proxy/metrics")" "200"

if [ "$status" -ne 0 ]; then
    echo "nginx_check: FAILED (nginx error log: $(tail -n 5 "$work/error.log" 2>/dev/null))" >&2
    exit 1
fi
echo "nginx_check: all passed"
