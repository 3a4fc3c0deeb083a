"""Every 15 minutes: publish the age of the newest good backup of each database (EMF).

One metric per database, each flushed as it is measured (``single_metric``), so a store error
on one database does not lose the others' data points.

``RecoveryPointAgeHours`` is published when a DONE backup exists; ``RpoBreached`` is 1 when
the age exceeds the RPO or no DONE backup exists at all (FAILED manifests do not count).
``VerificationAgeHours`` is the time since the newest successful restore test recorded in a
manifest; none at all is missing data, which the "no successful restore test" alarm treats as
breaching, as the RPO alarm does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop.catalog import list_manifests
from backstop.manifest import DONE
from handlers import _runtime

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rpo_hours = _runtime.number("RPO_HOURS")
    now = datetime.now(UTC)
    report: dict[str, Any] = {}
    for database in _runtime.databases():
        manifests = list_manifests(_runtime.store(), database=database)
        newest = next((m for m in manifests if m.status == DONE), None)
        age = None if newest is None else (now - newest.finished_at).total_seconds() / 3600
        verified = [datetime.fromisoformat(m.verification["verified_at"]) for m in manifests
                    if m.status == DONE and m.verification and m.verification.get("ok")]
        verified_age = (now - max(verified)).total_seconds() / 3600 if verified else None
        breached = age is None or age > rpo_hours
        if age is not None:
            with single_metric(name="RecoveryPointAgeHours", unit=MetricUnit.NoUnit,
                               value=round(age, 3)) as metric:
                metric.add_dimension(name="Database", value=database)
        if verified_age is not None:
            with single_metric(name="VerificationAgeHours", unit=MetricUnit.NoUnit,
                               value=round(verified_age, 3)) as metric:
                metric.add_dimension(name="Database", value=database)
        with single_metric(name="RpoBreached", unit=MetricUnit.Count,
                           value=int(breached)) as metric:
            metric.add_dimension(name="Database", value=database)
        report[database] = {"age_hours": None if age is None else round(age, 3),
                            "breached": breached,
                            "backup_id": newest.id if newest else None,
                            "verified_age_hours": None if verified_age is None
                            else round(verified_age, 3)}
        if breached:
            logger.warning("recovery point objective breached",
                           extra={"database": database, "age_hours": age})
    return {"rpo_hours": rpo_hours, "databases": report}
