"""The manifest: one backup's log entry, as data. It is written after the object is
complete and is the commit marker: only a manifest with status DONE names a backup."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from typing import Any

from backstop import fingerprint, profiles
from backstop.errors import ConfigError, IntegrityError
from backstop.tables import Catalog, Table, TableStats

# 1: counts and text fingerprints only; 2: today's fields, fingerprints of version 2; both
# are read and verified as recorded. 3 adds no field: a Backstop that reads only 1 and 2
# would compute version 2 for version 3's fingerprints and report every table changed, so it
# must refuse the manifest ("upgrade Backstop") instead.
SCHEMA_VERSION = 3
DONE, FAILED = "DONE", "FAILED"
RETENTION_CLASSES = ("daily", "weekly", "monthly", "pre-migration", "pre-restore", "manual")
SCOPE_MODES = ("full", "schema-only", "data-only")
OBJECT_SUFFIX = ".dump.zst.gpg"
MANIFEST_SUFFIX = ".manifest.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclasses.dataclass(frozen=True)
class Scope:
    """What a backup covers. Every backup holds the definitions of everything in its schemas
    (so it restores on its own); `tables` narrows whose rows it holds; `schema-only` holds
    none; `data-only` holds them all and says the intended restore is of data alone."""

    mode: str = "full"
    tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()
    exclude_schemas: tuple[str, ...] = ()
    profile: str = "plain"  # what the source is (profiles.py): which schemas it leaves out

    def __post_init__(self) -> None:
        if self.mode not in SCOPE_MODES:
            raise ConfigError(f"scope {self.mode!r} is not one of {', '.join(SCOPE_MODES)}")
        profiles.get(self.profile)
        if self.tables and self.exclude_tables:
            raise ConfigError("give either tables to include or tables to exclude, not both")
        if self.schemas and self.exclude_schemas:
            raise ConfigError("give either schemas to include or schemas to exclude, not both")

    @property
    def is_full(self) -> bool:
        """Holds every row of the database as configured: what the RPO and the nightly
        verification count as a recovery point."""
        return self.mode == "full" and not self.tables

    def describe(self) -> str:
        parts = [self.mode] + ([f"profile {self.profile}"] if self.profile != "plain" else [])
        for label, values in (("schemas", self.schemas), ("excluding schemas",
                              self.exclude_schemas), ("tables", self.tables),
                              ("excluding", self.exclude_tables)):
            if values:
                parts.append(f"{label} {','.join(values)}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scope:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.items()}
        return cls(**values)


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
    tables: tuple[TableStats, ...] = ()  # physical tables whose rows the archive holds
    fingerprint_limit_bytes: int = 0
    fingerprint_version: int = fingerprint.VERSION
    # every table, partitioned table, matview and foreign table in scope: kind, partition_of
    relations: dict[str, Any] = dataclasses.field(default_factory=dict)
    matviews: dict[str, Any] = dataclasses.field(default_factory=dict)
    sequences: dict[str, Any] = dataclasses.field(default_factory=dict)  # as the dump sets them
    large_objects: dict[str, Any] | None = None  # count and hash; None: not in the archive
    schema: dict[str, Any] = dataclasses.field(default_factory=dict)  # the signature
    roles: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    extensions: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    health: dict[str, Any] = dataclasses.field(default_factory=dict)
    verification: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def manifest_key(self) -> str:
        return manifest_key(self.key)

    def catalog(self) -> Catalog:
        """The tables this backup knows, by name, partitioned tables over their partitions."""
        if not self.relations:  # schema version 1 recorded only the tables with rows
            return Catalog([t.table for t in self.tables], {})
        relations = {Table.parse(q): r for q, r in self.relations.items()}
        return Catalog([t for t, r in relations.items() if r["kind"] == "r"],
                       {t: Table.parse(r["partition_of"]) for t, r in relations.items()
                        if r.get("partition_of")})

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["scope"] = self.scope.to_dict()
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
        if data.get("schema_version") == 1:
            data = _from_version_1(data)
        if data.get("schema_version") == 2:  # the same fields; its fingerprint version is 2
            data["schema_version"] = SCHEMA_VERSION
        if data.get("schema_version") != SCHEMA_VERSION:
            raise IntegrityError(f"manifest {data.get('id')} has schema version "
                                 f"{data.get('schema_version')}; this Backstop reads 1 to "
                                 f"{SCHEMA_VERSION}: upgrade Backstop")
        data["scope"] = Scope.from_dict(data["scope"])
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


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 recorded counts and text fingerprints (children counted in inheritance
    parents), extensions as name -> version, and nothing else about the schema."""
    return {**data, "schema_version": SCHEMA_VERSION, "fingerprint_version": 1,
            "extensions": {name: {"version": version, "schema": None}
                           for name, version in data.get("extensions", {}).items()}}
