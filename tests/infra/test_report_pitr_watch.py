"""The PITR watch: its alarms in the template, the watch function run under moto against RDS
instances whose latest restorable time is current, lagging, and whose automated backups are
off or kept too briefly, and the template's own alarms evaluated over what it published."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from backstop import pitr
from backstop.report_model import FAIL, PASS, Settings
from handlers import _runtime
from tests.infra.conftest import PITR, alarm_props, emf_values, function_props, resources
from tests.support import moto_sfn
from tests.support.alarms import Alarm

WATCHED = ("current", "lagging", "off", "brief")


def test_pitr_alarms_exist_for_rds_sources(report_template: dict[str, Any]) -> None:
    lag = alarm_props(report_template, "PitrLagMinutes")
    kept = alarm_props(report_template, "PitrRetentionDays")
    assert (lag["Threshold"], lag["ComparisonOperator"], lag["Statistic"]) == (
        5, "GreaterThanThreshold", "Maximum")
    assert (kept["Threshold"], kept["ComparisonOperator"], kept["Statistic"]) == (
        7, "LessThanThreshold", "Minimum")
    for alarm in (lag, kept):
        assert alarm["Dimensions"] == [{"Name": "Database", "Value": "quotepro"}]
        assert alarm["AlarmActions"]
    stopped = alarm_props(report_template, "PitrWatchHealthy")
    assert (stopped["ComparisonOperator"], stopped["TreatMissingData"]) == (
        "LessThanThreshold", "breaching")
    rules = [r["Properties"] for r in resources(report_template, "AWS::Events::Rule").values()]
    assert any(r.get("ScheduleExpression") == "rate(5 minutes)" for r in rules)
    _, watch = function_props(report_template, "handlers.pitr.handler")
    assert json.loads(watch["Environment"]["Variables"]["PITR_SOURCES"]) == PITR


def test_no_pitr_watch_without_rds_sources(template: dict[str, Any]) -> None:
    handlers = {f["Properties"]["Handler"]
                for f in resources(template, "AWS::Lambda::Function").values()}
    assert "handlers.report.handler" in handlers and "handlers.pitr.handler" not in handlers
    assert not [a for a in resources(template, "AWS::CloudWatch::Alarm").values()
                if a["Properties"].get("MetricName", "").startswith("Pitr")]


def _instances(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    rds = boto3.client("rds", region_name=moto_sfn.REGION)
    for name, kept in (("current", 7), ("lagging", 7), ("off", 0), ("brief", 3)):
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro",
                               Engine="postgres", BackupRetentionPeriod=kept,
                               MasterUsername="postgres", MasterUserPassword="not-used-here",
                               AllocatedStorage=20)
    moto_sfn.script_latest_restorable(monkeypatch, {"current": now - timedelta(minutes=2),
                                                    "lagging": now - timedelta(minutes=20),
                                                    "brief": now - timedelta(minutes=1)})


def _watch(report_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
           sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The deployed watch function's handler, with its environment as synthesized but
    watching ``sources``."""
    _, watch = function_props(report_template, "handlers.pitr.handler")
    for name, value in watch["Environment"]["Variables"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PITR_SOURCES", json.dumps(sources))
    _runtime.reset()
    from handlers import pitr as handler

    result: dict[str, Any] = handler.handler({}, moto_sfn.FakeContext("PitrWatch"))
    return result


def test_the_pitr_watch_publishes_lag_and_retention_per_instance(
        aws: moto_sfn.LambdaCalls, report_template: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _instances(monkeypatch, datetime.now(UTC))
    result = _watch(report_template, monkeypatch,
                    {db: {"rds_instance": db, "retention_days": 7} for db in WATCHED})
    problems = {s["database"]: s["problems"] for s in result["sources"]}
    assert problems["current"] == []
    (lag,) = problems["lagging"]
    assert re.search(r"lagging is 2[01]\.\d min behind", lag) and "PITR RPO is 5 min" in lag
    assert problems["off"] == ["automated backups of off are OFF (retention 0): there is no "
                               "point-in-time recovery"]
    assert problems["brief"] == ["automated backups of brief are kept 3 days; the config says "
                                 "at least 7"]
    out = capsys.readouterr().out
    lags, kept = emf_values(out, "PitrLagMinutes"), emf_values(out, "PitrRetentionDays")
    assert set(lags) == {"current", "lagging", "brief"}  # "off" has no restorable time
    assert lags["current"] < 5 < lags["lagging"] < 25
    assert kept == {"current": 7, "lagging": 7, "off": 0, "brief": 3}
    assert emf_values(out, "PitrWatchHealthy") == {None: 1}


def test_the_templates_alarms_page_on_what_the_watch_published(
        aws: moto_sfn.LambdaCalls, report_template: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The synthesized PitrLag and PitrRetention alarms (as CloudWatch evaluates them) over
    the data points the watch printed: the lagging instance pages on lag, the one whose
    backups are off and the one kept too briefly on retention, the current one not at all."""
    now = datetime.now(UTC)
    _instances(monkeypatch, now)
    _watch(report_template, monkeypatch,
           {db: {"rds_instance": db, "retention_days": 7} for db in WATCHED})
    out = capsys.readouterr().out
    paged: dict[str, list[str]] = {}
    for metric, alarm_of in (("PitrLagMinutes", "lag"), ("PitrRetentionDays", "retention")):
        alarm = Alarm.from_template(alarm_props(report_template, metric))
        for db, value in emf_values(out, metric).items():
            if alarm.notifications([(now, value)]):
                paged.setdefault(str(db), []).append(alarm_of)
    assert paged == {"lagging": ["lag"], "off": ["retention"], "brief": ["retention"]}


def test_a_missing_instance_makes_the_watch_unhealthy_and_pages(
        aws: moto_sfn.LambdaCalls, report_template: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    result = _watch(report_template, monkeypatch,
                    {"gone": {"rds_instance": "gone", "retention_days": 7}})
    (status,) = result["sources"]
    assert "cannot describe RDS instance gone: DBInstanceNotFound" in status["problems"][0]
    healthy = emf_values(capsys.readouterr().out, "PitrWatchHealthy")
    assert healthy == {None: 0}
    stopped = Alarm.from_template(alarm_props(report_template, "PitrWatchHealthy"))
    assert stopped.notifications([(datetime.now(UTC), healthy[None])])


def test_the_report_judges_pitr_per_database(aws: moto_sfn.LambdaCalls,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    _instances(monkeypatch, now)
    settings = Settings.from_dict({"databases": [{"name": n} for n in ("a", "b", "c", "d")],
                                   "report": {"pitr": {
                                       "a": {"rds_instance": "current", "retention_days": 7},
                                       "b": {"rds_instance": "lagging", "retention_days": 7},
                                       "c": {"rds_instance": "off", "retention_days": 7}}}})
    found = pitr.statuses(settings, rds=boto3.client("rds", region_name=moto_sfn.REGION),
                          secrets=None, now=now)
    item = pitr.pitr_item(found, settings)
    assert item.status == FAIL and item.summary.startswith("2 database(s) outside")
    assert any(line.startswith("d: PITR is not watched") for line in item.evidence)
    healthy = Settings.from_dict({"databases": [{"name": "a"}], "report": {"pitr": {
        "a": {"rds_instance": "current", "retention_days": 7}}}})
    assert pitr.pitr_item(pitr.statuses(healthy, rds=boto3.client(
        "rds", region_name=moto_sfn.REGION), secrets=None, now=now), healthy).status == PASS
