"""An independent judge of whether two databases hold the same things, written without any of
Backstop's own measuring code, so a bug there cannot hide a difference here.

`capture` reads one database under pinned session settings (whatever its server, database or
role settings, values print the same way):
- every physical table (`ONLY`, so a parent never counts its children): its columns, row count,
  and a sha256 of its rows as `COPY ... TO STDOUT` prints them, sorted client-side (physical
  order does not matter); small tables keep their rows, so a difference can be shown;
- each table's definition from the catalogs: columns, constraints, indexes, triggers, policies,
  row-level security, privileges, comments, partitioning and inheritance, owned sequences;
- every sequence (last_value, is_called), every large object (oid, md5 of its content), every
  materialized view (populated or not, and a digest of its rows);
- `pg_dump --schema-only --no-owner`, split into its entries and normalized.

`differences` compares two captures and says what differs, one line per difference.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
import subprocess
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from backstop.connection import Connection
from backstop.tools import pg_tool

PINNED = {
    "DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "TimeZone": "UTC",
    "extra_float_digits": "3", "bytea_output": "hex", "search_path": "",
    "lc_monetary": "C", "client_encoding": "UTF8", "standard_conforming_strings": "on",
    "row_security": "off", "timezone_abbreviations": "Default",
}
PREAMBLE = ("", "", "")
KEEP_ROWS = 5000  # tables up to this many rows keep them, to show which rows differ
SHOW_ROWS = 3

RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 2, 3
"""
COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       (SELECT collname FROM pg_collation WHERE oid = a.attcollation
        AND a.attcollation <> (SELECT typcollation FROM pg_type WHERE oid = a.atttypid)),
       a.attacl::text[], col_description(a.attrelid, a.attnum), a.attislocal, a.attinhcount
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid), convalidated, conislocal,
       obj_description(oid, 'pg_constraint')
FROM pg_constraint WHERE conrelid = %s ORDER BY conname, 2
"""
INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisclustered, i.indisreplident,
       i.indisvalid, obj_description(c.oid, 'pg_class')
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s ORDER BY 1
"""
TRIGGERS = """
SELECT tgname, pg_get_triggerdef(oid), tgenabled, obj_description(oid, 'pg_trigger')
FROM pg_trigger WHERE tgrelid = %s AND NOT tgisinternal ORDER BY 1
"""
POLICIES = """
SELECT p.polname, p.polcmd, p.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
             FROM unnest(p.polroles) r ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
       obj_description(p.oid, 'pg_policy')
FROM pg_policy p WHERE p.polrelid = %s ORDER BY 1
"""
TABLE = """
SELECT c.relrowsecurity, c.relforcerowsecurity, c.relacl::text[], c.reloptions,
       c.relreplident, obj_description(c.oid, 'pg_class'), pg_get_partkeydef(c.oid),
       CASE WHEN c.relispartition THEN
           (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid)
           || ' ' || pg_get_expr(c.relpartbound, c.oid) END,
       ARRAY(SELECT i.inhparent::regclass::text FROM pg_inherits i
             WHERE i.inhrelid = c.oid AND NOT c.relispartition ORDER BY i.inhseqno),
       c.relpersistence
FROM pg_class c WHERE c.oid = %s
"""
OWNED_SEQUENCES = """
SELECT n.nspname, s.relname
FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s AND d.deptype IN ('a', 'i')
"""
INDEX_NAMES = """
SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indrelid = %s
"""


@dataclasses.dataclass(frozen=True)
class Rows:
    """A table's or materialized view's contents: count, digest, the rows when few."""

    columns: tuple[str, ...]
    count: int
    digest: str
    rows: tuple[str, ...] | None  # sorted COPY lines, when count <= KEEP_ROWS


@dataclasses.dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str  # r (table) or p (partitioned table: no rows of its own)
    rows: Rows
    definition: tuple[str, ...]
    sequences: tuple[str, ...]  # the sequences its columns own (qualified names)
    indexes: tuple[str, ...]  # its indexes (qualified names)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    tables: dict[str, Table]
    sequences: dict[str, tuple[int, bool]]
    large_objects: dict[int, str]
    matviews: dict[str, tuple[bool, Rows | None]]
    schema: dict[tuple[str, str, str], tuple[str, ...]]  # (kind, schema, name) -> statements

    def owned_sequences(self, tables: Iterable[str]) -> set[str]:
        return {s for t in tables if t in self.tables for s in self.tables[t].sequences}

    def partitions(self, table: str) -> set[str]:
        """`table` and every partition below it, at any depth."""
        found, todo = {table}, [table]
        while todo:
            parent = todo.pop()
            for name, t in self.tables.items():
                if f"partition of: {parent} " in "\n".join(t.definition) and name not in found:
                    found.add(name)
                    todo.append(name)
        return found


