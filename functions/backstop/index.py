"""The per-database index: one small object per database that says what matters now.

``index/<database>.json`` in the store holds the newest backups and restore tests in brief
(bounded lists), so the RPO check, runner choice and listings read one object per database
instead of every manifest ever written. The library updates it where it writes the record the
index summarizes: a backup's DONE or FAILED manifest (``backup.run_backup``), a restore test's
report in the manifest (``prove.record``), whoever runs them (a workflow or the command line).
Each update is a compare-and-swap (S3 conditional writes, a file lock locally), so two writers
never lose each other's entry. A missing index is built once from the manifests (a store
written before the index existed, or an index deleted to be rebuilt) by the next ``ensure``
(the RPO check), keeping what only the index knew.

The manifests stay the record: an index that cannot be updated never fails the backup or the
restore test it would have recorded (``record_quietly``).

What counts for the recovery point is one predicate, ``is_full``: a DONE backup of the whole
database, or of exactly the scope its configuration declares.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backstop.errors import BackstopError, NotFoundError, StoreError
from backstop.manifest import DONE, Manifest
from backstop.s3store import S3Store
from backstop.store import LocalStore, ObjectStore

log = logging.getLogger(__name__)
INDEX_VERSION = 1
KEEP_BACKUPS = 60  # newest first; runner choice reads the last few, listings the rest
KEEP_RESTORES = 20
CAS_ATTEMPTS = 8
# Set on an index a writer had to start without reading the manifests (a backup's role may not
# list them; the backups before it would be missing): the next ``ensure`` folds them in.
UNREAD = "manifests_unread"
Doc = dict[str, Any]


def index_key(database: str) -> str:
    return f"index/{database}.json"


# --------------------------------------------------------------------------- what counts
def is_full(scope: Mapping[str, Any], declared: Mapping[str, Any] | None = None) -> bool:
    """Does a backup of this scope protect the database? Its whole data and schema (mode full,
    no include list, nothing excluded beyond what the configuration excludes), or exactly the
    scope the database's configuration declares."""
    if declared is not None and same_scope(scope, declared):
        return True
    if scope.get("mode", "full") != "full":
        return False
    if scope.get("tables") or scope.get("schemas"):
        return False
    declared = declared or {}
    return all(set(scope.get(key) or ()) <= set(declared.get(key) or ())
               for key in ("exclude_tables", "exclude_schemas"))


