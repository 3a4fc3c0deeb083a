"""What ``moto_sfn`` relies on in moto's internals. A moto upgrade that changes any of it
fails here, by name, instead of as a puzzling workflow test failure."""

from __future__ import annotations

import inspect
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws

from tests.support import moto_sfn

REGION = moto_sfn.REGION


@pytest.fixture
def account() -> Iterator[None]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                          "lambda": {"use_docker": False}}):
        yield
        moto_sfn.stop_all_and_join()


def _function(name: str = "echo", environment: dict[str, str] | None = None) -> str:
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.py", "")
    return boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="tests.support.x.h",
        Code={"ZipFile": buffer.getvalue()},
        Environment={"Variables": environment or {}})["FunctionArn"]


def test_moto_is_the_version_the_seams_were_written_for() -> None:
    assert moto.__version__ == "5.2.5"


def test_lambda_invoke_seam_signature_is_unchanged() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    assert list(inspect.signature(LambdaSimpleBackend.invoke).parameters) == [
        "self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_stock_docker_free_lambda_only_echoes(account: None) -> None:
    # If moto ever runs handlers itself, the in-process seam may be unnecessary or in the way.
    _function()
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName="echo", Payload=json.dumps({"hello": "world"}))
    assert json.loads(response["Payload"].read()) == {"hello": "world"}
    assert "FunctionError" not in response


def test_function_environment_is_where_the_seam_reads_it(account: None) -> None:
    from moto.awslambda_simple.models import lambda_simple_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    _function(environment={"BACKUP_LOCATION": "s3://b/p"})
    fn = lambda_simple_backends[DEFAULT_ACCOUNT_ID][REGION].get_function("echo", None)
    assert fn.environment_vars == {"BACKUP_LOCATION": "s3://b/p"}
    assert fn.handler == "tests.support.x.h"


def test_seam_reports_a_raised_error_by_class_name(account: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls = moto_sfn.install_inprocess_lambda(monkeypatch)

    class SourceError(Exception):
        pass

    def broken(event: Any, context: Any) -> Any:
        raise SourceError("database unreachable")

    calls.overrides["echo"] = broken
    arn = _function()
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="m", roleArn="arn:aws:iam::123456789012:role/r", definition=json.dumps({
            "StartAt": "T", "States": {"T": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"}, "End": True}}}))
    execution = moto_sfn.run(machine["stateMachineArn"], {"x": 1}, timeout=10)
    assert (execution.status, execution.error) == ("FAILED", "SourceError")
    assert json.loads(execution.cause)["errorMessage"] == "database unreachable"


def test_seam_tells_a_handler_how_much_time_its_function_has_left(
        account: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = moto_sfn.install_inprocess_lambda(monkeypatch)
    seen: list[int] = []
    calls.overrides["echo"] = lambda event, context: seen.append(
        context.get_remaining_time_in_millis())
    calls.remaining_ms["echo"] = 61_000
    _function()
    client = boto3.client("lambda", region_name=REGION)
    client.invoke(FunctionName="echo", Payload=b"{}")
    del calls.remaining_ms["echo"]
    client.invoke(FunctionName="echo", Payload=b"{}")
    assert seen == [61_000, 900_000]


def test_calls_a_handler_makes_are_recorded_by_who_made_them(
        account: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = moto_sfn.install_inprocess_lambda(monkeypatch)
    made = moto_sfn.install_call_recorder(monkeypatch)
    s3 = boto3.client("s3", region_name=REGION)
    calls.overrides["echo"] = lambda event, context: s3.list_buckets() and None
    _function()
    s3.list_buckets()  # the test itself: nobody's role
    boto3.client("lambda", region_name=REGION).invoke(FunctionName="echo", Payload=b"{}")
    assert made == [("echo", "s3:ListBuckets")]
    # recorded at botocore's one entry for every API call, paginators included
    import botocore.client

    assert "_make_api_call" in vars(botocore.client.BaseClient)


def test_a_nested_execution_reports_its_output_as_aws_does(
        account: None, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_sfn.install_service_fidelity(monkeypatch)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = "arn:aws:iam::123456789012:role/r"
    child = sfn.create_state_machine(name="child", roleArn=role, definition=json.dumps({
        "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
            "got.$": "$.item"}, "End": True}}}))["stateMachineArn"]
    parent = sfn.create_state_machine(name="parent", roleArn=role, definition=json.dumps({
        "StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child, "Input.$": "$"},
            "ResultSelector": {"got.$": "$.Output.got", "status.$": "$.Status"},
            "End": True}}}))["stateMachineArn"]
    execution = moto_sfn.run(parent, {"item": "quotepro"}, timeout=20)
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {"got": "quotepro", "status": "SUCCEEDED"}


def test_a_filter_that_matches_nothing_is_an_empty_list(account: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    moto_sfn.install_service_fidelity(monkeypatch)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="f", roleArn="arn:aws:iam::123456789012:role/r", definition=json.dumps({
            "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
                "failed.$": "$.results[?(@.ok == false)].database"}, "End": True}}}))
    execution = moto_sfn.run(machine["stateMachineArn"],
                             {"results": [{"database": "a", "ok": True}]}, timeout=10)
    assert execution.output == {"failed": []}