def quote(part: str) -> str:
    """One name part as SQL (and the --table syntax) writes it: bare when that reads back the
    same, else in double quotes."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", part):
        return part
    return '"' + part.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}"


def pinned(connection: Connection) -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] = connection.connect(autocommit=True)
    for name, value in PINNED.items():
        conn.execute("SELECT set_config(%s, %s, false)", [name, value])
    return conn


def capture(connection: Connection, *, schema: bool = True) -> Snapshot:
    """Everything `differences` compares, read from one database."""
    tables: dict[str, Table] = {}
    sequences: dict[str, tuple[int, bool]] = {}
    matviews: dict[str, tuple[bool, Rows | None]] = {}
    with pinned(connection) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for oid, nsp, rel, kind in conn.execute(RELATIONS).fetchall():
            name = qualified(nsp, rel)
            ident = sql.Identifier(nsp, rel)
            if kind == "S":
                value = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
                    ident)).fetchone()
                assert value is not None
                sequences[name] = (int(value[0]), bool(value[1]))
            elif kind == "m":
                populated = conn.execute("SELECT relispopulated FROM pg_class WHERE oid = %s",
                                         [oid]).fetchone()
                assert populated is not None
                matviews[name] = (bool(populated[0]),
                                  rows_of(conn, oid, ident, only=False) if populated[0]
                                  else None)
            else:
                owned = sorted(qualified(s, r) for s, r in
                               conn.execute(OWNED_SEQUENCES, [oid]).fetchall())
                indexes = sorted(qualified(s, r) for s, r in
                                 conn.execute(INDEX_NAMES, [oid]).fetchall())
                tables[name] = Table(nsp, rel, kind, rows_of(conn, oid, ident, only=True),
                                     definition(conn, oid), tuple(owned), tuple(indexes))
        large_objects = {
            int(oid): digest for oid, digest in conn.execute(
                "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1"
            ).fetchall()}
    return Snapshot(tables, sequences, large_objects, matviews,
                    schema_entries(connection) if schema else {})


def rows_of(conn: psycopg.Connection[Any], oid: int, ident: sql.Identifier, *,
            only: bool) -> Rows:
    columns = tuple(c for (c,) in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum", [oid]).fetchall())
    query = sql.SQL("COPY (SELECT {} FROM {} {}) TO STDOUT").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns) if columns else sql.SQL(""),
        sql.SQL("ONLY") if only else sql.SQL(""), ident)
    lines: list[bytes] = []
    with conn.cursor().copy(query) as copy:
        buffer = b"".join(bytes(chunk) for chunk in copy)
    lines = buffer.split(b"\n")[:-1] if buffer else []
    lines.sort()
    digest = hashlib.sha256()
    digest.update("\t".join(columns).encode() + b"\n")
    for line in lines:
        digest.update(line + b"\n")
    kept = (tuple(line.decode("utf-8", "replace") for line in lines)
            if len(lines) <= KEEP_ROWS else None)
    return Rows(columns, len(lines), digest.hexdigest(), kept)


def definition(conn: psycopg.Connection[Any], oid: int) -> tuple[str, ...]:
    """A table's definition from the catalogs, one line per fact, names fully qualified."""
    lines = []
    for name, typ, notnull, default, identity, generated, collation, acl, comment, local, \
            inherited in conn.execute(COLUMNS, [oid]).fetchall():
        facts = [typ, "NOT NULL" if notnull else "",
                 f"GENERATED {generated} AS {default}" if generated else
                 (f"DEFAULT {default}" if default else ""),
                 f"IDENTITY {identity}" if identity else "",
                 f"COLLATE {collation}" if collation else "",
                 f"GRANTS {sorted(acl)}" if acl else "",
                 f"COMMENT {comment!r}" if comment else "",
                 "" if local else f"INHERITED x{inherited}"]
        lines.append(f"column {quote(name)}: " + " ".join(f for f in facts if f))
    for name, condef, valid, local, comment in conn.execute(CONSTRAINTS, [oid]).fetchall():
        lines.append(f"constraint {quote(name)}: {condef}" + ("" if valid else " NOT VALID")
                     + ("" if local else " (inherited)")
                     + (f" COMMENT {comment!r}" if comment else ""))
    for name, indexdef, clustered, replident, valid, comment in conn.execute(
            INDEXES, [oid]).fetchall():
        lines.append(f"index {quote(name)}: {indexdef}" + (" CLUSTERED" if clustered else "")
                     + (" REPLICA IDENTITY" if replident else "")
                     + ("" if valid else " INVALID")
                     + (f" COMMENT {comment!r}" if comment else ""))
    for name, triggerdef, enabled, comment in conn.execute(TRIGGERS, [oid]).fetchall():
        lines.append(f"trigger {quote(name)}: {triggerdef} enabled={enabled}"
                     + (f" COMMENT {comment!r}" if comment else ""))
    for name, cmd, permissive, roles, using, check, comment in conn.execute(
            POLICIES, [oid]).fetchall():
        lines.append(f"policy {quote(name)}: FOR {cmd} "
                     f"{'PERMISSIVE' if permissive else 'RESTRICTIVE'} TO {roles} "
                     f"USING ({using}) WITH CHECK ({check})"
                     + (f" COMMENT {comment!r}" if comment else ""))
    row = conn.execute(TABLE, [oid]).fetchone()
    assert row is not None
    rls, force, acl, options, replident, comment, partkey, partof, parents, persistence = row
    lines.append(f"row level security: {'enabled' if rls else 'disabled'}"
                 f"{', forced' if force else ''}")
    lines.append(f"privileges: {sorted(acl) if acl is not None else 'default'}")
    for label, value in (("options", options), ("replica identity", replident),
                         ("comment", comment), ("partitioned by", partkey),
                         ("partition of", partof), ("inherits", parents),
                         ("persistence", persistence)):
        if value:
            lines.append(f"{label}: {value!r}" if label == "comment" else f"{label}: {value}")
    return tuple(lines)


