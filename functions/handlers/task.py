"""The restore as a Fargate task, for backups too large for the restore function.

The workflow starts the task with ``ecs:runTask.sync`` and passes the same input the function
gets (``BACKSTOP_TASK_INPUT``) and its task token (``BACKSTOP_TASK_TOKEN``). The task runs the
same code (``handlers.restore.run``) and reports back the way the function would: its outcome
with ``SendTaskSuccess``, or the error's class name and message with ``SendTaskFailure``, so
the workflow's Catch rules treat both runners alike. A task that dies without reporting ends
the ``.sync`` wait when it stops; the workflow then fails it as unreported.

    python -m handlers.task
"""

from __future__ import annotations

import json
import os

from aws_lambda_powertools import Logger

from backstop.errors import BackstopError
from handlers import _runtime
from handlers.restore import run

logger = Logger()
MAX_CAUSE = 32768  # SendTaskFailure's limit


def main() -> int:
    token = _runtime.env("BACKSTOP_TASK_TOKEN")
    states = _runtime.client("stepfunctions")
    try:
        event = json.loads(os.environ.get("BACKSTOP_TASK_INPUT", ""))
        result = run(event)
    except BackstopError as exc:
        logger.error("restore failed", extra={"error": type(exc).__name__, "cause": str(exc)})
        states.send_task_failure(taskToken=token, error=type(exc).__name__,
                                 cause=str(exc)[:MAX_CAUSE])
        return exc.exit_code
    except Exception as exc:  # reported, not swallowed: the exit code still says it failed
        logger.exception("restore crashed")
        states.send_task_failure(taskToken=token, error=type(exc).__name__,
                                 cause=" ".join(str(exc).split())[:MAX_CAUSE])
        return 1
    states.send_task_success(taskToken=token, output=json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
