"""Restore handlers at their edges: the console inputs in tests/events and their one-sentence
errors, the sweeper on its schedule and on a stopped execution, and the verification age the
RPO check publishes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from backstop import scratch
from backstop.errors import ConfigError
from handlers._restore_events import (
    DATABASE,
    SCRATCH,
    configured_database,
    parse_restore,
    parse_verification,
    secret_name,
)
from tests.infra.test_handlers import event, handler_env  # noqa: F401
from tests.support.moto_sfn import FakeContext, emf_metrics

VERIFICATION_INPUTS = ["restore_verification"]
RESTORE_INPUTS = ["restore_scratch_full", "restore_scratch_tables", "restore_scratch_schema_only",
                  "restore_database_data_only", "restore_database_full"]
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "restore.md"


def _restore(request: Any) -> Any:
    return parse_restore(request, default_keep_hours=24, max_keep_hours=72)


def test_console_inputs_are_accepted() -> None:
    verification = parse_verification(event("restore_verification"))
    assert (verification.database, verification.backup_id) == ("quotepro", "latest")
    parsed = {name: _restore(event(name)) for name in RESTORE_INPUTS}
    assert parsed["restore_scratch_tables"].request.tables == ("quotes", "line_items")
    assert parsed["restore_scratch_tables"].before == datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    assert parsed["restore_scratch_schema_only"].request.mode == "schema-only"
    data_only = parsed["restore_database_data_only"]
    assert (data_only.target, data_only.target_secret, data_only.request.confirm) == (
        DATABASE, "backstop/quotepro-restore", "quotepro")
    assert data_only.incident_at == datetime(2026, 3, 14, 9, 42, tzinfo=UTC)
    assert {p.target for n, p in parsed.items() if "scratch" in n} == {SCRATCH}


def test_console_inputs_in_the_restore_guide_are_the_tested_ones() -> None:
    guide = GUIDE.read_text()
    for name in VERIFICATION_INPUTS + RESTORE_INPUTS:
        assert json.dumps(event(name), indent=2) in guide, name


@pytest.mark.parametrize(("request_", "message"), [
    ([], "the input must be a JSON object"),
    ({"database": "quotepro", "when": "now"}, "the input has an unknown field 'when'"),
    ({"backup_id": "latest"}, '"backup_id": "latest" needs "database"'),
    ({"database": "quotepro", "mode": "everything"}, "restore mode 'everything' is not one of"),
    ({"database": "quotepro", "mode": "tables"}, "mode 'tables' needs table names"),
    ({"database": "quotepro", "target": "production"}, '"target" must be "scratch" or'),
    ({"database": "quotepro", "target": {"secret": "s"}}, "restoring into an existing database"),
    ({"database": "quotepro", "confirm": "quotepro"}, '"confirm" is only for an existing'),
    ({"database": "quotepro", "keep_hours": 500}, '"keep_hours" must be a whole number from 1'),
    ({"database": "quotepro", "backup_id": "x", "before": "2026-01-01"}, '"before" picks'),
    ({"database": "quotepro", "incident_at": "yesterday"}, '"incident_at" must be a time'),
])
def test_bad_restore_requests_get_one_sentence(request_: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _restore(request_)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_verification_needs_a_database() -> None:
    with pytest.raises(ConfigError, match=r'^the input needs "database"'):
        parse_verification({"backup_id": "latest"})


def test_a_secret_is_named_by_name_or_complete_arn() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/quotepro-restore-AbCdEf"
    assert secret_name(arn) == "prod/quotepro-restore"
    assert secret_name("prod/quotepro-restore") == "prod/quotepro-restore"


def test_a_target_is_a_configured_database_when_its_secret_is_by_name_or_arn() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/billing-AbCdEf"
    by_name = {"quotepro": "prod/quotepro", "billing": "prod/billing"}
    assert configured_database(arn, by_name) == "billing"
    assert configured_database("prod/billing", {"billing": arn}) == "billing"
    assert configured_database("prod/quotepro", by_name) == "quotepro"
    assert configured_database("prod/quotepro-restore", by_name) is None
    assert configured_database(arn.replace("billing", "other"), by_name) is None


# --------------------------------------------------------------------------- the sweeper
@pytest.fixture
def rds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    from handlers import _runtime

    monkeypatch.setenv("DEFAULT_KEEP_HOURS", "8")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Backstop")
    _runtime.reset()
    with mock_aws():
        yield boto3.client("rds", region_name="us-east-1")
    _runtime.reset()


def _create(rds: Any, name: str, **tags: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20, MasterUsername="backstop", ManageMasterUserPassword=True,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def _names(rds: Any) -> set[str]:
    return {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}


def _sweep(sample: str, **changes: Any) -> dict[str, Any]:
    from handlers import sweep

    body = {**event(sample), **changes}
    result: dict[str, Any] = sweep.handler(body, FakeContext("sweeper"))  # type: ignore[arg-type]
    return result


def test_a_stopped_execution_loses_its_instance_at_once(rds: Any) -> None:
    stopped = scratch.instance_id("verify-1")
    other = scratch.instance_id("verify-2")
    _create(rds, stopped, **{scratch.SCRATCH_TAG: "true", scratch.KEEP_TAG: "8"})
    _create(rds, other, **{scratch.SCRATCH_TAG: "true", scratch.KEEP_TAG: "8"})

    result = _sweep("restore_execution_aborted_event", time=datetime.now(UTC).isoformat())

    assert result["stopped_execution"] == stopped and result["deleted"] == []
    assert _names(rds) == {other}  # young, and another execution's: kept


def test_an_instance_not_tagged_as_scratch_is_never_deleted_for_an_execution(rds: Any) -> None:
    _create(rds, scratch.instance_id("verify-1"))  # the name, but not the tag

    result = _sweep("restore_execution_aborted_event", time=datetime.now(UTC).isoformat())

    assert result["stopped_execution"] is None and len(_names(rds)) == 1


def test_the_hourly_sweep_publishes_the_oldest_survivor(
        rds: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _create(rds, "backstop-scratch-verify", **{scratch.SCRATCH_TAG: "true"})  # default: 8 h
    _create(rds, "backstop-scratch-kept", **{scratch.SCRATCH_TAG: "true",
                                             scratch.KEEP_TAG: "30"})
    later = datetime.now(UTC) + timedelta(hours=10)

    result = _sweep("sweep_schedule_event", time=later.strftime("%Y-%m-%dT%H:%M:%SZ"))

    assert result["deleted"] == ["backstop-scratch-verify"]
    assert result["kept"] == ["backstop-scratch-kept"]
    records = {k: v for r in emf_metrics(capsys.readouterr().out) for k, v in r.items()
               if k.startswith("Scratch")}
    age = records["ScratchInstanceAgeHours"]
    assert 9.9 < (age[0] if isinstance(age, list) else age) < 10.1
    assert records["ScratchInstancesDeleted"] in (1, [1.0], 1.0)