def test_retry_sleeps_through_the_module_attribute_the_time_seam_replaces() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    assert "time.sleep(" in inspect.getsource(retrier_decl)


def test_interpreter_threads_are_tracked_where_teardown_joins_them() -> None:
    from moto.stepfunctions.parser.utils import TMP_THREADS

    assert isinstance(TMP_THREADS, list)


def test_unnamed_executions_collide_which_is_why_run_names_them(account: None) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name="p", roleArn="arn:aws:iam::123456789012:role/r",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                              "End": True}}}))["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert first.endswith(":None")


# --------------------------------------------------------------------------- restore seams
def _machine(name: str, state: dict[str, Any]) -> str:
    return str(boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=name, roleArn="arn:aws:iam::123456789012:role/r",
        definition=json.dumps({"StartAt": "T", "States": {"T": {**state, "End": True}}}))[
        "stateMachineArn"])


DESCRIBE_MISSING = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:rds:describeDBInstances",
                    "Parameters": {"DbInstanceIdentifier": "backstop-scratch-missing"}}


def test_stock_aws_sdk_tasks_pass_step_functions_casing_to_botocore(account: None) -> None:
    # What install_service_fidelity fixes: without it, AWS's parameter names fail.
    execution = moto_sfn.run(_machine("raw", DESCRIBE_MISSING), {}, timeout=10)
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert "DbInstanceIdentifier" in str(execution.cause)


def test_fidelity_seam_gives_aws_casing_and_aws_error_names(
        account: None, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_sfn.install_service_fidelity(monkeypatch)
    execution = moto_sfn.run(_machine("fixed", DESCRIBE_MISSING), {}, timeout=10)
    assert (execution.status, execution.error) == ("FAILED", "Rds.DbInstanceNotFoundException")


def test_stock_jsonpath_wraps_a_field_below_an_index_in_a_list(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    data = {"DbInstances": [{"DbInstanceStatus": "available"}]}
    assert json_path.extract_json("$.DbInstances[0].DbInstanceStatus", data) == ["available"]
    moto_sfn.install_service_fidelity(monkeypatch)
    from moto.stepfunctions.parser.asl.utils import json_path as patched

    assert patched.extract_json("$.DbInstances[0].DbInstanceStatus", data) == "available"
    assert patched.extract_json("$.DbInstances[*].DbInstanceStatus", data) == ["available"]


def test_interpreter_internals_the_fidelity_seam_replaces_are_unchanged() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
        state_task_service_aws_sdk,
        state_task_service_ecs,
    )

    base = state_task_service.StateTaskService
    for name in ("_normalise_parameters", "_normalise_response"):
        assert inspect.getsource(getattr(base, name)).rstrip().endswith("pass"), name
        assert list(inspect.signature(getattr(base, name)).parameters)[2:] == [
            "boto_service_name", "service_action_name"]
    for helper in ("_to_boto_request", "_from_boto_response", "_to_sfn_cased"):
        assert hasattr(base, helper), helper
    assert "_from_error" in vars(state_task_service_aws_sdk.StateTaskServiceAwsSdk)
    ecs = inspect.getsource(state_task_service_ecs.StateTaskServiceEcs)
    assert 'response["Tasks"][0]["ClusterArn"]' in ecs  # needs the casing put back


def test_wait_and_sync_poll_go_through_what_the_fast_wait_seam_replaces() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    assert list(inspect.signature(WaitFunction._wait_interval).parameters) == [
        "self", "env", "wait_seconds"]
    assert state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.5
    assert "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)" in inspect.getsource(
        state_task_service_callback)


def test_rds_internals_the_rds_seams_replace_are_unchanged(account: None) -> None:
    from moto.rds.models import DBInstance, MasterUserSecret, RDSBackend

    assert list(inspect.signature(RDSBackend.describe_db_instances).parameters) == [
        "self", "db_instance_identifier", "filters"]
    assert list(inspect.signature(RDSBackend.create_db_instance).parameters) == [
        "self", "db_kwargs"]
    assert list(inspect.signature(RDSBackend.delete_db_instance).parameters)[:2] == [
        "self", "db_instance_identifier"]
    assert isinstance(inspect.getattr_static(DBInstance, "endpoint"), property)
    assert callable(MasterUserSecret._generate_secret_string)
    # moto creates instances available at once, with a fixed master secret: hence the seams
    rds = boto3.client("rds", region_name=REGION)
    created = rds.create_db_instance(
        DBInstanceIdentifier="i", Engine="postgres", DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20, MasterUsername="backstop", ManageMasterUserPassword=True)
    assert created["DBInstance"]["DBInstanceStatus"] == "available"
    secret = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId=created["DBInstance"]["MasterUserSecret"]["SecretArn"])
    assert set(json.loads(secret["SecretString"])) == {"username", "password"}


