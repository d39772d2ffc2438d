# Shared by the tools/*_check.sh scripts (sourced): start aiida-rest on a free port.
# The caller sets $python, $work (a scratch folder), $binary, an array `servers` (the pids its
# exit trap stops) and a function `fail MESSAGE`.

# A free port on 127.0.0.1.
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts the server with the given arguments (in this shell, so that the exit trap stops it)
# and sets $url to its base URL once it answers.
start() {
    local name=$1; shift
    local port; port=$(free_port)
    AIIDA_PATH="$work/no-aiida" "$binary" serve --port "$port" "$@" >"$work/server-$name.log" 2>&1 &
    servers+=($!)
    for _ in $(seq 1 200); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port/health"; then
            url="http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.1
    done
    fail "the server ($name) did not start"
}
