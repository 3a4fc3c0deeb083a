"""Which tables a backup covers, how names resolve to them, and their snapshot-exact row
counts and content fingerprints.

Counts and fingerprints are per physical table (`FROM ONLY`): a partition or an inheritance
child is counted once, in itself, never again in its parent. A partitioned table holds no
rows of its own; naming one selects every partition under it. An inheritance parent is just
a table: selecting it never touches its children.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from backstop import fingerprint, names
from backstop.errors import ConfigError

SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') " \
                 "AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'"
SCHEMAS = f"""
SELECT n.nspname FROM pg_catalog.pg_namespace n
WHERE {SYSTEM_SCHEMAS}
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid =
                  'pg_namespace'::pg_catalog.regclass AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1
"""
RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind, pg_catalog.pg_table_size(c.oid),
       parent.nspname, parent.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
  SELECT pn.nspname, p.relname FROM pg_catalog.pg_inherits i
  JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
  JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
  WHERE c.relispartition AND i.inhrelid = c.oid) parent ON true
WHERE c.relkind IN ('r', 'p', 'm', 'f') AND n.nspname = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY 2, 3
"""


@dataclasses.dataclass(frozen=True, order=True)
class Table:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        """`schema.name` in the CLI's syntax (quoted where needed), which parses back."""
        return names.qualified(self.schema, self.name)

    @classmethod
    def parse(cls, qualified: str) -> Table:
        """A schema-qualified name (`qualified`, or regclass text) back into a Table."""
        schema, name = names.parse(qualified)
        if schema is None:
            raise ValueError(f"{qualified!r} is not schema-qualified")
        return cls(schema, name)

    def identifier(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    def dump_pattern(self) -> str:
        """A pg_dump pattern that matches exactly this table, whatever its name holds."""
        return f"{dump_pattern(self.schema)}.{dump_pattern(self.name)}"


def dump_pattern(part: str) -> str:
    """A pg_dump pattern that matches exactly this one name (no wildcards, no folding)."""
    return '"' + part.replace('"', '""') + '"'


@dataclasses.dataclass(frozen=True)
class Relation:
    table: Table
    oid: int
    kind: str  # r table, p partitioned table, m materialized view, f foreign table
    size: int
    partition_of: Table | None


@dataclasses.dataclass(frozen=True)
class TableStats:
    schema: str
    name: str
    rows: int
    fingerprint: str | None  # None when the table was above the fingerprint size limit
    bytes: int

    @property
    def table(self) -> Table:
        return Table(self.schema, self.name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableStats:
        return cls(**data)


def schemas(conn: psycopg.Connection[Any]) -> list[str]:
    """Every schema a full backup covers (not system schemas, not an extension's)."""
    return [name for (name,) in conn.execute(SCHEMAS).fetchall()]


def relations(conn: psycopg.Connection[Any], in_schemas: Sequence[str]) -> list[Relation]:
    """Tables, partitioned tables, materialized views and foreign tables in `in_schemas`,
    not owned by an extension."""
    found = []
    for oid, schema, name, kind, size, parent_schema, parent in conn.execute(
            RELATIONS, [list(in_schemas)]).fetchall():
        found.append(Relation(Table(schema, name), oid, kind, size,
                              Table(parent_schema, parent) if parent else None))
    return found


class Catalog:
    """Names -> physical tables, with partitioned parents expanded to their partitions."""

    def __init__(self, tables: Iterable[Table], partitions: dict[Table, Table]) -> None:
        self.tables = sorted(set(tables))  # physical tables a name may select
        self.partitions = partitions  # partition -> its partitioned parent
        self.known = set(self.tables) | set(partitions.values())

    @classmethod
    def of(cls, found: Iterable[Relation]) -> Catalog:
        found = list(found)
        return cls([r.table for r in found if r.kind == "r"],
                   {r.table: r.partition_of for r in found if r.partition_of is not None})

    def leaves(self, table: Table) -> list[Table]:
        """A physical table is itself; a partitioned table is every partition below it."""
        return [t for t in self.subtree(table) if t in self.tables]

    def subtree(self, table: Table) -> list[Table]:
        """A table, and for a partitioned one every partition below it, at every level."""
        children = sorted(t for t, parent in self.partitions.items() if parent == table)
        return [table, *(t for child in children for t in self.subtree(child))]

    def named(self, wanted: Sequence[str], *, where: str) -> list[Table]:
        """Names as typed (`quotes`, `public.quotes`, `other."we.ird"`) -> the tables they
        name, partitioned ones included. A bare name must be unambiguous. `where` names the
        place searched, for errors."""
        chosen: list[Table] = []
        for text in wanted:
            schema, name = names.parse(text)
            matches = sorted(t for t in self.known
                             if t.name == name and (schema is None or t.schema == schema))
            if not matches:
                raise ConfigError(f"table {text!r} is not in {where}; check the name "
                                  "(quote names with dots or capitals: schema.\"My.Table\")")
            if len(matches) > 1:
                raise ConfigError(f"table {text!r} is ambiguous in {where} "
                                  f"({', '.join(t.qualified for t in matches)}); "
                                  "qualify it with its schema")
            if matches[0] not in chosen:
                chosen.append(matches[0])
        return chosen

    def resolve(self, wanted: Sequence[str], *, where: str) -> list[Table]:
        """Names as typed -> the physical tables whose rows they select (a partitioned
        table: its partitions')."""
        chosen: list[Table] = []
        for table in self.named(wanted, where=where):
            chosen.extend(t for t in self.leaves(table) if t not in chosen)
        return chosen


def measure(conn: psycopg.Connection[Any], relations_: Sequence[Relation],
            fingerprint_limit: int, version: int = fingerprint.VERSION) -> list[TableStats]:
    """Row count and fingerprint of each relation, in the current transaction's snapshot;
    relations above `fingerprint_limit` bytes (or all, with a limit of 0) get counts only."""
    fingerprinted = {r.oid: fingerprint.only(r.table.identifier(), version) for r in relations_
                     if fingerprint_limit > 0 and r.size <= fingerprint_limit}
    queries = fingerprint.queries(conn, fingerprinted, version)
    stats = []
    for r in relations_:
        query = queries.get(r.oid) or sql.SQL("SELECT count(*), NULL FROM {}").format(
            fingerprint.only(r.table.identifier(), version))
        row = conn.execute(query).fetchone()
        assert row is not None
        stats.append(TableStats(r.table.schema, r.table.name, int(row[0]), row[1], r.size))
    return stats
