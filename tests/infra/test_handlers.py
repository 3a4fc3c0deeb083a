"""Handlers at their edges: the sample events in tests/events, and the RPO check against
manifests in moto S3."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.moto_sfn import FakeContext, emf_metrics

EVENTS = Path(__file__).resolve().parents[1] / "events"
CONSOLE_INPUTS = ["backup_on_demand", "backup_pre_migration", "backup_table_only",
                  "backup_schema_only"]


def event(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from handlers import _runtime

    for key, value in {"BACKUP_LOCATION": "s3://backups/backstop", "DATABASES": "quotepro,billing",
                       "RPO_HOURS": "24", "LOCK_SECONDS": "2700",
                       "POWERTOOLS_METRICS_NAMESPACE": "Backstop",
                       "POWERTOOLS_SERVICE_NAME": "backstop"}.items():
        monkeypatch.setenv(key, value)
    _runtime.reset()
    yield
    _runtime.reset()


@pytest.mark.parametrize("name", CONSOLE_INPUTS)
def test_console_inputs_are_accepted(name: str, handler_env: None) -> None:
    from handlers import validate

    result = validate.handler({"request": event(name), "executionId": "x"},
                              FakeContext("validate"))  # type: ignore[arg-type]
    assert result["request"]["database"] == "quotepro"
    assert result["request"]["retention"] == event(name)["retention"]
    assert int(result["lock"]["expiresAt"]) - int(result["lock"]["now"]) == 2700


def test_console_inputs_in_the_deploy_guide_are_the_tested_ones() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for name in CONSOLE_INPUTS:
        assert json.dumps(event(name), indent=2) in guide, name


@pytest.mark.parametrize(("request_", "message"), [
    ("not an object", "the input must be a JSON object"),
    ({}, 'the input needs "database"'),
    ({"database": "quotepro", "when": "now"}, "the input has an unknown field 'when'"),
    ({"database": "quotepro", "scope": {"mode": "wal"}}, "scope 'wal' is not one of"),
    ({"database": "quotepro", "scope": {"tables": "quotes"}}, '"scope.tables" must be a list'),
])
def test_bad_requests_get_one_sentence(request_: Any, message: str, handler_env: None) -> None:
    from backstop.errors import ConfigError
    from handlers import validate

    with pytest.raises(ConfigError) as info:
        validate.handler({"request": request_}, FakeContext("validate"))  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def _manifest(database: str, status: str, age: timedelta) -> Any:
    from backstop.manifest import Manifest, Scope, object_key

    finished = datetime.now(UTC) - age
    backup_id = f"{finished:%Y%m%dT%H%M%SZ}-{status.lower()[:6]}"
    return Manifest(id=backup_id, database=database, retention="daily", reason="test",
                    scope=Scope(), status=status, started_at=finished - timedelta(minutes=1),
                    finished_at=finished, size=100, sha256="0" * 64,
                    key=object_key("daily", database, finished, backup_id),
                    snapshot={"id": "s", "taken_at": finished.isoformat()},
                    source={"server_version": "18.1"}, dump={"plain_size": 200},
                    encryption={"recipients": ["0" * 40]})


@pytest.fixture
def rpo(handler_env: None) -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="backups")

        def put(manifest: Any) -> None:  # signed with the key the handlers are given
            from backstop.signing import Policy

            s3.put_object(Bucket="backups", Key=f"backstop/{manifest.manifest_key}",
                          Body=json.dumps(Policy.from_env().seal(manifest.to_dict())))

        yield put


Metrics = dict[str, dict[str, Any]]


def _run_rpo(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], Metrics]:
    rpo_module = importlib.import_module("handlers.rpo")
    result = rpo_module.handler(event("rpo_schedule_event"), FakeContext("rpo"))
    metrics: Metrics = {}
    for record in emf_metrics(capsys.readouterr().out):
        assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Backstop"
        for name in ("RecoveryPointAgeHours", "RpoBreached"):
            if name in record:
                value = record[name]  # Powertools writes each value as a list
                metrics.setdefault(record["Database"], {})[name] = (
                    value[0] if isinstance(value, list) else value)
    return result, metrics


def test_fresh_backup_has_a_small_age(rpo: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rpo(_manifest("quotepro", "DONE", timedelta(hours=2)))
    rpo(_manifest("billing", "DONE", timedelta(hours=30)))

    result, metrics = _run_rpo(capsys)

    assert 1.9 < metrics["quotepro"]["RecoveryPointAgeHours"] < 2.1
    assert metrics["quotepro"]["RpoBreached"] == 0
    assert metrics["billing"]["RpoBreached"] == 1  # older than 24 h
    assert result["databases"]["quotepro"]["breached"] is False


def test_no_backup_is_a_breach(rpo: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result, metrics = _run_rpo(capsys)

    assert metrics["quotepro"] == {"RpoBreached": 1}  # no age: the alarm's missing data
    assert result["databases"]["quotepro"] == {"age_hours": None, "breached": True,
                                               "backup_id": None, "verified_age_hours": None}


def test_failed_manifests_are_ignored(rpo: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rpo(_manifest("quotepro", "DONE", timedelta(hours=20)))
    rpo(_manifest("quotepro", "FAILED", timedelta(minutes=5)))

    result, metrics = _run_rpo(capsys)

    assert 19.9 < metrics["quotepro"]["RecoveryPointAgeHours"] < 20.1
    assert result["databases"]["quotepro"]["backup_id"].endswith("-done")
