"""How many databases one stack holds: CloudFormation's 500 resources, measured from real synths
of one and two databases, and the Lambda environment's 4 KB. A larger fleet is refused when the
configuration loads, with one line that says how many fit and what to do."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.config import load_config
from infra.config_values import ConfigurationError
from infra.fleet_limits import MAX_RESOURCES, PER_DATABASE, PER_PITR_SOURCE, resources
from infra.functions import LAMBDA_ENV_BYTES, TOKEN_BYTES
from tests.infra.conftest import ROOT, raw_config, synth

GUIDE = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
EMAILS = ["oncall@example.com", "dba@example.com"]


def fleet(recipient: str, count: int, *, named: str = "b/{}", **overrides: Any
          ) -> dict[str, Any]:
    """``count`` databases, each with the secret ``named`` (``{}``: the database's name)."""
    databases = [{"name": f"db{i}", "secret": named.format(f"db{i}")} for i in range(count)]
    return raw_config(recipient, databases=databases, **overrides)


def fullest(recipient: str, count: int) -> dict[str, Any]:
    """The largest stack per database: Backstop's own VPC, the report watching every
    database's RDS PITR, replication, Object Lock."""
    return fleet(recipient, count, alarm_emails=EMAILS, report={
        "schedule": "monthly", "pitr": {f"db{i}": {"rds_instance": f"db{i}-prod",
                                                    "retention_days": 7}
                                        for i in range(count)}},
        replication={"destination_bucket_arn": "arn:aws:s3:::replica",
                     "destination_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/k"},
        object_lock={"mode": "GOVERNANCE", "days": 3, "from_first_deploy": True})


def test_the_limit_is_measured_from_synths_of_one_and_two_databases(recipient_key: str) -> None:
    one, two = (len(synth(load_config(fullest(recipient_key, n)))["Resources"]) for n in (1, 2))
    per_database = two - one
    base = one - per_database - len(EMAILS)

    # a resource added per database (or per PITR source) fails here
    assert per_database <= PER_DATABASE + PER_PITR_SOURCE
    # the model covers both stacks, and is not needlessly low
    for count, measured in ((1, one), (2, two)):
        estimate = resources(count, alarm_emails=len(EMAILS), pitr_sources=count)
        assert measured <= estimate <= measured + 10
    # the most databases the check lets through (no PITR watched) fit in one stack
    allowed = (MAX_RESOURCES - resources(0, alarm_emails=1, pitr_sources=0)) // PER_DATABASE
    assert base + 1 + (per_database - PER_PITR_SOURCE) * allowed <= MAX_RESOURCES
    assert f"one stack holds at most {allowed} databases" in GUIDE


def test_one_database_more_than_a_stack_holds_is_refused_in_one_line(recipient_key: str
                                                                      ) -> None:
    allowed = (MAX_RESOURCES - resources(0, alarm_emails=1, pitr_sources=0)) // PER_DATABASE
    assert len(load_config(fleet(recipient_key, allowed)).databases) == allowed

    with pytest.raises(ConfigurationError) as refused:
        load_config(fleet(recipient_key, allowed + 1))

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"backstop:databases: {allowed + 1} databases need about ")
    assert f"more than the 500 one stack holds: this stack takes at most {allowed}" in message
    assert "split the fleet across stacks, each deployed with its own config file" in message


def test_each_pitr_source_the_report_watches_counts(recipient_key: str) -> None:
    allowed = (MAX_RESOURCES - resources(0, alarm_emails=1, pitr_sources=0)) // PER_DATABASE
    pitr = {"schedule": "monthly", "pitr": {f"db{i}": {"rds_instance": f"db{i}-prod",
                                                        "retention_days": 7} for i in range(20)}}
    fewer = (MAX_RESOURCES - resources(0, alarm_emails=1, pitr_sources=20)) // PER_DATABASE
    assert fewer < allowed
    with pytest.raises(ConfigurationError, match=f"this stack takes at most {fewer};"):
        load_config(fleet(recipient_key, allowed, report=pitr))


ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:backstop/db{:02d}-AbCdEf"


def named_by_arn(recipient: str, count: int) -> dict[str, Any]:
    return raw_config(recipient, databases=[{"name": f"db{i:02d}", "secret": ARN.format(i)}
                                            for i in range(count)])


def environment_bytes(template: dict[str, Any]) -> dict[str, int]:
    """Each function's environment as Lambda will count it, read from the template: a value
    CloudFormation fills in (Ref, GetAtt) at the longest it can be."""
    def size(value: Any) -> int:
        if isinstance(value, str):
            return len(value.encode())
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return sum(map(size, parts)) + len(separator) * (len(parts) - 1)
        return TOKEN_BYTES
    return {name: sum(len(k) + size(v) for k, v in
                      resource["Properties"]["Environment"]["Variables"].items())
            for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Lambda::Function"
            and "Environment" in resource["Properties"]}


def test_a_function_environment_past_lambdas_4_kb_is_refused_at_synth(recipient_key: str
                                                                       ) -> None:
    # Given each function's environment measured from synths of one and two databases
    one, two = (environment_bytes(synth(load_config(named_by_arn(recipient_key, n))))
                for n in (1, 2))
    fits = min((LAMBDA_ENV_BYTES - (2 * one[f] - two[f])) // (two[f] - one[f])
               for f in one if two[f] > one[f])
    growth = max(two[f] - one[f] for f in one)
    largest = max(environment_bytes(synth(load_config(named_by_arn(recipient_key, fits))
                                          )).values())
    assert LAMBDA_ENV_BYTES - growth < largest <= LAMBDA_ENV_BYTES  # no database more fits
    assert f"about {fits} databases named by complete secret ARNs" in GUIDE

    with pytest.raises(ConfigurationError) as refused:
        synth(load_config(named_by_arn(recipient_key, fits + 1)))

    message = str(refused.value)
    assert "\n" not in message
    assert re.match(r"backstop:databases: the \w+ function's environment would take \d+ "
                    r"bytes, over the 4096 Lambda allows", message), message
    assert "use secret names rather than complete ARNs" in message
