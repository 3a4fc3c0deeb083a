"""Every 5 minutes: the point-in-time recovery state of each RDS source (EMF).

``PitrLagMinutes``: how far the latest restorable time is behind now; ``PitrRetentionDays``:
how long automated backups are kept (0: off), both per database. ``PitrWatchHealthy`` (no
dimension) is 1 when every instance could be described; its alarm is the one notification
for "the watch stopped or cannot see an instance".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop import pitr
from handlers import _runtime

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sources: dict[str, dict[str, Any]] = json.loads(_runtime.env("PITR_SOURCES"))
    rpo = _runtime.number("PITR_RPO_MINUTES")
    now = datetime.now(UTC)
    found = [pitr.rds_status(_runtime.client("rds"), database, str(source["rds_instance"]),
                             retention_days=int(source["retention_days"]),
                             pitr_rpo_minutes=rpo, now=now)
             for database, source in sources.items()]
    for status in found:
        for name, value in (("PitrLagMinutes", status.lag_minutes),
                            ("PitrRetentionDays", status.retention_days)):
            if value is not None:
                with single_metric(name=name, unit=MetricUnit.NoUnit, value=value) as metric:
                    metric.add_dimension(name="Database", value=status.database)
        if status.problems:
            logger.warning("point-in-time recovery outside its target",
                           extra=status.to_dict())
    healthy = all(s.retention_days is not None for s in found)
    with single_metric(name="PitrWatchHealthy", unit=MetricUnit.Count, value=int(healthy)):
        pass
    return {"pitr_rpo_minutes": rpo, "sources": [s.to_dict() for s in found]}
