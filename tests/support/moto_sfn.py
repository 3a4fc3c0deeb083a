"""Run the CDK-synthesized state machines under moto 5.2.5, handlers in-process.

Every patch of moto internals lives in this module, each narrow and explained, and
``tests/support/test_moto_seams.py`` fails when a moto upgrade changes what they rely on.

Seams:
  * Lambda: moto's docker-free Lambda backend echoes the payload. ``install_inprocess_lambda``
    makes ``LambdaSimpleBackend.invoke`` import and run the function's real ``Handler`` with
    the function's (resolved) environment, and report an exception the way the Python runtime
    does (``x-amz-function-error`` + errorType = class name) so Retry/Catch match on it. The
    context's remaining time can be set per function (a function close to its timeout).
  * Time: ``install_fast_retries`` records Retry intervals instead of sleeping them;
    ``install_fast_waits`` does the same for Wait states and the ``.sync`` poll delay.
  * aws-sdk and ECS tasks (``install_service_fidelity``): moto stubbed out the interpreter's
    parameter/response casing (``DbInstanceIdentifier`` reaches botocore unchanged, responses
    keep ``DBInstances``); its JSONPath wraps ``$.a[0].b`` in a list; it names SDK errors
    ``rds.DBInstanceNotFoundFaultException`` where AWS says
    ``Rds.DbInstanceNotFoundException``. Each is put back as AWS behaves.
  * RDS: ``script_rds_status`` scripts the status describe returns (moto creates instances
    ``available`` at once); ``map_scratch_instances`` points every instance's endpoint and
    RDS-managed master secret at a real local PostgreSQL server, and creates (drops) the
    instance's initial database there, as RDS would.
  * ECS: ``install_inprocess_containers`` runs a started task's container entry point
    (``python3 -m <module>``) in this process with the task's environment, like the Lambda
    seam; moto itself runs nothing.
  * PITR: ``script_latest_restorable`` sets an RDS instance's latest restorable time (moto
    always says "now") and, as RDS does, gives none while automated backups are off.
  * CloudWatch: ``install_alarm_history`` answers ``DescribeAlarmHistory`` (moto lacks it)
    from the state changes moto records on each alarm.
  * IAM: ``install_call_recorder`` records every AWS call a handler or task makes in its own
    thread, by who made it (``FunctionsBackupD4A858FE``, ``container:Backup``), so the tests
    can check each against the role that would make it on AWS (moto checks no IAM).
  * Teardown: ``stop_all_and_join`` stops RUNNING executions and joins moto's interpreter
    threads, which would otherwise outlive the mock (and reach real AWS).
The synthesized template is used as is; only CloudFormation intrinsics are resolved.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import itertools
import json
import os
import re
import threading
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
    state_machine_arn: str  # the backup workflow
    bucket: str
    table: str
    topic_arn: str
    functions: dict[str, str]  # logical id -> function name
    refs: dict[str, str]
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN

    def machine(self, construct_id: str) -> str:
        """The ARN of the state machine built by the construct ``construct_id``."""
        (arn,) = [a for lid, a in self.state_machines.items()
                  if lid.startswith(f"{construct_id}StateMachine")]
        return arn


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def deploy(template: dict[str, Any], *, name: str = "backup-workflow") -> Deployment:
    """Create, in the active moto account, what the state machines touch: buckets, recipient
    parameters, lock table, topic, VPC, subnets, security groups, DB subnet group, ECS cluster
    and task definition, functions, and every state machine itself."""
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
    kms = boto3.client("kms", region_name=REGION)
    for lid, res in _of_type(template, "AWS::KMS::Key").items():
        props = res["Properties"]
        key = kms.create_key(KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
                             KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"))["KeyMetadata"]
        refs[lid] = key["KeyId"]
        getatts[(lid, "Arn")] = key["Arn"]
    sns = boto3.client("sns", region_name=REGION)
    for lid in _of_type(template, "AWS::SNS::Topic"):
        refs[lid] = sns.create_topic(Name=lid)["TopicArn"]
    functions = _of_type(template, "AWS::Lambda::Function")
    for lid in functions:
        refs[lid] = lid
        getatts[(lid, "Arn")] = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{lid}"
    for lid in _of_type(template, "AWS::Logs::LogGroup"):
        refs[lid] = lid

    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=f"role-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for lid in _of_type(template, "AWS::IAM::Role"):
        getatts[(lid, "Arn")] = role
    _deploy_network(template, refs, getatts)
    _deploy_ecs(template, refs, getatts)
    lam = boto3.client("lambda", region_name=REGION)
    for lid, res in functions.items():
        props = res["Properties"]
        variables = resolve(props.get("Environment", {}).get("Variables", {}), refs, getatts)
        lam.create_function(FunctionName=lid, Runtime=props["Runtime"], Role=role,
                            Handler=props["Handler"], Code={"ZipFile": _dummy_zip()},
                            Environment={"Variables": variables})

    sfn = boto3.client("stepfunctions", region_name=REGION)
    machines: dict[str, str] = {}
    pending = _of_type(template, "AWS::StepFunctions::StateMachine")
    while pending:  # a machine that starts another (the fleet) after the one it starts
        ready = {lid: sm for lid, sm in pending.items()
                 if not [r for r in _refs_in(sm["Properties"]["DefinitionString"])
                         if r in pending and r != lid]}
        assert ready, f"state machines start each other in a cycle: {sorted(pending)}"
        for lid, sm in ready.items():
            definition = resolve(sm["Properties"]["DefinitionString"], refs, getatts)
            json.loads(definition)  # fully resolved JSON, or fail here
            machine_name = name if lid.startswith("BackupWorkflow") else lid
            machines[lid] = refs[lid] = sfn.create_state_machine(
                name=machine_name, definition=definition, roleArn=role)["stateMachineArn"]
            del pending[lid]
    (arn,) = [a for lid, a in machines.items() if lid.startswith("BackupWorkflow")]
    (bucket_lid,) = [k for k in _of_type(template, "AWS::S3::Bucket") if k == "BackupBucket"]
    (table_lid,) = _of_type(template, "AWS::DynamoDB::Table")
    (topic_lid,) = _of_type(template, "AWS::SNS::Topic")
    return Deployment(template, arn, refs[bucket_lid], refs[table_lid], refs[topic_lid],
                      {lid: lid for lid in functions}, refs, machines)


def _refs_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [value["Ref"]] if "Ref" in value else [r for v in value.values()
                                                       for r in _refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs_in(v)]
    return []


def _deploy_network(template: dict[str, Any], refs: dict[str, str],
                    getatts: dict[tuple[str, str], str]) -> None:
    """VPCs, subnets (zones a, b, ... in template order per VPC), security groups and DB
    subnet groups, under moto's ids. Subnet zones are ``Fn::GetAZs`` in the template, which
    the resolver does not evaluate."""
    ec2 = boto3.client("ec2", region_name=REGION)
    for lid, res in _of_type(template, "AWS::EC2::VPC").items():
        props = res["Properties"]
        refs[lid] = ec2.create_vpc(CidrBlock=props["CidrBlock"])["Vpc"]["VpcId"]
        for attribute in ("EnableDnsHostnames", "EnableDnsSupport"):
            if attribute in props:
                ec2.modify_vpc_attribute(VpcId=refs[lid], **{attribute: {"Value": props[
                    attribute]}})
    zones: dict[str, int] = {}
    for lid, res in _of_type(template, "AWS::EC2::Subnet").items():
        vpc_id = resolve(res["Properties"]["VpcId"], refs, getatts)
        zone = f"{REGION}{'abcdef'[zones.get(vpc_id, 0) % 6]}"
        zones[vpc_id] = zones.get(vpc_id, 0) + 1
        refs[lid] = ec2.create_subnet(VpcId=vpc_id, CidrBlock=res["Properties"]["CidrBlock"],
                                      AvailabilityZone=zone)["Subnet"]["SubnetId"]
    for lid, res in _of_type(template, "AWS::EC2::SecurityGroup").items():
        props = res["Properties"]
        group = ec2.create_security_group(
            GroupName=lid, Description=props["GroupDescription"],
            VpcId=resolve(props["VpcId"], refs, getatts))["GroupId"]
        refs[lid] = group
        getatts[(lid, "GroupId")] = group
    rds = boto3.client("rds", region_name=REGION)
    for lid, res in _of_type(template, "AWS::RDS::DBSubnetGroup").items():
        props = res["Properties"]
        rds.create_db_subnet_group(
            DBSubnetGroupName=lid.lower(), DBSubnetGroupDescription=props[
                "DBSubnetGroupDescription"],
            SubnetIds=resolve(props["SubnetIds"], refs, getatts))
        refs[lid] = lid.lower()


def _deploy_ecs(template: dict[str, Any], refs: dict[str, str],
                getatts: dict[tuple[str, str], str]) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    for lid in _of_type(template, "AWS::ECS::Cluster"):
        cluster = ecs.create_cluster(clusterName=lid)["cluster"]
        refs[lid] = lid
        getatts[(lid, "Arn")] = cluster["clusterArn"]
    for lid, res in _of_type(template, "AWS::ECS::TaskDefinition").items():
        props = resolve({k: v for k, v in res["Properties"].items() if k != "Tags"}, refs,
                        getatts)
        # moto sizes tasks by container memory; Fargate by the task's (which CDK sets).
        containers = [{
            "name": c["Name"], "image": c["Image"], "essential": c.get("Essential", True),
            "memory": int(c.get("Memory", props["Memory"])),
            "entryPoint": c.get("EntryPoint", []),
            "environment": [{"name": e["Name"], "value": e["Value"]}
                            for e in c.get("Environment", [])]}
            for c in props["ContainerDefinitions"]]
        refs[lid] = ecs.register_task_definition(
            family=props["Family"], containerDefinitions=containers,
            networkMode=props["NetworkMode"], cpu=props["Cpu"], memory=props["Memory"],
            requiresCompatibilities=props["RequiresCompatibilities"],
            taskRoleArn=props["TaskRoleArn"], executionRoleArn=props["ExecutionRoleArn"],
        )["taskDefinition"]["taskDefinitionArn"]


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


# --------------------------------------------------------------------------- IAM seam
_running = threading.local()  # who is making AWS calls in this thread


@contextlib.contextmanager
def _acting_as(principal: str) -> Iterator[None]:
    previous = getattr(_running, "principal", None)
    _running.principal = principal
    try:
        yield
    finally:
        _running.principal = previous


def install_call_recorder(monkeypatch: Any) -> list[tuple[str, str]]:
    """Record ``(principal, "service:Operation")`` for every botocore call made while an
    in-process handler or task runs (in its own thread: multipart part uploads from worker
    threads are the same PutObject permission as the upload they belong to)."""
    import botocore.client

    calls: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def record(self: Any, operation_name: str, api_params: Any) -> Any:
        principal = getattr(_running, "principal", None)
        if principal is not None:
            calls.append((principal,
                          f"{self.meta.service_model.service_name}:{operation_name}"))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return calls


# --------------------------------------------------------------------------- Lambda seam
class LambdaServiceFault(Exception):
    """Raise from a handler override to make the Invoke API itself fail, as Lambda does when
    throttled or broken; Step Functions reports it as ``Lambda.<code>``."""

    def __init__(self, code: str = "ServiceException", status: int = 500) -> None:
        super().__init__(f"simulated Lambda {code}")
        self.code, self.status = code, status


class FakeContext:
    def __init__(self, function_name: str, remaining_ms: int = 900_000) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:"
                                     f"{function_name}")
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "test"
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class LambdaCalls:
    """What ran in-process: Lambda invocations (function name, event) and container tasks
    (``container:<name>``, environment)."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    overrides: dict[str, Handler] = field(default_factory=dict)  # function name -> handler
    before_each: list[Callable[[], None]] = field(default_factory=list)
    container_overrides: dict[str, Callable[[], int]] = field(default_factory=dict)
    # function name -> what the context reports as left of its timeout (a function near it)
    remaining_ms: dict[str, int] = field(default_factory=dict)

    def called(self) -> list[str]:
        return [name for name, _ in self.calls]


