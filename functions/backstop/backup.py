"""One backup: pg_dump inside an exported snapshot -> zstd -> gpg -> object store, streaming.

The table counts and fingerprints are taken in the same snapshot the dump reads, so a restore
must reproduce them exactly. The manifest is written last; a failure aborts the object and
leaves a FAILED manifest (when the store still accepts writes), never a DONE one.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from backstop import pipeline
from backstop import tables as tbl
from backstop.connection import Connection
from backstop.crypto import Keyring
from backstop.errors import BackstopError, ConfigError, DumpError, SourceError
from backstop.manifest import (
    DONE,
    FAILED,
    Manifest,
    Scope,
    check_database_name,
    check_retention,
    object_key,
)
from backstop.store import ObjectStore
from backstop.tools import pg_tool, tool_version

log = logging.getLogger(__name__)

FINGERPRINT_LIMIT = 2 * 1024**3  # tables above this many bytes get a row count only


@dataclasses.dataclass(frozen=True)
class BackupRequest:
    database: str
    retention: str = "manual"
    reason: str = "manual backup"
    scope: Scope = dataclasses.field(default_factory=Scope)
    # name -> SQL returning one value, recorded in the snapshot; verification re-runs them
    checks: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_database_name(self.database)
        check_retention(self.retention)


def run_backup(request: BackupRequest, *, connection: Connection, store: ObjectStore,
               recipient_keys: Sequence[str], fingerprint_limit: int = FINGERPRINT_LIMIT,
               progress: pipeline.Progress | None = None,
               deadline: float | None = None) -> Manifest:
    """``deadline`` (a ``time.monotonic()`` value): stop the dump then, so that a runner about
    to be killed still aborts the upload and records the FAILED manifest with the reason."""
    started = datetime.now(UTC)
    backup_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    base = Manifest(id=backup_id, database=request.database, retention=request.retention,
                    reason=request.reason, scope=request.scope, status=FAILED,
                    started_at=started, finished_at=started,
                    key=object_key(request.retention, request.database, started, backup_id),
                    fingerprint_limit_bytes=fingerprint_limit)
    with Keyring() as keyring:
        recipients = keyring.import_keys(recipient_keys, what="recipient public key")
        encryption = {"type": "OpenPGP", "recipients": recipients, "compress_algo": "none"}
        with connection.connect() as conn:
            try:
                done = _dump(base, request.checks, conn, connection, store, keyring,
                             recipients, progress, deadline)
            except psycopg.Error as exc:  # e.g. a role that may not export snapshots
                failure = SourceError(f"reading {connection.describe()} failed: "
                                      f"{connection.scrub(str(exc))}; check the role's rights")
                _record_failure(store, base, encryption, failure)
                raise failure from None
            except BackstopError as exc:
                _record_failure(store, base, encryption, exc)
                raise
    manifest = dataclasses.replace(done, encryption=encryption)
    store.put(manifest.manifest_key, manifest.to_json())
    log.info("backup %s done: %s, %d bytes", manifest.id, manifest.key, manifest.size)
    return manifest


def _dump(base: Manifest, checks: Mapping[str, str], conn: psycopg.Connection[Any],
          connection: Connection, store: ObjectStore, keyring: Keyring, recipients: list[str],
          progress: pipeline.Progress | None, deadline: float | None = None) -> Manifest:
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    row = conn.execute("SELECT pg_export_snapshot(), now(), current_setting('server_version')"
                       ).fetchone()
    assert row is not None
    snapshot_id, taken_at, server_version = row
    available = tbl.user_tables(conn)
    excluded = tbl.resolve(base.scope.exclude_tables, list(available))
    if base.scope.tables:
        selected = {t: available[t] for t in tbl.resolve(base.scope.tables, list(available))}
    else:
        selected = {t: size for t, size in available.items() if t not in excluded}
    args = _dump_args(base.scope, list(selected), excluded, snapshot_id, connection)
    extensions = dict(conn.execute("SELECT extname, extversion FROM pg_extension "
                                   "WHERE extname <> 'plpgsql' ORDER BY 1").fetchall())
    health = run_checks(conn, checks)

    measured: list[tbl.TableStats] = []
    failures: list[BaseException] = []

    def measure() -> None:
        try:
            measured.extend(tbl.measure(conn, selected, base.fingerprint_limit_bytes))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    writer = store.writer(base.key)
    counter = threading.Thread(target=measure, name="backstop-measure")
    try:
        with connection.child_env() as env:
            counter.start()
            stored = pipeline.dump_to(
                writer, args=args, env=env, keyring=keyring, recipients=recipients,
                progress=progress, deadline=deadline,
                describe=lambda why: f"pg_dump of {connection.describe()} failed "
                                     f"({connection.scrub(why)}); nothing was stored")
            counter.join()
        if failures:  # the first cause: a failed count also ends the snapshot pg_dump uses
            raise failures[0]
        writer.commit()
    except BaseException as exc:
        if counter.is_alive():
            conn.cancel()
            counter.join()
        writer.abort()
        if failures and isinstance(exc, DumpError) and not _past(deadline):
            raise failures[0] from None  # a failed count ends pg_dump's snapshot
        raise
    return dataclasses.replace(
        base, status=DONE, finished_at=datetime.now(UTC), size=stored.size,
        sha256=stored.sha256,
        snapshot={"id": snapshot_id, "taken_at": taken_at.isoformat()},
        source={"database": connection.dbname, "host": connection.host,
                "server_version": server_version},
        dump={"tool": "pg_dump", "version": tool_version("pg_dump"), "format": "custom",
              "compression": pipeline.COMPRESSION, "plain_size": stored.plain_size},
        tables=tuple(measured), extensions=extensions, health=health)


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def run_checks(conn: psycopg.Connection[Any], checks: Mapping[str, str]) -> dict[str, Any]:
    """Run each health query; record its SQL and its single value as text."""
    health: dict[str, Any] = {}
    for name, query in checks.items():
        try:
            row = conn.execute(query.encode()).fetchone()
        except psycopg.Error as exc:
            raise ConfigError(f"health check {name!r} failed: {' '.join(str(exc).split())}; "
                              "fix its SQL") from None
        health[name] = {"query": query, "value": None if row is None else _text(row[0])}
    return health


def _text(value: Any) -> str | None:
    """A server-independent text form: timestamps in UTC, whatever the session time zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    return None if value is None else str(value)


def _dump_args(scope: Scope, selected: list[tbl.Table], excluded: list[tbl.Table],
               snapshot_id: str, connection: Connection) -> list[str]:
    args = [pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password",
            f"--snapshot={snapshot_id}", f"--dbname={connection.conninfo()}"]
    if scope.mode != "full":
        args.append(f"--{scope.mode}")
    if scope.tables:
        args.append("--strict-names")
        args.extend(f"--table={t.dump_pattern()}" for t in selected)
    args.extend(f"--exclude-table={t.dump_pattern()}" for t in excluded)
    return args


def _record_failure(store: ObjectStore, base: Manifest, encryption: dict[str, Any],
                    exc: BaseException) -> None:
    failed = dataclasses.replace(base, status=FAILED, finished_at=datetime.now(UTC),
                                 error=str(exc), encryption=encryption)
    try:
        store.put(failed.manifest_key, failed.to_json())
    except BackstopError:
        log.warning("could not record the failure of backup %s in the store", base.id)
