"""Post-restore verification, the runbook's checklist as code: every table's row count and
fingerprint equal the manifest, constraints hold, sequences are not behind their columns, and
the health queries return what they returned in the dump's snapshot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from backstop import health
from backstop.manifest import Manifest
from backstop.tables import Table, TableStats, measure, user_tables

FOREIGN_KEYS = """
SELECT c.conname, cn.nspname, cl.relname, pn.nspname, pl.relname,
       ARRAY(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY i),
       ARRAY(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY i)
FROM pg_constraint c
JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_class pl ON pl.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pl.relnamespace
WHERE c.contype = 'f'
"""
NOT_VALID = """
SELECT conrelid::regclass::text, conname FROM pg_constraint
WHERE NOT convalidated AND connamespace NOT IN ('pg_catalog'::regnamespace)
"""
OWNED_SEQUENCES = """
SELECT sn.nspname, s.relname, tn.nspname, t.relname, a.attname
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
"""


@dataclasses.dataclass(frozen=True)
class Report:
    backup_id: str
    database: str
    target: str
    mode: str
    ok: bool
    tables: list[dict[str, Any]]  # table, expected rows, restored rows, result
    problems: list[str]  # constraints, sequences, health checks
    restore_seconds: float
    verify_seconds: float
    bytes_restored: int
    verified_at: str

    @property
    def mismatches(self) -> list[str]:
        return [f"{t['table']}: {t['result']}" for t in self.tables
                if not t["result"].startswith("equal")]

    @property
    def throughput_mb_s(self) -> float:
        return self.bytes_restored / 1e6 / self.restore_seconds if self.restore_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "tables_checked": len(self.tables),
                "tables_matched": len(self.tables) - len(self.mismatches),
                "mismatches": self.mismatches,
                "throughput_mb_s": round(self.throughput_mb_s, 1)}


def expected_tables(manifest: Manifest, mode: str, tables: tuple[str, ...]) -> list[TableStats]:
    """What the restored database must hold, given the backup's scope and the restore mode."""
    chosen = [t for t in manifest.tables
              if not tables or t.name in tables or f"{t.schema}.{t.name}" in tables]
    if manifest.scope.mode == "schema-only" or mode == "schema-only":
        return [dataclasses.replace(t, rows=0, fingerprint="0") for t in chosen]
    return chosen


def check(conn: psycopg.Connection[Any], manifest: Manifest, *, mode: str,
          tables: tuple[str, ...], checks: Mapping[str, str] | None = None
          ) -> tuple[list[dict[str, Any]], list[str]]:
    """Compare the connected database with the manifest. Returns one result per expected
    table and the other problems found."""
    expected = expected_tables(manifest, mode, tables)
    present = user_tables(conn)
    wanted = {Table(t.schema, t.name): present[Table(t.schema, t.name)] for t in expected
              if Table(t.schema, t.name) in present}
    got = {(t.schema, t.name): t for t in measure(conn, wanted, manifest.fingerprint_limit_bytes
                                                  or 2**62)}
    results = []
    for want in expected:
        have = got.get((want.schema, want.name))
        if have is None:
            result = "missing"
        elif have.rows != want.rows:
            result = f"{have.rows} rows, expected {want.rows}"
        elif want.fingerprint is not None and have.fingerprint != want.fingerprint:
            result = "same row count, different contents"
        else:
            result = "equal" if want.fingerprint is not None else "equal (rows; no fingerprint)"
        results.append({"table": f"{want.schema}.{want.name}", "expected_rows": want.rows,
                        "restored_rows": None if have is None else have.rows,
                        "result": result})
    problems = constraint_problems(conn) + sequence_problems(conn)
    if mode in ("full", "data-only") and manifest.scope.mode != "schema-only" \
            and not manifest.scope.tables:
        problems += health.problems(conn, manifest.health, checks or {}, manifest.id)
    return results, problems


def constraint_problems(conn: psycopg.Connection[Any]) -> list[str]:
    problems = [f"{rel}.{name}: constraint left NOT VALID"
                for rel, name in conn.execute(NOT_VALID).fetchall()]
    for name, cs, ct, ps, pt, cols, pcols in conn.execute(FOREIGN_KEYS).fetchall():
        join = sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
            for c, p in zip(cols, pcols, strict=True))
        not_null = sql.SQL(" AND ").join(
            sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in cols)
        orphans = conn.execute(sql.SQL(
            "SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})"
        ).format(sql.Identifier(cs, ct), not_null, sql.Identifier(ps, pt), join)).fetchone()
        if orphans and orphans[0]:
            problems.append(f"{cs}.{ct}.{name}: {orphans[0]} rows break the foreign key")
    return problems


def sequence_problems(conn: psycopg.Connection[Any]) -> list[str]:
    problems = []
    for sschema, seq, tschema, table, column in conn.execute(OWNED_SEQUENCES).fetchall():
        row = conn.execute(sql.SQL(
            "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {}),"
            " (SELECT max({}) FROM {})").format(
                sql.Identifier(sschema, seq), sql.Identifier(column),
                sql.Identifier(tschema, table))).fetchone()
        if row and row[1] is not None and row[0] < row[1]:
            problems.append(f"{sschema}.{seq} is at {row[0]}, behind "
                            f"{tschema}.{table}.{column} max {row[1]}")
    return problems


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
