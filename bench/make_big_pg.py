#!/usr/bin/env python3
"""Copy a core.sqlite_dos profile's database into PostgreSQL as a core.psql_dos database.

    bench/make_big_pg.py PROFILE_DIR --cluster DIR [--port N] [--db NAME]
    bench/make_big_pg.py PROFILE_DIR --url postgresql://USER@HOST:PORT/postgres [--db NAME]

PROFILE_DIR is a profile folder (database.sqlite + container/), for instance one made by
bench/make_big_profile.py; it is only read. The rows go into a new database NAME (default
`aiida_big`, dropped first if it exists) made with the schema aiida-core 2.9.4 creates
(tests/fixtures/psql_dos-schema.sql), on either

- `--cluster DIR`: a throwaway PostgreSQL cluster this script initialises in DIR/data (C locale,
  trust authentication, loopback only, fsync off) and starts on `--port` (default 5433),
  with the binaries of /usr/lib/postgresql/*/bin (or $PG_BIN), as the `postgres` (else `nobody`)
  account when run as root, as the test harness does. Stop it with the printed `pg_ctl` command
  and delete DIR when done. An already running cluster in DIR is reused.
- `--url`: an existing server, as a superuser's URL of its maintenance database.

Every table's rows are streamed out of SQLite and into `COPY ... FROM STDIN` (text format):
SQLite's naive UTC timestamps become timestamptz (`+00`), booleans t/f, JSON text is parsed
into jsonb and uuid text into uuid by PostgreSQL. The primary keys, indexes and foreign keys
of the schema are created after the rows (faster), sequences are set past the largest id, and
the database is ANALYZEd and VACUUMed (so index-only scans see an all-visible table). At the
end it prints the database's size and the command serving it (the profile's container is the
file repository). Needs python3 (standard library) and psql.
"""
import argparse
import os
import pwd
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SCHEMA = FIXTURES / "psql_dos-schema.sql"
# The tables, parents before children: the fixtures' PostgreSQL data is written in the same
# order from the same list.
sys.path.insert(0, str(FIXTURES))
sys.dont_write_bytecode = True  # no __pycache__ among the fixtures
from make_pg_data import TABLES  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def find_bin():
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    versions = sorted(
        (int(p.name), p / "bin") for p in Path("/usr/lib/postgresql").glob("*") if p.name.isdigit()
    )
    for _, b in reversed(versions):
        if (b / "initdb").is_file() and (b / "pg_ctl").is_file():
            return b
    sys.exit("no PostgreSQL server binaries under /usr/lib/postgresql (set PG_BIN)")


def server_account():
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
    sys.exit("running as root and there is no postgres or nobody account to run the server")


def start_cluster(directory: Path, port: int) -> str:
    """Initialises (once) and starts a cluster in DIRECTORY; returns the superuser's URL."""
    pg = find_bin()
    account = server_account()
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    data = directory / "data"

    def run(tool, *args):
        def demote():
            if account:
                os.setgid(account[1])
                os.setuid(account[0])

        subprocess.run([str(pg / tool), *args], check=True, cwd=directory, preexec_fn=demote,
                       env={**os.environ, "LC_ALL": "C"}, stdout=subprocess.DEVNULL)

    if account:
        os.chown(directory, *account)
    if not (data / "PG_VERSION").exists():
        log(f"initdb {data}")
        run("initdb", "-D", str(data), "--locale=C", "--encoding=UTF8", "--auth=trust", "-U", "postgres",
            "--no-sync")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{directory}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n"
                "shared_buffers = 256MB\nmaintenance_work_mem = 256MB\nmax_wal_size = 4GB\n"
            )
    if not (data / "postmaster.pid").exists():
        log(f"pg_ctl start (port {port})")
        run("pg_ctl", "start", "-D", str(data), "-l", str(directory / "server.log"), "-w", "-t", "120")
    else:
        log(f"a cluster is running in {data}: reusing it")
        ports = re.findall(r"^port\s*=\s*(\d+)", (data / "postgresql.conf").read_text(), re.M)
        port = int(ports[-1]) if ports else port
    stop = f"{pg / 'pg_ctl'} stop -D {data} -m fast"
    if account:
        stop = f"runuser -u {pwd.getpwuid(account[0]).pw_name} -- {stop}"
    print(f"# stop the cluster: {stop} && rm -rf {directory}", flush=True)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def with_database(url: str, name: str) -> str:
    base, sep, query = url.partition("?")
    head, _, rest = base.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{head}://{authority}/{name}" + (sep + query if sep else "")


