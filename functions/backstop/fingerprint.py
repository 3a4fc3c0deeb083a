"""Content fingerprints of tables: a function of the data alone.

Version 3 (current): the exact sum, over rows, of a 64-bit row hash. Columns of the built-in
integer types, timestamp and uuid (whose equal values are identical and print without
settings) are hashed by the server's own hash function, seeded with the column's position;
every other column goes, in order, into one array of binary send forms, hashed as a whole
(PostgreSQL before 16 has no hash function for a single bytea). The row hash is the
exclusive or of those parts, so a value moved to another column, or two rows trading values,
changes it. Equal for equal rows in any physical order, whatever the session's or server's
printing settings, the PostgreSQL major (13 and later) and the OIDs of user-defined types.
Binary forms that embed type OIDs (arrays of user-defined types, composite values) and those
that print OIDs or depend on search_path (the reg* types) go in their text form instead,
printed under settings pinned by the caller.

Version 2 (manifests of schema version 2): every column in the array. Kept so those
manifests still verify.

Version 1 (manifests of schema version 1): the sum of hashtextextended(row::text, 0), counted
with children for inheritance parents. Kept so those manifests still verify.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

VERSION = 3
FIRST_USER_OID = 16384  # FirstNormalObjectId: built-in types keep their OIDs across majors
TEXT_FORM = sql.SQL("pg_catalog.textsend({}::pg_catalog.text)")
# Built-in types hashed by their own function in version 3 (each exists since PostgreSQL 11;
# timestamptz's and date's own are newer, so those go in the array).
NATIVE_HASH = {20: "hashint8extended", 21: "hashint2extended", 23: "hashint4extended",
               1114: "timestamp_hash_extended", 2950: "uuid_hash_extended"}

COLUMNS = """
SELECT a.attrelid, a.attname, a.atttypid FROM pg_catalog.pg_attribute a
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
TYPES = """
SELECT t.oid, t.typtype, t.typbasetype, t.typelem, t.typlen, t.typcategory,
       n.nspname = 'pg_catalog' AND t.typname LIKE 'reg%%',
       pn.nspname, p.proname, pg_catalog.format_type(t.typbasetype, t.typtypmod),
       (SELECT r.rngsubtype FROM pg_catalog.pg_range r
        WHERE r.rngtypid = t.oid OR r.rngmultitypid = t.oid)
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_proc p ON p.oid = t.typsend
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
WHERE t.oid = ANY(%s)
"""


@dataclasses.dataclass(frozen=True)
class _Type:
    oid: int
    typtype: str
    base: int  # domains: the type they are over
    element: int
    length: int
    category: str
    is_reg: bool
    send: sql.Composable | None
    base_name: str  # domains: their base type with the domain's modifier, for a cast
    subtype: int | None  # ranges and multiranges


class Types:
    """pg_type rows, fetched on demand, and which binary forms are free of OIDs."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.known: dict[int, _Type] = {}

    def load(self, oids: Iterable[int]) -> None:
        missing = {o for o in oids if o and o not in self.known}
        while missing:
            for row in self.conn.execute(TYPES, [list(missing)]).fetchall():
                oid, typtype, base, element, length, category, is_reg, nsp, fn, name, sub = row
                send = sql.Identifier(nsp, fn) if fn else None
                self.known[oid] = _Type(oid, typtype, base, element, length, category,
                                        is_reg, send, name, sub)
            missing = {o for t in self.known.values()
                       for o in (t.base, t.element, t.subtype) if o and o not in self.known}

    def base(self, oid: int) -> _Type:
        t = self.known[oid]
        return self.base(t.base) if t.typtype == "d" else t

    def innermost_domain(self, oid: int) -> _Type:
        t = self.known[oid]
        return self.innermost_domain(t.base) if self.known[t.base].typtype == "d" else t

    def binary_is_portable(self, oid: int) -> bool:
        t = self.base(oid)
        if t.send is None or t.typtype in ("c", "p") or t.is_reg:
            return False
        if t.typtype in ("r", "m"):
            return t.subtype is not None and self.binary_is_portable(t.subtype)
        if t.category == "A" and t.element and t.length == -1:  # arrays carry the element OID
            return t.element < FIRST_USER_OID and self.binary_is_portable(t.element)
        return True

    def column_form(self, column: str, oid: int) -> sql.Composable:
        if not self.binary_is_portable(oid):
            return TEXT_FORM.format(sql.Identifier("t", column))
        send = self.base(oid).send
        assert send is not None
        return sql.SQL("{}({})").format(send, self._value(column, oid))

    def row_hash(self, columns: list[tuple[str, int]], version: int) -> sql.Composable:
        """Version 2: the array of every column's form, hashed. Version 3: each column with
        a native hash, seeded with its position, exclusive-or the array of the others'."""
        natives = {} if version == 2 else {
            seed: sql.SQL("coalesce(pg_catalog.{}({}, {}), 0)").format(
                sql.Identifier(NATIVE_HASH[self.base(t).oid]), self._value(n, t),
                sql.Literal(seed))
            for seed, (n, t) in enumerate(columns, 1) if self.base(t).oid in NATIVE_HASH}
        forms = [self.column_form(n, t) for seed, (n, t) in enumerate(columns, 1)
                 if seed not in natives]
        parts = list(natives.values())
        if forms or not parts:
            parts.append(sql.SQL(
                "pg_catalog.hash_array_extended(ARRAY[{}]::pg_catalog.bytea[], 0)").format(
                    sql.SQL(", ").join(forms)))
        return sql.SQL(" # ").join(parts)

    def _value(self, column: str, oid: int) -> sql.Composable:
        value = sql.Identifier("t", column)
        if self.known[oid].typtype != "d":
            return value
        # polymorphic send functions do not take domains
        return sql.SQL("{}::{}").format(value, sql.SQL(self.innermost_domain(oid).base_name))


def queries(conn: psycopg.Connection[Any], sources: dict[int, sql.Composable],
            version: int = VERSION) -> dict[int, sql.Composed]:
    """relation oid -> `SELECT count(*), fingerprint FROM <source>`, where each source is a
    FROM item (`ONLY schema.table`, or a subquery with the relation's columns)."""
    if version == 1:
        return {oid: sql.SQL("SELECT count(*), coalesce(sum(pg_catalog.hashtextextended("
                             "t::text, 0)), 0)::text FROM {} AS t").format(source)
                for oid, source in sources.items()}
    columns: dict[int, list[tuple[str, int]]] = {oid: [] for oid in sources}
    for relid, name, typ in conn.execute(COLUMNS, [list(sources)]).fetchall():
        columns[relid].append((name, typ))
    types = Types(conn)
    types.load(typ for cols in columns.values() for _, typ in cols)
    built = {}
    for oid, source in sources.items():
        row_hash = types.row_hash(columns[oid], version)
        built[oid] = sql.SQL("SELECT count(*), coalesce(sum({}), 0)::text FROM {} AS t").format(
            row_hash, source)
    return built


def only(table: sql.Composable, version: int = VERSION) -> sql.Composable:
    """A table as a FROM item: its own rows, not its inheritance children's (version 1
    counted the children too)."""
    return table if version == 1 else sql.SQL("ONLY {}").format(table)
