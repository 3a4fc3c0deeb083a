"""Workflow step 1: reject a bad backup request with one sentence, before anything runs.

Returns the normalised request, the lock window for the per-database lock that the workflow
takes next (Step Functions has no clock arithmetic of its own), and the runner: the function,
or the Fargate task when the database's measured history says the backup will not fit
(``backstop.runners.backup_runner``; a configured runner wins), with that runner's limit.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop import index
from backstop.errors import ConfigError
from backstop.runners import AUTO, CONTAINER, backup_runner
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
    runner = choose_runner(request.database)
    logger.info("backup request accepted", extra={"database": request.database,
                                                  "retention": request.retention, **runner})
    return {"request": request_to_dict(request),
            "lock": {"now": str(now), "expiresAt": str(now + lock_seconds)}, "runner": runner}


def choose_runner(database: str) -> dict[str, object]:
    overrides: dict[str, str] = json.loads(os.environ.get("DATABASE_RUNNERS") or "{}")
    doc = index.read(_runtime.store(), database)
    choice = backup_runner(doc["backups"] if doc else [],
                           function_seconds=_runtime.number("BACKUP_SECONDS"),
                           override=overrides.get(database, AUTO))
    limit = _runtime.number("BACKUP_TASK_SECONDS" if choice.runner == CONTAINER
                            else "BACKUP_SECONDS")
    return {**choice.to_dict(), "limit_seconds": int(limit)}
