"""Restore workflows, the restore itself: in this function, or the same code in a Fargate task.

A verification restores into a scratch database on the scratch instance, verifies it, records
the report in the manifest and drops the database (``verify_backup``). A manual restore goes
into the scratch instance's ``restored`` database, or into an existing database named by its
secret, which first gets a pre-restore backup (``restore``). The scratch instance's master
password comes from the RDS-managed secret; it never passes through the workflow.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from backstop.catalog import choose
from backstop.connection import Connection
from backstop.prove import verify_backup
from backstop.restore import RestoreRequest, restore
from backstop.verify import Report
from handlers import _runtime

logger = Logger()
tracer = Tracer()

MAX_LISTED = 20  # mismatches and problems listed in the workflow output (the rest: the log)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run(event)


def run(event: dict[str, Any]) -> dict[str, Any]:
    """``{"plan": <the plan step's output>, "instance": {"host", "port", "secret_arn"}}``
    (no instance for an existing target) -> a small, secret-free outcome."""
    plan = event["plan"]
    secrets = _runtime.client("secretsmanager")
    store = _runtime.store()
    manifest = choose(store, plan["backup"]["id"])
    checks = _runtime.database_checks().get(manifest.database, {})  # never the manifest's
    request = RestoreRequest(mode=plan["request"]["mode"], tables=tuple(plan["request"]["tables"]),
                             confirm=plan["request"]["confirm"], checks=checks)
    pre_restore = None
    if plan["target"]["kind"] == "scratch":
        instance = event["instance"]
        server = Connection.from_secret(instance["secret_arn"], client=secrets,
                                        host=instance["host"], port=int(instance["port"]),
                                        dbname="postgres")
        if plan["workflow"] == "verify":
            # recorded in the manifest and the index with the runner it ran on
            report = verify_backup(store, manifest, server=server,
                                   private_key=_runtime.private_key(), checks=checks,
                                   runner=plan["runner"])
        else:
            target = server.with_dbname(plan["scratch"]["db_name"])
            report = restore(store, manifest, target=target, request=request,
                             private_key=_runtime.private_key()).report
        where = f"scratch instance {plan['scratch']['instance_id']}"
    else:
        target = Connection.from_secret(plan["target"]["secret"], client=secrets)
        outcome = restore(store, manifest, target=target, request=request,
                          private_key=_runtime.private_key(),
                          recipient_keys=_runtime.recipient_keys())
        report, pre_restore = outcome.report, outcome.pre_restore_backup
        where = f"database {target.dbname}"
    result = outcome_of(report, where=where, pre_restore=pre_restore)
    logger.info("restore finished", extra={k: v for k, v in result.items() if k != "report"})
    return result


def outcome_of(report: Report, *, where: str, pre_restore: str | None) -> dict[str, Any]:
    full = report.to_dict()
    problems = full["mismatches"] + full["problems"]
    if report.ok:
        summary = (f"Backup {report.backup_id} of {report.database} restored into {where} and "
                   f"verified: {full['tables_matched']} of {full['tables_checked']} tables equal "
                   f"the manifest; restore took {report.restore_seconds:g} s.")
    else:
        summary = (f"Backup {report.backup_id} of {report.database} restored into {where} "
                   f"differs from its manifest: {'; '.join(problems[:5])}"
                   + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "") + ".")
    compact = {k: v for k, v in full.items() if k != "tables"}  # per table: in the manifest
    compact["mismatches"] = full["mismatches"][:MAX_LISTED]
    compact["problems"] = full["problems"][:MAX_LISTED]
    return {"report": compact, "summary": summary, "target": where,
            "restore_minutes": round(report.restore_seconds / 60, 3),
            "pre_restore_backup": pre_restore}
