"""Delete the scratch instances that restore workflows left behind (``backstop.scratch.sweep``).

Runs every hour, and at once when a restore execution is aborted or times out (an EventBridge
rule on the execution's status change): that execution could not run its own cleanup, so its
instance (named after the execution) goes first, then the hourly sweep by age. Only instances
named ``backstop-scratch-*`` *and* tagged ``backstop:scratch=true`` are ever deleted.

Publishes ``ScratchInstanceAgeHours``: the oldest scratch instance still alive. The alarm on it
breaches above the longest allowed lifetime, and on missing data (the sweeper stopped).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop import scratch
from handlers import _runtime

logger = Logger()
tracer = Tracer()

STATUS_CHANGE = "Step Functions Execution Status Change"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rds = _runtime.client("rds")
    now = _event_time(event)
    stopped = None
    if event.get("detail-type") == STATUS_CHANGE:
        stopped = scratch.delete_for_execution(rds, str(event["detail"]["name"]))
    result = scratch.sweep(rds, now=now, default_keep_hours=_runtime.number("DEFAULT_KEEP_HOURS"))
    # Flushed one by one (the namespace is read when each is written, not at import).
    with single_metric(name="ScratchInstanceAgeHours", unit=MetricUnit.NoUnit,
                       value=result.oldest_age_hours):
        pass
    with single_metric(name="ScratchInstancesDeleted", unit=MetricUnit.Count,
                       value=len(result.deleted) + (stopped is not None)):
        pass
    if result.deleted or stopped:
        logger.info("scratch instances deleted", extra={"deleted": result.deleted,
                                                        "stopped_execution": stopped})
    return {"deleted": result.deleted, "kept": result.kept, "stopped_execution": stopped,
            "oldest_age_hours": result.oldest_age_hours}


def _event_time(event: dict[str, Any]) -> datetime:
    """EventBridge stamps every event; the sweep measures ages against that moment."""
    stamp = event.get("time")
    if isinstance(stamp, str):
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return datetime.now(UTC)
