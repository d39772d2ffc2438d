#!/usr/bin/env python3
"""Check the layering of src/: the rules of ARCHITECTURE.md that the compiler does not enforce.

  tools/check_layers.py [--src DIR] [--verbose] [--allow-failure]

Lists, each with file:line:
  * references between the top-level modules of src/ (`crate::x`, `use crate::{x, ...}`,
    `super::` paths that reach the crate root) that do not point down the layers:
        http -> query, export, model (and storage)
        query -> storage, model          export -> storage, model
        storage -> model                 model -> nothing
  * import cycles between top-level modules (every reference that takes part in one);
  * SQL text (string literals with SELECT, FROM, WHERE, JOIN, ORDER BY or GROUP BY in capitals)
    and `Dialect::` branches in src/http: SQL belongs to the query layer;
  * axum in src/query and src/storage: the web framework belongs to the http layer.
Ends with the count; exits 1 if there is any violation (0 with --allow-failure).

References from http to storage skip the query layer; they are allowed and only counted
(`--verbose` lists them).
Comments are ignored; so are `#[cfg(test)]` modules only in that they are read like any code.
Standard library only.
"""
import argparse
import os
import re
import sys

# Which top-level modules each one may use: the arrows point down only.
ALLOWED = {
    'http': {'query', 'export', 'model', 'storage'},
    'query': {'storage', 'model'},
    'export': {'storage', 'model'},
    'storage': {'model'},
    'model': set(),
}
# Allowed, but counted: these skip a layer.
SKIPS = {('http', 'storage')}
# Where SQL and dialect branches must not be, and where the web framework must not be.
NO_SQL = ('http',)
NO_WEB = ('query', 'storage')
WEB_CRATES = ('axum',)

SQL_WORDS = re.compile(r'\b(SELECT|FROM|WHERE|JOIN|ORDER BY|GROUP BY)\b')
IDENT = r'[A-Za-z_][A-Za-z0-9_]*'


