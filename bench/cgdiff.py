#!/usr/bin/env python3
"""Instructions per request by function, from two runs of bench/callgrind.sh:

    bench/cgdiff.py [-i] OUT_N1 OUT_N2 N      (N = N2 - N1; -i: inclusive costs)

The 45 functions that cost most per request, exclusive of their callees unless -i."""
import re, subprocess, sys
inc = sys.argv[1] == '-i'
args = sys.argv[2:] if inc else sys.argv[1:]
a, b, n = args[0], args[1], int(args[2])
def load(f):
    out = subprocess.run(['callgrind_annotate', '--threshold=100', *(['--inclusive=yes'] if inc else []), f], capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+) \([^)]*\)\s+(.*)', line)
        if m and 'PROGRAM TOTALS' not in line:
            d[m.group(2)] = d.get(m.group(2), 0) + int(m.group(1).replace(',', ''))
    return d
da, db = load(a), load(b)
rows = sorted(((db.get(k, 0) - da.get(k, 0)) / n, k) for k in set(da) | set(db))
for v, k in rows[::-1][:45]:
    print(f"{v:10.0f}  {k[:170]}")
