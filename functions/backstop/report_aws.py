"""Checklist items the store's real configuration answers, read from the bucket itself (so a
hand edit in the console shows up), and the alarms' history.

- off-platform copies: every backup that retention still keeps is where the configuration
  says: its object in the store with the manifest's size, its replica in the destination
  bucket, its Object Lock mode and retain-until date;
- retention: the bucket's lifecycle rules and versioning compared with the configuration,
  rule by rule, including rules nobody declared that expire or archive backups.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from backstop import catalog
from backstop.errors import IntegrityError, StoreError
from backstop.manifest import MANIFEST_SUFFIX, RETENTION_CLASSES, Manifest
from backstop.report_model import FAIL, PASS, Entry, Item, Period, Settings
from backstop.s3store import S3Store
from backstop.store import LocalStore, ObjectStore

log = logging.getLogger(__name__)

Backups = Mapping[str, Sequence[Entry]]
REPLICATION_GRACE = timedelta(hours=1)  # a replica may lag its source this long (PENDING)
MAX_LINES = 20
TITLES = {"off-platform-copies": "Confirm off-platform backups are uploading",
          "retention": "Check backup retention is configured correctly"}


def manifests_in(store: S3Store, prefixes: Iterable[str]) -> list[Manifest]:
    """The manifests under the prefixes, those retention expired included while the bucket
    keeps their old version (versioning): a report on the 1st needs the whole month, and
    daily backups expire after a week. Per key, the newest version that is not a delete
    marker (S3 lists a key's versions newest first)."""
    s3, newest = store.client, dict[str, str]()
    for prefix in prefixes:
        try:
            for page in s3.get_paginator("list_object_versions").paginate(
                    Bucket=store.bucket, Prefix=_full(store, prefix)):
                for version in page.get("Versions", []):
                    if version["Key"].endswith(MANIFEST_SUFFIX):
                        newest.setdefault(version["Key"], version["VersionId"])
        except Exception as exc:
            raise _store_error(f"cannot list the versions under s3://{store.bucket}/"
                               f"{_full(store, prefix)}", exc) from None
    found = []
    for key, version_id in newest.items():
        try:
            body = s3.get_object(Bucket=store.bucket, Key=key, VersionId=version_id)["Body"]
            raw = body.read()
        except Exception as exc:
            raise _store_error(f"cannot read s3://{store.bucket}/{key}", exc) from None
        try:  # one that does not prove itself is no evidence: its day shows as missing
            found.append(catalog.parse(store, raw, key))
        except IntegrityError as exc:
            log.warning("skipped: %s", exc)
    return found


def horizons(store: ObjectStore, settings: Settings, now: datetime
             ) -> dict[str, datetime | None]:
    """retention class -> the oldest start whose manifest is surely still readable: retention
    expires it, versioning keeps the old version ``noncurrent_versions`` days more. None: no
    limit (a local directory, or a class kept until deleted)."""
    extra = settings.retention_days.get("noncurrent_versions") or 0
    return {retention_class: None if days is None or not isinstance(store, S3Store)
            else now - timedelta(days=days + extra)
            for retention_class in RETENTION_CLASSES
            for days in [settings.retention(retention_class)]}


def kept(backups: Backups, settings: Settings, period: Period, now: datetime) -> list[Entry]:
    """DONE backups started in the period that retention must still keep now (an expired
    one is gone by design, not lost)."""
    result = []
    for entries in backups.values():
        for entry in entries:
            days = settings.retention(entry.retention)
            if entry.done and period.holds(entry.started_at) and (
                    days is None or now - entry.started_at < timedelta(days=days)):
                result.append(entry)
    return result


# --------------------------------------------------------------------------- off-platform
def off_platform(store: ObjectStore, backups: Backups, settings: Settings, period: Period,
                 now: datetime) -> Item:
    title = TITLES["off-platform-copies"]
    entries = kept(backups, settings, period, now)
    if isinstance(store, LocalStore):
        problems = list(_local_objects(store, entries))
        return Item("off-platform-copies", title, FAIL,
                    f"the store is a local directory ({store.location}): no copy is off this "
                    "machine; use an S3 store",
                    (f"{len(entries) - len(problems)} of {len(entries)} backups kept by "
                     "retention are present on disk", *problems[:MAX_LINES]))
    if not isinstance(store, S3Store):
        return Item("off-platform-copies", title, FAIL, f"store {store.location} cannot be "
                    "inspected")
    problems, evidence = _bucket_settings(store, settings)
    replicas, locked_until = 0, []
    for entry in entries:
        found = _head(store, store.bucket, _full(store, entry.key))
        if found is None:
            problems.append(f"MISSING object {_full(store, entry.key)} of backup {entry.id}")
            continue
        if found["ContentLength"] != entry.size:
            problems.append(f"object {entry.key} is {found['ContentLength']} bytes; its "
                            f"manifest says {entry.size}")
        problems.extend(_lock_problems(entry, found, settings))
        if found.get("ObjectLockRetainUntilDate"):
            locked_until.append(found["ObjectLockRetainUntilDate"])
        if settings.replication_bucket:
            problem = _replica_problem(store, entry, found, settings.replication_bucket, now)
            if problem:
                problems.append(problem)
            else:
                replicas += 1
    evidence.append(f"{len(entries)} backups started in the period are kept by retention; "
                    f"{len(entries) - sum(p.startswith('MISSING object') for p in problems)} "
                    f"present in s3://{store.bucket}")
    if settings.object_lock and locked_until:
        evidence.append(f"Object Lock of the {len(entries)} kept backups: "
                        f"{settings.object_lock.get('mode')}, retained until "
                        f"{min(locked_until):%Y-%m-%d %H:%M} at the earliest, "
                        f"{max(locked_until):%Y-%m-%d %H:%M} at the latest")
    if settings.replication_bucket:
        evidence.append(f"{replicas} of {len(entries)} replicated to "
                        f"s3://{settings.replication_bucket}")
    if problems:
        return Item("off-platform-copies", title, FAIL,
                    f"{len(problems)} problem(s) with the stored copies",
                    (*evidence, *problems[:MAX_LINES]))
    where = f"s3://{store.bucket}" + (f" and s3://{settings.replication_bucket}"
                                      if settings.replication_bucket else "")
    return Item("off-platform-copies", title, PASS,
                f"every backup retention keeps is in {where}", tuple(evidence))


def _local_objects(store: LocalStore, entries: Sequence[Entry]) -> Iterator[str]:
    for entry in entries:
        path = Path(store.root) / entry.key
        if not path.is_file():
            yield f"MISSING object {entry.key} of backup {entry.id}"
        elif path.stat().st_size != entry.size:
            yield f"object {entry.key} is {path.stat().st_size} bytes; manifest says {entry.size}"


def _bucket_settings(store: S3Store, settings: Settings) -> tuple[list[str], list[str]]:
    """The bucket's replication and Object Lock configuration against the settings."""
    s3, problems, evidence = store.client, [], []
    if settings.replication_bucket:
        destination = f"arn:aws:s3:::{settings.replication_bucket}"
        rules = _configuration(store, "ReplicationConfigurationNotFoundError", lambda: (
            s3.get_bucket_replication(Bucket=store.bucket))).get(
            "ReplicationConfiguration", {}).get("Rules", [])
        matching = [r for r in rules if r.get("Status") == "Enabled"
                    and r.get("Destination", {}).get("Bucket") == destination
                    and _covers(_rule_prefix(r), store.prefix)]
        if matching:
            evidence.append(f"replication rule {matching[0].get('ID', '?')} copies "
                            f"{store.prefix or 'everything'} to {destination}")
        else:
            problems.append(f"REPLICATION to {destination} is not configured on "
                            f"s3://{store.bucket} (rules: "
                            f"{', '.join(_describe_rule(r) for r in rules) or 'none'})")
    if settings.object_lock:
        mode, days = settings.object_lock.get("mode"), settings.object_lock.get("days")
        lock = _configuration(store, "ObjectLockConfigurationNotFoundError", lambda: (
            s3.get_object_lock_configuration(Bucket=store.bucket))).get(
            "ObjectLockConfiguration", {})
        default = lock.get("Rule", {}).get("DefaultRetention", {})
        actual = (lock.get("ObjectLockEnabled"), default.get("Mode"), default.get("Days"))
        if actual != ("Enabled", mode, days):
            problems.append(f"OBJECT LOCK on s3://{store.bucket} is {actual[1] or 'off'} "
                            f"{actual[2] or ''} days; the config says {mode} {days} days")
        else:
            evidence.append(f"Object Lock default: {mode}, {days} days")
    return problems, evidence


def _lock_problems(entry: Entry, head: Mapping[str, Any], settings: Settings) -> list[str]:
    if not settings.object_lock:
        return []
    mode, days = settings.object_lock.get("mode"), int(settings.object_lock.get("days", 0))
    until = head.get("ObjectLockRetainUntilDate")
    if head.get("ObjectLockMode") != mode or until is None:
        return [f"object {entry.key} is not locked in {mode} mode "
                f"(mode {head.get('ObjectLockMode') or 'none'})"]
    needed = head["LastModified"] + timedelta(days=days) - timedelta(minutes=5)
    if until < needed:
        return [f"object {entry.key} is locked only until {until:%Y-%m-%d %H:%M}; the config "
                f"keeps it locked {days} days (until {needed:%Y-%m-%d %H:%M})"]
    return []


def _replica_problem(store: S3Store, entry: Entry, head: Mapping[str, Any], bucket: str,
                     now: datetime) -> str | None:
    status = head.get("ReplicationStatus")
    if status == "FAILED":
        return f"REPLICATION FAILED for {entry.key} (backup {entry.id})"
    replica = _head(store, bucket, _full(store, entry.key))
    if replica is not None:
        if replica["ContentLength"] != entry.size:
            return f"replica s3://{bucket}/{_full(store, entry.key)} has the wrong size"
        return None
    if status == "PENDING" and now - head["LastModified"] < REPLICATION_GRACE:
        return None
    return (f"MISSING replica s3://{bucket}/{_full(store, entry.key)} of backup {entry.id}"
            f" (replication status {status or 'none'})")


# --------------------------------------------------------------------------- retention
def retention(store: ObjectStore, settings: Settings) -> Item:
    title = TITLES["retention"]
    if isinstance(store, LocalStore):
        return Item("retention", title, FAIL, f"the store is a local directory "
                    f"({store.location}): nothing expires or protects backups there; use an "
                    "S3 store, whose lifecycle rules enforce retention")
    if not isinstance(store, S3Store):
        return Item("retention", title, FAIL, f"store {store.location} cannot be inspected")
    s3, prefix = store.client, store.prefix
    rules = _configuration(store, "NoSuchLifecycleConfiguration", lambda: (
        s3.get_bucket_lifecycle_configuration(Bucket=store.bucket))).get("Rules", [])
    versioning = _configuration(store, "", lambda: s3.get_bucket_versioning(
        Bucket=store.bucket)).get("Status")
    problems, evidence = [], [f"lifecycle of s3://{store.bucket}: "
                                 f"{'; '.join(_describe_rule(r) for r in rules) or 'no rules'}"]
    if versioning != "Enabled":
        problems.append(f"VERSIONING is {versioning or 'off'}: an overwrite or delete loses "
                        "the backup")
    base = f"{prefix}/" if prefix else ""
    expected = {f"{base}{c}/": settings.retention(c) for c in RETENTION_CLASSES}
    enabled = [r for r in rules if r.get("Status") == "Enabled" and not _tagged(r)]
    for class_prefix, days in expected.items():
        applying = [r for r in enabled if _covers(_rule_prefix(r), class_prefix)
                    or _rule_prefix(r).startswith(class_prefix)]
        expirers = [r for r in applying if _expiry(r) is not None]
        expiring = sorted({d for d in map(_expiry, expirers) if d is not None})
        if days is None and expiring:
            problems.append(f"{class_prefix}: rule(s) {_ids(expirers)} expire these backups "
                            f"after {expiring[0]} days; the config keeps them until deleted")
        elif days is not None and expiring != [days]:
            problems.append(f"{class_prefix}: expires after "
                            f"{' / '.join(map(str, expiring)) or 'never'} days "
                            f"(rules {_ids(expirers) or 'none'}); the config says {days}")
        for rule in applying:
            if rule.get("Transitions") or rule.get("NoncurrentVersionTransitions"):
                problems.append(f"rule {rule.get('ID', '?')} moves {class_prefix} backups to "
                                "an archive storage class: restores cannot read them until "
                                "they are restored from the archive")
    whole = [r for r in enabled if _covers(_rule_prefix(r), base)]
    aborts = {r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in whole
              if "AbortIncompleteMultipartUpload" in r}
    noncurrent = {int(r["NoncurrentVersionExpiration"].get("NoncurrentDays", 0)) for r in whole
                  if "NoncurrentVersionExpiration" in r}
    if aborts != {1}:
        problems.append(f"incomplete uploads are aborted after {sorted(aborts) or 'never'} "
                        "days; the config says 1")
    if noncurrent != {settings.retention_days.get("noncurrent_versions")}:
        problems.append(f"old versions expire after {sorted(noncurrent) or 'never'} days; the "
                        f"config says {settings.retention_days.get('noncurrent_versions')}")
    if problems:
        return Item("retention", title, FAIL, f"{len(problems)} difference(s) between the "
                    "bucket and the configuration", (*problems, *evidence))
    return Item("retention", title, PASS, "the bucket's lifecycle rules and versioning match "
                "the configuration", (*evidence, f"versioning {versioning}"))


# --------------------------------------------------------------------------- alarms
def alarm_history(cloudwatch: Any, topic_arn: str, period: Period) -> list[dict[str, Any]]:
    """Every alarm that notifies the topic and went into ALARM during the period."""
    alarms = {a["AlarmName"]: a
              for page in cloudwatch.get_paginator("describe_alarms").paginate()
              for a in page.get("MetricAlarms", []) if topic_arn in a.get("AlarmActions", [])}
    entered: dict[str, list[datetime]] = {}
    pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
        HistoryItemType="StateUpdate", StartDate=period.start, EndDate=period.until)
    for page in pages:
        for item in page.get("AlarmHistoryItems", []):
            data = json.loads(item.get("HistoryData") or "{}")
            if item["AlarmName"] in alarms and \
                    data.get("newState", {}).get("stateValue") == "ALARM":
                entered.setdefault(item["AlarmName"], []).append(item["Timestamp"])
    return [{"name": name, "description": alarms[name].get("AlarmDescription", ""),
             "entered": len(times), "first": min(times).isoformat(),
             "last": max(times).isoformat(), "state_now": alarms[name].get("StateValue")}
            for name, times in sorted(entered.items())]


