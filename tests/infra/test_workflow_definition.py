"""The backup state machine's shape: every task retried and caught, every path ends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import resources
from tests.support.moto_sfn import resolve

LAMBDA_SERVICE_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException",
                         "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
                         "Lambda.ClientExecutionTimeoutException"}


def backup_machine(template: dict[str, Any]) -> dict[str, Any]:
    (machine,) = [m for lid, m in resources(template, "AWS::StepFunctions::StateMachine").items()
                  if lid.startswith("BackupWorkflow")]
    return machine


@pytest.fixture(scope="module")
def states(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    machine = backup_machine(template)
    refs = {k: k for k in template["Resources"]} | {
        "AWS::Partition": "aws", "AWS::Region": "r", "AWS::AccountId": "1"}
    getatts = {(k, a): k for k in template["Resources"] for a in ("Arn", "GroupId")}
    definition = json.loads(resolve(machine["Properties"]["DefinitionString"], refs, getatts))
    result: dict[str, dict[str, Any]] = definition["States"]
    return result


def test_machine_is_standard_logged_traced_and_bounded(template: dict[str, Any]) -> None:
    machine = backup_machine(template)
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}
    definition = resolve(props["DefinitionString"], {k: k for k in template["Resources"]} | {
        "AWS::Partition": "aws", "AWS::Region": "r", "AWS::AccountId": "1"},
        {(k, a): k for k in template["Resources"] for a in ("Arn", "GroupId")})
    # the Fargate task's limit (backup_container.timeout_hours) and the margin
    assert json.loads(definition)["TimeoutSeconds"] == 3 * 3600 + 30 * 60


def test_every_task_catches_and_lambda_tasks_retry_service_errors_only(
        states: dict[str, dict[str, Any]]) -> None:
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert {"Validate", "AcquireLock", "Backup", "Check", "ReleaseLock"} <= set(tasks)
    for name, task in tasks.items():
        assert task.get("Catch"), f"{name} has no Catch"
        if task["Resource"].endswith(":lambda:invoke"):
            (retry,) = task["Retry"]
            assert set(retry["ErrorEquals"]) == LAMBDA_SERVICE_ERRORS, name
            assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] == 4
        else:
            assert "Retry" not in task or all(
                not e.startswith(("ConfigError", "SourceError", "DumpError"))
                for r in task["Retry"] for e in r["ErrorEquals"])


def test_backup_task_timeout_covers_the_function_timeout(states: dict[str, dict[str, Any]]
                                                         ) -> None:
    assert states["Backup"]["TimeoutSeconds"] == 900 + 60


def test_every_path_ends_in_succeed_or_fail(states: dict[str, dict[str, Any]]) -> None:
    ends = {name for name, s in states.items() if s["Type"] in ("Succeed", "Fail")}
    assert ends == {"Done", "BackupFailed", "InputRejected"}
    for name, state in states.items():
        if state["Type"] in ("Succeed", "Fail"):
            continue
        targets = [state.get("Next")] + [c["Next"] for c in state.get("Catch", [])] + [
            c["Next"] for c in state.get("Choices", [])] + [state.get("Default")]
        targets = [t for t in targets if t]
        assert targets and all(t in states for t in targets), name
        assert not state.get("End"), f"{name} ends without Succeed or Fail"


def test_failures_publish_a_metric_and_notify_before_failing(
        states: dict[str, dict[str, Any]]) -> None:
    metric = states["PublishFailureMetric"]
    assert metric["Resource"].endswith(":aws-sdk:cloudwatch:putMetricData")
    assert metric["Parameters"]["MetricData"][0]["MetricName"] == "BackupFailed"
    assert metric["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Resource"].endswith(":sns:publish")
    assert states["NotifyFailure"]["Next"] == "ReleaseLockAfterFailure"
    assert states["ReleaseLockAfterFailure"]["Next"] == "BackupFailed"
    assert states["BackupFailed"] == {"Type": "Fail", "ErrorPath": "$.failure.Error",
                                      "CausePath": "$.failure.Cause"}


def test_lock_is_conditional_on_the_database_and_released_only_by_its_holder(
        states: dict[str, dict[str, Any]]) -> None:
    acquire = states["AcquireLock"]
    assert acquire["Resource"].endswith(":dynamodb:putItem")
    assert acquire["Parameters"]["ConditionExpression"] == (
        "attribute_not_exists(#db) OR expiresAt < :now")
    assert acquire["Catch"][0]["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
    for name in ("ReleaseLock", "ReleaseLockAfterFailure"):
        assert states[name]["Parameters"]["ConditionExpression"] == "holder = :me"
        assert states[name]["Parameters"]["ExpressionAttributeValues"] == {
            ":me": {"S.$": "$$.Execution.Id"}}


def test_no_secret_reaches_the_definition(template: dict[str, Any]) -> None:
    machine = backup_machine(template)
    text = json.dumps(machine).lower()
    assert "password" not in text and "secretsmanager" not in text
