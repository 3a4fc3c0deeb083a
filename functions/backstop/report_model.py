"""The report's data: what the deployment declares (``Settings``), the month reported on
(``Period``), one backup as the report sees it (``Entry``), and the checklist's items with
their evidence and chart data.

Statuses: PASS and FAIL for what can be measured; DUE for the items about people that nobody
acknowledged in the period; INFO for what is not watched (and says why).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from backstop.errors import ConfigError
from backstop.manifest import DONE, Manifest, Scope

PASS, FAIL, DUE, INFO = "PASS", "FAIL", "DUE", "INFO"
SCHEDULED_CLASSES = ("daily", "weekly", "monthly")
KEPT_CLASSES = ("pre-migration", "pre-restore")


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    name: str
    schedules: tuple[str, ...] = SCHEDULED_CLASSES
    # {"rds_instance": id, "retention_days": n} or {"supabase_project": ref, "token_secret": s}
    pitr: Mapping[str, Any] | None = None
    scope: Mapping[str, Any] | None = None  # the scope its configuration declares


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the deployment declares, in the deployment configuration's own key names, so a
    deployment's config file serves as the command line's ``--settings`` as it is."""

    databases: tuple[DatabaseSettings, ...] = ()  # empty: every database in the store, daily
    rpo_hours: float = 24
    rto_minutes: float = 60
    collapsed_fraction: float = 0.5
    pitr_rpo_minutes: float = 5
    retention_days: Mapping[str, int | None] = dataclasses.field(default_factory=lambda: {
        "daily": 7, "weekly": 30, "monthly": 365, "manual": None, "noncurrent_versions": 30})
    replication_bucket: str | None = None  # the destination bucket's name
    object_lock: Mapping[str, Any] | None = None  # {"mode": "GOVERNANCE", "days": 7}
    declared: bool = False  # False: defaults, nothing was given

    def retention(self, retention_class: str) -> int | None:
        """Days a backup of this class is kept; None: until a person deletes it."""
        return None if retention_class in KEPT_CLASSES else self.retention_days.get(
            retention_class)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Settings:
        """Read the keys the report needs from a deployment configuration; others are the
        deployment's business and are ignored."""
        if not isinstance(raw, Mapping):
            raise ConfigError("settings must be a JSON object of deployment keys")
        raw = {str(k).removeprefix("backstop:"): v for k, v in raw.items()}
        report = _mapping(raw.get("report") or {}, "report")
        pitr = _mapping(report.get("pitr") or {}, "report.pitr")
        databases = []
        for i, item in enumerate(_list(raw.get("databases", []), "databases")):
            item = _mapping(item, f"databases[{i}]")
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise ConfigError(f"settings: databases[{i}].name is missing; name each database")
            schedules = tuple(_list(item.get("schedules", list(SCHEDULED_CLASSES)),
                                    f"databases[{i}].schedules"))
            if any(s not in SCHEDULED_CLASSES for s in schedules):
                raise ConfigError(f"settings: databases[{i}].schedules {list(schedules)} must "
                                  f"be a subset of {list(SCHEDULED_CLASSES)}")
            source = pitr.get(name)
            scope = item.get("scope")
            databases.append(DatabaseSettings(
                name, schedules, _pitr_source(name, source),
                None if scope is None else dict(_mapping(scope, f"databases[{i}].scope"))))
        unknown = sorted(set(pitr) - {d.name for d in databases})
        if unknown:
            raise ConfigError(f"settings: report.pitr names {unknown[0]!r}, which is not in "
                              "databases; list it there or remove it")
        retention = dict(cls().retention_days)
        retention.update(_mapping(raw.get("retention_days") or {}, "retention_days"))
        replication = raw.get("replication")
        lock = raw.get("object_lock")
        return cls(
            databases=tuple(databases),
            rpo_hours=_number(raw, "rpo_hours", 24), rto_minutes=_number(raw, "rto_minutes", 60),
            collapsed_fraction=_number(raw, "collapsed_fraction", 0.5),
            pitr_rpo_minutes=_number(report, "pitr_rpo_minutes", 5),
            retention_days=retention,
            replication_bucket=None if replication is None else str(_mapping(
                replication, "replication").get("destination_bucket_arn", "")).rpartition(":")[2],
            object_lock=None if lock is None else dict(_mapping(lock, "object_lock")),
            declared=True)

    def to_dict(self) -> dict[str, Any]:
        return {"databases": [{"name": d.name, "schedules": list(d.schedules),
                               **({"scope": dict(d.scope)} if d.scope else {})}
                              for d in self.databases],
                "rpo_hours": self.rpo_hours, "rto_minutes": self.rto_minutes,
                "collapsed_fraction": self.collapsed_fraction,
                "retention_days": dict(self.retention_days),
                "replication": None if self.replication_bucket is None else {
                    "destination_bucket_arn": f"arn:aws:s3:::{self.replication_bucket}"},
                "object_lock": None if self.object_lock is None else dict(self.object_lock),
                "report": {"pitr_rpo_minutes": self.pitr_rpo_minutes,
                           "pitr": {d.name: dict(d.pitr) for d in self.databases if d.pitr}},
                "declared": self.declared}


