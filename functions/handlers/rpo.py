"""Every 15 minutes: publish each database's recovery point age and verified age (EMF).

Both come from the database's index (one read per database, whatever the number of backups):
``RecoveryPointAgeHours`` is the time since the snapshot of the newest good *full* backup
(``backstop.index.is_full``: the whole database, or the scope its configuration declares);
``VerificationAgeHours`` the time since the snapshot of the newest full backup a restore test
proved. A database with no such backup yet counts from when it was first watched, so a new
database has one RPO to get its first backup.

``RpoCheckHealthy`` (no dimension) is 1 when every database was assessed. Its alarm is the one
notification for "the check stopped or cannot read a database"; the per-database alarms treat
missing data as not breaching, so a broken check never sends one message per database.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop import index
from backstop.errors import BackstopError
from handlers import _runtime

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return check(datetime.now(UTC))


def check(now: datetime) -> dict[str, Any]:
    rpo_hours = _runtime.number("RPO_HOURS")
    scopes: dict[str, Any] = json.loads(os.environ.get("DATABASE_SCOPES") or "{}")
    report: dict[str, Any] = {}
    failed: list[str] = []
    for database in _runtime.databases():
        try:
            doc = index.ensure(_runtime.store(), database, now=now)
        except BackstopError as exc:
            logger.error("cannot assess database", extra={"database": database,
                                                          "error": str(exc)})
            failed.append(database)
            continue
        ages = index.ages(doc, now=now, declared=scopes.get(database))
        for name, value in (("RecoveryPointAgeHours", ages.recovery_hours),
                            ("VerificationAgeHours", ages.verified_hours)):
            with single_metric(name=name, unit=MetricUnit.NoUnit, value=value) as metric:
                metric.add_dimension(name="Database", value=database)
        breached = ages.recovery_hours > rpo_hours
        report[database] = {"age_hours": ages.recovery_hours, "breached": breached,
                            "backup_id": ages.newest_full,
                            "verified_age_hours": ages.verified_hours,
                            "verified_backup_id": ages.newest_verified}
        if breached:
            logger.warning("recovery point objective breached",
                           extra={"database": database, "age_hours": ages.recovery_hours})
    with single_metric(name="RpoCheckHealthy", unit=MetricUnit.Count, value=int(not failed)):
        pass
    return {"rpo_hours": rpo_hours, "databases": report, "unassessed": failed}
