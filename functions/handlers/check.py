"""Workflow step 3: check the stored backup and publish its metrics (EMF)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop.checks import assess_backup
from backstop.errors import ConfigError
from handlers import _runtime

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    manifest_key = (event.get("manifest") or {}).get("manifest_key")
    if not isinstance(manifest_key, str) or not manifest_key:
        raise ConfigError('the input needs "manifest" with the "manifest_key" of a backup')
    assessment = assess_backup(_runtime.store(), manifest_key,
                               collapsed_fraction=_runtime.number("COLLAPSED_FRACTION"))
    manifest = assessment.manifest
    metrics = Metrics()  # made per call: it reads its namespace from the environment then
    metrics.add_dimension(name="Database", value=manifest.database)
    metrics.add_metric(name="BackupSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BackupSizeBytes", unit=MetricUnit.Bytes, value=manifest.size)
    metrics.add_metric(name="BackupDurationSeconds", unit=MetricUnit.Seconds,
                       value=manifest.duration_seconds)
    limit = float((event.get("runner") or {}).get("limit_seconds") or 0)
    if limit > 0:  # the alarm fires above 70%: before a growing database hits the limit
        metrics.add_metric(name="BackupRunnerUsagePercent", unit=MetricUnit.Percent,
                           value=round(100 * manifest.duration_seconds / limit, 4))
    metrics.flush_metrics()
    result = assessment.to_dict()
    if assessment.collapsed:
        logger.warning("backup collapsed", extra=result)
    return result