# --------------------------------------------------------------------------- helpers
def _full(store: S3Store, key: str) -> str:
    return f"{store.prefix}/{key}" if store.prefix else key


def _head(store: S3Store, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = store.client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _store_error(f"cannot read s3://{bucket}/{key}", exc) from None
    return found


def _configuration(store: S3Store, absent: str, read: Callable[[], Any]) -> dict[str, Any]:
    """A bucket configuration read; the error code that means 'none configured' gives {}."""
    try:
        result: dict[str, Any] = read()
    except Exception as exc:
        if absent and _code(exc) == absent:
            return {}
        raise _store_error(f"cannot read the configuration of s3://{store.bucket}",
                           exc) from None
    return result


def _store_error(what: str, exc: BaseException) -> Exception:
    return StoreError(f"{what}: {_code(exc)}; check that the role may read the bucket's "
                      "configuration")


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


def _rule_prefix(rule: Mapping[str, Any]) -> str:
    found = rule.get("Filter", {})
    prefix = found.get("Prefix", found.get("And", {}).get("Prefix", rule.get("Prefix", "")))
    return str(prefix or "")


def _tagged(rule: Mapping[str, Any]) -> bool:
    """A rule filtered on tags: Backstop tags nothing, so it applies to no backup."""
    found = rule.get("Filter", {})
    return "Tag" in found or bool(found.get("And", {}).get("Tags"))


def _covers(rule_prefix: str, prefix: str) -> bool:
    return prefix.startswith(rule_prefix)


def _expiry(rule: Mapping[str, Any]) -> int | None:
    days = rule.get("Expiration", {}).get("Days")
    return None if days is None else int(days)


def _ids(rules: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(str(r.get("ID", "?")) for r in rules)


def _describe_rule(rule: Mapping[str, Any]) -> str:
    parts = [f"{rule.get('ID', '?')} ({rule.get('Status')}) on '{_rule_prefix(rule)}'"]
    if _expiry(rule) is not None:
        parts.append(f"expire {_expiry(rule)} d")
    if "NoncurrentVersionExpiration" in rule:
        parts.append(f"old versions {rule['NoncurrentVersionExpiration'].get('NoncurrentDays')}"
                     " d")
    if "AbortIncompleteMultipartUpload" in rule:
        parts.append("abort uploads "
                     f"{rule['AbortIncompleteMultipartUpload']['DaysAfterInitiation']} d")
    for t in rule.get("Transitions", []):
        parts.append(f"to {t.get('StorageClass')} after {t.get('Days')} d")
    return " ".join(parts)