def _import_handler(spec: str) -> Handler:
    module, _, attr = spec.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), attr)
    return handler


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """The function's environment; as in Lambda, no Backstop setting of the test process
    (such as its manifest signing key) leaks in beside the function's own."""
    foreign = [k for k in os.environ if k.startswith("BACKSTOP_") and k not in variables]
    saved = {k: os.environ.get(k) for k in [*variables, *foreign]}
    for key in foreign:
        del os.environ[key]
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
            with _environment(dict(fn.environment_vars or {})), _acting_as(fn.function_name):
                handler = (record.overrides.get(fn.function_name)
                           or _import_handler(fn.handler))
                context = FakeContext(fn.function_name,
                                      record.remaining_ms.get(fn.function_name, 900_000))
                payload = json.dumps(handler(event, context))
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


def install_fast_waits(monkeypatch: Any) -> list[float]:
    """Record the seconds Wait states would wait (moto waits them in real time), and poll
    ``.sync`` tasks without moto's half-second pause."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    waited: list[float] = []
    monkeypatch.setattr(WaitFunction, "_wait_interval",
                        lambda self, env, wait_seconds: waited.append(wait_seconds))
    monkeypatch.setattr(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 0.01)
    return waited


# --------------------------------------------------------------------------- service fidelity
def install_service_fidelity(monkeypatch: Any) -> None:
    """aws-sdk and ECS tasks as on AWS: casing, JSONPath results and SDK error names."""
    _install_casing(monkeypatch)
    _install_jsonpath_fix(monkeypatch)
    _install_sdk_error_names(monkeypatch)


@functools.cache
def _operation(service: str, action: str) -> Any:
    import botocore.session
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    model = botocore.session.get_session().get_service_model(service)
    by_snake = {camel_to_snake_case(n): n for n in model.operation_names}
    return model.operation_model(by_snake[camel_to_snake_case(action)])


def _install_casing(monkeypatch: Any) -> None:
    """moto replaced the interpreter's ``_normalise_parameters``/``_normalise_response`` with
    no-ops; LocalStack upstream maps Step Functions casing to boto's through the botocore
    operation shapes, with helpers moto still ships. Put that back for aws-sdk, ECS and Step
    Functions tasks only (Lambda, DynamoDB, SNS and CloudWatch already share boto's casing)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
        state_task_service_ecs,
        state_task_service_sfn,
    )

    def parameters(self: Any, parameters: dict[str, Any], boto_service_name: str | None = None,
                   service_action_name: str | None = None) -> None:
        operation = _operation(self._get_boto_service_name(boto_service_name),
                               self._get_boto_service_action(service_action_name))
        if operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    def response(self: Any, response: Any, boto_service_name: str | None = None,
                 service_action_name: str | None = None) -> None:
        operation = _operation(self._get_boto_service_name(boto_service_name),
                               self._get_boto_service_action(service_action_name))
        if operation.output_shape is not None:
            self._from_boto_response(response, operation.output_shape)

    for cls in (state_task_service_aws_sdk.StateTaskServiceAwsSdk,
                state_task_service_ecs.StateTaskServiceEcs):
        monkeypatch.setattr(cls, "_normalise_parameters", parameters)
        monkeypatch.setattr(cls, "_normalise_response", response)

    # Step Functions' own integration (the fleet's startExecution.sync:2): keep its own step
    # (Input as JSON text), then the casing; ``Output`` comes back as AWS spells it.
    sfn_cls = state_task_service_sfn.StateTaskServiceSfn
    own = sfn_cls._normalise_parameters

    def sfn_parameters(self: Any, parameters: dict[str, Any],
                       boto_service_name: str | None = None,
                       service_action_name: str | None = None) -> None:
        own(self, parameters, boto_service_name, service_action_name)
        parameters_casing(self, parameters, boto_service_name, service_action_name)

    parameters_casing = parameters
    monkeypatch.setattr(sfn_cls, "_normalise_parameters", sfn_parameters)
    monkeypatch.setattr(sfn_cls, "_normalise_response", response)


