"""Choose a backup, prove its object is intact, restore it, verify it, record the result.

Nothing touches a target before the object's size and sha256 equal the manifest and it has
decrypted with the given private key. A target that already holds tables needs `confirm`
equal to its name and gets a pre-restore backup first; if that fails, nothing is restored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import zstandard
from psycopg import sql

from backstop import catalog, verify
from backstop.backup import BackupRequest, run_backup
from backstop.connection import Connection
from backstop.crypto import Keyring
from backstop.errors import (
    ConfigError,
    DumpError,
    EncryptionError,
    IntegrityError,
    NotFoundError,
    SourceError,
)
from backstop.manifest import DONE, Manifest
from backstop.store import HashingReader, ObjectStore
from backstop.tables import Table, user_tables
from backstop.tools import pg_tool, tail

log = logging.getLogger(__name__)

RESTORE_MODES = ("full", "tables", "data-only", "schema-only")
STAGING_HEADROOM = 1.1  # staged dumps need their plain size plus this margin of free space


@dataclasses.dataclass(frozen=True)
class RestoreRequest:
    mode: str = "full"
    tables: tuple[str, ...] = ()
    confirm: str | None = None
    jobs: int = min(4, os.cpu_count() or 1)

    def __post_init__(self) -> None:
        if self.mode not in RESTORE_MODES:
            raise ConfigError(f"restore mode {self.mode!r} is not one of "
                              f"{', '.join(RESTORE_MODES)}")
        if (self.mode == "tables") != bool(self.tables):
            raise ConfigError("mode 'tables' needs table names, and table names need "
                              "mode 'tables'")


def choose(store: ObjectStore, which: str, *, database: str | None = None,
           before: datetime | None = None) -> Manifest:
    """A backup by id, or `latest`: the newest DONE backup of `database` (before a time)."""
    if which != "latest":
        manifest = catalog.find(store, which)
        if manifest.status != DONE:
            raise NotFoundError(f"backup {which} is {manifest.status}, not DONE: "
                                f"{manifest.error}; choose another backup")
        return manifest
    if database is None:
        raise ConfigError("'latest' needs the database name; pass --database")
    for manifest in catalog.list_manifests(store, database=database):
        if manifest.status == DONE and (before is None or snapshot_time(manifest) < before):
            return manifest
    when = f" before {before.isoformat()}" if before else ""
    raise NotFoundError(f"no DONE backup of {database}{when} in {store.location}")


def snapshot_time(manifest: Manifest) -> datetime:
    return datetime.fromisoformat(manifest.snapshot["taken_at"])


def data_loss_window(manifest: Manifest, incident_at: datetime) -> timedelta:
    """What a restore of this backup loses: everything between its snapshot and the incident."""
    return incident_at - snapshot_time(manifest)


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A backup object, checked and decrypted: staged on disk, or to be streamed."""

    path: Path | None  # the plain dump, when it fit on local disk
    manifest: Manifest


@contextlib.contextmanager
def fetch(store: ObjectStore, manifest: Manifest, private_key: str,
          staging: Path | None = None) -> Iterator[Fetched]:
    """Check the object against the manifest and that it decrypts; stage the plain dump on
    disk when it fits (for parallel pg_restore), else check only and restore by streaming."""
    directory = Path(staging or tempfile.gettempdir())
    plain_size = int(manifest.dump.get("plain_size", 0))
    fits = shutil.disk_usage(directory).free > plain_size * STAGING_HEADROOM
    with tempfile.TemporaryDirectory(dir=directory, prefix="backstop-restore-") as tmp:
        path = Path(tmp) / f"{manifest.id}.dump"
        with open(path if fits else os.devnull, "wb") as out:
            _decrypt(store, manifest, private_key, out)
        yield Fetched(path if fits else None, manifest)


def check_object(store: ObjectStore, manifest: Manifest, private_key: str) -> None:
    """The integrity pre-check on its own: size, sha256 and decryption, nothing written.
    The cloud workflow runs it before paying for a scratch instance."""
    with open(os.devnull, "wb") as sink:
        _decrypt(store, manifest, private_key, sink)


