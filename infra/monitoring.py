"""Knowing that backups happen: the RPO check, the alarms and the dashboard.

Metrics live in the ``Backstop`` namespace with a ``Database`` dimension:

- ``RecoveryPointAgeHours`` / ``RpoBreached``: the RPO-check function, every 15 minutes (EMF);
- ``BackupSucceeded``, ``BackupSizeBytes``, ``BackupDurationSeconds``: the check step (EMF);
- ``BackupFailed``, ``BackupCollapsed``: the backup workflow itself (PutMetricData), so a failure
  is counted even when no function got to run;
- ``RestoreDurationMinutes``, ``RestoreTestSucceeded``, ``RestoreTestFailed``: the restore
  verification workflow (PutMetricData); the duration is the measured RTO;
- ``VerificationAgeHours``: the RPO-check function, time since the newest successful restore
  test recorded in a manifest;
- ``ScratchInstanceAgeHours`` (no dimension): the sweeper, oldest scratch instance alive.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import BackstopConfig
from infra.functions import METRICS_NAMESPACE

RPO_CHECK_RATE = cdk.Duration.minutes(15)


class Monitoring(Construct):
    """RPO schedule, alarms (all to the alert topic) and a dashboard of the whole system."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig, topic: sns.ITopic,
                 state_machine: sfn.StateMachine, rpo_check_fn: lambda_.IFunction,
                 restore_machines: dict[str, sfn.StateMachine], scratch_age_limit_hours: int,
                 functions: dict[str, lambda_.Function]) -> None:
        super().__init__(scope, id_)
        self._action = cw_actions.SnsAction(topic)
        self.alarms: list[cw.Alarm] = []

        events.Rule(self, "RpoCheckSchedule", description="Backstop: RPO check every 15 minutes",
                    schedule=events.Schedule.rate(RPO_CHECK_RATE),
                    targets=[targets.LambdaFunction(rpo_check_fn)])

        age_widgets: list[cw.IMetric] = []
        for db in config.databases:
            age = self.metric("RecoveryPointAgeHours", db.name, "Maximum", cdk.Duration.hours(1))
            age_widgets.append(age)
            # No data means the check itself stopped: that is as bad as an old backup.
            self._alarm(f"Rpo{db.name}", age, threshold=config.rpo_hours,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        missing=cw.TreatMissingData.BREACHING,
                        description=f"Newest good backup of {db.name} is older than the RPO "
                                    f"({config.rpo_hours} h), or the RPO check stopped.")
            self._alarm(f"BackupFailed{db.name}", self.metric("BackupFailed", db.name),
                        description=f"A backup of {db.name} failed; see the execution's cause.")
            self._alarm(f"BackupCollapsed{db.name}", self.metric("BackupCollapsed", db.name),
                        description=f"A backup of {db.name} is much smaller than the previous "
                                    f"one (under {config.collapsed_fraction:g} of its size).")
            self._alarm(f"Rto{db.name}",
                        self.metric("RestoreDurationMinutes", db.name, "Maximum"),
                        threshold=config.rto_minutes,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        description=f"Measured restore of {db.name} took longer than the RTO "
                                    f"({config.rto_minutes} min).")
            self._alarm(f"RestoreTestFailed{db.name}", self.metric("RestoreTestFailed", db.name),
                        description=f"A restore test of {db.name} failed: a backup did not "
                                    "restore, or the restored data differs from its manifest.")
            days = config.restore.verification_max_age_days
            self._alarm(f"NoRestoreTest{db.name}",
                        self.metric("VerificationAgeHours", db.name, "Maximum",
                                    cdk.Duration.hours(1)),
                        threshold=days * 24,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        missing=cw.TreatMissingData.BREACHING,
                        description=f"No successful restore test of {db.name} within {days} "
                                    "days (or none at all, or the check stopped).")

        # The sweeper publishes every hour; nothing published means it stopped or failed.
        scratch_age = cw.Metric(namespace=METRICS_NAMESPACE, metric_name="ScratchInstanceAgeHours",
                                statistic="Maximum", period=cdk.Duration.hours(1))
        self._alarm("ScratchInstanceTooOld", scratch_age, threshold=scratch_age_limit_hours,
                    comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    missing=cw.TreatMissingData.BREACHING,
                    description="A scratch RDS instance outlived its allowed lifetime "
                                f"({scratch_age_limit_hours} h), or the sweeper stopped: it "
                                "costs money until deleted.")

        five = cdk.Duration.minutes(5)
        self._alarm("WorkflowFailed", state_machine.metric_failed(period=five, statistic="Sum"),
                    description="A backup workflow execution failed.")
        self._alarm("WorkflowTimedOut",
                    state_machine.metric_timed_out(period=five, statistic="Sum"),
                    description="A backup workflow execution timed out.")
        for name, machine in restore_machines.items():
            self._alarm(f"{name}Failed", machine.metric_failed(period=five, statistic="Sum"),
                        description=f"A {name} execution failed; see its cause.")
            self._alarm(f"{name}TimedOut", machine.metric_timed_out(period=five, statistic="Sum"),
                        description=f"A {name} execution timed out.")
        for name, fn in functions.items():
            self._alarm(f"{name}Errors", fn.metric_errors(period=five, statistic="Sum"),
                        description=f"The {name} function reported errors.")

        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=cdk.Duration.days(7))
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Recovery point age (hours)", left=age_widgets, width=12,
                           left_annotations=[cw.HorizontalAnnotation(
                               value=config.rpo_hours, label="RPO")]),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=12))
        per_db = [db.name for db in config.databases]
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Backups", width=8, left=[
                self.metric(m, d, "Sum", cdk.Duration.days(1))
                for d in per_db for m in ("BackupSucceeded", "BackupFailed", "BackupCollapsed")]),
            cw.GraphWidget(title="Backup size (bytes)", width=8, left=[
                self.metric("BackupSizeBytes", d, "Maximum", cdk.Duration.days(1))
                for d in per_db]),
            cw.GraphWidget(title="Backup duration (s)", width=8, left=[
                self.metric("BackupDurationSeconds", d, "Maximum", cdk.Duration.days(1))
                for d in per_db]))
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Restore tests", width=8, left=[
                self.metric(m, d, "Sum", cdk.Duration.days(1))
                for d in per_db for m in ("RestoreTestSucceeded", "RestoreTestFailed")]),
            cw.GraphWidget(title="Restore duration (min)", width=8, left=[
                self.metric("RestoreDurationMinutes", d, "Maximum", cdk.Duration.days(1))
                for d in per_db], left_annotations=[cw.HorizontalAnnotation(
                    value=config.rto_minutes, label="RTO")]),
            cw.GraphWidget(title="Since last good restore test (hours)", width=8, left=[
                self.metric("VerificationAgeHours", d, "Maximum", cdk.Duration.hours(1))
                for d in per_db] + [scratch_age]))
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Workflow executions", width=12, left=[
                m for machine in (state_machine, *restore_machines.values())
                for m in (machine.metric_succeeded(), machine.metric_failed(),
                          machine.metric_timed_out())]),
            cw.GraphWidget(title="Function errors", width=12, left=[
                fn.metric_errors(label=name) for name, fn in functions.items()]))

    @staticmethod
    def metric(name: str, database: str, statistic: str = "Sum",
               period: cdk.Duration | None = None) -> cw.Metric:
        return cw.Metric(namespace=METRICS_NAMESPACE, metric_name=name,
                         dimensions_map={"Database": database}, statistic=statistic,
                         period=period or cdk.Duration.minutes(5))

    def _alarm(self, id_: str, metric: cw.IMetric, *, description: str, threshold: float = 1,
               comparison: cw.ComparisonOperator =
               cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
               missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING) -> cw.Alarm:
        alarm = cw.Alarm(self, id_, metric=metric, threshold=threshold, evaluation_periods=1,
                         comparison_operator=comparison, treat_missing_data=missing,
                         alarm_description=description)
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
        return alarm