def schema_entries(connection: Connection) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """`pg_dump --schema-only --no-owner`, as {(kind, schema, name): statements}, names as
    pg_dump's entry headers print them; comments, blank lines and session settings dropped,
    so two equal schemas compare equal."""
    args = [pg_tool("pg_dump"), "--schema-only", "--no-owner", "--restrict-key=oracle",
            "--no-password", f"--dbname={connection.conninfo()}"]
    with connection.child_env() as env:
        out = subprocess.run(args, env=env, capture_output=True, check=True).stdout.decode()
    entries: dict[tuple[str, str, str], list[str]] = {}
    key = PREAMBLE
    header = re.compile(r"^-- Name: (.*); Type: (.*); Schema: (.*); Owner: .*$")
    for line in out.splitlines():
        if match := header.match(line):
            name, kind, schema = match.groups()
            key = (kind, schema, name)
            entries.setdefault(key, [])
            continue
        if (not line.strip() or line.startswith("--") or line.startswith("\\")
                or key == PREAMBLE):
            continue
        entries[key].append(line)
    # An entry left with no statement (pg_dump's note on the public schema) changes nothing.
    return {k: tuple(v) for k, v in entries.items() if v}


def differences(expected: Snapshot, actual: Snapshot, *, only: Iterable[str] | None = None,
                exclude: Iterable[str] = (), kinds: Iterable[str] = (
                    "tables", "definitions", "sequences", "large objects", "matviews",
                    "schema")) -> list[str]:
    """What differs between two captures, one line each; empty when they are equal.

    `only` limits the comparison to these tables (their rows, definitions and owned
    sequences); `exclude` compares everything but these tables (and what belongs to them:
    their owned sequences and their entries in the schema dump). `kinds` picks what to
    compare: tables (rows), definitions, sequences, large objects, matviews, schema.
    """
    kinds = set(kinds)
    excluded = set(exclude)
    names = set(expected.tables) | set(actual.tables)
    if only is not None:
        names = set(only)
    names -= excluded
    found: list[str] = []
    for name in sorted(names):
        want, have = expected.tables.get(name), actual.tables.get(name)
        if want is None or have is None:
            found.append(f"table {name}: {'missing' if have is None else 'unexpected'}")
            continue
        if "tables" in kinds:
            found += rows_differ(f"table {name}", want.rows, have.rows)
        if "definitions" in kinds and want.definition != have.definition:
            found += [f"table {name} definition: {line}"
                      for line in changed_lines(want.definition, have.definition)]
    if "sequences" in kinds:
        sequences = set(expected.sequences) | set(actual.sequences)
        if only is not None:
            sequences = expected.owned_sequences(names) | actual.owned_sequences(names)
        sequences -= expected.owned_sequences(excluded) | actual.owned_sequences(excluded)
        for seq in sorted(sequences):
            want_seq, have_seq = expected.sequences.get(seq), actual.sequences.get(seq)
            if want_seq != have_seq:
                found.append(f"sequence {seq}: (last_value, is_called) {have_seq}, "
                             f"expected {want_seq}")
    if only is None and "large objects" in kinds:
        for oid in sorted(set(expected.large_objects) | set(actual.large_objects)):
            want_lo, have_lo = expected.large_objects.get(oid), actual.large_objects.get(oid)
            if want_lo != have_lo:
                found.append(f"large object {oid}: "
                             + ("missing" if have_lo is None else "unexpected"
                                if want_lo is None else f"content md5 {have_lo}, expected "
                                                        f"{want_lo}"))
    if only is None and "matviews" in kinds:
        for name in sorted(set(expected.matviews) | set(actual.matviews)):
            want_mv, have_mv = expected.matviews.get(name), actual.matviews.get(name)
            if want_mv is None or have_mv is None:
                found.append(f"matview {name}: {'missing' if have_mv is None else 'unexpected'}")
            elif want_mv[0] != have_mv[0]:
                found.append(f"matview {name}: {'populated' if have_mv[0] else 'not populated'}"
                             f", expected {'populated' if want_mv[0] else 'not populated'}")
            elif want_mv[1] is not None and have_mv[1] is not None:
                found += rows_differ(f"matview {name}", want_mv[1], have_mv[1])
    if only is None and "schema" in kinds:
        found += schema_differs(expected, actual, excluded)
    return found


