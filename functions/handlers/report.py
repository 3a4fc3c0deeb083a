"""The monthly checklist report (scheduled on the 1st for the month before, or started from
the console), and the acknowledgement of a checklist item about people.

Input (the workflow passes the console's input as ``request`` and the deployment's settings
beside it): ``{}`` or ``{"month": "2026-01"}`` for a report; ``{"acknowledge":
"train-team", "by": "dana", "note": "restore drill"}`` to record an acknowledgement.
The report is kept in the bucket under ``reports/<month>/``; ``ReportItemsFailed`` (EMF)
counts the failed items, and the returned subject and message are what the topic sends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop import report
from backstop.errors import ConfigError
from backstop.report_model import Period, Settings, previous_month
from handlers import _runtime

logger = Logger()
tracer = Tracer()
FIELDS = ("month", "acknowledge", "by", "note")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("request") or {}
    if not isinstance(request, dict) or set(request) - set(FIELDS):
        raise ConfigError(f"the input may hold only {', '.join(FIELDS)}, e.g. "
                          '{"month": "2026-01"} or {"acknowledge": "train-team", "by": "dana"}')
    store = _runtime.store()
    now = datetime.now(UTC)
    if "acknowledge" in request:
        record = report.acknowledge(store, str(request["acknowledge"]),
                                    by=str(request.get("by") or ""),
                                    note=str(request.get("note") or ""), now=now)
        return {"kind": "acknowledgement", **record}
    month = request.get("month") or previous_month(now)
    built = report.build(
        store, Settings.from_dict(event.get("settings") or {}),
        Period.month(str(month), now=now), now=now,
        sources=report.Sources(rds=_runtime.client("rds"),
                               secrets=_runtime.client("secretsmanager"),
                               cloudwatch=_runtime.client("cloudwatch"),
                               topic_arn=_runtime.env("ALERT_TOPIC_ARN")))
    keys = report.publish(store, built)
    with single_metric(name="ReportItemsFailed", unit=MetricUnit.Count,
                       value=len(built.failed)):
        pass
    notice = report.notice(store, built, keys, region=_runtime.client("s3").meta.region_name)
    logger.info("checklist report", extra={"month": built.period.label,
                                           "status": built.status,
                                           "failed": [i.id for i in built.failed]})
    return {"kind": "report", **notice}
