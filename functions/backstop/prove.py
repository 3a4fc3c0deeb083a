"""Proving backups: restore one into a scratch database, compare it with its manifest and
drop the database (`verify_backup`); compare an existing database, read-only (`check`); and
keep the verdict in the manifest and the database's index (`record`).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from psycopg import sql

from backstop import catalog, health, index, leftovers, verify
from backstop.connection import Connection
from backstop.manifest import Manifest
from backstop.restore import RestoreRequest, database_errors, restore
from backstop.store import ObjectStore


def check(manifest: Manifest, *, target: Connection, tables: Sequence[str] = (),
          checks: Mapping[str, str] | None = None) -> verify.Report:
    """Prove an existing database against a backup's manifest, read-only: after a restore by
    hand with stock tools, or to see what changed since. With `tables`, only those and what
    belongs to them; otherwise the whole database, which must hold nothing else."""
    chosen = manifest.catalog().resolve(tables, where=f"backup {manifest.id}") \
        if tables else None
    started = time.monotonic()
    if checks:
        health.prepare_role(target)
    with database_errors(target), target.connect() as conn:
        comparison = verify.compare(conn, manifest, verify.Scope(
            tables=None if chosen is None else tuple(chosen), whole_database=chosen is None))
        problems = comparison.problems
        if chosen is None and manifest.scope.is_full:
            with conn.transaction():  # still read-only, as compare left the connection
                problems += verify.health_problems(conn, manifest, checks or {})
    return verify.Report(
        backup_id=manifest.id, database=manifest.database, target=target.dbname, mode="check",
        ok=not problems and comparison.ok, tables=comparison.tables, problems=problems,
        restore_seconds=0.0, verify_seconds=round(time.monotonic() - started, 3),
        bytes_restored=0, verified_at=verify.now_iso(), compared=comparison.compared,
        notes=comparison.notes)


def verify_backup(store: ObjectStore, manifest: Manifest, *, server: Connection,
                  private_key: str, staging: Path | None = None,
                  checks: Mapping[str, str] | None = None,
                  runner: str | None = None) -> verify.Report:
    """Restore into a scratch database of its own on `server`, verify, drop it, and record
    the report in the backup's manifest and the database's index (``record``)."""
    scratch = f"backstop_verify_{manifest.id.replace('-', '_').lower()}_{secrets.token_hex(3)}"
    with database_errors(server), server.connect(autocommit=True) as conn:
        leftovers.sweep_scratch(conn)
        leftovers.create_scratch(conn, scratch)
    try:
        report = restore(store, manifest, target=server.with_dbname(scratch),
                         request=RestoreRequest(checks=dict(checks or {})),
                         private_key=private_key, staging=staging).report
    finally:
        with database_errors(server), server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(scratch)))
    record(store, manifest, report, runner=runner)
    return report


def record(store: ObjectStore, manifest: Manifest, report: verify.Report, *,
           runner: str | None = None) -> Manifest:
    """Write the verification into a new version of the manifest (one atomic put), then into
    the database's index with the restore's measured time, every phase counted, and
    ``runner`` (None for the command line), for the next runner choice."""
    current = catalog.find(store, manifest.id)
    updated = dataclasses.replace(current, verification={
        **report.to_dict(), "how": "restore into a scratch database, compared with the "
                                   "manifest: " + "; ".join(report.compared)})
    catalog.save(store, updated)
    index.record_quietly(store, updated.database, f"the restore test of {updated.id} is stored",
                         lambda: index.record_verification(store, updated, runner=runner))
    return updated
