"""The backup workflow: one Standard state machine per stack, one execution per backup.

    Validate -> AcquireLock -> RunWhere? -> Backup | BackupTask -> Check
             -> [collapsed: metric, notify] -> ReleaseLock

Validate chooses the runner from the database's measured history (``backstop.runners``): the
function, or the same code as a Fargate task (``ecs:runTask.sync``; the task reports with its
task token like the restore task). Check publishes how much of the runner's limit the backup
used, for the alarm that fires before a growing database hits it.

Every failure after validation takes the same path: explain (one-line cause), publish the
``BackupFailed`` metric, notify the alert topic, release the lock, end in ``BackupFailed``.
Invalid input ends in ``InputRejected`` with the validation sentence as its cause.

Only one backup of a database runs at a time: ``AcquireLock`` is a conditional DynamoDB put
keyed by database name that holds the execution id and an expiry (so a stopped execution cannot
wedge the database forever); ``ReleaseLock`` deletes it only if this execution still holds it.
Lambda service errors are retried with backoff. Backstop's own errors (``ConfigError``,
``SourceError``, ``DumpError``, ...) are not: the library marks none of them transient, and a
wrong password or a missing table fails the same way on the second try.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.container_runner import ContainerRunner
from infra.functions import METRICS_NAMESPACE, log_retention

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"]
CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"
LAMBDA_ERROR_PREFIX = '{"errorMessage"'  # how the Python runtime serialises an exception


class BackupWorkflow(Construct):
    """The backup state machine and its per-database lock table."""

    def __init__(self, scope: Construct, id_: str, *, validate_fn: lambda_.IFunction,
                 backup_fn: lambda_.IFunction, check_fn: lambda_.IFunction, topic: sns.ITopic,
                 topic_key: kms.IKey, runner: ContainerRunner,
                 backup_timeout: cdk.Duration, container_timeout: cdk.Duration,
                 execution_timeout: cdk.Duration, log_retention_days: int) -> None:
        super().__init__(scope, id_)
        self.locks = dynamodb.Table(
            self, "Locks", partition_key=dynamodb.Attribute(
                name="database", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST, time_to_live_attribute="expiresAt",
            removal_policy=cdk.RemovalPolicy.DESTROY)
        execution_id = sfn.JsonPath.string_at("$$.Execution.Id")
        database = sfn.JsonPath.string_at("$.request.database")

        # ---- failure path (built first: every task below catches into it)
        failed = sfn.Fail(self, "BackupFailed", error_path="$.failure.Error",
                          cause_path="$.failure.Cause")
        release_after_failure = self._release("ReleaseLockAfterFailure", database, execution_id)
        release_after_failure.add_catch(failed, errors=["States.ALL"],
                                        result_path=sfn.JsonPath.DISCARD)
        release_after_failure.next(failed)
        notify_failure = tasks.SnsPublish(
            self, "NotifyFailure", topic=topic, subject="Backstop: a backup failed",
            message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                "Backup of {} ({}) failed. {}: {}", database,
                sfn.JsonPath.string_at("$.request.retention"),
                sfn.JsonPath.string_at("$.failure.Error"),
                sfn.JsonPath.string_at("$.failure.Cause"))),
            result_path=sfn.JsonPath.DISCARD)
        notify_failure.add_catch(release_after_failure, errors=["States.ALL"],
                                 result_path=sfn.JsonPath.DISCARD)
        notify_failure.next(release_after_failure)
        failure_metric = self._metric("PublishFailureMetric", "BackupFailed", database)
        failure_metric.add_catch(notify_failure, errors=["States.ALL"],
                                 result_path=sfn.JsonPath.DISCARD)
        failure_metric.next(notify_failure)
        explain_failure = explain(self, "Failure", failure_metric)

        already_running = sfn.Pass(
            self, "AlreadyRunning", result_path="$.failure", parameters={
                "Error": "BackupAlreadyRunning",
                "Cause": sfn.JsonPath.format(
                    "A backup of {} is already running; start this one when it has finished.",
                    database)}).next(failure_metric)

        rejected = sfn.Fail(self, "InputRejected", error_path="$.failure.Error",
                            cause_path="$.failure.Cause")

        # ---- main path
        validate = tasks.LambdaInvoke(
            self, "Validate", lambda_function=validate_fn, retry_on_service_exceptions=False,
            payload=sfn.TaskInput.from_object({
                "request": sfn.JsonPath.object_at("$"), "executionId": execution_id}),
            output_path="$.Payload")
        retry_lambda_service(validate)
        validate.add_catch(explain(self, "InputError", rejected), errors=["States.ALL"],
                           result_path="$.error")

        acquire = tasks.DynamoPutItem(
            self, "AcquireLock", table=self.locks,
            item={"database": tasks.DynamoAttributeValue.from_string(database),
                  "holder": tasks.DynamoAttributeValue.from_string(execution_id),
                  "expiresAt": tasks.DynamoAttributeValue.number_from_string(
                      sfn.JsonPath.string_at("$.lock.expiresAt"))},
            condition_expression="attribute_not_exists(#db) OR expiresAt < :now",
            expression_attribute_names={"#db": "database"},
            expression_attribute_values={":now": tasks.DynamoAttributeValue.number_from_string(
                sfn.JsonPath.string_at("$.lock.now"))},
            result_path=sfn.JsonPath.DISCARD)
        acquire.add_catch(already_running, errors=[CONDITION_FAILED], result_path="$.error")
        acquire.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")

        backup = tasks.LambdaInvoke(
            self, "Backup", lambda_function=backup_fn, retry_on_service_exceptions=False,
            payload=sfn.TaskInput.from_json_path_at("$.request"),
            result_selector={"manifest": sfn.JsonPath.object_at("$.Payload")},
            result_path="$.backup",
            # The function's own timeout fires first; this only guards a lost invocation.
            task_timeout=sfn.Timeout.duration(backup_timeout.plus(cdk.Duration.minutes(1))))
        retry_lambda_service(backup)
        backup.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")

        check = tasks.LambdaInvoke(
            self, "Check", lambda_function=check_fn, retry_on_service_exceptions=False,
            payload=sfn.TaskInput.from_object({
                "manifest": sfn.JsonPath.object_at("$.backup.manifest"),
                "runner": sfn.JsonPath.object_at("$.runner")}),
            result_selector={"verdict": sfn.JsonPath.object_at("$.Payload")},
            result_path="$.check")
        retry_lambda_service(check)
        check.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")

        done = sfn.Succeed(self, "Done")
        summarize = sfn.Pass(self, "Summarize", parameters={
            "backup": sfn.JsonPath.object_at("$.backup.manifest"),
            "check": sfn.JsonPath.object_at("$.check.verdict")}).next(done)
        release = self._release("ReleaseLock", database, execution_id)
        # The backup is done either way; an expired lock someone else took is theirs now.
        release.add_catch(summarize, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        release.next(summarize)

        collapsed_metric = self._metric("PublishCollapsedMetric", "BackupCollapsed", database)
        notify_collapsed = tasks.SnsPublish(
            self, "NotifyCollapsed", topic=topic, subject="Backstop: a backup collapsed",
            message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                "Backup {} of {} is {} bytes, less than {} of the previous backup ({} bytes). "
                "Check the database before trusting this backup.",
                sfn.JsonPath.string_at("$.backup.manifest.id"), database,
                sfn.JsonPath.json_to_string(sfn.JsonPath.number_at("$.check.verdict.size")),
                sfn.JsonPath.json_to_string(sfn.JsonPath.number_at(
                    "$.check.verdict.collapsed_fraction")),
                sfn.JsonPath.json_to_string(sfn.JsonPath.number_at(
                    "$.check.verdict.previous_size")))),
            result_path=sfn.JsonPath.DISCARD)
        for step in (collapsed_metric, notify_collapsed):
            step.add_catch(release, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        collapsed_metric.next(notify_collapsed).next(release)
        verdict = (sfn.Choice(self, "Collapsed?")
                   .when(sfn.Condition.boolean_equals("$.check.verdict.collapsed", True),
                         collapsed_metric)
                   .otherwise(release))

        # ---- the same backup as a Fargate task
        backup_task = runner.run_task(self, "BackupTask", input_path="$.task",
                                      result_path="$.taskResult", timeout=container_timeout)
        backup_task.add_catch(explain_failure, errors=["States.ALL"], result_path="$.error")
        task_input = sfn.Pass(self, "BackupTaskInput", result_path="$.task", parameters={
            "job": "backup", "request": sfn.JsonPath.object_at("$.request")})
        from_task = sfn.Pass(self, "TaskManifest", result_path="$.backup", parameters={
            "manifest": sfn.JsonPath.object_at("$.taskResult")})
        not_reported = sfn.Pass(self, "BackupNotReported", result_path="$.failure", parameters={
            "Error": "BackupNotReported",
            "Cause": "The backup task stopped without reporting an outcome; its log in the "
                     "backup task's log group says why."}).next(failure_metric)
        task_input.next(backup_task).next(
            sfn.Choice(self, "ReportedBackupTask?")
            .when(sfn.Condition.is_present("$.taskResult.manifest_key"), from_task.next(check))
            .otherwise(not_reported))
        run_where = (sfn.Choice(self, "RunWhere?")
                     .when(sfn.Condition.string_equals("$.runner.runner", "container"),
                           task_input)
                     .otherwise(backup))

        backup.next(check)
        definition = validate.next(acquire).next(run_where)
        check.next(verdict)
        log_group = logs.LogGroup(self, "Logs", retention=log_retention(log_retention_days),
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine", comment="Backstop: back up one PostgreSQL database",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=execution_timeout, tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=True))
        # Publishing to an encrypted topic needs the topic key too.
        topic_key.grant(self.state_machine, "kms:GenerateDataKey", "kms:Decrypt")

    def _release(self, id_: str, database: str, holder: str) -> tasks.DynamoDeleteItem:
        """Delete the database's lock, only if this execution still holds it."""
        return tasks.DynamoDeleteItem(
            self, id_, table=self.locks,
            key={"database": tasks.DynamoAttributeValue.from_string(database)},
            condition_expression="holder = :me",
            expression_attribute_values={":me": tasks.DynamoAttributeValue.from_string(holder)},
            result_path=sfn.JsonPath.DISCARD)

    def _metric(self, id_: str, metric_name: str, database: str) -> tasks.CallAwsService:
        return tasks.CallAwsService(
            self, id_, service="cloudwatch", action="putMetricData",
            iam_resources=["*"], iam_action="cloudwatch:PutMetricData",
            parameters={"Namespace": METRICS_NAMESPACE, "MetricData": [{
                "MetricName": metric_name, "Value": 1, "Unit": "Count",
                "Dimensions": [{"Name": "Database", "Value": database}]}]},
            result_path=sfn.JsonPath.DISCARD)


