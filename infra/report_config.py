"""The report part of the configuration: when the monthly checklist report runs, and which
databases have point-in-time recovery to watch (an RDS instance, or a Supabase project whose
Management API token is in Secrets Manager)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.config_values import ConfigurationError, int_setting, is_secret_id

REPORT_SCHEDULES = ("monthly", "off")
_RDS_INSTANCE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")
_SUPABASE_PROJECT = re.compile(r"^[a-z0-9]{10,40}$")


@dataclass(frozen=True)
class RdsPitr:
    instance: str
    retention_days: int = 7  # automated backups must be kept at least this long


@dataclass(frozen=True)
class SupabasePitr:
    project: str
    token_secret: str  # the name (not the value) of the Management API token's secret


@dataclass(frozen=True)
class Report:
    schedule: str = "monthly"  # the 1st, 06:00 UTC, for the month before; or off
    pitr_rpo_minutes: int = 5
    pitr: Mapping[str, RdsPitr | SupabasePitr] = field(default_factory=dict)

    def rds(self) -> dict[str, RdsPitr]:
        return {db: s for db, s in self.pitr.items() if isinstance(s, RdsPitr)}

    def supabase(self) -> dict[str, SupabasePitr]:
        return {db: s for db, s in self.pitr.items() if isinstance(s, SupabasePitr)}

    def to_settings(self) -> dict[str, Any]:
        """As the report library reads it (``Settings.from_dict``'s ``report`` key)."""
        return {"pitr_rpo_minutes": self.pitr_rpo_minutes, "pitr": {
            db: {"rds_instance": s.instance, "retention_days": s.retention_days}
            if isinstance(s, RdsPitr) else
            {"supabase_project": s.project, "token_secret": s.token_secret}
            for db, s in self.pitr.items()}}


def parse_report(value: Any, databases: tuple[str, ...]) -> Report:
    value = {} if value is None else value
    example = ('use {"schedule": "monthly", "pitr_rpo_minutes": 5, "pitr": {"quotepro": '
               '{"rds_instance": "quotepro-prod", "retention_days": 7}}}')
    if not isinstance(value, dict):
        raise ConfigurationError("report", "is not an object", example)
    extra = set(value) - {"schedule", "pitr_rpo_minutes", "pitr"}
    if extra:
        raise ConfigurationError(f"report.{sorted(extra)[0]}", "is not a report setting",
                                 "use schedule, pitr_rpo_minutes, pitr")
    schedule = value.get("schedule", "monthly")
    if schedule not in REPORT_SCHEDULES:
        raise ConfigurationError("report.schedule", f"{schedule!r} is not allowed",
                                 f"use one of {', '.join(REPORT_SCHEDULES)}")
    rpo = int_setting(value, "pitr_rpo_minutes", 5, 1, 1440, "report.")
    sources = value.get("pitr", {})
    if not isinstance(sources, dict):
        raise ConfigurationError("report.pitr", "is not an object", example)
    pitr: dict[str, RdsPitr | SupabasePitr] = {}
    for database, source in sources.items():
        key = f"report.pitr.{database}"
        if database not in databases:
            raise ConfigurationError(key, "names no configured database",
                                     f"use one of {', '.join(databases)}")
        pitr[database] = _source(key, source)
    return Report(schedule=schedule, pitr_rpo_minutes=rpo, pitr=pitr)


def _source(key: str, source: Any) -> RdsPitr | SupabasePitr:
    fix = ('give {"rds_instance": "<DB instance identifier>", "retention_days": 7} or '
           '{"supabase_project": "<project ref>", "token_secret": "<secret name>"}')
    if not isinstance(source, Mapping):
        raise ConfigurationError(key, "is not an object", fix)
    if set(source) <= {"rds_instance", "retention_days"} and "rds_instance" in source:
        instance = source["rds_instance"]
        if not isinstance(instance, str) or not _RDS_INSTANCE.match(instance):
            raise ConfigurationError(f"{key}.rds_instance", f"{instance!r} is not a DB "
                                     "instance identifier", fix)
        # RDS keeps automated backups 1 to 35 days
        return RdsPitr(instance, int_setting(source, "retention_days", 7, 1, 35, f"{key}."))
    if set(source) == {"supabase_project", "token_secret"}:
        project, secret = source["supabase_project"], source["token_secret"]
        if not isinstance(project, str) or not _SUPABASE_PROJECT.match(project):
            raise ConfigurationError(f"{key}.supabase_project", f"{project!r} is not a "
                                     "project ref", "give the ref from the project's URL")
        if not is_secret_id(secret):
            raise ConfigurationError(f"{key}.token_secret", f"{secret!r} is not a secret "
                                     "name or ARN", "name the Secrets Manager secret whose "
                                     "value is the Management API token")
        return SupabasePitr(project, secret)
    raise ConfigurationError(key, "is neither an RDS nor a Supabase source", fix)
