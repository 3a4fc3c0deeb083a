"""Is a finished backup believable? Its object matches the manifest, it is not empty, and it
is not much smaller than the previous good backup of the same database and scope (found in the
database's index when it has one: one read, whatever the number of backups)."""

from __future__ import annotations

import dataclasses
from typing import Any

from backstop import index
from backstop.catalog import list_manifests
from backstop.errors import IntegrityError
from backstop.manifest import DONE, Manifest
from backstop.store import HashingReader, ObjectStore


@dataclasses.dataclass(frozen=True)
class Assessment:
    manifest: Manifest
    previous: Manifest | None
    collapsed_fraction: float

    @property
    def collapsed(self) -> bool:
        return (self.previous is not None and self.previous.size > 0
                and self.manifest.size < self.collapsed_fraction * self.previous.size)

    def to_dict(self) -> dict[str, Any]:
        previous = self.previous
        return {"backup_id": self.manifest.id, "database": self.manifest.database,
                "size": self.manifest.size, "collapsed": self.collapsed,
                "collapsed_fraction": self.collapsed_fraction,
                "previous_id": previous.id if previous else None,
                "previous_size": previous.size if previous else None,
                "ratio": round(self.manifest.size / previous.size, 4)
                if previous and previous.size else None}


def assess_backup(store: ObjectStore, manifest_key: str, *,
                  collapsed_fraction: float) -> Assessment:
    """Re-read the committed manifest, hash its object, find the previous good backup."""
    manifest = Manifest.from_json(store.get(manifest_key), key=manifest_key)
    if manifest.status != DONE:
        raise IntegrityError(f"backup {manifest.id} is {manifest.status}, not DONE; "
                             "see its manifest's error")
    if manifest.size <= 0:
        raise IntegrityError(f"backup {manifest.id} of {manifest.database} is empty; "
                             "check the database and the dump's scope")
    with HashingReader(store.reader(manifest.key)) as body:
        body.drain()
    if body.size != manifest.size or body.sha256() != manifest.sha256:
        raise IntegrityError(f"backup {manifest.id}: object {manifest.key} does not match its "
                             f"manifest ({body.size} bytes, expected {manifest.size}); "
                             "it is damaged")
    return Assessment(manifest, _previous(store, manifest), collapsed_fraction)


def _previous(store: ObjectStore, manifest: Manifest) -> Manifest | None:
    doc = index.read(store, manifest.database)
    if doc is None:
        return next((m for m in list_manifests(store, database=manifest.database)
                     if m.status == DONE and m.scope == manifest.scope and m.id != manifest.id
                     and m.started_at <= manifest.started_at), None)
    scope = index.backup_entry(manifest)["scope"]
    entry = next((b for b in doc["backups"]
                  if b.get("status") == DONE and b.get("id") not in (None, manifest.id)
                  and index.same_scope(b["scope"], scope)
                  and b["started_at"] <= manifest.started_at.isoformat()),
                 None)
    if entry is None:
        return None
    key = str(entry["manifest_key"])
    return Manifest.from_json(store.get(key), key=key)
