"""Point-in-time recovery, watched: the runbook's "PITR RPO < 5 minutes (if enabled)".

RDS: the instance's automated backups must be on, kept at least the configured number of
days, and its latest restorable time no further behind than the PITR RPO. Supabase: where a
Management API token is configured (in Secrets Manager), whether PITR is on and the window
it covers. Anything else is reported as not watched, never as fine.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backstop.errors import ConfigError
from backstop.report_model import FAIL, INFO, PASS, Item, Settings

SUPABASE_API = "https://api.supabase.com"
TITLE = "PITR RPO within the target (where point-in-time recovery is on)"
HTTP_TIMEOUT = 10


@dataclasses.dataclass(frozen=True)
class PitrStatus:
    database: str
    source: str  # "rds:<instance>", "supabase:<project>" or "" (not watched)
    problems: tuple[str, ...] = ()
    lag_minutes: float | None = None
    retention_days: int | None = None
    detail: str = ""

    @property
    def watched(self) -> bool:
        return bool(self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "source": self.source, "watched": self.watched,
                "problems": list(self.problems), "lag_minutes": self.lag_minutes,
                "retention_days": self.retention_days, "detail": self.detail}


def rds_status(rds: Any, database: str, instance: str, *, retention_days: int,
               pitr_rpo_minutes: float, now: datetime) -> PitrStatus:
    source = f"rds:{instance}"
    try:
        (found,) = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return PitrStatus(database, source, (f"cannot describe RDS instance {instance}: {code}; "
                                             "check its name and the role's rights",))
    kept = int(found.get("BackupRetentionPeriod") or 0)
    latest = found.get("LatestRestorableTime")
    problems = []
    if kept == 0:
        problems.append(f"automated backups of {instance} are OFF (retention 0): there is no "
                        "point-in-time recovery")
    elif kept < retention_days:
        problems.append(f"automated backups of {instance} are kept {kept} days; the config "
                        f"says at least {retention_days}")
    lag = None
    if latest is None:
        if kept:
            problems.append(f"{instance} reports no latest restorable time")
    else:
        lag = round((now - latest).total_seconds() / 60, 2)
        if lag > pitr_rpo_minutes:
            problems.append(f"latest restorable time of {instance} is {lag:.1f} min behind "
                            f"({latest:%Y-%m-%d %H:%M:%S} UTC); the PITR RPO is "
                            f"{pitr_rpo_minutes:g} min")
    detail = (f"{instance}: automated backups kept {kept} days, latest restorable time "
              + (f"{lag:.1f} min ago" if lag is not None else "none"))
    return PitrStatus(database, source, tuple(problems), lag, kept, detail)


def supabase_status(database: str, project: str, token: str, *,
                    api: str = SUPABASE_API, now: datetime) -> PitrStatus:
    """``GET /v1/projects/{ref}/database/backups`` of the Management API."""
    source = f"supabase:{project}"
    if not api.startswith(("https://", "http://127.0.0.1:")) or not project.isalnum():
        raise ConfigError(f"Supabase project {project!r} at {api!r}: give the project ref "
                          "(letters and digits) of an https:// Management API")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        f"{api}/v1/projects/{project}/database/backups",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as answer:  # noqa: S310
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return PitrStatus(database, source, (f"the Management API answered HTTP {exc.code} for "
                                             f"project {project}; check the project ref and "
                                             "that the token is valid",))
    except (OSError, ValueError) as exc:
        return PitrStatus(database, source, (f"cannot read the Management API for project "
                                             f"{project}: {type(exc).__name__}",))
    if not isinstance(body, dict):
        return PitrStatus(database, source, ("the Management API answered something other "
                                             "than a JSON object",))
    window = body.get("physical_backup_data") or {}
    latest = window.get("latest_physical_backup_date_unix")
    lag = None
    if isinstance(latest, int | float) and latest > 0:
        lag = round((now - datetime.fromtimestamp(latest, UTC)).total_seconds() / 60, 2)
    enabled = body.get("pitr_enabled") is True
    problems = () if enabled else (f"PITR is OFF for Supabase project {project}",)
    detail = (f"Supabase project {project}: PITR {'on' if enabled else 'off'}"
              + (f", newest restorable point {lag:.1f} min ago" if lag is not None else ""))
    return PitrStatus(database, source, problems, lag, None, detail)


def statuses(settings: Settings, *, rds: Any, secrets: Any, now: datetime,
             api: str = SUPABASE_API) -> list[PitrStatus]:
    """Every configured database's PITR state; ``rds``/``secrets`` are boto3 clients (only
    called for the sources that need them)."""
    result = []
    for db in settings.databases:
        source: Mapping[str, Any] = db.pitr or {}
        if "rds_instance" in source:
            result.append(rds_status(
                rds, db.name, str(source["rds_instance"]),
                retention_days=int(source.get("retention_days", 1)),
                pitr_rpo_minutes=settings.pitr_rpo_minutes, now=now))
        elif "supabase_project" in source:
            token = _token(secrets, str(source["token_secret"]))
            result.append(supabase_status(db.name, str(source["supabase_project"]), token,
                                          api=api, now=now) if token else PitrStatus(
                db.name, f"supabase:{source['supabase_project']}",
                (f"cannot read the Management API token secret {source['token_secret']}",)))
        else:
            result.append(PitrStatus(db.name, ""))
    return result


def _token(secrets: Any, secret_id: str) -> str | None:
    try:
        value = str(secrets.get_secret_value(SecretId=secret_id)["SecretString"]).strip()
    except Exception:
        return None
    return value or None


def pitr_item(found: list[PitrStatus], settings: Settings) -> Item:
    evidence = []
    for status in found:
        if not status.watched:
            evidence.append(f"{status.database}: PITR is not watched (no RDS instance, and no "
                            "Supabase project with a Management API token, is configured)")
            continue
        evidence.append(f"{status.database}: {status.detail or status.source}")
        evidence.extend(f"  {problem}" for problem in status.problems)
    watched = [s for s in found if s.watched]
    failing = [s for s in watched if s.problems]
    if not watched:
        return Item("pitr", TITLE, INFO, "point-in-time recovery is not watched for any "
                    "database", tuple(evidence) or ("no database is configured",))
    if failing:
        return Item("pitr", TITLE, FAIL, f"{len(failing)} database(s) outside the PITR "
                    f"target ({settings.pitr_rpo_minutes:g} min)", tuple(evidence))
    return Item("pitr", TITLE, PASS, f"{len(watched)} database(s) restorable to within "
                f"{settings.pitr_rpo_minutes:g} min", tuple(evidence))
