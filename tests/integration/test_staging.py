"""A staged dump gets the data positions that pg_dump, writing to a pipe, could not record,
so that `pg_restore --jobs` sizes the tables (largest first) and seeks to each one."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from backstop import archive
from backstop.connection import Connection
from backstop.tools import pg_tool

MADE_AT = slice(12, 12 + 7 * 5)  # the header's creation time: seven ints of 1 + 4 bytes


def dump(connection: Connection, *args: str) -> bytes:
    with connection.child_env() as env:
        return subprocess.run([pg_tool("pg_dump"), "--format=custom", "--compress=0",
                               f"--dbname={connection.conninfo()}", *args],
                              env=env, capture_output=True, check=True).stdout


def stage(stream: bytes, path: Path) -> bool:
    """As a restore stages a dump: fed in chunks of uneven sizes, then written."""
    reader = archive.Reader(find_blocks=True)
    generator = random.Random(5)  # reproducible chunk sizes
    at = 0
    while at < len(stream):
        size = generator.choice([1, 2, 13, 4096, 100_000])
        reader.feed(stream[at:at + size])
        at += size
    path.write_bytes(stream)
    return reader.place_blocks(path)


def test_a_staged_dump_is_what_pg_dump_writes_to_a_file(db, tmp_path):
    piped = dump(db)
    filed = tmp_path / "filed.dump"
    dump(db, f"--file={filed}")
    staged = tmp_path / "staged.dump"

    assert stage(piped, staged)

    expected, got = filed.read_bytes(), staged.read_bytes()
    assert len(got) == len(expected) == len(piped)
    assert got[MADE_AT.stop:] == expected[MADE_AT.stop:] != piped[MADE_AT.stop:]
    assert got[:MADE_AT.start] == expected[:MADE_AT.start]


def test_parallel_restore_of_a_staged_dump_loads_the_largest_table_first(pg, db, tmp_path):
    staged = tmp_path / "staged.dump"
    assert stage(dump(db), staged)
    target = pg.database(empty=True)
    with target.child_env() as env:
        log = subprocess.run([pg_tool("pg_restore"), "--no-owner", "--jobs=2", "--verbose",
                              f"--dbname={target.conninfo()}", str(staged)],
                             env=env, capture_output=True, text=True, check=True).stderr
    launched = [line.split()[-1] for line in log.splitlines()
                if "launching item" in line and "TABLE DATA" in line]
    sizes = dict(pg.sql(db, "SELECT relname, pg_relation_size(oid) FROM pg_class "
                            "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"))
    assert launched[0] == max(sizes, key=lambda name: sizes[name]) == "document_embeddings"
    assert pg.sql(target, "SELECT count(*) FROM document_embeddings") == pg.sql(
        db, "SELECT count(*) FROM document_embeddings")


def test_an_archive_with_large_objects_is_staged_as_it_is(db, tmp_path):
    db_sql = "SELECT pg_catalog.lo_from_bytea(0, '\\x0000000000010002'::bytea)"
    with db.connect(autocommit=True) as conn:
        conn.execute(db_sql)
    piped = dump(db, "--large-objects")
    staged = tmp_path / "staged.dump"

    assert not stage(piped, staged)
    assert staged.read_bytes() == piped
