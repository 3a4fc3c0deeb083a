"""One schedule, every database: the fleet backup workflow.

    {"retention": "daily"} -> Which? -> <Class>Databases -> Map (at most
    ``backup_concurrency`` at once): BackupWorkflow for each database (startExecution.sync:2)
    -> Failed? -> Done | SomeBackupsFailed

Each database runs as its own BackupWorkflow execution, with its own lock, runner choice,
failure path and notification; the Map catches each one's failure, so one database never stops
the others, and the fleet execution ends by naming every database that failed. Up to
``INLINE_LIMIT`` databases the Map is inline; above it, a Distributed Map, whose child
executions keep the parent's history small (Step Functions caps a history at 25,000 events and
an inline Map at 40 concurrent iterations).
"""

from __future__ import annotations

import math

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import BackstopConfig
from infra.functions import log_retention
from infra.storage_config import SCHEDULED_CLASSES

INLINE_LIMIT = 40


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


class FleetBackup(Construct):
    """The state machine each schedule starts, backing up every database on that schedule."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig,
                 backup: sfn.IStateMachine, backup_timeout: cdk.Duration) -> None:
        super().__init__(scope, id_)
        self.classes = [c for c in SCHEDULED_CLASSES
                        if any(c in db.schedules for db in config.databases)]
        largest = max(sum(c in db.schedules for db in config.databases) for c in self.classes)
        distributed = largest > INLINE_LIMIT

        run = tasks.StepFunctionsStartExecution(
            self, "BackUpDatabase", state_machine=backup,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            input=sfn.TaskInput.from_json_path_at("$"), name=sfn.JsonPath.uuid(),
            result_selector={"database": sfn.JsonPath.string_at("$.Output.backup.database"),
                             "backup_id": sfn.JsonPath.string_at("$.Output.backup.id"),
                             "ok": True})
        failed = sfn.Pass(self, "DatabaseFailed", parameters={
            "database": sfn.JsonPath.string_at("$.database"), "ok": False,
            "error": sfn.JsonPath.string_at("$.error.Error"),
            "cause": sfn.JsonPath.string_at("$.error.Cause")})
        run.add_catch(failed, errors=["States.ALL"], result_path="$.error")

        each: sfn.MapBase
        if distributed:
            each = sfn.DistributedMap(
                self, "EachDatabase", items_path="$.items", result_path="$.results",
                max_concurrency=config.backup_concurrency,
                map_execution_type=sfn.StateMachineType.STANDARD)
        else:
            each = sfn.Map(self, "EachDatabase", items_path="$.items", result_path="$.results",
                           max_concurrency=config.backup_concurrency)
        each.item_processor(run)

        summary = sfn.Pass(self, "Summarize", parameters={
            "results": sfn.JsonPath.object_at("$.results"),
            "failed": sfn.JsonPath.list_at("$.results[?(@.ok == false)].database")})
        some_failed = sfn.Fail(
            self, "SomeBackupsFailed", error="SomeBackupsFailed",
            cause_path=sfn.JsonPath.format(
                "Backups failed for {}; each was notified with its cause, and its "
                "BackupWorkflow execution says more.",
                sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.failed"))))
        each.next(summary).next(
            sfn.Choice(self, "Failed?")
            .when(sfn.Condition.is_present("$.failed[0]"), some_failed)
            .otherwise(sfn.Succeed(self, "Done")))

        which = sfn.Choice(self, "Which?")
        for retention in self.classes:
            items = [{"database": db.name, "retention": retention,
                      "reason": f"scheduled {retention} backup", "scope": db.scope.to_input()}
                     for db in config.databases if retention in db.schedules]
            which.when(sfn.Condition.string_equals("$.retention", retention),
                       sfn.Pass(self, f"{_pascal(retention)}Databases",
                                result=sfn.Result.from_array(items),
                                result_path="$.items").next(each))
        which.otherwise(sfn.Fail(self, "UnknownSchedule", error="ConfigError",
                                 cause="The input's retention names no schedule of this stack."))

        rounds = math.ceil(len(config.databases) / config.backup_concurrency)
        log_group = logs.LogGroup(self, "Logs", retention=log_retention(
            config.log_retention_days), removal_policy=cdk.RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine", comment="Backstop: back up every database on one schedule",
            definition_body=sfn.DefinitionBody.from_chainable(which),
            timeout=cdk.Duration.minutes(backup_timeout.to_minutes() * rounds),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=True))
