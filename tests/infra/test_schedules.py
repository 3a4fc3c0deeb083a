"""Schedules: cron expressions and inputs per database, and the CI/CD pre-deploy rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import ROOT, resources

SCOPE = {"mode": "full", "tables": [], "exclude_tables": []}


def _rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources(template, "AWS::Events::Rule").items()}


@pytest.mark.parametrize(("retention", "cron"), [
    ("daily", "cron(0 2 * * ? *)"),
    ("weekly", "cron(0 3 ? * SUN *)"),
    ("monthly", "cron(0 4 1 * ? *)"),
])
def test_one_rule_per_schedule_starts_the_fleet(template: dict[str, Any], retention: str,
                                                cron: str) -> None:
    (rule,) = [r for r in _rules(template).values() if r.get("ScheduleExpression") == cron]
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "FleetBackupStateMachine75AEF4B7"}
    assert json.loads(target["Input"]) == {"retention": retention}


def test_the_fleet_backs_up_each_database_on_its_own_schedules(synth_with: Any) -> None:
    from tests.infra import iam_model

    template = synth_with(databases=[
        {"name": "quotepro", "secret": "backstop/quotepro"},
        {"name": "billing", "secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
                                      "billing-AbCdEf", "schedules": ["daily"],
         "scope": {"mode": "full", "exclude_tables": ["audit_log"]}}])
    (fleet,) = [d for lid, d in iam_model.definitions(template).items()
                if lid.startswith("FleetBackup")]
    items = {name: state["Result"] for name, state in fleet["States"].items()
             if name.endswith("Databases")}
    assert [i["database"] for i in items["DailyDatabases"]] == ["quotepro", "billing"]
    assert [i["database"] for i in items["WeeklyDatabases"]] == ["quotepro"]
    billing = items["DailyDatabases"][1]
    assert billing == {"database": "billing", "retention": "daily",
                       "reason": "scheduled daily backup",
                       "scope": {"mode": "full", "tables": [], "exclude_tables": ["audit_log"]}}
    # one rule per schedule, whatever the number of databases
    crons = [r for r in _rules(template).values()
             if r.get("ScheduleExpression", "").startswith("cron(0 2 * * ? *)")]
    assert len(crons) == 1


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


def _each_database(template: dict[str, Any]) -> dict[str, Any]:
    from tests.infra import iam_model

    (fleet,) = [d for lid, d in iam_model.definitions(template).items()
                if lid.startswith("FleetBackup")]
    state: dict[str, Any] = fleet["States"]["EachDatabase"]
    assert state["Type"] == "Map"
    return state


def _fleet(recipient_key: str, **overrides: Any) -> dict[str, Any]:
    from infra.config import load_config
    from tests.infra.conftest import raw_config, synth

    raw = raw_config(recipient_key, **overrides)
    if "backup_concurrency" not in overrides:
        del raw["backup_concurrency"]  # the default, not cdk.json's copy of it
    return synth(load_config(raw))


@pytest.mark.parametrize("distributed", [False, True], ids=["inline", "distributed"])
def test_the_fleet_backs_up_at_most_backup_concurrency_databases_at_once(
        recipient_key: str, monkeypatch: pytest.MonkeyPatch, distributed: bool) -> None:
    import infra.fleet
    from infra.config import BackstopConfig

    if distributed:  # a Distributed Map above INLINE_LIMIT databases
        monkeypatch.setattr(infra.fleet, "INLINE_LIMIT", 0)
    default = _each_database(_fleet(recipient_key))
    mode = default.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode", "INLINE")
    assert mode == ("DISTRIBUTED" if distributed else "INLINE")
    # the documented default, 4
    assert default["MaxConcurrency"] == BackstopConfig.backup_concurrency == 4
    assert "| `backup_concurrency` | 4 |" in (ROOT / "docs" / "deploy.md").read_text()
    assert _each_database(_fleet(recipient_key, backup_concurrency=7))["MaxConcurrency"] == 7
