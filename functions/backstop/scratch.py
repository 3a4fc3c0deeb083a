"""Scratch RDS instances for restore verification: names, sizes, and the sweeper that deletes
every one a workflow left behind (a cancelled execution, a crash), and nothing else.

An instance is Backstop's to delete only when its identifier starts with NAME_PREFIX *and* it
carries the SCRATCH_TAG; it may live KEEP_TAG hours (from its creation), or the default."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from datetime import datetime
from typing import Any

from backstop.manifest import Manifest

NAME_PREFIX = "backstop-scratch-"
SCRATCH_TAG = "backstop:scratch"
KEEP_TAG = "backstop:keep-hours"
EXECUTION_TAG = "backstop:execution"
MIN_STORAGE_GB = 20  # RDS gp3 minimum for PostgreSQL


def instance_id(execution_name: str) -> str:
    """A valid, unique RDS identifier for one workflow execution (letters, digits, single
    hyphens, at most 63 characters)."""
    digest = hashlib.sha256(execution_name.encode()).hexdigest()[:16]
    return f"{NAME_PREFIX}{digest}"


def storage_gb(manifest: Manifest) -> int:
    """Room for the restored data with indexes and headroom: three times the plain dump."""
    plain = int(manifest.dump.get("plain_size", 0))
    return max(MIN_STORAGE_GB, math.ceil(3 * plain / 1024**3))


def engine_version(manifest: Manifest) -> str:
    """The scratch instance runs the source's major version."""
    return str(manifest.source["server_version"]).split(".")[0]


@dataclasses.dataclass(frozen=True)
class Sweep:
    deleted: list[str]
    kept: list[str]
    oldest_age_hours: float  # of the scratch instances still alive after the sweep


def sweep(rds: Any, *, now: datetime, default_keep_hours: float) -> Sweep:
    deleted: list[str] = []
    kept: list[str] = []
    oldest = 0.0
    for page in rds.get_paginator("describe_db_instances").paginate():
        for instance in page["DBInstances"]:
            if not _is_scratch(instance) or instance.get("DBInstanceStatus") == "deleting":
                continue
            name = instance["DBInstanceIdentifier"]
            age = (now - instance["InstanceCreateTime"]).total_seconds() / 3600
            keep = float(_tags(instance).get(KEEP_TAG, default_keep_hours))
            if age > keep and _delete(rds, name):
                deleted.append(name)
            else:
                kept.append(name)
                oldest = max(oldest, age)
    return Sweep(deleted, kept, round(oldest, 2))


def delete_for_execution(rds: Any, execution_name: str) -> str | None:
    """Delete the scratch instance of a stopped workflow execution, if it has one; return
    its name. Run when an execution is aborted or times out and so skipped its own cleanup."""
    name = instance_id(execution_name)
    try:
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"]
    except rds.exceptions.DBInstanceNotFoundFault:
        return None
    if not _is_scratch(instance) or instance["DBInstanceStatus"] == "deleting":
        return None
    return name if _delete(rds, name) else None


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("TagList", [])}


def _is_scratch(instance: dict[str, Any]) -> bool:
    return (str(instance["DBInstanceIdentifier"]).startswith(NAME_PREFIX)
            and _tags(instance).get(SCRATCH_TAG) == "true")


def _delete(rds: Any, name: str) -> bool:
    """Delete without a final snapshot; False when RDS cannot delete it yet (still being
    created or modified): a later sweep gets it, and one such instance never stops a sweep."""
    try:
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True,
                               DeleteAutomatedBackups=True)
    except rds.exceptions.InvalidDBInstanceStateFault:
        return False
    return True
