"""Schedules: cron expressions and inputs per database, and the CI/CD pre-deploy rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import resources

SCOPE = {"mode": "full", "tables": [], "exclude_tables": []}


def _rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources(template, "AWS::Events::Rule").items()}


@pytest.mark.parametrize(("retention", "cron"), [
    ("daily", "cron(0 2 * * ? *)"),
    ("weekly", "cron(0 3 ? * SUN *)"),
    ("monthly", "cron(0 4 1 * ? *)"),
])
def test_scheduled_backup_rule(template: dict[str, Any], retention: str, cron: str) -> None:
    (rule,) = [r for r in _rules(template).values() if r.get("ScheduleExpression") == cron]
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "BackupWorkflowStateMachineD9F867FA"}
    assert json.loads(target["Input"]) == {
        "database": "quotepro", "retention": retention,
        "reason": f"scheduled {retention} backup", "scope": SCOPE}


def test_schedules_per_database_follow_the_config(synth_with: Any) -> None:
    template = synth_with(databases=[
        {"name": "quotepro", "secret": "backstop/quotepro"},
        {"name": "billing", "secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
                                      "billing-AbCdEf", "schedules": ["daily"],
         "scope": {"mode": "full", "exclude_tables": ["audit_log"]}}])
    inputs = [json.loads(r["Targets"][0]["Input"]) for r in _rules(template).values()
              if "ScheduleExpression" in r and "rate" not in r["ScheduleExpression"]]
    inputs = [i for i in inputs if "retention" in i]  # backups, not restore tests
    billing = [i for i in inputs if i["database"] == "billing"]
    assert [i["retention"] for i in billing] == ["daily"]
    assert billing[0]["scope"]["exclude_tables"] == ["audit_log"]
    assert len([i for i in inputs if i["database"] == "quotepro"]) == 3


def test_pre_deploy_event_starts_a_pre_migration_backup(template: dict[str, Any]) -> None:
    (rule,) = [r for r in _rules(template).values()
               if r.get("EventPattern", {}).get("source") == ["backstop.pre-deploy"]]
    (target,) = rule["Targets"]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-database": "$.detail.database",
                                            "detail-reason": "$.detail.reason"}
    assert json.loads(transformer["InputTemplate"].replace("<detail-database>", '"db"')
                      .replace("<detail-reason>", '"r"')) == {
        "database": "db", "retention": "pre-migration", "reason": "r"}
