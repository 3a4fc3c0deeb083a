"""Handlers at their edges: the sample events in tests/events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.moto_sfn import FakeContext

EVENTS = Path(__file__).resolve().parents[1] / "events"
CONSOLE_INPUTS = ["backup_on_demand", "backup_pre_migration", "backup_table_only",
                  "backup_schema_only"]


def event(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    from handlers import _runtime

    for key, value in {"BACKUP_LOCATION": str(tmp_path), "DATABASES": "quotepro,billing",
                       "LOCK_SECONDS": "2700", "BACKUP_SECONDS": "900",
                       "BACKUP_TASK_SECONDS": "10800",
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


def test_the_task_counts_its_limit_from_when_the_workflow_started_it(
        handler_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a task whose state started 1,000 s ago (an image pull, a slow start)
    from handlers import backup

    deadlines: list[float] = []
    monkeypatch.setattr(backup, "run", lambda request, *, runner, deadline: deadlines.append(
        deadline) or {"runner": runner})
    entered = datetime.now(UTC) - timedelta(seconds=1000)
    monkeypatch.setenv("BACKSTOP_TASK_STARTED", entered.isoformat().replace("+00:00", "Z"))

    assert backup.run_task({"job": "backup", "request": {}}) == {"runner": "container"}
    # ... it stops the dump by the stack's limit less what has gone by and the margin
    left = deadlines[0] - time.monotonic()
    assert abs(left - (10800 - 1000 - backup.DEADLINE_MARGIN_SECONDS)) < 5


def test_a_task_without_its_start_time_says_so(handler_env: None) -> None:
    from backstop.errors import ConfigError
    from handlers import backup

    with pytest.raises(ConfigError, match="BACKSTOP_TASK_STARTED is not set"):
        backup.run_task({"job": "backup", "request": {}})