def _install_jsonpath_fix(monkeypatch: Any) -> None:
    """moto 5.2.5's ``extract_json`` wraps a match below an array index in a list (a moto-only
    change, getmoto/moto#7825): ``$.DbInstances[0].DbInstanceStatus`` gives ``["available"]``
    and a Choice on it never matches. On AWS only indefinite paths (wildcards, slices,
    filters, ``..``) give arrays, empty when nothing matches (moto raises for a filter that
    matches nothing). ``extract_json`` is imported by name into several modules:
    every binding is replaced."""
    import sys

    import moto.stepfunctions.parser.asl.parse.preprocessor  # noqa: F401  (imports them all)
    from jsonpath_ng.ext import parse
    from jsonpath_ng.jsonpath import Index
    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.extract_json
    indefinite = re.compile(r"\[\s*(?:\*|\?|[^\]]*[:,])|\.\.")

    def extract_json(path: str, data: Any) -> Any:
        matches = parse(path).find(data)
        if not matches:  # an indefinite path (a filter too) that matches nothing: []
            if json_path._contains_slice_or_wildcard_array(path) or indefinite.search(path):
                return []
            raise json_path.NoSuchJsonPathError(json_path=path, data=data)
        if len(matches) > 1 or isinstance(matches[0].path, Index) or indefinite.search(path):
            value = [m.value for m in matches]
            if json_path._is_singleton_array_access(path=path) and len(value) == 1:
                return value[0]
            return value
        return matches[0].value

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("moto.stepfunctions.parser") and \
                getattr(module, "extract_json", None) is original:
            monkeypatch.setattr(module, "extract_json", extract_json)