def lex(text):
    """(code, strings): `code` is `text` with comments and the insides of string and char
    literals blanked (newlines kept, so offsets keep their lines); `strings` lists
    (offset, content) of every string literal."""
    out = list(text)
    strings = []
    i, n = 0, len(text)

    def blank(start, end):
        for k in range(start, end):
            if out[k] != '\n':
                out[k] = ' '

    def ident_before(k):
        return k > 0 and (text[k - 1].isalnum() or text[k - 1] == '_')

    while i < n:
        c = text[i]
        if text.startswith('//', i):
            end = text.find('\n', i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif text.startswith('/*', i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith('/*', j):
                    depth, j = depth + 1, j + 2
                elif text.startswith('*/', j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in 'rbc' and not ident_before(i) and re.match(r'(?:b|c)?r#*"', text[i:i + 300]):
            m = re.match(r'(?:b|c)?r(#*)"', text[i:])
            start = i + m.end()
            close = '"' + m.group(1)
            end = text.find(close, start)
            end = n if end < 0 else end
            strings.append((i, text[start:end]))
            blank(start, end)
            i = end + len(close)
        elif c == '"' or (c in 'bc' and not ident_before(i) and text.startswith('"', i + 1)):
            start = i + (1 if c == '"' else 2)
            j = start
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            strings.append((i, text[start:j]))
            blank(start, j)
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if text.startswith('\\', i + 1):
                j = i + 3
                while j < n and text[j] != "'":
                    j += 1
                blank(i + 1, j)
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                blank(i + 1, i + 2)
                i += 3
            else:
                i += 1
        else:
            i += 1
    return ''.join(out), strings


def line_of(text, offset):
    return text.count('\n', 0, offset) + 1


def group_items(code, start):
    """Offsets and first identifiers of the items of the `{...}` group opening at `start`."""
    items, depth, j, expect = [], 0, start, True
    while j < len(code):
        c = code[j]
        if c == '{':
            depth += 1
            expect = depth == 1
            j += 1
        elif c == '}':
            depth -= 1
            j += 1
            if depth == 0:
                break
        elif c == ',':
            expect = depth == 1
            j += 1
        elif c.isspace():
            j += 1
        else:
            m = re.compile(IDENT).match(code, j)
            if m:
                if expect:
                    items.append((j, m.group(0)))
                    expect = False
                j = m.end()
            else:
                expect = False if c not in ':' else expect
                j += 1
    return items


def references(code, module_path, modules):
    """(offset, target module, what) for every reference to another top-level module."""
    found = []
    for m in re.finditer(r'(?<![A-Za-z0-9_])(?<!in )\$?crate::(?:(' + IDENT + r')|(\{))', code):
        if m.group(1):
            found.append((m.start(1), m.group(1)))
        else:
            found.extend(group_items(code, m.start(2)))
    for m in re.finditer(r'(?<![A-Za-z0-9_:])((?:super::)+)(?:(' + IDENT + r')|(\{))', code):
        ups = m.group(1).count('super::')
        if ups != len(module_path):
            continue  # stays inside the module, or (inline modules) cannot be told here
        if m.group(2):
            found.append((m.start(2), m.group(2)))
        else:
            found.extend(group_items(code, m.start(3)))
    own = module_path[0]
    return [(offset, target) for offset, target in found if target in modules and target != own]


def rust_files(src):
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            if name.endswith('.rs'):
                yield os.path.join(root, name)


def module_path(src, path):
    rel = os.path.relpath(path, src)[:-len('.rs')].split(os.sep)
    if rel[-1] == 'mod':
        rel.pop()
    return rel


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--src', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src'))
    parser.add_argument('--verbose', action='store_true', help='also list the references that skip a layer')
    parser.add_argument('--allow-failure', action='store_true', help='report, but exit 0')
    args = parser.parse_args(argv)
    src = os.path.normpath(args.src)
    shown = lambda path: os.path.relpath(path)

    modules = set()
    for name in os.listdir(src):
        if os.path.isdir(os.path.join(src, name)):
            modules.add(name)
        elif name.endswith('.rs') and name not in ('lib.rs', 'main.rs'):
            modules.add(name[:-3])

    edges = {}  # (from, to) -> [(file, line, text)]
    sql, dialect, web = [], [], []
    for path in rust_files(src):
        mod_path = module_path(src, path)
        if mod_path in (['lib'], ['main']):
            continue
        top = mod_path[0]
        with open(path, encoding='utf-8') as f:
            text = f.read()
        code, strings = lex(text)
        lines = text.split('\n')
        for offset, target in references(code, mod_path, modules):
            line = line_of(code, offset)
            edges.setdefault((top, target), []).append((path, line, lines[line - 1].strip()))
        if top in NO_SQL:
            for offset, content in strings:
                if SQL_WORDS.search(content):
                    sql.append((path, line_of(text, offset), ' '.join(content.split())))
            for m in re.finditer(r'\bDialect::' + IDENT, code):
                dialect.append((path, line_of(code, m.start()), m.group(0)))
        if top in NO_WEB:
            for crate in WEB_CRATES:
                for m in re.finditer(r'(?<![A-Za-z0-9_:])' + crate + r'\b(?=\s*(::|;|\{| as ))', code):
                    line = line_of(code, m.start())
                    web.append((path, line, lines[line - 1].strip()))

    upward, skips, unknown = [], [], []
    for (a, b), refs in sorted(edges.items()):
        if a not in ALLOWED or b not in ALLOWED:
            unknown.extend((p, l, f'{a} -> {b}: a module the layer table does not know ({t})') for p, l, t in refs)
        elif b not in ALLOWED[a]:
            upward.extend((p, l, f'{a} -> {b}: {t}') for p, l, t in refs)
        elif (a, b) in SKIPS:
            skips.extend((p, l, f'{a} -> {b}: {t}') for p, l, t in refs)

    # Modules that reach each other through references: one strongly connected component each.
    reach = {m: {b for (a, b) in edges if a == m} for m in modules}
    changed = True
    while changed:
        changed = False
        for m in modules:
            more = set().union(*(reach[x] for x in reach[m])) if reach[m] else set()
            if not more <= reach[m]:
                reach[m] |= more
                changed = True
    cycles = []
    seen = set()
    for m in sorted(modules):
        component = sorted({m} | {x for x in reach[m] if m in reach[x]})
        if len(component) > 1 and tuple(component) not in seen:
            seen.add(tuple(component))
            refs = [(p, l, f'{a} -> {b}: {t}') for (a, b), rs in sorted(edges.items())
                    if a in component and b in component for p, l, t in rs]
            cycles.append((component, refs))

    def section(title, items):
        if items:
            print(f'{title}:')
            for path, line, what in items:
                print(f'  {shown(path)}:{line}: {what}')

    rules = '; '.join(f'{a} -> {", ".join(sorted(b)) or "nothing"}' for a, b in ALLOWED.items())
    section(f'references that do not point down the layers ({rules})', upward)
    section('references to unknown top-level modules', unknown)
    for component, refs in cycles:
        section(f'import cycle between {" <-> ".join(component)}', refs)
    section(f'SQL text in src/{"|".join(NO_SQL)} (SQL belongs to the query layer)', sql)
    section(f'Dialect branches in src/{"|".join(NO_SQL)}', dialect)
    section(f'{"/".join(WEB_CRATES)} in src/{", src/".join(NO_WEB)} (the web framework belongs to http)', web)
    if args.verbose:
        section('references that skip a layer (allowed)', skips)

    cycle_refs = sum(len(refs) for _, refs in cycles)
    counts = [
        (len(upward), 'references pointing up or sideways'),
        (len(unknown), 'references to unknown modules'),
        (len(cycles), f'import cycles ({cycle_refs} references)'),
        (len(sql), 'SQL texts in http'),
        (len(dialect), 'Dialect branches in http'),
        (len(web), 'web framework uses in query/storage'),
    ]
    total = len(upward) + len(unknown) + cycle_refs + len(sql) + len(dialect) + len(web)
    print(f'{total} violations: ' + ', '.join(f'{n} {what}' for n, what in counts))
    if skips and not args.verbose:
        print(f'({len(skips)} references skip a layer ({", ".join(f"{a} -> {b}" for a, b in sorted(SKIPS))}); '
              'allowed, --verbose lists them)')
    if total and args.allow_failure:
        print('(--allow-failure: not failing)')
    return 1 if total and not args.allow_failure else 0


if __name__ == '__main__':
    sys.exit(main())
