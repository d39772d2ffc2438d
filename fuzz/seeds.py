#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the test fixtures: fuzz/corpus/<target>/.

Run from the repository root: python3 fuzz/seeds.py
"""
import hashlib
import io
import os
import struct
import zipfile
import zlib

BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(BASE, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def requests(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


for line in list(requests("tests/fixtures/v4-urls.txt")) + list(requests("tests/fixtures/querybuilder-urls.txt")):
    if line.startswith("POST "):
        parts = line.split(" ", 2)
        if len(parts) == 3:
            put("querybuilder", parts[2])
        continue
    path, _, query = line.split(" ")[0].partition("?")
    put("routes", path)
    if query:
        put("querystring", query)

# pack_index: flag byte (bit 0: 8-byte numbers), offset, length, size, compressed, pack bytes.
put("pack_index", bytes([0]) + struct.pack("<hhh", 0, 5, 5) + bytes([0]) + b"hello")
packed = zlib.compress(b"hello world" * 10)
put("pack_index", bytes([0]) + struct.pack("<hhh", 0, len(packed), 110) + bytes([1]) + packed)

buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as archive:
    archive.writestr("metadata.json", "{}")
    archive.writestr("repo/" + "a" * 64, "content")
    archive.writestr(zipfile.ZipInfo("repo/" + "b" * 64), b"x" * 100, compress_type=zipfile.ZIP_DEFLATED)
put("archive", buffer.getvalue())
with open("examples/demo.aiida", "rb") as f:
    put("archive", f.read())
