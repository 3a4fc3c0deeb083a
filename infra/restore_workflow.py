"""The restore workflows: restore verification (scheduled) and manual restore (console).

Verification, ``{"database": "quotepro", "backup_id": "latest"}``::

    Plan -> CreateScratch -> (WaitForScratch -> DescribeScratch)* -> RunRestore | RunRestoreTask
         -> Verified? -> PublishResult -> DeleteScratch -> Done

Manual restore: the same, except that the target may be an existing database (no scratch
instance at all), and a scratch instance is *kept* after a restore, for inspection, until the
sweeper deletes it (its ``backstop:keep-hours`` tag says when).

Every failure after Plan takes one path: explain (one-line cause) -> [verification: publish
``RestoreTestFailed``, notify] -> delete the scratch instance if one may exist -> Fail. The
poll loop has a ceiling (``restore.instance_wait_minutes``); an instance that is still not
available then is deleted like any other. What no execution can clean up (aborted, timed out)
the sweeper deletes. Nothing secret passes through: the instance's master password stays in
its RDS-managed secret, the verifier's private key in its own secret.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from backstop.scratch import EXECUTION_TAG, KEEP_TAG, SCRATCH_TAG
from infra.backup_workflow import explain, retry_lambda_service
from infra.container_runner import ContainerRunner
from infra.functions import METRICS_NAMESPACE, log_retention
from infra.scratch import ScratchNetwork

VERIFY, RESTORE = "verify", "restore"
POLL_INTERVAL = cdk.Duration.seconds(60)
MASTER_USERNAME = "backstop"
# RDS statuses an instance does not recover from by waiting.
BROKEN_STATUSES = ("failed", "incompatible-network", "incompatible-option-group",
                   "incompatible-parameters", "incompatible-restore",
                   "inaccessible-encryption-credentials", "storage-full")
INVALID_STATE = "Rds.InvalidDbInstanceStateException"  # e.g. still creating or backing up
NOT_FOUND = "Rds.DbInstanceNotFoundException"


class RestoreWorkflow(Construct):
    """One restore state machine: ``kind`` is VERIFY (restore verification) or RESTORE."""

    def __init__(self, scope: Construct, id_: str, *, kind: str, plan_fn: lambda_.IFunction,
                 restore_fn: lambda_.IFunction, network: ScratchNetwork,
                 runner: ContainerRunner, topic: sns.ITopic, topic_key: kms.IKey,
                 instance_class: str, instance_wait: cdk.Duration, restore_timeout: cdk.Duration,
                 container_timeout: cdk.Duration, execution_timeout: cdk.Duration,
                 log_retention_days: int) -> None:
        super().__init__(scope, id_)
        assert kind in (VERIFY, RESTORE)
        self.kind = kind
        self._network = network
        verify = kind == VERIFY
        instance_id = sfn.JsonPath.string_at("$.plan.scratch.instance_id")

        # ---- ends and the failure path (built first: every task catches into it)
        failed = sfn.Fail(self, "RestoreTestFailed" if verify else "RestoreFailed",
                          error_path="$.failure.Error", cause_path="$.failure.Cause")
        rejected = sfn.Fail(self, "InputRejected", error_path="$.failure.Error",
                            cause_path="$.failure.Cause")
        delete_after_failure = self._delete("DeleteAfterFailure")
        delete_after_failure.add_catch(failed, errors=["States.ALL"],
                                       result_path=sfn.JsonPath.DISCARD)
        delete_after_failure.next(failed)
        cleanup = (sfn.Choice(self, "ScratchCreated?")
                   .when(sfn.Condition.is_present("$.plan.scratch.instance_id"),
                         delete_after_failure)
                   .otherwise(failed))
        failure_entry: sfn.IChainable = cleanup
        if verify:
            notify = tasks.SnsPublish(
                self, "NotifyFailure", topic=topic, subject="Backstop: a restore test failed",
                message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                    "Restore test of {} failed. {}: {}", sfn.JsonPath.string_at("$.database"),
                    sfn.JsonPath.string_at("$.failure.Error"),
                    sfn.JsonPath.string_at("$.failure.Cause"))),
                result_path=sfn.JsonPath.DISCARD)
            notify.add_catch(cleanup, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
            notify.next(cleanup)
            metric = self._metrics("PublishFailureMetric", [("RestoreTestFailed", 1, "Count")])
            metric.add_catch(notify, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
            failure_entry = metric.next(notify)
        explain_failure = explain(self, "Failure", failure_entry)

        # ---- plan: input, backup, runner, integrity pre-check
        plan = tasks.LambdaInvoke(
            self, "Plan", lambda_function=plan_fn, payload_response_only=True,
            retry_on_service_exceptions=False, result_path="$.plan",
            payload=sfn.TaskInput.from_object({
                "workflow": kind, "request": sfn.JsonPath.object_at("$"),
                "execution": sfn.JsonPath.string_at("$$.Execution.Name")}))
        retry_lambda_service(plan)
        plan.add_catch(explain(self, "InputError", rejected), errors=["ConfigError"],
                       result_path="$.error")
        plan.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")

        # ---- the scratch instance, and the wait until it is available
        create = tasks.CallAwsService(
            self, "CreateScratch", service="rds", action="createDBInstance",
            iam_action="rds:CreateDBInstance", iam_resources=network.create_resources(),
            additional_iam_statements=network.create_statements(),
            parameters=self._instance_parameters(instance_class), result_path=sfn.JsonPath.DISCARD)
        create.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")
        start_waiting = sfn.Pass(self, "StartWaiting", result=sfn.Result.from_object({"count": 0}),
                                 result_path="$.poll")
        wait = sfn.Wait(self, "WaitForScratch", time=sfn.WaitTime.duration(POLL_INTERVAL))
        describe = tasks.CallAwsService(
            self, "DescribeScratch", service="rds", action="describeDBInstances",
            iam_action="rds:DescribeDBInstances", iam_resources=[network.instance_arn()],
            parameters={"DbInstanceIdentifier": instance_id},
            result_selector={
                "status": sfn.JsonPath.string_at("$.DbInstances[0].DbInstanceStatus"),
                "instance": sfn.JsonPath.object_at("$.DbInstances[0]")},
            result_path="$.describe")
        describe.add_retry(errors=["States.ALL"], interval=cdk.Duration.seconds(10),
                           max_attempts=3, backoff_rate=2)
        describe.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")
        count = sfn.Pass(self, "CountPoll", result_path="$.poll", parameters={
            "count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.poll.count"), 1)})
        ready = sfn.Pass(self, "ScratchReady", result_path="$.instance", parameters={
            "id": instance_id,
            "host": sfn.JsonPath.string_at("$.describe.instance.Endpoint.Address"),
            "port": sfn.JsonPath.number_at("$.describe.instance.Endpoint.Port"),
            "secret_arn": sfn.JsonPath.string_at(
                "$.describe.instance.MasterUserSecret.SecretArn")})
        minutes = int(instance_wait.to_minutes())
        not_ready = sfn.Pass(self, "ScratchNotReady", result_path="$.failure", parameters={
            "Error": "ScratchInstanceNotReady",
            "Cause": sfn.JsonPath.format(
                f"Scratch instance {{}} is still {{}} after {minutes} minutes; it is deleted. "
                "Start the workflow again, or raise restore.instance_wait_minutes.",
                instance_id, sfn.JsonPath.string_at("$.describe.status"))}).next(failure_entry)
        broken = sfn.Pass(self, "ScratchBroken", result_path="$.failure", parameters={
            "Error": "ScratchInstanceFailed",
            "Cause": sfn.JsonPath.format(
                "Scratch instance {} is {}; it is deleted. Its RDS events say why.",
                instance_id, sfn.JsonPath.string_at("$.describe.status"))}).next(failure_entry)
        max_polls = max(1, minutes * 60 // int(POLL_INTERVAL.to_seconds()))
        available = (sfn.Choice(self, "ScratchAvailable?")
                     .when(sfn.Condition.string_equals("$.describe.status", "available"), ready)
                     .when(sfn.Condition.or_(*[sfn.Condition.string_equals(
                         "$.describe.status", s) for s in BROKEN_STATUSES]), broken)
                     .when(sfn.Condition.number_greater_than_equals("$.poll.count", max_polls),
                           not_ready)
                     .otherwise(count))
        count.next(wait)
        create.next(start_waiting).next(wait).next(describe).next(available)

        # ---- the restore: in the function, or the same code as a Fargate task
        run_lambda = tasks.LambdaInvoke(
            self, "RunRestore", lambda_function=restore_fn, payload_response_only=True,
            retry_on_service_exceptions=False, input_path="$.runInput", result_path="$.run",
            task_timeout=sfn.Timeout.duration(restore_timeout.plus(cdk.Duration.minutes(1))))
        retry_lambda_service(run_lambda)
        run_lambda.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")
        run_container = runner.run_task(self, "RunRestoreTask", input_path="$.runInput",
                                        result_path="$.run", timeout=container_timeout)
        run_container.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")
        run_where = (sfn.Choice(self, "RunWhere?")
                     .when(sfn.Condition.string_equals("$.plan.runner", "container"),
                           run_container)
                     .otherwise(run_lambda))
        scratch_input = sfn.Pass(self, "ScratchRunInput", result_path="$.runInput", parameters={
            "plan": sfn.JsonPath.object_at("$.plan"),
            "instance": sfn.JsonPath.object_at("$.instance")}).next(run_where)
        ready.next(scratch_input)

        no_report = sfn.Pass(self, "NoReport", result_path="$.failure", parameters={
            "Error": "RestoreNotReported",
            "Cause": "The restore task stopped without reporting an outcome; its log in the "
                     "restore task's log group says why."}).next(failure_entry)
        mismatch = sfn.Pass(self, "ExplainMismatch", result_path="$.failure", parameters={
            "Error": "VerificationFailed", "Cause": sfn.JsonPath.string_at("$.run.summary")})
        done = sfn.Succeed(self, "Done")
        if verify:
            mismatch.next(failure_entry)
            success: sfn.IChainable = self._verified(topic, done)
        else:
            mismatch.next(failed)  # a scratch instance stays, for inspection
            success = (sfn.Choice(self, "IntoScratch?")
                       .when(sfn.Condition.string_equals("$.plan.target.kind", "scratch"),
                             self._summary("SummarizeScratch", scratch=True).next(done))
                       .otherwise(self._summary("SummarizeTarget", scratch=False).next(done)))
        verified = (sfn.Choice(self, "Verified?")
                    .when(sfn.Condition.boolean_equals("$.run.report.ok", True), success)
                    .otherwise(mismatch))
        for run in (run_lambda, run_container):
            run.next(sfn.Choice(self, f"Reported{run.node.id}?")
                     .when(sfn.Condition.is_present("$.run.report.ok"), verified)
                     .otherwise(no_report))

        if verify:
            definition = plan.next(create)
        else:
            target_input = sfn.Pass(self, "TargetRunInput", result_path="$.runInput", parameters={
                "plan": sfn.JsonPath.object_at("$.plan")}).next(run_where)
            definition = plan.next(sfn.Choice(self, "Target?")
                                   .when(sfn.Condition.string_equals("$.plan.target.kind",
                                                                     "scratch"), create)
                                   .otherwise(target_input))

        log_group = logs.LogGroup(self, "Logs", retention=log_retention(log_retention_days),
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine", state_machine_type=sfn.StateMachineType.STANDARD,
            comment="Backstop: " + ("prove that a backup restores, on a scratch RDS instance"
                                    if verify else "restore a backup into scratch or a database"),
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=execution_timeout, tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=True))
        if verify:  # publishing to the encrypted alert topic needs its key too
            topic_key.grant(self.state_machine, "kms:GenerateDataKey", "kms:Decrypt")

    # ----------------------------------------------------------------- building blocks
    def _instance_parameters(self, instance_class: str) -> dict[str, object]:
        """CreateDBInstance in Step Functions' casing: smallest class, the source's major
        version, private, encrypted, no backups, no deletion protection, an RDS-managed master
        password, and the tags the sweeper and the IAM conditions rely on."""
        parameters: dict[str, object] = {
            "DbInstanceIdentifier": sfn.JsonPath.string_at("$.plan.scratch.instance_id"),
            "DbInstanceClass": instance_class, "Engine": "postgres",
            "EngineVersion": sfn.JsonPath.string_at("$.plan.scratch.engine_version"),
            "AllocatedStorage": sfn.JsonPath.number_at("$.plan.scratch.storage_gb"),
            "StorageType": "gp3", "StorageEncrypted": True,
            "MasterUsername": MASTER_USERNAME, "ManageMasterUserPassword": True,
            "DbSubnetGroupName": self._network.subnet_group.subnet_group_name,
            "VpcSecurityGroupIds": [self._network.instance_sg.security_group_id],
            "PubliclyAccessible": False, "MultiAz": False, "BackupRetentionPeriod": 0,
            "DeletionProtection": False, "CopyTagsToSnapshot": False,
            "Tags": [
                {"Key": SCRATCH_TAG, "Value": "true"},
                {"Key": KEEP_TAG, "Value": sfn.JsonPath.string_at("$.plan.scratch.keep_hours")},
                {"Key": EXECUTION_TAG, "Value": sfn.JsonPath.string_at("$$.Execution.Name")}]}
        if self.kind == RESTORE:
            parameters["DbName"] = sfn.JsonPath.string_at("$.plan.scratch.db_name")
        return parameters

    def _delete(self, id_: str) -> tasks.CallAwsService:
        delete = tasks.CallAwsService(
            self, id_, service="rds", action="deleteDBInstance",
            iam_action="rds:DeleteDBInstance", iam_resources=[self._network.instance_arn()],
            parameters={"DbInstanceIdentifier": sfn.JsonPath.string_at(
                "$.plan.scratch.instance_id"), "SkipFinalSnapshot": True,
                "DeleteAutomatedBackups": True},
            result_path=sfn.JsonPath.DISCARD)
        # An instance still creating, modifying or backing up cannot be deleted yet.
        delete.add_retry(errors=[INVALID_STATE], interval=cdk.Duration.seconds(60),
                         max_attempts=30, backoff_rate=1)
        return delete

    def _verified(self, topic: sns.ITopic, done: sfn.Succeed) -> sfn.IChainable:
        """Verification passed: metrics, delete the instance, summarize."""
        summarize = sfn.Pass(self, "Summarize", parameters={
            "summary": sfn.JsonPath.string_at("$.run.summary"),
            "backup": sfn.JsonPath.object_at("$.plan.backup"),
            "runner": sfn.JsonPath.string_at("$.plan.runner"),
            "report": sfn.JsonPath.object_at("$.run.report"),
            "scratch_instance": sfn.JsonPath.string_at("$.plan.scratch.instance_id")}).next(done)
        cleanup_failed = sfn.Fail(self, "ScratchCleanupFailed", error_path="$.failure.Error",
                                  cause_path="$.failure.Cause")
        notify = tasks.SnsPublish(
            self, "NotifyCleanupFailed", topic=topic,
            subject="Backstop: a scratch instance was not deleted",
            message=sfn.TaskInput.from_text(sfn.JsonPath.string_at("$.failure.Cause")),
            result_path=sfn.JsonPath.DISCARD)
        notify.add_catch(cleanup_failed, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        explain_cleanup = sfn.Pass(self, "ExplainCleanup", result_path="$.failure", parameters={
            "Error": "ScratchCleanupFailed",
            "Cause": sfn.JsonPath.format(
                "The restore test passed, but scratch instance {} could not be deleted ({}); "
                "the hourly sweeper deletes it.",
                sfn.JsonPath.string_at("$.plan.scratch.instance_id"),
                sfn.JsonPath.string_at("$.error.Error"))})
        explain_cleanup.next(notify).next(cleanup_failed)
        delete = self._delete("DeleteScratch")
        delete.add_catch(summarize, errors=[NOT_FOUND], result_path=sfn.JsonPath.DISCARD)
        delete.add_catch(explain_cleanup, errors=["States.ALL"], result_path="$.error")
        delete.next(summarize)
        publish = self._metrics("PublishResult", [
            ("RestoreTestSucceeded", 1, "Count"),
            ("RestoreDurationMinutes", sfn.JsonPath.number_at("$.run.restore_minutes"), "None")])
        publish.add_catch(delete, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        return publish.next(delete)

    def _summary(self, id_: str, *, scratch: bool) -> sfn.Pass:
        """What the operator reads in the execution's output."""
        common = {
            "summary": sfn.JsonPath.string_at("$.run.summary"),
            "backup": sfn.JsonPath.object_at("$.plan.backup"),
            "request": sfn.JsonPath.object_at("$.plan.request"),
            "runner": sfn.JsonPath.string_at("$.plan.runner"),
            "report": sfn.JsonPath.object_at("$.run.report"),
            "data_loss": sfn.JsonPath.object_at("$.plan.data_loss")}
        if scratch:
            common["instance"] = {
                "id": sfn.JsonPath.string_at("$.instance.id"),
                "host": sfn.JsonPath.string_at("$.instance.host"),
                "port": sfn.JsonPath.number_at("$.instance.port"),
                "database": sfn.JsonPath.string_at("$.plan.scratch.db_name"),
                "master_secret_arn": sfn.JsonPath.string_at("$.instance.secret_arn"),
                "kept_until": sfn.JsonPath.string_at("$.plan.scratch.keep_until")}
        else:
            common["target"] = {"database": sfn.JsonPath.string_at("$.plan.target.dbname"),
                                "secret": sfn.JsonPath.string_at("$.plan.target.secret")}
            common["pre_restore_backup"] = sfn.JsonPath.string_at("$.run.pre_restore_backup")
        return sfn.Pass(self, id_, parameters=common)

    def _metrics(self, id_: str, data: list[tuple[str, object, str]]) -> tasks.CallAwsService:
        dimensions = [{"Name": "Database", "Value": sfn.JsonPath.string_at("$.database")}]
        return tasks.CallAwsService(
            self, id_, service="cloudwatch", action="putMetricData",
            iam_resources=["*"], iam_action="cloudwatch:PutMetricData",
            parameters={"Namespace": METRICS_NAMESPACE, "MetricData": [
                {"MetricName": name, "Value": value, "Unit": unit, "Dimensions": dimensions}
                for name, value, unit in data]},
            result_path=sfn.JsonPath.DISCARD)
