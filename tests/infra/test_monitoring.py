"""Alarms (thresholds, missing-data policy, actions), the alert topic and the dashboard."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import resources


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["Properties"].get("MetricName", lid): a["Properties"]
            | {"_id": lid} for lid, a in resources(template, "AWS::CloudWatch::Alarm").items()
            if a["Properties"].get("Namespace") == "Backstop"}


def _dimension(alarm: dict[str, Any]) -> list[dict[str, str]]:
    dims: list[dict[str, str]] = alarm["Dimensions"]
    return dims


def test_rpo_alarm_breaches_on_age_or_missing_data(template: dict[str, Any]) -> None:
    rpo = _alarms(template)["RecoveryPointAgeHours"]
    assert rpo["Threshold"] == 24
    assert rpo["ComparisonOperator"] == "GreaterThanThreshold"
    assert rpo["TreatMissingData"] == "breaching"
    assert rpo["Statistic"] == "Maximum" and rpo["Period"] == 3600
    assert _dimension(rpo) == [{"Name": "Database", "Value": "quotepro"}]


def test_failure_and_collapse_alarms_fire_on_one_event(template: dict[str, Any]) -> None:
    alarms = _alarms(template)
    for name in ("BackupFailed", "BackupCollapsed"):
        alarm = alarms[name]
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["Statistic"] == "Sum"


def test_rto_alarm_uses_the_configured_minutes(template: dict[str, Any]) -> None:
    assert _alarms(template)["RestoreDurationMinutes"]["Threshold"] == 60


def test_state_machine_and_function_alarms(template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    by_metric = {(a["Namespace"], a["MetricName"]) for a in alarms}
    assert ("AWS/States", "ExecutionsFailed") in by_metric
    assert ("AWS/States", "ExecutionsTimedOut") in by_metric
    lambda_errors = [a for a in alarms if (a["Namespace"], a["MetricName"]) == (
        "AWS/Lambda", "Errors")]
    assert len(lambda_errors) == 7


def test_every_alarm_notifies_the_encrypted_topic(template: dict[str, Any]) -> None:
    (topic_id, topic), = resources(template, "AWS::SNS::Topic").items()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlertsKey9E1197AF", "Arn"]}
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    (subscription,) = resources(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"
    key_policy = template["Resources"]["AlertsKey9E1197AF"]["Properties"]["KeyPolicy"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
               for s in key_policy["Statement"])


def test_rpo_check_runs_every_15_minutes(template: dict[str, Any]) -> None:
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]
    (rpo,) = [r for r in rules if r.get("ScheduleExpression") == "rate(15 minutes)"]
    assert rpo["Targets"][0]["Arn"] == {"Fn::GetAtt": ["FunctionsRpoCheck1B17D5F0", "Arn"]}


def test_dashboard_covers_the_system(template: dict[str, Any]) -> None:
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("RecoveryPointAgeHours", "BackupSizeBytes", "BackupDurationSeconds",
                   "ExecutionsFailed", "Errors"):
        assert metric in body
