#!/usr/bin/env bash
# The landing page in a real browser: starts the server (the debug build) twice, with one
# storage (the fixture profile) and with several databases (the demo archive, the profile, and an
# entry that cannot open), renders `/` in headless Chromium, and checks the rendered page:
#   - it lists every database, with a node count (the one of /nodes/statistics), and the broken
#     one with its 503 message;
#   - every link on it answers 200 (local links; the explorers' links, which leave this machine,
#     are checked for their form: the app's URL with ?api_url= / ?base_url= naming the API root);
#   - the documentation pages it links to render in Chromium too, and list the endpoints.
# A screenshot of each landing page goes to target/landing-check/.
#
#   bash tools/landing_check.sh
#
# Needs chromium (`apt-get install -y chromium`; CHROMIUM names another executable).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

python=${PYTHON:-python3}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "landing_check: FAILED: no chromium (apt-get install -y chromium)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/aiida-rest-landing.XXXXXX")
shots=target/landing-check
mkdir -p "$shots"
servers=()
cleanup() {
    for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "landing_check: FAILED: $*" >&2
    for log in "$work"/server-*.log; do [ -f "$log" ] && tail -20 "$log" | sed 's/^/    server: /' >&2; done
    exit 1
}

cargo build -q --bin aiida-rest
binary=target/debug/aiida-rest

# free_port and start
source "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"

# Renders `url` in headless Chromium: the DOM after rendering to $2, a screenshot to $3 (optional).
render() {
    local url=$1 dom=$2 shot=${3:-}
    local profile; profile=$(mktemp -d "$work/chromium.XXXXXX")
    local flags=(--headless --no-sandbox --disable-gpu --no-first-run --disable-extensions
        --disable-background-networking --disable-component-update --user-data-dir="$profile")
    timeout 60 "$chromium" "${flags[@]}" --dump-dom "$url" >"$dom" 2>"$work/chromium.log" \
        || { tail -5 "$work/chromium.log" >&2; fail "chromium could not render $url"; }
    if [ -n "$shot" ]; then
        timeout 60 "$chromium" "${flags[@]}" --window-size=1200,800 --screenshot="$root/$shot" "$url" \
            >/dev/null 2>>"$work/chromium.log" || fail "chromium could not take a screenshot of $url"
        [ -s "$shot" ] || fail "empty screenshot of $url"
    fi
}

cp -r tests/fixtures/ref-profile "$work/profile"
rm -f "$work/profile"/database.sqlite-{wal,shm} "$work/profile"/container/packs.idx-{wal,shm}
printf 'not a zip' >"$work/broken.aiida"

start one "$work/profile"
one=$url
start several --database "archive=$root/examples/demo.aiida" --database "profile=$work/profile" \
    --database "broken=$work/broken.aiida"
several=$url

passed=0
# check BASE NAME... : the rendered landing page of the server at BASE lists the databases NAME
# (`-` for the one storage of a single-storage server; `!NAME` for one that cannot open).
check() {
    local base=$1 label=$2; shift 2
    render "$base/" "$work/landing.html" "$shots/landing-$label.png"
    "$python" - "$base" "$work/landing.html" "$work" "$@" <<'PY' || fail "the landing page of $base ($label)"
import html.parser, json, subprocess, sys, urllib.error, urllib.parse, urllib.request

base, page, work, expected = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

class Page(html.parser.HTMLParser):
    """The rows of the databases table (their text, state and links), and every link."""
    def __init__(self):
        super().__init__()
        self.rows, self.links, self.row = [], [], None
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and attrs.get("class") == "database":
            self.row = {"state": attrs.get("data-state"), "text": "", "links": []}
            self.rows.append(self.row)
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
            if self.row is not None:
                self.row["links"].append(attrs["href"])
        if tag in ("script", "link", "img", "iframe"):
            raise SystemExit(f"the page loads an asset: <{tag} {attrs}>")
    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
    def handle_data(self, data):
        if self.row is not None:
            self.row["text"] += data

parsed = Page()
parsed.feed(open(page, encoding="utf-8").read())
assert len(parsed.rows) == len(expected), f"{len(parsed.rows)} databases listed, expected {expected}"

def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

for name, row in zip(expected, parsed.rows):
    broken = name.startswith("!")
    name = name.lstrip("!")
    if name != "-":
        assert name in row["text"], f"{name} not in row {row['text']!r}"
    if broken:
        assert row["state"] == "unavailable" and "503" in row["text"], row
        continue
    api = "/api/v4" if name == "-" else f"/{name}/api/v4"
    status, body = get(base + api + "/nodes/statistics")
    total = json.loads(body)["data"]["total"]
    assert row["state"] == "ok" and str(total) in row["text"], f"{name}: {total} nodes? {row['text']!r}"
    explorers = [l for l in row["links"] if l.startswith("https://")]
    root = urllib.parse.quote(base + api, safe="")
    assert f"https://aiidateam.github.io/aiida-explorer/?api_url={root}" in explorers, explorers
    assert f"https://www.materialscloud.org/explore/ownrestapi?base_url={root}" in explorers, explorers

# The local links are relative (they hold under a proxy's sub-path): resolved against the page.
local = sorted({urllib.parse.urljoin(base + "/", l)[len(base):] for l in parsed.links if not l.startswith(("https://", "#"))})
assert len(local) >= 6 * sum(1 for e in expected if not e.startswith("!")), local
for link in local:
    status, body = get(base + link)
    assert status == 200, f"{link} answers {status}: {body[:200]!r}"
    if link.endswith("/docs"):
        # The documentation page, rendered by the browser too.
        out = f"{work}/docs.html"
        subprocess.run(["bash", "-c", f'timeout 60 "$CHROMIUM_BIN" --headless --no-sandbox --disable-gpu '
                        f'--user-data-dir="{work}/docs-profile" --dump-dom "{base + link}" > "{out}" 2>/dev/null'],
                       check=True)
        docs = open(out, encoding="utf-8").read()
        assert "<h2>Endpoints</h2>" in docs and "/nodes/" in docs, f"{link} did not render"
print(f"landing_check: {base}: {len(parsed.rows)} databases, {len(local)} local links answer 200")
PY
    passed=$((passed + 1))
}

export CHROMIUM_BIN=$chromium
check "$one" one -
check "$several" several archive profile '!broken'
echo "landing_check: $passed passed, 0 failed"
