"""Run the CDK-synthesized backup state machine under moto 5.2.5, handlers in-process.

Every patch of moto internals lives in this module, each narrow and explained, and
``tests/support/test_moto_seams.py`` fails when a moto upgrade changes what they rely on.

Seams:
  * Lambda: moto's docker-free Lambda backend echoes the payload. ``install_inprocess_lambda``
    makes ``LambdaSimpleBackend.invoke`` import and run the function's real ``Handler`` with
    the function's (resolved) environment, and report an exception the way the Python runtime
    does (``x-amz-function-error`` + errorType = class name) so Retry/Catch match on it.
  * Time: ``install_fast_retries`` records Retry intervals instead of sleeping them.
  * Teardown: ``stop_all_and_join`` stops RUNNING executions and joins moto's interpreter
    threads, which would otherwise outlive the mock (and reach real AWS).
The synthesized template is used as is; only CloudFormation intrinsics are resolved.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import time
import traceback
import types
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
PARTITION = "aws"
Handler = Callable[[dict[str, Any], Any], Any]


# --------------------------------------------------------------------------- intrinsics
def resolve(value: Any, refs: dict[str, str], getatts: dict[tuple[str, str], str]) -> Any:
    """Resolve the intrinsics CDK emits in definitions and environments; refuse the rest."""
    if isinstance(value, list):
        return [resolve(v, refs, getatts) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return refs[arg]
            if key == "Fn::GetAtt":
                logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return getatts[(logical_id, attr)]
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(resolve(p, refs, getatts)) for p in parts)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (
                    arg[0], resolve(arg[1], refs, getatts))
                lookup = {**refs, **{f"{a}.{b}": v for (a, b), v in getatts.items()}, **extra}
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(lookup[m.group(1)]), text)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"intrinsic {key} is not supported by the test resolver")
        return {k: resolve(v, refs, getatts) for k, v in value.items()}
    return value


@dataclass
class Deployment:
    """The stack's workflow resources created in moto, under predictable names."""

    template: dict[str, Any]
    state_machine_arn: str
    bucket: str
    table: str
    topic_arn: str
    functions: dict[str, str]  # logical id -> function name
    refs: dict[str, str]


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def deploy(template: dict[str, Any], *, name: str = "backup-workflow") -> Deployment:
    """Create, in the active moto account, what the backup state machine touches: bucket,
    recipient parameters, lock table, topic, functions, and the state machine itself."""
    refs: dict[str, str] = {"AWS::Partition": PARTITION, "AWS::Region": REGION,
                            "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com",
                            "AWS::StackName": "Backstop"}
    getatts: dict[tuple[str, str], str] = {}

    s3 = boto3.client("s3", region_name=REGION)
    for lid in _of_type(template, "AWS::S3::Bucket"):
        bucket_name = f"{lid.lower()}-test"
        s3.create_bucket(Bucket=bucket_name)
        refs[lid] = bucket_name
        getatts[(lid, "Arn")] = f"arn:aws:s3:::{bucket_name}"
    ssm = boto3.client("ssm", region_name=REGION)
    for lid, res in _of_type(template, "AWS::SSM::Parameter").items():
        ssm.put_parameter(Name=lid, Value=res["Properties"]["Value"], Type="String",
                          Tier=res["Properties"].get("Tier", "Standard"))
        refs[lid] = lid
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for lid, res in _of_type(template, "AWS::DynamoDB::Table").items():
        props = res["Properties"]
        dynamodb.create_table(TableName=lid, KeySchema=props["KeySchema"],
                              AttributeDefinitions=props["AttributeDefinitions"],
                              BillingMode="PAY_PER_REQUEST")
        refs[lid] = lid
        getatts[(lid, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{lid}"
    sns = boto3.client("sns", region_name=REGION)
    for lid in _of_type(template, "AWS::SNS::Topic"):
        refs[lid] = sns.create_topic(Name=lid)["TopicArn"]
    functions = _of_type(template, "AWS::Lambda::Function")
    for lid in functions:
        refs[lid] = lid
        getatts[(lid, "Arn")] = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{lid}"

    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=f"role-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    for lid, res in functions.items():
        props = res["Properties"]
        variables = resolve(props.get("Environment", {}).get("Variables", {}), refs, getatts)
        lam.create_function(FunctionName=lid, Runtime=props["Runtime"], Role=role,
                            Handler=props["Handler"], Code={"ZipFile": _dummy_zip()},
                            Environment={"Variables": variables})

    ((_, sm),) = _of_type(template, "AWS::StepFunctions::StateMachine").items()
    definition = resolve(sm["Properties"]["DefinitionString"], refs, getatts)
    json.loads(definition)  # fully resolved JSON, or fail here
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=role)[
        "stateMachineArn"]
    (bucket_lid,) = [k for k in _of_type(template, "AWS::S3::Bucket") if k == "BackupBucket"]
    (table_lid,) = _of_type(template, "AWS::DynamoDB::Table")
    (topic_lid,) = _of_type(template, "AWS::SNS::Topic")
    return Deployment(template, arn, refs[bucket_lid], refs[table_lid], refs[topic_lid],
                      {lid: lid for lid in functions}, refs)


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("unused.py", "# handlers run in-process in tests\n")
    return buffer.getvalue()


# --------------------------------------------------------------------------- executions
@dataclass
class Execution:
    status: str
    error: str | None
    cause: str | None
    output: Any
    events: list[dict[str, Any]]

    @property
    def path(self) -> list[str]:
        """Names of the states entered, in order."""
        return [e["stateEnteredEventDetails"]["name"] for e in self.events
                if "stateEnteredEventDetails" in e]


def run(state_machine_arn: str, payload: Any, *, timeout: float = 60.0) -> Execution:
    """Start an execution and wait for it to end. Always named: without a name moto's
    parser backend gives every execution the same ARN (``...:None``)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.start_execution(stateMachineArn=state_machine_arn,
                              name=f"test-{uuid.uuid4().hex[:12]}",
                              input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            sfn.stop_execution(executionArn=arn)
            raise TimeoutError(f"execution still running after {timeout} s")
        time.sleep(0.02)
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    output = json.loads(described["output"]) if described.get("output") else None
    return Execution(described["status"], described.get("error"), described.get("cause"),
                     output, events)


def stop_all_and_join(timeout: float = 10.0) -> None:
    """Call before leaving ``mock_aws``: moto's interpreter threads would outlive the mock."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    sfn = boto3.client("stepfunctions", region_name=REGION)
    for machine in sfn.list_state_machines()["stateMachines"]:
        for ex in sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                      statusFilter="RUNNING")["executions"]:
            sfn.stop_execution(executionArn=ex["executionArn"])
    deadline = time.monotonic() + timeout
    for thread in list(TMP_THREADS):
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t for t in TMP_THREADS if t.is_alive()]
    TMP_THREADS[:] = alive
    if alive:
        raise RuntimeError(f"{len(alive)} Step Functions interpreter thread(s) still running")


