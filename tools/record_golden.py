#!/usr/bin/env python3
"""Record golden answers from a running reference server into tests/fixtures/*.jsonl.

The reference is aiida-core's REST API (`verdi restapi`, or ../shared/tools/setup_reference.sh,
which serves tests/fixtures/ref-profile on port 5000). Standard library only.

  tools/record_golden.py --base http://127.0.0.1:5000 --append tests/fixtures/v4.jsonl \\
      '/api/v4/nodes?limit=3&orderby=-ctime' \\
      'POST /api/v4/querybuilder {"path":[{"entity_type":"","tag":"n"}],"limit":2}'
  tools/record_golden.py --base http://127.0.0.1:5000 --requests tests/fixtures/querybuilder-urls.txt \\
      --out tests/fixtures/querybuilder.jsonl

Requests come from the command line and/or a file (`--requests`), one per line:
`[METHOD ]/api/...path?query[ BODY]` (GET when no method; a POST's JSON body follows the path
after one space). Empty lines and lines starting with `#` are skipped, except two annotations
that apply to the next request of the file:

  #relax {"$.data.x": "unordered"}   loosen JSON paths of a 2xx answer ("any", "unordered",
                                     "superset"; see tests/it/golden.rs)
  #allow <reason>                    only "not a 5xx" is checked; the reason says why

Each answer becomes one JSON line with sorted keys: method, path, body (POST), status,
content_type, x_total_count, link, content_disposition, and the body as `json` (parsed), or
for other content types `sha256` and `size` (and `raw_b64` up to 4 KiB), plus the annotations.
`--append` skips requests the file already holds. Then replay them:

  GOLDEN='<part of the path>' cargo test --test it golden::

`--annotate GOLDEN --requests FILE` (no server needed) sets the `relax`/`allow` annotations of
the entries of GOLDEN to those the request file gives them now (entries are matched by method,
path and body; entries the file does not list are left as they are).
"""
import argparse
import base64
import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

METHODS = ('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH')
# Above this size a non-JSON body is kept only as its checksum and size.
RAW_LIMIT = 4096


def parse_requests(lines, origin):
    """(method, path, body, annotations) for every request of `lines`; `origin` names them in errors."""
    pending = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if line.startswith('#relax '):
            try:
                pending.setdefault('relax', {}).update(json.loads(line[len('#relax '):]))
            except ValueError as err:
                sys.exit(f'{origin}:{number}: #relax needs a JSON object: {err}')
            continue
        if line.startswith('#allow '):
            pending['allow'] = line[len('#allow '):].strip()
            continue
        if not line or line.startswith('#'):
            continue
        method, rest = 'GET', line
        first, _, tail = line.partition(' ')
        if first in METHODS:
            method, rest = first, tail.strip()
        path, body = rest, None
        if method == 'POST' and ' ' in rest:
            path, body = rest.split(' ', 1)
            body = body.strip()
            try:
                json.loads(body)
            except ValueError:
                # The reference's answer to a broken body is worth recording too; say so.
                print(f'{origin}:{number}: note: the body is not valid JSON', file=sys.stderr)
        if not path.startswith('/'):
            sys.exit(f'{origin}:{number}: a request is a path starting with /, not {path!r}')
        yield method, path, body, pending
        pending = {}
    if pending:
        sys.exit(f'{origin}: annotations at the end annotate no request')


def fetch(base, method, path, body, timeout):
    # The path is recorded as written; only what http.client refuses (controls, spaces,
    # non-ASCII) is percent-encoded on the wire.
    target = urllib.parse.quote(path, safe=''.join(chr(c) for c in range(0x21, 0x7f)))
    data = body.encode('utf-8') if body is not None else None
    request = urllib.request.Request(base.rstrip('/') + target, data=data, method=method)
    if data is not None:
        request.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def entry_for(method, path, body, status, headers, raw):
    content_type = headers.get('Content-Type') or ''
    entry = {
        'method': method,
        'path': path,
        'status': status,
        'content_type': content_type,
        'x_total_count': headers.get('X-Total-Count'),
        'link': headers.get('Link'),
        'content_disposition': headers.get('Content-Disposition'),
    }
    if body is not None:
        entry['body'] = body
    if 'json' in content_type:
        try:
            # NaN and Infinity (which Flask writes) stay as their text.
            entry['json'] = json.loads(raw.decode('utf-8'), parse_constant=lambda name: name)
        except ValueError:
            entry['raw_b64'] = base64.b64encode(raw).decode('ascii')
    else:
        entry['sha256'] = hashlib.sha256(raw).hexdigest()
        entry['size'] = len(raw)
        if len(raw) <= RAW_LIMIT:
            entry['raw_b64'] = base64.b64encode(raw).decode('ascii')
    return entry


def key(entry):
    return entry['method'], entry['path'], entry.get('body')


def annotate(path, requests):
    notes = {(method, request_path, body): notes for method, request_path, body, notes in requests}
    with open(path, encoding='utf-8') as golden:
        entries = [json.loads(line) for line in golden if line.strip()]
    changed = 0
    for entry in entries:
        if key(entry) not in notes:
            continue
        before = {name: entry.pop(name) for name in ('relax', 'allow') if name in entry}
        entry.update(notes[key(entry)])
        changed += before != notes[key(entry)]
    with open(path, 'w', encoding='utf-8', newline='\n') as out:
        out.writelines(json.dumps(entry, sort_keys=True) + '\n' for entry in entries)
    print(f'{changed} of {len(entries)} entries of {path} changed their annotations')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--base', help='the reference server, e.g. http://127.0.0.1:5000')
    parser.add_argument('--requests', help='a file of requests, one per line')
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--out', help='write a new golden file (replaces it)')
    target.add_argument('--append', help='add the answers to this golden file')
    target.add_argument('--annotate', help="copy the request file's annotations into this golden file")
    parser.add_argument('--timeout', type=float, default=60, help='seconds per request (default 60)')
    parser.add_argument('request', nargs='*', help='requests, in the format of the file lines')
    args = parser.parse_args(argv)

    requests = []
    if args.requests:
        with open(args.requests, encoding='utf-8') as lines:
            requests.extend(parse_requests(lines, args.requests))
    requests.extend(parse_requests(args.request, 'argument'))
    if not requests:
        parser.error('no requests: give some as arguments or with --requests')
    if args.annotate:
        return annotate(args.annotate, requests)
    if not args.base:
        parser.error('--base is needed to record')

    known = set()
    if args.append:
        try:
            with open(args.append, encoding='utf-8') as golden:
                known = {key(json.loads(line)) for line in golden if line.strip()}
        except FileNotFoundError:
            pass
    path = args.out or args.append
    recorded = skipped = 0
    with open(path, 'w' if args.out else 'a', encoding='utf-8', newline='\n') as out:
        for method, request_path, body, notes in requests:
            if (method, request_path, body) in known:
                print(f'already in {path}: {method} {request_path}', file=sys.stderr)
                skipped += 1
                continue
            try:
                status, headers, raw = fetch(args.base, method, request_path, body, args.timeout)
            except (OSError, ValueError) as err:
                sys.exit(f'{method} {request_path}: no answer from {args.base}: {err}')
            entry = entry_for(method, request_path, body, status, headers, raw)
            entry.update(notes)
            out.write(json.dumps(entry, sort_keys=True) + '\n')
            known.add(key(entry))
            recorded += 1
            print(f'{status} {method} {request_path}', file=sys.stderr)
    print(f'recorded {recorded} answers into {path}' + (f' ({skipped} already there)' if skipped else ''))


if __name__ == '__main__':
    main()
