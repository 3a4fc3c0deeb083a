"""The Lambda functions: shared defaults, per-function settings, and handlers that exist."""

from __future__ import annotations

import importlib
import json
from typing import Any

from infra.config import BackstopConfig
from tests.infra.conftest import resources

HANDLERS = {"handlers.validate.handler", "handlers.backup.handler", "handlers.check.handler",
            "handlers.rpo.handler", "handlers.plan.handler", "handlers.restore.handler",
            "handlers.sweep.handler", "handlers.report.handler"}


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["Properties"]["Handler"]: v["Properties"]
            for v in resources(template, "AWS::Lambda::Function").values()}


def test_every_function_shares_the_defaults(template: dict[str, Any]) -> None:
    functions = _functions(template)
    assert set(functions) == HANDLERS
    log_groups = resources(template, "AWS::Logs::LogGroup")
    for props in functions.values():
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        (log_group_id,) = [props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_groups[log_group_id]["Properties"]["RetentionInDays"] == 90
        assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "Backstop"
        assert len(props["Layers"]) >= 1


def test_backup_function_takes_timeout_and_memory_from_config(template: dict[str, Any],
                                                              config: BackstopConfig) -> None:
    backup = _functions(template)["handlers.backup.handler"]
    assert backup["Timeout"] == config.backup_function.timeout_seconds == 900
    assert backup["MemorySize"] == config.backup_function.memory_mb
    assert backup["EphemeralStorage"] == {"Size": config.backup_function.ephemeral_storage_mb}
    assert len(backup["Layers"]) == 2  # python deps + pgtools


def test_architecture_and_sizes_follow_the_config(synth_with: Any) -> None:
    template = synth_with(architecture="x86_64",
                          backup_function={"timeout_seconds": 600, "memory_mb": 4096,
                                           "ephemeral_storage_mb": 10240})
    backup = _functions(template)["handlers.backup.handler"]
    assert backup["Architectures"] == ["x86_64"]
    assert (backup["Timeout"], backup["MemorySize"], backup["EphemeralStorage"]["Size"]) == (
        600, 4096, 10240)
    layers = resources(template, "AWS::Lambda::LayerVersion").values()
    assert all(layer["Properties"]["CompatibleArchitectures"] == ["x86_64"] for layer in layers)


def test_environment_holds_no_secret_and_fits_lambdas_limit(template: dict[str, Any],
                                                           recipient_key: str) -> None:
    for props in _functions(template).values():
        variables = props["Environment"]["Variables"]
        text = json.dumps(variables)
        assert len(text) < 4096
        assert "password" not in text.lower()
        assert "BEGIN PGP" not in text  # keys travel through SSM, not the environment
    backup = _functions(template)["handlers.backup.handler"]["Environment"]["Variables"]
    assert json.loads(backup["DATABASE_SECRETS"]) == {"quotepro": "backstop/quotepro"}
    checks = json.loads(backup["DATABASE_CHECKS"])["quotepro"]
    assert checks["newest_quote"] == "SELECT max(created_at) FROM quotes"
    (parameter,) = resources(template, "AWS::SSM::Parameter").values()
    assert parameter["Properties"]["Value"] == recipient_key.strip() + "\n"


def test_every_handler_named_in_the_template_imports() -> None:
    for spec in HANDLERS:
        module, _, attr = spec.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr))


def test_vpc_from_config_without_lookups(synth_with: Any) -> None:
    subnets = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    template = synth_with(network={
        "vpc_id": "vpc-0123456789abcdef0", "subnet_ids": subnets,
        "availability_zones": ["us-east-1a", "us-east-1b"],
        "security_group_ids": ["sg-0123456789abcdef0"], "egress": "nat"})
    in_vpc = {h: p for h, p in _functions(template).items() if "VpcConfig" in p}
    # only what must reach a database
    assert sorted(in_vpc) == ["handlers.backup.handler", "handlers.restore.handler"]
    for handler, props in in_vpc.items():
        groups = props["VpcConfig"]["SecurityGroupIds"]
        assert props["VpcConfig"]["SubnetIds"] == subnets
        if handler == "handlers.restore.handler":  # and the group scratch instances admit
            assert groups[1:] == ["sg-0123456789abcdef0"]
            assert groups[0] == {"Fn::GetAtt": ["ScratchClientSg5FC0B322", "GroupId"]}
        else:
            assert groups == ["sg-0123456789abcdef0"]
