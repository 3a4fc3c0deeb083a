"""What backups exist: read from the manifests in a store, nothing else."""

from __future__ import annotations

from backstop.errors import NotFoundError
from backstop.manifest import DONE, MANIFEST_SUFFIX, RETENTION_CLASSES, Manifest, Scope
from backstop.store import ObjectStore


def list_manifests(store: ObjectStore, *, database: str | None = None) -> list[Manifest]:
    """Every manifest in the store (DONE and FAILED), newest first; with `database`, only
    its key prefixes are listed. An unreadable manifest raises: a backup log that silently
    skips entries would hide damage."""
    prefixes = [""] if database is None else [f"{r}/{database}/" for r in RETENTION_CLASSES]
    manifests = [Manifest.from_json(store.get(key), key=key)
                 for prefix in prefixes for key in store.keys(prefix)
                 if key.endswith(MANIFEST_SUFFIX)]
    return sorted(manifests, key=lambda m: (m.started_at, m.id), reverse=True)

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
            return Manifest.from_json(store.get(key), key=key)
    raise NotFoundError(f"no backup {backup_id} in {store.location}; "
                        "run backstop list to see the backups there")