def _pitr_source(name: str, value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    source = _mapping(value, f"report.pitr.{name}")
    if {"rds_instance"} <= set(source) or ({"supabase_project", "token_secret"} <= set(source)
                                           and str(source["supabase_project"]).isalnum()):
        return dict(source)
    raise ConfigError(f"settings: report.pitr.{name} must name an RDS instance "
                      '({"rds_instance": "id", "retention_days": 7}) or a Supabase project '
                      '({"supabase_project": "ref", "token_secret": "secret name"})')


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"settings: {key} must be a JSON object")
    return value


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"settings: {key} must be a JSON list")
    return value


def _number(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"settings: {key} must be a positive number, not {value!r}")
    return float(value)


# --------------------------------------------------------------------------- period
@dataclasses.dataclass(frozen=True)
class Period:
    """A calendar month in UTC; ``until`` is the month's end, or now while it runs."""

    label: str
    start: datetime
    end: datetime
    until: datetime

    @classmethod
    def month(cls, label: str, *, now: datetime) -> Period:
        try:
            start = datetime.strptime(label, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ConfigError(f"month {label!r} is not YYYY-MM, such as 2026-01") from None
        end = (start + timedelta(days=32)).replace(day=1)
        if start > now:
            raise ConfigError(f"month {label} has not begun; report on {now:%Y-%m} or earlier")
        return cls(label, start, end, min(end, now))

    def days(self) -> list[date]:
        """The days whose whole 24 hours lie in the period and have passed."""
        whole = (self.until - self.start) // timedelta(days=1)
        return [self.start.date() + timedelta(days=n) for n in range(whole)]

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.until

    def to_dict(self) -> dict[str, str]:
        return {"month": self.label, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "until": self.until.isoformat()}


def previous_month(now: datetime) -> str:
    return f"{now.replace(day=1) - timedelta(days=1):%Y-%m}"


# --------------------------------------------------------------------------- evidence model
@dataclasses.dataclass(frozen=True)
class Entry:
    """One backup as the report needs it (the manifest's brief)."""

    id: str
    database: str
    retention: str
    status: str
    scope: Scope
    started_at: datetime
    snapshot_at: datetime
    size: int
    key: str
    manifest_key: str
    error: str | None
    verification: Mapping[str, Any] | None

    @classmethod
    def of(cls, manifest: Manifest) -> Entry:
        taken = manifest.snapshot.get("taken_at")
        return cls(manifest.id, manifest.database, manifest.retention, manifest.status,
                   manifest.scope, manifest.started_at,
                   datetime.fromisoformat(taken) if taken else manifest.started_at,
                   manifest.size, manifest.key, manifest.manifest_key, manifest.error,
                   manifest.verification)

    @property
    def done(self) -> bool:
        return self.status == DONE

    @property
    def verified(self) -> bool | None:
        return None if not self.verification else bool(self.verification.get("ok"))

    def describe(self) -> str:
        return f"{self.id} ({self.database}, {self.retention}, {self.started_at:%Y-%m-%d %H:%M})"


@dataclasses.dataclass(frozen=True)
class Chart:
    title: str
    unit: str  # "bytes", "minutes" or "hours"
    points: tuple[tuple[str, float, bool], ...]  # label, value, out of bounds
    limit: float | None = None
    limit_label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "unit": self.unit, "limit": self.limit,
                "limit_label": self.limit_label,
                "points": [{"label": p[0], "value": p[1], "bad": p[2]} for p in self.points]}


@dataclasses.dataclass(frozen=True)
class Item:
    id: str
    title: str
    status: str
    summary: str
    evidence: tuple[str, ...] = ()
    charts: tuple[Chart, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status,
                "summary": self.summary, "evidence": list(self.evidence),
                "charts": [c.to_dict() for c in self.charts]}


@dataclasses.dataclass(frozen=True)
class Report:
    period: Period
    generated_at: datetime
    store: str
    settings: Settings
    items: tuple[Item, ...]
    alarms: tuple[Mapping[str, Any], ...] | None  # None: the alarm history was not read

    @property
    def status(self) -> str:
        return FAIL if self.failed else PASS

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == FAIL]

    def item(self, item_id: str) -> Item:
        (found,) = [i for i in self.items if i.id == item_id]
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"report": "Backstop backup verification checklist", "version": 1,
                "status": self.status, "failed": [i.id for i in self.failed],
                "period": self.period.to_dict(), "generated_at": self.generated_at.isoformat(),
                "store": self.store, "settings": self.settings.to_dict(),
                "items": [i.to_dict() for i in self.items],
                "alarms": None if self.alarms is None else [dict(a) for a in self.alarms]}

    def to_text(self) -> str:
        lines = [f"Backup verification checklist {self.period.label} ({self.store}): "
                 f"{self.status}"]
        for item in self.items:
            lines.append(f"[{item.status}] {item.title}: {item.summary}")
            lines.extend(f"       {line}" for line in item.evidence)
        if self.alarms is not None:
            lines.append(f"Alarms in the period: {len(self.alarms)}")
            lines.extend(f"       {a['name']}: {a['entered']}x ALARM, first {a['first']}"
                         for a in self.alarms)
        return "\n".join(lines)