def test_stock_ecs_runs_no_container_and_the_seam_signature_holds(account: None) -> None:
    from moto.ecs.models import Container, EC2ContainerServiceBackend

    assert list(inspect.signature(EC2ContainerServiceBackend.run_task).parameters)[:5] == [
        "self", "cluster_str", "task_definition_str", "count", "overrides"]
    assert "self.exitCode = 0" in inspect.getsource(Container)
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="f",
                                 containerDefinitions=[{"name": "x", "image": "i", "memory": 512,
                                                        "entryPoint": ["python3", "-m", "nope"]}])
    (task,) = ecs.run_task(cluster="c", taskDefinition="f", launchType="FARGATE")["tasks"]
    assert task["lastStatus"] == "RUNNING"  # and nothing ran: no module "nope" exists


def test_rds_latest_restorable_time_is_always_now_without_the_seam(account: None) -> None:
    from moto.rds.models import DBInstance

    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_instance(DBInstanceIdentifier="off", DBInstanceClass="db.t4g.micro",
                           Engine="postgres", BackupRetentionPeriod=0)
    (found,) = rds.describe_db_instances(DBInstanceIdentifier="off")["DBInstances"]
    assert found["BackupRetentionPeriod"] == 0 and "LatestRestorableTime" in found  # unlike RDS
    assert isinstance(inspect.getattr_static(DBInstance, "latest_restorable_time"), property)


def test_latest_restorable_seam_scripts_lag_and_omits_it_when_backups_are_off(
        account: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    rds = boto3.client("rds", region_name=REGION)
    for name, kept in (("lagging", 7), ("off", 0)):
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro",
                               Engine="postgres", BackupRetentionPeriod=kept)
    then = datetime(2026, 1, 1, 12, tzinfo=UTC)
    moto_sfn.script_latest_restorable(monkeypatch, {"lagging": then})
    (lagging,) = rds.describe_db_instances(DBInstanceIdentifier="lagging")["DBInstances"]
    (off,) = rds.describe_db_instances(DBInstanceIdentifier="off")["DBInstances"]
    assert lagging["LatestRestorableTime"] == then
    assert "LatestRestorableTime" not in off


def test_moto_serves_no_alarm_history_without_the_seam(account: None) -> None:
    from moto.cloudwatch.models import Alarm
    from moto.cloudwatch.responses import CloudWatchResponse

    assert not hasattr(CloudWatchResponse, "describe_alarm_history")
    assert "self.history.append" in inspect.getsource(Alarm.update_state)


def test_alarm_history_seam_reports_each_state_change(account: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    moto_sfn.install_alarm_history(monkeypatch)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(AlarmName="a", MetricName="m", Namespace="n", Period=60,
                                EvaluationPeriods=1, Threshold=1, Statistic="Sum",
                                ComparisonOperator="GreaterThanThreshold")
    for state in ("ALARM", "OK", "ALARM"):
        cloudwatch.set_alarm_state(AlarmName="a", StateValue=state, StateReason="test")
    items = cloudwatch.describe_alarm_history(AlarmName="a",
                                              HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    moves = [(json.loads(i["HistoryData"])["oldState"]["stateValue"],
              json.loads(i["HistoryData"])["newState"]["stateValue"]) for i in items]
    assert sorted(moves) == sorted([("OK", "ALARM"), ("ALARM", "OK"), ("OK", "ALARM")])