def _decrypt(store: ObjectStore, manifest: Manifest, private_key: str, out: BinaryIO) -> None:
    hashing = HashingReader(store.reader(manifest.key))
    failure: BaseException | None = None
    with Keyring() as keyring, hashing:
        keyring.import_keys([private_key], what="private key")
        plain = zstandard.ZstdDecompressor().stream_writer(out, closefd=False)
        try:
            keyring.decrypt(hashing, plain.write)
        except (EncryptionError, zstandard.ZstdError) as exc:
            failure = exc
        hashing.drain()
    if hashing.size != manifest.size or hashing.sha256() != manifest.sha256:
        raise IntegrityError(
            f"backup {manifest.id}: object {manifest.key} does not match its manifest "
            f"({hashing.size} bytes, expected {manifest.size}; sha256 "
            f"{'differs' if hashing.sha256() != manifest.sha256 else 'equal'}); it is damaged "
            "or was replaced: nothing was restored, choose another backup")
    if failure is not None:
        recipients = ", ".join(manifest.encryption.get("recipients", []))
        raise EncryptionError(f"backup {manifest.id} does not decrypt with the given private "
                              f"key ({failure}); it was encrypted to {recipients}") from None


@dataclasses.dataclass(frozen=True)
class Outcome:
    report: verify.Report
    pre_restore_backup: str | None


def restore(store: ObjectStore, manifest: Manifest, *, target: Connection,
            request: RestoreRequest, private_key: str, recipient_keys: Sequence[str] = (),
            staging: Path | None = None) -> Outcome:
    """Restore `manifest` into `target` and verify it against the manifest."""
    with database_errors(target):
        return _restore(store, manifest, target, request, private_key, recipient_keys,
                        staging)


@contextlib.contextmanager
def database_errors(connection: Connection) -> Iterator[None]:
    """A database refusal (rights, a dropped connection) as one scrubbed SourceError line."""
    try:
        yield
    except psycopg.Error as exc:
        raise SourceError(f"{connection.describe()} refused: {connection.scrub(str(exc))}; "
                          "check the role's rights and the server") from None


def _restore(store: ObjectStore, manifest: Manifest, target: Connection,
             request: RestoreRequest, private_key: str, recipient_keys: Sequence[str],
             staging: Path | None) -> Outcome:
    missing = [t for t in request.tables if t not in _table_names(manifest)]
    if missing:
        raise NotFoundError(f"table {', '.join(missing)} is not in backup {manifest.id} "
                            f"(it has {', '.join(sorted(_table_names(manifest, short=True)))})")
    occupied = _preflight(target, manifest, request)
    started = time.monotonic()  # the measured RTO includes fetching and decrypting
    with fetch(store, manifest, private_key, staging) as fetched:
        pre_restore = None
        if occupied:
            pre_restore = run_backup(
                BackupRequest(manifest.database, "pre-restore",
                              f"before restoring {manifest.id} into {target.dbname}"),
                connection=target, store=store, recipient_keys=recipient_keys).id
        _create_extensions(target, manifest)
        if occupied and request.mode == "data-only":
            _empty_tables(target, manifest)
        _pg_restore(store, fetched, target, request, clean=occupied, private_key=private_key)
        restored = time.monotonic()
        with target.connect(autocommit=True) as conn:
            results, problems = verify.check(conn, manifest, mode=request.mode,
                                             tables=request.tables)
    ok = not problems and all(t["result"].startswith("equal") for t in results)
    report = verify.Report(
        backup_id=manifest.id, database=manifest.database, target=target.dbname,
        mode=request.mode, ok=ok, tables=results, problems=problems,
        restore_seconds=round(restored - started, 3),
        verify_seconds=round(time.monotonic() - restored, 3),
        bytes_restored=int(manifest.dump.get("plain_size", 0)), verified_at=verify.now_iso())
    return Outcome(report, pre_restore)


def verify_backup(store: ObjectStore, manifest: Manifest, *, server: Connection,
                  private_key: str, staging: Path | None = None) -> verify.Report:
    """Restore into a scratch database on `server`, verify, drop it, and record the report
    in the backup's manifest."""
    scratch = f"backstop_verify_{manifest.id.replace('-', '_').lower()}"
    with database_errors(server), server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(scratch)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        report = restore(store, manifest, target=server.with_dbname(scratch),
                         request=RestoreRequest(), private_key=private_key,
                         staging=staging).report
    finally:
        with database_errors(server), server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(scratch)))
    record(store, manifest, report)
    return report


