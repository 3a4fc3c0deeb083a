"""Proving a database against a backup's manifest: the runbook's post-restore checklist as
code. What a restore brought back must equal what the backup recorded in its snapshot: every
table's row count and fingerprint, every sequence, the large objects, the materialized views'
state, and the schema signature, object by object; and the restored database must hold
together (no constraint left NOT VALID, no row breaking a foreign key, no sequence behind its
column). `compare` returns each table's result and every other difference by name; the report
says which kinds of objects were compared, so nothing unproved reads as proved.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from backstop import fingerprint, names, signature, snapshot
from backstop import tables as tbl
from backstop.backup import run_checks
from backstop.manifest import Manifest

FOREIGN_KEYS = """
SELECT c.conname, cn.nspname, cl.relname, pn.nspname, pl.relname,
       ARRAY(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
             ORDER BY i),
       ARRAY(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
             ORDER BY i),
       c.convalidated
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_catalog.pg_class pl ON pl.oid = c.confrelid
JOIN pg_catalog.pg_namespace pn ON pn.oid = pl.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
"""
NOT_VALID = """
SELECT n.nspname, cl.relname, c.conname FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
WHERE NOT c.convalidated
"""
OWNED_SEQUENCES = """
SELECT sn.nspname, s.relname, tn.nspname, t.relname, a.attname
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')
"""
MATVIEW_QUERY = """
SELECT c.oid, pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND n.nspname = %s AND c.relname = %s
"""


@dataclasses.dataclass(frozen=True)
class Scope:
    """What a comparison covers: which tables (None: every table the backup holds), whether
    the restore brought data, schema, or both, and which large objects it created."""

    tables: tuple[tbl.Table, ...] | None = None
    data: bool = True
    schema: bool = True
    large_object_oids: tuple[int, ...] | None = None  # None: every large object there is
    whole_database: bool = True  # the target should hold nothing the backup does not
    # what the restore left out on purpose (restore rules), named in the report's `skipped`:
    # schema signature keys, and tables whose rows are not expected
    left_out: frozenset[str] = frozenset()
    left_out_tables: frozenset[tbl.Table] = frozenset()
    # The rows came in through a restore that then added each foreign key, which PostgreSQL
    # validated against every row: a valid key needs no scan for orphans of its own.
    keys_added_after_rows: bool = False


@dataclasses.dataclass(frozen=True)
class Report:
    backup_id: str
    database: str
    target: str
    mode: str
    ok: bool
    tables: list[dict[str, Any]]  # table, expected rows, restored rows, result
    problems: list[str]  # everything else that differs or does not hold, by name
    restore_seconds: float
    verify_seconds: float
    bytes_restored: int
    verified_at: str
    compared: list[str] = dataclasses.field(default_factory=list)  # kinds of objects
    notes: list[str] = dataclasses.field(default_factory=list)  # true, but not a failure
    # archive entries left out: {"entry": as pg_restore --list names it, "reason"}
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)

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


@dataclasses.dataclass(frozen=True)
class Comparison:
    tables: list[dict[str, Any]]
    problems: list[str]
    compared: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems and all(t["result"].startswith("equal") for t in self.tables)


def compare(conn: psycopg.Connection[Any], manifest: Manifest, scope: Scope) -> Comparison:
    """Compare the connected database with the manifest, within `scope`, in one read-only
    snapshot."""
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    with conn.transaction():
        snapshot.pin(conn)
        _scan_in_parallel(conn)
        return _Compare(conn, manifest, scope).run()


def _scan_in_parallel(conn: psycopg.Connection[Any]) -> None:
    """Let every whole-table scan of the comparison use the server's parallel workers (within
    its own max_parallel_workers_per_gather): a freshly restored table has no statistics, and
    the default costs keep the largest scans (wide rows, few of them) on one core."""
    for setting in ("parallel_setup_cost", "parallel_tuple_cost",
                    "min_parallel_table_scan_size"):
        conn.execute(sql.SQL("SET LOCAL {} = 0").format(sql.Identifier(setting)))


class _Compare:
    def __init__(self, conn: psycopg.Connection[Any], manifest: Manifest, scope: Scope) -> None:
        self.conn, self.manifest, self.scope = conn, manifest, scope
        self.chosen = None if scope.tables is None else set(scope.tables)
        self.problems: list[str] = []
        self.compared: list[str] = []
        self.notes: list[str] = []
        self.owner = _sequence_owners(manifest)

    def wanted(self, table: tbl.Table | None) -> bool:
        return self.chosen is None or (table is not None and table in self.chosen)

    def run(self) -> Comparison:
        results = self.tables()
        if self.scope.data:
            self.sequences()
            self.large_objects()
        self.matviews()
        if self.scope.schema:
            self.schema()
        self.problems += self.integrity()
        return Comparison(results, self.problems, self.compared, self.notes)

    def tables(self) -> list[dict[str, Any]]:
        expected = [t for t in self.manifest.tables if self.wanted(t.table)
                    and t.table not in self.scope.left_out_tables]
        present = {r.table: r for r in tbl.relations(
            self.conn, sorted({t.schema for t in expected}))}
        got = {s.table: s for s in tbl.measure(
            self.conn, [present[t.table] for t in expected if t.table in present],
            fingerprint_limit=2**62, version=self.manifest.fingerprint_version)}
        results = []
        for want in expected:
            rows, print_ = (want.rows, want.fingerprint) if self.scope.data else (0, "0")
            have = got.get(want.table)
            if have is None:
                result = "missing"
            elif have.rows != rows:
                result = f"{have.rows} rows, expected {rows}"
            elif print_ is not None and have.fingerprint != print_:
                result = "same row count, different contents"
            else:
                result = "equal" if print_ is not None else "equal (rows; no fingerprint)"
            results.append({"table": want.table.qualified, "expected_rows": rows,
                            "restored_rows": None if have is None else have.rows,
                            "result": result})
        if expected:
            self.compared.append("table rows and contents" if self.scope.data
                                 else "tables (empty)")
        return results

    def sequences(self) -> None:
        expected = {key: value for key, value in self.manifest.sequences.items()
                    if self.wanted(self.owner.get(tbl.Table.parse(key)))}
        for key, want in sorted(expected.items()):
            sequence = tbl.Table.parse(key)
            row = self.conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
                sequence.identifier())).fetchone() if self._exists(sequence) else None
            if row is None:
                self.problems.append(f"sequence {key}: missing")
            elif (row[0], row[1]) != (want["last_value"], want["is_called"]):
                self.problems.append(f"sequence {key}: at {row[0]} (called {row[1]}), the "
                                     f"backup has {want['last_value']} "
                                     f"(called {want['is_called']})")
        if expected:
            self.compared.append("sequence values")

    def large_objects(self) -> None:
        want = self.manifest.large_objects
        if want is None or self.chosen is not None:
            return
        oids = self.scope.large_object_oids
        query = snapshot.LARGE_OBJECTS + ("" if oids is None else " WHERE m.oid = ANY(%s)")
        row = self.conn.execute(query, [list(oids)] if oids is not None else None).fetchone()
        assert row is not None
        if (int(row[0]), row[1]) != (want["count"], want["hash"]):
            self.problems.append(f"large objects: {row[0]} with hash {row[1]}, the backup has "
                                 f"{want['count']} with hash {want['hash']}")
        if oids is not None and self.scope.whole_database:
            total = self.conn.execute("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata"
                                      ).fetchone()
            if total and total[0] != want["count"]:
                self.problems.append(f"large objects: {total[0] - want['count']} not in the "
                                     "backup")
        self.compared.append("large objects")

    def matviews(self) -> None:
        """Populated as in the backup; a populated one holds exactly what its query gives on
        the restored data (a restore recomputes materialized views; it cannot copy them)."""
        if self.chosen is not None:
            return
        for key, want in sorted(self.manifest.matviews.items()):
            view = tbl.Table.parse(key)
            found = self.conn.execute(
                "SELECT c.relispopulated FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace"
                " n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                [view.schema, view.name]).fetchone()
            populated = want["populated"] and self.scope.data
            if found is None:
                self.problems.append(f"materialized view {key}: missing")
            elif found[0] != populated:
                self.problems.append(f"materialized view {key}: "
                                     f"{'populated' if found[0] else 'not populated'}, "
                                     f"expected {'populated' if populated else 'not populated'}")
            elif populated and not self._matview_current(view):
                self.problems.append(f"materialized view {key}: its contents differ from what "
                                     "its query gives on the restored data")
        if self.manifest.matviews:
            self.compared.append("materialized views")

    def _matview_current(self, view: tbl.Table) -> bool:
        row = self.conn.execute(MATVIEW_QUERY, [view.schema, view.name]).fetchone()
        assert row is not None
        oid, definition = row
        stored = fingerprint.queries(self.conn, {oid: fingerprint.only(view.identifier())})
        fresh = fingerprint.queries(self.conn, {oid: sql.SQL("({})").format(
            sql.SQL(definition.rstrip().rstrip(";")))})
        return self.conn.execute(stored[oid]).fetchone() == \
            self.conn.execute(fresh[oid]).fetchone()

    def schema(self) -> None:
        recorded = self.manifest.schema
        if not recorded:
            self.notes.append("the schema was not compared: this backup recorded no schema "
                              "signature")
            return
        actual = signature.collect(self.conn, recorded["schemas"],
                                   not_of=signature.not_of(recorded))
        expected = {k: v for k, v in recorded["objects"].items() if k not in self.scope.left_out}
        dangling = self._dangling_keys(expected)
        if dangling:
            expected = {k: v for k, v in expected.items() if k not in dangling}
            self.notes.append(f"{len(dangling)} foreign key(s) to tables whose rows this backup "
                              "does not hold were not restored and not compared")
        keys = set(signature.belonging_to(expected, self.chosen))
        extra = set(signature.belonging_to(actual, self.chosen)) - set(expected)
        if self.scope.whole_database:
            keys |= extra
        elif extra:
            self.notes.append(f"{len(extra)} object(s) in the target are not in the backup "
                              "(left as they were)")
        same_major = recorded["major"] == self.conn.info.server_version // 10000
        self.problems += signature.differences(expected, actual, keys, same_major=same_major)
        self.compared.append("schema (" + ", ".join(signature.KINDS) + ")")
        if not same_major:
            self.notes.append(f"views were compared by columns and referenced tables: the "
                              f"backup comes from PostgreSQL {recorded['major']}, this server "
                              "deparses queries differently")

    def _dangling_keys(self, expected: dict[str, dict[str, Any]]) -> set[str]:
        """Foreign keys from tables whose rows a backup of some tables holds, to tables whose
        rows it does not: the restore leaves them out (restore._without_dangling_keys)."""
        if self.manifest.scope.is_full or not self.scope.data:
            return set()
        held = {t.table for t in self.manifest.tables}
        return {k for k, v in expected.items() if v.get("references") and v.get("table")
                and tbl.Table.parse(v["table"]) in held
                and tbl.Table.parse(v["references"]) not in held}

    def integrity(self) -> list[str]:
        """Constraints and sequences of the compared tables hold."""
        problems = [f"{names.qualified(s, t)}.{c}: constraint left NOT VALID"
                    for s, t, c in self.conn.execute(NOT_VALID).fetchall()
                    if self.wanted(tbl.Table(s, t))]
        for name, cs, ct, ps, pt, cols, pcols, valid in self.conn.execute(
                FOREIGN_KEYS).fetchall():
            if not (self.wanted(tbl.Table(cs, ct)) or self.wanted(tbl.Table(ps, pt))):
                continue
            if valid and self.scope.keys_added_after_rows:
                continue
            join = sql.SQL(" AND ").join(
                sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
                for c, p in zip(cols, pcols, strict=True))
            not_null = sql.SQL(" AND ").join(
                sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in cols)
            orphans = self.conn.execute(sql.SQL(
                "SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p "
                "WHERE {})").format(sql.Identifier(cs, ct), not_null, sql.Identifier(ps, pt),
                                   join)).fetchone()
            if orphans and orphans[0]:
                problems.append(f"{names.qualified(cs, ct)}.{name}: {orphans[0]} rows break "
                                "the foreign key")
        for ss, seq, ts, table, column in self.conn.execute(OWNED_SEQUENCES).fetchall():
            if not self.wanted(tbl.Table(ts, table)):
                continue
            row = self.conn.execute(sql.SQL(
                "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
                "FROM {}), (SELECT max({}) FROM {})").format(
                    sql.Identifier(ss, seq), sql.Identifier(column),
                    sql.Identifier(ts, table))).fetchone()
            if row and row[1] is not None and row[0] < row[1]:
                problems.append(f"{names.qualified(ss, seq)} is at {row[0]}, behind "
                                f"{names.qualified(ts, table)}.{column} max {row[1]}")
        self.compared.append("constraints valid, foreign keys hold, sequences ahead of "
                             "their columns")
        return problems

    def _exists(self, relation: tbl.Table) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            [relation.schema, relation.name]).fetchone() is not None


def health_problems(conn: psycopg.Connection[Any], manifest: Manifest) -> list[str]:
    checks = {name: item["query"] for name, item in manifest.health.items()}
    now = run_checks(conn, checks)
    return [f"health check {name}: {now[name]['value']!r}, expected {item['value']!r}"
            for name, item in manifest.health.items() if now[name]["value"] != item["value"]]


def _sequence_owners(manifest: Manifest) -> dict[tbl.Table, tbl.Table]:
    """sequence -> the table that owns it, from the schema signature."""
    return {tbl.Table.parse(key.split(" ", 1)[1]): tbl.Table.parse(item["table"])
            for key, item in manifest.schema.get("objects", {}).items()
            if key.startswith("sequence ") and item.get("table")}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
