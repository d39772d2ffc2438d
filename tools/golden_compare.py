#!/usr/bin/env python3
"""Replay golden answers (tests/fixtures/*.jsonl) against a running server over HTTP, e.g.
through a reverse proxy (tools/nginx_check.sh). Standard library only.

  tools/golden_compare.py --base http://127.0.0.1:8080 --golden tests/fixtures/v4.jsonl
  tools/golden_compare.py --base http://127.0.0.1:8080 --base-path /aiida --mount /django \
      --golden tests/fixtures/v4.jsonl

`--base-path` is the server's --base-url path, `--mount` the database's `/<name>`: each
request goes to BASE + BASE_PATH + MOUNT + path. Before the comparison, the absolute URLs and
Link targets lose BASE_PATH + MOUNT and the echoed paths lose MOUNT (a server under a base path
echoes the path below it, as Flask does under SCRIPT_NAME).

The rules are those of the test replay (tests/it/golden.rs):
  * reference answered 2xx  -> same status, same JSON body after normalising the host part of
    `url`/`url_root`, same X-Total-Count, same Link targets (rel -> path+query); binary
    answers: same bytes (sha256) and same Content-Disposition filename.
  * reference answered 4xx  -> any 4xx with a JSON body that has a "message" string.
  * reference answered 5xx  -> anything but 5xx.
  * "allow" entries: only "not 5xx"; "relax" loosens single JSON paths ("any", "superset",
    "unordered").
Prints one line per mismatch and a last line 'N passed, M failed'; exits 1 on any failure.
"""
import argparse
import base64
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


def fetch(base, method, path, body=None, timeout=60):
    url = base.rstrip('/') + path
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def header(headers, name):
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def summarize(status, headers, raw):
    ctype = header(headers, 'Content-Type') or ''
    entry = {
        'status': status,
        'content_type': ctype,
        'x_total_count': header(headers, 'X-Total-Count'),
        'link': header(headers, 'Link'),
        'content_disposition': header(headers, 'Content-Disposition'),
    }
    if 'json' in ctype:
        try:
            entry['json'] = json.loads(raw.decode('utf-8'), parse_constant=lambda c: c)
        except ValueError:
            entry['raw_b64'] = base64.b64encode(raw).decode()
    else:
        entry['sha256'] = hashlib.sha256(raw).hexdigest()
        entry['size'] = len(raw)
        if len(raw) <= 4096:
            entry['raw_b64'] = base64.b64encode(raw).decode()
    return entry


HOST_RE = re.compile(r'^https?://[^/]+')


def normalize(value, origin):
    """Replace scheme://host:port at the start of url-like strings."""
    if isinstance(value, dict):
        return {k: normalize(v, origin) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, origin) for v in value]
    if isinstance(value, str) and HOST_RE.match(value):
        return HOST_RE.sub('ORIGIN', value)
    return value


def parse_link(value):
    """Link header -> {rel: path?query}, tolerant of the reference's 'http:/host' quirk."""
    if not value:
        return {}
    links = {}
    for match in re.finditer(r'<([^>]*)>\s*;\s*rel="?([a-z]+)"?', value):
        target = re.sub(r'^https?:/+[^/]+', '', match.group(1))
        split = urllib.parse.urlsplit(target)
        query = urllib.parse.unquote(split.query)
        links[match.group(2)] = (urllib.parse.unquote(split.path), sorted(query.split('&')))
    return links


def canon_route(line):
    """An available_endpoints line with its methods sorted (the reference orders them at random)."""
    if not isinstance(line, str):
        return line
    parts = line.split()
    if len(parts) == 3:
        return f'{parts[0]} {",".join(sorted(parts[1].split(",")))} {parts[2]}'
    return line


def diff(a, b, path='$', relax=None):
    """First difference between two JSON values, as a readable string (None if equal)."""
    rule = (relax or {}).get(path)
    if rule == 'any':
        return None
    if rule == 'unordered':
        if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
            return f'{path}: expected a list of {len(a) if isinstance(a, list) else "?"} items'
        key = lambda x: json.dumps(x, sort_keys=True)
        return None if sorted(map(key, a)) == sorted(map(key, b)) else f'{path}: different items'
    if rule == 'superset':
        if not isinstance(b, list):
            return f'{path}: expected a list'
        have = {canon_route(x) for x in b}
        missing = [x for x in a if canon_route(x) not in have]
        return f'{path}: candidate lacks {missing[:3]!r}' if missing else None
    if isinstance(a, bool) or isinstance(b, bool):
        return None if (type(a) is type(b) and a == b) else f'{path}: {a!r} != {b!r}'
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b or (isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-12 * max(abs(a), abs(b))):
            return None
        return f'{path}: {a!r} != {b!r}'
    if type(a) is not type(b):
        return f'{path}: type {type(a).__name__} != {type(b).__name__} ({str(a)[:80]!r} vs {str(b)[:80]!r})'
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a:
                return f'{path}.{key}: missing in reference, candidate has {str(b[key])[:80]!r}'
            if key not in b:
                return f'{path}.{key}: missing in candidate'
            d = diff(a[key], b[key], f'{path}.{key}', relax)
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f'{path}: list length {len(a)} != {len(b)}'
        for i, (x, y) in enumerate(zip(a, b)):
            d = diff(x, y, f'{path}[{i}]', relax)
            if d:
                return d
        return None
    return None if a == b else f'{path}: {str(a)[:120]!r} != {str(b)[:120]!r}'


