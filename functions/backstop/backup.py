"""One backup: pg_dump inside an exported snapshot -> zstd -> gpg -> object store, streaming.

The table counts and fingerprints are taken in the same snapshot the dump reads, so a restore
must reproduce them exactly. The manifest is written last; a failure aborts the object and
leaves a FAILED manifest (when the store still accepts writes), never a DONE one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from backstop import archive, catalog, index, pipeline, processes, profiles, signature, snapshot
from backstop import health as health_checks
from backstop import tables as tbl
from backstop.connection import Connection
from backstop.crypto import Keyring
from backstop.errors import BackstopError, DumpError, SourceError
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
               deadline: float | None = None, runner: str | None = None) -> Manifest:
    """``deadline`` (a ``time.monotonic()`` value): stop the dump then, so that a runner about
    to be killed still aborts the upload and records the FAILED manifest with the reason.

    Every outcome goes into the database's index once, DONE or FAILED, with ``runner``: where
    the caller ran it (``runners.LAMBDA``, ``runners.CONTAINER``), None for the command line,
    whose machine says nothing about either runner's limits. A failure before any manifest (a
    database that cannot be reached) is recorded for a runner, whose next choice reads it; a
    command line refused that early leaves the store untouched."""
    started = datetime.now(UTC)
    backup_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    base = Manifest(id=backup_id, database=request.database, retention=request.retention,
                    reason=request.reason, scope=request.scope, status=FAILED,
                    started_at=started, finished_at=started,
                    key=object_key(request.retention, request.database, started, backup_id),
                    fingerprint_limit_bytes=fingerprint_limit)
    written: list[Manifest] = []  # the FAILED manifest, once one is written
    try:
        manifest = _backup(base, request, connection, store, recipient_keys, progress,
                           deadline, written)
    except BackstopError as exc:
        if not written and runner is None:
            raise
        stopped, error = _past(deadline), str(exc)

        def record_failed() -> object:
            if written:
                return index.record_backup(store, written[0], runner=runner,
                                           stopped_at_deadline=stopped)
            return index.record_failure(store, index.failure_entry(
                database=request.database, retention=request.retention,
                scope=dataclasses.asdict(request.scope), started_at=started, runner=runner,
                error=error, stopped_at_deadline=stopped), database=request.database)

        index.record_quietly(store, request.database, f"backup {backup_id} failed",
                             record_failed)
        raise
    index.record_quietly(store, manifest.database, f"backup {manifest.id} is stored",
                         lambda: index.record_backup(store, manifest, runner=runner))
    return manifest


def _backup(base: Manifest, request: BackupRequest, connection: Connection, store: ObjectStore,
            recipient_keys: Sequence[str], progress: pipeline.Progress | None,
            deadline: float | None, written: list[Manifest]) -> Manifest:
    store.signing.check_ready()  # no backup that could not be recorded
    if request.checks:
        health_checks.prepare_role(connection)
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
                written.extend(_record_failure(store, base, encryption, failure))
                raise failure from None
            except BackstopError as exc:
                written.extend(_record_failure(store, base, encryption, exc))
                raise
    manifest = dataclasses.replace(done, encryption=encryption)
    catalog.save(store, manifest)
    log.info("backup %s done: %s, %d bytes", manifest.id, manifest.key, manifest.size)
    return manifest


def _dump(base: Manifest, checks: Mapping[str, str], conn: psycopg.Connection[Any],
          connection: Connection, store: ObjectStore, keyring: Keyring, recipients: list[str],
          progress: pipeline.Progress | None, deadline: float | None = None) -> Manifest:
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    # The snapshot must outlive the dump, however long it takes.
    conn.execute("SET idle_in_transaction_session_timeout = 0")
    conn.execute("SET statement_timeout = 0")
    row = conn.execute("SELECT pg_export_snapshot(), now(), current_setting('server_version')"
                       ).fetchone()
    assert row is not None
    snapshot_id, taken_at, server_version = row
    coverage = snapshot.cover(conn, base.scope)

    recorded: dict[str, Any] = {}
    failures: list[BaseException] = []
    stop = threading.Event()  # set on a failure here: pg_dump stops at once

    def measure() -> None:  # beside the dump, in the snapshot it reads
        try:
            recorded["health"] = health_checks.run(conn, checks)
            recorded.update(snapshot.record(conn, coverage, base.fingerprint_limit_bytes))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            stop.set()

    toc = archive.Reader()
    writer = store.writer(base.key)
    counter = threading.Thread(target=measure, name="backstop-measure")
    try:
        with connection.child_env() as env, _filter_file(base.scope, coverage) as filters:
            counter.start()
            stored = pipeline.dump_to(
                writer, args=_dump_args(base.scope, coverage, filters, snapshot_id, connection),
                env=env, keyring=keyring, recipients=recipients, progress=progress,
                tap=toc.feed, deadline=deadline, stop=stop,
                describe=lambda why: f"pg_dump of {connection.describe()} failed "
                                     f"({connection.scrub(why)}); nothing was stored")
            counter.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if counter.is_alive():  # the counts outlast the dump: the limit holds for both
                raise DumpError(f"the row counts of {connection.describe()} stopped at the "
                                "runner's time limit; nothing was stored")
        if failures:  # the first cause: a failed check or count stopped the dump
            raise failures[0]
        if toc.toc is None:
            raise DumpError(f"pg_dump of {connection.describe()} wrote no complete archive "
                            "header; nothing was stored")
        writer.commit()
    except BaseException as exc:
        early = list(failures)  # not those of the cancel below, which only end the count
        if counter.is_alive():
            conn.cancel()
            counter.join()
        writer.abort()
        if early and isinstance(exc, DumpError) and not _past(deadline):
            raise early[0] from None  # the dump was stopped for it
        raise
    return dataclasses.replace(
        base, status=DONE, finished_at=datetime.now(UTC), size=stored.size,
        sha256=stored.sha256,
        snapshot={"id": snapshot_id, "taken_at": taken_at.isoformat()},
        source={"database": connection.dbname, "host": connection.host,
                "server_version": server_version},
        dump={"tool": "pg_dump", "version": tool_version("pg_dump"), "format": "custom",
              "archive_version": ".".join(map(str, toc.toc.version)),
              "compression": pipeline.COMPRESSION, "plain_size": stored.plain_size,
              "entries": len(toc.toc.entries)},
        sequences=_held_sequences(toc.toc, recorded, coverage),
        **{**recorded, "extensions": snapshot.archived_members(recorded["extensions"],
                                                                toc.toc.entries)})


def _held_sequences(toc: archive.Toc, recorded: dict[str, Any],
                    coverage: snapshot.Coverage) -> dict[str, Any]:
    """The sequence values that belong to the rows the archive holds: those of sequences the
    held tables own, and in a backup of every row also the sequences no table owns. (A
    partitioned table's sequence serves every partition: only a whole backup holds it.)"""
    owners = signature.sequence_owners(recorded["schema"]["objects"])
    held = {r.table for r in coverage.data}
    return {key: value for key, value in toc.sequence_values().items()
            if coverage.whole or owners.get(tbl.Table.parse(key)) in held}


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _dump_args(scope: Scope, coverage: snapshot.Coverage, filters: str, snapshot_id: str,
               connection: Connection) -> list[str]:
    args = [pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password",
            f"--snapshot={snapshot_id}", f"--dbname={connection.conninfo()}",
            f"--filter={filters}"]
    if scope.mode == "schema-only":
        args.append("--schema-only")
    args.append("--large-objects" if coverage.whole else "--no-large-objects")
    args += [choice.name for choice in profiles.get(scope.profile).dump_options]
    return args


@contextlib.contextmanager
def _filter_file(scope: Scope, coverage: snapshot.Coverage) -> Iterator[str]:
    """pg_dump's --filter file: the schemas in scope by name when any is left out, with the
    extensions that travel (profiles.py says why), the tables left out, and the tables
    whose definitions the archive holds without their rows (names never reach argv). It lives
    in a private directory, so a backup killed mid-dump leaves it to the next one's sweep."""
    lines = []
    if coverage.named:
        lines += [f"include schema {tbl.dump_pattern(s)}" for s in coverage.schemas]
        lines += [f"include extension {tbl.dump_pattern(e)}" for e in coverage.extensions]
    lines += [f"exclude table {t.dump_pattern()}" for t in coverage.excluded]
    lines += [f"exclude table_data {t.dump_pattern()}" for t in coverage.without_data()]
    with processes.private_dir("filter") as directory:
        path = directory / "filter.txt"
        path.write_text("\n".join(lines) + "\n")
        yield str(path)


def _record_failure(store: ObjectStore, base: Manifest, encryption: dict[str, Any],
                    exc: BaseException) -> list[Manifest]:
    """The FAILED manifest, written; none when the store refuses it."""
    failed = dataclasses.replace(base, status=FAILED, finished_at=datetime.now(UTC),
                                 error=str(exc), encryption=encryption)
    try:
        catalog.save(store, failed)
    except BackstopError:
        log.warning("could not record the failure of backup %s in the store", base.id)
        return []
    return [failed]
