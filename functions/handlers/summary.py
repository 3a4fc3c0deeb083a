"""The small, secret-free view of a manifest that travels through the workflow."""

from __future__ import annotations

from typing import Any

from backstop.manifest import Manifest


def summarize(manifest: Manifest) -> dict[str, Any]:
    scope = manifest.scope
    return {"id": manifest.id, "database": manifest.database, "retention": manifest.retention,
            "status": manifest.status, "key": manifest.key,
            "manifest_key": manifest.manifest_key, "size": manifest.size,
            "sha256": manifest.sha256, "started_at": manifest.started_at.isoformat(),
            "finished_at": manifest.finished_at.isoformat(),
            "duration_seconds": round(manifest.duration_seconds, 3),
            "scope": {"mode": scope.mode, "tables": list(scope.tables),
                      "exclude_tables": list(scope.exclude_tables)}}
