#!/usr/bin/env python3
"""Make a core.sqlite_dos profile folder with many StructureData nodes, for the OPTIMADE
benchmark, from the fixture profile.

    bench/make_structures_profile.py OUT_DIR [STRUCTURES]     (default 100,000)

The fixture's nodes stay; STRUCTURES new StructureData nodes are added with random cells,
1 to 4 elements (a quarter of them silicates: Si and O with up to two more), 1 to 16 sites,
and one in twenty an alloy or vacancy kind. The same seed gives the same profile. The
repository container is the fixture's. Standard library only.
"""
import json
import os
import random
import shutil
import sqlite3
import sys
import uuid

out = sys.argv[1]
target = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
src = os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'ref-profile')
os.makedirs(out, exist_ok=True)
shutil.copy(os.path.join(src, 'database.sqlite'), os.path.join(out, 'database.sqlite'))
if not os.path.exists(os.path.join(out, 'container')):
    shutil.copytree(os.path.join(src, 'container'), os.path.join(out, 'container'))

ELEMENTS = ['H', 'Li', 'C', 'N', 'O', 'F', 'Na', 'Mg', 'Al', 'Si', 'P', 'S', 'Cl', 'K', 'Ca', 'Ti',
            'Fe', 'Co', 'Ni', 'Cu', 'Zn', 'Ga', 'Ge', 'Sr', 'Zr', 'Ag', 'Sn', 'Ba', 'La', 'Au']
rng = random.Random(20261206)


def structure():
    if rng.random() < 0.25:
        symbols = ['Si', 'O'] + rng.sample([e for e in ELEMENTS if e not in ('Si', 'O')], rng.randint(0, 2))
    else:
        symbols = rng.sample(ELEMENTS, rng.randint(1, 4))
    kinds = [{'name': s, 'symbols': [s], 'weights': [1.0], 'mass': 1.0} for s in symbols]
    if rng.random() < 0.05:
        a, b = rng.sample(ELEMENTS, 2)
        kinds.append({'name': 'alloy', 'symbols': [a, b], 'weights': [0.5, 0.4], 'mass': 2.0})
    a = rng.uniform(3, 8)
    cell = [[a, 0.0, 0.0], [rng.uniform(-1, 1), a, 0.0], [0.0, rng.uniform(-1, 1), a * rng.uniform(0.8, 1.5)]]
    nsites = max(len(kinds), rng.randint(1, 16))
    names = [k['name'] for k in kinds] + [rng.choice(kinds)['name'] for _ in range(nsites - len(kinds))]
    sites = [{'kind_name': n, 'position': [rng.uniform(0, a) for _ in range(3)]} for n in names]
    return {'cell': cell, 'pbc1': True, 'pbc2': True, 'pbc3': rng.random() < 0.9, 'kinds': kinds, 'sites': sites}


db = sqlite3.connect(os.path.join(out, 'database.sqlite'))
user = db.execute('SELECT min(id) FROM db_dbuser').fetchone()[0]
next_id = db.execute('SELECT max(id) FROM db_dbnode').fetchone()[0] + 1
rows = []
for i in range(target):
    when = f'2025-01-01 00:00:00.{i % 1000000:06d}'
    rows.append((next_id + i, str(uuid.UUID(int=rng.getrandbits(128), version=4)), 'data.core.structure.StructureData.',
                 None, f'bench structure {i}', '', when, when, json.dumps(structure()), '{}', '{}', None, user))
    if len(rows) == 10_000:
        db.executemany('INSERT INTO db_dbnode (id, uuid, node_type, process_type, label, description, ctime, mtime, '
                       'attributes, extras, repository_metadata, dbcomputer_id, user_id) '
                       'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', rows)
        rows = []
        print(f'{i + 1} structures', flush=True)
if rows:
    db.executemany('INSERT INTO db_dbnode (id, uuid, node_type, process_type, label, description, ctime, mtime, '
                   'attributes, extras, repository_metadata, dbcomputer_id, user_id) '
                   'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', rows)
db.commit()
db.execute('ANALYZE')
db.commit()
print(db.execute("SELECT count(*) FROM db_dbnode WHERE node_type = 'data.core.structure.StructureData.'").fetchone()[0],
      'StructureData nodes in', out)
