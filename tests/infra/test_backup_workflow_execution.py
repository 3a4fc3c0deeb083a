"""The synthesized backup state machine, executed by moto with the real handlers in-process,
against a real PostgreSQL, with S3, Secrets Manager, SSM, DynamoDB, SNS and CloudWatch in moto.
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.support import moto_sfn

NAMESPACE = "Backstop"
DB = "quotepro"
SECRET_NAME = "backstop/quotepro"


@pytest.fixture
def deployed(aws: Any, template: dict[str, Any], pg: Any) -> moto_sfn.Deployment:
    """The workflow deployed into moto, with the database secret pointing at a fresh copy of
    the sample database."""
    connection = pg.database()
    boto3.client("secretsmanager", region_name=moto_sfn.REGION).create_secret(
        Name=SECRET_NAME, SecretString=json.dumps({
            "host": connection.host, "port": connection.port, "username": connection.user,
            "password": connection.password, "dbname": connection.dbname,
            "sslmode": "disable"}))
    deployment = moto_sfn.deploy(template)
    deployment.refs["_password"] = connection.password or ""
    deployment.refs["_dbname"] = connection.dbname
    return deployment


def _objects(deployment: moto_sfn.Deployment) -> list[str]:
    listing = boto3.client("s3", region_name=moto_sfn.REGION).list_objects_v2(
        Bucket=deployment.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def _sent_messages() -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    backend = sns_backends[DEFAULT_ACCOUNT_ID][moto_sfn.REGION]
    return [n[1] for topic in backend.topics.values() for n in topic.sent_notifications]


def test_scheduled_backup_succeeds_and_leaves_a_done_backup(deployed: moto_sfn.Deployment,
                                                             aws: Any) -> None:
    # Given the daily schedule's input, when the workflow runs
    execution = moto_sfn.run(deployed.state_machine_arn, {
        "database": DB, "retention": "daily", "reason": "scheduled daily backup",
        "scope": {"mode": "full", "tables": [], "exclude_tables": []}})

    # Then it succeeds through every step, and a dump plus its manifest are in S3
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.path == ["Validate", "AcquireLock", "RunWhere?", "Backup", "Check",
                              "Collapsed?", "ReleaseLock", "Summarize", "Done"]
    backup = execution.output["backup"]
    assert backup["status"] == "DONE" and backup["size"] > 0
    keys = _objects(deployed)
    assert [k for k in keys if k.endswith(".dump.zst.gpg")] == [f"backstop/{backup['key']}"]
    assert "backstop/index/quotepro.json" in keys  # the RPO check reads this, not manifests
    assert f"backstop/{backup['manifest_key']}" in keys
    assert keys[0].startswith("backstop/daily/quotepro/")
    # the database's configured health checks were recorded in the dump's snapshot
    manifest = json.loads(boto3.client("s3", region_name=moto_sfn.REGION).get_object(
        Bucket=deployed.bucket, Key=f"backstop/{backup['manifest_key']}")["Body"].read())
    assert set(manifest["health"]) == {"record_counts", "newest_quote"}
    assert manifest["health"]["newest_quote"]["value"]
    assert execution.output["check"]["collapsed"] is False
    # the lock was released
    table = boto3.client("dynamodb", region_name=moto_sfn.REGION)
    assert table.scan(TableName=deployed.table)["Items"] == []
    # no secret anywhere in the execution history
    history = json.dumps(execution.events, default=str)
    assert deployed.refs["_password"] not in history
    assert aws.called() == ["FunctionsValidateCFCD81C0", "FunctionsBackupD4A858FE",
                            "FunctionsCheck48F38BA9"]


def test_invalid_input_is_rejected_with_one_sentence(deployed: moto_sfn.Deployment,
                                                     aws: Any) -> None:
    execution = moto_sfn.run(deployed.state_machine_arn,
                             {"database": DB, "retention": "yearly", "reason": "x"})

    assert execution.status == "FAILED"
    assert execution.error == "ConfigError"
    assert execution.cause.startswith("retention 'yearly' is not one of daily, weekly")
    assert "\n" not in execution.cause and "Traceback" not in execution.cause
    assert execution.path[-1] == "InputRejected"
    assert aws.called() == ["FunctionsValidateCFCD81C0"]  # nothing else ran
    assert _objects(deployed) == []


def test_unknown_database_is_rejected(deployed: moto_sfn.Deployment, aws: Any) -> None:
    execution = moto_sfn.run(deployed.state_machine_arn, {"database": "billing"})

    assert execution.status == "FAILED" and execution.error == "ConfigError"
    assert execution.cause == ("database 'billing' is not configured for this stack; "
                               "use one of quotepro")


def test_failing_dump_fails_with_a_readable_cause_metric_and_notification(
        deployed: moto_sfn.Deployment, aws: Any) -> None:
    # Given a table scope naming a table that does not exist, the dump fails
    execution = moto_sfn.run(deployed.state_machine_arn, {
        "database": DB, "retention": "manual", "reason": "table-only",
        "scope": {"tables": ["no_such_table"]}})

    assert execution.status == "FAILED"
    assert execution.error in {"SourceError", "ConfigError", "DumpError"}
    assert "no_such_table" in execution.cause
    assert "\n" not in execution.cause and "errorMessage" not in execution.cause
    assert execution.path[-4:] == ["PublishFailureMetric", "NotifyFailure",
                                   "ReleaseLockAfterFailure", "BackupFailed"]
    assert moto_sfn.metric_sum(NAMESPACE, "BackupFailed", {"Database": DB}) == 1
    (message,) = _sent_messages()
    assert message.startswith(f"Backup of {DB} (manual) failed. {execution.error}: ")
    assert deployed.refs["_password"] not in message
    assert boto3.client("dynamodb", region_name=moto_sfn.REGION).scan(
        TableName=deployed.table)["Items"] == []
    assert not [k for k in _objects(deployed) if k.endswith(".dump.zst.gpg")]


def test_second_backup_of_the_same_database_waits_its_turn(deployed: moto_sfn.Deployment,
                                                           aws: Any) -> None:
    # Given another execution holds the database's lock (and it has not expired)
    boto3.client("dynamodb", region_name=moto_sfn.REGION).put_item(
        TableName=deployed.table, Item={"database": {"S": DB}, "holder": {"S": "other"},
                                        "expiresAt": {"N": "99999999999"}})

    execution = moto_sfn.run(deployed.state_machine_arn, {"database": DB})

    assert execution.status == "FAILED" and execution.error == "BackupAlreadyRunning"
    assert execution.cause == (f"A backup of {DB} is already running; start this one when it "
                               "has finished.")
    assert "Backup" not in execution.path
    # the other execution's lock is untouched
    item = boto3.client("dynamodb", region_name=moto_sfn.REGION).get_item(
        TableName=deployed.table, Key={"database": {"S": DB}})["Item"]
    assert item["holder"] == {"S": "other"}


def test_expired_lock_does_not_block(deployed: moto_sfn.Deployment, aws: Any) -> None:
    boto3.client("dynamodb", region_name=moto_sfn.REGION).put_item(
        TableName=deployed.table, Item={"database": {"S": DB}, "holder": {"S": "stopped"},
                                        "expiresAt": {"N": "1"}})

    execution = moto_sfn.run(deployed.state_machine_arn,
                             {"database": DB, "scope": {"mode": "schema-only"}})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["backup"]["scope"]["mode"] == "schema-only"


def test_collapsed_backup_publishes_the_alarm_metric_and_notifies(
        deployed: moto_sfn.Deployment, aws: Any, pg: Any) -> None:
    # Given a full backup of the sample
    first = moto_sfn.run(deployed.state_machine_arn, {"database": DB, "retention": "daily"})
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    # When most of the data disappears and the next backup runs
    connection = pg.connection(deployed.refs["_dbname"])
    pg.sql(connection, "TRUNCATE line_items, quotes, document_embeddings, pricing_items, "
                       "companies CASCADE")
    second = moto_sfn.run(deployed.state_machine_arn, {"database": DB, "retention": "daily"})

    # Then the backup is kept but flagged: metric for the alarm, and a notification
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    verdict = second.output["check"]
    assert verdict["collapsed"] is True and verdict["previous_id"] == first.output["backup"]["id"]
    assert "PublishCollapsedMetric" in second.path and "NotifyCollapsed" in second.path
    assert moto_sfn.metric_sum(NAMESPACE, "BackupCollapsed", {"Database": DB}) == 1
    (message,) = _sent_messages()
    assert f"of {DB} is {verdict['size']} bytes, less than 0.5 of the previous" in message


def test_check_publishes_success_metrics_as_emf(deployed: moto_sfn.Deployment, aws: Any,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the handler's module loaded where the function's environment was not set (as
    # another test, or a tool reading the code, may load it first)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    importlib.reload(importlib.import_module("handlers.check"))

    execution = moto_sfn.run(deployed.state_machine_arn, {"database": DB})
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)

    (record,) = moto_sfn.emf_metrics(capsys.readouterr().out)
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    assert record["Database"] == DB
    assert record["BackupSucceeded"] == [1.0] or record["BackupSucceeded"] == 1.0
    assert record["BackupSizeBytes"] in (execution.output["backup"]["size"],
                                         [execution.output["backup"]["size"]])


def test_lambda_service_errors_are_retried_but_backstop_errors_are_not(
        deployed: moto_sfn.Deployment, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slept = moto_sfn.install_fast_retries(monkeypatch)
    attempts: list[int] = []

    def throttled_then_broken(event: Any, context: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise moto_sfn.LambdaServiceFault("TooManyRequestsException", status=429)
        from backstop.errors import SourceError
        raise SourceError("database quotepro is unreachable")

    aws.overrides["FunctionsBackupD4A858FE"] = throttled_then_broken
    execution = moto_sfn.run(deployed.state_machine_arn, {"database": DB})

    failed = [e["taskFailedEventDetails"]["error"] for e in execution.events
              if e["type"] == "TaskFailed"]
    assert failed == ["Lambda.TooManyRequestsException", "SourceError"]
    assert len(slept) == 1  # one retry, for the service error only
    assert execution.status == "FAILED" and execution.error == "SourceError"
    assert execution.cause == "database quotepro is unreachable"


def test_exhausted_service_retries_fail_with_the_service_cause(
        deployed: moto_sfn.Deployment, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slept = moto_sfn.install_fast_retries(monkeypatch)

    def always_down(event: Any, context: Any) -> Any:
        raise moto_sfn.LambdaServiceFault("ServiceException")

    aws.overrides["FunctionsCheck48F38BA9"] = always_down
    execution = moto_sfn.run(deployed.state_machine_arn, {"database": DB})

    assert len(slept) == 4  # MaxAttempts counts retries: five attempts in all
    assert execution.status == "FAILED" and execution.error == "Lambda.ServiceException"
    assert execution.cause  # the service's own text, passed through unparsed
    assert "PassFailure" in execution.path and "ReadFailure" not in execution.path
    assert moto_sfn.metric_sum(NAMESPACE, "BackupFailed", {"Database": DB}) == 1


BACKUP_FN, VALIDATE_FN = "FunctionsBackupD4A858FE", "FunctionsValidateCFCD81C0"


def _index(deployment: moto_sfn.Deployment) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(boto3.client("s3", region_name=moto_sfn.REGION).get_object(
        Bucket=deployment.bucket, Key="backstop/index/quotepro.json")["Body"].read())
    return doc


def test_a_backup_at_its_deadline_records_failed_and_the_next_one_runs_on_fargate(
        deployed: moto_sfn.Deployment, aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a backup function with no time left beyond its safety margin (a database that
    # outgrew it): the dump is stopped, not killed with the function
    from handlers.backup import DEADLINE_MARGIN_SECONDS

    aws.remaining_ms[BACKUP_FN] = DEADLINE_MARGIN_SECONDS * 1000
    first = moto_sfn.run(deployed.state_machine_arn, {"database": DB, "retention": "daily"})

    assert first.status == "FAILED" and first.error == "DumpError"
    assert "stopped at its runner's time limit" in first.cause
    # the FAILED manifest says why; nothing half-written looks like a backup
    keys = _objects(deployed)
    assert not [k for k in keys if k.endswith(".dump.zst.gpg")]
    (failed_key,) = [k for k in keys if k.endswith(".manifest.json")]
    failed = json.loads(boto3.client("s3", region_name=moto_sfn.REGION).get_object(
        Bucket=deployed.bucket, Key=failed_key)["Body"].read())
    assert failed["status"] == "FAILED" and "time limit" in failed["error"]
    entry = _index(deployed)["backups"][0]
    assert entry["stopped_at_deadline"] is True and entry["runner"] == "lambda"

    # When the schedule runs again, the history sends it to the Fargate task, same workflow
    del aws.remaining_ms[BACKUP_FN]
    capsys.readouterr()
    second = moto_sfn.run(deployed.state_machine_arn, {"database": DB, "retention": "daily"})

    assert second.status == "SUCCEEDED", (second.error, second.cause)
    assert second.path[:7] == ["Validate", "AcquireLock", "RunWhere?", "BackupTaskInput",
                               "BackupTask", "ReportedBackupTask?", "TaskManifest"]
    assert "Backup" not in second.path
    assert second.output["backup"]["status"] == "DONE"
    (container,) = [env for name, env in aws.calls if name == "container:Backup"]
    assert json.loads(container["BACKSTOP_TASK_INPUT"]) == {
        "job": "backup", "request": {"database": DB, "retention": "daily",
                                     "reason": "daily backup", "scope": {
                                         "mode": "full", "tables": [], "exclude_tables": []}}}
    # the task's own deadline counts from when the state started it, image pull included
    entered = datetime.fromisoformat(container["BACKSTOP_TASK_STARTED"])
    assert timedelta(0) <= datetime.now(UTC) - entered < timedelta(minutes=5)
    started = [e for e in second.events if e["type"] == "TaskScheduled"
               and "ecs" in e["taskScheduledEventDetails"]["resourceType"]]
    parameters = json.loads(started[0]["taskScheduledEventDetails"]["parameters"])
    assert parameters["LaunchType"] == "FARGATE"
    assert "Backup" in parameters["TaskDefinition"]
    assert [e["runner"] for e in _index(deployed)["backups"]] == ["container", "lambda"]
    # the check measured it against the task's limit (hours), not the function's
    (record,) = moto_sfn.emf_metrics(capsys.readouterr().out)
    usage = record["BackupRunnerUsagePercent"]
    assert 0 < (usage[0] if isinstance(usage, list) else usage) < 1
    assert deployed.refs["_password"] not in json.dumps(second.events, default=str)


def test_a_history_of_large_slow_backups_chooses_the_task_with_its_reason(
        deployed: moto_sfn.Deployment, aws: Any) -> None:
    # Given a database whose recent backups were 30 GB at 40 MB/s (750 s of a 900 s function)
    from backstop import index
    from backstop.store import open_store

    store = open_store(f"s3://{deployed.bucket}/backstop",
                       s3_client=boto3.client("s3", region_name=moto_sfn.REGION))
    for day in (1, 2):
        index.update(store, DB, lambda doc, day=day: doc["backups"].insert(0, {
            "id": f"2026010{day}T020000Z-aaaaaa", "status": "DONE", "size": 10**10,
            "plain_size": 30 * 10**9, "seconds": 750, "runner": "lambda", "scope": {},
            "started_at": f"2026-01-0{day}T02:00:00+00:00"}))

    execution = moto_sfn.run(deployed.state_machine_arn, {"database": DB})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "BackupTask" in execution.path
    validated = next(json.loads(e["taskSucceededEventDetails"]["output"])
                     for e in execution.events if e["type"] == "TaskSucceeded")
    runner = validated["Payload"]["runner"]
    assert runner["runner"] == "container" and runner["limit_seconds"] == 3 * 3600
    assert "30.00 GB at the function's 40.0 MB/s needs 750 s, over 600 s" in runner["reason"]
