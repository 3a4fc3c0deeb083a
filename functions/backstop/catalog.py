"""What backups exist: read from the manifests in a store, nothing else.

The one way manifests are written (`save`) and read (`load`): `save` signs, `load` proves the
signature (the store's `signing` policy), validates against the manifest's JSON Schema
(manifest.schema.json, one sentence per problem) and only then builds a `Manifest`. A listing
skips a manifest it cannot trust with a warning that names it, so one damaged or planted file
neither hides the other backups nor is ever chosen as `latest`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from backstop.errors import (
    BackstopError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    StoreError,
    escape,
)
from backstop.manifest import DONE, MANIFEST_SUFFIX, RETENTION_CLASSES, Manifest, Scope
from backstop.store import ObjectStore

log = logging.getLogger(__name__)
SCHEMA = Path(__file__).with_name("manifest.schema.json")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # a manifest with 100,000 tables is about 15 MB
MAX_PROBLEMS = 5
# Manifests read at once: each is a GET and, signed with KMS, a VerifyMac; read one by one, a
# database's 2,000 manifests took most of the RPO function's minute. botocore pools 10
# connections per client.
READERS = 10


def save(store: ObjectStore, manifest: Manifest) -> None:
    """Sign and write a manifest (one atomic put)."""
    data = store.signing.seal(manifest.to_dict())
    store.put(manifest.manifest_key, json.dumps(data, indent=2).encode())


def load(store: ObjectStore, key: str) -> Manifest:
    """Read, authenticate and validate one manifest."""
    return parse(store, store.get(key), key)


def parse(store: ObjectStore, raw: bytes, key: str) -> Manifest:
    """Authenticate and validate the bytes of manifest `key` (one read by other means, such
    as an older version of the object)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise IntegrityError(f"manifest {key} is {len(raw)} bytes, more than any manifest "
                             "Backstop writes; it is not a Backstop manifest")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise IntegrityError(f"manifest {key} is not JSON (truncated or damaged); "
                             "choose another backup") from None
    if not isinstance(data, dict):
        raise IntegrityError(f"manifest {key} is not a JSON object; choose another backup")
    body = store.signing.open(data, key=key)
    problems = schema_problems(body)
    if problems:
        more = len(problems) - MAX_PROBLEMS
        listed = " ".join(problems[:MAX_PROBLEMS]) + (f" ({more} more.)" if more > 0 else "")
        raise IntegrityError(f"manifest {key} is not a valid Backstop manifest: {listed}")
    try:
        return Manifest.from_dict(body)
    except (ValueError, KeyError, TypeError) as exc:  # what a schema cannot say (a date)
        raise IntegrityError(f"manifest {key} is not a valid Backstop manifest: "
                             f"{type(exc).__name__}: {exc}") from None


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema)


def schema_problems(data: dict[str, Any]) -> list[str]:
    """One sentence per way `data` breaks the manifest schema."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.path)) or 'the manifest'}: {escape(e.message[:200])}."
            for e in errors]


def list_manifests(store: ObjectStore, *, database: str | None = None) -> list[Manifest]:
    """Every trustworthy manifest in the store (DONE and FAILED), newest first; with
    `database`, only its key prefixes are listed. Each one that cannot be read or trusted is
    skipped with a warning naming it."""
    prefixes = [""] if database is None else [f"{r}/{database}/" for r in RETENTION_CLASSES]
    return sorted(trusted(store, prefixes), key=lambda m: (m.started_at, m.id), reverse=True)


def trusted(store: ObjectStore, prefixes: Iterable[str]) -> list[Manifest]:
    """The manifests under `prefixes` that prove themselves; each one that cannot be read or
    trusted is skipped with a warning naming it."""
    keys = [key for prefix in prefixes for key in store.keys(prefix)
            if key.endswith(MANIFEST_SUFFIX)]
    with ThreadPoolExecutor(READERS, thread_name_prefix="backstop-manifests") as pool:
        read = list(pool.map(lambda key: _trusted_one(store, key), keys))
    manifests = []
    for outcome in read:  # warnings in the order of the keys, as a reader expects
        if isinstance(outcome, Manifest):
            manifests.append(outcome)
        else:
            log.warning("skipped: %s", outcome)
    return manifests


def _trusted_one(store: ObjectStore, key: str) -> Manifest | BackstopError:
    try:
        return load(store, key)
    except (IntegrityError, NotFoundError, StoreError) as exc:
        return exc


def latest_done(store: ObjectStore, database: str, *, scope: Scope | None = None
                ) -> Manifest | None:
    for manifest in list_manifests(store, database=database):
        if manifest.status == DONE and (scope is None or manifest.scope == scope):
            return manifest
    return None


def find(store: ObjectStore, backup_id: str) -> Manifest:
    suffix = f"/{backup_id}{MANIFEST_SUFFIX}"
    for key in store.keys():
        if key.endswith(suffix):
            return load(store, key)
    raise NotFoundError(f"no backup {escape(backup_id)} in {store.location}; "
                        "run backstop list to see the backups there")


def choose(store: ObjectStore, which: str, *, database: str | None = None,
           before: datetime | None = None, full_only: bool = True) -> Manifest:
    """A backup by id, or `latest`: the newest DONE backup of `database` (before a time) that
    holds the whole database (with `full_only`; the nightly verification's choice too)."""
    if which != "latest":
        manifest = find(store, which)
        if manifest.status != DONE:
            raise NotFoundError(f"backup {which} is {manifest.status}, not DONE: "
                                f"{manifest.error}; choose another backup")
        return manifest
    if database is None:
        raise ConfigError("'latest' needs the database name; pass --database")
    for manifest in list_manifests(store, database=database):
        if manifest.status == DONE and (manifest.scope.is_full or not full_only) and (
                before is None or snapshot_time(manifest) < before):
            return manifest
    when = f" before {before.isoformat()}" if before else ""
    kind = "full " if full_only else ""
    raise NotFoundError(f"no DONE {kind}backup of {database}{when} in {store.location}")


def snapshot_time(manifest: Manifest) -> datetime:
    return datetime.fromisoformat(manifest.snapshot["taken_at"])


def data_loss_window(manifest: Manifest, incident_at: datetime) -> timedelta:
    """What a restore of this backup loses: everything between its snapshot and the incident."""
    window = incident_at - snapshot_time(manifest)
    if window < timedelta(0):
        raise ConfigError(f"the incident ({incident_at.isoformat()}) is before backup "
                          f"{manifest.id} was taken ({manifest.snapshot['taken_at']}): choose a "
                          "backup taken before the incident (--before)")
    return window
