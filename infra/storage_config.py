"""Where backups are kept and for how long: the retention classes and their days, Object
Lock and cross-region replication of the backup bucket."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.config_values import ConfigurationError

RETENTION_CLASSES = ("daily", "weekly", "monthly", "pre-migration", "pre-restore", "manual")
SCHEDULED_CLASSES = ("daily", "weekly", "monthly")
# Kept until a person deletes them: no lifecycle expiration for these prefixes.
KEPT_CLASSES = ("pre-migration", "pre-restore")


@dataclass(frozen=True)
class ObjectLock:
    mode: str  # GOVERNANCE or COMPLIANCE
    days: int


@dataclass(frozen=True)
class Replication:
    destination_bucket_arn: str
    destination_kms_key_arn: str


@dataclass(frozen=True)
class Retention:
    daily: int = 7
    weekly: int = 30
    monthly: int = 365
    manual: int | None = None  # None: kept until a person deletes it
    noncurrent_versions: int = 30

    def days(self, retention_class: str) -> int | None:
        """Days until expiry for a retention class; None means kept."""
        if retention_class in KEPT_CLASSES:
            return None
        value: int | None = getattr(self, retention_class)
        return value


def parse_retention(value: Any) -> Retention:
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ConfigurationError("retention_days", "is not an object",
                                 'use {"daily": 7, "weekly": 30, "monthly": 365, "manual": null}')
    allowed = {"daily", "weekly", "monthly", "manual", "noncurrent_versions"}
    for name in value:
        if name not in allowed:
            hint = ("pre-migration and pre-restore backups are kept until deleted"
                    if name in KEPT_CLASSES else f"use {', '.join(sorted(allowed))}")
            raise ConfigurationError(f"retention_days.{name}", "cannot be configured", hint)
    defaults = Retention()
    days: dict[str, int | None] = {}
    for name in allowed:
        v = value.get(name, getattr(defaults, name))
        if v is None and name == "manual":
            days[name] = None
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 36500:
            raise ConfigurationError(f"retention_days.{name}", f"{v!r} is not a number of days",
                                     "use a whole number of days from 1 to 36500"
                                     + (" or null to keep" if name == "manual" else ""))
        days[name] = v
    return Retention(daily=_days(days, "daily"), weekly=_days(days, "weekly"),
                     monthly=_days(days, "monthly"), manual=days["manual"],
                     noncurrent_versions=_days(days, "noncurrent_versions"))


def _days(days: Mapping[str, int | None], name: str) -> int:
    value = days[name]
    assert value is not None
    return value


OBJECT_LOCK_MIGRATION = (
    "Object Lock can only be switched on when the backup bucket is created: on a deployed "
    "stack it replaces the retained bucket and orphans every backup in it. For a new stack "
    'add "from_first_deploy": true. For a deployed one, keep object_lock null, deploy a second '
    "stack (another stack_name) with object_lock, copy the backups over (aws s3 sync "
    "s3://<old bucket>/<prefix> s3://<new bucket>/<prefix>), point the schedules at the new "
    "stack, and delete the old one when its backups have aged out")


def parse_object_lock(value: Any) -> ObjectLock | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigurationError("object_lock", "is not an object",
                                 'use {"mode": "GOVERNANCE", "days": 7, '
                                 '"from_first_deploy": true} or null')
    extra = set(value) - {"mode", "days", "from_first_deploy"}
    if extra:
        raise ConfigurationError(f"object_lock.{sorted(extra)[0]}", "is not a setting",
                                 "use mode, days, from_first_deploy")
    mode = value.get("mode")
    if mode not in ("GOVERNANCE", "COMPLIANCE"):
        raise ConfigurationError("object_lock.mode", f"{mode!r} is not an Object Lock mode",
                                 "use GOVERNANCE or COMPLIANCE")
    days = value.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
        raise ConfigurationError("object_lock.days", f"{days!r} is not a number of days",
                                 "use a whole number of days, at most the shortest retention")
    if value.get("from_first_deploy") is not True:
        raise ConfigurationError("object_lock.from_first_deploy", "is not true",
                                 OBJECT_LOCK_MIGRATION)
    return ObjectLock(mode=mode, days=days)


def parse_replication(value: Any) -> Replication | None:
    if value is None:
        return None
    fix = ('use {"destination_bucket_arn": "arn:aws:s3:::name", '
           '"destination_kms_key_arn": "arn:aws:kms:<region>:<account>:key/<id>"}')
    if not isinstance(value, dict):
        raise ConfigurationError("replication", "is not an object", fix)
    bucket = value.get("destination_bucket_arn")
    key = value.get("destination_kms_key_arn")
    if not isinstance(bucket, str) or not re.fullmatch(r"arn:aws[a-z-]*:s3:::[a-z0-9.-]{3,63}",
                                                       bucket):
        raise ConfigurationError("replication.destination_bucket_arn",
                                 f"{bucket!r} is not a bucket ARN", fix)
    if not isinstance(key, str) or not re.fullmatch(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+",
                                                    key):
        raise ConfigurationError("replication.destination_kms_key_arn",
                                 f"{key!r} is not a KMS key ARN", fix)
    return Replication(destination_bucket_arn=bucket, destination_kms_key_arn=key)