# --------------------------------------------------------------------------- Lambda seam
class LambdaServiceFault(Exception):
    """Raise from a handler override to make the Invoke API itself fail, as Lambda does when
    throttled or broken; Step Functions reports it as ``Lambda.<code>``."""

    def __init__(self, code: str = "ServiceException", status: int = 500) -> None:
        super().__init__(f"simulated Lambda {code}")
        self.code, self.status = code, status


class FakeContext:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:"
                                     f"{function_name}")
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass
class LambdaCalls:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    overrides: dict[str, Handler] = field(default_factory=dict)  # function name -> handler
    before_each: list[Callable[[], None]] = field(default_factory=list)

    def called(self) -> list[str]:
        return [name for name, _ in self.calls]


def _import_handler(spec: str) -> Handler:
    module, _, attr = spec.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), attr)
    return handler


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def install_inprocess_lambda(monkeypatch: Any) -> LambdaCalls:
    """Patch ``LambdaSimpleBackend.invoke`` (moto 5.2.5 signature, checked by the seam tests)
    to run the real handler in this process with the function's environment."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.exceptions import JsonRESTError

    record = LambdaCalls()

    def invoke(self: Any, function_name: str, qualifier: str | None, body: Any,
               headers: Any, response_headers: dict[str, str]) -> bytes:
        fn = self.get_function(function_name, qualifier)  # unknown function -> AWS's error
        event = json.loads(body) if body else {}
        record.calls.append((fn.function_name, event))
        for hook in record.before_each:  # a fresh "container" per invocation
            hook()
        try:
            # As in Lambda, the environment is in place before the handler module loads.
            with _environment(dict(fn.environment_vars or {})):
                handler = (record.overrides.get(fn.function_name)
                           or _import_handler(fn.handler))
                payload = json.dumps(handler(event, FakeContext(fn.function_name)))
        except LambdaServiceFault as fault:
            error = JsonRESTError(fault.code, str(fault))
            error.code = fault.status
            raise error from None
        except Exception as exc:  # what the Python runtime reports for an unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__,
                                  "requestId": "",
                                  "stackTrace": traceback.format_tb(exc.__traceback__)})
        return payload.encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return record


# --------------------------------------------------------------------------- time seam
def install_fast_retries(monkeypatch: Any) -> list[float]:
    """Record Retry intervals (moto sleeps them in real time) instead of sleeping."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    slept: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=slept.append))
    return slept


# --------------------------------------------------------------------------- metrics
def metric_sum(namespace: str, name: str, dimensions: dict[str, str]) -> float:
    """Sum of a metric's data points in moto CloudWatch over the last hour."""
    from datetime import UTC, datetime, timedelta

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=name, StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5), Period=3600, Statistics=["Sum"],
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()])
    return float(sum(p["Sum"] for p in stats["Datapoints"]))


def emf_metrics(text: str) -> list[dict[str, Any]]:
    """Embedded-metric-format records printed by Powertools, one dict per record."""
    records = []
    for line in text.splitlines():
        if '"_aws"' in line and line.lstrip().startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
    return records