def same_scope(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def norm(s: Mapping[str, Any]) -> dict[str, Any]:
        return {k: sorted(v) if isinstance(v, list | tuple) else v for k, v in s.items() if v}
    return norm(a) == norm(b)


def is_good(entry: Mapping[str, Any]) -> bool:
    """DONE, not empty, and not proven wrong by a restore test."""
    return (entry.get("status") == DONE and int(entry.get("size") or 0) > 0
            and entry.get("verified") is not False)


# --------------------------------------------------------------------------- entries
def backup_entry(manifest: Manifest, *, runner: str | None = None,
                 stopped_at_deadline: bool = False) -> Doc:
    """The brief of one backup the index keeps. ``runner``: where it ran (``runners.LAMBDA``,
    ``runners.CONTAINER``), None where no runner placed it (the command line)."""
    return {
        "id": manifest.id, "retention": manifest.retention, "status": manifest.status,
        "scope": _plain(dataclasses.asdict(manifest.scope)),
        "started_at": manifest.started_at.isoformat(),
        "finished_at": manifest.finished_at.isoformat(),
        "snapshot_at": manifest.snapshot.get("taken_at"),
        "size": manifest.size, "plain_size": int(manifest.dump.get("plain_size") or 0),
        "seconds": round(manifest.duration_seconds, 3), "runner": runner,
        "manifest_key": manifest.manifest_key, "error": manifest.error,
        "verified": _verified(manifest), "stopped_at_deadline": stopped_at_deadline}


def failure_entry(*, database: str, retention: str, scope: Mapping[str, Any],
                  started_at: datetime, runner: str | None, error: str,
                  stopped_at_deadline: bool) -> Doc:
    """A backup that failed before it could report a manifest to its caller."""
    now = datetime.now(UTC)
    return {"id": None, "retention": retention, "status": "FAILED", "scope": _plain(scope),
            "started_at": started_at.isoformat(), "finished_at": now.isoformat(),
            "snapshot_at": None, "size": 0, "plain_size": 0,
            "seconds": round((now - started_at).total_seconds(), 3), "runner": runner,
            "manifest_key": None, "error": error[:500], "verified": None,
            "stopped_at_deadline": stopped_at_deadline}


def restore_entry(*, backup_id: str, plain_size: int, seconds: float, ok: bool,
                  runner: str | None, at: str) -> Doc:
    """One measured restore, all phases (fetch, decrypt, pg_restore, checks) in ``seconds``."""
    return {"backup_id": backup_id, "plain_size": plain_size, "seconds": round(seconds, 3),
            "ok": ok, "runner": runner, "at": at}


def _verified(manifest: Manifest) -> bool | None:
    if not manifest.verification:
        return None
    return bool(manifest.verification.get("ok"))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


# --------------------------------------------------------------------------- updates
def record_backup(store: ObjectStore, manifest: Manifest, *, runner: str | None = None,
                  stopped_at_deadline: bool = False) -> Doc:
    entry = backup_entry(manifest, runner=runner, stopped_at_deadline=stopped_at_deadline)
    return update(store, manifest.database, lambda doc: _put_backup(doc, entry))


def record_failure(store: ObjectStore, entry: Doc, *, database: str) -> Doc:
    return update(store, database, lambda doc: _put_backup(doc, entry))


def record_quietly(store: ObjectStore, database: str, what: str,
                   record: Callable[[], object]) -> None:
    """Run ``record`` (one of the updates above) for an outcome already written down, as one
    warning instead of an error when the index cannot take it: the backup or restore test is
    done and its manifest says so. The index then lacks that entry. For the RPO that errs
    towards alarming (a missed backup makes the recovery point look older until the next one is
    recorded); a missed failed restore test was reported by the test itself. The warning says
    how to bring the index back in line: delete it, and the next ``ensure`` rebuilds it from
    the manifests, restore timings included."""
    try:
        record()
    except Exception as exc:  # whatever broke the index (store, lock, a damaged object)
        why = str(exc) if isinstance(exc, BackstopError) else type(exc).__name__
        log.warning("%s, but index %s in %s was not updated (%s); delete that object and it "
                    "is rebuilt from the manifests", what, index_key(database), store.location,
                    why)


def record_verification(store: ObjectStore, manifest: Manifest, *, runner: str | None) -> Doc:
    """The restore test ``manifest`` records: its backup's verdict, and the measured restore
    with ``runner`` (None for the command line)."""
    measured = _measured(manifest, runner)
    assert measured is not None, f"backup {manifest.id} records no restore test"
    ok, at = measured["ok"], measured["at"]

    def change(doc: Doc) -> None:
        entry = next((b for b in doc["backups"] if b.get("id") == manifest.id), None)
        if entry is None:
            entry = backup_entry(manifest)
            _put_backup(doc, entry)
        entry["verified"] = ok
        if ok:
            entry["verified_at"] = at
            newest = doc.get("newest_verified")
            if newest is None or _snapshot(entry) >= _snapshot(newest):
                doc["newest_verified"] = dict(entry)
        doc["restores"] = [measured, *doc["restores"]][:KEEP_RESTORES]
        if doc.get("newest_good") and doc["newest_good"].get("id") == manifest.id and not ok:
            doc["newest_good"] = _newest_good(doc["backups"])

    return update(store, manifest.database, change)


def _measured(manifest: Manifest, runner: str | None = None) -> Doc | None:
    """The restore a manifest's verification measured, every phase counted (the manifest
    does not record the runner)."""
    report = manifest.verification or {}
    if "restore_seconds" not in report:
        return None
    return restore_entry(backup_id=manifest.id,
                         plain_size=int(manifest.dump.get("plain_size") or 0),
                         seconds=float(report["restore_seconds"])
                         + float(report.get("verify_seconds") or 0),
                         ok=bool(report.get("ok")), runner=runner,
                         at=str(report.get("verified_at")))


def _put_backup(doc: Doc, entry: Doc) -> None:
    backups = [b for b in doc["backups"] if entry["id"] is None or b.get("id") != entry["id"]]
    doc["backups"] = sorted([entry, *backups], key=lambda b: b["started_at"],
                            reverse=True)[:KEEP_BACKUPS]
    newest = doc.get("newest_good")
    if is_good(entry) and (newest is None or _snapshot(entry) >= _snapshot(newest)):
        doc["newest_good"] = dict(entry)


def _newest_good(backups: list[Doc]) -> Doc | None:
    good = [b for b in backups if is_good(b)]
    newest: Doc | None = max(good, key=_snapshot) if good else None
    return None if newest is None else dict(newest)


def _snapshot(entry: Mapping[str, Any]) -> str:
    return str(entry.get("snapshot_at") or entry.get("started_at"))


def empty(database: str, *, now: datetime | None = None) -> Doc:
    return {"version": INDEX_VERSION, "database": database,
            "watched_since": (now or datetime.now(UTC)).isoformat(),
            "backups": [], "restores": [], "newest_good": None, "newest_verified": None}


# --------------------------------------------------------------------------- reading
def read(store: ObjectStore, database: str) -> Doc | None:
    """The index, or None when there is none yet."""
    try:
        doc: Doc = json.loads(store.get(index_key(database)))
    except NotFoundError:
        return None
    except ValueError:
        raise StoreError(f"index {index_key(database)} in {store.location} is not JSON; "
                         "delete it and it is rebuilt from the manifests") from None
    return doc


def ensure(store: ObjectStore, database: str, *, now: datetime | None = None) -> Doc:
    """The index, built from the manifests and stored when it is missing or was started by a
    writer that did not read them (``UNREAD``)."""
    doc = read(store, database)
    return doc if doc is not None and not doc.get(UNREAD) else rebuild(store, database, now=now)


def rebuild(store: ObjectStore, database: str, *, now: datetime | None = None) -> Doc:
    from backstop.catalog import list_manifests  # the one full read, on first use only

    manifests = list_manifests(store, database=database)

    def change(doc: Doc) -> None:
        fresh = empty(database, now=now)
        if manifests:
            fresh["watched_since"] = min(m.started_at for m in manifests).isoformat()
        for manifest in reversed(manifests):  # oldest first: newest ends up on top
            entry = backup_entry(manifest)
            _put_backup(fresh, entry)
            if entry["verified"]:
                entry["verified_at"] = (manifest.verification or {}).get("verified_at")
                newest = fresh["newest_verified"]
                if newest is None or _snapshot(entry) >= _snapshot(newest):
                    fresh["newest_verified"] = dict(entry)
        fresh["restores"] = sorted(filter(None, map(_measured, manifests)),
                                   key=lambda r: str(r["at"]), reverse=True)[:KEEP_RESTORES]
        _keep(doc, fresh)
        doc.clear()
        doc.update(fresh)

    return update(store, database, change, now=now)


def _keep(old: Doc, fresh: Doc) -> None:
    """Fold into an index rebuilt from the manifests what only the old index knew: the runner
    of each backup and whether it stopped at its deadline, failures before any manifest,
    entries whose manifests have expired, restores with their runner, and since when the
    database has been watched."""
    by_id = {b["id"]: b for b in fresh["backups"]}
    for entry in reversed(old.get("backups") or []):
        known = by_id.get(entry.get("id"))
        if known is None:
            _put_backup(fresh, entry)
        else:
            known["runner"] = entry.get("runner")
            known["stopped_at_deadline"] = bool(entry.get("stopped_at_deadline"))
    kept = old.get("restores") or []
    seen = {(r["backup_id"], r["at"]) for r in kept}
    fresh["restores"] = sorted(
        [*kept, *(r for r in fresh["restores"] if (r["backup_id"], r["at"]) not in seen)],
        key=lambda r: str(r["at"]), reverse=True)[:KEEP_RESTORES]
    verified = old.get("newest_verified")
    if verified and (fresh["newest_verified"] is None
                     or _snapshot(verified) > _snapshot(fresh["newest_verified"])):
        fresh["newest_verified"] = verified
    if old.get("watched_since"):
        fresh["watched_since"] = min(datetime.fromisoformat(w) for w in (
            fresh["watched_since"], old["watched_since"])).isoformat()


# --------------------------------------------------------------------------- compare and swap
def update(store: ObjectStore, database: str, change: Callable[[Doc], None], *,
           now: datetime | None = None) -> Doc:
    """Read, change, write back only if nobody wrote in between; retry otherwise."""
    key = index_key(database)
    swap = _swapper(store)
    for _ in range(CAS_ATTEMPTS):
        with swap.locked(key):
            raw, version = swap.get(key)
            doc = json.loads(raw) if raw is not None else dict(empty(database, now=now),
                                                               **{UNREAD: True})
            change(doc)
            if swap.put(key, json.dumps(doc, indent=1).encode(), version):
                return doc
    raise StoreError(f"index {key} in {store.location} kept changing while it was updated "
                     f"({CAS_ATTEMPTS} tries); run the step again")


class _Swapper:
    """Plain read-modify-write, for stores with no conditional write."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        yield

    def get(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            return self.store.get(key), None
        except NotFoundError:
            return None, None

    def put(self, key: str, data: bytes, version: str | None) -> bool:
        self.store.put(key, data)
        return True


class _LocalSwapper(_Swapper):
    """A local directory: an exclusive file lock around the read-modify-write."""

    def __init__(self, store: LocalStore) -> None:
        super().__init__(store)
        self.root = Path(store.root)

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        lock = self.root / (key + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class _S3Swapper(_Swapper):
    """S3 conditional writes: If-Match the ETag read, or If-None-Match for a new object."""

    def __init__(self, store: S3Store) -> None:
        super().__init__(store)
        self.s3 = store

    def _full(self, key: str) -> str:
        return f"{self.s3.prefix}/{key}" if self.s3.prefix else key

    def get(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            response = self.s3.client.get_object(Bucket=self.s3.bucket, Key=self._full(key))
        except self.s3.client.exceptions.NoSuchKey:
            return None, None
        except Exception as exc:
            raise StoreError(f"cannot read {self._full(key)} from s3://{self.s3.bucket}: "
                             f"{_code(exc)}") from None
        return response["Body"].read(), str(response["ETag"])

    def put(self, key: str, data: bytes, version: str | None) -> bool:
        condition = {"IfMatch": version} if version else {"IfNoneMatch": "*"}
        try:
            self.s3.client.put_object(Bucket=self.s3.bucket, Key=self._full(key), Body=data,
                                      ContentType="application/json", **condition)
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise StoreError(f"cannot write {self._full(key)} to s3://{self.s3.bucket}: "
                             f"{_code(exc)}") from None
        return True


def _swapper(store: ObjectStore) -> _Swapper:
    if isinstance(store, S3Store):
        return _S3Swapper(store)
    if isinstance(store, LocalStore):
        return _LocalSwapper(store)
    return _Swapper(store)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


# --------------------------------------------------------------------------- ages
@dataclasses.dataclass(frozen=True)
class Ages:
    """Hours since the snapshot of the newest good full backup, and of the newest one a
    restore test proved; with none, hours since the database has been watched."""

    recovery_hours: float
    verified_hours: float
    newest_full: str | None
    newest_verified: str | None


def ages(doc: Doc, *, now: datetime, declared: Mapping[str, Any] | None = None) -> Ages:
    full = [b for b in doc["backups"] if is_good(b) and is_full(b["scope"], declared)]
    for kept in (doc.get("newest_good"), doc.get("newest_verified")):
        if kept and is_good(kept) and is_full(kept["scope"], declared):
            full.append(kept)
    verified = [b for b in full if b.get("verified") is True]
    watched = datetime.fromisoformat(doc["watched_since"])

    def since(entries: list[Doc]) -> tuple[float, str | None]:
        if not entries:
            return _hours(now - watched), None
        newest = max(entries, key=_snapshot)
        return _hours(now - datetime.fromisoformat(_snapshot(newest))), newest.get("id")

    recovery, full_id = since(full)
    verified_age, verified_id = since(verified)
    return Ages(recovery, verified_age, full_id, verified_id)


def _hours(delta: timedelta) -> float:
    return round(max(0.0, delta.total_seconds()) / 3600, 4)
