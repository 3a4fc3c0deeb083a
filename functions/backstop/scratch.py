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
            name = instance["DBInstanceIdentifier"]
            tags = {t["Key"]: t["Value"] for t in instance.get("TagList", [])}
            if not name.startswith(NAME_PREFIX) or tags.get(SCRATCH_TAG) != "true":
                continue
            if instance.get("DBInstanceStatus") == "deleting":
                continue
            age = (now - instance["InstanceCreateTime"]).total_seconds() / 3600
            if age > float(tags.get(KEEP_TAG, default_keep_hours)):
                rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True,
                                       DeleteAutomatedBackups=True)
                deleted.append(name)
            else:
                kept.append(name)
                oldest = max(oldest, age)
    return Sweep(deleted, kept, round(oldest, 2))
