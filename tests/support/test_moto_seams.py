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