def unmount(got, strip_urls, strip_paths):
    """Take the prefixes a mounted database adds out of the candidate's answer: the first of
    `strip_urls` that fits from strings that are absolute URLs (after scheme://host), of
    `strip_paths` from the others (the echoed `path`), and `strip_urls[0]` from the Link
    targets."""
    def cut(rest, prefixes):
        for prefix in prefixes:
            if prefix and (rest == prefix or rest.startswith(prefix + '/')):
                return rest[len(prefix):]
        return None

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, str):
            m = HOST_RE.match(value)
            head = m.group(0) if m else ''
            rest = value[len(head):]
            cut_rest = cut(rest, strip_urls if m else strip_paths)
            if cut_rest is not None:
                return head + cut_rest
        return value
    got = dict(got)
    if 'json' in got:
        got['json'] = strip(got['json'])
    if got.get('link') and strip_urls[0]:
        pattern = r'<(https?:/+[^/>]+)?' + re.escape(strip_urls[0]) + '/'
        got['link'] = re.sub(pattern, lambda m: '<' + (m.group(1) or '') + '/', got['link'])
    return got


def check(entry, got):
    """Return None if compatible, else a reason string."""
    ref_status = entry['status']
    status = got['status']
    if entry.get('allow'):
        return None if status < 500 else f'status {status} (must not be 5xx; {entry["allow"]})'
    if ref_status >= 500:
        return None if status < 500 else f'status {status}: the reference failed here, the candidate must not'
    if 400 <= ref_status < 500:
        if not 400 <= status < 500:
            return f'status {status}, expected a 4xx like the reference ({ref_status})'
        body = got.get('json')
        if not (isinstance(body, dict) and isinstance(body.get('message'), str)):
            return 'a 4xx answer must be JSON with a "message" string'
        return None
    if status != ref_status:
        return f'status {status} != {ref_status}'
    if entry.get('x_total_count') != got.get('x_total_count'):
        return f'X-Total-Count {got.get("x_total_count")!r} != {entry.get("x_total_count")!r}'
    if parse_link(entry.get('link')) != parse_link(got.get('link')):
        return f'Link {got.get("link")!r} != {entry.get("link")!r}'
    if 'json' in entry:
        if 'json' not in got:
            return f'expected a JSON body, got content-type {got.get("content_type")!r}'
        d = diff(normalize(entry['json'], 'ORIGIN'), normalize(got['json'], 'ORIGIN'), relax=entry.get('relax'))
        return d
    if entry.get('sha256') and entry['sha256'] != got.get('sha256'):
        return f'body bytes differ (size {got.get("size")} vs {entry.get("size")})'
    ref_cd, cd = entry.get('content_disposition'), got.get('content_disposition')
    if ref_cd and ref_cd != cd:
        return f'Content-Disposition {cd!r} != {ref_cd!r}'
    return None


def compare(args):
    base_path = (args.base_path or '').rstrip('/')
    mount = (args.mount or '').rstrip('/')
    passed = failed = 0
    with open(args.golden) as golden:
        for line in golden:
            if not line.strip():
                continue
            entry = json.loads(line)
            try:
                status, headers, raw = fetch(args.base, entry['method'], base_path + mount + entry['path'], entry.get('body'))
            except Exception as err:  # a refused connection, a timeout: a failure, not a crash
                failed += 1
                print(f'FAIL {entry["method"]} {entry["path"]}\n     {type(err).__name__}: {err}')
                continue
            got = unmount(summarize(status, headers, raw), [base_path + mount, base_path], [mount])
            reason = check(entry, got)
            if reason is None:
                passed += 1
            else:
                failed += 1
                print(f'FAIL {entry["method"]} {entry["path"]}\n     {reason}')
    print(f'{passed} passed, {failed} failed')
    return 0 if failed == 0 and passed > 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--base', required=True, help='scheme://host:port of the server (or the proxy)')
    parser.add_argument('--golden', required=True, help='a golden file, tests/fixtures/v4.jsonl')
    parser.add_argument('--base-path', help="the server's --base-url path, e.g. /aiida")
    parser.add_argument('--mount', help='the database is served under this path, e.g. /django')
    return compare(parser.parse_args())


if __name__ == '__main__':
    sys.exit(main())
