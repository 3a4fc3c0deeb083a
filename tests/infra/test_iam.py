"""Least privilege: no wildcard actions, data access limited to the backup prefix."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import resources


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(lid, s) for lid, p in resources(template, "AWS::IAM::Policy").items()
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _policy_of(template: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [s for lid, s in _statements(template) if lid.startswith(prefix)]


def test_no_wildcard_actions_anywhere(template: dict[str, Any]) -> None:
    for lid, statement in _statements(template):
        for action in _actions(statement):
            assert action != "*" and not action.endswith(":*"), (lid, action)
            assert "*" not in action or action.startswith(("logs:", "kms:GenerateDataKey")), (
                lid, action)


def test_wildcard_resources_only_for_actions_without_resource_scoping(template: dict[str, Any]
                                                                      ) -> None:
    # services whose actions here take no resource ARN: tracing, logs, metrics, the restore
    # task's image pull (ecr:GetAuthorizationToken), its task-token report (states:SendTask*)
    # and the .sync integration's ecs:StopTask/DescribeTasks
    unscoped = {"xray", "logs", "cloudwatch", "ecr", "states", "ecs"}
    for lid, statement in _statements(template):
        if statement["Resource"] == "*":
            services = {a.split(":")[0] for a in _actions(statement)}
            assert services <= unscoped, (lid, statement)


def test_backup_function_writes_only_under_the_prefix(template: dict[str, Any]) -> None:
    statements = _policy_of(template, "FunctionsBackupRole")
    s3_objects = [s for s in statements if "s3:PutObject" in _actions(s)]
    assert len(s3_objects) == 1
    assert sorted(_actions(s3_objects[0])) == ["s3:AbortMultipartUpload", "s3:GetObject",
                                               "s3:PutObject"]
    assert s3_objects[0]["Resource"] == {"Fn::Join": ["", [
        {"Fn::GetAtt": ["BackupBucket", "Arn"]}, "/backstop/*"]]}
    # no delete of backups, by anyone
    for _, statement in _statements(template):
        assert not any(a.startswith("s3:Delete") for a in _actions(statement))
    secrets = [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    assert "secret:backstop/quotepro-??????" in str(secrets[0]["Resource"])


def test_read_only_functions_cannot_write(template: dict[str, Any]) -> None:
    for prefix in ("FunctionsCheckRole", "FunctionsValidateRole"):
        for statement in _policy_of(template, prefix):
            assert not any(a in ("s3:PutObject", "kms:GenerateDataKey", "kms:Encrypt")
                           for a in _actions(statement)), prefix
    # the RPO check writes the per-database index objects and nothing else
    (put,) = [s for s in _policy_of(template, "FunctionsRpoCheckRole")
              if "s3:PutObject" in _actions(s)]
    assert _actions(put) == ["s3:PutObject"]
    assert put["Resource"] == {"Fn::Join": ["", [
        {"Fn::GetAtt": ["BackupBucket", "Arn"]}, "/backstop/index/*"]]}
    # validation reads the database's index (its runner choice), and no secret
    validate = _policy_of(template, "FunctionsValidateRole")
    assert not any(a.startswith("secretsmanager:") for s in validate for a in _actions(s))
    assert {a for s in validate for a in _actions(s) if a.startswith("s3:")} == {
        "s3:GetObject", "s3:ListBucket"}