def rows_differ(what: str, want: Rows, have: Rows) -> list[str]:
    if want.columns != have.columns:
        return [f"{what}: columns {list(have.columns)}, expected {list(want.columns)}"]
    if want.digest == have.digest:
        return []
    line = f"{what}: {have.count} rows, expected {want.count}" if want.count != have.count \
        else f"{what}: same row count ({want.count}), different rows"
    if want.rows is not None and have.rows is not None:
        gone = sorted(set(want.rows) - set(have.rows))
        extra = sorted(set(have.rows) - set(want.rows))
        line += "".join(f"; missing row {r!r}" for r in gone[:SHOW_ROWS])
        line += "".join(f"; unexpected row {r!r}" for r in extra[:SHOW_ROWS])
    return [line]


def changed_lines(want: Iterable[str], have: Iterable[str]) -> list[str]:
    return [("missing: " if line[0] == "-" else "unexpected: ") + line[2:]
            for line in difflib.ndiff(list(want), list(have)) if line[:2] in ("- ", "+ ")]


def schema_differs(expected: Snapshot, actual: Snapshot, excluded: set[str]) -> list[str]:
    parts = {(t.schema, t.name) for snap in (expected, actual) for n, t in snap.tables.items()
             if n in excluded}
    owned = {name for snap in (expected, actual) for n, t in snap.tables.items()
             if n in excluded for name in (*t.sequences, *t.indexes)}
    found = []
    for key in sorted(set(expected.schema) | set(actual.schema)):
        if belongs_to(key, parts, owned):
            continue
        want, have = expected.schema.get(key), actual.schema.get(key)
        what = f"schema {key[0]} {key[1]}.{key[2]}"
        if want is None or have is None:
            found.append(f"{what}: {'missing' if have is None else 'unexpected'}")
        elif sorted(want) != sorted(have):
            found += [f"{what}: {line}" for line in changed_lines(want, have)]
    return found


def belongs_to(key: tuple[str, str, str], tables: set[tuple[str, str]],
               owned: set[str]) -> bool:
    """Whether a schema-dump entry (kind, schema, name as pg_dump's headers print them) is
    part of one of `tables`: the table, its constraints, defaults, triggers,
    policies, comments, privileges, row security, partition attachment, indexes and owned
    sequences. Other objects (views over the table, types it uses) are not.
    A heuristic on pg_dump's entry names: good for the corpus, not for every name."""
    kind, schema, name = key
    if kind.startswith(("INDEX", "SEQUENCE")) and qualified(schema, name) in owned:
        return True
    if kind == "COMMENT" and name.startswith("INDEX ") and \
            qualified(schema, name.removeprefix("INDEX ")) in owned:
        return True
    for t_schema, table in tables:
        if schema != t_schema:
            continue
        if name == table or name.startswith(table + " ") or name in (
                f"TABLE {table}", f"POLICY {table}") or name.startswith(f"COLUMN {table}.") \
                or name.endswith(f" ON {table}"):
            return True
    return False
