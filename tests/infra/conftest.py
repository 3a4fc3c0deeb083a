"""Fixtures for the infrastructure tier: one synthesized stack per session (synth costs
seconds, assertions milliseconds), and a moto account running its backup workflow."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.config import BackstopConfig, load_config

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parents[2]

SECRET_NAME = "backstop/quotepro"
RESTORE_TARGET_SECRET = "backstop/quotepro-restore"
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}  # layers are built at deploy time, not in tests


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def raw_config(recipient: str, **overrides: Any) -> dict[str, Any]:
    """cdk.json's defaults as raw config values, with a recipient and any overrides."""
    raw = {k.removeprefix("backstop:"): v for k, v in cdk_json_context().items()
           if k.startswith("backstop:")}
    raw["recipients"] = [recipient]
    raw["alarm_emails"] = ["oncall@example.com"]
    # An existing database a manual restore may replace (the executed restore tests use it).
    raw["restore"] = {**raw["restore"], "target_secrets": [RESTORE_TARGET_SECRET]}
    raw.update(overrides)
    return raw


def synth(config: BackstopConfig, *, nag: bool = False) -> dict[str, Any]:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.stack import BackstopStack

    flags = {k: v for k, v in cdk_json_context().items() if not k.startswith("backstop:")}
    app = cdk.App(context={**flags, **NO_BUNDLING})
    stack = BackstopStack(app, config.stack_name, config=config)
    if nag:
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return template


@pytest.fixture(scope="session")
def recipient_key(gpg_keys: Any) -> str:
    key: str = gpg_keys.public
    return key


@pytest.fixture(scope="session")
def config(recipient_key: str) -> BackstopConfig:
    return load_config(raw_config(recipient_key))


@pytest.fixture(scope="session")
def template(config: BackstopConfig) -> dict[str, Any]:
    return synth(config)


# A deployment whose report watches an RDS source's PITR and checks a replica bucket.
REPLICA = "replica-bucket"
PITR = {"quotepro": {"rds_instance": "quotepro-prod", "retention_days": 7}}


@pytest.fixture(scope="session")
def report_config(recipient_key: str) -> BackstopConfig:
    return load_config(raw_config(
        recipient_key, report={"schedule": "monthly", "pitr_rpo_minutes": 5, "pitr": PITR},
        replication={"destination_bucket_arn": f"arn:aws:s3:::{REPLICA}",
                     "destination_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/k"}))


@pytest.fixture(scope="session")
def report_template(report_config: BackstopConfig) -> dict[str, Any]:
    return synth(report_config)


@pytest.fixture(scope="session")
def synth_with(recipient_key: str) -> Callable[..., dict[str, Any]]:
    """Synthesize a variant: ``synth_with(object_lock={...})``."""
    def make(**overrides: Any) -> dict[str, Any]:
        return synth(load_config(raw_config(recipient_key, **overrides)))
    return make


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def alarm_props(template: dict[str, Any], metric: str) -> dict[str, Any]:
    """The properties of the one alarm on ``metric``."""
    (found,) = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
                if a["Properties"].get("MetricName") == metric]
    return found


def function_props(template: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    """The logical id and properties of the one function running ``handler``."""
    (found,) = [(lid, f["Properties"]) for lid, f in
                resources(template, "AWS::Lambda::Function").items()
                if f["Properties"]["Handler"] == handler]
    return found


def emf_values(printed: str, name: str) -> dict[str | None, float]:
    """The EMF data points of one metric, by Database dimension (None: no dimension)."""
    from tests.support.moto_sfn import emf_metrics

    found: dict[str | None, float] = {}
    for record in emf_metrics(printed):
        if name in record:
            (value,) = record[name]
            found[record.get("Database")] = value
    return found


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto account that executes state machines; Lambda tasks run the real handlers here."""
    from moto import mock_aws

    from handlers import _runtime
    from tests.support import moto_sfn

    monkeypatch.setenv("AWS_DEFAULT_REGION", moto_sfn.REGION)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                          "lambda": {"use_docker": False}}):
        calls = moto_sfn.install_inprocess_lambda(monkeypatch)
        moto_sfn.install_inprocess_containers(monkeypatch, calls)
        moto_sfn.install_service_fidelity(monkeypatch)
        made = moto_sfn.install_call_recorder(monkeypatch)
        calls.before_each.append(_runtime.reset)
        try:
            yield calls
        finally:
            moto_sfn.stop_all_and_join()
            _runtime.reset()
        assert_granted(made)


def role_for(principal: str) -> str:
    """The role a recorded principal runs as in the stack."""
    if principal.startswith("container:"):
        return f"{principal.split(':', 1)[1]}RunnerTaskTaskRole"
    return re.sub(r"[0-9A-F]{8}$", "", principal) + "Role"


def assert_granted(made: list[tuple[str, str]]) -> None:
    """Every call a handler really made is one its role is granted (tests/infra/iam_calls.py,
    which test_iam_derived.py checks against the synthesized policies)."""
    from tests.infra.iam_calls import ROLES

    ungranted = sorted({(role_for(who), call) for who, call in made
                        if not ROLES[role_for(who)].may_call(call)})
    assert ungranted == [], f"calls made without a granted permission: {ungranted}"
