"""Workflow step 1: reject a bad backup request with one sentence, before anything runs.

Returns the normalised request and the lock window for the per-database lock that the
workflow takes next (Step Functions has no clock arithmetic of its own).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop.errors import ConfigError
from handlers import _runtime
from handlers._events import parse_request, request_to_dict

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event.get("request"))
    configured = _runtime.databases()
    if request.database not in configured:
        raise ConfigError(f"database {request.database!r} is not configured for this stack; "
                          f"use one of {', '.join(configured)}")
    now = int(time.time())
    lock_seconds = int(_runtime.number("LOCK_SECONDS"))
    logger.info("backup request accepted", extra={"database": request.database,
                                                  "retention": request.retention})
    return {"request": request_to_dict(request),
            "lock": {"now": str(now), "expiresAt": str(now + lock_seconds)}}