def _install_sdk_error_names(monkeypatch: Any) -> None:
    """AWS names aws-sdk errors ``<ServiceId in PascalCase>.<error without Fault/Exception>
    Exception`` (``Rds.DbInstanceNotFoundException``); moto says
    ``rds.DBInstanceNotFoundFaultException``, so Catch/Retry on SDK error names never match.
    The rule is checked against AWS's documented names for the errors the workflows catch."""
    import botocore.session
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
    )

    cls = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    session = botocore.session.get_session()
    original = cls._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        return self._get_task_failure_event(
            env=env, error=sdk_error_name(self._get_boto_service_name(), ex),
            cause=ex.response["Error"].get("Message", ""))

    def sdk_error_name(service: str, ex: ClientError) -> str:
        service_id = session.get_service_model(service).metadata["serviceId"]
        pascal = "".join(cls._to_sfn_cased(word) for word in service_id.split())
        shape = ex.__class__.__name__
        if shape == "ClientError":
            shape = ex.response["Error"]["Code"]
        bare = re.sub(r"(Fault|Exception)$", "", shape)
        return f"{pascal}.{cls._to_sfn_cased(bare)}Exception"

    monkeypatch.setattr(cls, "_from_error", from_error)


# --------------------------------------------------------------------------- RDS
def script_rds_status(monkeypatch: Any, statuses: list[str]) -> list[str]:
    """Each describe of one instance sets its status to the next scripted value (the last one
    sticks); moto creates instances ``available`` at once. Returns the statuses served."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.describe_db_instances
    served: list[str] = []

    def describe(self: Any, db_instance_identifier: str | None = None,
                 filters: Any = None) -> Any:
        instances = original(self, db_instance_identifier, filters)
        if db_instance_identifier:
            status = statuses[min(len(served), len(statuses) - 1)]
            served.append(status)
            for instance in instances:
                instance.status = status
        return instances

    monkeypatch.setattr(RDSBackend, "describe_db_instances", describe)
    return served


@dataclass
class ScratchServer:
    """The real PostgreSQL server every RDS instance of a test stands for."""

    host: str  # a socket directory works: libpq treats a host starting with '/' as one
    port: int
    username: str
    password: str
    create_database: Callable[[str], None]
    drop_database: Callable[[str], None]
    # An RDS-managed secret holds no sslmode, so on AWS the restore uses ``require``; the
    # local server (and the embedded pg_restore) speak no TLS.
    sslmode: str = "disable"
    created: list[str] = field(default_factory=list)  # instance identifiers
    deleted: list[str] = field(default_factory=list)


def map_scratch_instances(monkeypatch: Any, server: ScratchServer) -> ScratchServer:
    """Point every instance's endpoint and RDS-managed master secret at ``server``, and
    create/drop the instance's initial database (``DBName``) there, as RDS does."""
    from moto.rds.models import DBInstance, MasterUserSecret, RDSBackend

    monkeypatch.setattr(DBInstance, "endpoint", property(
        lambda self: {"Address": server.host, "Port": server.port}))
    monkeypatch.setattr(MasterUserSecret, "_generate_secret_string", lambda self: json.dumps(
        {"username": server.username, "password": server.password,
         "sslmode": server.sslmode}))
    create, delete = RDSBackend.create_db_instance, RDSBackend.delete_db_instance

    def create_instance(self: Any, db_kwargs: dict[str, Any]) -> Any:
        instance = create(self, db_kwargs)
        server.created.append(instance.db_instance_identifier)
        if instance.db_name:
            server.create_database(instance.db_name)
        return instance

    def delete_instance(self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        instance = delete(self, db_instance_identifier, *args, **kwargs)
        server.deleted.append(instance.db_instance_identifier)
        if instance.db_name:
            server.drop_database(instance.db_name)
        return instance

    monkeypatch.setattr(RDSBackend, "create_db_instance", create_instance)
    monkeypatch.setattr(RDSBackend, "delete_db_instance", delete_instance)
    return server


def script_latest_restorable(monkeypatch: Any, times: dict[str, Any]) -> None:
    """``LatestRestorableTime`` per instance identifier (unlisted: now); none at all while
    the instance keeps no automated backups (retention 0), as on RDS."""
    from moto.core.utils import utcnow
    from moto.rds.models import DBInstance

    def latest(self: Any) -> Any:
        if not self.backup_retention_period:
            return None
        return times.get(self.db_instance_identifier) or utcnow()

    monkeypatch.setattr(DBInstance, "latest_restorable_time", property(latest))


# --------------------------------------------------------------------------- CloudWatch
def install_alarm_history(monkeypatch: Any) -> None:
    """``DescribeAlarmHistory`` (StateUpdate items, optionally by name and time) built from
    moto's record of each alarm's previous states: moto 5.2.5 keeps the history but serves
    no API for it. Each item says what AWS's do: the old and new state in ``HistoryData``."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def describe_alarm_history(self: Any) -> Any:
        name = self._get_param("AlarmName")
        start, end = self._get_param("StartDate"), self._get_param("EndDate")
        items = []
        for alarm in self.cloudwatch_backend.describe_alarms():
            if name and alarm.name != name:
                continue
            # history holds (type, reason, data, state, since) of each state left behind
            states = [(h[3], h[4]) for h in alarm.history if h[0] == "StateUpdate"]
            states.append((alarm.state_value, alarm.state_updated_timestamp))
            for (old, _), (new, at) in itertools.pairwise(states):
                if (start and at < start) or (end and at > end):
                    continue
                items.append({"AlarmName": alarm.name, "AlarmType": "MetricAlarm",
                              "Timestamp": at, "HistoryItemType": "StateUpdate",
                              "HistorySummary": f"Alarm updated from {old} to {new}",
                              "HistoryData": json.dumps({"version": "1.0",
                                                         "oldState": {"stateValue": old},
                                                         "newState": {"stateValue": new}})})
        return ActionResult({"AlarmHistoryItems": sorted(items, key=lambda i: i["Timestamp"],
                                                          reverse=True)})

    monkeypatch.setattr(CloudWatchResponse, "describe_alarm_history", describe_alarm_history,
                        raising=False)


# --------------------------------------------------------------------------- ECS seam
def install_inprocess_containers(monkeypatch: Any, record: LambdaCalls) -> None:
    """After moto's ``run_task`` creates a task, run each container's entry point
    (``python3 -m <module>``: the module's ``main()``) in this process with the container's
    environment and the task's overrides. The container reports through the Step Functions
    API as on AWS (its task token); its exit code is recorded on the task's container."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.run_task

    def run_task(self: Any, cluster_str: str, task_definition_str: str, count: int,
                 overrides: dict[str, Any] | None, *args: Any, **kwargs: Any) -> Any:
        started = original(self, cluster_str, task_definition_str, count, overrides,
                           *args, **kwargs)
        definition = self.describe_task_definition(task_definition_str)
        for task in started:
            for container in definition.container_definitions:
                environment = {e["name"]: e["value"] for e in container.get("environment", [])}
                for override in (overrides or {}).get("containerOverrides", []):
                    if override.get("name") == container["name"]:
                        environment.update({e["name"]: e["value"]
                                            for e in override.get("environment", [])})
                record.calls.append((f"container:{container['name']}", environment))
                for hook in record.before_each:
                    hook()
                with _environment(environment), _acting_as(f"container:{container['name']}"):
                    code = _run_entry_point(record, container)
                for running in task.containers:
                    running.exitCode = code
        return started

    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", run_task)


def _run_entry_point(record: LambdaCalls, container: dict[str, Any]) -> int:
    override = record.container_overrides.get(container["name"])
    if override is not None:
        return override()
    entry = container.get("entryPoint") or []
    if len(entry) != 3 or entry[1] != "-m":
        raise NotImplementedError(f"entry point {entry} is not 'python3 -m <module>'")
    code: int = importlib.import_module(entry[2]).main()
    return code


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
