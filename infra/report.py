"""The monthly checklist report and the point-in-time recovery watch.

    MakeReport -> [report: Notify] -> Done            (input {} or {"month": "2026-01"})
    MakeReport -> Acknowledged                         (input {"acknowledge": "train-team", ...})

The report workflow starts on the 1st at 06:00 UTC (after the night's backups and restore
test) for the month before, or from the console for any month. Its function reads the
manifests, the bucket's own configuration, the alarms' history and the PITR sources, keeps
the report (HTML and JSON) in the bucket under ``<prefix>/reports/<month>/`` and returns the
notification, which the workflow sends to the alert topic with a link to the report. The
deployment's settings travel in the task's payload, fixed at synth: the console's input can
choose a month, never change what is expected.

Alarms: ``ReportItemFailed`` when a report has a failed item (no e-mail of its own: the
report's message is the notification). A report that cannot be made notifies from its
workflow's failure path; a timed-out one through the stack's ``WorkflowTimedOut``. With RDS
sources in ``report.pitr``, a watch every 5 minutes publishes each instance's PITR lag and
backup retention: ``PitrLag<db>`` fires when the latest restorable time is further behind
than ``report.pitr_rpo_minutes``, ``PitrRetention<db>`` when automated backups are off or kept
fewer days than configured, ``PitrWatchStopped`` when the watch cannot see an instance or
stopped.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.backup_workflow import explain, retry_lambda_service
from infra.config import BackstopConfig
from infra.functions import METRICS_NAMESPACE, Functions, log_retention
from infra.storage import Storage

PITR_WATCH_RATE = cdk.Duration.minutes(5)
REPORT_CRON = {"minute": "0", "hour": "6", "day": "1"}  # after the 04:00 monthly backup
BUCKET_CONFIGURATION_READS = ["s3:GetLifecycleConfiguration", "s3:GetBucketVersioning",
                              "s3:GetReplicationConfiguration",
                              "s3:GetBucketObjectLockConfiguration"]


def report_settings(config: BackstopConfig) -> dict[str, Any]:
    """What the report expects, in the keys ``backstop.report_model.Settings`` reads."""
    retention = config.retention
    return {
        "databases": [{"name": db.name, "schedules": list(db.schedules),
                       "scope": db.scope.to_input()} for db in config.databases],
        "rpo_hours": config.rpo_hours, "rto_minutes": config.rto_minutes,
        "collapsed_fraction": config.collapsed_fraction,
        "retention_days": {"daily": retention.daily, "weekly": retention.weekly,
                           "monthly": retention.monthly, "manual": retention.manual,
                           "noncurrent_versions": retention.noncurrent_versions},
        "replication": None if config.replication is None else {
            "destination_bucket_arn": config.replication.destination_bucket_arn},
        "object_lock": None if config.object_lock is None else {
            "mode": config.object_lock.mode, "days": config.object_lock.days},
        "report": config.report.to_settings()}


class ChecklistReport(Construct):
    """The report workflow, its schedule and alarm, and the PITR watch with its alarms."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig,
                 functions: Functions, storage: Storage, topic: sns.ITopic,
                 topic_key: kms.IKey) -> None:
        super().__init__(scope, id_)
        self._action = cw_actions.SnsAction(topic)
        self.alarms: list[cw.Alarm] = []
        self.function = functions.function(
            "Report", handler="handlers.report.handler",
            description="Backstop: the monthly backup verification checklist report",
            environment={**storage.store_env(),
                         "ALERT_TOPIC_ARN": topic.topic_arn},
            timeout=cdk.Duration.minutes(5), memory_mb=512)
        self._grant_report(config, storage, self.function)
        self.state_machine = self._workflow(config, topic, topic_key)

        if config.report.schedule == "monthly":
            events.Rule(self, "Schedule",
                        description="Backstop: the checklist report of the month before, "
                                    "the 1st of every month 06:00 UTC",
                        schedule=events.Schedule.cron(**REPORT_CRON),
                        targets=[targets.SfnStateMachine(
                            self.state_machine, input=events.RuleTargetInput.from_object({}))])
        # The report's own message is the notification; the alarm keeps a failed month
        # visible in CloudWatch (alarm state, history, dashboards) without a second e-mail.
        self.item_failed = cw.Alarm(
            self, "ReportItemFailed",
            metric=self._metric("ReportItemsFailed", "Maximum", cdk.Duration.hours(1)),
            threshold=1, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description="An item of the monthly backup checklist failed; the report in "
                              "the bucket names the evidence.")
        self.watch = self._pitr_watch(config, functions) if config.report.rds() else None

    # ---- the report
    def _grant_report(self, config: BackstopConfig, storage: Storage,
                      fn: iam.IGrantable) -> None:
        storage.grant_read_backups(fn)
        prefix = config.prefix
        # The month's manifests that retention expired are read from their old versions.
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:GetObjectVersion"],
                                   resource_arns=[storage.objects_arn()])
        iam.Grant.add_to_principal(
            grantee=fn, actions=["s3:ListBucketVersions"],
            resource_arns=[storage.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}})
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:PutObject"], resource_arns=[
            storage.bucket.arn_for_objects(f"{prefix}/reports/*"),
            storage.bucket.arn_for_objects(f"{prefix}/acknowledgements/*")])
        storage.key.grant(fn, "kms:GenerateDataKey")
        iam.Grant.add_to_principal(grantee=fn, actions=BUCKET_CONFIGURATION_READS,
                                   resource_arns=[storage.bucket.bucket_arn])
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:GetObjectRetention"],
                                   resource_arns=[storage.objects_arn()])
        if config.replication is not None:
            # HEAD of each replica; ListBucket makes a missing one a 404, not a 403.
            replica = config.replication.destination_bucket_arn
            iam.Grant.add_to_principal(grantee=fn, actions=["s3:GetObject"],
                                       resource_arns=[f"{replica}/{prefix}/*"])
            iam.Grant.add_to_principal(grantee=fn, actions=["s3:ListBucket"],
                                       resource_arns=[replica])
        # the alarms of the period: any alarm of the account's region may notify the topic
        iam.Grant.add_to_principal(
            grantee=fn, actions=["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"],
            resource_arns=[cdk.Stack.of(self).format_arn(
                service="cloudwatch", resource="alarm", resource_name="*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)])
        self._grant_rds(config, fn)
        for i, source in enumerate(config.report.supabase().values()):
            secret = source.token_secret
            (secretsmanager.Secret.from_secret_complete_arn(self, f"Token{i}", secret)
             if secret.startswith("arn:") else
             secretsmanager.Secret.from_secret_name_v2(self, f"Token{i}", secret)
             ).grant_read(fn)

    def _grant_rds(self, config: BackstopConfig, fn: iam.IGrantable) -> None:
        instances = [s.instance for s in config.report.rds().values()]
        if instances:
            stack = cdk.Stack.of(self)
            iam.Grant.add_to_principal(grantee=fn, actions=["rds:DescribeDBInstances"],
                                       resource_arns=[stack.format_arn(
                                           service="rds", resource="db", resource_name=i,
                                           arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
                                           for i in instances])

    def _workflow(self, config: BackstopConfig, topic: sns.ITopic,
                  topic_key: kms.IKey) -> sfn.StateMachine:
        failed = sfn.Fail(self, "ReportFailed", error_path="$.failure.Error",
                          cause_path="$.failure.Cause")
        notify_failure = tasks.SnsPublish(
            self, "NotifyFailure", topic=topic,
            subject="Backstop: the monthly checklist report failed",
            message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                "The checklist report could not be made. {}: {}",
                sfn.JsonPath.string_at("$.failure.Error"),
                sfn.JsonPath.string_at("$.failure.Cause"))),
            result_path=sfn.JsonPath.DISCARD)
        notify_failure.add_catch(failed, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        notify_failure.next(failed)
        rejected = sfn.Fail(self, "InputRejected", error_path="$.failure.Error",
                            cause_path="$.failure.Cause")

        make = tasks.LambdaInvoke(
            self, "MakeReport", lambda_function=self.function,
            retry_on_service_exceptions=False,
            payload=sfn.TaskInput.from_object({"request": sfn.JsonPath.object_at("$"),
                                               "settings": report_settings(config)}),
            output_path="$.Payload")
        retry_lambda_service(make)
        make.add_catch(explain(self, "InputError", rejected), errors=["ConfigError"],
                       result_path="$.error")
        make.add_catch(explain(self, "Failure", notify_failure), errors=["States.ALL"],
                       result_path="$.error")

        done = sfn.Succeed(self, "Done")
        notify = tasks.SnsPublish(
            self, "Notify", topic=topic, subject=sfn.JsonPath.string_at("$.subject"),
            message=sfn.TaskInput.from_json_path_at("$.message"),
            result_path=sfn.JsonPath.DISCARD)
        notify.add_catch(explain(self, "NotifyError", failed), errors=["States.ALL"],
                         result_path="$.error")
        notify.next(done)
        definition = make.next(sfn.Choice(self, "Report?")
                               .when(sfn.Condition.string_equals("$.kind", "report"), notify)
                               .otherwise(sfn.Succeed(self, "Acknowledged")))
        log_group = logs.LogGroup(self, "Logs",
                                  retention=log_retention(config.log_retention_days),
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        machine = sfn.StateMachine(
            self, "StateMachine", comment="Backstop: the monthly backup verification checklist",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=cdk.Duration.minutes(30), tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=True))
        topic_key.grant(machine, "kms:GenerateDataKey", "kms:Decrypt")
        return machine

    # ---- point-in-time recovery
    def _pitr_watch(self, config: BackstopConfig, functions: Functions) -> Any:
        rds = config.report.rds()
        watch = functions.function(
            "PitrWatch", handler="handlers.pitr.handler",
            description="Backstop: the point-in-time recovery lag and retention of RDS sources",
            environment={"PITR_SOURCES": json.dumps(
                {db: {"rds_instance": s.instance, "retention_days": s.retention_days}
                 for db, s in rds.items()}, separators=(",", ":")),
                "PITR_RPO_MINUTES": str(config.report.pitr_rpo_minutes)})
        self._grant_rds(config, watch)
        events.Rule(self, "PitrWatchSchedule",
                    description="Backstop: PITR watch of the RDS sources every 5 minutes",
                    schedule=events.Schedule.rate(PITR_WATCH_RATE),
                    targets=[targets.LambdaFunction(watch)])
        rpo = config.report.pitr_rpo_minutes
        for db, source in rds.items():
            self._alarm(f"PitrLag{db}", self._metric("PitrLagMinutes", "Maximum",
                                                     PITR_WATCH_RATE, db),
                        threshold=rpo,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        description=f"The latest restorable time of {source.instance} "
                                    f"({db}) is more than {rpo} min behind: the PITR RPO.")
            self._alarm(f"PitrRetention{db}", self._metric("PitrRetentionDays", "Minimum",
                                                           PITR_WATCH_RATE, db),
                        threshold=source.retention_days,
                        comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                        description=f"Automated backups of {source.instance} ({db}) are off "
                                    f"or kept fewer than {source.retention_days} days.")
        self._alarm("PitrWatchStopped", self._metric("PitrWatchHealthy", "Minimum",
                                                     cdk.Duration.minutes(15)),
                    threshold=1, comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                    missing=cw.TreatMissingData.BREACHING,
                    description="The PITR watch cannot describe an RDS source, or stopped.")
        return watch

    # ---- helpers
    @staticmethod
    def _metric(name: str, statistic: str, period: cdk.Duration,
                database: str | None = None) -> cw.Metric:
        return cw.Metric(namespace=METRICS_NAMESPACE, metric_name=name, statistic=statistic,
                         period=period,
                         dimensions_map={"Database": database} if database else None)

    def _alarm(self, id_: str, metric: cw.IMetric, *, description: str,
               comparison: cw.ComparisonOperator, threshold: float = 1,
               missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING) -> None:
        alarm = cw.Alarm(self, id_, metric=metric, threshold=threshold, evaluation_periods=1,
                         comparison_operator=comparison, treat_missing_data=missing,
                         alarm_description=description)
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)

