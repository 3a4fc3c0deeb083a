"""The manifest: one backup's log entry, as data. It is written after the object is
complete and is the commit marker: only a manifest with status DONE names a backup."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from typing import Any

from backstop.errors import ConfigError, IntegrityError
from backstop.tables import TableStats

SCHEMA_VERSION = 1
DONE, FAILED = "DONE", "FAILED"
RETENTION_CLASSES = ("daily", "weekly", "monthly", "pre-migration", "pre-restore", "manual")
SCOPE_MODES = ("full", "schema-only", "data-only")
OBJECT_SUFFIX = ".dump.zst.gpg"
MANIFEST_SUFFIX = ".manifest.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclasses.dataclass(frozen=True)
class Scope:
    mode: str = "full"
    tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in SCOPE_MODES:
            raise ConfigError(f"scope {self.mode!r} is not one of {', '.join(SCOPE_MODES)}")
        if self.tables and self.exclude_tables:
            raise ConfigError("give either tables to include or tables to exclude, not both")

    def describe(self) -> str:
        parts = [self.mode]
        if self.tables:
            parts.append("tables " + ",".join(self.tables))
        if self.exclude_tables:
            parts.append("excluding " + ",".join(self.exclude_tables))
        return " ".join(parts)


def check_database_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"database name {name!r} must be 1-63 lowercase letters, digits, "
                          "'-' or '_' (it becomes part of the object key)")
    return name


def check_retention(retention: str) -> str:
    if retention not in RETENTION_CLASSES:
        raise ConfigError(f"retention {retention!r} is not one of {', '.join(RETENTION_CLASSES)}")
    return retention


def object_key(retention: str, database: str, started_at: datetime, backup_id: str) -> str:
    return f"{retention}/{database}/{started_at:%Y/%m/%d}/{backup_id}{OBJECT_SUFFIX}"


def manifest_key(key: str) -> str:
    return key.removesuffix(OBJECT_SUFFIX) + MANIFEST_SUFFIX


@dataclasses.dataclass(frozen=True)
class Manifest:
    id: str
    database: str
    retention: str
    reason: str
    scope: Scope
    status: str
    started_at: datetime
    finished_at: datetime
    key: str
    size: int = 0
    sha256: str = ""
    error: str | None = None
    snapshot: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: dict[str, Any] = dataclasses.field(default_factory=dict)
    dump: dict[str, Any] = dataclasses.field(default_factory=dict)
    encryption: dict[str, Any] = dataclasses.field(default_factory=dict)
    tables: tuple[TableStats, ...] = ()
    fingerprint_limit_bytes: int = 0
    extensions: dict[str, str] = dataclasses.field(default_factory=dict)
    health: dict[str, Any] = dataclasses.field(default_factory=dict)
    verification: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def manifest_key(self) -> str:
        return manifest_key(self.key)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["scope"] = {"mode": self.scope.mode, "tables": list(self.scope.tables),
                         "exclude_tables": list(self.scope.exclude_tables)}
        data["tables"] = [t.to_dict() for t in self.tables]
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        data["duration_seconds"] = round(self.duration_seconds, 3)
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data.pop("duration_seconds", None)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise IntegrityError(f"manifest {data.get('id')} has schema version "
                                 f"{data.get('schema_version')}; this Backstop reads "
                                 f"{SCHEMA_VERSION}: upgrade Backstop")
        scope = data.pop("scope")
        data["scope"] = Scope(scope["mode"], tuple(scope["tables"]), tuple(scope["exclude_tables"]))
        data["tables"] = tuple(TableStats.from_dict(t) for t in data["tables"])
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["finished_at"] = datetime.fromisoformat(data["finished_at"])
        return cls(**data)

    @classmethod
    def from_json(cls, raw: bytes, *, key: str) -> Manifest:
        try:
            return cls.from_dict(json.loads(raw))
        except IntegrityError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"manifest {key} is unreadable ({type(exc).__name__}: {exc}); "
                                 "it was not written by Backstop or is damaged") from None