def record(store: ObjectStore, manifest: Manifest, report: verify.Report) -> Manifest:
    """Write the verification into a new version of the manifest (one atomic put)."""
    current = catalog.find(store, manifest.id)
    updated = dataclasses.replace(current, verification={
        **report.to_dict(), "how": "restore into a scratch database, counts + fingerprints"})
    store.put(updated.manifest_key, updated.to_json())
    return updated


def _table_names(manifest: Manifest, *, short: bool = False) -> set[str]:
    names = {t.name for t in manifest.tables}
    return names if short else names | {f"{t.schema}.{t.name}" for t in manifest.tables}


def _preflight(target: Connection, manifest: Manifest, request: RestoreRequest) -> bool:
    """Read-only checks of the target. Returns whether it already holds user tables."""
    with target.connect(autocommit=True) as conn:
        major = conn.info.server_version // 10000
        source_major = int(manifest.source["server_version"].split(".")[0])
        if major < source_major:
            raise ConfigError(
                f"backup {manifest.id} comes from PostgreSQL {source_major}; target "
                f"{target.describe()} runs {major}: restore into {source_major} or newer")
        available = {name for (name,) in conn.execute(
            "SELECT name FROM pg_available_extensions").fetchall()}
        lacking = sorted(set(manifest.extensions) - available)
        if lacking:
            raise SourceError(f"target {target.describe()} lacks extension(s) "
                              f"{', '.join(lacking)} that backup {manifest.id} needs; install "
                              "them on the server (pgvector: the 'vector' extension)")
        occupied = bool(user_tables(conn))
    if occupied and request.confirm != target.dbname:
        raise ConfigError(f"target {target.describe()} already has tables; to replace them, "
                          f"confirm with the database name ({target.dbname!r}); a pre-restore "
                          "backup of its current state is taken first")
    return occupied


def _create_extensions(target: Connection, manifest: Manifest) -> None:
    with target.connect(autocommit=True) as conn:
        for name in manifest.extensions:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(
                sql.Identifier(name)))


def _empty_tables(target: Connection, manifest: Manifest) -> None:
    """Data-only over existing data replaces it: empty the backup's tables, in one statement
    so foreign keys between them are no obstacle (and never CASCADE into other tables)."""
    with target.connect(autocommit=True) as conn:
        present = user_tables(conn)
        names = [Table(t.schema, t.name) for t in manifest.tables
                 if Table(t.schema, t.name) in present]
        if names:
            conn.execute(sql.SQL("TRUNCATE {}").format(
                sql.SQL(", ").join(t.identifier() for t in names)))


def _pg_restore(store: ObjectStore, fetched: Fetched, target: Connection,
                request: RestoreRequest, *, clean: bool, private_key: str) -> None:
    args = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
            "--no-password", f"--dbname={target.conninfo()}"]
    if request.mode in ("data-only", "schema-only"):
        args.append(f"--{request.mode}")
    args.extend(f"--table={name.rsplit('.', 1)[-1]}" for name in request.tables)
    if clean and request.mode != "data-only":
        args += ["--clean", "--if-exists"]
    with target.child_env() as env, tempfile.TemporaryFile() as stderr:
        if request.mode == "data-only":
            # Table data loads in name order, not foreign-key order: hold the FK triggers
            # (superuser or RDS's rds_superuser); verification then checks every FK.
            env["PGOPTIONS"] = "-c session_replication_role=replica"
        if fetched.path is not None:
            code = subprocess.run([*args, f"--jobs={request.jobs}", str(fetched.path)],
                                  env=env, stderr=stderr, check=False).returncode
        else:
            code = _stream_restore(store, fetched.manifest, private_key, args, env, stderr)
        if code != 0:
            stderr.seek(0)
            raise DumpError(f"pg_restore into {target.describe()} failed (exit {code}): "
                            f"{target.scrub(tail(stderr.read()))}")


def _stream_restore(store: ObjectStore, manifest: Manifest, private_key: str,
                    args: list[str], env: dict[str, str], stderr: Any) -> int:
    """Single-stream restore for dumps larger than local disk: object -> gpg -> zstd ->
    pg_restore's stdin. The object was already checked end to end by `fetch`."""
    process = subprocess.Popen(args, stdin=subprocess.PIPE, env=env, stderr=stderr)
    assert process.stdin is not None
    try:
        with process.stdin as pipe:
            _decrypt(store, manifest, private_key, pipe)  # type: ignore[arg-type]
    except BrokenPipeError:
        pass  # pg_restore stopped early; its exit code and stderr say why
    return process.wait()
