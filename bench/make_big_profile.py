#!/usr/bin/env python3
"""Make a large core.sqlite_dos profile folder for benchmarks, from the fixture profile.

    bench/make_big_profile.py OUT_DIR [NODES]     (default 1,000,000 nodes)

The fixture's nodes are copied over and over with new ids, uuids and ctimes (links are copied
along between the copies of their nodes), so every endpoint has realistic data to read. The
repository container is the fixture's (files are shared by key). Standard library only.
"""
import os
import shutil
import sqlite3
import sys
import uuid

out = sys.argv[1]
target = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
src = os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'ref-profile')
os.makedirs(out, exist_ok=True)
shutil.copy(os.path.join(src, 'database.sqlite'), os.path.join(out, 'database.sqlite'))
if not os.path.exists(os.path.join(out, 'container')):
    shutil.copytree(os.path.join(src, 'container'), os.path.join(out, 'container'))

db = sqlite3.connect(os.path.join(out, 'database.sqlite'))
db.create_function('new_uuid', 0, lambda: str(uuid.uuid4()))
base = db.execute('SELECT count(*), max(id) FROM db_dbnode').fetchone()
count, max_id = base
copies = max(0, (target - count) // count)
for i in range(1, copies + 1):
    offset = i * (max_id + 1)
    db.execute(
        '''INSERT INTO db_dbnode (id, uuid, node_type, process_type, label, description, ctime, mtime,
                                  attributes, extras, repository_metadata, dbcomputer_id, user_id)
           SELECT id + ?, new_uuid(), node_type, process_type, label, description,
                  datetime(ctime, '+' || ? || ' minutes'), datetime(mtime, '+' || ? || ' minutes'),
                  attributes, extras, repository_metadata, dbcomputer_id, user_id
           FROM db_dbnode WHERE id <= ?''',
        (offset, i, i, max_id),
    )
    db.execute(
        '''INSERT INTO db_dblink (input_id, output_id, label, type)
           SELECT input_id + ?, output_id + ?, label, type FROM db_dblink WHERE output_id <= ?''',
        (offset, offset, max_id),
    )
    if i % 100 == 0:
        db.commit()
        print(f'{(i + 1) * count} nodes', flush=True)
db.commit()
db.execute('ANALYZE')
db.commit()
print(db.execute('SELECT count(*) FROM db_dbnode').fetchone()[0], 'nodes,',
      db.execute('SELECT count(*) FROM db_dblink').fetchone()[0], 'links in', out)