def psql(url, sql=None, stdin=None, capture=False):
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]
    if capture:
        cmd += ["-A", "-t"]
    if sql is not None:
        cmd += ["-c", sql]
    out = subprocess.run(cmd, input=stdin, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return out.stdout.strip() if capture else None


def schema_parts():
    """The dump's statements before the first constraint (tables, sequences, defaults) and after
    (primary keys, unique constraints, indexes, foreign keys)."""
    lines = [line for line in SCHEMA.read_text().splitlines() if not line.startswith("\\")]
    text = "\n".join(lines) + "\n"
    cut = re.search(r"^-- Name: [^\n]*; Type: CONSTRAINT;", text, re.M)
    if not cut:
        sys.exit(f"{SCHEMA}: no constraint section found")
    # The comment block starts two lines earlier ("--" then "-- Name:").
    start = text.rfind("--\n", 0, cut.start())
    return text[:start], text[start:]


def escape(value: str) -> str:
    if "\x00" in value:
        raise ValueError("PostgreSQL text cannot hold NUL characters")
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def converters(sq, table):
    out = []
    for _, name, declared, *_ in sq.execute(f'PRAGMA table_info("{table}")'):
        kind = re.sub(r"\(.*", "", declared or "").upper()
        if kind == "DATETIME":
            conv = lambda v: escape(str(v)) + "+00"  # naive UTC text
        elif kind == "BOOLEAN":
            conv = lambda v: "t" if v else "f"
        elif kind in ("INTEGER", "BIGINT", "SMALLINT"):
            conv = lambda v: str(int(v))
        elif kind in ("FLOAT", "REAL"):
            conv = repr
        else:
            conv = lambda v: escape(v if isinstance(v, str) else str(v))
        out.append((name, conv))
    return out


def copy_table(sq, url, table):
    cols = converters(sq, table)
    names = ", ".join(f'"{n}"' for n, _ in cols)
    order = "id" if any(n == "id" for n, _ in cols) else "1"
    proc = subprocess.Popen(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
         f"COPY public.{table} ({names}) FROM STDIN"],
        stdin=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1 << 20,
    )
    n = 0
    convs = [c for _, c in cols]
    write = proc.stdin.write
    cur = sq.execute(f'SELECT * FROM "{table}" ORDER BY {order}')
    while True:
        rows = cur.fetchmany(5000)
        if not rows:
            break
        write("".join(
            "\t".join("\\N" if v is None else c(v) for v, c in zip(row, convs)) + "\n" for row in rows
        ))
        n += len(rows)
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit(f"COPY into {table} failed")
    return n, order == "id"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile", type=Path, help="core.sqlite_dos profile folder (read only)")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--cluster", type=Path, help="start (and initialise) a cluster in this directory")
    where.add_argument("--url", help="a superuser's URL of an existing server's maintenance database")
    ap.add_argument("--port", type=int, default=5433, help="the cluster's port (with --cluster)")
    ap.add_argument("--db", default="aiida_big", help="database name (dropped and made again)")
    args = ap.parse_args()
    source = args.profile.resolve() / "database.sqlite"
    if not source.is_file():
        sys.exit(f"{args.profile} is not a core.sqlite_dos profile folder (no database.sqlite)")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db):
        sys.exit("--db: lower-case letters, digits and _ only")
    t0 = time.monotonic()
    admin = start_cluster(args.cluster, args.port) if args.cluster else args.url
    url = with_database(admin, args.db)
    psql(admin, f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)")
    psql(admin, f"CREATE DATABASE {args.db} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
    pre, post = schema_parts()
    psql(url, stdin=pre, capture=True)
    # Read only, and never a journal or lock file next to the user's data.
    sq = sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True)
    for table in TABLES:
        t = time.monotonic()
        n, has_id = copy_table(sq, url, table)
        log(f"{table}: {n} rows in {time.monotonic() - t:.1f} s")
        if has_id:
            psql(url, f"SELECT pg_catalog.setval('public.{table}_id_seq', COALESCE((SELECT max(id) FROM "
                      f"public.{table}), 1), (SELECT max(id) FROM public.{table}) IS NOT NULL)", capture=True)
    t = time.monotonic()
    psql(url, stdin="SET maintenance_work_mem = '256MB';\n" + post, capture=True)
    log(f"constraints and indexes in {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    psql(url, "VACUUM (ANALYZE)")
    log(f"VACUUM ANALYZE in {time.monotonic() - t:.1f} s")
    size = psql(url, f"SELECT pg_size_pretty(pg_database_size('{args.db}'))", capture=True)
    nodes = psql(url, "SELECT count(*) FROM db_dbnode", capture=True)
    print(f"# {nodes} nodes, database {args.db}: {size}, made in {time.monotonic() - t0:.0f} s")
    container = args.profile.resolve() / "container"
    print(f"aiida-rest serve {shlex.quote(url)} --repository {shlex.quote(str(container))}")


if __name__ == "__main__":
    main()