def explain(scope: Construct, id_: str, next_: sfn.IChainable) -> sfn.Choice:
    """Turn the caught ``$.error`` into ``$.failure`` with a one-line cause.

    A Lambda function's error arrives as the runtime's JSON (message, type, stack trace);
    the person reading the execution wants the message. Service errors, and errors a task
    reported with SendTaskFailure, are already text. Step Functions' own errors
    (``States.Timeout``, ``States.TaskFailed``, ...) keep their name in the cause: a Fail
    state may not raise a ``States.`` error name itself.
    """
    parse = sfn.Pass(scope, f"Read{id_}", result_path="$.error", parameters={
        "Error": sfn.JsonPath.string_at("$.error.Error"),
        "Cause": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.error.Cause"))})
    from_lambda = sfn.Pass(scope, f"Explain{id_}", result_path="$.failure", parameters={
        "Error": sfn.JsonPath.string_at("$.error.Error"),
        "Cause": sfn.JsonPath.string_at("$.error.Cause.errorMessage")})
    as_is = sfn.Pass(scope, f"Pass{id_}", result_path="$.failure", parameters={
        "Error": sfn.JsonPath.string_at("$.error.Error"),
        "Cause": sfn.JsonPath.string_at("$.error.Cause")})
    from_states = sfn.Pass(scope, f"Rename{id_}", result_path="$.failure", parameters={
        "Error": "WorkflowError",
        "Cause": sfn.JsonPath.format("{}: {}", sfn.JsonPath.string_at("$.error.Error"),
                                     sfn.JsonPath.string_at("$.error.Cause"))})
    parse.next(from_lambda).next(next_)
    as_is.next(next_)
    from_states.next(next_)
    return (sfn.Choice(scope, f"Is{id_}FromLambda?")
            .when(sfn.Condition.string_matches("$.error.Cause", LAMBDA_ERROR_PREFIX + "*"),
                  parse)
            .when(sfn.Condition.string_matches("$.error.Error", "States.*"), from_states)
            .otherwise(as_is))


def retry_lambda_service(task: sfn.TaskStateBase) -> None:
    """Retry what Lambda itself fails with, never a Backstop error (none is transient)."""
    task.add_retry(errors=LAMBDA_SERVICE_ERRORS, interval=cdk.Duration.seconds(2),
                   max_attempts=4, backoff_rate=2, jitter_strategy=sfn.JitterType.FULL)
