"""Which tables a backup covers, and their snapshot-exact row counts and fingerprints.

A fingerprint is the sum of a 64-bit hash of every row's text: equal for equal contents in
any physical order, and computed the same way on the source (inside the dump's snapshot) and
on a restored copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from backstop.errors import ConfigError, SourceError

USER_TABLES = """
SELECT n.nspname, c.relname, pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


@dataclasses.dataclass(frozen=True)
class Table:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def identifier(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    def dump_pattern(self) -> str:
        """A pg_dump -t/-T pattern that matches exactly this table, whatever its name holds."""
        def quote(part: str) -> str:
            return '"' + part.replace('"', '""') + '"'
        return f"{quote(self.schema)}.{quote(self.name)}"


@dataclasses.dataclass(frozen=True)
class TableStats:
    schema: str
    name: str
    rows: int
    fingerprint: str | None  # None when the table was above the fingerprint size limit
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableStats:
        return cls(**data)


def user_tables(conn: psycopg.Connection[Any]) -> dict[Table, int]:
    """Every ordinary user table (not owned by an extension) with its size in bytes."""
    return {Table(s, n): size for s, n, size in conn.execute(USER_TABLES).fetchall()}


def resolve(names: Sequence[str], available: Sequence[Table]) -> list[Table]:
    """Map user-given names (`quotes` or `public.quotes`) to existing tables, exactly."""
    resolved: list[Table] = []
    for name in names:
        matches = [t for t in available if t.qualified == name]
        if not matches:
            matches = [t for t in available if t.name == name]
        if not matches:
            raise SourceError(f"table {name!r} does not exist in the database; "
                              "check the name (backstop list shows a backup's tables)")
        if len(matches) > 1:
            choices = ", ".join(t.qualified for t in matches)
            raise ConfigError(
                f"table {name!r} is ambiguous ({choices}); qualify it with its schema")
        if matches[0] not in resolved:
            resolved.append(matches[0])
    return resolved


def measure(conn: psycopg.Connection[Any], tables: dict[Table, int],
            fingerprint_limit: int) -> list[TableStats]:
    """Count rows (and fingerprint tables up to `fingerprint_limit` bytes) in the current
    transaction's snapshot."""
    stats = []
    for table, size in tables.items():
        if size <= fingerprint_limit and fingerprint_limit > 0:
            query = sql.SQL(
                "SELECT count(*), "
                "coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} AS t"
            ).format(table.identifier())
        else:
            query = sql.SQL("SELECT count(*), NULL FROM {}").format(table.identifier())
        row = conn.execute(query).fetchone()
        assert row is not None
        stats.append(TableStats(table.schema, table.name, int(row[0]), row[1], size))
    return stats
