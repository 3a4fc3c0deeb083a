"""Workflow step 2: dump, encrypt and upload one database (``backstop.backup.run_backup``),
in the function or, for a database whose history says it will not fit, the same code in the
Fargate task (``handlers.task``).

Either runner stops the dump a margin before its own limit (``deadline``), so the upload is
aborted and a FAILED manifest records why, instead of the runner being killed mid-upload. The
library records every outcome in the database's index with the runner it ran on (a failure
before any manifest too, and whether it stopped at the deadline): the next runner choice and
the RPO check read it there.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop.backup import run_backup
from backstop.connection import Connection
from backstop.runners import CONTAINER, LAMBDA
from handlers import _runtime
from handlers._events import parse_request
from handlers.summary import summarize

logger = Logger()
tracer = Tracer()

# Aborting the upload and writing the FAILED manifest and the index take seconds; a minute
# leaves room for a slow S3 call.
DEADLINE_MARGIN_SECONDS = 60


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    return run(event, runner=LAMBDA,
               deadline=time.monotonic() + remaining - DEADLINE_MARGIN_SECONDS)


def run_task(event: dict[str, Any]) -> dict[str, Any]:
    """The Fargate task's entry (``handlers.task``): its limit comes from the stack and runs
    from when the workflow started the task (``BACKSTOP_TASK_STARTED``), so the minutes spent
    pulling the image and starting the container count against it, as they do for the state's
    timeout."""
    started = datetime.fromisoformat(_runtime.env("BACKSTOP_TASK_STARTED"))
    left = _runtime.number("BACKUP_TASK_SECONDS") - (datetime.now(UTC) - started).total_seconds()
    return run(event["request"], runner=CONTAINER,
               deadline=time.monotonic() + left - DEADLINE_MARGIN_SECONDS)


def run(event: dict[str, Any], *, runner: str, deadline: float) -> dict[str, Any]:
    request = parse_request(event)
    request = dataclasses.replace(
        request, checks=_runtime.database_checks().get(request.database, {}),
        scope=dataclasses.replace(request.scope, profile=_runtime.database_profiles().get(
            request.database, "plain")))
    connection = Connection.from_secret(_runtime.secret_for(request.database),
                                        client=_runtime.client("secretsmanager"))
    manifest = run_backup(request, connection=connection, store=_runtime.store(),
                          recipient_keys=_runtime.recipient_keys(), deadline=deadline,
                          runner=runner)
    logger.info("backup stored", extra={"backup_id": manifest.id, "key": manifest.key,
                                        "size": manifest.size, "runner": runner})
    return summarize(manifest)
