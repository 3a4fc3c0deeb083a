"""Backups and restores as a Fargate task, for databases too large for the functions.

The workflows start the task with ``ecs:runTask.sync`` and pass the same input the function
gets (``BACKSTOP_TASK_INPUT``: ``{"job": "backup", "request": ...}`` for a backup, the restore
plan otherwise) and the task token (``BACKSTOP_TASK_TOKEN``). The task runs the same code
(``handlers.backup.run_task``, ``handlers.restore.run``) and reports back the way the function
would: its outcome with ``SendTaskSuccess``, or the error's class name and message with
``SendTaskFailure``, so the workflow's Catch rules treat both runners alike. A task that dies
without reporting ends the ``.sync`` wait when it stops; the workflow then fails it as
unreported.

    python -m handlers.task
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger

from backstop.errors import BackstopError
from handlers import _runtime

logger = Logger()
MAX_CAUSE = 32768  # SendTaskFailure's limit


def _run(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("job") == "backup":
        from handlers.backup import run_task

        return run_task(event)
    from handlers.restore import run

    return run(event)


def main() -> int:
    token = _runtime.env("BACKSTOP_TASK_TOKEN")
    states = _runtime.client("stepfunctions")
    try:
        event = json.loads(os.environ.get("BACKSTOP_TASK_INPUT", ""))
        result = _run(event)
    except BackstopError as exc:
        logger.error("task failed", extra={"error": type(exc).__name__, "cause": str(exc)})
        states.send_task_failure(taskToken=token, error=type(exc).__name__,
                                 cause=str(exc)[:MAX_CAUSE])
        return exc.exit_code
    except Exception as exc:  # reported, not swallowed: the exit code still says it failed
        logger.exception("task crashed")
        states.send_task_failure(taskToken=token, error=type(exc).__name__,
                                 cause=" ".join(str(exc).split())[:MAX_CAUSE])
        return 1
    states.send_task_success(taskToken=token, output=json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
