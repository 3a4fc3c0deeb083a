"""Restore workflows, step 1: read the request, choose the backup, decide where it runs.

Before anything costs money or touches a database: the input is checked (an existing target
needs ``confirm`` equal to its name), the backup is chosen (DONE only), and, when the restore
fits in the restore function, its object is checked end to end against the manifest (size,
sha256, decryption with the verifier's key). A backup too large for the function runs as a
Fargate task, whose restore checks the object the same way before it writes anything.
Returns the plan: secret-free, small, and everything the later states need.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop import index, scratch
from backstop.catalog import choose, data_loss_window
from backstop.connection import Connection
from backstop.errors import ConfigError
from backstop.runners import LAMBDA, restore_runner
from backstop.staging import check_object
from backstop.store import ObjectStore
from handlers import _runtime
from handlers._restore_events import (
    DATABASE,
    SCRATCH,
    configured_database,
    parse_restore,
    parse_verification,
    secret_name,
)
from handlers.summary import summarize

logger = Logger()
tracer = Tracer()

# The database a manual restore creates on a scratch instance (RDS DBName rules: a letter,
# then letters, digits, underscores); verification uses its own scratch database.
SCRATCH_DB_NAME = "restored"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    workflow = event.get("workflow")
    workflow_hours = int(_runtime.number("WORKFLOW_HOURS"))
    if workflow == "verify":
        parsed = parse_verification(event.get("request"))
    else:
        parsed = parse_restore(event.get("request"),
                               default_keep_hours=int(_runtime.number("KEEP_HOURS")),
                               max_keep_hours=int(_runtime.number("MAX_KEEP_HOURS")))
    configured = _runtime.databases()
    if parsed.database is not None and parsed.database not in configured:
        raise ConfigError(f"database {parsed.database!r} is not configured for this stack; "
                          f"use one of {', '.join(configured)}")
    target: dict[str, Any] = {"kind": parsed.target}
    if parsed.target == DATABASE:
        assert parsed.target_secret is not None
        target.update(_existing_target(parsed.target_secret, parsed.request.confirm))

    store = _runtime.store()
    backup_id = parsed.backup_id
    history = index.read(store, parsed.database) if parsed.database else None
    if workflow == "verify" and backup_id == "latest" and history is not None:
        # the backup the RPO counts on: the newest good full one, not any newer partial one
        backup_id = index.ages(history, now=datetime.now(UTC)).newest_full or backup_id
    manifest = choose(store, backup_id, database=parsed.database, before=parsed.before)
    if parsed.database is not None and manifest.database != parsed.database:
        raise ConfigError(f"backup {manifest.id} is of {manifest.database}, not "
                          f"{parsed.database}; give the matching database")
    history = index.read(store, manifest.database) or index.empty(manifest.database)
    # An occupied target first gets a pre-restore backup in the same runner: size it by the
    # target's database (its own backups when it is a configured one, else the backup's).
    target_bytes, target_backups, basis = 0, history["backups"], ""
    if parsed.target == DATABASE:
        assert parsed.target_secret is not None
        target_backups, basis = _target_history(store, parsed.target_secret, history)
        target_bytes = max((int(b.get("plain_size") or 0) for b in target_backups
                            if b.get("status") == "DONE"), default=0)
    choice = restore_runner(
        int(manifest.dump.get("plain_size") or 0), restores=history["restores"],
        default_bytes_per_second=_runtime.number("RESTORE_MB_S") * 1e6,
        tmp_bytes=int(_runtime.number("RESTORE_TMP_BYTES")),
        function_seconds=_runtime.number("RESTORE_SECONDS"), target_bytes=target_bytes,
        backups=target_backups)
    runner = choice.runner
    plan: dict[str, Any] = {
        "workflow": workflow, "database": manifest.database, "backup": summarize(manifest),
        "runner": runner, "runner_reason": choice.reason + basis, "target": target,
        "request": {"mode": parsed.request.mode, "tables": list(parsed.request.tables),
                    "confirm": parsed.request.confirm},
        "data_loss": None}
    if parsed.target == SCRATCH:
        if runner == LAMBDA:  # before paying for an instance
            check_object(store, manifest, _runtime.private_key())
        keep = workflow_hours + (parsed.keep_hours or 0)  # verification: none
        now = datetime.now(UTC)
        plan["scratch"] = {
            "instance_id": scratch.instance_id(str(event.get("execution"))),
            "engine_version": scratch.engine_version(manifest),
            "storage_gb": scratch.storage_gb(manifest), "keep_hours": str(keep),
            "keep_until": (now + timedelta(hours=keep)).isoformat(timespec="minutes"),
            "db_name": SCRATCH_DB_NAME}
    if parsed.incident_at is not None:
        window = data_loss_window(manifest, parsed.incident_at)
        plan["data_loss"] = {"incident_at": parsed.incident_at.isoformat(),
                             "window": str(window),
                             "hours": round(window.total_seconds() / 3600, 2)}
    logger.info("restore planned", extra={"backup_id": manifest.id, "runner": runner,
                                          "target": parsed.target})
    return plan


def _existing_target(secret: str, confirm: str | None) -> dict[str, Any]:
    """An existing database may be a target only when the stack lists its secret, and only
    with ``confirm`` equal to its name (read from the secret; no database is contacted)."""
    allowed = _runtime.restore_targets()
    if secret not in allowed and secret_name(secret) not in allowed:
        raise ConfigError(f"secret {secret} is not a restore target of this stack; list it in "
                          "restore.target_secrets and deploy, or restore into scratch")
    dbname = Connection.from_secret(secret, client=_runtime.client("secretsmanager")).dbname
    if confirm != dbname:
        raise ConfigError(f"confirm {confirm!r} does not match the target database name "
                          f"{dbname!r}; nothing was restored")
    return {"secret": secret, "dbname": dbname}


def _target_history(store: ObjectStore, secret: str, history: index.Doc
                    ) -> tuple[list[dict[str, Any]], str]:
    """The backups that size an occupied target's pre-restore backup, and a note that says
    whose: the configured database whose secret it is, or else the restored backup's
    database. Read from the index; the target itself is not contacted."""
    owner = configured_database(secret, _runtime.database_secrets())
    if owner is not None:
        own = index.read(store, owner)
        if own is not None and any(b.get("status") == "DONE" for b in own["backups"]):
            return own["backups"], f" (pre-restore backup sized from {owner}'s own backups)"
        return history["backups"], (f" (pre-restore backup sized from {history['database']}'s "
                                     f"backups: {owner} has none yet)")
    return history["backups"], (f" (pre-restore backup sized from {history['database']}'s "
                                "backups: the target is not a configured database)")
