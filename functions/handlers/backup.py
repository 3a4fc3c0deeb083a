"""Workflow step 2: dump, encrypt and upload one database (``backstop.backup.run_backup``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop.backup import run_backup
from backstop.connection import Connection
from handlers import _runtime
from handlers._events import parse_request
from handlers.summary import summarize

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    request = dataclasses.replace(
        request, checks=_runtime.database_checks().get(request.database, {}),
        scope=dataclasses.replace(request.scope, profile=_runtime.database_profiles().get(
            request.database, "plain")))
    connection = Connection.from_secret(_runtime.secret_for(request.database),
                                        client=_runtime.client("secretsmanager"))
    manifest = run_backup(request, connection=connection, store=_runtime.store(),
                          recipient_keys=_runtime.recipient_keys())
    logger.info("backup stored", extra={"backup_id": manifest.id, "key": manifest.key,
                                        "size": manifest.size})
    return summarize(manifest)
