"""Knowing that backups happen: the RPO check, the alarms and the dashboard.

Metrics live in the ``Backstop`` namespace with a ``Database`` dimension:

- ``RecoveryPointAgeHours`` / ``VerificationAgeHours``: the RPO check, every 15 minutes (EMF),
  from each database's index; ``RpoCheckHealthy`` (no dimension) when it assessed them all;
- ``BackupSucceeded``, ``BackupSizeBytes``, ``BackupDurationSeconds``,
  ``BackupRunnerUsagePercent``: the check step (EMF);
- ``BackupFailed``, ``BackupCollapsed``: the backup workflow itself (PutMetricData);
- ``RestoreDurationMinutes``, ``RestoreTestSucceeded``, ``RestoreTestFailed``: the restore
  verification workflow (PutMetricData); the duration is the measured RTO;
- ``ScratchInstanceAgeHours`` (no dimension): the sweeper, oldest scratch instance alive.

One incident, one notification. A failure the workflows handle (a backup failed or collapsed,
a restore test failed) is notified by the workflow itself, with its cause; its metrics feed the
dashboard, not an alarm, and no "execution failed" or "function errors" alarm repeats it. The
alarms watch what no workflow reports: ages (RPO, last good restore test), the RTO, a backup
near its runner's limit, a stopped RPO check or sweeper, timed-out executions, and manual
restores.
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
NEAR_LIMIT_PERCENT = 70


class Monitoring(Construct):
    """RPO schedule, alarms (all to the alert topic) and a dashboard of the whole system."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig, topic: sns.ITopic,
                 state_machine: sfn.StateMachine, rpo_check_fn: lambda_.IFunction,
                 restore_machines: dict[str, sfn.StateMachine], scratch_age_limit_hours: int,
                 functions: dict[str, lambda_.Function],
                 fleet_machines: dict[str, sfn.StateMachine] | None = None) -> None:
        super().__init__(scope, id_)
        self._action = cw_actions.SnsAction(topic)
        self.alarms: list[cw.Alarm] = []

        events.Rule(self, "RpoCheckSchedule", description="Backstop: RPO check every 15 minutes",
                    schedule=events.Schedule.rate(RPO_CHECK_RATE),
                    targets=[targets.LambdaFunction(rpo_check_fn)])

        check = RPO_CHECK_RATE
        age_widgets: list[cw.IMetric] = []
        for db in config.databases:
            age = self.metric("RecoveryPointAgeHours", db.name, "Maximum", check)
            age_widgets.append(age)
            # Missing data is not a breach here: a stopped check is the RpoCheck alarm's one
            # notification, not one per database.
            self._alarm(f"Rpo{db.name}", age, threshold=config.rpo_hours,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        description=f"{db.name}: the newest good full backup's snapshot is "
                                    f"older than the RPO ({config.rpo_hours} h). Look at the "
                                    "backup workflow's last executions for this database; "
                                    "start a backup by hand once the cause is fixed.")
            days = config.restore.verification_max_age_days
            self._alarm(f"NoRestoreTest{db.name}",
                        self.metric("VerificationAgeHours", db.name, "Maximum", check),
                        threshold=days * 24,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        description=f"{db.name}: no full backup newer than {days} days has "
                                    "passed a restore test. Look at the restore-verification "
                                    "workflow's last executions.")
            self._alarm(f"Rto{db.name}",
                        self.metric("RestoreDurationMinutes", db.name, "Maximum"),
                        threshold=config.rto_minutes,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        description=f"{db.name}: a measured restore took longer than the RTO "
                                    f"({config.rto_minutes} min). Size the restore runner up, "
                                    "or revisit the RTO.")
            self._alarm(f"BackupNearLimit{db.name}",
                        self.metric("BackupRunnerUsagePercent", db.name, "Maximum"),
                        threshold=NEAR_LIMIT_PERCENT,
                        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        description=f"{db.name}: a backup used more than "
                                    f"{NEAR_LIMIT_PERCENT}% of its runner's time limit. The "
                                    "next one moves to the Fargate task by itself; on the "
                                    "task already, raise backup_container.timeout_hours.")

        self._alarm("RpoCheck", cw.Metric(
            namespace=METRICS_NAMESPACE, metric_name="RpoCheckHealthy", statistic="Sum",
            period=cdk.Duration.minutes(30)), threshold=1,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cw.TreatMissingData.BREACHING,
            description="The RPO check stopped, or could not read a database's index: recovery "
                        "point ages are unknown. See the RpoCheck function's log.")
        # The sweeper publishes every hour; nothing published means it stopped or failed.
        scratch_age = cw.Metric(namespace=METRICS_NAMESPACE, metric_name="ScratchInstanceAgeHours",
                                statistic="Maximum", period=cdk.Duration.hours(1))
        self._alarm("ScratchInstanceTooOld", scratch_age, threshold=scratch_age_limit_hours,
                    comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    missing=cw.TreatMissingData.BREACHING,
                    description="A scratch RDS instance outlived its allowed lifetime "
                                f"({scratch_age_limit_hours} h), or the sweeper stopped: it "
                                "costs money until deleted. Delete backstop-scratch-* "
                                "instances by hand and see the sweeper's log.")

        five = cdk.Duration.minutes(5)
        machines = {"Backup": state_machine, **restore_machines, **(fleet_machines or {})}
        timed_out = {f"m{i}": m.metric_timed_out(period=five, statistic="Sum")
                     for i, m in enumerate(machines.values())}
        self._alarm("WorkflowTimedOut", cw.MathExpression(
            expression=" + ".join(f"FILL({k}, 0)" for k in timed_out), using_metrics=timed_out,
            period=five, label="executions timed out"),
            description="A workflow execution timed out, so its own failure path did not run "
                        "(no other notification). Open the execution in the console.")
        self._alarm("ManualRestoreFailed",
                    restore_machines["ManualRestore"].metric_failed(period=five, statistic="Sum"),
                    description="A manual restore failed; its cause is in the execution. "
                                "Nothing else notifies about manual restores.")

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
            cw.GraphWidget(title="Share of the runner's limit (%)", width=8, left=[
                self.metric("BackupRunnerUsagePercent", d, "Maximum", cdk.Duration.days(1))
                for d in per_db], left_annotations=[cw.HorizontalAnnotation(
                    value=NEAR_LIMIT_PERCENT, label="alarm")]),
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
